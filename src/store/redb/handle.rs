//! The shared handle on the journal's database file: opening it (created owner-only, its
//! tables and schema checked, the first schema's dead-letter index built, its sealed rows
//! checked and resealed under the first master key, compacted once after the upgrade sealed
//! them), the read-only open of offline inspection, the reopen after an I/O error, and the
//! reads every journal answer is made of. A handle may sit on another storage backend than the
//! file ([`DbHandle::open_with_backend`]: the power-loss test's disk); it then opens and
//! reopens through the backend's factory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable};

use super::is_disk_full;
use super::sealed::{self, RowSeal};
use super::segments::{DEFAULT_SEGMENT_BYTES, DirFs, SEGMENT_DIR, SegmentFs, Segments, Tail};
use super::tables::ReadView;
use super::{
    ATTEMPTS, CHANNELS, DEAD, DEAD_INDEX, DEAD_RECORDS, DONE, ENDPOINTS, EVENTS, IDEMPOTENCY, META,
    PROGRESS, REOPENED, SEG_ACTIVE, SEG_LEN, SEGMENTS,
};
use crate::core::model::{AttemptRecord, ChannelRecord, DeadLetter, EndpointRecord};
use crate::store::rules::read;
use crate::store::seal::KeyRing;
use crate::store::{
    DeadPage, DeadQuery, Loaded, SCHEMA_VERSION, StoreError, StoredRecord, invariants,
};

/// The shared handle on the database file. Readers take a short-lived `Arc<Database>`; the
/// writer swaps it out when it must reopen after an I/O error.
#[derive(Clone)]
pub struct DbHandle {
    inner: Arc<RwLock<Option<Arc<Database>>>>,
    /// The read-only database of offline inspection (then `inner` stays empty).
    read_only: Option<Arc<ReadOnlyDatabase>>,
    path: PathBuf,
    cache_bytes: usize,
    /// Opens the database on a storage backend of its own instead of the file at `path`
    /// ([`DbHandle::open_with_backend`]); `None` for the file.
    backend: Option<OpenOn>,
    /// The segment log the event records are appended to (`None`: records stay in redb's
    /// rows, as before schema 4).
    segs: Option<Arc<Segments>>,
    /// How the rows of `endpoints` and `channels` are sealed.
    seal: RowSeal,
}

/// Opens a database through a fresh storage backend, on the builder the handle configured.
type OpenOn = Arc<dyn Fn(&redb::Builder) -> Result<Database, redb::DatabaseError> + Send + Sync>;

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
    /// Its sealed rows cannot be opened: no master key, or not the one they were sealed with
    /// (the message starts with the code).
    #[error("{0}")]
    Key(String),
}

