//! The rules, driven directly over the in-memory tables with a fixed clock: every rule, and the
//! invariants checked after each test.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::core::model::{
    AttemptRecord, ChannelConfig, EndpointConfig, EventProgress, IdempotentHit,
};
use crate::core::record::EventMeta;
use crate::store::memory::MemTables;
use crate::store::tables::{ReadTables, Tables};
use crate::store::{
    ATTEMPT_LOG_KEEP, EnqueueOk, EnqueueReq, IDEMPOTENCY_TTL_MS, ProgressOutcome, ProgressUpdate,
    StoreError, StoredRecord, invariants,
};

/// The rules over memory tables, committing like a backend does.
struct Fx {
    rules: Rules,
    t: MemTables,
    now: u64,
    notices: Vec<Notice>,
}

impl Fx {
    fn new() -> Self {
        Self {
            rules: Rules::from_records(Vec::new()),
            t: MemTables::default(),
            now: 1_000_000,
            notices: Vec::new(),
        }
    }

    /// One transaction: applied and committed, or (storage failure) taken back.
    fn tx<T>(
        &mut self,
        f: impl FnOnce(&mut Rules, &mut MemTables, u64, &mut Changes) -> Applied<T>,
    ) -> Result<T, StoreError> {
        let mut ch = Changes::default();
        let r = f(&mut self.rules, &mut self.t, self.now, &mut ch)
            .and_then(|a| self.rules.finish(&mut self.t, &ch).map(|()| a));
        match r {
            Ok(a) => {
                self.t.commit();
                self.notices.append(&mut ch.notices);
                a
            }
            Err(e) => {
                self.t.rollback();
                self.rules.undo(ch);
                Err(e)
            }
        }
    }

    fn put(&mut self, id: &str) -> EndpointRecord {
        let cfg = config();
        self.tx(|r, t, now, ch| r.put_endpoint(t, id.into(), cfg, now, ch))
            .unwrap()
            .0
    }

    fn send(&mut self, ep: &str, body: &str, key: Option<&str>) -> Result<EnqueueOk, StoreError> {
        let req = req(ep, body, key, self.now);
        self.tx(|r, t, now, ch| r.enqueue(t, req, now, ch))
    }

    fn progress(&mut self, ep: &str, seq: u64, outcome: ProgressOutcome, down: Option<bool>) {
        let u = update(ep, seq, outcome, down);
        self.tx(|r, t, now, ch| r.progress(t, u, now, ch).map(Ok))
            .unwrap();
    }

    fn record(&self, ep: &str) -> EndpointRecord {
        read::endpoint(&self.t, ep).unwrap().unwrap()
    }

    fn dead(&self) -> Vec<crate::core::model::DeadLetter> {
        read::dead_letters(&self.t, None).unwrap()
    }

    fn pending_seqs(&self, ep: &str) -> Vec<u64> {
        let l = read::load_events(&self.t, ep, 0, usize::MAX).unwrap();
        l.events.iter().map(|e| e.seq).collect()
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let bad = invariants::check(&self.t).unwrap();
            assert!(bad.is_empty(), "invariants broken: {bad:#?}");
        }
    }
}

fn config() -> EndpointConfig {
    EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![1000],
        max_in_flight: 1,
    }
}

static IDS: std::sync::LazyLock<crate::core::ids::IdGen> =
    std::sync::LazyLock::new(crate::core::ids::IdGen::new);

fn req(ep: &str, body: &str, key: Option<&str>, now: u64) -> EnqueueReq {
    let meta = EventMeta {
        id: IDS.next(now),
        enqueued_at_ms: now,
        content_type: "application/json".into(),
        event_type: None,
    };
    EnqueueReq::new(
        ep.into(),
        meta,
        Bytes::from(body.to_string()),
        key.map(str::to_string),
    )
    .unwrap()
}

fn update(ep: &str, seq: u64, outcome: ProgressOutcome, down: Option<bool>) -> ProgressUpdate {
    ProgressUpdate {
        endpoint: Arc::from(ep),
        seq,
        attempt: AttemptRecord {
            event_id: format!("evt_{ep}_{seq}"),
            seq,
            attempt: 1,
            started_ms: 0,
            status: Some(500),
            latency_ms: 1,
            error: None,
            message: None,
        },
        progress: EventProgress {
            attempts: 3,
            failures: 2,
            ..EventProgress::default()
        },
        outcome,
        down,
    }
}

