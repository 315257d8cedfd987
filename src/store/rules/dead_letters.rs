//! Dead letters: writing one (with its record and its `(endpoint, seq)` index row), the one of
//! a corrupt record (`RECORD_CORRUPT`, under a fresh id, raw bytes kept), replay into the
//! original position with the failure count reset (attempt numbers continue), purge, and the
//! bulk side: a page of the dead letters a [`DeadFilter`] selects, replay and purge by filter.
//!
//! A walk with an endpoint follows the index (`seq` order: a page costs its rows, not a scan);
//! one without follows the event id. Every walk looks at no more than [`PAGE_SCAN`] rows per
//! call, so a sparse filter answers a short page and where to go on instead of scanning
//! everything at once.

use std::sync::Arc;

use super::{Applied, Changes, Rules};
use crate::core::dead_filter::{Cursor, DeadFilter};
use crate::core::model::{DeadLetter, EventProgress};
use crate::core::record;
use crate::store::tables::{ReadTables, Tables};
use crate::store::{
    BulkDone, DeadEntry, DeadPage, DeadQuery, Notice, QueuedEvent, StoreError, StoredRecord,
    decode, encode,
};

/// Most rows one page, replay or purge call looks at.
pub const PAGE_SCAN: usize = 10_000;

/// Writes a dead letter, its record and its index row.
pub fn put_dead(t: &mut impl Tables, dl: &DeadLetter, record: &[u8]) -> Result<(), StoreError> {
    t.dead_put(&dl.event_id, encode(dl).as_slice())?;
    t.dead_record_put(&dl.event_id, record)?;
    t.dead_index_put(&dl.endpoint, dl.seq, &dl.event_id)
}

/// Removes a dead letter, its record and its index row; `true` when it was there. `at` is its
/// `(endpoint, seq)` when known; otherwise it is read from the row (and, for a row that does
/// not decode, the index is searched for it).
fn remove_dead(
    t: &mut impl Tables,
    event_id: &str,
    at: Option<(&str, u64)>,
) -> Result<bool, StoreError> {
    let at: Option<(String, u64)> = match at {
        Some((ep, seq)) => Some((ep.to_string(), seq)),
        None => match t.dead_get(event_id, |v| decode::<DeadLetter>("dead letter", v))? {
            Some(Ok(dl)) => Some((dl.endpoint, dl.seq)),
            Some(Err(_)) => {
                let mut found = None;
                t.dead_index_all(|ep, seq, id| {
                    if id == event_id {
                        found = Some((ep.to_string(), seq));
                    }
                    Ok(found.is_none())
                })?;
                found
            }
            None => None,
        },
    };
    let existed = t.dead_remove(event_id)?;
    t.dead_record_remove(event_id)?;
    if let Some((ep, seq)) = at {
        t.dead_index_remove(&ep, seq)?;
    }
    Ok(existed)
}

/// The state of one walk over dead letters: how many rows it looked at, the last one, and
/// whether it stopped with rows left.
struct Walk<'f, V> {
    filter: &'f DeadFilter,
    examined: usize,
    last: Option<Cursor>,
    stop: bool,
    more: bool,
    visit: V,
}

impl<V: FnMut(DeadLetter) -> Result<bool, StoreError>> Walk<'_, V> {
    /// One row of the walk (`dl` is `None` for one that does not decode or is not where the
    /// index says); answers whether to go on.
    fn row(
        &mut self,
        pos: impl FnOnce() -> Cursor,
        dl: Option<DeadLetter>,
    ) -> Result<bool, StoreError> {
        if self.stop {
            self.more = true;
            return Ok(false);
        }
        self.examined += 1;
        self.last = Some(pos());
        if let Some(dl) = dl
            && self.filter.matches(&dl)
            && !(self.visit)(dl)?
        {
            self.stop = true;
        }
        if self.examined >= PAGE_SCAN {
            self.stop = true;
        }
        Ok(true)
    }
}

