//! How the journal's reads decode what the tables hold, the same for every backend: one bad row
//! never hides the good ones behind it (a corrupt pending record is reported, an undecodable
//! progress row costs the attempt count, an undecodable dead letter or attempt is left out).

use std::sync::Arc;

use crate::core::model::{AttemptRecord, ChannelRecord, DeadLetter, EndpointRecord, EventProgress};
use crate::core::record::{self, Record};
use crate::store::tables::ReadTables;
use crate::store::{Loaded, QueuedEvent, StoreError, StoredRecord, decode};

/// All endpoints, sorted by id.
pub fn endpoints(t: &impl ReadTables) -> Result<Vec<EndpointRecord>, StoreError> {
    let mut out = Vec::new();
    t.endpoints_each(|_, v| {
        out.push(decode_endpoint(v)?);
        Ok(true)
    })?;
    Ok(out)
}

/// One endpoint.
pub fn endpoint(t: &impl ReadTables, id: &str) -> Result<Option<EndpointRecord>, StoreError> {
    t.endpoint_get(id, decode_endpoint)?.transpose()
}

/// An endpoint row of either shape ([`EndpointRecord::decode`]).
fn decode_endpoint(v: &[u8]) -> Result<EndpointRecord, StoreError> {
    EndpointRecord::decode(v).ok_or_else(|| StoreError::Corrupt("endpoint does not decode".into()))
}

/// A channel row of either shape ([`ChannelRecord::decode`]).
pub(crate) fn decode_channel(v: &[u8]) -> Result<ChannelRecord, StoreError> {
    ChannelRecord::decode(v).ok_or_else(|| StoreError::Corrupt("channel does not decode".into()))
}

/// All ingress channels, sorted by id.
pub fn channels(t: &impl ReadTables) -> Result<Vec<ChannelRecord>, StoreError> {
    let mut out = Vec::new();
    t.channels_each(|_, v| {
        out.push(decode_channel(v)?);
        Ok(true)
    })?;
    Ok(out)
}

/// Up to `limit` pending events of `endpoint` with `seq >= from`, in order, with progress. A
/// record that fails its check is reported in `corrupt` (it counts toward `limit`) instead of
/// failing the read, so one bad record cannot stop the events behind it.
pub fn load_events(
    t: &impl ReadTables,
    endpoint: &str,
    from: u64,
    limit: usize,
) -> Result<Loaded, StoreError> {
    let mut out = Loaded::default();
    let Some(log) = t
        .endpoint_get(endpoint, decode_endpoint)?
        .transpose()?
        .map(|r| r.log)
    else {
        return Ok(out);
    };
    super::log::pending_each(t, endpoint, &log, from, |seq, v, flags| {
        if out.events.len() + out.corrupt.len() >= limit {
            return Ok(false);
        }
        let Record { meta, body } = match record::decode(v) {
            Ok(r) => r,
            Err(e) => {
                out.corrupt.push((seq, e.to_string()));
                return Ok(true);
            }
        };
        // A progress row that does not decode costs the attempt count, not the event.
        let progress = t
            .progress_get(endpoint, seq, |p| {
                decode::<EventProgress>("progress", p).unwrap_or_default()
            })?
            .unwrap_or_default();
        out.events.push(QueuedEvent {
            seq,
            meta: Arc::new(meta),
            body,
            progress,
            replay: flags & crate::store::tables::REOPENED_BACKFILL != 0,
            record_len: v.len() as u32,
        });
        Ok(true)
    })?;
    Ok(out)
}

/// Dead letters, oldest event first, optionally of one endpoint.
pub fn dead_letters(
    t: &impl ReadTables,
    endpoint: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut out = Vec::new();
    t.dead_each(|id, v| {
        // One undecodable row must not hide every other dead letter.
        let Ok(dl) = decode::<DeadLetter>("dead letter", v) else {
            tracing::warn!(
                event_id = id,
                "dead-letter row does not decode; left out of the list"
            );
            return Ok(true);
        };
        if endpoint.is_none_or(|e| e == dl.endpoint) {
            out.push(dl);
        }
        Ok(true)
    })?;
    Ok(out)
}

/// One dead letter with its record (or the raw bytes of a record that fails its check).
pub fn dead_letter(
    t: &impl ReadTables,
    event_id: &str,
) -> Result<Option<(DeadLetter, StoredRecord)>, StoreError> {
    let Some(dl) = t.dead_get(event_id, |v| decode::<DeadLetter>("dead letter", v))? else {
        return Ok(None);
    };
    let dl = dl?;
    let stored = t.dead_record_get(event_id, |v| match record::decode(v) {
        Ok(r) => StoredRecord::Intact(r),
        Err(e) => StoredRecord::Corrupt {
            raw: v.to_vec(),
            why: e.to_string(),
        },
    })?;
    match stored {
        Some(stored) => Ok(Some((dl, stored))),
        None => Err(StoreError::Corrupt(format!(
            "dead letter {event_id} has no record"
        ))),
    }
}

/// The newest `limit` attempts of an endpoint, newest first (its ring from the newest slot,
/// [`super::attempt_log::newest`]).
pub fn attempts(
    t: &impl ReadTables,
    endpoint: &str,
    limit: usize,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let next = t
        .endpoint_get(endpoint, EndpointRecord::decode)?
        .flatten()
        .map_or(0, |r| r.next_attempt_log);
    super::attempt_log::newest(t, endpoint, next, limit)
}