#[test]
fn sequence_numbers_continue_after_delete_and_recreate() {
    let mut fx = Fx::new();
    assert_eq!(fx.put("a").next_seq, 1);
    for i in 1..=3 {
        assert_eq!(fx.send("a", "{}", None).unwrap().seq, i);
    }
    fx.tx(|r, t, now, ch| r.delete_endpoint(t, "a", true, now, ch))
        .unwrap();
    let mut tombs = Vec::new();
    fx.t.tombstones_each(|id, n| {
        tombs.push((id.to_string(), n));
        Ok(true)
    })
    .unwrap();
    assert_eq!(tombs, [("a".to_string(), 4)]);
    let rec = fx.put("a");
    assert_eq!((rec.next_seq, rec.pending), (4, 0));
    assert_eq!(fx.send("a", "{}", None).unwrap().seq, 4);
    fx.t.tombstones_each(|id, _| panic!("tombstone {id} left after re-creation"))
        .unwrap();
}

#[test]
fn delete_with_a_backlog_is_refused_unless_forced() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "1", None).unwrap();
    let r = fx.tx(|r, t, now, ch| r.delete_endpoint(t, "a", false, now, ch));
    assert_eq!(
        r,
        Err(StoreError::EndpointNotEmpty {
            id: "a".into(),
            backlog: 1
        })
    );
    assert_eq!(fx.pending_seqs("a"), [1]);
    let r = fx.tx(|r, t, now, ch| r.delete_endpoint(t, "zz", false, now, ch));
    assert_eq!(r, Err(StoreError::EndpointNotFound("zz".into())));
}

#[test]
fn forced_delete_dead_letters_the_backlog_in_order_and_corrupt_records_apart() {
    let mut fx = Fx::new();
    fx.put("a");
    let ids: Vec<String> = (0..3)
        .map(|i| fx.send("a", &i.to_string(), None).unwrap().id)
        .collect();
    fx.progress("a", 2, ProgressOutcome::Pending, None);
    // Seq 3's record is damaged on "disk".
    fx.t.event_put("a", 3, b"garbage").unwrap();
    fx.t.commit();
    fx.tx(|r, t, now, ch| r.delete_endpoint(t, "a", true, now, ch))
        .unwrap();
    let dead = fx.dead();
    let mut by_seq: Vec<_> = dead.iter().map(|d| (d.seq, d)).collect();
    by_seq.sort_by_key(|(s, _)| *s);
    assert_eq!(by_seq.len(), 3);
    assert_eq!(by_seq[0].1.event_id, ids[0]);
    assert_eq!(by_seq[0].1.reason, ENDPOINT_DELETED);
    assert_eq!(by_seq[1].1.reason, ENDPOINT_DELETED);
    assert_eq!(by_seq[1].1.progress.attempts, 3, "progress is kept");
    assert_eq!(by_seq[2].1.reason, RECORD_CORRUPT);
    assert_ne!(
        by_seq[2].1.event_id, ids[2],
        "a corrupt record gets a fresh id"
    );
    let (_, stored) = read::dead_letter(&fx.t, &by_seq[2].1.event_id)
        .unwrap()
        .unwrap();
    assert!(matches!(stored, StoredRecord::Corrupt { raw, .. } if raw == b"garbage"));
    assert!(matches!(
        fx.notices.last(),
        Some(Notice::EndpointDeleted(id)) if id == "a"
    ));
    assert!(read::endpoint(&fx.t, "a").unwrap().is_none());
}

use super::endpoints::ENDPOINT_DELETED;

#[test]
fn replay_returns_to_the_original_place_with_failures_reset() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    fx.send("a", "y", None).unwrap();
    fx.progress(
        "a",
        1,
        ProgressOutcome::Dead {
            reason: "MAX_RETRIES_EXCEEDED".into(),
        },
        None,
    );
    assert_eq!(fx.record("a").pending, 1);
    let dl = fx.dead();
    assert_eq!((dl.len(), dl[0].seq), (1, 1));
    let id = dl[0].event_id.clone();
    let (ep, seq) = fx.tx(|r, t, _, ch| r.replay(t, &id, ch)).unwrap();
    assert_eq!((ep.as_str(), seq), ("a", 1));
    assert_eq!(fx.pending_seqs("a"), [1, 2]);
    assert_eq!(fx.record("a").pending, 2);
    let loaded = read::load_events(&fx.t, "a", 1, 1).unwrap();
    let p = &loaded.events[0].progress;
    assert_eq!(
        (p.attempts, p.failures),
        (3, 0),
        "attempts continue, failures reset"
    );
    assert!(fx.dead().is_empty());
    assert!(matches!(fx.notices.last(), Some(Notice::Replayed { event, .. }) if event.seq == 1));
    let r = fx.tx(|r, t, _, ch| r.replay(t, "evt_nope", ch));
    assert_eq!(r, Err(StoreError::DeadLetterNotFound("evt_nope".into())));
}

