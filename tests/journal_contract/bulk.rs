//! The contract cases of dead letters in bulk: filtered pages with a cursor, replay and purge
//! by filter. Each ends with `H::done` (the backend's invariants, the index's included).

use std::sync::Arc;

use courier::core::dead_filter::{Cursor, DeadFilter};
use courier::core::model::DeadLetter;
use courier::store::{DeadQuery, ENDPOINT_DELETED, Journal, Notice, RECORD_CORRUPT, StoreError};

use super::{H, Open, dead, kinds, update};

const MRE: &str = "MAX_RETRIES_EXCEEDED";

/// Walks every page of `filter`, `limit` at a time; `between` runs after each page.
async fn walk(
    j: &Arc<dyn Journal>,
    filter: &DeadFilter,
    limit: usize,
    mut between: impl AsyncFnMut(usize),
) -> Vec<DeadLetter> {
    let mut out = Vec::new();
    let mut after = None;
    for page_no in 0.. {
        let page = j
            .dead_letter_page(DeadQuery {
                filter: filter.clone(),
                after,
                limit,
                records: false,
            })
            .await
            .unwrap();
        assert!(page.entries.len() <= limit);
        out.extend(page.entries.into_iter().map(|e| e.letter));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
        between(page_no).await;
    }
    out
}

fn ids(v: &[DeadLetter]) -> Vec<String> {
    v.iter().map(|d| d.event_id.clone()).collect()
}

/// Dead-letters every pending event of `ep` with `reason`, one ms apart; answers their ids.
async fn kill_all(h: &H, ep: &str, reason: &str) -> Vec<String> {
    let l = h.j.load_events(ep, 0, usize::MAX).await.unwrap();
    let mut out = Vec::new();
    for e in l.events {
        h.advance(1);
        h.progress(update(ep, &e.meta.id, e.seq, 1, dead(reason)))
            .await;
        out.push(e.meta.id.to_string());
    }
    out
}

pub async fn dead_letter_pages_walk_everything_once(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.put("b").await;
    for i in 0..23 {
        h.send(if i % 3 == 0 { "b" } else { "a" }, "x").await;
    }
    // Dead-lettered newest first: the event-id order and the dead_at order differ.
    let l = h.j.load_events("a", 0, usize::MAX).await.unwrap();
    for e in l.events.iter().rev() {
        h.advance(1);
        let reason = if e.seq % 2 == 0 {
            MRE
        } else {
            ENDPOINT_DELETED
        };
        h.progress(update("a", &e.meta.id, e.seq, 1, dead(reason)))
            .await;
    }
    kill_all(&h, "b", MRE).await;

    let of_a = DeadFilter::endpoint("a");
    let mut want_a = h.j.dead_letters(Some("a")).await.unwrap();
    want_a.sort_by_key(|d| d.seq);
    for limit in [1, 4, 1000] {
        let got = walk(&h.j, &of_a, limit, async |_| {}).await;
        assert_eq!(ids(&got), ids(&want_a), "by seq, limit {limit}");
    }
    let everything = h.j.dead_letters(None).await.unwrap();
    let got = walk(&h.j, &DeadFilter::default(), 5, async |_| {}).await;
    assert_eq!(
        ids(&got),
        ids(&everything),
        "by event id without an endpoint"
    );

    // Filters: reason, and the dead_at window (since inclusive, until exclusive).
    let mre_a = DeadFilter {
        reason: Some(MRE.into()),
        ..of_a.clone()
    };
    let got = walk(&h.j, &mre_a, 2, async |_| {}).await;
    let want: Vec<_> = want_a.iter().filter(|d| d.reason == MRE).cloned().collect();
    assert_eq!(ids(&got), ids(&want));
    let mut times: Vec<u64> = want_a.iter().map(|d| d.dead_at_ms).collect();
    times.sort();
    let (since, until) = (times[3], times[9]);
    let window = DeadFilter {
        since_ms: Some(since),
        until_ms: Some(until),
        ..DeadFilter::default()
    };
    let got = walk(&h.j, &window, 3, async |_| {}).await;
    let want: Vec<_> = everything
        .iter()
        .filter(|d| d.dead_at_ms >= since && d.dead_at_ms < until)
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&got), ids(&want));

    // Changes between pages: what was there all along is seen exactly once, a new dead letter
    // behind the cursor is seen, one removed before its page is not.
    let (late, late_seq) = h.send("a", "late").await;
    let removed = want_a[want_a.len() - 2].event_id.clone();
    let j = h.j.clone();
    let (late2, removed2) = (late.clone(), removed.clone());
    let got = walk(&h.j, &of_a, 3, async |page| {
        if page == 0 {
            j.record_progress(update("a", &late2, late_seq, 1, dead(MRE)));
            j.purge(removed2.clone()).await.unwrap();
        }
    })
    .await;
    let mut want: Vec<String> = ids(&want_a)
        .into_iter()
        .filter(|id| *id != removed)
        .collect();
    want.push(late);
    assert_eq!(ids(&got), want);

    // Pages with their records; a cursor of the other kind of walk is refused.
    let page =
        h.j.dead_letter_page(DeadQuery {
            filter: of_a.clone(),
            after: None,
            limit: 2,
            records: true,
        })
        .await
        .unwrap();
    assert!(page.entries.iter().all(|e| e.record.is_some()));
    assert_eq!(page.next, Some(Cursor::Seq(page.entries[1].letter.seq)));
    assert!(
        h.j.dead_letter_page(DeadQuery {
            filter: of_a,
            after: Some(Cursor::Id(everything[0].event_id.clone())),
            limit: 2,
            records: false,
        })
        .await
        .is_err()
    );
    h.done().await;
}