/// redb's page cache when nothing else is said (redb's own default is 1 GiB; at 64 MiB a
/// 1M-event backlog held 160 MiB resident, at 16 MiB 93 MiB).
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl DbHandle {
    /// Opens (or creates) the database at `path` and its tables, with the default cache, its
    /// sealed rows under `keys`.
    pub fn open(path: &Path, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES, keys)
    }

    /// Opens (or creates) the database with a page cache of `cache_bytes`, its segment log
    /// in the `segments` directory beside it, its sealed rows under `keys`.
    pub fn open_with_cache(
        path: &Path,
        cache_bytes: usize,
        keys: Arc<KeyRing>,
    ) -> Result<Self, StoreError> {
        Self::open_with_segments(path, cache_bytes, DEFAULT_SEGMENT_BYTES, keys)
    }

    /// [`DbHandle::open_with_cache`] with segments of `segment_bytes` (tests use small ones).
    pub fn open_with_segments(
        path: &Path,
        cache_bytes: usize,
        segment_bytes: u64,
        keys: Arc<KeyRing>,
    ) -> Result<Self, StoreError> {
        let (db, tail, live) = open_db(path, cache_bytes, &keys)?;
        let dir = path.parent().unwrap_or(Path::new(".")).join(SEGMENT_DIR);
        let fs = DirFs::create(&dir).map_err(|e| seg_error(&e))?;
        let segs =
            Segments::open(Arc::new(fs), segment_bytes, tail, &live).map_err(|e| seg_error(&e))?;
        Ok(Self {
            inner: Arc::new(RwLock::new(Some(Arc::new(db)))),
            read_only: None,
            path: path.to_path_buf(),
            cache_bytes,
            backend: None,
            segs: Some(Arc::new(segs)),
            seal: RowSeal::Keys(keys),
        })
    }

    /// Opens (or creates) the database on a storage backend other than the file, with a page
    /// cache of `cache_bytes`: `factory` makes a backend over the same storage each time the
    /// handle opens it, at first and at every reopen after an I/O error (a factory that fails
    /// leaves the journal unavailable, as a file that cannot be opened does). The daemon always
    /// uses the file; this exists so a test can put the real journal on a disk that loses what
    /// was not synced (`testkit::power_loss`).
    ///
    /// `segments` is the segment log's storage and segment size; without it the records stay
    /// in redb's rows.
    pub fn open_with_backend<B, F>(
        factory: F,
        segments: Option<(Arc<dyn SegmentFs>, u64)>,
        cache_bytes: usize,
        keys: Arc<KeyRing>,
    ) -> Result<Self, StoreError>
    where
        B: redb::StorageBackend,
        F: Fn() -> std::io::Result<B> + Send + Sync + 'static,
    {
        let backend: OpenOn = Arc::new(move |builder: &redb::Builder| {
            builder.create_with_backend(factory().map_err(redb::DatabaseError::from)?)
        });
        let (db, tail, live) = open_on(&backend, cache_bytes, &keys)?;
        let segs = match segments {
            Some((fs, bytes)) => Some(Arc::new(
                Segments::open(fs, bytes, tail, &live).map_err(|e| seg_error(&e))?,
            )),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(RwLock::new(Some(Arc::new(db)))),
            read_only: None,
            path: PathBuf::from("(storage backend)"),
            cache_bytes,
            backend: Some(backend),
            segs,
            seal: RowSeal::Keys(keys),
        })
    }

    /// Opens an existing database read-only (never creating anything) and checks that it is a
    /// journal of a schema this build reads. A journal of schema 5 on has its `endpoints` and
    /// `channels` rows sealed: it needs `keys` (one that opens them); an older one is read in
    /// clear (it is upgraded, and sealed, by the next daemon that opens it).
    pub fn open_read_only(
        path: &Path,
        cache_bytes: usize,
        keys: Option<Arc<KeyRing>>,
    ) -> Result<Self, ReadOnlyError> {
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
        let tx = db.begin_read().map_err(|e| invalid(e.to_string()))?;
        let schema = {
            let meta = tx.open_table(META).map_err(|e| invalid(e.to_string()))?;
            let v = meta.get("schema").map_err(|e| invalid(e.to_string()))?;
            v.map(|v| v.value())
        };
        let seal = match (schema, keys) {
            (Some(SCHEMA_VERSION), Some(keys)) => {
                sealed::check_keys(&tx, &keys).map_err(|e| ReadOnlyError::Key(key_error(e)))?;
                RowSeal::Keys(keys)
            }
            (Some(SCHEMA_VERSION), None) => {
                return Err(ReadOnlyError::Key(format!(
                    "MASTER_KEY_MISSING: the journal's endpoints and channels are sealed and no master key was found (give --master-key-file or {}, or put master.key back in the data dir)",
                    crate::store::seal::key_file::KEY_ENV
                )));
            }
            _ => RowSeal::Clear,
        };
        drop(tx);
        match schema {
            // Schema 2 reads as it is (its attempt log at plain keys, see `rules::attempt_log`);
            // schema 3 has every record in its rows; schema 4's endpoints and channels are in
            // clear.
            Some(2..=4 | SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "written by schema version {v} (this build reads {SCHEMA_VERSION})"
                )));
            }
            None => return Err(invalid("it has no schema version".into())),
        }
        let dir = path.parent().unwrap_or(Path::new(".")).join(SEGMENT_DIR);
        let segs = Segments::open(
            Arc::new(DirFs::read_only(&dir)),
            DEFAULT_SEGMENT_BYTES,
            None,
            &Default::default(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(RwLock::new(None)),
            read_only: Some(Arc::new(db)),
            path: path.to_path_buf(),
            cache_bytes,
            backend: None,
            segs: Some(Arc::new(segs)),
            seal,
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
        let RowSeal::Keys(keys) = &self.seal else {
            return Err(StoreError::Unavailable(
                "the journal is open read-only".into(),
            ));
        };
        let (db, tail, _) = match &self.backend {
            Some(backend) => open_on(backend, self.cache_bytes, keys)?,
            None => open_db(&self.path, self.cache_bytes, keys)?,
        };
        if let Some(segs) = &self.segs {
            // The failed commit may have reached the disk after all: its end is the log's.
            segs.reopened(tail);
        }
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
        Ok(ReadView::new(
            tx.map_err(StoreError::from_redb)?,
            self.segs.clone(),
            self.seal.clone(),
        ))
    }

    /// How the rows of `endpoints` and `channels` are sealed (the writer's tables need it).
    pub(crate) fn seal(&self) -> &RowSeal {
        &self.seal
    }

    /// The segment log, when the journal has one.
    pub fn segments(&self) -> Option<&Arc<Segments>> {
        self.segs.as_ref()
    }

    /// Bytes the journal takes on disk: the database file and the segment files.
    pub fn disk_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let db = std::fs::metadata(&self.path).map_or(0, |m| m.blocks() * 512);
        let segs = self
            .segs
            .as_ref()
            .and_then(|s| s.fs().disk_bytes().ok())
            .unwrap_or(0);
        db + segs
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
        crate::store::rules::dead_letters::page(&self.view()?, query)
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
        let view = self.view()?;
        let mut out = invariants::check(&view)?;
        if let Some(segs) = &self.segs {
            out.extend(super::segments::check::check(&view.tx, segs)?);
        }
        Ok(out)
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

/// Compacts the file once the upgrade sealed its rows, so that the pages that held them in
/// clear are reused or cut off now rather than some day. A failed compaction leaves a valid
/// file (redb compacts in transactions): it is logged and the open goes on.
fn compact_after_sealing(db: &mut Database) {
    match db.compact() {
        Ok(_) => tracing::info!("journal compacted after sealing its rows"),
        Err(e) => {
            tracing::warn!(error = %e, "could not compact the journal after sealing its rows; the pages that held them in clear are reused as the journal grows")
        }
    }
}

/// A database just opened, with its segment log's committed end and live segments.
type Opened = (Database, Option<Tail>, std::collections::BTreeSet<u64>);

fn seg_error(e: &std::io::Error) -> StoreError {
    if is_disk_full(e) {
        StoreError::DiskFull
    } else {
        StoreError::Storage(format!("segment log: {e}"))
    }
}

/// The message of a read-only open refused for its keys.
fn key_error(e: StoreError) -> String {
    match e {
        StoreError::Unavailable(m) | StoreError::Corrupt(m) | StoreError::Storage(m) => m,
        e => e.to_string(),
    }
}

fn open_db(path: &Path, cache_bytes: usize, keys: &KeyRing) -> Result<Opened, StoreError> {
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
    prepare(db, keys)
}

/// Opens the database through a storage backend's factory.
fn open_on(backend: &OpenOn, cache_bytes: usize, keys: &KeyRing) -> Result<Opened, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    prepare(backend(&builder).map_err(StoreError::from_redb)?, keys)
}