#[test]
fn replay_refuses_a_deleted_endpoint_and_a_corrupt_record() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.put("b");
    fx.send("a", "x", None).unwrap();
    fx.send("b", "y", None).unwrap();
    fx.tx(|r, t, now, ch| r.delete_endpoint(t, "a", true, now, ch))
        .unwrap();
    let dla = fx.dead()[0].event_id.clone();
    let r = fx.tx(|r, t, _, ch| r.replay(t, &dla, ch));
    assert_eq!(r, Err(StoreError::EndpointNotFound("a".into())));
    fx.tx(|r, t, _, ch| r.quarantine(t, "b", 1, "bad crc", 0, ch).map(Ok))
        .unwrap();
    let dlb = fx.dead().into_iter().find(|d| d.endpoint == "b").unwrap();
    assert_eq!(dlb.reason, RECORD_CORRUPT);
    assert_eq!(fx.record("b").pending, 0);
    // The record was intact (quarantine trusts the reader); damage it to see the refusal.
    fx.t.dead_record_put(&dlb.event_id, b"garbage").unwrap();
    fx.t.commit();
    let r = fx.tx(|r, t, _, ch| r.replay(t, &dlb.event_id, ch));
    assert!(matches!(r, Err(StoreError::NotReplayable { .. })), "{r:?}");
}

#[test]
fn purge_removes_the_dead_letter_and_its_record() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    fx.tx(|r, t, now, ch| r.delete_endpoint(t, "a", true, now, ch))
        .unwrap();
    let id = fx.dead()[0].event_id.clone();
    fx.tx(|r, t, _, _| r.purge(t, id.clone())).unwrap();
    assert!(fx.dead().is_empty());
    assert!(fx.t.dead_record_get(&id, |_| ()).unwrap().is_none());
    assert_eq!(
        fx.tx(|r, t, _, _| r.purge(t, id.clone())),
        Err(StoreError::DeadLetterNotFound(id))
    );
}

#[test]
fn idempotency_duplicates_mismatches_and_the_window() {
    let mut fx = Fx::new();
    fx.put("a");
    let first = fx.send("a", "x", Some("k")).unwrap();
    let again = fx.send("a", "x", Some("k")).unwrap();
    assert_eq!(
        (again.id.as_str(), again.seq, again.duplicate),
        (first.id.as_str(), 1, true)
    );
    let other = fx.send("a", "y", Some("k"));
    assert_eq!(
        other,
        Err(StoreError::IdempotencyMismatch {
            event_id: first.id.clone(),
            index: 0
        })
    );
    assert_eq!(fx.record("a").pending, 1, "a duplicate adds nothing");
    // The same key on another endpoint is another key.
    fx.put("b");
    assert!(!fx.send("b", "y", Some("k")).unwrap().duplicate);
    // Just inside the window, then just past it.
    fx.now += IDEMPOTENCY_TTL_MS - 1;
    assert!(fx.send("a", "x", Some("k")).unwrap().duplicate);
    fx.now += 1;
    let fresh = fx.send("a", "y", Some("k")).unwrap();
    assert_eq!((fresh.seq, fresh.duplicate), (2, false));
    assert!(idempotency::live(0, IDEMPOTENCY_TTL_MS - 1));
    assert!(!idempotency::live(0, IDEMPOTENCY_TTL_MS));
}

#[test]
fn an_undecodable_key_row_is_treated_as_absent_and_pruned() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.t.idempotency_put("a", "k", b"\xff").unwrap();
    fx.t.commit();
    assert!(!fx.send("a", "x", Some("k")).unwrap().duplicate);
    fx.t.idempotency_put("a", "junk", b"\xff").unwrap();
    fx.now += IDEMPOTENCY_TTL_MS; // "k" (written at the old now) is now outside the window
    fx.send("a", "z", Some("late")).unwrap();
    fx.tx(|_, t, now, _| idempotency::prune(t, now).map(Ok))
        .unwrap();
    let mut left = Vec::new();
    fx.t.idempotency_all(|_, k, v| {
        left.push((k.to_string(), IdempotentHit::decode(v).is_some()));
        Ok(true)
    })
    .unwrap();
    assert_eq!(left, [("late".to_string(), true)]);
}

