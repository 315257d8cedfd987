//! The redb backend's own cases: reading dead letters of a first-schema file (no
//! `dead_index`) opened without the upgrade, as a read-only inspection would; a retention pass
//! whose compaction moves the log on to a new segment keeps the live rows of the segment it
//! left.

use super::tables::ReadView;
use super::*;
use crate::core::dead_filter::{Cursor, DeadFilter};
use crate::core::ids::IdGen;
use crate::core::record::EventMeta;
use crate::store::rules::dead_letters::page;
use crate::store::{DeadQuery, EnqueueReq};
use redb::{Database, ReadableDatabase};

/// An endpoint the cases put (never delivered to).
fn config() -> EndpointConfig {
    EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    }
}

#[tokio::test]
async fn without_the_index_one_endpoints_dead_letters_are_scanned_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let j = RedbJournal::open(
        &path,
        DEFAULT_CACHE_BYTES,
        crate::store::seal::KeyRing::test_ring(),
        Box::new(|_| {}),
    )
    .unwrap();
    let config = config();
    j.put_endpoint("a".into(), config.clone()).await.unwrap();
    j.put_endpoint("b".into(), config).await.unwrap();
    let ids = IdGen::new();
    for n in 0..7u64 {
        let ep = if n % 3 == 0 { "b" } else { "a" };
        let meta = EventMeta {
            id: ids.next(1000 - n), // ids in the opposite order of the seqs
            enqueued_at_ms: 1,
            content_type: "text/plain".into(),
            event_type: None,
        };
        j.enqueue(EnqueueReq::new(ep.into(), meta, "x".into(), None).unwrap())
            .await
            .unwrap();
    }
    j.delete_endpoint("a".into(), true).await.unwrap();
    j.close().await.unwrap();
    drop(j);
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        assert!(tx.delete_table(DEAD_INDEX).unwrap());
        tx.open_table(META).unwrap().insert("schema", 1).unwrap();
        tx.commit().unwrap();
    }
    // Opened without `open_db` (which would build the index).
    let db = Database::create(&path).unwrap();
    let segs = segments::Segments::open(
        Arc::new(segments::DirFs::read_only(
            &dir.path().join(segments::SEGMENT_DIR),
        )),
        segments::DEFAULT_SEGMENT_BYTES,
        None,
        &Default::default(),
    )
    .unwrap();
    let view = ReadView::new(
        db.begin_read().unwrap(),
        Some(Arc::new(segs)),
        sealed::RowSeal::Keys(crate::store::seal::KeyRing::test_ring()),
    );
    let q = |after| DeadQuery {
        filter: DeadFilter::endpoint("a"),
        after,
        limit: 2,
        records: false,
    };
    let first = page(&view, &q(None)).unwrap();
    let seqs: Vec<u64> = first.entries.iter().map(|e| e.letter.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(first.next, Some(Cursor::Seq(2)));
    let mut all = seqs;
    let mut after = first.next;
    while let Some(c) = after {
        let p = page(&view, &q(Some(c))).unwrap();
        all.extend(p.entries.iter().map(|e| e.letter.seq));
        after = p.next;
    }
    assert_eq!(all, [1, 2, 3, 4]);
    assert!(
        crate::store::invariants::check(&view).unwrap().is_empty(),
        "no index: its invariant is not asked for"
    );
}