/// Walks the dead letters `filter` selects after `after`, handing each to `visit` until it
/// answers `false`; answers where to go on, `None` when the walk reached the end.
fn walk(
    t: &impl ReadTables,
    filter: &DeadFilter,
    after: Option<&Cursor>,
    visit: impl FnMut(DeadLetter) -> Result<bool, StoreError>,
) -> Result<Option<Cursor>, StoreError> {
    let mut w = Walk {
        filter,
        examined: 0,
        last: None,
        stop: false,
        more: false,
        visit,
    };
    let decoded = |v: &[u8]| decode::<DeadLetter>("dead letter", v).ok();
    match filter.endpoint.as_deref() {
        Some(ep) => {
            let from = match after {
                None => 0,
                Some(Cursor::Seq(s)) => match s.checked_add(1) {
                    Some(f) => f,
                    None => return Ok(None),
                },
                Some(Cursor::Id(_)) => return Err(StoreError::Internal),
            };
            let indexed = t.dead_index_each(ep, from, |seq, id| {
                let dl = t
                    .dead_get(id, decoded)?
                    .flatten()
                    .filter(|dl| dl.endpoint == ep && dl.seq == seq);
                w.row(|| Cursor::Seq(seq), dl)
            })?;
            if !indexed {
                // No index (a first-schema journal opened read-only): scan, then sort.
                let mut rows = Vec::new();
                t.dead_each_after(None, |_, v| {
                    if let Some(dl) = decoded(v).filter(|dl| dl.endpoint == ep && dl.seq >= from) {
                        rows.push(dl);
                    }
                    Ok(true)
                })?;
                rows.sort_by_key(|dl| dl.seq);
                for dl in rows {
                    let seq = dl.seq;
                    if !w.row(|| Cursor::Seq(seq), Some(dl))? {
                        break;
                    }
                }
            }
        }
        None => {
            let after = match after {
                None => None,
                Some(Cursor::Id(id)) => Some(id.as_str()),
                Some(Cursor::Seq(_)) => return Err(StoreError::Internal),
            };
            t.dead_each_after(after, |id, v| {
                w.row(|| Cursor::Id(id.to_string()), decoded(v))
            })?;
        }
    }
    Ok(if w.more { w.last } else { None })
}

/// A page of dead letters (see [`crate::store::Journal::dead_letter_page`]).
pub fn page(t: &impl ReadTables, q: &DeadQuery) -> Result<DeadPage, StoreError> {
    let mut entries = Vec::new();
    let limit = q.limit.max(1);
    let next = walk(t, &q.filter, q.after.as_ref(), |letter| {
        let record = match q.records {
            false => None,
            true => t.dead_record_get(&letter.event_id, |v| match record::decode(v) {
                Ok(r) => StoredRecord::Intact(r),
                Err(e) => StoredRecord::Corrupt {
                    raw: v.to_vec(),
                    why: e.to_string(),
                },
            })?,
        };
        if q.records && record.is_none() {
            return Ok(true); // a dead letter without its record (invariant 4) is left out
        }
        entries.push(DeadEntry { letter, record });
        Ok(entries.len() < limit)
    })?;
    Ok(DeadPage { entries, next })
}

/// The matches of a bulk operation: at most `limit` dead letters of the filter's endpoint after
/// seq `after`, and where to go on.
fn matches(
    t: &impl ReadTables,
    filter: &DeadFilter,
    after: Option<u64>,
    limit: usize,
) -> Result<(Vec<DeadLetter>, Option<u64>), StoreError> {
    let mut found = Vec::new();
    let limit = limit.max(1);
    let next = walk(t, filter, after.map(Cursor::Seq).as_ref(), |dl| {
        found.push(dl);
        Ok(found.len() < limit)
    })?;
    let next = match next {
        Some(Cursor::Seq(s)) => Some(s),
        _ => None,
    };
    Ok((found, next))
}

/// How many bytes of records one bulk replay commit moves back at most (past it the commit
/// ends early and says where to go on): every replayed record is handed to the scheduler with
/// the commit's notices, so this bounds that memory whatever the events' sizes.
pub const REPLAY_CHUNK_BYTES: usize = 16 << 20;

/// The dead-letter reason of an event whose stored record failed its check.
pub const RECORD_CORRUPT: &str = "RECORD_CORRUPT";

