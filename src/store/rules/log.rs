//! The retained log: which `events` rows of an endpoint are pending (its cursor and the `done`
//! and `reopened` side tables, [`LogPos`]), what a delivery does to them (a cursor move, no row
//! deleted), retention (delivered rows removed by [`Rules::sweep`], oldest first) and back-fill
//! ([`Rules::backfill`]: delivered rows of a time window made pending again).
//!
//! An endpoint's pending events are `R ∪ {s ∈ events : s ≥ cursor, s ∉ D}`, `R` its `reopened`
//! rows and `D` its `done` rows, with `R ⊆ events`, `D ⊆ events ∩ [cursor, next_seq)` and
//! `R ∩ [cursor, ∞) ⊆ D` (`store::invariants` checks them). Every other row is a delivered
//! event kept for back-fill. A delivery in order moves the cursor past the event (no table
//! write beyond the endpoint record, which every attempt rewrites anyway); out of order it adds
//! a `done` row, which the cursor takes back when it passes. Rows leave the log only by
//! retention, by dead-lettering and by an endpoint's delete.

use std::sync::Arc;

use super::{Applied, Changes, Rules};
use crate::core::model::{EventProgress, LogPos};
use crate::core::record;
use crate::store::tables::{REOPENED_BACKFILL, ReadTables, Tables};
use crate::store::{
    BackfillDone, BackfillReq, Notice, QueuedEvent, REPLAY_CHUNK_BYTES, StoreError, SweepDone,
};

/// Most rows one retention pass removes (one commit).
pub const SWEEP_MAX_ROWS: usize = 10_000;
/// Most rows one back-fill chunk looks at (the events it reopens included).
pub const BACKFILL_SCAN: usize = 10_000;
/// Past this share of `--max-journal-bytes` (in tenths), an endpoint holding more than its
/// share of the limit is refused.
pub const FAIR_SHARE_FROM_TENTHS: u64 = 9;

/// Whether row `seq` of an endpoint whose log is `log` is pending: its `reopened` flags (0 for
/// a plain pending row), `None` when it is not pending (delivered, or no such row).
pub fn pending_flags(
    t: &impl ReadTables,
    ep: &str,
    log: &LogPos,
    seq: u64,
) -> Result<Option<u8>, StoreError> {
    if log.reopened > 0
        && let Some(f) = t.reopened_get(ep, seq)?
    {
        return Ok(Some(f));
    }
    if seq < log.cursor || (log.done > 0 && t.done_has(ep, seq)?) {
        return Ok(None);
    }
    Ok(t.event_head(ep, seq)?.map(|_| 0))
}

/// Visits the pending rows of `ep` (whose log is `log`) with `seq >= from`, in seq order, with
/// their `reopened` flags, until `f` answers `false`: the reopened rows below the cursor first
/// (they are older than every row at or above it), then the rows from the cursor on that have
/// no `done` row (or are reopened).
pub fn pending_each(
    t: &impl ReadTables,
    ep: &str,
    log: &LogPos,
    from: u64,
    mut f: impl FnMut(u64, &[u8], u8) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut go = true;
    if log.reopened > 0 && from < log.cursor {
        let mut below = Vec::new();
        t.reopened_each(ep, from, |seq, flags| {
            if seq >= log.cursor {
                return Ok(false);
            }
            below.push((seq, flags));
            Ok(true)
        })?;
        for (seq, flags) in below {
            if let Some(more) = t.event_get(ep, seq, |v| f(seq, v, flags))?
                && !more?
            {
                go = false;
                break;
            }
        }
    }
    if !go {
        return Ok(());
    }
    t.events_each(ep, from.max(log.cursor), |seq, v| {
        if log.done > 0 && t.done_has(ep, seq)? {
            return match (log.reopened > 0)
                .then(|| t.reopened_get(ep, seq))
                .transpose()?
            {
                Some(Some(flags)) => f(seq, v, flags),
                _ => Ok(true),
            };
        }
        f(seq, v, 0)
    })
}

/// The first row of `ep` at or after `from`: its seq and when its event was accepted.
fn first_row(t: &impl ReadTables, ep: &str, from: u64) -> Result<Option<(u64, u64)>, StoreError> {
    let mut out = None;
    t.events_each_head(ep, from, |seq, _, at| {
        out = Some((seq, at.unwrap_or(0)));
        Ok(false)
    })?;
    Ok(out)
}

