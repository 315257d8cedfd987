//! The journal's backend-neutral rules, written against [`Tables`] only and shared by every
//! backend: what each write does to the tables ([`enqueue`], [`endpoints`], [`progress`],
//! [`dead_letters`], the attempt log's ring: [`attempt_log`]), the `Idempotency-Key` window ([`idempotency`]), and how reads decode
//! ([`read`]). A backend supplies the transaction and decides when it commits; the rules decide
//! what is in it.
//!
//! [`Rules`] holds the endpoint records (the counters `next_seq`, `pending`, `next_attempt_log`
//! and `down` live there between commits): each transaction notes the records it changes in
//! its [`Changes`]; [`Rules::finish`] writes them into the transaction before the commit, and
//! [`Rules::undo`] puts the old ones back when the commit fails.
//!
//! Every write answers an [`Applied`]: the outer error is a storage failure (the backend
//! discards the whole transaction), the inner result is the write's own answer (a refusal such
//! as an unknown endpoint writes nothing).

pub mod attempt_log;
pub mod dead_letters;
pub mod endpoints;
pub mod enqueue;
pub mod idempotency;
pub mod log;
pub mod progress;
pub mod read;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::tables::{ReadTables, Tables};
use super::{Limits, Notice, StoreError, encode};
use crate::core::ids::IdGen;
use crate::core::model::EndpointRecord;

pub use dead_letters::RECORD_CORRUPT;

/// A write's result: `Err` aborts the transaction (storage failure); `Ok` is the write's answer.
pub type Applied<T> = Result<Result<T, StoreError>, StoreError>;

/// What one transaction changed outside the tables: the notices to send after its commit (in
/// order), and the endpoint records as they were before it, to restore if it fails.
#[derive(Default)]
pub struct Changes {
    pub notices: Vec<Notice>,
    undo: HashMap<String, Option<EndpointRecord>>,
    /// The byte totals before this transaction's first change.
    totals: Option<(u64, u64)>,
}

/// The rules' state between transactions: the endpoint records, and the id source for dead
/// letters whose own record is too corrupt to give one.
pub struct Rules {
    endpoints: HashMap<String, EndpointRecord>,
    ids: IdGen,
    limits: Limits,
    /// Endpoints whose intake was refused at the backlog limit and has not been accepted below
    /// it since (so that [`Notice::BacklogFull`] is sent once per crossing).
    full: HashSet<String>,
    /// Bytes of the pending records of every endpoint (what the journal owes).
    owed: u64,
    /// Bytes of every record in the logs (pending and retained).
    held: u64,
    /// `held`, for readers outside the writer ([`crate::store::Journal::held_bytes`]).
    held_shared: Arc<AtomicU64>,
}

impl Rules {
    /// Starts from the stored endpoint records.
    pub fn load(t: &impl ReadTables) -> Result<Self, StoreError> {
        Ok(Self::from_records(read::endpoints(t)?))
    }

    /// Starts from these endpoint records.
    pub fn from_records(records: Vec<EndpointRecord>) -> Self {
        let mut rules = Self {
            endpoints: HashMap::new(),
            ids: IdGen::new(),
            limits: Limits::default(),
            full: HashSet::new(),
            owed: 0,
            held: 0,
            held_shared: Arc::default(),
        };
        rules.reload(records);
        rules
    }

    /// The bytes the logs hold, as of the last finished transaction (shared with readers).
    pub fn held_bytes(&self) -> Arc<AtomicU64> {
        self.held_shared.clone()
    }

    /// The same, enforcing `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the endpoint records (after a backend reopened its storage).
    pub fn reload(&mut self, records: Vec<EndpointRecord>) {
        self.endpoints = records.into_iter().map(|r| (r.id.clone(), r)).collect();
        self.owed = self.endpoints.values().map(|r| r.log.pending_bytes).sum();
        self.held = self.endpoints.values().map(|r| r.log.log_bytes).sum();
        self.held_shared.store(self.held, Ordering::Relaxed);
    }

    /// The current record of an endpoint (including this transaction's changes).
    pub fn endpoint(&self, id: &str) -> Option<&EndpointRecord> {
        self.endpoints.get(id)
    }

    /// Notes the record of `id` before its first change in this transaction.
    fn touch(&self, ch: &mut Changes, id: &str) {
        if ch.totals.is_none() {
            ch.totals = Some((self.owed, self.held));
        }
        if !ch.undo.contains_key(id) {
            ch.undo
                .insert(id.to_string(), self.endpoints.get(id).cloned());
        }
    }

    /// Writes the endpoint records this transaction changed (call once, just before commit).
    pub fn finish(&self, t: &mut impl Tables, ch: &Changes) -> Result<(), StoreError> {
        for id in ch.undo.keys() {
            match self.endpoints.get(id) {
                Some(rec) => t.endpoint_put(id, encode(rec).as_slice())?,
                None => t.endpoint_remove(id)?,
            }
        }
        self.held_shared.store(self.held, Ordering::Relaxed);
        Ok(())
    }

    /// Restores the endpoint records after the transaction of `ch` failed; its notices are
    /// dropped (nothing of it happened).
    pub fn undo(&mut self, ch: Changes) {
        if let Some((owed, held)) = ch.totals {
            self.owed = owed;
            self.held = held;
            self.held_shared.store(held, Ordering::Relaxed);
        }
        for (id, old) in ch.undo {
            match old {
                Some(r) => self.endpoints.insert(id, r),
                None => self.endpoints.remove(&id),
            };
        }
    }
}
