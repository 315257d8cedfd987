//! The single writer thread and its group commit.
//!
//! Producers and the scheduler send [`Op`]s over a crossbeam channel. The thread blocks for one
//! op, then takes everything else that queued up meanwhile (up to [`MAX_BATCH_OPS`] /
//! [`MAX_BATCH_BYTES`]) — that is, what arrived while the previous commit was syncing — applies
//! it all in one redb write transaction, commits once, and only then answers every op of the
//! batch and tells the scheduler about new events. If the commit fails, nothing of the batch is
//! applied and every op gets the error.
//!
//! What each op does to the tables is the backend-neutral [`crate::store::rules`]; this file
//! is only the protocol, the batching, durable or lazy commits, failing a batch as a whole and
//! the reopen after an I/O error. The thread is the only owner of the [`Rules`] (the endpoint
//! counters `next_seq`, `pending`, attempt-log keys live there), which undo their changes when
//! a batch fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redb::Durability;

mod answers;
mod op;

use super::DbHandle;
use super::event_rows::io;
use super::segments::compact::compact_one;
use super::segments::seal::seal;
use super::tables::{WriteTables, se};
use crate::store::rules::{Rules, idempotency};
use crate::store::{Clock, CommitHealth, HealthFlag, Limits, NoticeSink, StoreError, system_clock};
use answers::{Batch, Finished};
pub use op::{Op, Reply};

pub use crate::store::rules::RECORD_CORRUPT;

