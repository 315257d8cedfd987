//! The end of a write transaction on the segment log: its live-row changes written to the
//! `segments` table, the log's new end to `meta`, and the segments it emptied named, all in the
//! same redb transaction as the rows that point into the log.

use redb::ReadableTable;

use super::SegTxn;
use crate::store::StoreError;
use crate::store::redb::tables::{WriteTables, se};
use crate::store::redb::{SEG_ACTIVE, SEG_LEN};

/// Takes the transaction's appends out of `t` and records them; answers them with the
/// segments now empty (to remove once the commit is durable). `None` when the journal has no
/// segment log.
pub(crate) fn seal(t: &mut WriteTables<'_>) -> Result<Option<(SegTxn, Vec<u64>)>, StoreError> {
    let Some(txn) = t.events.txn.take() else {
        return Ok(None);
    };
    let end = txn.end();
    let mut emptied = Vec::new();
    // Each segment once: the one left behind usually has a change of its own too.
    let mut touched: std::collections::BTreeSet<u64> = txn.delta.keys().copied().collect();
    touched.extend(txn.left());
    for seg in touched {
        let (d_rows, d_bytes) = txn.delta.get(&seg).copied().unwrap_or_default();
        let (rows, bytes) = t
            .segments
            .get(seg)
            .map_err(se)?
            .map(|v| v.value())
            .unwrap_or_default();
        let rows = rows.saturating_add_signed(d_rows);
        let bytes = bytes.saturating_add_signed(d_bytes);
        if rows == 0 && seg != end.seg {
            t.segments.remove(seg).map_err(se)?;
            emptied.push(seg);
        } else {
            t.segments.insert(seg, (rows, bytes)).map_err(se)?;
        }
    }
    if txn.wrote() || txn.left().is_some() {
        t.meta.insert(SEG_ACTIVE, end.seg).map_err(se)?;
        t.meta.insert(SEG_LEN, end.len).map_err(se)?;
    }
    emptied.sort_unstable();
    emptied.dedup();
    Ok(Some((txn, emptied)))
}
