//! Schema upgrades of the journal, run in the write transaction of the open (nothing of them
//! stays if it fails): schema 1 → 2 builds the dead-letter index, 2 → 3 counts the retained
//! log's bytes and moves the attempt log into its ring, 3 → 4 (the segment log) changes no row,
//! 4 → 5 seals every `endpoints` and `channels` row under the first master key.

use redb::ReadableTable;

use super::{ATTEMPTS, DEAD, DEAD_INDEX, ENDPOINTS, EVENTS};
use crate::core::model::DeadLetter;
use crate::store::StoreError;
use crate::store::seal::KeyRing;

/// Brings a journal of schema `from` to [`crate::store::SCHEMA_VERSION`], in the open's write transaction
/// (nothing of it stays if that fails): schema 1 gains the dead-letter index; schema 2 the
/// retained log's byte counts and its attempt log's ring; schema 4 and older their sealed
/// rows. Answers how many rows it sealed.
pub(super) fn upgrade(
    tx: &redb::WriteTransaction,
    from: u64,
    keys: &KeyRing,
) -> Result<u64, StoreError> {
    if from < 2 {
        // The first schema had no dead-letter index.
        build_dead_index(tx)?;
    }
    if from < 3 {
        // The retained log: every row the older journal has in `events` is pending; count
        // their bytes into the endpoint records (rewritten in their third shape).
        count_log_bytes(tx)?;
        ring_attempts(tx)?;
    }
    // Schema 4 (the segment log) changes no row: records of older rows stay in them, new
    // ones go to segments.
    let mut rows = 0;
    if from < 5 {
        // Last: the steps above write endpoint rows in clear.
        rows = super::sealed::seal_all(tx, keys)?;
        tracing::info!(
            rows,
            key_id = %keys.sealing_id(),
            "endpoint and channel rows sealed under the master key (journal schema {from} -> 5)"
        );
    }
    Ok(rows)
}

/// Moves the attempt log of a journal of schema 2 (rows at the plain attempt number `n`, the
/// newest 1,000 to 1,127 kept) into its ring: per endpoint, the newest [`crate::store::ATTEMPT_LOG_KEEP`]
/// rows go to their slots `n % ATTEMPT_LOG_KEEP` and the older ones are removed. Rows below
/// the ring's size already are at their slot; only an endpoint whose newest key is at or
/// above it has rows to move, at most [`crate::store::ATTEMPT_LOG_KEEP`] at a time in memory.
fn ring_attempts(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    use crate::store::ATTEMPT_LOG_KEEP as KEEP;
    use StoreError as E;
    let mut attempts = tx.open_table(ATTEMPTS).map_err(E::from_redb)?;
    let (mut endpoints, mut moved) = (0u64, 0u64);
    // The endpoints with a key at or above KEEP, each with its newest key.
    let mut wrapped: Vec<(String, u64)> = Vec::new();
    let mut from = None::<String>;
    loop {
        let next = match &from {
            None => attempts
                .first()
                .map_err(E::from_redb)?
                .map(|(k, _)| k.value().0.to_string()),
            Some(ep) => attempts
                .range((ep.as_str(), u64::MAX)..)
                .map_err(E::from_redb)?
                .find(|r| r.as_ref().map_or(true, |(k, _)| k.value().0 != ep.as_str()))
                .transpose()
                .map_err(E::from_redb)?
                .map(|(k, _)| k.value().0.to_string()),
        };
        let Some(ep) = next else { break };
        let top = attempts
            .range((ep.as_str(), 0)..=(ep.as_str(), u64::MAX))
            .map_err(E::from_redb)?
            .next_back()
            .transpose()
            .map_err(E::from_redb)?
            .map_or(0, |(k, _)| k.value().1);
        if top >= KEEP {
            wrapped.push((ep.clone(), top));
        }
        from = Some(ep);
    }
    for (ep, top) in wrapped {
        let keep_from = top + 1 - KEEP;
        let ep = ep.as_str();
        let mut rows = Vec::new();
        for row in attempts
            .range((ep, keep_from.max(KEEP))..=(ep, top))
            .map_err(E::from_redb)?
        {
            let (k, v) = row.map_err(E::from_redb)?;
            rows.push((k.value().1, v.value().to_vec()));
        }
        attempts
            .retain_in((ep, 0)..=(ep, u64::MAX), |(_, n), _| {
                n >= keep_from && n < KEEP
            })
            .map_err(E::from_redb)?;
        for (n, v) in &rows {
            attempts
                .insert((ep, n % KEEP), v.as_slice())
                .map_err(E::from_redb)?;
        }
        endpoints += 1;
        moved += rows.len() as u64;
    }
    tracing::info!(
        endpoints,
        moved,
        "attempt log moved into its ring (journal schema 2 -> 3)"
    );
    Ok(())
}

/// Upgrades the endpoint records of a journal of schema 1 or 2 to the retained log: the cursor
/// at 0 (every row is pending, as those journals kept only pending rows) and the bytes of the
/// rows counted, so that `--max-journal-bytes` sees them.
fn count_log_bytes(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut endpoints = tx.open_table(ENDPOINTS).map_err(StoreError::from_redb)?;
    let events = tx.open_table(EVENTS).map_err(StoreError::from_redb)?;
    let mut records = Vec::new();
    for row in endpoints.iter().map_err(StoreError::from_redb)? {
        let (_, v) = row.map_err(StoreError::from_redb)?;
        if let Some(rec) = crate::core::model::EndpointRecord::decode(v.value()) {
            records.push(rec);
        }
    }
    for mut rec in records {
        let mut bytes = 0u64;
        for row in events
            .range((rec.id.as_str(), 0)..=(rec.id.as_str(), u64::MAX))
            .map_err(StoreError::from_redb)?
        {
            let (_, v) = row.map_err(StoreError::from_redb)?;
            // A record's length, whether the row holds it or a stub pointing at it.
            bytes += super::segments::head(v.value()).0;
        }
        rec.log = crate::core::model::LogPos {
            pending_bytes: bytes,
            log_bytes: bytes,
            ..Default::default()
        };
        endpoints
            .insert(rec.id.as_str(), crate::store::encode(&rec).as_slice())
            .map_err(StoreError::from_redb)?;
    }
    tracing::info!("endpoint records upgraded to the retained log (journal schema 3)");
    Ok(())
}

/// Indexes every dead letter of a journal of the first schema by `(endpoint, seq)`. A row that
/// does not decode is left out (lists leave it out too; it can still be shown and purged).
fn build_dead_index(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let dead = tx.open_table(DEAD).map_err(StoreError::from_redb)?;
    let mut index = tx.open_table(DEAD_INDEX).map_err(StoreError::from_redb)?;
    let mut n = 0u64;
    for row in dead.iter().map_err(StoreError::from_redb)? {
        let (k, v) = row.map_err(StoreError::from_redb)?;
        let Ok(dl) = crate::store::decode::<DeadLetter>("dead letter", v.value()) else {
            continue;
        };
        index
            .insert((dl.endpoint.as_str(), dl.seq), k.value().as_bytes())
            .map_err(StoreError::from_redb)?;
        n += 1;
    }
    tracing::info!(
        dead_letters = n,
        "dead-letter index built (journal schema 1 -> 2)"
    );
    Ok(())
}