/// The first seq of `ep` in `[lo, hi)` whose event was accepted at or after `since` (a binary
/// search: seqs are given in acceptance order, so acceptance times rise with them, give or take
/// the few milliseconds between minting an id and its commit).
fn first_since(
    t: &impl ReadTables,
    ep: &str,
    mut lo: u64,
    mut hi: u64,
    since: u64,
) -> Result<u64, StoreError> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match first_row(t, ep, mid)? {
            Some((seq, at)) if seq < hi => {
                if at >= since {
                    hi = mid;
                } else {
                    lo = seq + 1;
                }
            }
            _ => hi = mid,
        }
    }
    Ok(lo)
}

impl Rules {
    /// A pending event of `ep` was delivered. `attempts` is the number of its attempts: a
    /// progress row exists only for an event with a failed attempt before this one, so the
    /// first attempt's 2xx does not look for one. Answers whether it was pending (a repeated
    /// or late result changes nothing).
    pub(super) fn log_delivered(
        &mut self,
        t: &mut impl Tables,
        ep: &str,
        seq: u64,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        let Some(rec) = self.endpoints.get_mut(ep) else {
            return Ok(false);
        };
        let log = &mut rec.log;
        let len;
        if log.reopened > 0 && t.reopened_remove(ep, seq)? {
            // Sent again (back-fill, a replay below the cursor): delivered again. Its row
            // stays where it is, behind the cursor or with its `done` row.
            log.reopened -= 1;
            len = t.event_head(ep, seq)?.map_or(0, |(len, _)| len);
        } else {
            if seq < log.cursor || (log.done > 0 && t.done_has(ep, seq)?) {
                return Ok(false);
            }
            let Some((l, _)) = t.event_head(ep, seq)? else {
                return Ok(false);
            };
            len = l;
            if seq == log.cursor {
                log.cursor = seq + 1;
            } else {
                // Is any row between the cursor and this one still pending?
                fold(t, ep, log)?;
                match first_row(t, ep, log.cursor)? {
                    Some((first, _)) if first < seq => {
                        t.done_put(ep, seq)?;
                        log.done += 1;
                    }
                    _ => log.cursor = seq + 1,
                }
            }
            fold(t, ep, log)?;
        }
        if attempts > 1 {
            t.progress_remove(ep, seq)?;
        }
        rec.pending = rec.pending.saturating_sub(1);
        rec.log.pending_bytes = rec.log.pending_bytes.saturating_sub(len);
        self.owed = self.owed.saturating_sub(len);
        Ok(true)
    }

    /// Takes a pending event of `ep` out of the log (it becomes a dead letter, or is deleted
    /// with its endpoint): its record, or `None` when it was not pending.
    pub(super) fn log_take(
        &mut self,
        t: &mut impl Tables,
        ep: &str,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(rec) = self.endpoints.get_mut(ep) else {
            return Ok(None);
        };
        let log = &mut rec.log;
        if pending_flags(t, ep, log, seq)?.is_none() {
            return Ok(None);
        }
        let Some(bytes) = t.event_take(ep, seq)? else {
            return Ok(None);
        };
        if log.reopened > 0 && t.reopened_remove(ep, seq)? {
            log.reopened -= 1;
        }
        if seq >= log.cursor && log.done > 0 && t.done_remove(ep, seq)? {
            log.done -= 1;
        }
        let len = bytes.len() as u64;
        rec.pending = rec.pending.saturating_sub(1);
        log.pending_bytes = log.pending_bytes.saturating_sub(len);
        log.log_bytes = log.log_bytes.saturating_sub(len);
        self.owed = self.owed.saturating_sub(len);
        self.held = self.held.saturating_sub(len);
        Ok(Some(bytes))
    }

    /// Puts an event's record back into the log of `ep` at `seq`, pending (a dead letter
    /// replayed): below the cursor it is reopened.
    pub(super) fn log_put_back(
        &mut self,
        t: &mut impl Tables,
        ep: &str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let Some(rec) = self.endpoints.get_mut(ep) else {
            return Ok(());
        };
        t.event_put(ep, seq, bytes)?;
        let log = &mut rec.log;
        if seq < log.cursor {
            t.reopened_put(ep, seq, 0)?;
            log.reopened += 1;
        }
        log.retained_from = log.retained_from.min(seq);
        let len = bytes.len() as u64;
        rec.pending += 1;
        log.pending_bytes += len;
        log.log_bytes += len;
        self.owed += len;
        self.held += len;
        Ok(())
    }

