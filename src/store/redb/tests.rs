//! The redb backend's own cases: reading dead letters of a first-schema file (no
//! `dead_index`) opened without the upgrade, as a read-only inspection would.

use super::tables::ReadView;
use super::*;
use crate::core::dead_filter::{Cursor, DeadFilter};
use crate::core::ids::IdGen;
use crate::core::record::EventMeta;
use crate::store::rules::dead_letters::page;
use crate::store::{DeadQuery, EnqueueReq};
use redb::{Database, ReadableDatabase};

#[tokio::test]
async fn without_the_index_one_endpoints_dead_letters_are_scanned_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, Box::new(|_| {})).unwrap();
    let config = EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![],
        max_in_flight: 1,
        max_backlog: None,
    };
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
    let view = ReadView::new(db.begin_read().unwrap(), Some(Arc::new(segs)));
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
