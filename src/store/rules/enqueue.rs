//! Accepting events: the next sequence number of the endpoint, the record into `events`, the
//! `pending` count, the `Idempotency-Key` remembered; a batch is checked whole before anything
//! of it is written, so it is all or nothing. An endpoint holding `max_backlog` pending events
//! refuses more (`BacklogFull`; a repeated `Idempotency-Key` is still answered, it adds nothing),
//! and the first refusal of each crossing is told to the scheduler ([`Notice::BacklogFull`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::idempotency::{batch_mismatch, remembered};
use super::{Applied, Changes, Rules};
use crate::core::model::{EventProgress, IdempotentHit};
use crate::store::tables::Tables;
use crate::store::{EnqueueOk, EnqueueReq, Notice, QueuedEvent, StoreError, encode};

impl Rules {
    /// Accepts one event, or answers the original event of a repeated `Idempotency-Key`.
    pub fn enqueue(
        &mut self,
        t: &mut impl Tables,
        req: EnqueueReq,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<EnqueueOk> {
        let Some(pending) = self.endpoints.get(&req.endpoint).map(|r| r.pending) else {
            return Ok(Err(StoreError::EndpointNotFound(req.endpoint)));
        };
        if let Some(hit) = remembered(t, &req, now)? {
            if !req.fingerprint.is_some_and(|f| hit.matches(&f)) {
                return Ok(Err(StoreError::IdempotencyMismatch {
                    event_id: hit.event_id,
                    index: 0,
                }));
            }
            return Ok(Ok(EnqueueOk {
                id: hit.event_id,
                seq: hit.seq,
                duplicate: true,
            }));
        }
        if let Some(e) = self.over_limit(&req.endpoint, pending, 1, ch) {
            return Ok(Err(e));
        }
        if let Some(e) = self.journal_full(&req.endpoint, req.record.len() as u64) {
            return Ok(Err(e));
        }
        let ep = req.endpoint.as_str();
        self.touch(ch, ep);
        let Some(rec) = self.endpoints.get_mut(ep) else {
            return Ok(Err(StoreError::EndpointNotFound(req.endpoint)));
        };
        let seq = rec.next_seq;
        rec.next_seq += 1;
        t.event_put(ep, seq, req.record.as_slice())?;
        self.log_appended(ep, req.record.len() as u64);
        if let Some(key) = &req.idempotency_key {
            let hit = IdempotentHit {
                event_id: req.meta.id.clone(),
                seq,
                created_ms: now,
                fingerprint: req.fingerprint,
            };
            t.idempotency_put(ep, key, encode(&hit).as_slice())?;
        }
        let id = req.meta.id.clone();
        ch.notices.push(Notice::Enqueued {
            endpoint: Arc::from(ep),
            event: QueuedEvent {
                seq,
                meta: req.meta,
                body: req.body,
                progress: EventProgress::default(),
                replay: false,
                record_len: req.record.len() as u32,
            },
        });
        Ok(Ok(EnqueueOk {
            id,
            seq,
            duplicate: false,
        }))
    }

    /// Accepts every event of `reqs` or none: an unknown endpoint or an `Idempotency-Key`
    /// mismatch (against the journal or an earlier line) refuses the whole batch before
    /// anything is written.
    pub fn enqueue_batch(
        &mut self,
        t: &mut impl Tables,
        reqs: Vec<EnqueueReq>,
        now: u64,
        ch: &mut Changes,
    ) -> Applied<Vec<EnqueueOk>> {
        if let Some(m) = reqs
            .iter()
            .find(|r| !self.endpoints.contains_key(&r.endpoint))
        {
            return Ok(Err(StoreError::EndpointNotFound(m.endpoint.clone())));
        }
        if let Some(e) = batch_mismatch(t, &reqs, now)? {
            return Ok(Err(e));
        }
        // The whole batch is refused when it would take an endpoint past its limit.
        let mut per_endpoint: HashMap<&str, (u64, u64)> = HashMap::new();
        for r in &reqs {
            let e = per_endpoint.entry(r.endpoint.as_str()).or_default();
            e.0 += 1;
            e.1 += r.record.len() as u64;
        }
        let mut wanted: Vec<(&str, (u64, u64))> = per_endpoint.into_iter().collect();
        wanted.sort_unstable();
        let total: u64 = wanted.iter().map(|(_, (_, b))| b).sum();
        for (ep, (n, _)) in wanted {
            let pending = self.endpoints.get(ep).map_or(0, |r| r.pending);
            if let Some(e) = self.over_limit(ep, pending, n, ch) {
                return Ok(Err(e));
            }
            // The whole batch's bytes count against the journal; this endpoint's against its share.
            if let Some(e) = self.journal_full(ep, total) {
                return Ok(Err(e));
            }
        }
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            // Checked above, so a refusal here cannot happen; were it to, the transaction is
            // aborted rather than half of the batch kept.
            out.push(self.enqueue(t, req, now, ch)??);
        }
        Ok(Ok(out))
    }

    /// Whether `n` more events would take `endpoint` (holding `pending`) past the backlog
    /// limit: the refusal (and, the first time since the endpoint was last below it, the
    /// notice). Accepting below the limit ends the crossing.
    fn over_limit(
        &mut self,
        endpoint: &str,
        pending: u64,
        n: u64,
        ch: &mut Changes,
    ) -> Option<StoreError> {
        let limit = self
            .endpoints
            .get(endpoint)
            .and_then(|r| r.config.max_backlog)
            .unwrap_or(self.limits.max_backlog);
        if pending.saturating_add(n) <= limit {
            if !self.full.is_empty() {
                self.full.remove(endpoint);
            }
            return None;
        }
        if self.full.insert(endpoint.to_string()) {
            ch.notices.push(Notice::BacklogFull {
                endpoint: Arc::from(endpoint),
                limit,
            });
        }
        Some(StoreError::BacklogFull {
            id: endpoint.to_string(),
            limit,
        })
    }
}