pub async fn replay_matching_goes_back_in_order(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    for i in 0..5 {
        h.send("a", &i.to_string()).await;
    }
    // The sixth event's stored record fails its check (as a flipped bit on disk would).
    let mut bad = h.ev("a", "5", None);
    if let Some(b) = bad.record.last_mut() {
        *b ^= 1;
    }
    h.j.enqueue(bad).await.unwrap();
    h.j.quarantine(Arc::from("a"), 6, "checksum mismatch".into());
    h.j.sync().await.unwrap();
    // 1, 3, 5: MAX_RETRIES_EXCEEDED; 2, 4: ENDPOINT_DELETED (as a label); 6: RECORD_CORRUPT.
    let l = h.j.load_events("a", 0, usize::MAX).await.unwrap();
    for e in l.events.iter().rev() {
        let reason = if e.seq % 2 == 1 {
            MRE
        } else {
            ENDPOINT_DELETED
        };
        h.progress(update("a", &e.meta.id, e.seq, 2, dead(reason)))
            .await;
    }
    let (_, newer) = h.send("a", "newer").await;
    h.notices();

    let mre = DeadFilter {
        reason: Some(MRE.into()),
        ..DeadFilter::endpoint("a")
    };
    let first = h.j.replay_matching(mre.clone(), None, 2).await.unwrap();
    assert_eq!((first.done, first.skipped, first.next), (2, 0, Some(3)));
    let rest =
        h.j.replay_matching(mre.clone(), first.next, 2)
            .await
            .unwrap();
    assert_eq!((rest.done, rest.skipped, rest.next), (1, 0, None));
    assert_eq!(
        kinds(&h.notices()),
        ["replayed a/1", "replayed a/3", "replayed a/5"],
        "in the endpoint's order"
    );
    assert_eq!(h.seqs("a").await, [1, 3, 5, newer]);
    assert_eq!(h.pending("a").await, 4);
    let l = h.j.load_events("a", 0, 1).await.unwrap();
    let p = &l.events[0].progress;
    assert_eq!((p.attempts, p.failures), (2, 0), "as a single replay");

    // The rest of the endpoint: the corrupt record cannot go back and stays.
    let all =
        h.j.replay_matching(DeadFilter::endpoint("a"), None, 1000)
            .await
            .unwrap();
    assert_eq!((all.done, all.skipped, all.next), (2, 1, None));
    let left = h.j.dead_letters(Some("a")).await.unwrap();
    assert_eq!(
        left.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>(),
        [RECORD_CORRUPT]
    );
    let notices = h.notices();
    assert!(notices.iter().all(|n| matches!(n, Notice::Replayed { .. })));
    assert_eq!(kinds(&notices), ["replayed a/2", "replayed a/4"]);

    // Nothing left to replay; an endpoint that is gone cannot take them back.
    let none = h.j.replay_matching(mre, None, 1000).await.unwrap();
    assert_eq!((none.done, none.skipped, none.next), (0, 0, None));
    h.j.delete_endpoint("a".into(), true).await.unwrap();
    assert_eq!(
        h.j.replay_matching(DeadFilter::endpoint("a"), None, 10)
            .await,
        Err(StoreError::EndpointNotFound("a".into()))
    );
    h.done().await;
}

