//! The embedded backend: one redb file, written by a single thread with group commit
//! ([`writer`]), read through short-lived read transactions. [`RedbJournal`] is its
//! [`Journal`](super::Journal): writes go to the writer thread and resolve after their commit;
//! reads run on the blocking pool, never on the caller's task.

mod tables;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::rules::read;
use super::{
    Clock, CommitHealth, HealthFlag, JFuture, Journal, Limits, Loaded, NoticeSink, ProgressUpdate,
    SCHEMA_VERSION, StoreError, StoredRecord, invariants, system_clock,
};
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord,
};
use tables::ReadView;
use writer::{Op, Writer};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "courier.redb";

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
pub(crate) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
pub(crate) const PROGRESS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("progress");
pub(crate) const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");
pub(crate) const DEAD_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_records");
pub(crate) const ATTEMPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("attempts");
pub(crate) const IDEMPOTENCY: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("idempotency");
pub(crate) const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");

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

fn is_disk_full(e: &std::io::Error) -> bool {
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
    /// Opens (or creates) the database at `path` with a page cache of `cache_bytes` and starts
    /// its writer; `notify` hears about every commit.
    pub fn open(path: &Path, cache_bytes: usize, notify: NoticeSink) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes)?;
        Self::start(db, notify)
    }

    /// [`RedbJournal::open`] with the wall clock the rules read replaced by `clock` (tests of
    /// the idempotency window).
    pub fn open_with_clock(
        path: &Path,
        cache_bytes: usize,
        notify: NoticeSink,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes)?;
        Self::start_with_clock(db, notify, clock)
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
        notify: NoticeSink,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes)?;
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

    fn dead_letter(&self, event_id: &str) -> JFuture<'_, Option<(DeadLetter, StoredRecord)>> {
        let id = event_id.to_string();
        self.read(move |db| db.dead_letter(&id))
    }

    fn attempts(&self, endpoint: &str, limit: usize) -> JFuture<'_, Vec<AttemptRecord>> {
        let endpoint = endpoint.to_string();
        self.read(move |db| db.attempts(&endpoint, limit))
    }
}

/// The shared handle on the database file. Readers take a short-lived `Arc<Database>`; the
/// writer swaps it out when it must reopen after an I/O error.
#[derive(Clone)]
pub struct DbHandle {
    inner: Arc<RwLock<Option<Arc<Database>>>>,
    path: PathBuf,
    cache_bytes: usize,
}

/// redb's page cache when nothing else is said (redb's own default is 1 GiB; at 64 MiB a
/// 1M-event backlog held 160 MiB resident, at 16 MiB 93 MiB).
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl DbHandle {
    /// Opens (or creates) the database at `path` and its tables, with the default cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = open_db(path, cache_bytes)?;
        Ok(Self {
            inner: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path: path.to_path_buf(),
            cache_bytes,
        })
    }

    /// The current database, or `Unavailable` while it is being reopened.
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        match self.inner.read() {
            Ok(g) => g
                .clone()
                .ok_or_else(|| StoreError::Unavailable("reopening after an I/O error".into())),
            Err(_) => Err(StoreError::Unavailable("lock poisoned".into())),
        }
    }

    /// Closes and reopens the file. Waits (briefly) for readers to drop their handles.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let old = match self.inner.write() {
            Ok(mut g) => g.take(),
            Err(_) => return Err(StoreError::Unavailable("lock poisoned".into())),
        };
        if let Some(old) = old {
            // Wait for readers to finish with the old handle so the file lock is released.
            let mut old = old;
            for _ in 0..500 {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still) => {
                        old = still;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            }
        }
        let db = open_db(&self.path, self.cache_bytes)?;
        match self.inner.write() {
            Ok(mut g) => *g = Some(Arc::new(db)),
            Err(_) => return Err(StoreError::Unavailable("lock poisoned".into())),
        }
        Ok(())
    }

    /// A read transaction over the current database.
    pub(crate) fn view(&self) -> Result<ReadView, StoreError> {
        let db = self.get()?;
        Ok(ReadView::new(
            db.begin_read().map_err(StoreError::from_redb)?,
        ))
    }

    /// All endpoints, sorted by id.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        read::endpoints(&self.view()?)
    }

    /// All ingress channels, sorted by id.
    pub fn channels(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        read::channels(&self.view()?)
    }

    /// One endpoint.
    pub fn endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, StoreError> {
        read::endpoint(&self.view()?, id)
    }

    /// Up to `limit` pending events of `endpoint` with `seq >= from`, in order, with progress.
    /// A record that fails its check is reported in `corrupt` (it counts toward `limit`) instead
    /// of failing the read, so one bad record cannot stop the events behind it.
    pub fn load_events(
        &self,
        endpoint: &str,
        from: u64,
        limit: usize,
    ) -> Result<Loaded, StoreError> {
        read::load_events(&self.view()?, endpoint, from, limit)
    }

    /// Dead letters, oldest event first, optionally of one endpoint.
    pub fn dead_letters(&self, endpoint: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        read::dead_letters(&self.view()?, endpoint)
    }

    /// One dead letter with its record (or the raw bytes of a record that fails its check).
    pub fn dead_letter(
        &self,
        event_id: &str,
    ) -> Result<Option<(DeadLetter, StoredRecord)>, StoreError> {
        read::dead_letter(&self.view()?, event_id)
    }

    /// The newest `limit` attempts of an endpoint, newest first.
    pub fn attempts(&self, endpoint: &str, limit: usize) -> Result<Vec<AttemptRecord>, StoreError> {
        read::attempts(&self.view()?, endpoint, limit)
    }

    /// Every violation of the store's invariants (see [`crate::store`]) in the current state;
    /// empty when they all hold.
    pub fn check_invariants(&self) -> Result<Vec<String>, StoreError> {
        invariants::check(&self.view()?)
    }
}

fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| {
            let e: redb::Error = e.into();
            match e {
                redb::Error::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
                    "{} is already open (is another courier running on this data dir?)",
                    path.display()
                )),
                other => StoreError::from_redb(other),
            }
        })?;
    let tx = db.begin_write().map_err(StoreError::from_redb)?;
    {
        let mut meta = tx.open_table(META).map_err(StoreError::from_redb)?;
        let existing = meta
            .get("schema")
            .map_err(StoreError::from_redb)?
            .map(|v| v.value());
        match existing {
            None => {
                meta.insert("schema", SCHEMA_VERSION)
                    .map_err(StoreError::from_redb)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(StoreError::Unavailable(format!(
                    "data was written by a newer schema version {v} (this build reads {SCHEMA_VERSION})"
                )));
            }
        }
        tx.open_table(ENDPOINTS).map_err(StoreError::from_redb)?;
        tx.open_table(EVENTS).map_err(StoreError::from_redb)?;
        tx.open_table(PROGRESS).map_err(StoreError::from_redb)?;
        tx.open_table(DEAD).map_err(StoreError::from_redb)?;
        tx.open_table(DEAD_RECORDS).map_err(StoreError::from_redb)?;
        tx.open_table(ATTEMPTS).map_err(StoreError::from_redb)?;
        tx.open_table(IDEMPOTENCY).map_err(StoreError::from_redb)?;
        tx.open_table(CHANNELS).map_err(StoreError::from_redb)?;
    }
    tx.commit().map_err(StoreError::from_redb)?;
    Ok(db)
}
