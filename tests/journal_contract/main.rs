//! The journal contract: one suite of cases ([`cases`]), run against every backend of
//! `store::Journal` (a new backend adds one `contract!` line at the bottom). Each case drives
//! the trait only, with an injected clock, and ends with the backend's invariant check over its
//! tables.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use bytes::Bytes;
use courier::core::ids::IdGen;
use courier::core::model::{AttemptRecord, EndpointConfig, EventProgress};
use courier::core::record::EventMeta;
use courier::store::memory::MemoryJournal;
use courier::store::redb::{DB_FILE, DEFAULT_CACHE_BYTES, RedbJournal};
use courier::store::{
    Clock, EnqueueReq, Journal, Limits, Notice, NoticeSink, ProgressOutcome, ProgressUpdate,
    StoreError,
};

mod attempt_ring;
mod bulk;
mod cases;
mod log;
mod sealed;
mod segments;

/// A backend under test, as opened by its `Open` function.
struct Opened {
    journal: Arc<dyn Journal>,
    /// The backend's invariant check over its tables.
    check: Box<dyn Fn() -> Result<Vec<String>, StoreError> + Send>,
    _dir: Option<tempfile::TempDir>,
}

type Open = fn(Clock, NoticeSink, Limits) -> Opened;

fn open_memory(clock: Clock, notify: NoticeSink, limits: Limits) -> Opened {
    let j = Arc::new(MemoryJournal::with_limits(notify, clock, limits));
    let c = j.clone();
    Opened {
        journal: j,
        check: Box::new(move || c.check_invariants()),
        _dir: None,
    }
}

fn open_redb(clock: Clock, notify: NoticeSink, limits: Limits) -> Opened {
    open_redb_in(
        tempfile::tempdir().unwrap(),
        courier::store::redb::segments::DEFAULT_SEGMENT_BYTES,
        clock,
        notify,
        limits,
    )
}

/// redb with segments of 4 KiB, so the cases roll over into new segments.
fn open_redb_small_segments(clock: Clock, notify: NoticeSink, limits: Limits) -> Opened {
    open_redb_in(tempfile::tempdir().unwrap(), 4096, clock, notify, limits)
}

/// A redb journal in `dir` with segments of `segment_bytes`.
fn open_redb_in(
    dir: tempfile::TempDir,
    segment_bytes: u64,
    clock: Clock,
    notify: NoticeSink,
    limits: Limits,
) -> Opened {
    let db = courier::store::redb::DbHandle::open_with_segments(
        &dir.path().join(DB_FILE),
        DEFAULT_CACHE_BYTES,
        segment_bytes,
        keys(),
    )
    .unwrap();
    let j = Arc::new(RedbJournal::start_with(db, notify, clock, limits).unwrap());
    let c = j.clone();
    Opened {
        journal: j,
        check: Box::new(move || c.db().check_invariants()),
        _dir: Some(dir),
    }
}

/// One case's harness: the journal, its notices, and its clock.
struct H {
    j: Arc<dyn Journal>,
    check: Box<dyn Fn() -> Result<Vec<String>, StoreError> + Send>,
    notices: mpsc::Receiver<Notice>,
    now: Arc<AtomicU64>,
    ids: IdGen,
    _dir: Option<tempfile::TempDir>,
}

impl H {
    fn open(open: Open) -> H {
        Self::open_with(open, Limits::default())
    }

    fn open_with(open: Open, limits: Limits) -> H {
        Self::open_in(open, limits)
    }

