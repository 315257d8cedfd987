//! Compaction of the segment log: a sealed segment that is mostly garbage (its live record
//! bytes under two thirds of its size: events kept by a slow endpoint while retention removed
//! the rest) has its live records copied to the log's end and their stubs rewritten, in one
//! durable commit; the segment is then empty and removed like any other. One segment per
//! retention pass, the emptiest first, so the sealed segments never hold more than 1.5× their
//! live bytes for long, and no single commit moves more than one segment.

use redb::ReadableTable;

use super::{Loc, read_frame};
use crate::store::StoreError;
use crate::store::redb::event_rows::io;
use crate::store::redb::tables::{WriteTables, se};

/// What one compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub segment: u64,
    /// Records moved and their bytes.
    pub moved: u64,
    pub moved_bytes: u64,
    /// Whether another segment is due too.
    pub more: bool,
}

/// Whether a segment of `size` bytes holding `live` live record bytes is worth compacting.
pub fn worth(live: u64, size: u64) -> bool {
    size > 0 && live.saturating_mul(3) < size.saturating_mul(2)
}

/// The sealed segment to compact among `(segment, live bytes, size)`: the lowest share of
/// live bytes, among those [`worth`] it; ties go to the oldest.
pub fn pick(candidates: &[(u64, u64, u64)]) -> Option<u64> {
    candidates
        .iter()
        .filter(|(_, live, size)| worth(*live, *size))
        .min_by(|a, b| {
            // a.live / a.size against b.live / b.size, without division.
            (u128::from(a.1) * u128::from(b.2))
                .cmp(&(u128::from(b.1) * u128::from(a.2)))
                .then(a.0.cmp(&b.0))
        })
        .map(|(id, _, _)| *id)
}

/// Compacts at most one segment in the transaction of `t` (nothing when the journal has no
/// segment log or no segment is worth it).
pub(crate) fn compact_one(t: &mut WriteTables<'_>) -> Result<Option<Compacted>, StoreError> {
    let (Some(segs), Some(txn)) = (t.events.segs, t.events.txn.as_ref()) else {
        return Ok(None);
    };
    let active = txn.end().seg;
    let mut candidates = Vec::new();
    for row in t.segments.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let id = k.value();
        if id >= active {
            continue;
        }
        // This transaction's own removals (the retention pass before it) count already.
        let (_, live) = v.value();
        let live = live.saturating_add_signed(txn.delta.get(&id).map_or(0, |d| d.1));
        let size = segs.file(id).and_then(|f| f.len()).map_err(io)?;
        candidates.push((id, live, size));
    }
    let Some(seg) = pick(&candidates) else {
        return Ok(None);
    };
    let more = candidates.iter().filter(|c| worth(c.1, c.2)).count() > 1;
    let file = segs.file(seg).map_err(io)?;
    let end = file.len().map_err(io)?;
    let mut done = Compacted {
        segment: seg,
        more,
        ..Compacted::default()
    };
    let mut off = 0;
    while let Some(h) = read_frame(&*file, off, end).map_err(io)? {
        off = h.next;
        let stored = t
            .events
            .table
            .get((h.endpoint.as_str(), h.seq))
            .map_err(se)?
            .and_then(|v| Loc::decode(v.value()));
        let Some(old) = stored.filter(|l| l.seg == seg && l.off == h.rec_off) else {
            continue; // removed, or a newer copy elsewhere: garbage
        };
        let mut record = vec![0u8; old.len as usize];
        file.read_at(old.off, &mut record).map_err(io)?;
        let Some(txn) = t.events.txn.as_mut() else {
            break;
        };
        let new = segs.append(txn, &h.endpoint, h.seq, &record).map_err(io)?;
        txn.count(&old, -1);
        t.events.relocate(&h.endpoint, h.seq, &new)?;
        done.moved += 1;
        done.moved_bytes += u64::from(old.len);
    }
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_worth_compacting_below_two_thirds_live() {
        assert!(worth(0, 100));
        assert!(worth(66, 100));
        assert!(!worth(67, 100));
        assert!(!worth(100, 100));
        assert!(!worth(0, 0));
    }

    #[test]
    fn the_emptiest_segment_goes_first_and_ties_go_to_the_oldest() {
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[(1, 90, 100), (2, 80, 100)]), None);
        assert_eq!(pick(&[(1, 60, 100), (2, 10, 100), (3, 50, 100)]), Some(2));
        assert_eq!(pick(&[(4, 10, 100), (3, 20, 200)]), Some(3));
        // A share, not a count of bytes: 30 of 40 (75 %) is not worth it, 40 of 100 is.
        assert_eq!(pick(&[(1, 30, 40), (2, 40, 100)]), Some(2));
    }
}
