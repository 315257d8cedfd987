//! The embedded backend: one redb file, written by a single thread with group commit
//! ([`writer`]), read through short-lived read transactions. [`RedbJournal`] is its
//! [`Journal`](super::Journal): writes go to the writer thread and resolve after their commit;
//! reads run on the blocking pool, never on the caller's task. The file is created 0600 (and
//! tightened to that when found looser). [`RedbJournal::open_read_only`] opens it for offline
//! inspection: reads as usual, every write refused, the file never written.

mod tables;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

use super::rules::read;
use super::{
    BulkDone, Clock, DeadPage, DeadQuery, JFuture, Journal, Loaded, NoticeSink, ProgressUpdate,
    SCHEMA_VERSION, StoreError, StoredRecord, invariants, system_clock,
};
use crate::core::dead_filter::DeadFilter;
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
/// `(endpoint, seq)` → the event id of that dead letter (UTF-8): pages of one endpoint's dead
/// letters in its order without a scan. Added by schema 2, built at open from `dead_letters`.
pub(crate) const DEAD_INDEX: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("dead_index");
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
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RedbJournal {
    /// Opens (or creates) the database at `path` with a page cache of `cache_bytes` and starts
    /// its writer; `notify` hears about every commit.
    pub fn open(path: &Path, cache_bytes: usize, notify: NoticeSink) -> Result<Self, StoreError> {
        let db = DbHandle::open_with_cache(path, cache_bytes)?;
        Self::start(db, notify)
    }

    /// Opens an existing journal read-only, for inspection while no daemon runs on it: the
    /// reads of [`Journal`] work as usual, every write answers `Stopped`, and nothing is
    /// written to the file (it may be on a read-only file system or a read-only copy).
    pub fn open_read_only(path: &Path, cache_bytes: usize) -> Result<Self, ReadOnlyError> {
        let db = DbHandle::open_read_only(path, cache_bytes)?;
        Ok(Self {
            db,
            writer: Writer::detached(),
            thread: Mutex::new(None),
        })
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
        let (writer, thread) = Writer::spawn_with_clock(db.clone(), notify, clock)?;
        Ok(Self {
            db,
            writer,
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
}

/// The shared handle on the database file. Readers take a short-lived `Arc<Database>`; the
/// writer swaps it out when it must reopen after an I/O error.
#[derive(Clone)]
pub struct DbHandle {
    inner: Arc<RwLock<Option<Arc<Database>>>>,
    /// The read-only database of offline inspection (then `inner` stays empty).
    read_only: Option<Arc<ReadOnlyDatabase>>,
    path: PathBuf,
    cache_bytes: usize,
}

/// Why a journal cannot be opened read-only.
#[derive(Debug, thiserror::Error)]
pub enum ReadOnlyError {
    /// No journal file at the path.
    #[error("no journal at {0} (is --data-dir the daemon's data directory?)")]
    Missing(PathBuf),
    /// A daemon has it open (it holds the file's lock).
    #[error("{0} is open by a running daemon")]
    InUse(PathBuf),
    /// The last daemon did not close it (killed, crashed): it needs the recovery a writer does.
    #[error(
        "{0} was not closed cleanly (the daemon was killed or crashed); start the daemon on it once so it recovers, then inspect it again"
    )]
    NotClean(PathBuf),
    /// Not a journal this build reads.
    #[error("{path} is not a Courier journal this build can read: {why}")]
    Invalid { path: PathBuf, why: String },
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
            read_only: None,
            path: path.to_path_buf(),
            cache_bytes,
        })
    }

    /// Opens an existing database read-only (never creating anything) and checks that it is a
    /// journal of a schema this build reads.
    pub fn open_read_only(path: &Path, cache_bytes: usize) -> Result<Self, ReadOnlyError> {
        let invalid = |why: String| ReadOnlyError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        if !path.is_file() {
            return Err(ReadOnlyError::Missing(path.to_path_buf()));
        }
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .open_read_only(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    ReadOnlyError::InUse(path.to_path_buf())
                }
                redb::DatabaseError::RepairAborted => ReadOnlyError::NotClean(path.to_path_buf()),
                other => invalid(other.to_string()),
            })?;
        let schema = db
            .begin_read()
            .map_err(|e| invalid(e.to_string()))
            .and_then(|tx| {
                let meta = tx.open_table(META).map_err(|e| invalid(e.to_string()))?;
                let v = meta.get("schema").map_err(|e| invalid(e.to_string()))?;
                Ok(v.map(|v| v.value()))
            })?;
        match schema {
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "written by schema version {v} (this build reads {SCHEMA_VERSION})"
                )));
            }
            None => return Err(invalid("it has no schema version".into())),
        }
        Ok(Self {
            inner: Arc::new(RwLock::new(None)),
            read_only: Some(Arc::new(db)),
            path: path.to_path_buf(),
            cache_bytes,
        })
    }

    /// The current database, or `Unavailable` while it is being reopened (and always for a
    /// read-only handle, which has no writable database).
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        if self.read_only.is_some() {
            return Err(StoreError::Unavailable(
                "the journal is open read-only".into(),
            ));
        }
        match self.inner.read() {
            Ok(g) => g
                .clone()
                .ok_or_else(|| StoreError::Unavailable("reopening after an I/O error".into())),
            Err(_) => Err(StoreError::Unavailable("lock poisoned".into())),
        }
    }

    /// Closes and reopens the file. Waits (briefly) for readers to drop their handles.
    pub fn reopen(&self) -> Result<(), StoreError> {
        if self.read_only.is_some() {
            return Err(StoreError::Unavailable(
                "the journal is open read-only".into(),
            ));
        }
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
        let tx = match &self.read_only {
            Some(ro) => ro.begin_read(),
            None => self.get()?.begin_read(),
        };
        Ok(ReadView::new(tx.map_err(StoreError::from_redb)?))
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

    /// A page of the dead letters a filter selects.
    pub fn dead_letter_page(&self, query: &DeadQuery) -> Result<DeadPage, StoreError> {
        super::rules::dead_letters::page(&self.view()?, query)
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

/// Opens (or creates) the journal file, owner-only: created 0600, and tightened to 0600 when
/// found readable or writable by others (it holds endpoint secrets).
fn open_private(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        if is_disk_full(&e) {
            StoreError::DiskFull
        } else {
            StoreError::Storage(format!("cannot open {}: {e}", path.display()))
        }
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    let mode = file.metadata().map_err(fail)?.permissions().mode();
    if mode & 0o077 != 0 {
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(journal = %path.display(), error = %e, "the journal is readable by others and cannot be made owner-only; it holds endpoint secrets");
        } else {
            tracing::info!(journal = %path.display(), "tightened the journal's file mode to owner-only");
        }
    }
    Ok(file)
}

fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let file = open_private(path)?;
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create_file(file)
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
            Some(1) => {
                // The first schema had no dead-letter index: build it, in this transaction.
                build_dead_index(&tx)?;
                meta.insert("schema", SCHEMA_VERSION)
                    .map_err(StoreError::from_redb)?;
            }
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
        tx.open_table(DEAD_INDEX).map_err(StoreError::from_redb)?;
        tx.open_table(ATTEMPTS).map_err(StoreError::from_redb)?;
        tx.open_table(IDEMPOTENCY).map_err(StoreError::from_redb)?;
        tx.open_table(CHANNELS).map_err(StoreError::from_redb)?;
    }
    tx.commit().map_err(StoreError::from_redb)?;
    Ok(db)
}

/// Indexes every dead letter of a journal of the first schema by `(endpoint, seq)`. A row that
/// does not decode is left out (lists leave it out too; it can still be shown and purged).
fn build_dead_index(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let dead = tx.open_table(DEAD).map_err(StoreError::from_redb)?;
    let mut index = tx.open_table(DEAD_INDEX).map_err(StoreError::from_redb)?;
    let mut n = 0u64;
    for row in dead.iter().map_err(StoreError::from_redb)? {
        let (k, v) = row.map_err(StoreError::from_redb)?;
        let Ok(dl) = super::decode::<DeadLetter>("dead letter", v.value()) else {
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

#[cfg(test)]
mod tests;