#[test]
fn a_batch_is_checked_whole_before_anything_is_written() {
    let mut fx = Fx::new();
    fx.put("a");
    let known = fx.send("a", "x", Some("k1")).unwrap();
    let batch = |fx: &Fx, lines: &[(&str, &str, Option<&str>)]| -> Vec<EnqueueReq> {
        lines
            .iter()
            .map(|(ep, b, k)| req(ep, b, *k, fx.now))
            .collect()
    };
    // An unknown endpoint anywhere refuses all.
    let reqs = batch(&fx, &[("a", "1", None), ("nope", "2", None)]);
    let r = fx.tx(|r, t, now, ch| r.enqueue_batch(t, reqs, now, ch));
    assert_eq!(r, Err(StoreError::EndpointNotFound("nope".into())));
    // A key reused with another body, against the journal (line 1) …
    let reqs = batch(&fx, &[("a", "1", None), ("a", "other", Some("k1"))]);
    let r = fx.tx(|r, t, now, ch| r.enqueue_batch(t, reqs, now, ch));
    assert_eq!(
        r,
        Err(StoreError::IdempotencyMismatch {
            event_id: known.id.clone(),
            index: 1
        })
    );
    // … or within the batch (line 2 repeats line 0's key with another body).
    let reqs = batch(
        &fx,
        &[
            ("a", "p", Some("k2")),
            ("a", "q", None),
            ("a", "r", Some("k2")),
        ],
    );
    let first_id = reqs[0].meta.id.clone();
    let r = fx.tx(|r, t, now, ch| r.enqueue_batch(t, reqs, now, ch));
    assert_eq!(
        r,
        Err(StoreError::IdempotencyMismatch {
            event_id: first_id,
            index: 2
        })
    );
    assert_eq!(
        fx.pending_seqs("a"),
        [1],
        "nothing of a refused batch is written"
    );
    // The same key and body twice in one batch: the second is the first's duplicate.
    let reqs = batch(
        &fx,
        &[
            ("a", "p", Some("k3")),
            ("a", "p", Some("k3")),
            ("a", "x", Some("k1")),
        ],
    );
    let oks = fx
        .tx(|r, t, now, ch| r.enqueue_batch(t, reqs, now, ch))
        .unwrap();
    let got: Vec<(u64, bool)> = oks.iter().map(|o| (o.seq, o.duplicate)).collect();
    assert_eq!(got, [(2, false), (2, true), (1, true)]);
    assert_eq!(fx.record("a").pending, 2);
}

#[test]
fn progress_delivered_pending_dead_and_the_down_flag() {
    let mut fx = Fx::new();
    fx.put("a");
    for _ in 0..3 {
        fx.send("a", "x", None).unwrap();
    }
    fx.progress("a", 1, ProgressOutcome::Pending, Some(true));
    assert!(fx.record("a").down);
    let l = read::load_events(&fx.t, "a", 1, 1).unwrap();
    assert_eq!(l.events[0].progress.attempts, 3);
    fx.progress("a", 1, ProgressOutcome::Delivered, Some(false));
    fx.progress(
        "a",
        2,
        ProgressOutcome::Dead {
            reason: "MAX_RETRIES_EXCEEDED".into(),
        },
        None,
    );
    let rec = fx.record("a");
    assert_eq!((rec.pending, rec.down, rec.next_attempt_log), (1, false, 3));
    assert_eq!(fx.pending_seqs("a"), [3]);
    assert_eq!(fx.dead()[0].reason, "MAX_RETRIES_EXCEEDED");
    // A late result for an event no longer pending only logs the attempt.
    fx.progress("a", 1, ProgressOutcome::Delivered, None);
    fx.progress("a", 2, ProgressOutcome::Pending, None);
    assert_eq!(fx.record("a").pending, 1);
    assert_eq!(read::attempts(&fx.t, "a", 10).unwrap().len(), 5);
    // A result for an unknown endpoint is dropped.
    fx.progress("gone", 1, ProgressOutcome::Delivered, None);
}

#[test]
fn the_attempt_log_keeps_the_newest_rows() {
    assert_eq!(progress::attempt_prune_below(0), None);
    assert_eq!(progress::attempt_prune_below(ATTEMPT_LOG_KEEP), None);
    assert_eq!(
        progress::attempt_prune_below(1024),
        Some(1024 + 1 - ATTEMPT_LOG_KEEP)
    );
    assert_eq!(progress::attempt_prune_below(1025), None);
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    for _ in 0..1300 {
        fx.progress("a", 1, ProgressOutcome::Pending, None);
    }
    let mut keys = Vec::new();
    fx.t.attempts_each_rev("a", |n, _| {
        keys.push(n);
        Ok(true)
    })
    .unwrap();
    // Pruned at 1280: rows 281..=1280 kept, then 1281..=1299 added.
    assert_eq!(keys.len(), 1019);
    assert_eq!((keys[0], *keys.last().unwrap()), (1299, 281));
    let newest = read::attempts(&fx.t, "a", 2).unwrap();
    assert_eq!(newest.len(), 2);
}

