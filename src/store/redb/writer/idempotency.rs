//! The writer's `Idempotency-Key` rules: what a key remembers, when a repeat is the same request
//! (a duplicate) or another one (`IDEMPOTENCY_MISMATCH`), and the 24 h window's pruning.

use std::collections::HashMap;

use redb::ReadableTable;

use super::{Tables, se};
use crate::model::IdempotentHit;
use crate::store::StoreError;
use crate::store::{EnqueueReq, IDEMPOTENCY_TTL_MS};

/// The live (unexpired) remembered request for `req`'s `Idempotency-Key`, if any.
pub(super) fn remembered(
    t: &Tables<'_>,
    req: &EnqueueReq,
    now: u64,
) -> Result<Option<IdempotentHit>, StoreError> {
    let Some(key) = &req.idempotency_key else {
        return Ok(None);
    };
    let Some(v) = t
        .idempotency
        .get((req.endpoint.as_str(), key.as_str()))
        .map_err(se)?
    else {
        return Ok(None);
    };
    // A row that does not decode is treated as absent: the new request overwrites it, instead of
    // every request with that key failing until the hourly prune.
    let Some(hit) = IdempotentHit::decode(v.value()) else {
        return Ok(None);
    };
    Ok((now.saturating_sub(hit.created_ms) < IDEMPOTENCY_TTL_MS).then_some(hit))
}

/// The first line of a batch whose `Idempotency-Key` repeats an earlier request (in the journal
/// or earlier in the batch) with a different one: checked before anything of the batch is
/// written, so that the batch stays all or nothing.
pub(super) fn batch_mismatch(
    t: &Tables<'_>,
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

pub(super) fn prune_idempotency(t: &mut Tables<'_>, now: u64) -> Result<(), StoreError> {
    t.idempotency
        .retain(|_, v| {
            IdempotentHit::decode(v)
                .is_some_and(|h| now.saturating_sub(h.created_ms) < IDEMPOTENCY_TTL_MS)
        })
        .map_err(se)
}