pub async fn purge_matching_removes_exactly_the_matches(open: Open) {
    let h = H::open(open);
    h.put("a").await;
    h.put("b").await;
    for i in 0..9 {
        h.send("a", &i.to_string()).await;
        h.send("b", &i.to_string()).await;
    }
    let l = h.j.load_events("a", 0, usize::MAX).await.unwrap();
    for e in &l.events {
        h.advance(1);
        let reason = if e.seq <= 4 { MRE } else { ENDPOINT_DELETED };
        h.progress(update("a", &e.meta.id, e.seq, 1, dead(reason)))
            .await;
    }
    let b_ids = kill_all(&h, "b", MRE).await;
    let mre_a = DeadFilter {
        reason: Some(MRE.into()),
        ..DeadFilter::endpoint("a")
    };
    let first = h.j.purge_matching(mre_a.clone(), None, 3).await.unwrap();
    assert_eq!((first.done, first.next), (3, Some(3)));
    let rest = h.j.purge_matching(mre_a, first.next, 3).await.unwrap();
    assert_eq!((rest.done, rest.next), (1, None));
    let left_a: Vec<u64> =
        h.j.dead_letters(Some("a"))
            .await
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect();
    assert_eq!(left_a, [5, 6, 7, 8, 9]);
    assert_eq!(ids(&h.j.dead_letters(Some("b")).await.unwrap()), b_ids);

    // Those of a deleted endpoint can be purged too.
    h.j.delete_endpoint("b".into(), true).await.unwrap();
    let gone =
        h.j.purge_matching(DeadFilter::endpoint("b"), None, 1000)
            .await
            .unwrap();
    assert_eq!((gone.done, gone.next), (9, None));
    assert!(h.j.dead_letters(Some("b")).await.unwrap().is_empty());
    h.done().await;
}

/// A bulk replay commit moves at most `REPLAY_CHUNK_BYTES` of records back (they travel to the
/// scheduler with its notices): past it, it stops and says where to go on; nothing is lost.
pub async fn replay_matching_is_bounded_by_size(open: Open) {
    use courier::store::REPLAY_CHUNK_BYTES;
    let h = H::open(open);
    h.put("a").await;
    let big = "x".repeat(REPLAY_CHUNK_BYTES / 2 + 1);
    for _ in 0..5 {
        h.send("a", &big).await;
    }
    kill_all(&h, "a", MRE).await;
    h.notices();
    let all = DeadFilter::endpoint("a");
    let first = h.j.replay_matching(all.clone(), None, 1000).await.unwrap();
    assert_eq!(
        (first.done, first.next),
        (2, Some(2)),
        "two halves fill a commit"
    );
    let mut done = first.done;
    let mut after = first.next;
    while let Some(a) = after {
        let more =
            h.j.replay_matching(all.clone(), Some(a), 1000)
                .await
                .unwrap();
        assert!(more.done <= 2);
        done += more.done;
        after = more.next;
    }
    assert_eq!(done, 5);
    assert_eq!(
        h.seqs("a").await,
        [1, 2, 3, 4, 5],
        "every one is back, in order"
    );
    h.done().await;
}