    /// [`H::open_with`] through any opener (one that keeps a directory of the test's own).
    fn open_in(open: impl FnOnce(Clock, NoticeSink, Limits) -> Opened, limits: Limits) -> H {
        let now = Arc::new(AtomicU64::new(1_700_000_000_000));
        let n = now.clone();
        let clock: Clock = Arc::new(move || n.load(Ordering::SeqCst));
        let (tx, rx) = mpsc::channel();
        let sink: NoticeSink = Box::new(move |n| {
            let _ = tx.send(n);
        });
        let o = open(clock, sink, limits);
        H {
            j: o.journal,
            check: o.check,
            notices: rx,
            now,
            ids: IdGen::new(),
            _dir: o._dir,
        }
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// The notices sent since the last call, in order.
    fn notices(&self) -> Vec<Notice> {
        self.notices.try_iter().collect()
    }

    fn ev(&self, ep: &str, body: &str, key: Option<&str>) -> EnqueueReq {
        let now = self.now.load(Ordering::SeqCst);
        let meta = EventMeta {
            id: self.ids.next(now),
            enqueued_at_ms: now,
            content_type: "application/json".into(),
            event_type: Some("t".into()),
        };
        EnqueueReq::new(
            ep.into(),
            meta,
            Bytes::from(body.to_string()),
            key.map(Into::into),
        )
        .unwrap()
    }

    async fn put(&self, id: &str) {
        self.j.put_endpoint(id.into(), config()).await.unwrap();
    }

    async fn send(&self, ep: &str, body: &str) -> (String, u64) {
        let ok = self.j.enqueue(self.ev(ep, body, None)).await.unwrap();
        (ok.id, ok.seq)
    }

    async fn seqs(&self, ep: &str) -> Vec<u64> {
        let l = self.j.load_events(ep, 0, usize::MAX).await.unwrap();
        l.events.iter().map(|e| e.seq).collect()
    }

    async fn pending(&self, ep: &str) -> u64 {
        self.j.endpoint(ep).await.unwrap().unwrap().pending
    }

    /// Sends an attempt result and waits until the journal applied it.
    async fn progress(&self, u: ProgressUpdate) {
        self.j.record_progress(u);
        self.j.sync().await.unwrap();
    }

    /// The end of every case: the invariants hold, and the journal closes.
    async fn done(self) {
        let _ = self.j.sync().await;
        let bad = (self.check)().unwrap();
        assert!(bad.is_empty(), "invariants broken: {bad:#?}");
        let _ = self.j.close().await;
    }
}

/// The master keys every redb journal of the suite is opened with.
fn keys() -> Arc<courier::store::seal::KeyRing> {
    courier::store::seal::KeyRing::test_ring()
}

fn config() -> EndpointConfig {
    EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![1000, 2000],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    }
}

fn update(
    ep: &str,
    event_id: &str,
    seq: u64,
    attempt: u32,
    outcome: ProgressOutcome,
) -> ProgressUpdate {
    ProgressUpdate {
        endpoint: Arc::from(ep),
        seq,
        attempt: AttemptRecord {
            event_id: event_id.into(),
            seq,
            attempt,
            started_ms: 0,
            status: Some(503),
            latency_ms: 3,
            error: Some("HTTP_5XX".into()),
            message: None,
            kind: Default::default(),
            answer: None,
            repeats: 0,
            last_ms: 0,
        },
        progress: EventProgress {
            attempts: attempt,
            failures: attempt,
            ..EventProgress::default()
        },
        outcome,
        down: None,
    }
}

fn dead(reason: &str) -> ProgressOutcome {
    ProgressOutcome::Dead {
        reason: reason.into(),
    }
}

/// What kind of notice, and of which endpoint and seq.
fn kinds(ns: &[Notice]) -> Vec<String> {
    ns.iter()
        .map(|n| match n {
            Notice::Enqueued { endpoint, event } => format!("enqueued {endpoint}/{}", event.seq),
            Notice::EndpointUpserted(r) => format!("upserted {}", r.id),
            Notice::EndpointDeleted(id) => format!("deleted {id}"),
            Notice::Replayed { endpoint, event } => format!("replayed {endpoint}/{}", event.seq),
            Notice::BacklogFull { endpoint, limit } => format!("full {endpoint}/{limit}"),
        })
        .collect()
}

/// One `#[tokio::test]` per case, for one backend.
macro_rules! contract {
    ($backend:ident, $open:expr) => {
        contract!(@cases $backend, $open, [
            enqueue_and_load_in_order,
            enqueue_to_an_unknown_endpoint_is_refused,
            a_batch_is_all_or_nothing,
            idempotency_duplicates_and_mismatches,
            the_idempotency_window_expires,
            sequence_numbers_continue_after_delete_and_recreate,
            forced_delete_dead_letters_the_backlog_in_order,
            delete_with_a_backlog_is_refused_without_force,
            progress_delivered_pending_dead_and_down,
            replay_returns_to_the_original_place,
            purge_removes_a_dead_letter,
            dead_letters_filter_and_order,
            attempts_newest_first_and_retention,
            repeated_probe_failures_are_one_attempt_row,
            channels_need_their_endpoint,
            endpoints_put_pause_and_list,
            quarantine_sets_a_record_aside,
            notices_come_in_commit_order,
            sync_and_close,
            outside_attempts_connected_at_and_last_error,
            dead_letter_pages_walk_everything_once,
            replay_matching_goes_back_in_order,
            purge_matching_removes_exactly_the_matches,
            replay_matching_is_bounded_by_size,
            the_backlog_limit_refuses_intake_until_it_drains,
            delivered_events_are_retained_not_pending,
            deliveries_out_of_order_fold_into_the_cursor,
            a_replay_below_the_cursor_is_reopened,
            backfill_reopens_the_window,
            retention_removes_old_delivered_events,
            the_journal_bytes_limit_refuses_the_endpoint_that_fills_it,
            retained_events_give_way_to_the_journal_limit,
            an_endpoints_own_max_backlog,
            a_forced_delete_takes_the_retained_log
        ]);
    };
    (@cases $backend:ident, $open:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::cases::$case($open).await
                }
            )*
        }
    };
}

