//! Event bodies in segment files (schema 4): the log the records are appended to, the stub an
//! `events` row holds instead of the record, the per-transaction appends, and recovery.
//!
//! A write transaction appends each new record as a frame to the active segment (in memory
//! until the commit); before redb commits, the frames are written and every segment written to
//! is `fdatasync`ed, and the same redb transaction records the new end of the log (`meta`:
//! `seg_active`, `seg_len`) and each segment's live rows and bytes (`segments`). So a committed
//! stub always points at synced bytes, and after a crash everything past the committed end is
//! garbage that [`Segments::open`] cuts off. A segment whose live rows drop to zero (retention,
//! dead letters, deletes, compaction) is removed after a durable commit says so.
//!
//! Frame: magic `u32`, frame length `u32`, seq `u64`, endpoint length `u16`, the endpoint, then
//! the record bytes (`core/record.rs`, with its own CRC). Stub (29 bytes): `0xFE`, segment
//! `u64`, offset of the record `u64`, record length `u32`, accepted-at ms `u64` (`u64::MAX`:
//! unknown). A record never starts with `0xFE` (its first byte is its format version), so a
//! row is a stub or an inline record (journals of schema 3 and older; the in-memory journal).

pub(crate) mod check;
pub mod compact;
pub mod fs;
pub(crate) mod seal;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use fs::OpenFiles;
pub use fs::{DirFs, SEGMENT_DIR, SegmentFile, SegmentFs};

/// The segment size at which the log moves on to a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Buffered appends are written to the file once they reach this many bytes.
const WRITE_AT: usize = 1 << 20;

const STUB_TAG: u8 = 0xFE;
const STUB_LEN: usize = 29;
const FRAME_MAGIC: u32 = 0x4753_4331;
const FRAME_HEAD: usize = 18;

/// Where a record lies in the segment log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub seg: u64,
    /// Offset of the record (past its frame header) in the segment.
    pub off: u64,
    pub len: u32,
    /// When the event was accepted (ms), read from the record when it was appended.
    pub at: Option<u64>,
}

impl Loc {
    pub fn encode(&self) -> [u8; STUB_LEN] {
        let mut b = [0u8; STUB_LEN];
        b[0] = STUB_TAG;
        b[1..9].copy_from_slice(&self.seg.to_le_bytes());
        b[9..17].copy_from_slice(&self.off.to_le_bytes());
        b[17..21].copy_from_slice(&self.len.to_le_bytes());
        b[21..29].copy_from_slice(&self.at.unwrap_or(u64::MAX).to_le_bytes());
        b
    }

    /// The location a stored `events` value names, or `None` for an inline record.
    pub fn decode(v: &[u8]) -> Option<Loc> {
        if v.len() != STUB_LEN || v[0] != STUB_TAG {
            return None;
        }
        let u = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a[..r.len()].copy_from_slice(&v[r]);
            u64::from_le_bytes(a)
        };
        let at = u(21..29);
        Some(Loc {
            seg: u(1..9),
            off: u(9..17),
            len: u(17..21) as u32,
            at: (at != u64::MAX).then_some(at),
        })
    }
}

/// Length and acceptance time of a stored `events` value, without reading a segment.
pub fn head(stored: &[u8]) -> (u64, Option<u64>) {
    match Loc::decode(stored) {
        Some(l) => (u64::from(l.len), l.at),
        None => (
            stored.len() as u64,
            crate::core::record::enqueued_at(stored),
        ),
    }
}

/// A frame's header, read back (compaction walks a segment by them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHead {
    pub seq: u64,
    pub endpoint: String,
    /// Where the record starts and how long it is.
    pub rec_off: u64,
    pub rec_len: u64,
    /// Where the next frame starts.
    pub next: u64,
}

fn frame(ep: &str, seq: u64, record: &[u8], out: &mut Vec<u8>) {
    let len = FRAME_HEAD + ep.len() + record.len();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(ep.len() as u16).to_le_bytes());
    out.extend_from_slice(ep.as_bytes());
    out.extend_from_slice(record);
}

/// Reads the frame header at `off` of `file` (whose committed length is `end`); `None` at the
/// end or at bytes that are not a frame.
pub fn read_frame(file: &dyn SegmentFile, off: u64, end: u64) -> io::Result<Option<FrameHead>> {
    if off + FRAME_HEAD as u64 > end {
        return Ok(None);
    }
    let mut h = [0u8; FRAME_HEAD];
    file.read_at(off, &mut h)?;
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let len = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
    let mut s = [0u8; 8];
    s.copy_from_slice(&h[8..16]);
    let ep_len = u64::from(u16::from_le_bytes([h[16], h[17]]));
    if magic != FRAME_MAGIC || len < FRAME_HEAD as u64 + ep_len || off + len > end {
        return Ok(None);
    }
    let mut ep = vec![0u8; ep_len as usize];
    file.read_at(off + FRAME_HEAD as u64, &mut ep)?;
    let Ok(endpoint) = String::from_utf8(ep) else {
        return Ok(None);
    };
    let rec_off = off + FRAME_HEAD as u64 + ep_len;
    Ok(Some(FrameHead {
        seq: u64::from_le_bytes(s),
        endpoint,
        rec_off,
        rec_len: off + len - rec_off,
        next: off + len,
    }))
}

