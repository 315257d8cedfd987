//! The contract cases of the retained log: delivered events stay (retained, not pending) until
//! retention removes them; deliveries out of order; back-fill by time window; the journal-bytes
//! and per-endpoint backlog limits. Each ends with `H::done` (the backend's invariants, the
//! log's included: cursor, `done`, `reopened`, byte counts).

use courier::store::{BackfillReq, Limits, Notice, StoreError};

use super::{H, Open, config, dead, kinds, update};
use courier::store::ProgressOutcome::Delivered;

fn backfill(ep: &str, since_ms: u64, until_ms: Option<u64>) -> BackfillReq {
    BackfillReq {
        endpoint: ep.into(),
        since_ms,
        until_ms,
        after: None,
        limit: 1000,
    }
}

/// The bytes the journal counts for one event of the 10-byte body these cases send.
async fn record_bytes(open: Open) -> u64 {
    let probe = H::open(open);
    probe.put("a").await;
    probe.send("a", "0123456789").await;
    let one = probe.j.held_bytes();
    probe.done().await;
    one
}

/// A delivered event is no longer pending (not loaded, not counted) but its bytes stay in the
/// log; in order, the cursor moves past it.
pub async fn delivered_events_are_retained_not_pending(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (a1, _) = h.send("a", "one").await;
    let (a2, _) = h.send("a", "two").await;
    h.send("a", "three").await;
    let held = h.j.held_bytes();
    assert!(held > 0);
    h.progress(update("a", &a1, 1, 1, Delivered)).await;
    h.progress(update("a", &a2, 2, 1, Delivered)).await;
    // A repeated result changes nothing.
    h.progress(update("a", &a2, 2, 1, Delivered)).await;
    assert_eq!(h.seqs("a").await, [3]);
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.pending, rec.log.cursor, rec.log.done), (1, 3, 0));
    assert_eq!(h.j.held_bytes(), held, "delivered events are kept");
    assert!(rec.log.pending_bytes < rec.log.log_bytes);
    h.done().await;
}

