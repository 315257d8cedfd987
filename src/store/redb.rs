//! The embedded backend: one redb file, written by a single thread with group commit
//! ([`writer`]), read through short-lived read transactions. [`RedbJournal`] is its
//! [`Journal`](super::Journal): writes go to the writer thread and resolve after their commit;
//! reads run on the blocking pool, never on the caller's task. The file is created 0600 (and
//! tightened to that when found looser). [`RedbJournal::open_read_only`] opens it for offline
//! inspection: reads as usual, every write refused, the file never written.
//! [`RedbJournal::open_with_backend`] puts the same journal on another storage backend (the
//! power-loss test's disk, which forgets what was not synced).

mod event_rows;
mod handle;
mod log_tables;
mod sealed;
pub mod segments;
mod tables;
mod upgrade;
pub mod writer;

pub use handle::{DEFAULT_CACHE_BYTES, DbHandle, ReadOnlyError};
pub use sealed::{KEY_MISMATCH, ROW_CORRUPT};

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::TableDefinition;

use super::{
    BackfillDone, BackfillReq, BulkDone, Clock, CommitHealth, DeadPage, DeadQuery, HealthFlag,
    JFuture, Journal, Limits, Loaded, NoticeSink, ProgressUpdate, StoreError, StoredRecord,
    SweepDone, system_clock,
};
use crate::core::dead_filter::DeadFilter;
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord,
};
use crate::store::seal::KeyRing;
use writer::{Op, Writer};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "courier.redb";

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
pub(crate) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
pub(crate) const PROGRESS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("progress");
pub(crate) const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");
pub(crate) const DEAD_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_records");
/// `(endpoint, seq)` → the event id of that dead letter (UTF-8): pages of one endpoint's dead
/// letters in its order without a scan. Added by schema 2, built at open from `dead_letters`.
pub(crate) const DEAD_INDEX: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("dead_index");
pub(crate) const ATTEMPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("attempts");
pub(crate) const IDEMPOTENCY: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("idempotency");
pub(crate) const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// Seqs delivered out of order at or above an endpoint's cursor (schema 3).
pub(crate) const DONE: TableDefinition<(&str, u64), ()> = TableDefinition::new("done");
/// Seqs pending again below the cursor or past `done`, with flags (schema 3).
pub(crate) const REOPENED: TableDefinition<(&str, u64), u8> = TableDefinition::new("reopened");
/// Segment number → its live (rows, record bytes): which segments the log still needs
/// (schema 4; `segments.rs`).
pub(crate) const SEGMENTS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("segments");
/// `meta` keys of the segment log's committed end.
pub(crate) const SEG_ACTIVE: &str = "seg_active";
pub(crate) const SEG_LEN: &str = "seg_len";

impl StoreError {
    /// Maps a redb error; a full disk gets its own variant.
    pub fn from_redb(e: impl Into<redb::Error>) -> Self {
        let e: redb::Error = e.into();
        if let redb::Error::Io(io) = &e
            && is_disk_full(io)
        {
            return StoreError::DiskFull;
        }
        StoreError::Storage(e.to_string())
    }
}

pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28)
}