contract!(memory, super::open_memory);
contract!(redb, super::open_redb);
contract!(redb_small_segments, super::open_redb_small_segments);

/// redb only: what was committed is there after a reopen, and the numbering goes on.
#[tokio::test]
async fn redb_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let ids = IdGen::new();
    let ev = |body: &str| {
        let meta = EventMeta {
            id: ids.next(1),
            enqueued_at_ms: 1,
            content_type: "text/plain".into(),
            event_type: None,
        };
        EnqueueReq::new("a".into(), meta, Bytes::from(body.to_string()), None).unwrap()
    };
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    j.put_endpoint("a".into(), config()).await.unwrap();
    let (e1, _) = {
        let ok = j.enqueue(ev("1")).await.unwrap();
        (ok.id, ok.seq)
    };
    j.enqueue(ev("2")).await.unwrap();
    j.record_progress(update("a", &e1, 1, 1, dead("MAX_RETRIES_EXCEEDED")));
    j.set_paused("a".into(), true).await.unwrap();
    j.close().await.unwrap();
    drop(j);
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    let rec = j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.next_seq, rec.pending, rec.paused), (3, 1, true));
    assert_eq!(j.dead_letters(None).await.unwrap().len(), 1);
    assert_eq!(j.enqueue(ev("3")).await.unwrap().seq, 3);
    assert_eq!(j.replay(e1).await.unwrap().1, 1);
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    j.close().await.unwrap();
}

/// redb only: a journal written by the previous build (endpoint and attempt-log rows of their
/// first shape) opens, reads as before and goes on.
#[tokio::test]
async fn redb_reads_rows_of_the_first_shapes() {
    use ::redb::{ReadableDatabase, TableDefinition};
    use courier::core::model::AttemptKind;
    #[derive(serde::Serialize)]
    struct V1Endpoint<'a> {
        id: &'a str,
        config: EndpointConfig,
        paused: bool,
        created_ms: u64,
        updated_ms: u64,
        next_seq: u64,
        pending: u64,
        next_attempt_log: u64,
        down: bool,
    }
    #[derive(serde::Serialize)]
    struct V1Attempt<'a> {
        event_id: &'a str,
        seq: u64,
        attempt: u32,
        started_ms: u64,
        status: Option<u16>,
        latency_ms: u32,
        error: Option<&'a str>,
        message: Option<&'a str>,
    }
    const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
    const ATTEMPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("attempts");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let ids = IdGen::new();
    let meta = EventMeta {
        id: ids.next(1),
        enqueued_at_ms: 1,
        content_type: "text/plain".into(),
        event_type: None,
    };
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    j.put_endpoint("a".into(), config()).await.unwrap();
    let ok = j
        .enqueue(EnqueueReq::new("a".into(), meta, Bytes::from_static(b"x"), None).unwrap())
        .await
        .unwrap();
    j.close().await.unwrap();
    drop(j);
    // Rewrite the endpoint and its attempt log as the previous build wrote them.
    {
        let db = ::redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(ENDPOINTS).unwrap();
            let old = V1Endpoint {
                id: "a",
                config: config(),
                paused: false,
                created_ms: 1,
                updated_ms: 2,
                next_seq: 2,
                pending: 1,
                next_attempt_log: 1,
                down: true,
            };
            t.insert("a", postcard::to_stdvec(&old).unwrap().as_slice())
                .unwrap();
            let mut a = tx.open_table(ATTEMPTS).unwrap();
            let old = V1Attempt {
                event_id: &ok.id,
                seq: 1,
                attempt: 1,
                started_ms: 3,
                status: Some(503),
                latency_ms: 4,
                error: Some("HTTP_5XX"),
                message: Some("HTTP 503"),
            };
            a.insert(("a", 0), postcard::to_stdvec(&old).unwrap().as_slice())
                .unwrap();
            // ... in a journal of the schema that build wrote (2: before the retained log).
            let meta: ::redb::TableDefinition<&str, u64> = ::redb::TableDefinition::new("meta");
            tx.open_table(meta).unwrap().insert("schema", 2).unwrap();
        }
        tx.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert!(r.open_table(ENDPOINTS).unwrap().get("a").unwrap().is_some());
    }
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    let rec = j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.next_seq, rec.pending, rec.down), (2, 1, true));
    assert_eq!(
        (rec.connected_at_ms, rec.state_since_ms, rec.last_error),
        (None, None, None)
    );
    let log = j.attempts("a", 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].kind, log[0].answer.as_deref()),
        (AttemptKind::Delivery, None)
    );
    assert_eq!(log[0].status, Some(503));
    assert_eq!(j.load_events("a", 0, 10).await.unwrap().events.len(), 1);
    // It goes on: the next rows are of the new shape, beside the old.
    let mut u = update("a", &ok.id, 1, 2, ProgressOutcome::Delivered);
    u.attempt.status = Some(200);
    u.attempt.error = None;
    u.attempt.answer = Some("ok".into());
    u.down = Some(false);
    j.record_progress(u);
    j.sync().await.unwrap();
    let rec = j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.pending, rec.down), (0, false));
    assert!(rec.connected_at_ms.is_some() && rec.state_since_ms.is_some());
    let log = j.attempts("a", 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].answer.as_deref(), Some("ok"));
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    j.close().await.unwrap();
}