impl Rules {
    /// Writes the dead letter of a pending record that does not decode: under a fresh id (its
    /// own cannot be trusted), with its raw bytes, reason [`RECORD_CORRUPT`] and the decoding
    /// error as its last error. `progress` is the raw progress row, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn dead_letter_corrupt(
        &self,
        t: &mut impl Tables,
        ep: &str,
        seq: u64,
        bytes: &[u8],
        progress: Option<&[u8]>,
        why: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut progress: EventProgress = progress
            .and_then(|p| postcard::from_bytes(p).ok())
            .unwrap_or_default();
        progress.last_error = Some(crate::core::model::ErrorInfo {
            code: RECORD_CORRUPT.into(),
            message: format!("the stored record of event {ep}/{seq} is corrupt: {why}"),
            status: None,
            at_ms: now,
        });
        let dl = DeadLetter {
            event_id: self.ids.next(now),
            endpoint: ep.to_string(),
            seq,
            reason: RECORD_CORRUPT.into(),
            progress,
            dead_at_ms: now,
        };
        put_dead(t, &dl, bytes)?;
        metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => RECORD_CORRUPT).increment(1);
        Ok(())
    }

    /// Puts a dead letter back at its original `(endpoint, seq)`, its failure count reset (the
    /// retry schedule starts afresh; attempt numbers continue); answers `(endpoint, seq)`.
    pub fn replay(
        &mut self,
        t: &mut impl Tables,
        event_id: &str,
        ch: &mut Changes,
    ) -> Applied<(String, u64)> {
        let dl: DeadLetter = match t.dead_get(event_id, |v| decode("dead letter", v))? {
            Some(Ok(dl)) => dl,
            Some(Err(e)) => return Ok(Err(e)),
            None => return Ok(Err(StoreError::DeadLetterNotFound(event_id.to_string()))),
        };
        Ok(self.replay_letter(t, dl, ch)?.map(|(ep, seq, _)| (ep, seq)))
    }

    /// Replays the dead letters `filter` selects after seq `after` (see
    /// [`crate::store::Journal::replay_matching`]), in seq order.
    pub fn replay_matching(
        &mut self,
        t: &mut impl Tables,
        filter: &DeadFilter,
        after: Option<u64>,
        limit: usize,
        ch: &mut Changes,
    ) -> Applied<BulkDone> {
        let Some(ep) = filter.endpoint.as_deref() else {
            return Ok(Err(StoreError::Internal));
        };
        if !self.endpoints.contains_key(ep) {
            return Ok(Err(StoreError::EndpointNotFound(ep.to_string())));
        }
        let (found, next) = matches(t, filter, after, limit)?;
        let mut done = BulkDone {
            next,
            ..BulkDone::default()
        };
        let mut bytes = 0usize;
        let count = found.len();
        for (i, dl) in found.into_iter().enumerate() {
            let seq = dl.seq;
            match self.replay_letter(t, dl, ch)? {
                Ok((_, _, size)) => {
                    done.done += 1;
                    bytes = bytes.saturating_add(size);
                }
                Err(_) => done.skipped += 1,
            }
            // The replayed records travel to the scheduler with the commit: bound them by
            // size too, and let the caller go on after this one.
            if bytes >= REPLAY_CHUNK_BYTES && i + 1 < count {
                done.next = Some(seq);
                break;
            }
        }
        Ok(Ok(done))
    }

    /// Purges the dead letters `filter` selects after seq `after` (see
    /// [`crate::store::Journal::purge_matching`]).
    pub fn purge_matching(
        &mut self,
        t: &mut impl Tables,
        filter: &DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Applied<BulkDone> {
        if filter.endpoint.is_none() {
            return Ok(Err(StoreError::Internal));
        }
        let (found, next) = matches(t, filter, after, limit)?;
        let mut done = BulkDone {
            next,
            ..BulkDone::default()
        };
        for dl in found {
            if remove_dead(t, &dl.event_id, Some((&dl.endpoint, dl.seq)))? {
                done.done += 1;
            }
        }
        Ok(Ok(done))
    }

    /// [`Rules::replay`] of a dead letter already read; answers its endpoint, seq and the size
    /// of its record.
    fn replay_letter(
        &mut self,
        t: &mut impl Tables,
        dl: DeadLetter,
        ch: &mut Changes,
    ) -> Applied<(String, u64, usize)> {
        let event_id = dl.event_id.as_str();
        let ep = dl.endpoint.as_str();
        if !self.endpoints.contains_key(ep) {
            return Ok(Err(StoreError::EndpointNotFound(dl.endpoint.clone())));
        }
        let Some(bytes) = t.dead_record_get(event_id, <[u8]>::to_vec)? else {
            return Ok(Err(StoreError::Corrupt(format!(
                "dead letter {event_id} has no record"
            ))));
        };
        let rec = match record::decode(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(StoreError::NotReplayable {
                    event_id: event_id.to_string(),
                    why: e.to_string(),
                }));
            }
        };
        let mut progress = dl.progress.clone();
        progress.failures = 0; // the schedule starts afresh; attempt numbers continue
        self.touch(ch, ep);
        self.log_put_back(t, ep, dl.seq, bytes.as_slice())?;
        t.progress_put(ep, dl.seq, encode(&progress).as_slice())?;
        remove_dead(t, event_id, Some((ep, dl.seq)))?;
        ch.notices.push(Notice::Replayed {
            endpoint: Arc::from(ep),
            event: QueuedEvent {
                seq: dl.seq,
                meta: Arc::new(rec.meta),
                body: rec.body,
                progress,
                replay: false,
                record_len: bytes.len() as u32,
            },
        });
        Ok(Ok((dl.endpoint, dl.seq, bytes.len())))
    }

    /// Removes a dead letter and its record for good.
    pub fn purge(&mut self, t: &mut impl Tables, event_id: String) -> Applied<()> {
        let existed = remove_dead(t, &event_id, None)?;
        Ok(match existed {
            true => Ok(()),
            false => Err(StoreError::DeadLetterNotFound(event_id)),
        })
    }
}
