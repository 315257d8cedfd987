//! The attempt log of an endpoint: a ring of [`ATTEMPT_LOG_KEEP`] slots, written by overwriting
//! (never a delete), read newest first; and repeated identical probe failures counted in one
//! row instead of one row each.
//!
//! Attempt `n` (the endpoint's `next_attempt_log` when it was logged) goes to slot
//! [`slot`]`(n)` = `n % ATTEMPT_LOG_KEEP`, overwriting attempt `n - ATTEMPT_LOG_KEEP`; so the log
//! holds at most [`ATTEMPT_LOG_KEEP`] rows per endpoint, at keys below it, and the newest is at
//! `slot(next_attempt_log - 1)`. Journals of schema 2 kept rows at the plain `n` (pruned every
//! 128 rows); opening one for writing moves them into their slots (`store/redb/handle.rs`), and
//! a read-only open reads them where they are: a key at or above [`ATTEMPT_LOG_KEEP`] can only
//! be such a row ([`newest`] then walks the keys down).
//!
//! A probe of a `down` endpoint that fails exactly as the newest row (same kind, event seq,
//! error code and status) does not add a row: that row's `repeats` grows by one and its
//! `last_ms` becomes the probe's start, in place (same slot, `next_attempt_log` unchanged).
//! 2,500 down endpoints probed every 400 ms would otherwise write 6,250 rows a second.

use crate::core::model::{AttemptKind, AttemptRecord, EndpointRecord};
use crate::store::tables::{ReadTables, Tables};
use crate::store::{ATTEMPT_LOG_KEEP, StoreError};

/// The key (ring slot) of attempt `n` of an endpoint.
pub fn slot(n: u64) -> u64 {
    n % ATTEMPT_LOG_KEEP
}

/// Logs an attempt of `rec`'s endpoint: a new row in the next slot, or, for a probe failing
/// like the newest row, one more repeat of that row. The caller writes `rec` back (its
/// `next_attempt_log` moves only for a new row).
pub fn log_row(
    t: &mut impl Tables,
    rec: &mut EndpointRecord,
    a: &AttemptRecord,
) -> Result<(), StoreError> {
    if let Some((at, mut newest)) = repeated(t, rec, a)? {
        newest.repeats = newest.repeats.saturating_add(1);
        newest.last_ms = a.started_ms;
        return t.attempt_put(&rec.id, at, newest.encode_logged().as_slice());
    }
    let n = rec.next_attempt_log;
    rec.next_attempt_log += 1;
    t.attempt_put(&rec.id, slot(n), a.encode_logged().as_slice())
}

/// The newest row (its slot and its attempt) when `a` is a failed probe that repeats it.
/// Only failed probes read it, so a delivery logs with one write and no read.
fn repeated(
    t: &impl ReadTables,
    rec: &EndpointRecord,
    a: &AttemptRecord,
) -> Result<Option<(u64, AttemptRecord)>, StoreError> {
    if a.kind != AttemptKind::Probe || a.error.is_none() || rec.next_attempt_log == 0 {
        return Ok(None);
    }
    let at = slot(rec.next_attempt_log - 1);
    let newest = t
        .attempt_get(&rec.id, at, AttemptRecord::decode_logged)?
        .flatten();
    Ok(newest
        .filter(|p| {
            p.kind == a.kind && p.seq == a.seq && p.error == a.error && p.status == a.status
        })
        .map(|p| (at, p)))
}

/// The newest `limit` attempts of `endpoint`, newest first: the slots from that of
/// `next_attempt_log - 1` (`next`) down to 0, then (once the ring has wrapped) from the last
/// slot down to the one after it. Rows that do not decode are left out. A log of plain keys
/// (schema 2, opened read-only) is read by key, highest first.
pub fn newest(
    t: &impl ReadTables,
    endpoint: &str,
    next: u64,
    limit: usize,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut top = None;
    t.attempts_each_rev(endpoint, |n, _| {
        top = Some(n);
        Ok(false)
    })?;
    match top {
        None => {}
        Some(n) if n >= ATTEMPT_LOG_KEEP || next == 0 => {
            t.attempts_each_rev(endpoint, |_, v| Ok(collect(&mut out, limit, v)))?;
        }
        Some(_) => {
            let head = slot(next - 1);
            t.attempts_each_rev_in(endpoint, 0, head, |_, v| Ok(collect(&mut out, limit, v)))?;
            if next > ATTEMPT_LOG_KEEP && out.len() < limit {
                t.attempts_each_rev_in(endpoint, head + 1, ATTEMPT_LOG_KEEP - 1, |_, v| {
                    Ok(collect(&mut out, limit, v))
                })?;
            }
        }
    }
    Ok(out)
}

/// Adds a row to `out` (an undecodable one is left out rather than failing the whole log);
/// `true` while fewer than `limit` are there.
fn collect(out: &mut Vec<AttemptRecord>, limit: usize, v: &[u8]) -> bool {
    if let Some(a) = AttemptRecord::decode_logged(v) {
        out.push(a);
    }
    out.len() < limit
}
