//! The in-memory journal: the reference [`Journal`], with the same rules ([`crate::store::rules`])
//! over ordered maps ([`tables`]) instead of a file. Every write is its own transaction, applied
//! whole or not at all, under one lock; its notices are sent after it is applied, in order.
//! "Durable" here means applied: nothing survives the process. A new backend (NATS JetStream,
//! say) is held against this one by the contract suite.

mod tables;

use std::sync::{Arc, Mutex, MutexGuard};

use super::rules::{Applied, Changes, Rules, idempotency, read};
use super::{
    BackfillDone, BackfillReq, BulkDone, Clock, DeadPage, DeadQuery, EnqueueOk, EnqueueReq,
    JFuture, Journal, Loaded, NoticeSink, ProgressUpdate, StoreError, StoredRecord, SweepDone,
    invariants, system_clock,
};
use crate::core::dead_filter::DeadFilter;
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord,
};
pub use tables::MemTables;

/// How often (in the journal's clock) remembered keys outside the window are forgotten.
const PRUNE_EVERY_MS: u64 = 3600 * 1000;

/// The in-memory journal.
pub struct MemoryJournal {
    inner: Mutex<Inner>,
    clock: Clock,
}

struct Inner {
    tables: MemTables,
    rules: Rules,
    notify: NoticeSink,
    closed: bool,
    last_prune_ms: Option<u64>,
}

impl MemoryJournal {
    /// An empty journal on the wall clock; `notify` hears about every change.
    pub fn new(notify: NoticeSink) -> Self {
        Self::with_clock(notify, system_clock())
    }

    /// An empty journal reading the time from `clock`.
    pub fn with_clock(notify: NoticeSink, clock: Clock) -> Self {
        Self::with_limits(notify, clock, super::Limits::default())
    }

    /// An empty journal reading the time from `clock` and enforcing `limits`.
    pub fn with_limits(notify: NoticeSink, clock: Clock, limits: super::Limits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                tables: MemTables::default(),
                rules: Rules::from_records(Vec::new()).with_limits(limits),
                notify,
                closed: false,
                last_prune_ms: None,
            }),
            clock,
        }
    }

    /// Every violation of the store's invariants in the current state (empty when they hold).
    pub fn check_invariants(&self) -> Result<Vec<String>, StoreError> {
        invariants::check(&self.lock()?.tables)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("lock poisoned".into()))
    }

    /// Runs one write as a transaction: applied whole and its notices sent, or taken back.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Rules, &mut MemTables, u64, &mut Changes) -> Applied<T>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        if inner.closed {
            return Err(StoreError::Stopped);
        }
        let now = (self.clock)();
        let mut ch = Changes::default();
        let applied = f(&mut inner.rules, &mut inner.tables, now, &mut ch).and_then(|answer| {
            if inner
                .last_prune_ms
                .is_none_or(|at| now.saturating_sub(at) >= PRUNE_EVERY_MS)
            {
                inner.last_prune_ms = Some(now);
                idempotency::prune(&mut inner.tables, now)?;
            }
            inner.rules.finish(&mut inner.tables, &ch)?;
            Ok(answer)
        });
        match applied {
            Ok(answer) => {
                inner.tables.commit();
                for n in ch.notices.drain(..) {
                    (inner.notify)(n);
                }
                answer
            }
            Err(e) => {
                inner.tables.rollback();
                inner.rules.undo(ch);
                Err(e)
            }
        }
    }

    /// A write whose answer no one waits for.
    fn write_unanswered(
        &self,
        f: impl FnOnce(&mut Rules, &mut MemTables, u64, &mut Changes) -> Result<(), StoreError>,
    ) {
        let r = self.write(|rules, t, now, ch| f(rules, t, now, ch).map(Ok));
        if let Err(e) = r
            && e != StoreError::Stopped
        {
            tracing::error!(error = %e, "in-memory journal write failed");
        }
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MemTables) -> Result<T, StoreError>,
    ) -> JFuture<'_, T> {
        let r = self.lock().and_then(|g| f(&g.tables));
        Box::pin(std::future::ready(r))
    }
}

fn ready<T: Send + 'static>(r: Result<T, StoreError>) -> JFuture<'static, T> {
    Box::pin(std::future::ready(r))
}

fn count_accepted(oks: &[EnqueueOk]) {
    let n = oks.iter().filter(|o| !o.duplicate).count() as u64;
    metrics::counter!(crate::telemetry::EVENTS_ACCEPTED).increment(n);
}