/// A sweep that removes rows of the active segment and whose compaction then moves the log on
/// to a new segment counts the segment it left once. (Counted twice, its live rows dropped to
/// zero with a pending event still in it: the segment was removed and the event's record lost.)
#[tokio::test]
async fn a_sweep_that_moves_the_log_on_keeps_the_live_rows_of_the_segment_it_left() {
    use crate::core::model::EventProgress;
    use crate::store::{Journal, Limits, ProgressOutcome, ProgressUpdate};
    use redb::ReadableTable;
    use std::sync::atomic::{AtomicU64, Ordering};

    const T0: u64 = 1_700_000_000_000;
    const RETENTION: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let db = DbHandle::open_with_segments(
        &dir.path().join(DB_FILE),
        DEFAULT_CACHE_BYTES,
        4096,
        crate::store::seal::KeyRing::test_ring(),
    )
    .unwrap();
    let now = Arc::new(AtomicU64::new(T0));
    let clock: crate::store::Clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let limits = Limits {
        retention_ms: RETENTION,
        ..Limits::default()
    };
    let j = RedbJournal::start_with(db, Box::new(|_| {}), clock, limits).unwrap();
    let config = config();
    j.put_endpoint("slow".into(), config.clone()).await.unwrap();
    j.put_endpoint("fast".into(), config).await.unwrap();
    let ids = IdGen::new();
    let mut event_ids = std::collections::HashMap::new();
    // Records of ~1 KB: three frames to a 4 KiB segment. Segment 1: slow/1, fast/1, fast/2;
    // segment 2 (active): fast/3, fast/4, fast/5.
    for ep in ["slow", "fast", "fast", "fast", "fast", "fast"] {
        let meta = EventMeta {
            id: ids.next(T0),
            enqueued_at_ms: T0,
            content_type: "text/plain".into(),
            event_type: None,
        };
        let body = bytes::Bytes::from(vec![b'x'; 950]);
        let ok = j
            .enqueue(EnqueueReq::new(ep.into(), meta, body, None).unwrap())
            .await
            .unwrap();
        event_ids.insert((ep, ok.seq), ok.id);
    }
    let tail = |j: &RedbJournal| j.db().segments().unwrap().tail();
    assert_eq!(tail(&j).seg, 2);
    // fast/1..=4 delivered: the sweep removes two rows of segment 1 and two of segment 2,
    // then compacts segment 1 (only slow/1 left) into the log's end, which is full: the log
    // moves on to segment 3, leaving segment 2 with fast/5.
    for seq in 1..=4 {
        let id = &event_ids[&("fast", seq)];
        j.record_progress(ProgressUpdate {
            endpoint: Arc::from("fast"),
            seq,
            attempt: AttemptRecord {
                event_id: id.clone(),
                seq,
                attempt: 1,
                started_ms: T0,
                status: Some(200),
                latency_ms: 1,
                error: None,
                message: None,
                kind: Default::default(),
                answer: None,
                repeats: 0,
                last_ms: 0,
            },
            progress: EventProgress {
                attempts: 1,
                ..EventProgress::default()
            },
            outcome: ProgressOutcome::Delivered,
            down: None,
        });
    }
    j.sync().await.unwrap();
    now.store(T0 + RETENTION + 1, Ordering::SeqCst);
    let done = j.sweep().await.unwrap();
    assert_eq!(done.removed, 4);
    assert!(done.moved > 0, "segment 1 was compacted: {done:?}");
    assert_eq!(tail(&j).seg, 3, "the compaction moved the log on");
    let loaded = j
        .load_events("fast", 0, 10)
        .await
        .expect("the records of fast read");
    assert!(loaded.corrupt.is_empty(), "{:?}", loaded.corrupt);
    let seqs: Vec<u64> = loaded.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [5], "the pending event of segment 2 reads back");
    let live: Vec<(u64, (u64, u64))> = {
        let db = j.db().get().unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(SEGMENTS).unwrap();
        t.iter()
            .unwrap()
            .map(|r| r.map(|(k, v)| (k.value(), v.value())).unwrap())
            .collect()
    };
    let ids: Vec<u64> = live.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [2, 3],
        "segment 1 emptied; 2 holds fast/5, 3 slow/1: {live:?}"
    );
    assert!(live.iter().all(|(_, (rows, _))| *rows == 1), "{live:?}");
    assert!(j.db().check_invariants().unwrap().is_empty());
    j.close().await.unwrap();
}
