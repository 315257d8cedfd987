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
        max_backlog: None,
        security: Default::default(),
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
            kind: Default::default(),
            answer: None,
            repeats: 0,
            last_ms: 0,
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

mod attempt_log;
mod writes;
