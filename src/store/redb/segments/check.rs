//! The segment log's invariants, checked beside the store's (`store/invariants.rs`): the
//! `segments` table counts exactly the stubs that point into each segment, every stub points
//! inside the committed log, and every segment the table lists has its file.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable};

use super::{Loc, Segments};
use crate::store::StoreError;
use crate::store::redb::tables::se;
use crate::store::redb::{EVENTS, META, SEG_ACTIVE, SEG_LEN, SEGMENTS};

/// Every violation found in the snapshot `tx` of a journal whose log is `segs`.
pub(crate) fn check(tx: &ReadTransaction, segs: &Segments) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let Ok(table) = tx.open_table(SEGMENTS) else {
        return Ok(out); // an older schema opened read-only: no segment log
    };
    let meta = tx.open_table(META).map_err(se)?;
    let get = |k: &str| -> Result<Option<u64>, StoreError> {
        Ok(meta.get(k).map_err(se)?.map(|v| v.value()))
    };
    let (active, len) = (get(SEG_ACTIVE)?, get(SEG_LEN)?);
    let mut counted: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for row in tx.open_table(EVENTS).map_err(se)?.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let Some(loc) = Loc::decode(v.value()) else {
            continue;
        };
        let (ep, seq) = k.value();
        let c = counted.entry(loc.seg).or_default();
        c.0 += 1;
        c.1 += u64::from(loc.len);
        let end = loc.off + u64::from(loc.len);
        let inside = match (active, len) {
            (Some(a), Some(l)) => loc.seg < a || (loc.seg == a && end <= l),
            _ => false,
        };
        if !inside {
            out.push(format!(
                "events ({ep}, {seq}) points at segment {} bytes {}..{end}, past the committed end {active:?}/{len:?}",
                loc.seg, loc.off
            ));
        }
    }
    let mut listed: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for row in table.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        listed.insert(k.value(), v.value());
    }
    for (seg, c) in &counted {
        if listed.get(seg) != Some(c) {
            out.push(format!(
                "segment {seg}: the table says {:?} live (rows, bytes), the stubs {c:?}",
                listed.get(seg)
            ));
        }
    }
    for (seg, l) in &listed {
        if !counted.contains_key(seg) && (l.0 != 0 || Some(*seg) != active) {
            out.push(format!(
                "segment {seg} is listed with {l:?} live but no stub points into it"
            ));
        }
        if let Err(e) = segs.file(*seg) {
            out.push(format!(
                "segment {seg} is listed but its file cannot be opened: {e}"
            ));
        }
    }
    Ok(out)
}
