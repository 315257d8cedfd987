//! The contract cases: each drives one backend through the `Journal` trait only and ends with
//! `H::done`, which checks the backend's invariants.

use std::sync::Arc;

use bytes::Bytes;
use courier::core::model::ChannelConfig;
use courier::store::{
    ENDPOINT_DELETED, IDEMPOTENCY_TTL_MS, ProgressOutcome, RECORD_CORRUPT, StoreError, StoredRecord,
};

use super::{H, Open, config, dead, kinds, update};
use courier::store::Limits;

pub async fn enqueue_and_load_in_order(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let (id, seq) = h.send("a", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(seq, i);
        ids.push(id);
    }
    assert_eq!(h.pending("a").await, 5);
    let l = h.j.load_events("a", 0, 10).await.unwrap();
    let got: Vec<&str> = l.events.iter().map(|e| e.meta.id.as_str()).collect();
    assert_eq!(got, ids);
    assert_eq!(l.events[2].body, Bytes::from_static(b"{\"n\":3}"));
    assert_eq!(l.events[2].meta.event_type.as_deref(), Some("t"));
    assert!(l.corrupt.is_empty());
    let l = h.j.load_events("a", 2, 2).await.unwrap();
    assert_eq!(l.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(h.j.load_events("a", 6, 10).await.unwrap().events.is_empty());
    assert!(
        h.j.load_events("zz", 0, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(
        kinds(&h.notices()),
        [
            "upserted a",
            "enqueued a/1",
            "enqueued a/2",
            "enqueued a/3",
            "enqueued a/4",
            "enqueued a/5"
        ]
    );
    h.done().await;
}

pub async fn enqueue_to_an_unknown_endpoint_is_refused(open: Open) {
    let h = H::open(open);
    let r = h.j.enqueue(h.ev("nope", "{}", None)).await;
    assert_eq!(r, Err(StoreError::EndpointNotFound("nope".into())));
    assert!(h.notices().is_empty());
    h.done().await;
}

pub async fn a_batch_is_all_or_nothing(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.put("b").await;
    h.notices();
    let bad = vec![
        h.ev("a", "1", None),
        h.ev("nope", "2", None),
        h.ev("b", "3", None),
    ];
    let r = h.j.enqueue_batch(bad).await;
    assert_eq!(r, Err(StoreError::EndpointNotFound("nope".into())));
    assert!(h.seqs("a").await.is_empty() && h.seqs("b").await.is_empty());
    assert!(h.notices().is_empty());
    let good = vec![
        h.ev("a", "1", None),
        h.ev("b", "2", None),
        h.ev("a", "3", None),
    ];
    let oks = h.j.enqueue_batch(good).await.unwrap();
    let seqs: Vec<(u64, bool)> = oks.iter().map(|o| (o.seq, o.duplicate)).collect();
    assert_eq!(seqs, [(1, false), (1, false), (2, false)]);
    assert_eq!(
        kinds(&h.notices()),
        ["enqueued a/1", "enqueued b/1", "enqueued a/2"]
    );
    assert_eq!((h.pending("a").await, h.pending("b").await), (2, 1));
    h.done().await;
}

pub async fn idempotency_duplicates_and_mismatches(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let first = h.j.enqueue(h.ev("a", "x", Some("k"))).await.unwrap();
    let again = h.j.enqueue(h.ev("a", "x", Some("k"))).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.id.as_str(), again.seq),
        (first.id.as_str(), first.seq)
    );
    let r = h.j.enqueue(h.ev("a", "other", Some("k"))).await;
    assert_eq!(
        r,
        Err(StoreError::IdempotencyMismatch {
            event_id: first.id.clone(),
            index: 0
        })
    );
    // In a batch: against the journal, and against an earlier line.
    let r =
        h.j.enqueue_batch(vec![h.ev("a", "n", None), h.ev("a", "other", Some("k"))])
            .await;
    assert_eq!(
        r,
        Err(StoreError::IdempotencyMismatch {
            event_id: first.id.clone(),
            index: 1
        })
    );
    let lines = vec![h.ev("a", "p", Some("k2")), h.ev("a", "q", Some("k2"))];
    let line0 = lines[0].meta.id.clone();
    let r = h.j.enqueue_batch(lines).await;
    assert_eq!(
        r,
        Err(StoreError::IdempotencyMismatch {
            event_id: line0,
            index: 1
        })
    );
    let oks =
        h.j.enqueue_batch(vec![
            h.ev("a", "p", Some("k3")),
            h.ev("a", "p", Some("k3")),
            h.ev("a", "x", Some("k")),
        ])
        .await
        .unwrap();
    let got: Vec<(u64, bool)> = oks.iter().map(|o| (o.seq, o.duplicate)).collect();
    assert_eq!(got, [(2, false), (2, true), (1, true)]);
    assert_eq!(h.seqs("a").await, [1, 2]);
    h.done().await;
}

pub async fn the_idempotency_window_expires(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let first = h.j.enqueue(h.ev("a", "x", Some("k"))).await.unwrap();
    h.advance(IDEMPOTENCY_TTL_MS - 1);
    assert!(
        h.j.enqueue(h.ev("a", "y", Some("k"))).await.is_err(),
        "still inside the window"
    );
    h.advance(1);
    let fresh = h.j.enqueue(h.ev("a", "y", Some("k"))).await.unwrap();
    assert!(!fresh.duplicate);
    assert_ne!(fresh.id, first.id);
    assert_eq!(fresh.seq, 2);
    h.done().await;
}

pub async fn sequence_numbers_continue_after_delete_and_recreate(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    for _ in 0..3 {
        h.send("a", "{}").await;
    }
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    assert!(h.j.endpoint("a").await.unwrap().is_none());
    let (rec, created) = h.j.put_endpoint("a".into(), config()).await.unwrap();
    assert!(created);
    assert_eq!((rec.next_seq, rec.pending), (4, 0));
    assert_eq!(h.send("a", "{}").await.1, 4);
    h.done().await;
}

pub async fn forced_delete_dead_letters_the_backlog_in_order(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.put("b").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(h.send("a", &i.to_string()).await.0);
    }
    h.send("b", "other").await;
    h.progress(update("a", &ids[1], 2, 2, ProgressOutcome::Pending))
        .await;
    h.notices();
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    assert_eq!(kinds(&h.notices()), ["deleted a"]);
    let dl = h.j.dead_letters(Some("a")).await.unwrap();
    let got: Vec<(&str, u64, &str)> = dl
        .iter()
        .map(|d| (d.event_id.as_str(), d.seq, d.reason.as_str()))
        .collect();
    let want: Vec<(&str, u64, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u64 + 1, ENDPOINT_DELETED))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        dl[1].progress.attempts, 2,
        "progress goes with the dead letter"
    );
    let (_, rec) = h.j.dead_letter(&ids[3]).await.unwrap().unwrap();
    match rec {
        StoredRecord::Intact(r) => assert_eq!(r.body, Bytes::from_static(b"3")),
        StoredRecord::Corrupt { why, .. } => panic!("corrupt: {why}"),
    }
    assert!(h.j.attempts("a", 10).await.unwrap().is_empty());
    assert_eq!(h.seqs("b").await, [1], "other endpoints are untouched");
    assert_eq!(h.j.endpoints().await.unwrap().len(), 1);
    h.done().await;
}

