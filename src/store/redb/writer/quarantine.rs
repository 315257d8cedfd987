//! Setting aside a pending event whose stored record fails its check: it becomes a dead letter
//! with reason [`RECORD_CORRUPT`] under a fresh id, its raw bytes kept, so that its endpoint can
//! go on with the next event.

use super::{Batch, Tables, WriterState, encode, se};
use crate::model::{DeadLetter, EventProgress};
use crate::store::StoreError;

/// The dead-letter reason of an event whose stored record failed its check.
pub const RECORD_CORRUPT: &str = "RECORD_CORRUPT";

impl WriterState {
    /// Moves a corrupt pending record to the dead letters, under a fresh id (its own cannot be
    /// trusted), with its raw bytes, reason [`RECORD_CORRUPT`] and the decoding error.
    pub(super) fn quarantine(
        &mut self,
        t: &mut Tables<'_>,
        ep: &str,
        seq: u64,
        why: &str,
        now: u64,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if !self.endpoints.contains_key(ep) {
            return Ok(()); // deleted meanwhile (its backlog was dead-lettered then)
        }
        let Some(bytes) = t
            .events
            .remove((ep, seq))
            .map_err(se)?
            .map(|v| v.value().to_vec())
        else {
            return Ok(());
        };
        let progress = t
            .progress
            .remove((ep, seq))
            .map_err(se)?
            .map(|v| v.value().to_vec());
        self.dead_letter_corrupt(t, ep, seq, &bytes, progress.as_deref(), why, now)?;
        self.touch(batch, ep);
        if let Some(rec) = self.endpoints.get_mut(ep) {
            rec.pending = rec.pending.saturating_sub(1);
        }
        Ok(())
    }

    /// Writes the dead letter of a record that does not decode.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dead_letter_corrupt(
        &self,
        t: &mut Tables<'_>,
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
        progress.last_error = Some(crate::model::ErrorInfo {
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
        let id = dl.event_id.as_str();
        t.dead.insert(id, encode(&dl).as_slice()).map_err(se)?;
        t.dead_records.insert(id, bytes).map_err(se)?;
        metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => RECORD_CORRUPT).increment(1);
        Ok(())
    }
}
