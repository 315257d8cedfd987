//! Endpoint and channel writes: creation continues a deleted namesake's numbering (its
//! tombstone), pause, delete (refused with a backlog unless forced; forced, the backlog becomes
//! dead letters `ENDPOINT_DELETED` in seq order, corrupt records `RECORD_CORRUPT`), and ingress
//! channels (whose endpoint must exist).

use super::{Applied, Changes, Rules};
use crate::core::model::{
    ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord, EventProgress,
};
use crate::core::record;
use crate::store::rules::read::decode_channel;
use crate::store::tables::Tables;
use crate::store::{Notice, StoreError, decode, encode};

/// The dead-letter reason of the backlog of an endpoint deleted with `force`.
pub const ENDPOINT_DELETED: &str = "ENDPOINT_DELETED";

impl Rules {
    /// Creates or updates an endpoint; `true` when it was created.
    pub fn put_endpoint(
        &mut self,
        t: &mut impl Tables,
        id: String,
        config: EndpointConfig,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<(EndpointRecord, bool)> {
        self.touch(ch, &id);
        let created = !self.endpoints.contains_key(&id);
        let rec = if let Some(rec) = self.endpoints.get_mut(&id) {
            if rec.config.url != config.url {
                // Connected means connected to this URL.
                rec.connected_at_ms = None;
            }
            rec.max_backlog = config.max_backlog;
            rec.security = config.security.clone();
            rec.config = config;
            rec.updated_ms = now;
            rec.clone()
        } else {
            // A re-created endpoint continues the numbering of its deleted namesake, so old
            // dead letters replay without colliding with new events.
            let next_seq = t.tombstone_take(&id)?.unwrap_or(1);
            let rec = EndpointRecord {
                id: id.clone(),
                max_backlog: config.max_backlog,
                security: config.security.clone(),
                config,
                paused: false,
                created_ms: now,
                updated_ms: now,
                next_seq,
                pending: 0,
                next_attempt_log: 0,
                down: false,
                connected_at_ms: None,
                state_since_ms: Some(now),
                last_error: None,
                log: crate::core::model::LogPos {
                    cursor: next_seq,
                    retained_from: next_seq,
                    ..Default::default()
                },
            };
            self.endpoints.insert(id, rec.clone());
            rec
        };
        ch.notices
            .push(Notice::EndpointUpserted(Box::new(rec.clone())));
        Ok(Ok((rec, created)))
    }

    /// Pauses or resumes an endpoint.
    pub fn set_paused(
        &mut self,
        id: String,
        paused: bool,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<EndpointRecord> {
        if !self.endpoints.contains_key(&id) {
            return Ok(Err(StoreError::EndpointNotFound(id)));
        }
        self.touch(ch, &id);
        let Some(rec) = self.endpoints.get_mut(&id) else {
            return Ok(Err(StoreError::EndpointNotFound(id)));
        };
        if rec.paused != paused {
            rec.state_since_ms = Some(now);
        }
        rec.paused = paused;
        rec.updated_ms = now;
        ch.notices
            .push(Notice::EndpointUpserted(Box::new(rec.clone())));
        Ok(Ok(rec.clone()))
    }

    /// Deletes an endpoint with its events, progress, attempt log and remembered keys, leaving
    /// a tombstone with its next seq. With a backlog, refused unless `force`; forced, every
    /// pending event becomes a dead letter first, so every acknowledged event ends somewhere.
    pub fn delete_endpoint(
        &mut self,
        t: &mut impl Tables,
        id: &str,
        force: bool,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<()> {
        let Some(rec) = self.endpoints.get(id) else {
            return Ok(Err(StoreError::EndpointNotFound(id.to_string())));
        };
        if rec.pending > 0 && !force {
            return Ok(Err(StoreError::EndpointNotEmpty {
                id: id.to_string(),
                backlog: rec.pending,
            }));
        }
        let next_seq = rec.next_seq;
        let log = rec.log;
        let mut seqs = Vec::new();
        super::log::pending_each(t, id, &log, 0, |seq, _, _| {
            seqs.push(seq);
            Ok(true)
        })?;
        self.touch(ch, id);
        for seq in seqs {
            let Some(bytes) = self.log_take(t, id, seq)? else {
                continue;
            };
            let progress = t.progress_take(id, seq)?;
            let meta = match record::decode(&bytes) {
                Ok(r) => r.meta,
                Err(e) => {
                    // A corrupt record must not block the delete: set it aside like delivery does.
                    self.dead_letter_corrupt(
                        t,
                        id,
                        seq,
                        &bytes,
                        progress.as_deref(),
                        &e.to_string(),
                        now,
                    )?;
                    tracing::error!(endpoint = id, seq, error = %e, "corrupt event record set aside as a dead letter (RECORD_CORRUPT)");
                    continue;
                }
            };
            // A progress row that does not decode costs the attempt count, not the event.
            let progress: EventProgress = progress
                .and_then(|p| decode("progress", &p).ok())
                .unwrap_or_default();
            let dl = DeadLetter {
                event_id: meta.id,
                endpoint: id.to_string(),
                seq,
                reason: ENDPOINT_DELETED.into(),
                progress,
                dead_at_ms: now,
            };
            super::dead_letters::put_dead(t, &dl, bytes.as_slice())?;
            metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => "ENDPOINT_DELETED")
                .increment(1);
        }
        // What is left of the log is delivered events kept for back-fill.
        if let Some(rec) = self.endpoints.get(id) {
            self.held = self.held.saturating_sub(rec.log.log_bytes);
            self.owed = self.owed.saturating_sub(rec.log.pending_bytes);
        }
        t.events_clear(id)?;
        t.progress_clear(id)?;
        t.log_clear(id)?;
        t.attempts_clear(id)?;
        t.idempotency_clear(id)?;
        t.tombstone_put(id, next_seq)?;
        self.endpoints.remove(id);
        ch.notices.push(Notice::EndpointDeleted(id.to_string()));
        Ok(Ok(()))
    }

    /// Creates or updates an ingress channel; its endpoint must exist.
    pub fn put_channel(
        &mut self,
        t: &mut impl Tables,
        id: String,
        config: ChannelConfig,
        now: u64,
    ) -> Applied<(ChannelRecord, bool)> {
        if !self.endpoints.contains_key(&config.endpoint) {
            return Ok(Err(StoreError::EndpointNotFound(config.endpoint)));
        }
        let existing = match t.channel_get(&id, decode_channel)? {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return Ok(Err(e)),
            None => None,
        };
        let created = existing.is_none();
        let rec = ChannelRecord {
            id,
            security: config.security.clone(),
            config,
            created_ms: existing.map_or(now, |e| e.created_ms),
            updated_ms: now,
        };
        t.channel_put(&rec.id, encode(&rec).as_slice())?;
        Ok(Ok((rec, created)))
    }

    /// Deletes an ingress channel.
    pub fn delete_channel(&mut self, t: &mut impl Tables, id: String) -> Applied<()> {
        Ok(match t.channel_remove(&id)? {
            true => Ok(()),
            false => Err(StoreError::ChannelNotFound(id)),
        })
    }
}