pub async fn delete_with_a_backlog_is_refused_without_force(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.send("a", "{}").await;
    h.send("a", "{}").await;
    let r = h.j.delete_endpoint("a".into(), false).await;
    assert_eq!(
        r,
        Err(StoreError::EndpointNotEmpty {
            id: "a".into(),
            backlog: 2
        })
    );
    assert_eq!(h.seqs("a").await, [1, 2]);
    let r = h.j.delete_endpoint("nope".into(), false).await;
    assert_eq!(r, Err(StoreError::EndpointNotFound("nope".into())));
    h.put("empty").await;
    h.j.delete_endpoint("empty".into(), false).await.unwrap();
    assert!(h.j.dead_letters(None).await.unwrap().is_empty());
    h.done().await;
}

pub async fn progress_delivered_pending_dead_and_down(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    let (e2, _) = h.send("a", "2").await;
    let (e3, _) = h.send("a", "3").await;
    let mut u = update("a", &e1, 1, 1, ProgressOutcome::Pending);
    u.down = Some(true);
    h.progress(u).await;
    assert!(
        h.j.endpoint("a").await.unwrap().unwrap().down,
        "down is persisted"
    );
    let l = h.j.load_events("a", 1, 1).await.unwrap();
    assert_eq!(
        (l.events[0].progress.attempts, l.events[0].progress.failures),
        (1, 1)
    );
    let mut u = update("a", &e1, 1, 2, ProgressOutcome::Delivered);
    u.down = Some(false);
    h.progress(u).await;
    h.progress(update("a", &e2, 2, 1, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.pending, rec.down), (1, false));
    assert_eq!(h.seqs("a").await, [3]);
    let dl = h.j.dead_letters(None).await.unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!((dl[0].event_id.as_str(), dl[0].seq), (e2.as_str(), 2));
    assert_eq!(dl[0].reason, "MAX_RETRIES_EXCEEDED");
    assert_eq!(dl[0].progress.attempts, 1);
    // A late result for an event already delivered only logs the attempt.
    h.progress(update("a", &e1, 1, 3, ProgressOutcome::Delivered))
        .await;
    assert_eq!(h.pending("a").await, 1);
    // A result for a deleted endpoint is dropped.
    h.progress(update("gone", &e3, 1, 1, ProgressOutcome::Delivered))
        .await;
    let log = h.j.attempts("a", 10).await.unwrap();
    let got: Vec<(&str, u32)> = log
        .iter()
        .map(|a| (a.event_id.as_str(), a.attempt))
        .collect();
    assert_eq!(
        got,
        [
            (e1.as_str(), 3),
            (e2.as_str(), 1),
            (e1.as_str(), 2),
            (e1.as_str(), 1)
        ]
    );
    h.done().await;
}