/// Longest a non-durable commit (deliveries, attempt results) waits for a durable one.
pub const LAZY_SYNC: Duration = Duration::from_millis(500);
/// Most ops in one commit.
pub const MAX_BATCH_OPS: usize = 16_384;
/// Most body bytes in one commit.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// A cloneable handle that sends ops to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Op>,
    /// The bytes the logs hold, as the writer's last transaction left them.
    held: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn spawn(
        db: DbHandle,
        notify: NoticeSink,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError> {
        Self::spawn_with_clock(db, notify, system_clock())
    }

    /// Starts the writer thread; the rules read the time from `clock` (once per commit).
    pub fn spawn_with_clock(
        db: DbHandle,
        notify: NoticeSink,
        clock: Clock,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError> {
        Self::spawn_with(db, notify, clock, Limits::default(), Default::default())
    }

    /// Starts the writer thread enforcing `limits`; every commit's result goes to `health`.
    pub fn spawn_with(
        db: DbHandle,
        notify: NoticeSink,
        clock: Clock,
        limits: Limits,
        health: Arc<HealthFlag>,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError> {
        let rules = Rules::from_records(db.endpoints()?).with_limits(limits);
        let held = rules.held_bytes();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = WriterState {
            db,
            rules,
            notify,
            clock,
            lazy_since: None,
            broken: false,
            last_prune: None,
            health,
            meters: Meters::new(),
        };
        let handle = std::thread::Builder::new()
            .name("courier-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::Storage(format!("cannot start writer thread: {e}")))?;
        Ok((Writer { tx, held }, handle))
    }

    /// A writer with no thread behind it: every op is refused (`Stopped`). The read-only
    /// journal of offline inspection has one, so nothing it is asked can write.
    pub fn detached() -> Writer {
        let (tx, _) = crossbeam_channel::bounded(0);
        Writer {
            tx,
            held: Arc::default(),
        }
    }

    /// Bytes of event records in the logs (pending and retained).
    pub fn held_bytes(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends an op without waiting for it.
    pub fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx.send(op).map_err(|_| StoreError::Stopped)
    }

    /// Sends an op and waits for its answer (after its commit).
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Ops waiting for the writer (a gauge for overload).
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

struct WriterState {
    db: DbHandle,
    rules: Rules,
    notify: NoticeSink,
    clock: Clock,
    /// When the oldest non-durable commit not yet covered by a durable one was made: the next
    /// commit after `LAZY_SYNC` from then is durable, however busy the writer is.
    lazy_since: Option<Instant>,
    /// The database must be reopened before the next batch.
    broken: bool,
    last_prune: Option<Instant>,
    health: Arc<HealthFlag>,
    meters: Meters,
}

/// The writer's metric handles, taken once (a commit only increments them).
struct Meters {
    accepted: metrics::Counter,
    failures: metrics::Counter,
    batch: metrics::Histogram,
    duration: metrics::Histogram,
}

impl Meters {
    fn new() -> Self {
        Self {
            accepted: metrics::counter!(crate::telemetry::EVENTS_ACCEPTED),
            failures: metrics::counter!(crate::telemetry::COMMIT_FAILURES),
            batch: metrics::histogram!(crate::telemetry::COMMIT_BATCH),
            duration: metrics::histogram!(crate::telemetry::COMMIT_DURATION),
        }
    }
}

impl WriterState {
    fn run(&mut self, rx: Receiver<Op>) {
        loop {
            let first = if let Some(since) = self.lazy_since {
                match rx.recv_deadline(since + LAZY_SYNC) {
                    Ok(op) => op,
                    Err(RecvTimeoutError::Timeout) => {
                        self.process(Vec::new(), true);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                }
            };
            let mut stop = matches!(first, Op::Stop(_));
            let mut weight = first.weight();
            let mut ops = vec![first];
            while !stop && ops.len() < MAX_BATCH_OPS && weight < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(op) => {
                        stop = matches!(op, Op::Stop(_));
                        weight += op.weight();
                        ops.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.process(ops, sync_due(self.lazy_since, Instant::now()));
            if stop {
                break;
            }
        }
        if self.lazy_since.is_some() {
            self.process(Vec::new(), true);
        }
        tracing::debug!("writer stopped");
    }

    fn reload(&mut self) {
        if let Ok(eps) = self.db.endpoints() {
            self.rules.reload(eps);
        }
    }

    /// Applies `ops` in one transaction and commits; `force_durable` for a bare sync.
    fn process(&mut self, ops: Vec<Op>, force_durable: bool) {
        if self.broken {
            match self.db.reopen() {
                Ok(()) => {
                    tracing::info!("storage reopened after an I/O error");
                    self.broken = false;
                    self.lazy_since = None;
                    self.reload();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "storage still unavailable");
                    self.health.failed(&e);
                    let e = match e {
                        StoreError::DiskFull => StoreError::DiskFull,
                        other => StoreError::Unavailable(other.to_string()),
                    };
                    fail_ops(ops, &e);
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
        }
        let durable = force_durable || ops.iter().any(Op::needs_durable);
        let n_ops = ops.len();
        let n_events: usize = ops.iter().map(Op::events).sum();
        let started = Instant::now();
        let mut batch = Batch::default();
        let result = self.apply_and_commit(ops, durable, &mut batch);
        match result {
            Ok(durable) => {
                self.lazy_since = if durable {
                    None
                } else {
                    self.lazy_since.or(Some(started))
                };
                let accepted: usize = batch.finished.iter().map(Finished::accepted).sum();
                self.meters.batch.record(n_events as f64);
                self.meters.duration.record(started.elapsed().as_secs_f64());
                self.meters.accepted.increment(accepted as u64);
                if self.health.get() != CommitHealth::Ok {
                    self.health.ok();
                }
                for n in batch.changes.notices {
                    (self.notify)(n);
                }
                for f in batch.finished {
                    f.send();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, ops = n_ops, "commit failed; batch not applied");
                self.meters.failures.increment(1);
                self.health.failed(&e);
                self.rules.undo(batch.changes);
                for f in batch.finished {
                    f.fail(e.clone());
                }
                if e.needs_reopen() {
                    self.broken = true;
                }
            }
        }
    }

    /// Applies `ops` in one transaction and commits it: durably when `durable` or when it
    /// appended to the segment log (whose bytes are synced first). Answers whether the commit
    /// was durable.
    fn apply_and_commit(
        &mut self,
        ops: Vec<Op>,
        mut durable: bool,
        batch: &mut Batch,
    ) -> Result<bool, StoreError> {
        let db = match self.db.get() {
            Ok(db) => db,
            Err(e) => {
                fail_ops(ops, &e);
                return Err(e);
            }
        };
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let e = se(e);
                fail_ops(ops, &e);
                return Err(e);
            }
        };
        let dur = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        if let Err(e) = tx.set_durability(dur) {
            let e = StoreError::Storage(e.to_string());
            fail_ops(ops, &e);
            return Err(e);
        }
        let segs = self.db.segments().cloned();
        let row_seal = self.db.seal().clone();
        let mut sealed;
        {
            let mut t = match WriteTables::open(&tx, segs.as_deref(), &row_seal) {
                Ok(t) => t,
                Err(e) => {
                    fail_ops(ops, &e);
                    return Err(e);
                }
            };
            let now = (self.clock)();
            let mut ops = ops.into_iter();
            while let Some(op) = ops.next() {
                if let Err(e) = self.apply(&mut t, op, now, batch) {
                    // A storage error inside the transaction: the whole batch fails.
                    fail_ops(ops.collect(), &e);
                    return Err(e);
                }
            }
            if self
                .last_prune
                .is_none_or(|at| at.elapsed() > Duration::from_secs(3600))
            {
                self.last_prune = Some(Instant::now());
                idempotency::prune(&mut t, now)?;
            }
            self.rules.finish(&mut t, &batch.changes)?;
            sealed = seal(&mut t)?;
        }
        if let (Some(segs), Some((txn, _))) = (&segs, sealed.as_mut()) {
            if txn.wrote() && !durable {
                tx.set_durability(Durability::Immediate)
                    .map_err(|e| StoreError::Storage(e.to_string()))?;
                durable = true;
            }
            // The records first: a committed stub must point at synced bytes.
            segs.flush(txn).map_err(io)?;
        }
        tx.commit().map_err(se)?;
        if let (Some(segs), Some((txn, emptied))) = (&segs, sealed) {
            segs.committed(&txn, emptied, durable);
        }
        Ok(durable)
    }

    /// Applies one op through the rules. Errors returned are storage errors that abort the
    /// batch; an op's own refusal (unknown endpoint, …) goes into its answer.
    fn apply(
        &mut self,
        t: &mut WriteTables<'_>,
        op: Op,
        now: u64,
        b: &mut Batch,
    ) -> Result<(), StoreError> {
        let rules = &mut self.rules;
        match op {
            Op::Enqueue(req, reply) => {
                let r = rules.enqueue(t, req, now, &mut b.changes);
                b.settle(reply, r, Finished::Enqueue)
            }
            Op::EnqueueBatch(reqs, reply) => {
                let r = rules.enqueue_batch(t, reqs, now, &mut b.changes);
                b.settle(reply, r, Finished::Batch)
            }
            Op::PutEndpoint { id, config, reply } => {
                let r = rules.put_endpoint(t, id, config, now, &mut b.changes);
                b.settle(reply, r, Finished::Endpoint)
            }
            Op::SetPaused { id, paused, reply } => {
                let r = rules.set_paused(id, paused, now, &mut b.changes);
                b.settle(reply, r, Finished::Record)
            }
            Op::DeleteEndpoint { id, force, reply } => {
                let r = rules.delete_endpoint(t, &id, force, now, &mut b.changes);
                b.settle(reply, r, Finished::Unit)
            }
            Op::Progress(u) => rules.progress(t, u, now, &mut b.changes),
            Op::LogAttempt {
                endpoint,
                attempt,
                reply,
            } => {
                let r = rules.log_attempt(t, &endpoint, &attempt, now, &mut b.changes);
                b.settle(reply, r, Finished::Unit)
            }
            Op::Replay { event_id, reply } => {
                let r = rules.replay(t, &event_id, &mut b.changes);
                b.settle(reply, r, Finished::Replay)
            }
            Op::Purge { event_id, reply } => {
                let r = rules.purge(t, event_id);
                b.settle(reply, r, Finished::Unit)
            }
            Op::ReplayMatching {
                filter,
                after,
                limit,
                reply,
            } => {
                let r = rules.replay_matching(t, &filter, after, limit, &mut b.changes);
                b.settle(reply, r, Finished::Bulk)
            }
            Op::PurgeMatching {
                filter,
                after,
                limit,
                reply,
            } => {
                let r = rules.purge_matching(t, &filter, after, limit);
                b.settle(reply, r, Finished::Bulk)
            }
            Op::Backfill { req, reply } => {
                let r = rules.backfill(t, &req, &mut b.changes);
                b.settle(reply, r, Finished::Backfill)
            }
            Op::Sweep(reply) => {
                let mut r = rules.sweep(t, now, &mut b.changes);
                if let Ok(Ok(done)) = &mut r
                    && let Some(c) = compact_one(t)?
                {
                    done.moved = c.moved_bytes;
                    done.more |= c.more;
                }
                b.settle(reply, r, Finished::Sweep)
            }
            Op::PutChannel { id, config, reply } => {
                let r = rules.put_channel(t, id, config, now);
                b.settle(reply, r, Finished::Channel)
            }
            Op::DeleteChannel { id, reply } => {
                let r = rules.delete_channel(t, id);
                b.settle(reply, r, Finished::Unit)
            }
            Op::Quarantine { endpoint, seq, why } => {
                rules.quarantine(t, &endpoint, seq, &why, now, &mut b.changes)
            }
            Op::Sync(reply) | Op::Stop(reply) => {
                b.finished.push(Finished::Unit(reply, Ok(())));
                Ok(())
            }
        }
    }
}

/// Whether the next commit must be durable because a non-durable one has waited `LAZY_SYNC`.
/// (Waiting for an idle moment instead would let a steady stream of deliveries put the sync
/// off indefinitely.)
fn sync_due(lazy_since: Option<Instant>, now: Instant) -> bool {
    lazy_since.is_some_and(|since| now.duration_since(since) >= LAZY_SYNC)
}

fn fail_ops(ops: Vec<Op>, e: &StoreError) {
    for op in ops {
        let _ = match op {
            Op::Enqueue(_, r) => r.send(Err(e.clone())).map_err(drop),
            Op::EnqueueBatch(_, r) => r.send(Err(e.clone())).map_err(drop),
            Op::PutEndpoint { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::SetPaused { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::DeleteEndpoint { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::LogAttempt { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Replay { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Purge { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::ReplayMatching { reply, .. } | Op::PurgeMatching { reply, .. } => {
                reply.send(Err(e.clone())).map_err(drop)
            }
            Op::Backfill { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Sweep(reply) => reply.send(Err(e.clone())).map_err(drop),
            Op::PutChannel { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::DeleteChannel { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Sync(reply) | Op::Stop(reply) => reply.send(Err(e.clone())).map_err(drop),
            Op::Progress(_) | Op::Quarantine { .. } => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_writer_still_syncs_within_lazy_sync() {
        let t0 = Instant::now();
        assert!(
            !sync_due(None, t0 + LAZY_SYNC * 10),
            "nothing waits for a sync"
        );
        assert!(!sync_due(Some(t0), t0 + LAZY_SYNC / 2));
        assert!(sync_due(Some(t0), t0 + LAZY_SYNC));
        assert!(sync_due(Some(t0), t0 + LAZY_SYNC * 3));
    }
}