/// The embedded journal: the database handle plus its writer thread.
pub struct RedbJournal {
    db: DbHandle,
    writer: Writer,
    /// What the writer's last commit found.
    health: Arc<HealthFlag>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RedbJournal {
    /// Opens (or creates) the database at `path` with a page cache of `cache_bytes`, its
    /// endpoint and channel rows sealed under `keys`, and starts its writer; `notify` hears
    /// about every commit.
    pub fn open(
        path: &Path,
        cache_bytes: usize,
        keys: Arc<KeyRing>,
        notify: NoticeSink,
    ) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes, keys)?;
        Self::start(db, notify)
    }

    /// Opens an existing journal read-only, for inspection while no daemon runs on it: the
    /// reads of [`Journal`] work as usual, every write answers `Stopped`, and nothing is
    /// written to the file (it may be on a read-only file system or a read-only copy). A
    /// journal of the current schema needs `keys` to open its endpoints and channels.
    pub fn open_read_only(
        path: &Path,
        cache_bytes: usize,
        keys: Option<Arc<KeyRing>>,
    ) -> Result<Self, ReadOnlyError> {
        let db = DbHandle::open_read_only(path, cache_bytes, keys)?;
        Ok(Self {
            db,
            writer: Writer::detached(),
            health: Arc::new(HealthFlag::default()),
            thread: Mutex::new(None),
        })
    }

    /// [`RedbJournal::open`] with the wall clock the rules read replaced by `clock` (tests of
    /// the idempotency window).
    pub fn open_with_clock(
        path: &Path,
        cache_bytes: usize,
        keys: Arc<KeyRing>,
        notify: NoticeSink,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes, keys)?;
        Self::start_with_clock(db, notify, clock)
    }

    /// [`RedbJournal::open`] on a storage backend other than the file (see
    /// [`DbHandle::open_with_backend`]: `factory` makes a backend over the same storage at the
    /// open and at every reopen after an I/O error), with `clock` and `limits`, its segment
    /// log on `segments` (storage and segment size; `None`: records stay in redb's rows).
    /// Tests only; the daemon opens the file.
    pub fn open_with_backend<B, F>(
        factory: F,
        segments: Option<(Arc<dyn segments::SegmentFs>, u64)>,
        cache_bytes: usize,
        keys: Arc<KeyRing>,
        notify: NoticeSink,
        clock: Clock,
        limits: Limits,
    ) -> Result<Self, StoreError>
    where
        B: redb::StorageBackend,
        F: Fn() -> std::io::Result<B> + Send + Sync + 'static,
    {
        let db = DbHandle::open_with_backend(factory, segments, cache_bytes, keys)?;
        Self::start_with(db, notify, clock, limits)
    }

    /// Starts the writer on an open database.
    pub fn start(db: DbHandle, notify: NoticeSink) -> Result<Self, StoreError> {
        Self::start_with_clock(db, notify, system_clock())
    }

    /// Starts the writer on an open database, reading the time from `clock`.
    pub fn start_with_clock(
        db: DbHandle,
        notify: NoticeSink,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        Self::start_with(db, notify, clock, Limits::default())
    }

    /// [`RedbJournal::open`] enforcing `limits` (the daemon's).
    pub fn open_with_limits(
        path: &Path,
        cache_bytes: usize,
        segment_bytes: u64,
        keys: Arc<KeyRing>,
        notify: NoticeSink,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_segments(path, cache_bytes, segment_bytes, keys)?;
        Self::start_with(db, notify, system_clock(), limits)
    }

    /// Starts the writer on an open database, reading the time from `clock`, enforcing
    /// `limits`.
    pub fn start_with(
        db: DbHandle,
        notify: NoticeSink,
        clock: Clock,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        let health = Arc::new(HealthFlag::default());
        let (writer, thread) =
            Writer::spawn_with(db.clone(), notify, clock, limits, health.clone())?;
        Ok(Self {
            db,
            writer,
            health,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The database handle (for the store's own tests and tools).
    pub fn db(&self) -> &DbHandle {
        &self.db
    }

    /// Ops waiting for the writer (a gauge for overload).
    pub fn queued(&self) -> usize {
        self.writer.queued()
    }

    /// Runs a read on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DbHandle) -> Result<T, StoreError> + Send + 'static,
    ) -> JFuture<'_, T> {
        let db = self.db.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || f(&db)).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Internal),
            }
        })
    }
}