pub async fn replay_returns_to_the_original_place(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    h.send("a", "2").await;
    h.progress(update("a", &e1, 1, 3, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    h.send("a", "3").await;
    h.notices();
    let (ep, seq) = h.j.replay(e1.clone()).await.unwrap();
    assert_eq!((ep.as_str(), seq), ("a", 1));
    assert_eq!(kinds(&h.notices()), ["replayed a/1"]);
    assert_eq!(h.seqs("a").await, [1, 2, 3]);
    assert_eq!(h.pending("a").await, 3);
    let l = h.j.load_events("a", 1, 1).await.unwrap();
    assert_eq!(l.events[0].meta.id, e1);
    let p = &l.events[0].progress;
    assert_eq!(
        (p.attempts, p.failures),
        (3, 0),
        "attempt numbers continue, failures reset"
    );
    assert!(h.j.dead_letters(None).await.unwrap().is_empty());
    assert_eq!(
        h.j.replay(e1.clone()).await,
        Err(StoreError::DeadLetterNotFound(e1.clone()))
    );
    // A dead letter whose endpoint is gone cannot go back.
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    assert_eq!(
        h.j.replay(e1.clone()).await,
        Err(StoreError::EndpointNotFound("a".into()))
    );
    // Re-created, the endpoint takes it back at its old place, below the new events.
    h.put("a").await;
    let (_, new_seq) = h.send("a", "4").await;
    assert_eq!(new_seq, 4);
    assert_eq!(h.j.replay(e1.clone()).await.unwrap().1, 1);
    assert_eq!(h.seqs("a").await, [1, 4]);
    h.done().await;
}

pub async fn purge_removes_a_dead_letter(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    h.progress(update("a", &e1, 1, 1, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    h.j.purge(e1.clone()).await.unwrap();
    assert!(h.j.dead_letter(&e1).await.unwrap().is_none());
    assert!(h.j.dead_letters(None).await.unwrap().is_empty());
    assert_eq!(
        h.j.purge(e1.clone()).await,
        Err(StoreError::DeadLetterNotFound(e1))
    );
    h.done().await;
}

pub async fn dead_letters_filter_and_order(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.put("b").await;
    let mut all = Vec::new();
    for ep in ["a", "b", "a", "b", "a"] {
        let (id, seq) = h.send(ep, "x").await;
        all.push((ep, id, seq));
    }
    for (ep, id, seq) in all.iter().rev() {
        h.progress(update(ep, id, *seq, 1, dead("MAX_RETRIES_EXCEEDED")))
            .await;
    }
    let ids = |v: Vec<courier::core::model::DeadLetter>| -> Vec<String> {
        v.into_iter().map(|d| d.event_id).collect()
    };
    let everything: Vec<String> = all.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(
        ids(h.j.dead_letters(None).await.unwrap()),
        everything,
        "oldest event first"
    );
    let of_a: Vec<String> = all
        .iter()
        .filter(|(ep, _, _)| *ep == "a")
        .map(|(_, id, _)| id.clone())
        .collect();
    assert_eq!(ids(h.j.dead_letters(Some("a")).await.unwrap()), of_a);
    assert!(h.j.dead_letters(Some("zz")).await.unwrap().is_empty());
    h.done().await;
}

pub async fn attempts_newest_first_and_retention(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    for n in 1..=1100u32 {
        h.j.record_progress(update("a", &e1, 1, n, ProgressOutcome::Pending));
    }
    h.j.sync().await.unwrap();
    let log = h.j.attempts("a", 3).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1100, 1099, 1098]
    );
    let all = h.j.attempts("a", usize::MAX).await.unwrap();
    // Rows 0..1100 were written into a ring of 1000 slots: the newest 1000 are kept.
    assert_eq!(all.len(), 1000);
    assert_eq!(all.last().map(|a| a.attempt), Some(101));
    assert!(h.j.attempts("zz", 3).await.unwrap().is_empty());
    h.done().await;
}

pub async fn repeated_probe_failures_are_one_attempt_row(open: Open) {
    use courier::core::model::AttemptKind;
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    let probe = |n: u32| {
        let mut u = update("a", &e1, 1, n, ProgressOutcome::Pending);
        u.attempt.kind = AttemptKind::Probe;
        u.attempt.started_ms = 1_000 * u64::from(n);
        u.down = Some(true);
        u
    };
    for n in 1..=200 {
        h.j.record_progress(probe(n));
    }
    h.j.sync().await.unwrap();
    let log = h.j.attempts("a", 10).await.unwrap();
    assert_eq!(log.len(), 1, "one row for 200 identical probe failures");
    assert_eq!(
        (log[0].attempt, log[0].repeats, log[0].last_ms),
        (1, 199, 200_000)
    );
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.next_attempt_log, rec.down), (1, true));
    // Each probe still counts as an attempt of the event.
    let l = h.j.load_events("a", 0, 1).await.unwrap();
    assert_eq!(l.events[0].progress.attempts, 200);
    // Another answer starts a row of its own.
    let mut other = probe(201);
    other.attempt.status = Some(502);
    h.j.record_progress(other);
    h.j.sync().await.unwrap();
    let log = h.j.attempts("a", 10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|a| (a.attempt, a.repeats))
            .collect::<Vec<_>>(),
        [(201, 0), (1, 199)]
    );
    h.done().await;
}

