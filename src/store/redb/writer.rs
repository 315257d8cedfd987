//! The single writer thread and its group commit.
//!
//! Producers and the scheduler send [`Op`]s over a crossbeam channel. The thread blocks for one
//! op, then takes everything else that queued up meanwhile (up to [`MAX_BATCH_OPS`] /
//! [`MAX_BATCH_BYTES`]) — that is, what arrived while the previous commit was syncing — applies
//! it all in one redb write transaction, commits once, and only then answers every op of the
//! batch and tells the scheduler about new events. If the commit fails, nothing of the batch is
//! applied and every op gets the error.
//!
//! The thread is the only owner of the endpoint counters (`next_seq`, `pending`, attempt-log
//! keys); it caches the endpoint records and undoes the cache when a batch fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redb::{Durability, ReadableTable, Table, WriteTransaction};

use super::{
    ATTEMPTS, CHANNELS, DEAD, DEAD_RECORDS, DbHandle, ENDPOINTS, EVENTS, IDEMPOTENCY, META,
    PROGRESS,
};
use crate::core::record;
use crate::core::timefmt::now_ms;
use crate::model::{
    ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord, EventProgress,
    IdempotentHit,
};
use crate::store::{
    ATTEMPT_LOG_KEEP, EnqueueOk, EnqueueReq, Notice, NoticeSink, ProgressOutcome, ProgressUpdate,
    QueuedEvent, StoreError, decode, encode,
};

mod idempotency;
mod quarantine;

use idempotency::{batch_mismatch, prune_idempotency, remembered};
pub use quarantine::RECORD_CORRUPT;

/// Longest a non-durable commit (deliveries, attempt results) waits for a durable one.
pub const LAZY_SYNC: Duration = Duration::from_millis(500);
/// Most ops in one commit.
pub const MAX_BATCH_OPS: usize = 16_384;
/// Most body bytes in one commit.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// Where an op's answer goes.
pub type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

/// Work for the writer.
#[derive(Debug)]
pub enum Op {
    Enqueue(EnqueueReq, Reply<EnqueueOk>),
    /// All or nothing, one commit.
    EnqueueBatch(Vec<EnqueueReq>, Reply<Vec<EnqueueOk>>),
    PutEndpoint {
        id: String,
        config: EndpointConfig,
        reply: Reply<(EndpointRecord, bool)>,
    },
    SetPaused {
        id: String,
        paused: bool,
        reply: Reply<EndpointRecord>,
    },
    DeleteEndpoint {
        id: String,
        force: bool,
        reply: Reply<()>,
    },
    Progress(ProgressUpdate),
    Replay {
        event_id: String,
        reply: Reply<(String, u64)>,
    },
    Purge {
        event_id: String,
        reply: Reply<()>,
    },
    /// Creates or updates an ingress channel (its endpoint must exist).
    PutChannel {
        id: String,
        config: ChannelConfig,
        reply: Reply<(ChannelRecord, bool)>,
    },
    DeleteChannel {
        id: String,
        reply: Reply<()>,
    },
    /// Sets aside a pending event whose stored record is corrupt: it becomes a dead letter
    /// with reason `RECORD_CORRUPT` (raw bytes kept), so the endpoint can go on.
    Quarantine {
        endpoint: Arc<str>,
        seq: u64,
        why: String,
    },
    /// A durable commit barrier.
    Sync(Reply<()>),
    /// A durable commit, then the writer stops (at shutdown); later ops get `Stopped`.
    Stop(Reply<()>),
}

impl Op {
    fn needs_durable(&self) -> bool {
        !matches!(
            self,
            Op::Progress(ProgressUpdate {
                outcome: ProgressOutcome::Delivered | ProgressOutcome::Pending,
                down: None | Some(false),
                ..
            })
        )
    }

    fn weight(&self) -> usize {
        match self {
            Op::Enqueue(r, _) => r.record.len(),
            Op::EnqueueBatch(rs, _) => rs.iter().map(|r| r.record.len()).sum(),
            _ => 64,
        }
    }
}

