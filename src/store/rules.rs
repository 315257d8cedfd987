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
}

impl Rules {
    /// Starts from the stored endpoint records.
    pub fn load(t: &impl ReadTables) -> Result<Self, StoreError> {
        Ok(Self::from_records(read::endpoints(t)?))
    }

    /// Starts from these endpoint records.
    pub fn from_records(records: Vec<EndpointRecord>) -> Self {
        Self {
            endpoints: records.into_iter().map(|r| (r.id.clone(), r)).collect(),
            ids: IdGen::new(),
            limits: Limits::default(),
            full: HashSet::new(),
        }
    }

    /// The same, enforcing `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the endpoint records (after a backend reopened its storage).
    pub fn reload(&mut self, records: Vec<EndpointRecord>) {
        self.endpoints = records.into_iter().map(|r| (r.id.clone(), r)).collect();
    }

    /// The current record of an endpoint (including this transaction's changes).
    pub fn endpoint(&self, id: &str) -> Option<&EndpointRecord> {
        self.endpoints.get(id)
    }

    /// Notes the record of `id` before its first change in this transaction.
    fn touch(&self, ch: &mut Changes, id: &str) {
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
        Ok(())
    }

    /// Restores the endpoint records after the transaction of `ch` failed; its notices are
    /// dropped (nothing of it happened).
    pub fn undo(&mut self, ch: Changes) {
        for (id, old) in ch.undo {
            match old {
                Some(r) => self.endpoints.insert(id, r),
                None => self.endpoints.remove(&id),
            };
        }
    }
}