    /// Notes a new event of `len` bytes at the tail of `ep`'s log (its row is written by the
    /// caller).
    pub(super) fn log_appended(&mut self, ep: &str, len: u64) {
        if let Some(rec) = self.endpoints.get_mut(ep) {
            rec.pending += 1;
            rec.log.pending_bytes += len;
            rec.log.log_bytes += len;
            self.owed += len;
            self.held += len;
        }
    }

    /// Whether `bytes` more for `ep` would take the journal past `--max-journal-bytes`: past
    /// the limit every endpoint is refused; past nine tenths of it, an endpoint holding more
    /// than its share of the limit (the limit over the number of endpoints), so a dead receiver
    /// is stopped before it takes the room the others need.
    pub(super) fn journal_full(&self, ep: &str, bytes: u64) -> Option<StoreError> {
        let limit = self.limits.max_journal_bytes?;
        let after = self.owed.saturating_add(bytes);
        let mine = self.endpoints.get(ep).map_or(0, |r| r.log.pending_bytes);
        let share = limit / (self.endpoints.len().max(1) as u64);
        let over = after > limit
            || (after > limit / 10 * FAIR_SHARE_FROM_TENTHS && mine.saturating_add(bytes) > share);
        over.then(|| StoreError::JournalFull {
            id: ep.to_string(),
            held: self.owed,
            limit,
            endpoint_bytes: mine,
        })
    }

    /// One chunk of a back-fill (see [`crate::store::Journal::backfill`]).
    pub fn backfill(
        &mut self,
        t: &mut impl Tables,
        req: &BackfillReq,
        ch: &mut Changes,
    ) -> Applied<BackfillDone> {
        let ep = req.endpoint.as_str();
        let Some(rec) = self.endpoints.get(ep) else {
            return Ok(Err(StoreError::EndpointNotFound(req.endpoint.clone())));
        };
        let log = rec.log;
        let next_seq = rec.next_seq;
        let oldest = first_row(t, ep, log.retained_from)?;
        let retained_since_ms = oldest.map(|(_, at)| at);
        let until = req.until_ms.unwrap_or(u64::MAX);
        // Retention removed events of the window: the window began before the newest event
        // it removed.
        let cut = log.removed_through_ms > 0 && req.since_ms <= log.removed_through_ms;
        if req.after.is_none() && cut && retained_since_ms.is_none_or(|at| at > until) {
            return Ok(Err(StoreError::WindowGone {
                id: req.endpoint.clone(),
                retained_since_ms,
            }));
        }
        let start = match req.after {
            Some(a) => a + 1,
            None => first_since(t, ep, log.retained_from, next_seq, req.since_ms)?,
        };
        let mut done = BackfillDone {
            retained_since_ms,
            cut,
            ..BackfillDone::default()
        };
        let limit = req.limit.max(1);
        // Read first (the walk borrows the tables), then write. Only what was delivered is
        // sent again; what is pending goes out in its turn, once.
        let mut scanned = 0usize;
        let mut reopen: Vec<u64> = Vec::new();
        let mut bytes = 0u64;
        let mut last = None;
        let mut ended = true;
        let tr = &*t;
        tr.events_each_head(ep, start, |seq, len, at| {
            if at.is_some_and(|at| at > until) {
                return Ok(false);
            }
            if scanned >= BACKFILL_SCAN
                || reopen.len() >= limit
                || bytes >= REPLAY_CHUNK_BYTES as u64
            {
                ended = false;
                return Ok(false);
            }
            scanned += 1;
            last = Some(seq);
            let delivered = match tr.reopened_get(ep, seq)? {
                Some(_) => false,
                None => seq < log.cursor || (log.done > 0 && tr.done_has(ep, seq)?),
            };
            if delivered {
                bytes = bytes.saturating_add(len);
                reopen.push(seq);
            } else {
                done.pending += 1;
            }
            Ok(true)
        })?;
        if !ended {
            done.next = last;
        }
        for seq in reopen {
            let Some(v) = t.event_get(ep, seq, <[u8]>::to_vec)? else {
                continue;
            };
            let Ok(r) = record::decode(&v) else {
                continue; // a corrupt delivered record is not sent again (nor set aside: it is done)
            };
            t.reopened_put(ep, seq, REOPENED_BACKFILL)?;
            self.touch(ch, ep);
            if let Some(rec) = self.endpoints.get_mut(ep) {
                rec.pending += 1;
                rec.log.reopened += 1;
                rec.log.pending_bytes += v.len() as u64;
            }
            self.owed += v.len() as u64;
            done.done += 1;
            ch.notices.push(Notice::Replayed {
                endpoint: Arc::from(ep),
                event: QueuedEvent {
                    seq,
                    meta: Arc::new(r.meta),
                    body: r.body,
                    progress: EventProgress::default(),
                    replay: true,
                    record_len: v.len() as u32,
                },
            });
        }
        Ok(Ok(done))
    }