impl Journal for RedbJournal {
    fn enqueue(&self, req: super::EnqueueReq) -> JFuture<'_, super::EnqueueOk> {
        Box::pin(self.writer.call(move |reply| Op::Enqueue(req, reply)))
    }

    fn enqueue_batch(&self, reqs: Vec<super::EnqueueReq>) -> JFuture<'_, Vec<super::EnqueueOk>> {
        Box::pin(self.writer.call(move |reply| Op::EnqueueBatch(reqs, reply)))
    }

    fn put_endpoint(
        &self,
        id: String,
        config: EndpointConfig,
    ) -> JFuture<'_, (EndpointRecord, bool)> {
        Box::pin(
            self.writer
                .call(move |reply| Op::PutEndpoint { id, config, reply }),
        )
    }

    fn set_paused(&self, id: String, paused: bool) -> JFuture<'_, EndpointRecord> {
        Box::pin(
            self.writer
                .call(move |reply| Op::SetPaused { id, paused, reply }),
        )
    }

    fn delete_endpoint(&self, id: String, force: bool) -> JFuture<'_, ()> {
        Box::pin(
            self.writer
                .call(move |reply| Op::DeleteEndpoint { id, force, reply }),
        )
    }

    fn replay(&self, event_id: String) -> JFuture<'_, (String, u64)> {
        Box::pin(
            self.writer
                .call(move |reply| Op::Replay { event_id, reply }),
        )
    }

    fn purge(&self, event_id: String) -> JFuture<'_, ()> {
        Box::pin(self.writer.call(move |reply| Op::Purge { event_id, reply }))
    }

    fn replay_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone> {
        Box::pin(self.writer.call(move |reply| Op::ReplayMatching {
            filter,
            after,
            limit,
            reply,
        }))
    }

    fn purge_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone> {
        Box::pin(self.writer.call(move |reply| Op::PurgeMatching {
            filter,
            after,
            limit,
            reply,
        }))
    }

    fn put_channel(&self, id: String, config: ChannelConfig) -> JFuture<'_, (ChannelRecord, bool)> {
        Box::pin(
            self.writer
                .call(move |reply| Op::PutChannel { id, config, reply }),
        )
    }

    fn delete_channel(&self, id: String) -> JFuture<'_, ()> {
        Box::pin(
            self.writer
                .call(move |reply| Op::DeleteChannel { id, reply }),
        )
    }

    fn sync(&self) -> JFuture<'_, ()> {
        Box::pin(self.writer.call(Op::Sync))
    }

    fn commit_health(&self) -> CommitHealth {
        self.health.get()
    }

    fn close(&self) -> JFuture<'_, ()> {
        Box::pin(async move {
            let r = self.writer.call(Op::Stop).await;
            let thread = self.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(t) = thread {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            r
        })
    }

    fn log_attempt(&self, endpoint: String, attempt: AttemptRecord) -> JFuture<'_, ()> {
        Box::pin(self.writer.call(move |reply| Op::LogAttempt {
            endpoint,
            attempt,
            reply,
        }))
    }

    fn record_progress(&self, update: ProgressUpdate) {
        let _ = self.writer.send(Op::Progress(update));
    }

    fn quarantine(&self, endpoint: Arc<str>, seq: u64, why: String) {
        let _ = self.writer.send(Op::Quarantine { endpoint, seq, why });
    }

    fn endpoints(&self) -> JFuture<'_, Vec<EndpointRecord>> {
        self.read(|db| db.endpoints())
    }

    fn endpoint(&self, id: &str) -> JFuture<'_, Option<EndpointRecord>> {
        let id = id.to_string();
        self.read(move |db| db.endpoint(&id))
    }

    fn channels(&self) -> JFuture<'_, Vec<ChannelRecord>> {
        self.read(|db| db.channels())
    }

    fn load_events(&self, endpoint: &str, from: u64, limit: usize) -> JFuture<'_, Loaded> {
        let endpoint = endpoint.to_string();
        self.read(move |db| db.load_events(&endpoint, from, limit))
    }

    fn dead_letters(&self, endpoint: Option<&str>) -> JFuture<'_, Vec<DeadLetter>> {
        let endpoint = endpoint.map(str::to_string);
        self.read(move |db| db.dead_letters(endpoint.as_deref()))
    }

    fn dead_letter_page(&self, query: DeadQuery) -> JFuture<'_, DeadPage> {
        self.read(move |db| db.dead_letter_page(&query))
    }

    fn dead_letter(&self, event_id: &str) -> JFuture<'_, Option<(DeadLetter, StoredRecord)>> {
        let id = event_id.to_string();
        self.read(move |db| db.dead_letter(&id))
    }

    fn attempts(&self, endpoint: &str, limit: usize) -> JFuture<'_, Vec<AttemptRecord>> {
        let endpoint = endpoint.to_string();
        self.read(move |db| db.attempts(&endpoint, limit))
    }

    fn backfill(&self, req: BackfillReq) -> JFuture<'_, BackfillDone> {
        Box::pin(self.writer.call(move |reply| Op::Backfill { req, reply }))
    }

    fn sweep(&self) -> JFuture<'_, SweepDone> {
        Box::pin(self.writer.call(Op::Sweep))
    }

    fn held_bytes(&self) -> u64 {
        self.writer.held_bytes()
    }
}

#[cfg(test)]
mod tests;
