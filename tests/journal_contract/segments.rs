//! redb only: the segment log under the journal. Records roll over into new segments, a
//! segment emptied by retention is removed, a segment mostly emptied by retention while a
//! slow endpoint still holds events in it is compacted (its live records moved, the file
//! removed), and everything still loads, in order, after a reopen.

use courier::store::redb::segments::SEGMENT_DIR;
use courier::store::{Limits, ProgressOutcome::Delivered};

use super::{H, update};

/// Segments of 4 KiB: a few dozen small records each.
const SMALL: u64 = 4096;

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join(SEGMENT_DIR)).unwrap().count()
}

#[tokio::test]
async fn retention_removes_emptied_segments_and_compacts_pinned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        retention_ms: 1_000,
        ..Default::default()
    };
    let path = dir.path().to_path_buf();
    let h = H::open_in(
        move |c, n, l| super::open_redb_in(dir, SMALL, c, n, l),
        limits,
    );
    let dir = path;
    h.put("fast").await;
    h.put("slow").await;
    let body = "x".repeat(200);
    // 40 rounds: 4 fast events and 1 slow one each, ~1,200 bytes a round, so ~12 segments.
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..40 {
        for _ in 0..4 {
            fast.push(h.send("fast", &body).await);
        }
        slow.push(h.send("slow", &body).await);
    }
    let before = segment_files(&dir);
    assert!(before >= 8, "records rolled over into {before} segments");
    for (n, (id, seq)) in fast.iter().enumerate() {
        h.progress(update("fast", id, *seq, 1, Delivered)).await;
        if n == 0 {
            assert_eq!(h.j.sweep().await.unwrap().removed, 0, "not old yet");
        }
    }
    h.advance(5_000);
    // Retention removes every fast event: each sealed segment keeps a fifth of its bytes
    // (the slow events), which is worth compacting; passes go on while more is due.
    let mut moved = 0;
    for _ in 0..100 {
        let s = h.j.sweep().await.unwrap();
        moved += s.moved;
        let bad = (h.check)().unwrap();
        assert!(bad.is_empty(), "after a pass {s:?}: {bad:#?}");
        if !s.more {
            break;
        }
    }
    assert!(
        moved > 0,
        "compaction moved the slow events out of sparse segments"
    );
    let after = segment_files(&dir);
    assert!(
        after * 3 <= before,
        "{before} segment files before, {after} after compaction"
    );
    let bad = (h.check)().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    let want: Vec<u64> = slow.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        h.seqs("slow").await,
        want,
        "the slow endpoint's backlog, in order"
    );
    let loaded = h.j.load_events("slow", 0, usize::MAX).await.unwrap();
    assert!(loaded.corrupt.is_empty());
    assert!(loaded.events.iter().all(|e| e.body.len() == 200));
    h.done().await;
}