    /// One retention pass (see [`crate::store::Journal::sweep`]): for each endpoint, its
    /// delivered rows from the oldest on, while they are older than the retention — or, while
    /// the logs hold more than `--max-journal-bytes`, regardless of age — at most
    /// [`SWEEP_MAX_ROWS`] in all. Only endpoints that lose rows are rewritten.
    pub fn sweep(&mut self, t: &mut impl Tables, now: u64, ch: &mut Changes) -> Applied<SweepDone> {
        let cutoff = now.saturating_sub(self.limits.retention_ms);
        let mut over = self
            .limits
            .max_journal_bytes
            .map_or(0, |l| self.held.saturating_sub(l));
        let mut done = SweepDone::default();
        let mut budget = SWEEP_MAX_ROWS;
        let mut ids: Vec<String> = self
            .endpoints
            .values()
            .filter(|r| r.log.retained_from < r.log.cursor)
            .map(|r| r.id.clone())
            .collect();
        ids.sort_unstable();
        for ep in ids {
            if budget == 0 {
                done.more = true;
                break;
            }
            let Some(log) = self.endpoints.get(&ep).map(|r| r.log) else {
                continue;
            };
            let mut gone: Vec<(u64, u64, u64)> = Vec::new();
            let mut first_kept = None;
            let mut stopped_at = None;
            t.events_each_head(&ep, log.retained_from, |seq, len, at| {
                if seq >= log.cursor {
                    stopped_at = Some(seq);
                    return Ok(false);
                }
                if gone.len() >= budget {
                    stopped_at = Some(seq);
                    return Ok(false);
                }
                let old = at.is_none_or(|at| at < cutoff);
                if !old && over == 0 {
                    stopped_at = Some(seq);
                    return Ok(false);
                }
                gone.push((seq, len, at.unwrap_or(0)));
                over = over.saturating_sub(len);
                Ok(true)
            })?;
            // Reopened rows are pending: they stay (and hold `retained_from` at them).
            let mut removed_bytes = 0u64;
            let mut removed = 0u64;
            let mut newest_ms = log.removed_through_ms;
            for (seq, len, at) in gone {
                if log.reopened > 0 && t.reopened_get(&ep, seq)?.is_some() {
                    first_kept.get_or_insert(seq);
                    continue;
                }
                t.event_remove(&ep, seq)?;
                t.progress_remove(&ep, seq)?;
                removed += 1;
                removed_bytes += len;
                newest_ms = newest_ms.max(at);
            }
            budget = budget.saturating_sub(removed as usize);
            let retained_from = first_kept
                .or(stopped_at)
                .unwrap_or(log.cursor)
                .min(log.cursor);
            if removed == 0 && retained_from == log.retained_from {
                continue;
            }
            self.touch(ch, &ep);
            if let Some(rec) = self.endpoints.get_mut(&ep) {
                rec.log.retained_from = retained_from;
                rec.log.removed_through_ms = newest_ms;
                rec.log.log_bytes = rec.log.log_bytes.saturating_sub(removed_bytes);
            }
            self.held = self.held.saturating_sub(removed_bytes);
            done.removed += removed;
            done.bytes += removed_bytes;
            if budget == 0 {
                done.more = true;
            }
        }
        Ok(Ok(done))
    }
}

/// Takes the `done` rows at the cursor back: the cursor moves past each `done` row that is
/// the first row at or after it.
fn fold(t: &mut impl Tables, ep: &str, log: &mut LogPos) -> Result<(), StoreError> {
    while log.done > 0 {
        let Some((first, _)) = first_row(t, ep, log.cursor)? else {
            break;
        };
        if !t.done_has(ep, first)? {
            break;
        }
        t.done_remove(ep, first)?;
        log.done -= 1;
        log.cursor = first + 1;
    }
    Ok(())
}