/// The committed end of the log: the active segment and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub seg: u64,
    pub len: u64,
}

/// The segment log of one journal, shared by its writer and its readers.
pub struct Segments {
    fs: Arc<dyn SegmentFs>,
    files: OpenFiles,
    max_bytes: u64,
    tail: Mutex<Tail>,
    /// Segments a commit emptied, removed once a durable commit covers it.
    doomed: Mutex<Vec<u64>>,
    /// Segments removed, with when: their open handles stay for [`UNLINKED_GRACE`], so a
    /// read whose snapshot is older than the commit that moved its record (compaction) still
    /// reads it.
    unlinked: Mutex<Vec<(u64, std::time::Instant)>>,
}

/// How long a removed segment's open handle is kept for readers of older snapshots.
const UNLINKED_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What one write transaction appends, and how it changes each segment's live rows and bytes.
#[derive(Debug)]
pub struct SegTxn {
    /// The segment being appended to, and where `buf` goes in it (appends before `start`
    /// were written to the file already).
    seg: u64,
    start: u64,
    buf: Vec<u8>,
    /// Segments written (or to be written) by this transaction, to sync before the commit.
    written: BTreeSet<u64>,
    /// The segment the transaction began on, when it moved past it.
    left: Option<u64>,
    /// Live (rows, bytes) changes per segment.
    pub(crate) delta: BTreeMap<u64, (i64, i64)>,
}

impl SegTxn {
    /// Whether anything was appended.
    pub fn wrote(&self) -> bool {
        !self.written.is_empty()
    }
    /// The end of the log once this transaction commits.
    pub fn end(&self) -> Tail {
        Tail {
            seg: self.seg,
            len: self.start + self.buf.len() as u64,
        }
    }
    /// The segment this transaction left behind when it moved on (it may now be empty).
    pub fn left(&self) -> Option<u64> {
        self.left
    }
    pub(crate) fn count(&mut self, loc: &Loc, sign: i64) {
        let d = self.delta.entry(loc.seg).or_default();
        d.0 += sign;
        d.1 += sign * i64::from(loc.len);
    }
}

impl Segments {
    /// Opens the log on `fs` after a crash or a clean stop: `tail` is the end the last commit
    /// recorded (`None`: a journal without segments yet), `live` the segments it lists. Bytes
    /// past the end are cut off and segment files no commit refers to are removed (a read-only
    /// storage is only read).
    pub fn open(
        fs: Arc<dyn SegmentFs>,
        max_bytes: u64,
        tail: Option<Tail>,
        live: &BTreeSet<u64>,
    ) -> io::Result<Self> {
        let tail = tail.unwrap_or(Tail { seg: 1, len: 0 });
        let segs = Self {
            fs,
            files: OpenFiles::default(),
            max_bytes: max_bytes.max(4096),
            tail: Mutex::new(tail),
            doomed: Mutex::new(Vec::new()),
            unlinked: Mutex::new(Vec::new()),
        };
        if segs.fs.read_only() {
            return Ok(segs);
        }
        for id in segs.fs.list()? {
            if id > tail.seg || (id < tail.seg && !live.contains(&id)) {
                segs.fs.remove(id)?;
            }
        }
        let active = segs.fs.open(tail.seg, true)?;
        let len = active.len()?;
        if len < tail.len {
            return Err(io::Error::other(format!(
                "segment {} is {len} bytes long, shorter than the {} bytes the journal committed: \
                 event bodies were lost outside Courier",
                tail.seg, tail.len
            )));
        }
        if len > tail.len {
            active.set_len(tail.len)?;
            active.sync()?;
        }
        segs.files.put(tail.seg, active);
        Ok(segs)
    }