pub async fn channels_need_their_endpoint(open: Open) {
    let h = H::open(open);
    let cfg = |ep: &str| ChannelConfig {
        endpoint: ep.into(),
        secret: None,
        rate_limit: 100,
        burst: 100,
        security: Default::default(),
    };
    assert_eq!(
        h.j.put_channel("c1".into(), cfg("a")).await,
        Err(StoreError::EndpointNotFound("a".into()))
    );
    h.put("a").await;
    let (c, created) = h.j.put_channel("c2".into(), cfg("a")).await.unwrap();
    assert!(created);
    h.advance(5);
    let (again, created) = h.j.put_channel("c2".into(), cfg("a")).await.unwrap();
    assert!(!created);
    assert_eq!(again.created_ms, c.created_ms);
    assert_eq!(again.updated_ms, c.created_ms + 5);
    h.j.put_channel("c1".into(), cfg("a")).await.unwrap();
    let ids: Vec<String> =
        h.j.channels()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
    assert_eq!(ids, ["c1", "c2"]);
    h.j.delete_channel("c1".into()).await.unwrap();
    assert_eq!(
        h.j.delete_channel("c1".into()).await,
        Err(StoreError::ChannelNotFound("c1".into()))
    );
    assert_eq!(h.j.channels().await.unwrap().len(), 1);
    h.done().await;
}

pub async fn endpoints_put_pause_and_list(open: Open) {
    let h = H::open(open);
    for id in ["b", "c", "a"] {
        let (_, created) = h.j.put_endpoint(id.into(), config()).await.unwrap();
        assert!(created);
    }
    h.send("a", "x").await;
    h.advance(7);
    let rec = h.j.set_paused("a".into(), true).await.unwrap();
    assert!(rec.paused);
    assert_eq!(rec.updated_ms, rec.created_ms + 7);
    let mut cfg = config();
    cfg.max_in_flight = 8;
    let (rec, created) = h.j.put_endpoint("a".into(), cfg.clone()).await.unwrap();
    assert!(!created);
    assert_eq!((rec.next_seq, rec.pending, rec.paused), (2, 1, true));
    assert_eq!(h.j.endpoint("a").await.unwrap().unwrap().config, cfg);
    assert_eq!(
        h.j.set_paused("nope".into(), true).await,
        Err(StoreError::EndpointNotFound("nope".into()))
    );
    let ids: Vec<String> =
        h.j.endpoints()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(h.j.endpoint("nope").await.unwrap().is_none());
    h.done().await;
}

