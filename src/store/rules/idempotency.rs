//! The `Idempotency-Key` rules: what a key remembers, when a repeat is the same request (a
//! duplicate) or another one (`IDEMPOTENCY_MISMATCH`), the 24 h window and its pruning.

use std::collections::HashMap;

use crate::core::model::IdempotentHit;
use crate::store::tables::{ReadTables, Tables};
use crate::store::{EnqueueReq, IDEMPOTENCY_TTL_MS, StoreError};

/// Whether a key remembered at `created_ms` is still inside the window at `now`.
pub fn live(created_ms: u64, now: u64) -> bool {
    now.saturating_sub(created_ms) < IDEMPOTENCY_TTL_MS
}

/// The live (unexpired) remembered request for `req`'s `Idempotency-Key`, if any.
pub fn remembered(
    t: &impl ReadTables,
    req: &EnqueueReq,
    now: u64,
) -> Result<Option<IdempotentHit>, StoreError> {
    let Some(key) = &req.idempotency_key else {
        return Ok(None);
    };
    // A row that does not decode is treated as absent: the new request overwrites it, instead of
    // every request with that key failing until the hourly prune.
    let hit = t
        .idempotency_get(&req.endpoint, key, IdempotentHit::decode)?
        .flatten();
    Ok(hit.filter(|h| live(h.created_ms, now)))
}

/// The first line of a batch whose `Idempotency-Key` repeats an earlier request (in the journal
/// or earlier in the batch) with a different one: checked before anything of the batch is
/// written, so that the batch stays all or nothing.
pub fn batch_mismatch(
    t: &impl ReadTables,
    reqs: &[EnqueueReq],
    now: u64,
) -> Result<Option<StoreError>, StoreError> {
    let mut seen: HashMap<(&str, &str), ([u8; 32], &str)> = HashMap::new();
    for (index, req) in reqs.iter().enumerate() {
        let (Some(key), Some(fp)) = (&req.idempotency_key, req.fingerprint) else {
            continue;
        };
        let earlier = match seen.get(&(req.endpoint.as_str(), key.as_str())) {
            Some((f, id)) => (*f != fp).then(|| id.to_string()),
            None => remembered(t, req, now)?.and_then(|h| (!h.matches(&fp)).then_some(h.event_id)),
        };
        if let Some(event_id) = earlier {
            return Ok(Some(StoreError::IdempotencyMismatch { event_id, index }));
        }
        seen.entry((req.endpoint.as_str(), key.as_str()))
            .or_insert((fp, req.meta.id.as_str()));
    }
    Ok(None)
}

/// Forgets every key outside the window (and every row that does not decode).
pub fn prune(t: &mut impl Tables, now: u64) -> Result<(), StoreError> {
    t.idempotency_retain(|v| IdempotentHit::decode(v).is_some_and(|h| live(h.created_ms, now)))
}