impl Journal for MemoryJournal {
    fn enqueue(&self, req: EnqueueReq) -> JFuture<'_, EnqueueOk> {
        let r = self.write(|rules, t, now, ch| rules.enqueue(t, req, now, ch));
        if let Ok(ok) = &r {
            count_accepted(std::slice::from_ref(ok));
        }
        ready(r)
    }

    fn enqueue_batch(&self, reqs: Vec<EnqueueReq>) -> JFuture<'_, Vec<EnqueueOk>> {
        let r = self.write(|rules, t, now, ch| rules.enqueue_batch(t, reqs, now, ch));
        if let Ok(oks) = &r {
            count_accepted(oks);
        }
        ready(r)
    }

    fn put_endpoint(
        &self,
        id: String,
        config: EndpointConfig,
    ) -> JFuture<'_, (EndpointRecord, bool)> {
        ready(self.write(|rules, t, now, ch| rules.put_endpoint(t, id, config, now, ch)))
    }

    fn set_paused(&self, id: String, paused: bool) -> JFuture<'_, EndpointRecord> {
        ready(self.write(|rules, _, now, ch| rules.set_paused(id, paused, now, ch)))
    }

    fn delete_endpoint(&self, id: String, force: bool) -> JFuture<'_, ()> {
        ready(self.write(|rules, t, now, ch| rules.delete_endpoint(t, &id, force, now, ch)))
    }

    fn replay(&self, event_id: String) -> JFuture<'_, (String, u64)> {
        ready(self.write(|rules, t, _, ch| rules.replay(t, &event_id, ch)))
    }

    fn purge(&self, event_id: String) -> JFuture<'_, ()> {
        ready(self.write(|rules, t, _, _| rules.purge(t, event_id)))
    }

    fn replay_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone> {
        ready(self.write(|rules, t, _, ch| rules.replay_matching(t, &filter, after, limit, ch)))
    }

    fn purge_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone> {
        ready(self.write(|rules, t, _, _| rules.purge_matching(t, &filter, after, limit)))
    }

    fn put_channel(&self, id: String, config: ChannelConfig) -> JFuture<'_, (ChannelRecord, bool)> {
        ready(self.write(|rules, t, now, _| rules.put_channel(t, id, config, now)))
    }

    fn delete_channel(&self, id: String) -> JFuture<'_, ()> {
        ready(self.write(|rules, t, _, _| rules.delete_channel(t, id)))
    }

    fn sync(&self) -> JFuture<'_, ()> {
        ready(self.write(|_, _, _, _| Ok(Ok(()))))
    }

    fn close(&self) -> JFuture<'_, ()> {
        let r = self.lock().and_then(|mut g| {
            if g.closed {
                return Err(StoreError::Stopped);
            }
            g.closed = true;
            Ok(())
        });
        ready(r)
    }

    fn log_attempt(&self, endpoint: String, attempt: AttemptRecord) -> JFuture<'_, ()> {
        ready(self.write(|rules, t, now, ch| rules.log_attempt(t, &endpoint, &attempt, now, ch)))
    }

    fn record_progress(&self, update: ProgressUpdate) {
        self.write_unanswered(|rules, t, now, ch| rules.progress(t, update, now, ch));
    }

    fn quarantine(&self, endpoint: Arc<str>, seq: u64, why: String) {
        self.write_unanswered(|rules, t, now, ch| {
            rules.quarantine(t, &endpoint, seq, &why, now, ch)
        });
    }

    fn endpoints(&self) -> JFuture<'_, Vec<EndpointRecord>> {
        self.read(read::endpoints)
    }

    fn endpoint(&self, id: &str) -> JFuture<'_, Option<EndpointRecord>> {
        self.read(|t| read::endpoint(t, id))
    }

    fn channels(&self) -> JFuture<'_, Vec<ChannelRecord>> {
        self.read(read::channels)
    }

    fn load_events(&self, endpoint: &str, from: u64, limit: usize) -> JFuture<'_, Loaded> {
        self.read(|t| read::load_events(t, endpoint, from, limit))
    }

    fn dead_letters(&self, endpoint: Option<&str>) -> JFuture<'_, Vec<DeadLetter>> {
        self.read(|t| read::dead_letters(t, endpoint))
    }

    fn dead_letter_page(&self, query: DeadQuery) -> JFuture<'_, DeadPage> {
        self.read(|t| super::rules::dead_letters::page(t, &query))
    }

    fn dead_letter(&self, event_id: &str) -> JFuture<'_, Option<(DeadLetter, StoredRecord)>> {
        self.read(|t| read::dead_letter(t, event_id))
    }

    fn attempts(&self, endpoint: &str, limit: usize) -> JFuture<'_, Vec<AttemptRecord>> {
        self.read(|t| read::attempts(t, endpoint, limit))
    }

    fn backfill(&self, req: BackfillReq) -> JFuture<'_, BackfillDone> {
        ready(self.write(|rules, t, _, ch| rules.backfill(t, &req, ch)))
    }

    fn sweep(&self) -> JFuture<'_, SweepDone> {
        ready(self.write(|rules, t, now, ch| rules.sweep(t, now, ch)))
    }

    fn held_bytes(&self) -> u64 {
        self.lock()
            .map(|g| {
                g.rules
                    .held_bytes()
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .unwrap_or(0)
    }
}