pub async fn quarantine_sets_a_record_aside(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.send("a", "1").await;
    h.send("a", "2").await;
    h.j.quarantine(Arc::from("a"), 1, "checksum mismatch".into());
    h.j.sync().await.unwrap();
    assert_eq!(h.seqs("a").await, [2]);
    assert_eq!(h.pending("a").await, 1);
    let dl = h.j.dead_letters(Some("a")).await.unwrap();
    assert_eq!(
        (dl.len(), dl[0].seq, dl[0].reason.as_str()),
        (1, 1, RECORD_CORRUPT)
    );
    let err = dl[0].progress.last_error.as_ref().unwrap();
    assert_eq!(err.code, RECORD_CORRUPT);
    assert!(err.message.contains("checksum mismatch"), "{}", err.message);
    assert!(h.j.dead_letter(&dl[0].event_id).await.unwrap().is_some());
    // Gone meanwhile: nothing happens.
    h.j.quarantine(Arc::from("a"), 1, "again".into());
    h.j.quarantine(Arc::from("zz"), 1, "again".into());
    h.j.sync().await.unwrap();
    assert_eq!(h.j.dead_letters(None).await.unwrap().len(), 1);
    h.done().await;
}

pub async fn notices_come_in_commit_order(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (e1, _) = h.send("a", "1").await;
    h.j.set_paused("a".into(), true).await.unwrap();
    h.progress(update("a", &e1, 1, 1, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    h.j.replay(e1).await.unwrap();
    h.j.enqueue_batch(vec![h.ev("a", "2", None), h.ev("a", "3", None)])
        .await
        .unwrap();
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    assert_eq!(
        kinds(&h.notices()),
        [
            "upserted a",
            "enqueued a/1",
            "upserted a",
            "replayed a/1",
            "enqueued a/2",
            "enqueued a/3",
            "deleted a"
        ]
    );
    h.done().await;
}

pub async fn sync_and_close(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.send("a", "1").await;
    h.j.sync().await.unwrap();
    h.j.close().await.unwrap();
    assert_eq!(
        h.j.enqueue(h.ev("a", "2", None)).await,
        Err(StoreError::Stopped)
    );
    assert_eq!(h.j.sync().await, Err(StoreError::Stopped));
    assert_eq!(h.j.close().await, Err(StoreError::Stopped));
    // What was accepted before is still there to read.
    assert_eq!(h.seqs("a").await, [1]);
    h.done().await;
}

/// Tests and calls go to the attempt log only; a 2xx sets `connected_at` (refreshed at most
/// once a minute, cleared by a URL change); failures are kept as `last_error`; state changes
/// set `state_since`.
pub async fn outside_attempts_connected_at_and_last_error(open: Open) {
    use courier::core::model::{AttemptKind, CONNECTED_REFRESH_MS};
    let h = H::open(open);
    let t0 = h.now.load(std::sync::atomic::Ordering::SeqCst);
    h.put("a").await;
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.state_since_ms, rec.connected_at_ms), (Some(t0), None));
    let (e1, _) = h.send("a", "1").await;
    let mut test = update("a", "evt_ping", 0, 1, ProgressOutcome::Pending).attempt;
    test.status = Some(200);
    test.error = None;
    test.kind = AttemptKind::Test;
    test.answer = Some("pong".into());
    h.advance(5);
    h.j.log_attempt("a".into(), test.clone()).await.unwrap();
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!(rec.connected_at_ms, Some(t0 + 5));
    assert_eq!(rec.pending, 1, "the backlog is untouched");
    let log = h.j.attempts("a", 10).await.unwrap();
    assert_eq!(log, [test.clone()], "kind and answer are kept");
    let l = h.j.load_events("a", 0, 10).await.unwrap();
    assert_eq!(
        l.events[0].progress.attempts, 0,
        "no event's progress changes"
    );
    // A delivery within the minute leaves connected_at; one after it moves it.
    let mut ok = update("a", &e1, 1, 1, ProgressOutcome::Pending);
    ok.attempt.status = Some(204);
    ok.attempt.error = None;
    h.advance(1_000);
    h.progress(ok.clone()).await;
    assert_eq!(
        h.j.endpoint("a").await.unwrap().unwrap().connected_at_ms,
        Some(t0 + 5)
    );
    h.advance(CONNECTED_REFRESH_MS);
    h.progress(ok).await;
    let t1 = t0 + 5 + 1_000 + CONNECTED_REFRESH_MS;
    assert_eq!(
        h.j.endpoint("a").await.unwrap().unwrap().connected_at_ms,
        Some(t1)
    );
    // A failure that puts the endpoint down: kept as last_error, and the state's start.
    h.advance(7);
    let mut u = update("a", &e1, 1, 2, ProgressOutcome::Pending);
    u.down = Some(true);
    h.progress(u).await;
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    let err = rec.last_error.clone().unwrap();
    assert_eq!(
        (err.code.as_str(), err.status, err.at_ms),
        ("HTTP_5XX", Some(503), t1 + 7)
    );
    assert_eq!((rec.down, rec.state_since_ms), (true, Some(t1 + 7)));
    h.advance(3);
    h.j.set_paused("a".into(), true).await.unwrap();
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!(rec.state_since_ms, Some(t1 + 10));
    // The same URL again keeps connected_at; another URL clears it.
    h.j.put_endpoint("a".into(), config()).await.unwrap();
    assert_eq!(
        h.j.endpoint("a").await.unwrap().unwrap().connected_at_ms,
        Some(t1)
    );
    let mut moved = config();
    moved.url = "https://elsewhere.test/hook".into();
    let (rec, _) = h.j.put_endpoint("a".into(), moved).await.unwrap();
    assert_eq!(rec.connected_at_ms, None);
    assert_eq!(rec.last_error.map(|e| e.code), Some("HTTP_5XX".into()));
    assert_eq!(
        h.j.log_attempt("gone".into(), test).await,
        Err(StoreError::EndpointNotFound("gone".into()))
    );
    h.done().await;
}
pub use super::bulk::*;
pub use super::log::*;