    pub fn fs(&self) -> &Arc<dyn SegmentFs> {
        &self.fs
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The committed end of the log.
    pub fn tail(&self) -> Tail {
        self.tail
            .lock()
            .map(|t| *t)
            .unwrap_or(Tail { seg: 1, len: 0 })
    }

    /// Starts the appends of a write transaction at the committed end.
    pub fn begin(&self) -> SegTxn {
        let t = self.tail();
        SegTxn {
            seg: t.seg,
            start: t.len,
            buf: Vec::new(),
            written: BTreeSet::new(),
            left: None,
            delta: BTreeMap::new(),
        }
    }

    /// Appends `record` (the event `seq` of `ep`) to the transaction; answers where it lies.
    pub fn append(&self, txn: &mut SegTxn, ep: &str, seq: u64, record: &[u8]) -> io::Result<Loc> {
        let need = (FRAME_HEAD + ep.len() + record.len()) as u64;
        let used = txn.start + txn.buf.len() as u64;
        if used > 0 && used + need > self.max_bytes {
            // Move on to the next segment: what is buffered goes to the current one now.
            if !txn.buf.is_empty() {
                self.file(txn.seg)?.write_at(txn.start, &txn.buf)?;
                txn.written.insert(txn.seg);
                txn.buf.clear();
            }
            txn.left.get_or_insert(txn.seg);
            txn.seg += 1;
            txn.start = 0;
            let f = self.fs.open(txn.seg, true)?;
            f.set_len(0)?; // a file left by a failed commit holds nothing committed
            self.files.put(txn.seg, f);
        }
        let off = txn.start + (txn.buf.len() + FRAME_HEAD + ep.len()) as u64;
        frame(ep, seq, record, &mut txn.buf);
        txn.written.insert(txn.seg);
        if txn.buf.len() >= WRITE_AT {
            // A large commit does not hold all its records twice: what is buffered goes to
            // the file (synced with the rest before the commit).
            self.file(txn.seg)?.write_at(txn.start, &txn.buf)?;
            txn.start += txn.buf.len() as u64;
            txn.buf.clear();
        }
        let loc = Loc {
            seg: txn.seg,
            off,
            len: record.len() as u32,
            at: crate::core::record::enqueued_at(record),
        };
        txn.count(&loc, 1);
        Ok(loc)
    }

    /// Reads the record at `loc`: from the transaction's buffer when it is there, else from
    /// its segment file. A record cut short (its file shorter than it says) reads as the bytes
    /// there are, which fail the record's check: delivery sets it aside as `RECORD_CORRUPT`.
    pub fn read(&self, loc: &Loc, txn: Option<&SegTxn>) -> io::Result<Vec<u8>> {
        if let Some(t) = txn
            && loc.seg == t.seg
            && loc.off >= t.start
        {
            let from = (loc.off - t.start) as usize;
            let to = from + loc.len as usize;
            return Ok(t.buf.get(from..to).map(<[u8]>::to_vec).unwrap_or_default());
        }
        let file = self.file(loc.seg)?;
        let mut out = vec![0u8; loc.len as usize];
        match file.read_at(loc.off, &mut out) {
            Ok(()) => Ok(out),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn file(&self, id: u64) -> io::Result<Arc<dyn SegmentFile>> {
        self.files.get(&*self.fs, id)
    }

    /// Makes the transaction's appends durable: writes what is buffered and syncs every
    /// segment written. Called after the transaction's rows are written, before redb commits.
    pub fn flush(&self, txn: &mut SegTxn) -> io::Result<()> {
        if !txn.buf.is_empty() {
            self.file(txn.seg)?.write_at(txn.start, &txn.buf)?;
        }
        for id in &txn.written {
            self.file(*id)?.sync()?;
        }
        Ok(())
    }

    /// The transaction committed: its end is the log's; the segments it emptied go once a
    /// durable commit covers them (now, when this one was durable).
    pub fn committed(&self, txn: &SegTxn, emptied: Vec<u64>, durable: bool) {
        if let Ok(mut t) = self.tail.lock() {
            *t = txn.end();
        }
        let (Ok(mut doomed), Ok(mut unlinked)) = (self.doomed.lock(), self.unlinked.lock()) else {
            return;
        };
        let now = std::time::Instant::now();
        unlinked.retain(|(id, at)| {
            let keep = now.duration_since(*at) < UNLINKED_GRACE;
            if !keep {
                self.files.forget(*id);
            }
            keep
        });
        doomed.extend(emptied);
        if durable {
            for id in doomed.drain(..) {
                // Readers may still hold a stub into it from an older snapshot: its name goes
                // now, its open handle (and so its space) after the grace.
                let _ = self.file(id);
                if let Err(e) = self.fs.remove(id) {
                    // Left behind, it is removed at the next open (no commit refers to it).
                    tracing::warn!(segment = id, error = %e, "cannot remove an emptied segment");
                }
                unlinked.push((id, now));
            }
        }
    }

    /// The journal was reopened after an I/O error: files are opened afresh, and the log's
    /// end is the one the database says was committed (`None`: nothing yet).
    pub fn reopened(&self, tail: Option<Tail>) {
        self.files.clear();
        if let Ok(mut t) = self.tail.lock() {
            *t = tail.unwrap_or(Tail { seg: 1, len: 0 });
        }
    }
}

#[cfg(test)]
mod tests;
