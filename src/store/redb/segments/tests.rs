//! The segment log's own cases: stubs, frames, appends across segments, reads from the buffer
//! and from files, recovery cutting what no commit recorded.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;

fn dir_fs() -> (tempfile::TempDir, Arc<dyn SegmentFs>) {
    let dir = tempfile::tempdir().unwrap();
    let fs = DirFs::create(&dir.path().join(SEGMENT_DIR)).unwrap();
    (dir, Arc::new(fs))
}

#[test]
fn a_stub_round_trips_and_is_never_a_record() {
    let l = Loc {
        seg: 7,
        off: 1 << 40,
        len: 65_536,
        at: Some(1_700_000_000_000),
    };
    assert_eq!(Loc::decode(&l.encode()), Some(l));
    let none = Loc { at: None, ..l };
    assert_eq!(Loc::decode(&none.encode()), Some(none));
    // A record starts with its format version (1), never with the stub's tag.
    let mut rec = l.encode().to_vec();
    rec[0] = 1;
    assert_eq!(Loc::decode(&rec), None);
    assert_eq!(Loc::decode(&l.encode()[..28]), None);
    assert_eq!(head(&l.encode()), (65_536, Some(1_700_000_000_000)));
}

#[test]
fn appends_read_back_from_the_buffer_then_from_the_files_across_segments() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 4096, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    let mut locs = Vec::new();
    for seq in 0..20u64 {
        let rec = vec![seq as u8; 500];
        let loc = segs.append(&mut txn, "ep", seq, &rec).unwrap();
        assert_eq!(segs.read(&loc, Some(&txn)).unwrap(), rec, "from the txn");
        locs.push(loc);
    }
    assert!(
        txn.end().seg > 1,
        "20 frames of ~520 bytes fill more than one 4 KiB segment"
    );
    assert_eq!(txn.left(), Some(1));
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    assert_eq!(segs.tail(), txn.end());
    for (seq, loc) in locs.iter().enumerate() {
        assert_eq!(segs.read(loc, None).unwrap(), vec![seq as u8; 500]);
    }
    // Every frame of segment 1 reads back by its header, in order.
    let f = segs.file(1).unwrap();
    let end = f.len().unwrap();
    let (mut off, mut seqs) = (0, Vec::new());
    while let Some(h) = read_frame(&*f, off, end).unwrap() {
        assert_eq!(h.endpoint, "ep");
        assert_eq!(h.rec_len, 500);
        seqs.push(h.seq);
        off = h.next;
    }
    assert_eq!(off, end);
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(seqs.len() >= 5);
}

#[test]
fn recovery_cuts_what_no_commit_recorded_and_removes_unlisted_segments() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 1 << 20, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    let kept = segs.append(&mut txn, "a", 1, b"kept").unwrap();
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    let tail = segs.tail();
    // A commit that wrote and synced its frames, then failed (or the power went) before redb
    // committed: the frames are past the recorded end.
    let mut lost = segs.begin();
    segs.append(&mut lost, "a", 2, b"never committed").unwrap();
    segs.flush(&mut lost).unwrap();
    fs.open(9, true).unwrap().write_at(0, b"stray").unwrap();
    fs.open(0, true).unwrap();
    drop(segs);

    let live: BTreeSet<u64> = [1].into();
    let segs = Segments::open(fs.clone(), 1 << 20, Some(tail), &live).unwrap();
    assert_eq!(segs.file(1).unwrap().len().unwrap(), tail.len);
    assert_eq!(segs.read(&kept, None).unwrap(), b"kept");
    let mut ids = fs.list().unwrap();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![1],
        "segments past the end and unlisted ones are removed"
    );
    // The next append goes where the lost one was.
    let mut txn = segs.begin();
    let again = segs.append(&mut txn, "a", 2, b"again").unwrap();
    assert_eq!(again.off, kept.off + 4 + FRAME_HEAD as u64 + 1);
}

#[test]
fn a_segment_shorter_than_committed_is_an_error_not_a_silent_loss() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 1 << 20, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    segs.append(&mut txn, "a", 1, &[7u8; 100]).unwrap();
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    let tail = segs.tail();
    drop(segs);
    fs.open(1, false).unwrap().set_len(10).unwrap();
    let err = Segments::open(fs, 1 << 20, Some(tail), &[1].into())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("shorter than"), "{err}");
}

#[test]
fn emptied_segments_are_removed_only_once_a_durable_commit_covers_them() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 4096, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    for seq in 0..12 {
        segs.append(&mut txn, "ep", seq, &[0u8; 500]).unwrap();
    }
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    assert!(fs.list().unwrap().contains(&1));
    let lazy = segs.begin();
    segs.committed(&lazy, vec![1], false);
    assert!(
        fs.list().unwrap().contains(&1),
        "a lazy commit may still be lost"
    );
    let durable = segs.begin();
    segs.committed(&durable, Vec::new(), true);
    assert!(!fs.list().unwrap().contains(&1));
}

#[test]
fn a_large_commit_writes_as_it_goes_and_reads_back_from_file_and_buffer() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 64 << 20, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    let rec = |n: u64| vec![(n % 251) as u8; 40_000];
    let locs: Vec<Loc> = (0..60u64)
        .map(|n| segs.append(&mut txn, "ep", n, &rec(n)).unwrap())
        .collect();
    assert!(
        txn.buf.len() < WRITE_AT,
        "at most {WRITE_AT} bytes buffered, not the 2.4 MB appended"
    );
    assert!(
        fs.open(1, false).unwrap().len().unwrap() >= 2_000_000,
        "written as it went"
    );
    for (n, loc) in locs.iter().enumerate() {
        assert_eq!(segs.read(loc, Some(&txn)).unwrap(), rec(n as u64));
    }
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    for (n, loc) in locs.iter().enumerate() {
        assert_eq!(segs.read(loc, None).unwrap(), rec(n as u64));
    }
}

#[test]
fn a_removed_segment_still_reads_through_its_open_handle_for_older_snapshots() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 4096, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    let first = segs.append(&mut txn, "ep", 0, &[9u8; 500]).unwrap();
    for seq in 1..12 {
        segs.append(&mut txn, "ep", seq, &[0u8; 500]).unwrap();
    }
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    // A commit (compaction) empties segment 1 and is durable: the file's name is gone ...
    let c = segs.begin();
    segs.committed(&c, vec![1], true);
    assert!(!fs.list().unwrap().contains(&1));
    // ... but a reader whose snapshot still points into it reads its record.
    assert_eq!(segs.read(&first, None).unwrap(), vec![9u8; 500]);
}

#[test]
fn at_most_max_open_segment_files_are_kept_open() {
    let (_d, fs) = dir_fs();
    let segs = Segments::open(fs.clone(), 4096, None, &BTreeSet::new()).unwrap();
    let mut txn = segs.begin();
    let mut locs = Vec::new();
    // ~4 frames a segment: 1,200 records fill ~300 segments.
    for seq in 0..1_200u64 {
        locs.push(
            segs.append(&mut txn, "ep", seq, &[seq as u8; 1000])
                .unwrap(),
        );
    }
    segs.flush(&mut txn).unwrap();
    segs.committed(&txn, Vec::new(), true);
    assert!(txn.end().seg > fs::MAX_OPEN as u64);
    for (seq, loc) in locs.iter().enumerate() {
        assert_eq!(segs.read(loc, None).unwrap(), vec![seq as u8; 1000]);
    }
    assert!(segs.files.len() <= fs::MAX_OPEN);
}