/// At `max_backlog` pending events an endpoint refuses more (a batch whole), others are
/// unaffected, the crossing is told once, and intake resumes once an event left.
pub async fn the_backlog_limit_refuses_intake_until_it_drains(open: Open) {
    let h = H::open_with(
        open,
        Limits {
            max_backlog: 2,
            ..Default::default()
        },
    );
    h.put("a").await;
    h.put("b").await;
    let (first, _) = h.send("a", "1").await;
    h.send("a", "2").await;
    h.notices();
    let full = StoreError::BacklogFull {
        id: "a".into(),
        limit: 2,
    };
    assert_eq!(h.j.enqueue(h.ev("a", "3", None)).await, Err(full.clone()));
    assert_eq!(h.j.enqueue(h.ev("a", "4", None)).await, Err(full.clone()));
    let batch = vec![h.ev("b", "x", None), h.ev("a", "5", None)];
    assert_eq!(h.j.enqueue_batch(batch).await, Err(full.clone()));
    assert_eq!(h.seqs("a").await, [1, 2], "nothing dropped, nothing added");
    assert!(
        h.seqs("b").await.is_empty(),
        "the refused batch wrote nothing"
    );
    h.send("b", "y").await;
    assert_eq!(
        kinds(&h.notices()),
        ["full a/2", "enqueued b/1"],
        "told once per crossing"
    );
    // A batch that would cross the limit is refused even when the endpoint is below it.
    h.progress(update("a", &first, 1, 1, ProgressOutcome::Delivered))
        .await;
    let over = vec![h.ev("a", "6", None), h.ev("a", "7", None)];
    assert_eq!(h.j.enqueue_batch(over).await, Err(full.clone()));
    h.notices();
    let (_, seq) = h.send("a", "8").await;
    assert_eq!(seq, 3);
    assert_eq!(h.pending("a").await, 2);
    // Full again: a new crossing, told again.
    assert_eq!(h.j.enqueue(h.ev("a", "9", None)).await, Err(full));
    assert_eq!(kinds(&h.notices()), ["enqueued a/3", "full a/2"]);
    h.done().await;
}