/// redb only: a journal of the first schema (no dead-letter index) opens, gets its index built,
/// and pages, replays and purges by endpoint as a new one does.
#[tokio::test]
async fn redb_a_first_schema_journal_gets_its_dead_letter_index() {
    use ::redb::{ReadableDatabase, TableDefinition};
    use courier::core::dead_filter::DeadFilter;
    use courier::store::DeadQuery;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let ids = IdGen::new();
    let ev = |ep: &str, n: u64| {
        let meta = EventMeta {
            id: ids.next(n),
            enqueued_at_ms: n,
            content_type: "text/plain".into(),
            event_type: None,
        };
        EnqueueReq::new(ep.into(), meta, Bytes::from(n.to_string()), None).unwrap()
    };
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    j.put_endpoint("a".into(), config()).await.unwrap();
    j.put_endpoint("b".into(), config()).await.unwrap();
    for n in 1..=6 {
        let ep = if n % 2 == 0 { "b" } else { "a" };
        let ok = j.enqueue(ev(ep, n)).await.unwrap();
        j.record_progress(update(ep, &ok.id, ok.seq, 1, dead("MAX_RETRIES_EXCEEDED")));
    }
    j.close().await.unwrap();
    drop(j);
    // Back to the first schema's shape: no index table, schema 1.
    {
        let db = ::redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let index: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_index");
        assert!(tx.delete_table(index).unwrap());
        let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
        tx.open_table(meta).unwrap().insert("schema", 1).unwrap();
        tx.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert!(r.open_table(index).is_err(), "the old shape has no index");
    }
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).unwrap();
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    let page = j
        .dead_letter_page(DeadQuery {
            filter: DeadFilter::endpoint("a"),
            after: None,
            limit: 10,
            records: false,
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.letter.seq).collect();
    assert_eq!((seqs, page.next), (vec![1, 2, 3], None));
    let r = j
        .replay_matching(DeadFilter::endpoint("a"), None, 10)
        .await
        .unwrap();
    assert_eq!(r.done, 3);
    let p = j
        .purge_matching(DeadFilter::endpoint("b"), None, 10)
        .await
        .unwrap();
    assert_eq!(p.done, 3);
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    j.close().await.unwrap();
    drop(j);
    // And a journal of a newer schema than this build's is still refused.
    {
        let db = ::redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
        tx.open_table(meta).unwrap().insert("schema", 99).unwrap();
        tx.commit().unwrap();
    }
    assert!(RedbJournal::open(&path, DEFAULT_CACHE_BYTES, keys(), Box::new(|_| {})).is_err());
}
