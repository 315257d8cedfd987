//! Attempt results: delivered (the cursor moves past it; the row stays, retained), pending
//! (its progress is kept), dead (it leaves the log and becomes a dead letter); the endpoint's
//! `down` flag (with `state_since`), its last error and `connected_at`; the attempt log (its
//! ring: [`super::attempt_log`]), which also takes tests and calls ([`Rules::log_attempt`],
//! never an event's progress); quarantine of a pending record that fails its check.
//!
//! None of this adds a write per event: the endpoint record is rewritten with every attempt
//! anyway (its attempt-log key), and `connected_at` changes at most once a minute.

use super::attempt_log::log_row;
use super::{Applied, Changes, Rules};
use crate::core::model::{AttemptRecord, DeadLetter, EndpointRecord, ErrorInfo};
use crate::store::tables::Tables;
use crate::store::{ProgressOutcome, ProgressUpdate, StoreError, encode};

impl Rules {
    /// Applies an attempt's result. An update for an endpoint deleted meanwhile is dropped;
    /// one for an event no longer pending only logs the attempt.
    pub fn progress(
        &mut self,
        t: &mut impl Tables,
        u: ProgressUpdate,
        now: u64,
        ch: &mut Changes,
    ) -> Result<(), StoreError> {
        let ep: &str = &u.endpoint;
        if !self.endpoints.contains_key(ep) {
            return Ok(()); // endpoint deleted meanwhile
        }
        self.touch(ch, ep);
        match &u.outcome {
            ProgressOutcome::Delivered => {
                // A cursor move: the row stays in the log, retained for back-fill.
                self.log_delivered(t, ep, u.seq, u.progress.attempts)?;
            }
            ProgressOutcome::Pending => {
                let pending = match self.endpoints.get(ep) {
                    Some(rec) => super::log::pending_flags(t, ep, &rec.log, u.seq)?.is_some(),
                    None => false,
                };
                if pending {
                    t.progress_put(ep, u.seq, encode(&u.progress).as_slice())?;
                }
            }
            ProgressOutcome::Dead { reason } => {
                let bytes = self.log_take(t, ep, u.seq)?;
                t.progress_remove(ep, u.seq)?;
                if let Some(bytes) = bytes {
                    let dl = DeadLetter {
                        event_id: u.attempt.event_id.clone(),
                        endpoint: ep.to_string(),
                        seq: u.seq,
                        reason: reason.clone(),
                        progress: u.progress.clone(),
                        dead_at_ms: now,
                    };
                    super::dead_letters::put_dead(t, &dl, bytes.as_slice())?;
                }
            }
        }
        if let Some(rec) = self.endpoints.get_mut(ep) {
            if let Some(down) = u.down
                && down != rec.down
            {
                rec.down = down;
                rec.state_since_ms = Some(now);
            }
            note_result(rec, &u.attempt, u.progress.last_error.as_ref(), now);
            log_row(t, rec, &u.attempt)?;
        }
        Ok(())
    }

    /// Logs an attempt made outside the queue (a test or a call) in the endpoint's attempt
    /// log; a 2xx sets `connected_at`. No event's progress changes.
    pub fn log_attempt(
        &mut self,
        t: &mut impl Tables,
        ep: &str,
        attempt: &AttemptRecord,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<()> {
        if !self.endpoints.contains_key(ep) {
            return Ok(Err(StoreError::EndpointNotFound(ep.to_string())));
        }
        self.touch(ch, ep);
        if let Some(rec) = self.endpoints.get_mut(ep) {
            if attempt.error.is_none() && attempt.status.is_some_and(|s| (200..300).contains(&s)) {
                rec.note_connected(now);
            }
            log_row(t, rec, attempt)?;
        }
        Ok(Ok(()))
    }

    /// Sets aside a pending event whose stored record fails its check: it becomes a dead letter
    /// with reason `RECORD_CORRUPT` (see [`Rules::dead_letter_corrupt`]), so its endpoint can
    /// go on. Nothing happens when the endpoint or the event is gone meanwhile.
    pub fn quarantine(
        &mut self,
        t: &mut impl Tables,
        ep: &str,
        seq: u64,
        why: &str,
        now: u64,
        ch: &mut Changes,
    ) -> Result<(), StoreError> {
        if !self.endpoints.contains_key(ep) {
            return Ok(()); // deleted meanwhile (its backlog was dead-lettered then)
        }
        self.touch(ch, ep);
        let Some(bytes) = self.log_take(t, ep, seq)? else {
            return Ok(());
        };
        let progress = t.progress_take(ep, seq)?;
        self.dead_letter_corrupt(t, ep, seq, &bytes, progress.as_deref(), why, now)?;
        if let Some(rec) = self.endpoints.get_mut(ep) {
            rec.last_error = Some(ErrorInfo {
                code: super::RECORD_CORRUPT.into(),
                message: format!(
                    "the stored record of event seq {seq} is corrupt ({why}); it was set aside as a dead letter"
                ),
                status: None,
                at_ms: now,
            });
        }
        Ok(())
    }
}

/// What a delivery attempt tells of the endpoint: a 2xx that it is connected, a failure its
/// last error (kept across restarts) — the very error the scheduler shows (`shown`, the
/// event's last error), so a restarted or offline view says the same as the running one.
fn note_result(rec: &mut EndpointRecord, a: &AttemptRecord, shown: Option<&ErrorInfo>, now: u64) {
    match &a.error {
        None => {
            if a.status.is_some_and(|s| (200..300).contains(&s)) {
                rec.note_connected(now);
            }
        }
        Some(code) => {
            rec.last_error = Some(match shown {
                Some(e) if e.code == *code => e.clone(),
                _ => ErrorInfo {
                    code: code.clone(),
                    message: a.message.clone().unwrap_or_default(),
                    status: a.status,
                    at_ms: now,
                },
            });
        }
    }
}