#[test]
fn a_failed_transaction_leaves_tables_and_records_as_they_were() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", Some("k")).unwrap();
    let before = fx.record("a");
    let req = req("a", "y", None, fx.now);
    let r: Result<(), StoreError> = fx.tx(|r, t, now, ch| {
        r.enqueue(t, req, now, ch)??;
        Err(StoreError::DiskFull)
    });
    assert_eq!(r, Err(StoreError::DiskFull));
    assert_eq!(fx.record("a"), before);
    assert_eq!(
        fx.rules.endpoint("a"),
        Some(&before),
        "the cache is undone too"
    );
    assert_eq!(fx.pending_seqs("a"), [1]);
    // A created endpoint that fails is forgotten.
    let cfg = config();
    let r: Result<(), StoreError> = fx.tx(|r, t, now, ch| {
        r.put_endpoint(t, "new".into(), cfg, now, ch)??;
        Err(StoreError::DiskFull)
    });
    assert!(r.is_err());
    assert!(fx.rules.endpoint("new").is_none());
    assert!(read::endpoint(&fx.t, "new").unwrap().is_none());
}

#[test]
fn set_paused_and_updating_an_endpoint_keep_its_counters() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    fx.now += 5;
    let rec = fx
        .tx(|r, _, now, ch| r.set_paused("a".into(), true, now, ch))
        .unwrap();
    assert!(rec.paused && rec.updated_ms == fx.now);
    let mut cfg = config();
    cfg.max_in_flight = 4;
    let (rec, created) = fx
        .tx(|r, t, now, ch| r.put_endpoint(t, "a".into(), cfg, now, ch))
        .unwrap();
    assert!(!created);
    assert_eq!((rec.next_seq, rec.pending, rec.paused), (2, 1, true));
    assert_eq!(rec.config.max_in_flight, 4);
    let r = fx.tx(|r, _, now, ch| r.set_paused("nope".into(), true, now, ch));
    assert_eq!(r, Err(StoreError::EndpointNotFound("nope".into())));
}

#[test]
fn channels_need_their_endpoint_and_keep_their_creation_time() {
    let mut fx = Fx::new();
    let cfg = |ep: &str| ChannelConfig {
        endpoint: ep.into(),
        secret: None,
        rate_limit: 10,
        burst: 10,
    };
    let c = cfg("a");
    let r = fx.tx(|r, t, now, _| r.put_channel(t, "ch".into(), c, now));
    assert_eq!(r, Err(StoreError::EndpointNotFound("a".into())));
    fx.put("a");
    let c = cfg("a");
    let (rec, created) = fx
        .tx(|r, t, now, _| r.put_channel(t, "ch".into(), c, now))
        .unwrap();
    assert!(created);
    fx.now += 10;
    let c = cfg("a");
    let (again, created) = fx
        .tx(|r, t, now, _| r.put_channel(t, "ch".into(), c, now))
        .unwrap();
    assert!(!created);
    assert_eq!(
        (again.created_ms, again.updated_ms),
        (rec.created_ms, fx.now)
    );
    assert_eq!(read::channels(&fx.t).unwrap().len(), 1);
    fx.tx(|r, t, _, _| r.delete_channel(t, "ch".into()))
        .unwrap();
    assert_eq!(
        fx.tx(|r, t, _, _| r.delete_channel(t, "ch".into())),
        Err(StoreError::ChannelNotFound("ch".into()))
    );
}

#[test]
fn reads_skip_what_does_not_decode() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    fx.send("a", "y", None).unwrap();
    fx.t.event_put("a", 1, b"bad").unwrap();
    fx.t.progress_put("a", 2, b"\xff\xff\xff\xff\xff\xff")
        .unwrap();
    fx.t.commit();
    let l = read::load_events(&fx.t, "a", 0, 10).unwrap();
    assert_eq!(l.corrupt.len(), 1);
    assert_eq!(l.corrupt[0].0, 1);
    assert_eq!(l.events.len(), 1);
    assert_eq!(l.events[0].progress, EventProgress::default());
    let l = read::load_events(&fx.t, "a", 0, 1).unwrap();
    assert_eq!(
        (l.corrupt.len(), l.events.len()),
        (1, 0),
        "corrupt rows count toward the limit"
    );
    // Put the rows right for the invariant check at the end.
    fx.tx(|r, t, now, ch| r.quarantine(t, "a", 1, "bad", now, ch).map(Ok))
        .unwrap();
    fx.t.progress_remove("a", 2).unwrap();
    fx.t.commit();
}
