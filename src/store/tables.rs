//! The storage-transaction seam: the tables of one journal transaction as ordered byte maps.
//! A backend implements [`ReadTables`] (for its reads) and [`Tables`] (for one write
//! transaction); the backend-neutral rules in [`super::rules`] are written against them only.
//!
//! Values are the stored bytes (postcard shapes of [`crate::core::model`] and record bytes of
//! [`crate::core::record`]); the rules encode and decode them, so every backend stores the same
//! bytes. Reads hand the stored bytes to a closure instead of copying them out. Scans visit rows
//! in key order and stop when the closure answers `false`. Any `Err` a table call returns is a
//! storage failure: the rules abort the whole transaction on it.

use super::StoreError;

/// The read side of the retained log's side tables (see `store/rules/log.rs`): `done` holds
/// the seqs delivered out of order at or above an endpoint's cursor, `reopened` the seqs that
/// are pending again although the cursor or `done` says otherwise, with their flags
/// ([`REOPENED_BACKFILL`]). A journal of an older schema opened read-only has neither: both
/// read as empty.
pub trait ReadLogTables {
    fn done_has(&self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;
    /// The `done` seqs of `endpoint` from `from` on, in order.
    fn done_each(
        &self,
        endpoint: &str,
        from: u64,
        f: impl FnMut(u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Every `done` row, by (endpoint, seq).
    fn done_all(
        &self,
        f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// The flags of a `reopened` row.
    fn reopened_get(&self, endpoint: &str, seq: u64) -> Result<Option<u8>, StoreError>;
    /// The `reopened` rows of `endpoint` from `from` on, in order.
    fn reopened_each(
        &self,
        endpoint: &str,
        from: u64,
        f: impl FnMut(u64, u8) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Every `reopened` row, by (endpoint, seq).
    fn reopened_all(
        &self,
        f: impl FnMut(&str, u64, u8) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// A `reopened` flag: the event was reopened by a back-fill (its attempts carry
/// `X-HAPP-Replay: 1`).
pub const REOPENED_BACKFILL: u8 = 1;

/// The write side of the retained log's side tables.
pub trait LogTables: ReadLogTables {
    fn done_put(&mut self, endpoint: &str, seq: u64) -> Result<(), StoreError>;
    /// Removes a `done` row; `true` when it was there.
    fn done_remove(&mut self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;
    fn reopened_put(&mut self, endpoint: &str, seq: u64, flags: u8) -> Result<(), StoreError>;
    /// Removes a `reopened` row; `true` when it was there.
    fn reopened_remove(&mut self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;
    /// Removes every `done` and `reopened` row of `endpoint`.
    fn log_clear(&mut self, endpoint: &str) -> Result<(), StoreError>;
}

/// The read side of the journal's tables (one consistent snapshot).
pub trait ReadTables: ReadLogTables {
    /// The stored endpoint record of `id`, passed to `f`.
    fn endpoint_get<T>(
        &self,
        id: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// Every endpoint record, by id.
    fn endpoints_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The pending event record at `(endpoint, seq)`.
    fn event_get<T>(
        &self,
        endpoint: &str,
        seq: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// The length of the record at `(endpoint, seq)` and when its event was accepted (`None`
    /// when the record does not say), without reading its body where the backend can.
    fn event_head(
        &self,
        endpoint: &str,
        seq: u64,
    ) -> Result<Option<(u64, Option<u64>)>, StoreError> {
        self.event_get(endpoint, seq, |v| {
            (v.len() as u64, crate::core::record::enqueued_at(v))
        })
    }
    /// [`ReadTables::event_head`] of the events of `endpoint` with `seq >= from`, by seq.
    fn events_each_head(
        &self,
        endpoint: &str,
        from: u64,
        mut f: impl FnMut(u64, u64, Option<u64>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.events_each(endpoint, from, |seq, v| {
            f(seq, v.len() as u64, crate::core::record::enqueued_at(v))
        })
    }
    /// The pending events of `endpoint` with `seq >= from`, by seq.
    fn events_each(
        &self,
        endpoint: &str,
        from: u64,
        f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Every pending event of every endpoint, by (endpoint, seq).
    fn events_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The progress row at `(endpoint, seq)`.
    fn progress_get<T>(
        &self,
        endpoint: &str,
        seq: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// Every progress row, by (endpoint, seq).
    fn progress_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The dead letter of `event_id`.
    fn dead_get<T>(
        &self,
        event_id: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// Every dead letter, by event id.
    fn dead_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// The record kept beside the dead letter of `event_id`.
    fn dead_record_get<T>(
        &self,
        event_id: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// The dead letters with an event id after `after` (all when `None`), by event id.
    fn dead_each_after(
        &self,
        after: Option<&str>,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// The dead-letter index of `endpoint` from `from` on: `(seq, event id)` by seq. Answers
    /// `false` (visiting nothing) when the storage has no index (a journal of the first schema
    /// opened read-only): the caller then scans `dead_letters`.
    fn dead_index_each(
        &self,
        endpoint: &str,
        from: u64,
        f: impl FnMut(u64, &str) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError>;
    /// Every row of the dead-letter index, by (endpoint, seq).
    fn dead_index_all(
        &self,
        f: impl FnMut(&str, u64, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Every dead letter's record, by event id.
    fn dead_records_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The attempt-log row of `endpoint` at key `n` (a ring slot, see
    /// [`super::rules::attempt_log`]).
    fn attempt_get<T>(
        &self,
        endpoint: &str,
        n: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// The attempt-log rows of `endpoint` with keys in `from..=to`, highest key first.
    fn attempts_each_rev_in(
        &self,
        endpoint: &str,
        from: u64,
        to: u64,
        f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
    /// Every attempt-log row of `endpoint`, highest key first.
    fn attempts_each_rev(
        &self,
        endpoint: &str,
        f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.attempts_each_rev_in(endpoint, 0, u64::MAX, f)
    }
    /// Every attempt-log row, by (endpoint, n).
    fn attempts_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// What the `Idempotency-Key` `key` of `endpoint` remembers.
    fn idempotency_get<T>(
        &self,
        endpoint: &str,
        key: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError>;
    /// Every remembered key, by (endpoint, key).
    fn idempotency_all(
        &self,
        f: impl FnMut(&str, &str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The stored channel `id`.
    fn channel_get<T>(&self, id: &str, f: impl FnOnce(&[u8]) -> T)
    -> Result<Option<T>, StoreError>;
    /// Every channel, by id.
    fn channels_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// Every tombstone: the next seq of a deleted endpoint id, by id.
    fn tombstones_each(
        &self,
        f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// One write transaction: nothing of it is visible to readers, or durable, before the backend
/// commits it; a backend that cannot commit discards all of it.
pub trait Tables: ReadTables + LogTables {
    fn endpoint_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError>;
    fn endpoint_remove(&mut self, id: &str) -> Result<(), StoreError>;

    fn event_put(&mut self, endpoint: &str, seq: u64, record: &[u8]) -> Result<(), StoreError>;
    /// Removes an event; `true` when it was there.
    fn event_remove(&mut self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;
    /// Removes an event and answers its record.
    fn event_take(&mut self, endpoint: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes every event of `endpoint`.
    fn events_clear(&mut self, endpoint: &str) -> Result<(), StoreError>;

    fn progress_put(&mut self, endpoint: &str, seq: u64, value: &[u8]) -> Result<(), StoreError>;
    /// Removes a progress row; `true` when it was there.
    fn progress_remove(&mut self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;
    /// Removes a progress row and answers its bytes.
    fn progress_take(&mut self, endpoint: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes every progress row of `endpoint`.
    fn progress_clear(&mut self, endpoint: &str) -> Result<(), StoreError>;

    fn dead_put(&mut self, event_id: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes a dead letter; `true` when it was there.
    fn dead_remove(&mut self, event_id: &str) -> Result<bool, StoreError>;
    fn dead_record_put(&mut self, event_id: &str, record: &[u8]) -> Result<(), StoreError>;
    fn dead_record_remove(&mut self, event_id: &str) -> Result<bool, StoreError>;
    /// Indexes the dead letter `event_id` at its `(endpoint, seq)`.
    fn dead_index_put(
        &mut self,
        endpoint: &str,
        seq: u64,
        event_id: &str,
    ) -> Result<(), StoreError>;
    /// Removes an index row; `true` when it was there.
    fn dead_index_remove(&mut self, endpoint: &str, seq: u64) -> Result<bool, StoreError>;

    /// Writes (or overwrites) the attempt-log row at key `n`.
    fn attempt_put(&mut self, endpoint: &str, n: u64, value: &[u8]) -> Result<(), StoreError>;
    /// Removes every attempt-log row of `endpoint`.
    fn attempts_clear(&mut self, endpoint: &str) -> Result<(), StoreError>;

    fn idempotency_put(
        &mut self,
        endpoint: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError>;
    /// Forgets every key of `endpoint`.
    fn idempotency_clear(&mut self, endpoint: &str) -> Result<(), StoreError>;
    /// Keeps the remembered keys whose value `keep` accepts.
    fn idempotency_retain(&mut self, keep: impl FnMut(&[u8]) -> bool) -> Result<(), StoreError>;

    fn channel_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes a channel; `true` when it was there.
    fn channel_remove(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Remembers the next seq of a deleted endpoint id.
    fn tombstone_put(&mut self, endpoint: &str, next_seq: u64) -> Result<(), StoreError>;
    /// Removes and answers the tombstone of `endpoint`.
    fn tombstone_take(&mut self, endpoint: &str) -> Result<Option<u64>, StoreError>;
}