/// Checks (or sets, or upgrades) the schema of a freshly opened database and opens its tables;
/// checks that every sealed row opens under `keys` and reseals those sealed under an older
/// key; answers it with the segment log's committed end and the segments it lists.
fn prepare(mut db: Database, keys: &KeyRing) -> Result<Opened, StoreError> {
    let mut sealed_now = 0;
    let tx = db.begin_write().map_err(StoreError::from_redb)?;
    let mut tail = None;
    let mut live = std::collections::BTreeSet::new();
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
            Some(v @ (1..=4)) => {
                sealed_now = super::upgrade::upgrade(&tx, v, keys)?;
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
        tx.open_table(DONE).map_err(StoreError::from_redb)?;
        tx.open_table(REOPENED).map_err(StoreError::from_redb)?;
        let segments = tx.open_table(SEGMENTS).map_err(StoreError::from_redb)?;
        for row in segments.iter().map_err(StoreError::from_redb)? {
            live.insert(row.map_err(StoreError::from_redb)?.0.value());
        }
        let get = |k: &str| -> Result<Option<u64>, StoreError> {
            Ok(meta
                .get(k)
                .map_err(StoreError::from_redb)?
                .map(|v| v.value()))
        };
        if let (Some(seg), Some(len)) = (get(SEG_ACTIVE)?, get(SEG_LEN)?) {
            tail = Some(Tail { seg, len });
        }
    }
    let resealed = sealed::check_and_reseal(&tx, keys)?;
    if resealed > 0 {
        tracing::info!(
            rows = resealed,
            key_id = %keys.sealing_id(),
            "endpoint and channel rows resealed under the first master key"
        );
    }
    tx.commit().map_err(StoreError::from_redb)?;
    if sealed_now > 0 {
        compact_after_sealing(&mut db);
    }
    Ok((db, tail, live))
}