/// A cloneable handle that sends ops to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Op>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn spawn(
        db: DbHandle,
        notify: NoticeSink,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError> {
        let endpoints = db
            .endpoints()?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = WriterState {
            db,
            endpoints,
            notify,
            lazy_since: None,
            broken: false,
            last_prune: None,
            ids: crate::core::ids::IdGen::new(),
        };
        let handle = std::thread::Builder::new()
            .name("courier-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::Storage(format!("cannot start writer thread: {e}")))?;
        Ok((Writer { tx }, handle))
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

/// An op's answer, held until its commit is known.
enum Finished {
    Enqueue(Reply<EnqueueOk>, Result<EnqueueOk, StoreError>),
    Batch(Reply<Vec<EnqueueOk>>, Result<Vec<EnqueueOk>, StoreError>),
    Endpoint(
        Reply<(EndpointRecord, bool)>,
        Result<(EndpointRecord, bool), StoreError>,
    ),
    Record(Reply<EndpointRecord>, Result<EndpointRecord, StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
    Replay(Reply<(String, u64)>, Result<(String, u64), StoreError>),
    Channel(
        Reply<(ChannelRecord, bool)>,
        Result<(ChannelRecord, bool), StoreError>,
    ),
}

impl Finished {
    fn send(self) {
        // A dropped receiver means the client went away; nothing to do.
        let _ = match self {
            Finished::Enqueue(r, v) => r.send(v).map_err(drop),
            Finished::Batch(r, v) => r.send(v).map_err(drop),
            Finished::Endpoint(r, v) => r.send(v).map_err(drop),
            Finished::Record(r, v) => r.send(v).map_err(drop),
            Finished::Unit(r, v) => r.send(v).map_err(drop),
            Finished::Replay(r, v) => r.send(v).map_err(drop),
            Finished::Channel(r, v) => r.send(v).map_err(drop),
        };
    }

    fn fail(self, e: StoreError) {
        let _ = match self {
            Finished::Enqueue(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Batch(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Endpoint(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Record(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Unit(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Replay(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Channel(r, _) => r.send(Err(e)).map_err(drop),
        };
    }

    fn accepted(&self) -> usize {
        match self {
            Finished::Enqueue(_, Ok(ok)) if !ok.duplicate => 1,
            Finished::Batch(_, Ok(v)) => v.iter().filter(|o| !o.duplicate).count(),
            _ => 0,
        }
    }
}

/// The tables of one write transaction.
struct Tables<'t> {
    meta: Table<'t, &'static str, u64>,
    endpoints: Table<'t, &'static str, &'static [u8]>,
    events: Table<'t, (&'static str, u64), &'static [u8]>,
    progress: Table<'t, (&'static str, u64), &'static [u8]>,
    dead: Table<'t, &'static str, &'static [u8]>,
    dead_records: Table<'t, &'static str, &'static [u8]>,
    attempts: Table<'t, (&'static str, u64), &'static [u8]>,
    idempotency: Table<'t, (&'static str, &'static str), &'static [u8]>,
    channels: Table<'t, &'static str, &'static [u8]>,
}

impl<'t> Tables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            meta: tx.open_table(META).map_err(StoreError::from_redb)?,
            endpoints: tx.open_table(ENDPOINTS).map_err(StoreError::from_redb)?,
            events: tx.open_table(EVENTS).map_err(StoreError::from_redb)?,
            progress: tx.open_table(PROGRESS).map_err(StoreError::from_redb)?,
            dead: tx.open_table(DEAD).map_err(StoreError::from_redb)?,
            dead_records: tx.open_table(DEAD_RECORDS).map_err(StoreError::from_redb)?,
            attempts: tx.open_table(ATTEMPTS).map_err(StoreError::from_redb)?,
            idempotency: tx.open_table(IDEMPOTENCY).map_err(StoreError::from_redb)?,
            channels: tx.open_table(CHANNELS).map_err(StoreError::from_redb)?,
        })
    }
}

/// Per-batch scratch: answers, notices, and the cache entries to restore on failure.
#[derive(Default)]
struct Batch {
    finished: Vec<Finished>,
    notices: Vec<Notice>,
    undo: HashMap<String, Option<EndpointRecord>>,
}

struct WriterState {
    db: DbHandle,
    endpoints: HashMap<String, EndpointRecord>,
    notify: NoticeSink,
    /// When the oldest non-durable commit not yet covered by a durable one was made: the next
    /// commit after `LAZY_SYNC` from then is durable, however busy the writer is.
    lazy_since: Option<Instant>,
    /// The database must be reopened before the next batch.
    broken: bool,
    last_prune: Option<Instant>,
    /// Ids for dead letters whose own record is too corrupt to give one.
    ids: crate::core::ids::IdGen,
}

/// Which storage error a redb call produced.
fn se(e: impl Into<redb::Error>) -> StoreError {
    StoreError::from_redb(e)
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
            self.endpoints = eps.into_iter().map(|r| (r.id.clone(), r)).collect();
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
        let started = Instant::now();
        let mut batch = Batch::default();
        let result = self.apply_and_commit(ops, durable, &mut batch);
        match result {
            Ok(()) => {
                self.lazy_since = if durable {
                    None
                } else {
                    self.lazy_since.or(Some(started))
                };
                let accepted: usize = batch.finished.iter().map(Finished::accepted).sum();
                metrics::histogram!(crate::telemetry::BATCH_OPS).record(n_ops as f64);
                metrics::histogram!(crate::telemetry::COMMIT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!(crate::telemetry::EVENTS_ACCEPTED).increment(accepted as u64);
                for n in batch.notices {
                    (self.notify)(n);
                }
                for f in batch.finished {
                    f.send();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, ops = n_ops, "commit failed; batch not applied");
                metrics::counter!(crate::telemetry::COMMIT_FAILURES).increment(1);
                for (id, old) in batch.undo {
                    match old {
                        Some(r) => self.endpoints.insert(id, r),
                        None => self.endpoints.remove(&id),
                    };
                }
                for f in batch.finished {
                    f.fail(e.clone());
                }
                if e.needs_reopen() {
                    self.broken = true;
                }
            }
        }
    }

    fn apply_and_commit(
        &mut self,
        ops: Vec<Op>,
        durable: bool,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
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
        {
            let mut t = match Tables::open(&tx) {
                Ok(t) => t,
                Err(e) => {
                    fail_ops(ops, &e);
                    return Err(e);
                }
            };
            let now = now_ms();
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
                prune_idempotency(&mut t, now)?;
            }
            for id in batch.undo.keys() {
                match self.endpoints.get(id) {
                    Some(rec) => {
                        t.endpoints
                            .insert(id.as_str(), encode(rec).as_slice())
                            .map_err(se)?;
                    }
                    None => {
                        t.endpoints.remove(id.as_str()).map_err(se)?;
                    }
                }
            }
        }
        tx.commit().map_err(se)
    }

    /// Records the cache entry before its first change in this batch.
    fn touch(&self, batch: &mut Batch, id: &str) {
        if !batch.undo.contains_key(id) {
            batch
                .undo
                .insert(id.to_string(), self.endpoints.get(id).cloned());
        }
    }

    /// Applies one op. Errors returned are storage errors that abort the batch; an op's own
    /// refusal (unknown endpoint, …) goes into its answer.
    fn apply(
        &mut self,
        t: &mut Tables<'_>,
        op: Op,
        now: u64,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        match op {
            Op::Enqueue(req, reply) => {
                let r = self.enqueue(t, req, now, batch);
                let r = split_storage(r)?;
                batch.finished.push(Finished::Enqueue(reply, r));
            }
            Op::EnqueueBatch(reqs, reply) => {
                let missing = reqs
                    .iter()
                    .find(|r| !self.endpoints.contains_key(&r.endpoint));
                let r = match missing {
                    Some(m) => Err(StoreError::EndpointNotFound(m.endpoint.clone())),
                    None => match batch_mismatch(t, &reqs, now)? {
                        Some(e) => Err(e),
                        None => {
                            let mut out = Vec::with_capacity(reqs.len());
                            for req in reqs {
                                out.push(self.enqueue(t, req, now, batch)?);
                            }
                            Ok(out)
                        }
                    },
                };
                batch.finished.push(Finished::Batch(reply, r));
            }
            Op::PutEndpoint { id, config, reply } => {
                let r = self.put_endpoint(t, id, config, now, batch);
                let r = split_storage(r)?;
                batch.finished.push(Finished::Endpoint(reply, r));
            }
            Op::SetPaused { id, paused, reply } => {
                let r = match self.endpoints.contains_key(&id) {
                    false => Err(StoreError::EndpointNotFound(id)),
                    true => {
                        self.touch(batch, &id);
                        let rec = self.endpoints.get_mut(&id);
                        match rec {
                            Some(rec) => {
                                rec.paused = paused;
                                rec.updated_ms = now;
                                batch.notices.push(Notice::EndpointUpserted(rec.clone()));
                                Ok(rec.clone())
                            }
                            None => Err(StoreError::EndpointNotFound(id)),
                        }
                    }
                };
                batch.finished.push(Finished::Record(reply, r));
            }
            Op::DeleteEndpoint { id, force, reply } => {
                let r = self.delete_endpoint(t, &id, force, now, batch);
                let r = split_storage(r)?;
                batch.finished.push(Finished::Unit(reply, r));
            }
            Op::Progress(u) => self.progress(t, u, now, batch)?,
            Op::Replay { event_id, reply } => {
                let r = self.replay(t, &event_id, batch);
                let r = split_storage(r)?;
                batch.finished.push(Finished::Replay(reply, r));
            }
            Op::Purge { event_id, reply } => {
                let existed = t.dead.remove(event_id.as_str()).map_err(se)?.is_some();
                t.dead_records.remove(event_id.as_str()).map_err(se)?;
                let r = if existed {
                    Ok(())
                } else {
                    Err(StoreError::DeadLetterNotFound(event_id))
                };
                batch.finished.push(Finished::Unit(reply, r));
            }
            Op::PutChannel { id, config, reply } => {
                let r = if self.endpoints.contains_key(&config.endpoint) {
                    let existing: Option<ChannelRecord> =
                        match t.channels.get(id.as_str()).map_err(se)? {
                            Some(v) => Some(decode("channel", v.value())?),
                            None => None,
                        };
                    let created = existing.is_none();
                    let rec = ChannelRecord {
                        id: id.clone(),
                        config,
                        created_ms: existing.map_or(now, |e| e.created_ms),
                        updated_ms: now,
                    };
                    t.channels
                        .insert(id.as_str(), encode(&rec).as_slice())
                        .map_err(se)?;
                    Ok((rec, created))
                } else {
                    Err(StoreError::EndpointNotFound(config.endpoint))
                };
                batch.finished.push(Finished::Channel(reply, r));
            }
            Op::DeleteChannel { id, reply } => {
                let existed = t.channels.remove(id.as_str()).map_err(se)?.is_some();
                let r = if existed {
                    Ok(())
                } else {
                    Err(StoreError::ChannelNotFound(id))
                };
                batch.finished.push(Finished::Unit(reply, r));
            }
            Op::Quarantine { endpoint, seq, why } => {
                self.quarantine(t, &endpoint, seq, &why, now, batch)?
            }
            Op::Sync(reply) | Op::Stop(reply) => batch.finished.push(Finished::Unit(reply, Ok(()))),
        }
        Ok(())
    }

    fn enqueue(
        &mut self,
        t: &mut Tables<'_>,
        req: EnqueueReq,
        now: u64,
        batch: &mut Batch,
    ) -> Result<EnqueueOk, StoreError> {
        if !self.endpoints.contains_key(&req.endpoint) {
            return Err(StoreError::EndpointNotFound(req.endpoint));
        }
        let ep = req.endpoint.as_str();
        if let Some(hit) = remembered(t, &req, now)? {
            if !req.fingerprint.is_some_and(|f| hit.matches(&f)) {
                return Err(StoreError::IdempotencyMismatch {
                    event_id: hit.event_id,
                    index: 0,
                });
            }
            return Ok(EnqueueOk {
                id: hit.event_id,
                seq: hit.seq,
                duplicate: true,
            });
        }
        self.touch(batch, ep);
        let Some(rec) = self.endpoints.get_mut(ep) else {
            return Err(StoreError::EndpointNotFound(req.endpoint));
        };
        let seq = rec.next_seq;
        rec.next_seq += 1;
        rec.pending += 1;
        t.events
            .insert((ep, seq), req.record.as_slice())
            .map_err(se)?;
        if let Some(key) = &req.idempotency_key {
            let hit = IdempotentHit {
                event_id: req.meta.id.clone(),
                seq,
                created_ms: now,
                fingerprint: req.fingerprint,
            };
            t.idempotency
                .insert((ep, key.as_str()), encode(&hit).as_slice())
                .map_err(se)?;
        }
        let id = req.meta.id.clone();
        batch.notices.push(Notice::Enqueued {
            endpoint: Arc::from(ep),
            event: QueuedEvent {
                seq,
                meta: req.meta,
                body: req.body,
                progress: EventProgress::default(),
            },
        });
        Ok(EnqueueOk {
            id,
            seq,
            duplicate: false,
        })
    }

    fn put_endpoint(
        &mut self,
        t: &mut Tables<'_>,
        id: String,
        config: EndpointConfig,
        now: u64,
        batch: &mut Batch,
    ) -> Result<(EndpointRecord, bool), StoreError> {
        self.touch(batch, &id);
        let created = !self.endpoints.contains_key(&id);
        let tomb = format!("tomb:{id}");
        let rec = if let Some(rec) = self.endpoints.get_mut(&id) {
            rec.config = config;
            rec.updated_ms = now;
            rec.clone()
        } else {
            // A re-created endpoint continues the numbering of its deleted namesake, so old
            // dead letters replay without colliding with new events.
            let next_seq = t
                .meta
                .remove(tomb.as_str())
                .map_err(se)?
                .map(|v| v.value())
                .unwrap_or(1);
            let rec = EndpointRecord {
                id: id.clone(),
                config,
                paused: false,
                created_ms: now,
                updated_ms: now,
                next_seq,
                pending: 0,
                next_attempt_log: 0,
                down: false,
            };
            self.endpoints.insert(id.clone(), rec.clone());
            rec
        };
        batch.notices.push(Notice::EndpointUpserted(rec.clone()));
        Ok((rec, created))
    }

    fn delete_endpoint(
        &mut self,
        t: &mut Tables<'_>,
        id: &str,
        force: bool,
        now: u64,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let Some(rec) = self.endpoints.get(id) else {
            return Err(StoreError::EndpointNotFound(id.to_string()));
        };
        if rec.pending > 0 && !force {
            return Err(StoreError::EndpointNotEmpty {
                id: id.to_string(),
                backlog: rec.pending,
            });
        }
        let next_seq = rec.next_seq;
        // Dead-letter what is still pending, so every acknowledged event ends somewhere.
        let mut pending = Vec::new();
        for row in t.events.range((id, 0)..=(id, u64::MAX)).map_err(se)? {
            let (k, v) = row.map_err(se)?;
            pending.push((k.value().1, v.value().to_vec()));
        }
        for (seq, bytes) in pending {
            let meta = match record::decode(&bytes) {
                Ok(r) => r.meta,
                Err(e) => {
                    // A corrupt record must not block the delete: set it aside like delivery does.
                    let progress = t
                        .progress
                        .remove((id, seq))
                        .map_err(se)?
                        .map(|v| v.value().to_vec());
                    self.dead_letter_corrupt(
                        t,
                        id,
                        seq,
                        &bytes,
                        progress.as_deref(),
                        &e.to_string(),
                        now,
                    )?;
                    tracing::error!(endpoint = id, seq, error = %e, "corrupt event record set aside as a dead letter (RECORD_CORRUPT)");
                    continue;
                }
            };
            let progress = match t.progress.remove((id, seq)).map_err(se)? {
                Some(p) => decode("progress", p.value())?,
                None => EventProgress::default(),
            };
            let dl = DeadLetter {
                event_id: meta.id.clone(),
                endpoint: id.to_string(),
                seq,
                reason: "ENDPOINT_DELETED".into(),
                progress,
                dead_at_ms: now,
            };
            t.dead
                .insert(meta.id.as_str(), encode(&dl).as_slice())
                .map_err(se)?;
            t.dead_records
                .insert(meta.id.as_str(), bytes.as_slice())
                .map_err(se)?;
            metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => "ENDPOINT_DELETED")
                .increment(1);
        }
        t.events
            .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
            .map_err(se)?;
        t.progress
            .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
            .map_err(se)?;
        t.attempts
            .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
            .map_err(se)?;
        t.idempotency.retain(|k, _| k.0 != id).map_err(se)?;
        let tomb = format!("tomb:{id}");
        t.meta.insert(tomb.as_str(), next_seq).map_err(se)?;
        self.touch(batch, id);
        self.endpoints.remove(id);
        batch.notices.push(Notice::EndpointDeleted(id.to_string()));
        Ok(())
    }

    fn progress(
        &mut self,
        t: &mut Tables<'_>,
        u: ProgressUpdate,
        now: u64,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let ep: &str = &u.endpoint;
        if !self.endpoints.contains_key(ep) {
            return Ok(()); // endpoint deleted meanwhile
        }
        self.touch(batch, ep);
        let key = (ep, u.seq);
        match &u.outcome {
            ProgressOutcome::Delivered => {
                let existed = t.events.remove(key).map_err(se)?.is_some();
                t.progress.remove(key).map_err(se)?;
                if existed && let Some(rec) = self.endpoints.get_mut(ep) {
                    rec.pending = rec.pending.saturating_sub(1);
                }
            }
            ProgressOutcome::Pending => {
                if t.events.get(key).map_err(se)?.is_some() {
                    t.progress
                        .insert(key, encode(&u.progress).as_slice())
                        .map_err(se)?;
                }
            }
            ProgressOutcome::Dead { reason } => {
                let bytes = t
                    .events
                    .remove(key)
                    .map_err(se)?
                    .map(|v| v.value().to_vec());
                t.progress.remove(key).map_err(se)?;
                if let Some(bytes) = bytes {
                    let dl = DeadLetter {
                        event_id: u.attempt.event_id.clone(),
                        endpoint: ep.to_string(),
                        seq: u.seq,
                        reason: reason.clone(),
                        progress: u.progress.clone(),
                        dead_at_ms: now,
                    };
                    let id = dl.event_id.as_str();
                    t.dead.insert(id, encode(&dl).as_slice()).map_err(se)?;
                    t.dead_records.insert(id, bytes.as_slice()).map_err(se)?;
                    if let Some(rec) = self.endpoints.get_mut(ep) {
                        rec.pending = rec.pending.saturating_sub(1);
                    }
                }
            }
        }
        if let Some(rec) = self.endpoints.get_mut(ep) {
            if let Some(down) = u.down {
                rec.down = down;
            }
            let n = rec.next_attempt_log;
            rec.next_attempt_log += 1;
            t.attempts
                .insert((ep, n), encode(&u.attempt).as_slice())
                .map_err(se)?;
            if n % 128 == 0 && n >= ATTEMPT_LOG_KEEP {
                t.attempts
                    .retain_in((ep, 0)..(ep, n + 1 - ATTEMPT_LOG_KEEP), |_, _| false)
                    .map_err(se)?;
            }
        }
        Ok(())
    }

    fn replay(
        &mut self,
        t: &mut Tables<'_>,
        event_id: &str,
        batch: &mut Batch,
    ) -> Result<(String, u64), StoreError> {
        let dl: DeadLetter = match t.dead.get(event_id).map_err(se)? {
            Some(v) => decode("dead letter", v.value())?,
            None => return Err(StoreError::DeadLetterNotFound(event_id.to_string())),
        };
        let ep = dl.endpoint.as_str();
        if !self.endpoints.contains_key(ep) {
            return Err(StoreError::EndpointNotFound(dl.endpoint.clone()));
        }
        let bytes = match t.dead_records.get(event_id).map_err(se)? {
            Some(v) => v.value().to_vec(),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "dead letter {event_id} has no record"
                )));
            }
        };
        let rec = record::decode(&bytes).map_err(|e| StoreError::NotReplayable {
            event_id: event_id.to_string(),
            why: e.to_string(),
        })?;
        let mut progress = dl.progress.clone();
        progress.failures = 0; // the schedule starts afresh; attempt numbers continue
        t.events
            .insert((ep, dl.seq), bytes.as_slice())
            .map_err(se)?;
        t.progress
            .insert((ep, dl.seq), encode(&progress).as_slice())
            .map_err(se)?;
        t.dead.remove(event_id).map_err(se)?;
        t.dead_records.remove(event_id).map_err(se)?;
        self.touch(batch, ep);
        if let Some(r) = self.endpoints.get_mut(ep) {
            r.pending += 1;
        }
        batch.notices.push(Notice::Replayed {
            endpoint: Arc::from(ep),
            event: QueuedEvent {
                seq: dl.seq,
                meta: Arc::new(rec.meta),
                body: rec.body,
                progress,
            },
        });
        Ok((dl.endpoint, dl.seq))
    }
}

/// Whether the next commit must be durable because a non-durable one has waited `LAZY_SYNC`.
/// (Waiting for an idle moment instead would let a steady stream of deliveries put the sync
/// off indefinitely.)
fn sync_due(lazy_since: Option<Instant>, now: Instant) -> bool {
    lazy_since.is_some_and(|since| now.duration_since(since) >= LAZY_SYNC)
}

/// Separates an op's own refusal (kept for its answer) from a storage error (aborts the batch).
fn split_storage<T>(r: Result<T, StoreError>) -> Result<Result<T, StoreError>, StoreError> {
    match r {
        Err(e @ (StoreError::Storage(_) | StoreError::DiskFull | StoreError::Unavailable(_))) => {
            Err(e)
        }
        other => Ok(other),
    }
}

fn fail_ops(ops: Vec<Op>, e: &StoreError) {
    for op in ops {
        let _ = match op {
            Op::Enqueue(_, r) => r.send(Err(e.clone())).map_err(drop),
            Op::EnqueueBatch(_, r) => r.send(Err(e.clone())).map_err(drop),
            Op::PutEndpoint { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::SetPaused { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::DeleteEndpoint { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Replay { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
            Op::Purge { reply, .. } => reply.send(Err(e.clone())).map_err(drop),
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