/// Deliveries out of order leave `done` rows that the cursor takes back when the head goes.
pub async fn deliveries_out_of_order_fold_into_the_cursor(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(h.send("a", &format!("e{n}")).await.0);
    }
    h.progress(update("a", &ids[2], 3, 1, Delivered)).await;
    h.progress(update("a", &ids[1], 2, 1, Delivered)).await;
    assert_eq!(h.seqs("a").await, [1, 4, 5]);
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.pending, rec.log.cursor, rec.log.done), (3, 1, 2));
    // The head is dead-lettered: a hole; then 4 is delivered past the hole and the done rows.
    h.progress(update("a", &ids[0], 1, 3, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    assert_eq!(h.seqs("a").await, [4, 5]);
    h.progress(update("a", &ids[3], 4, 1, Delivered)).await;
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!((rec.pending, rec.log.cursor, rec.log.done), (1, 5, 0));
    assert_eq!(h.seqs("a").await, [5]);
    h.done().await;
}

/// A dead letter replayed below the cursor is pending again at its place, and delivered once.
pub async fn a_replay_below_the_cursor_is_reopened(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (d, _) = h.send("a", "dies").await;
    let (ok, _) = h.send("a", "lives").await;
    h.progress(update("a", &d, 1, 3, dead("MAX_RETRIES_EXCEEDED")))
        .await;
    h.progress(update("a", &ok, 2, 1, Delivered)).await;
    assert_eq!(h.j.replay(d.clone()).await.unwrap(), ("a".into(), 1));
    let loaded = h.j.load_events("a", 0, 10).await.unwrap();
    assert_eq!(loaded.events.len(), 1);
    assert_eq!((loaded.events[0].seq, loaded.events[0].replay), (1, false));
    assert_eq!(h.pending("a").await, 1);
    h.progress(update("a", &d, 1, 4, Delivered)).await;
    assert_eq!(h.pending("a").await, 0);
    assert!(h.seqs("a").await.is_empty());
    h.done().await;
}

/// Back-fill reopens exactly the delivered events of the window, in order, marked as replays,
/// ahead of what is still pending (which it counts and leaves); chunks go on with `next`.
pub async fn backfill_reopens_the_window(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let t0 = h.now();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(h.send("a", &format!("e{n}")).await.0);
        h.advance(10);
    }
    // Delivered: 1..=3; pending: 4 (t0+30), 5 (t0+40).
    for (i, id) in ids.iter().take(3).enumerate() {
        h.progress(update("a", id, i as u64 + 1, 1, Delivered))
            .await;
    }
    h.notices();
    let done =
        h.j.backfill(backfill("a", t0 + 5, Some(t0 + 35)))
            .await
            .unwrap();
    assert_eq!(
        (done.done, done.pending, done.next, done.cut),
        (2, 1, None, false)
    );
    assert_eq!(done.retained_since_ms, Some(t0));
    let n = h.notices();
    assert_eq!(kinds(&n), ["replayed a/2", "replayed a/3"]);
    assert!(
        n.iter()
            .all(|n| matches!(n, Notice::Replayed { event, .. } if event.replay))
    );
    let loaded = h.j.load_events("a", 0, 10).await.unwrap();
    let got: Vec<(u64, bool, &str)> = loaded
        .events
        .iter()
        .map(|e| (e.seq, e.replay, e.meta.id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, true, ids[1].as_str()),
            (3, true, ids[2].as_str()),
            (4, false, ids[3].as_str()),
            (5, false, ids[4].as_str())
        ]
    );
    assert_eq!(h.pending("a").await, 4);
    // A second back-fill of the same window finds them pending already.
    let again =
        h.j.backfill(backfill("a", t0 + 5, Some(t0 + 35)))
            .await
            .unwrap();
    assert_eq!((again.done, again.pending), (0, 3));
    // Delivered again, they are retained again.
    h.progress(update("a", &ids[1], 2, 1, Delivered)).await;
    h.progress(update("a", &ids[2], 3, 1, Delivered)).await;
    assert_eq!(h.seqs("a").await, [4, 5]);
    // In chunks of one: `next` says where to go on.
    let mut req = backfill("a", t0, None);
    req.limit = 1;
    let first = h.j.backfill(req.clone()).await.unwrap();
    assert_eq!((first.done, first.next), (1, Some(1)));
    req.after = first.next;
    let second = h.j.backfill(req).await.unwrap();
    assert_eq!((second.done, second.next), (1, Some(2)));
    h.done().await;
}

/// Retention removes delivered events older than it (never pending ones), and a back-fill of
/// a window it removed says how far back the endpoint can go.
pub async fn retention_removes_old_delivered_events(open: Open) {
    let h = H::open_with(
        open,
        Limits {
            retention_ms: 1_000,
            ..Default::default()
        },
    );
    h.put("a").await;
    let t0 = h.now();
    let (a1, _) = h.send("a", "old").await;
    let (a2, _) = h.send("a", "old too").await;
    h.advance(100);
    h.send("a", "pending").await;
    let held = h.j.held_bytes();
    h.progress(update("a", &a1, 1, 1, Delivered)).await;
    h.progress(update("a", &a2, 2, 1, Delivered)).await;
    assert_eq!(h.j.sweep().await.unwrap().removed, 0, "not old yet");
    h.advance(2_000);
    let swept = h.j.sweep().await.unwrap();
    assert_eq!((swept.removed, swept.more), (2, false));
    assert_eq!(h.j.held_bytes(), held - swept.bytes);
    assert_eq!(h.seqs("a").await, [3], "the pending event stays");
    assert_eq!(h.j.sweep().await.unwrap().removed, 0);
    let gone = h.j.backfill(backfill("a", t0, Some(t0 + 50))).await;
    assert_eq!(
        gone,
        Err(StoreError::WindowGone {
            id: "a".into(),
            retained_since_ms: Some(t0 + 100)
        })
    );
    let part = h.j.backfill(backfill("a", t0, None)).await.unwrap();
    assert_eq!((part.done, part.pending, part.cut), (0, 1, true));
    // A window retention never touched is no error, even when it holds nothing.
    let later = h.j.backfill(backfill("a", t0 + 5_000, None)).await.unwrap();
    assert_eq!((later.done, later.cut), (0, false));
    h.done().await;
}

