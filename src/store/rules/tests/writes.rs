//! The rules' idempotency window, batches, progress, the attempt log, failed transactions,
//! endpoint updates, channels and reads, over the in-memory tables (fixture in the parent).

use super::*;

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
    // A ring of 1000 slots: attempt n at n % 1000, so every slot is used once 1300 were made.
    assert_eq!(keys.len(), ATTEMPT_LOG_KEEP as usize);
    assert_eq!((keys[0], *keys.last().unwrap()), (ATTEMPT_LOG_KEEP - 1, 0));
    assert_eq!(fx.record("a").next_attempt_log, 1300);
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
        security: Default::default(),
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
    // Corrupt row 1 in place (same length, so the byte counts stay right): its checksum fails.
    let mut bad = fx.t.event_get("a", 1, <[u8]>::to_vec).unwrap().unwrap();
    *bad.last_mut().unwrap() ^= 0xff;
    fx.t.event_put("a", 1, &bad).unwrap();
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
