//! The `events` table's rows as records: a row holds a stub pointing into the segment log
//! (`segments.rs`) or, in journals of schema 3 and older, the record itself. Reads resolve a
//! stub through [`Bodies`]; writes append to the transaction's [`SegTxn`] and count each
//! segment's live rows, so a segment's emptiness is known without a scan.

use redb::{ReadableTable, Table};

use super::segments::{Loc, SegTxn, Segments, head};
use super::tables::{BySeq, se};
use crate::store::StoreError;

type Bytes = &'static [u8];

/// Where a read finds the records that stubs point at: the segment log, and the write
/// transaction's appends not yet written to it.
#[derive(Clone, Copy)]
pub(crate) struct Bodies<'a> {
    pub segs: Option<&'a Segments>,
    pub txn: Option<&'a SegTxn>,
}

pub(crate) fn io(e: std::io::Error) -> StoreError {
    if super::is_disk_full(&e) {
        StoreError::DiskFull
    } else {
        StoreError::Storage(format!("segment log: {e}"))
    }
}

impl Bodies<'_> {
    /// Hands the record a stored row stands for to `f`.
    pub(crate) fn with<T>(
        &self,
        stored: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, StoreError> {
        match Loc::decode(stored) {
            None => Ok(f(stored)),
            Some(loc) => {
                let Some(segs) = self.segs else {
                    return Err(StoreError::Storage(
                        "a record lies in the segment log, which is not open".into(),
                    ));
                };
                let v = segs.read(&loc, self.txn).map_err(io)?;
                Ok(f(&v))
            }
        }
    }
}

pub(crate) fn get<T>(
    t: &impl ReadableTable<BySeq, Bytes>,
    b: Bodies<'_>,
    ep: &str,
    seq: u64,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    match t.get((ep, seq)).map_err(se)? {
        Some(v) => b.with(v.value(), f).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn each(
    t: &impl ReadableTable<BySeq, Bytes>,
    b: Bodies<'_>,
    ep: &str,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.range((ep, from)..=(ep, u64::MAX)).map_err(se)? {
        let (k, v) = row.map_err(se)?;
        if !b.with(v.value(), |r| f(k.value().1, r))?? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn all(
    t: &impl ReadableTable<BySeq, Bytes>,
    b: Bodies<'_>,
    mut f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let (ep, seq) = k.value();
        if !b.with(v.value(), |r| f(ep, seq, r))?? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn head_of(
    t: &impl ReadableTable<BySeq, Bytes>,
    ep: &str,
    seq: u64,
) -> Result<Option<(u64, Option<u64>)>, StoreError> {
    Ok(t.get((ep, seq)).map_err(se)?.map(|v| head(v.value())))
}

pub(crate) fn heads(
    t: &impl ReadableTable<BySeq, Bytes>,
    ep: &str,
    from: u64,
    mut f: impl FnMut(u64, u64, Option<u64>) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.range((ep, from)..=(ep, u64::MAX)).map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let (len, at) = head(v.value());
        if !f(k.value().1, len, at)? {
            break;
        }
    }
    Ok(())
}

/// The write side: the `events` table of a transaction with its segment appends.
pub(crate) struct EventRows<'t> {
    pub table: Table<'t, BySeq, Bytes>,
    pub segs: Option<&'t Segments>,
    pub txn: Option<SegTxn>,
}

impl EventRows<'_> {
    pub(crate) fn bodies(&self) -> Bodies<'_> {
        Bodies {
            segs: self.segs,
            txn: self.txn.as_ref(),
        }
    }

    /// Stores `record` as the event `seq` of `ep`: appended to the segment log (when the
    /// journal has one), its stub in the row.
    pub(crate) fn put(&mut self, ep: &str, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        if let (Some(segs), Some(txn)) = (self.segs, self.txn.as_mut()) {
            let loc = segs.append(txn, ep, seq, record).map_err(io)?;
            let old = self
                .table
                .insert((ep, seq), &loc.encode()[..])
                .map_err(se)?;
            if let Some(old) = old.and_then(|o| Loc::decode(o.value())) {
                txn.count(&old, -1);
            }
        } else {
            let old = self.table.insert((ep, seq), record).map_err(se)?;
            if let (Some(txn), Some(old)) = (self.txn.as_mut(), old)
                && let Some(l) = Loc::decode(old.value())
            {
                txn.count(&l, -1);
            }
        }
        Ok(())
    }

    /// Rewrites a row's stub (compaction moved its record) without counting it again.
    pub(crate) fn relocate(&mut self, ep: &str, seq: u64, loc: &Loc) -> Result<(), StoreError> {
        self.table
            .insert((ep, seq), &loc.encode()[..])
            .map_err(se)?;
        Ok(())
    }

    /// Removes a row; `Some(record)` when it was there and `want` (the record is read only
    /// then).
    pub(crate) fn remove(
        &mut self,
        ep: &str,
        seq: u64,
        want: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(old) = self.table.remove((ep, seq)).map_err(se)? else {
            return Ok(None);
        };
        let stored = old.value().to_vec();
        drop(old);
        let loc = Loc::decode(&stored);
        let record = if want {
            self.bodies().with(&stored, <[u8]>::to_vec)?
        } else {
            Vec::new()
        };
        if let (Some(l), Some(txn)) = (loc, self.txn.as_mut()) {
            txn.count(&l, -1);
        }
        Ok(Some(record))
    }

    /// Removes every row of `ep`.
    pub(crate) fn clear(&mut self, ep: &str) -> Result<(), StoreError> {
        if let Some(txn) = self.txn.as_mut() {
            for row in self.table.range((ep, 0)..=(ep, u64::MAX)).map_err(se)? {
                let (_, v) = row.map_err(se)?;
                if let Some(l) = Loc::decode(v.value()) {
                    txn.count(&l, -1);
                }
            }
        }
        self.table
            .retain_in((ep, 0)..=(ep, u64::MAX), |_, _| false)
            .map_err(se)
    }
}