/// Past `max_journal_bytes` the endpoint holding the bytes is refused (507), another goes on
/// within the headroom, and intake comes back as the backlog drains; retained events give way.
pub async fn the_journal_bytes_limit_refuses_the_endpoint_that_fills_it(open: Open) {
    let one = record_bytes(open).await;

    let h = H::open_with(
        open,
        Limits {
            max_journal_bytes: Some(one * 20),
            ..Default::default()
        },
    );
    h.put("hog").await;
    h.put("ok").await;
    let mut accepted = Vec::new();
    let refused = loop {
        match h.j.enqueue(h.ev("hog", "0123456789", None)).await {
            Ok(ok) => accepted.push(ok),
            Err(e) => break e,
        }
        assert!(accepted.len() < 40, "never refused");
    };
    assert!(
        matches!(&refused, StoreError::JournalFull { id, .. } if id == "hog"),
        "{refused:?}"
    );
    assert_eq!(
        accepted.len(),
        18,
        "refused past nine tenths, holding more than its share"
    );
    // The other endpoint is below its share: it goes on.
    h.send("ok", "0123456789").await;
    // Nothing accepted was dropped.
    assert_eq!(h.seqs("hog").await.len(), 18);
    // Delivering the hog's backlog makes room again (retained bytes do not count).
    for ok in &accepted[..10] {
        h.progress(update("hog", &ok.id, ok.seq, 1, Delivered))
            .await;
    }
    h.send("hog", "0123456789").await;
    h.done().await;
}

/// Over `max_journal_bytes`, retention removes delivered events regardless of their age.
pub async fn retained_events_give_way_to_the_journal_limit(open: Open) {
    let one = record_bytes(open).await;

    let h = H::open_with(
        open,
        Limits {
            max_journal_bytes: Some(one * 5),
            ..Default::default()
        },
    );
    h.put("a").await;
    for _ in 0..4 {
        let (id, seq) = h.send("a", "0123456789").await;
        h.progress(update("a", &id, seq, 1, Delivered)).await;
    }
    for _ in 0..3 {
        h.send("a", "0123456789").await;
    }
    assert_eq!(h.j.held_bytes(), one * 7);
    let swept = h.j.sweep().await.unwrap();
    assert_eq!(swept.removed, 2, "just enough to be within the limit");
    assert_eq!(h.j.held_bytes(), one * 5);
    assert_eq!(h.seqs("a").await, [5, 6, 7]);
    h.done().await;
}

/// An endpoint's own `max_backlog` overrides the daemon's.
pub async fn an_endpoints_own_max_backlog(open: Open) {
    let h = H::open(open);
    let mut small = config();
    small.max_backlog = Some(1);
    let (rec, _) = h.j.put_endpoint("a".into(), small).await.unwrap();
    assert_eq!(rec.config.max_backlog, Some(1));
    h.put("b").await;
    h.send("a", "1").await;
    assert_eq!(
        h.j.enqueue(h.ev("a", "2", None)).await,
        Err(StoreError::BacklogFull {
            id: "a".into(),
            limit: 1
        })
    );
    h.send("b", "1").await;
    h.send("b", "2").await;
    // Kept across a read of the record.
    let rec = h.j.endpoint("a").await.unwrap().unwrap();
    assert_eq!(rec.config.max_backlog, Some(1));
    h.done().await;
}

/// A forced delete dead-letters the pending events only; the retained ones go with the log.
pub async fn a_forced_delete_takes_the_retained_log(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    let (a1, _) = h.send("a", "delivered").await;
    h.send("a", "pending").await;
    h.progress(update("a", &a1, 1, 1, Delivered)).await;
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    let dead = h.j.dead_letters(Some("a")).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(h.j.held_bytes(), 0);
    h.done().await;
}
