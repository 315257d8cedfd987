//! Dead letters: writing the one of a corrupt record (`RECORD_CORRUPT`, under a fresh id, raw
//! bytes kept), replay into the original position with the failure count reset (attempt
//! numbers continue), and purge.

use std::sync::Arc;

use super::{Applied, Changes, Rules};
use crate::core::model::{DeadLetter, EventProgress};
use crate::core::record;
use crate::store::tables::Tables;
use crate::store::{Notice, QueuedEvent, StoreError, decode, encode};

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
        t.dead_put(&dl.event_id, encode(&dl).as_slice())?;
        t.dead_record_put(&dl.event_id, bytes)?;
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
        t.event_put(ep, dl.seq, bytes.as_slice())?;
        t.progress_put(ep, dl.seq, encode(&progress).as_slice())?;
        t.dead_remove(event_id)?;
        t.dead_record_remove(event_id)?;
        self.touch(ch, ep);
        if let Some(r) = self.endpoints.get_mut(ep) {
            r.pending += 1;
        }
        ch.notices.push(Notice::Replayed {
            endpoint: Arc::from(ep),
            event: QueuedEvent {
                seq: dl.seq,
                meta: Arc::new(rec.meta),
                body: rec.body,
                progress,
            },
        });
        Ok(Ok((dl.endpoint, dl.seq)))
    }

    /// Removes a dead letter and its record for good.
    pub fn purge(&mut self, t: &mut impl Tables, event_id: String) -> Applied<()> {
        let existed = t.dead_remove(&event_id)?;
        t.dead_record_remove(&event_id)?;
        Ok(match existed {
            true => Ok(()),
            false => Err(StoreError::DeadLetterNotFound(event_id)),
        })
    }
}
