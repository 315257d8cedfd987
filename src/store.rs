//! The journal: Courier's one durable store, a single redb file in the data directory.
//!
//! # Durability contract
//!
//! * An event is acknowledged (202) only after the write transaction holding it committed with
//!   `Durability::Immediate` (redb fsyncs before `commit` returns). Every acknowledged event is
//!   then in `events` (pending) or `dead_letters` until it is delivered; nothing else removes it.
//! * Delivery progress (attempt counts, history, delivered, dead-lettered) is committed by the
//!   same writer. Deliveries and plain attempt results may ride a non-durable commit; they are
//!   made durable by the next durable commit (at most [`writer::LAZY_SYNC`] later). A crash can
//!   therefore forget that an event was delivered or attempted: it is sent again with the same
//!   event id (redelivery is allowed). It can never forget an acknowledged event.
//! * Dead-lettering, replay, purge and endpoint changes are committed durably before they are
//!   answered.
//! * After an I/O error (a full disk, say) redb refuses further work until the file is reopened;
//!   the writer fails the batch (nothing of it is applied or acknowledged), reopens the file and
//!   carries on. redb recovers the last durable commit on open.
//!
//! # Layout
//!
//! | table          | key                     | value                                   |
//! |----------------|-------------------------|-----------------------------------------|
//! | `meta`         | name                    | u64 (`schema`; `tomb:<endpoint>` = next seq of a deleted endpoint) |
//! | `endpoints`    | endpoint id             | postcard [`EndpointRecord`]             |
//! | `events`       | (endpoint, seq)         | [`crate::record`] bytes, pending events only |
//! | `progress`     | (endpoint, seq)         | postcard [`EventProgress`], attempted pending events |
//! | `dead_letters` | event id                | postcard [`DeadLetter`]                 |
//! | `dead_records` | event id                | [`crate::record`] bytes of the dead letter |
//! | `attempts`     | (endpoint, n)           | postcard [`AttemptRecord`], newest [`ATTEMPT_LOG_KEEP`] per endpoint |
//! | `idempotency`  | (endpoint, key)         | postcard [`IdempotentHit`]              |
//! | `channels`     | channel id              | postcard [`ChannelRecord`] (ingress)    |

pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{AttemptRecord, ChannelRecord, DeadLetter, EndpointRecord, EventProgress};
use crate::record::{self, EventMeta, Record};

pub use writer::{
    EnqueueOk, EnqueueReq, Notice, Op, ProgressOutcome, ProgressUpdate, RECORD_CORRUPT, Writer,
};

/// Bumped when a stored shape changes incompatibly.
pub const SCHEMA_VERSION: u64 = 1;
/// Attempt-log rows kept per endpoint.
pub const ATTEMPT_LOG_KEEP: u64 = 1000;
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

/// Errors of store operations. `Display` never contains payloads or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("endpoint {0:?} not found")]
    EndpointNotFound(String),
    #[error("dead letter {0:?} not found")]
    DeadLetterNotFound(String),
    #[error("channel {0:?} not found")]
    ChannelNotFound(String),
    #[error("endpoint {id:?} has {backlog} undelivered events")]
    EndpointNotEmpty { id: String, backlog: u64 },
    #[error("disk full")]
    DiskFull,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A dead letter whose stored record is corrupt cannot be sent again.
    #[error("dead letter {event_id} cannot be replayed: its record is corrupt ({why})")]
    NotReplayable { event_id: String, why: String },
    /// An `Idempotency-Key` repeated with a different request; `index` is the batch position.
    #[error("idempotency key reused for a different request (first used by {event_id})")]
    IdempotencyMismatch { event_id: String, index: usize },
    #[error("store stopped")]
    Stopped,
}

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

    /// Whether the database must be reopened before further use.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::DiskFull | StoreError::Storage(_))
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(b).map_err(|_| StoreError::Corrupt(format!("{what} does not decode")))
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // postcard serialization of our plain structs into a Vec cannot fail.
    postcard::to_stdvec(v).unwrap_or_default()
}

/// What [`DbHandle::load_events`] read: the events, and the sequence numbers (with the reason)
/// of records that failed their check, in order.
#[derive(Debug, Default)]
pub struct Loaded {
    pub events: Vec<QueuedEvent>,
    pub corrupt: Vec<(u64, String)>,
}

/// A dead letter's stored record: intact, or the raw bytes of one that failed its check.
#[derive(Debug, Clone)]
pub enum StoredRecord {
    Intact(Record),
    Corrupt { raw: Vec<u8>, why: String },
}

/// An event ready for the scheduler: metadata and body in memory, with its progress.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub seq: u64,
    pub meta: Arc<EventMeta>,
    pub body: Bytes,
    pub progress: EventProgress,
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

    /// All endpoints, sorted by id.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.all(ENDPOINTS, "endpoint")
    }

    /// All ingress channels, sorted by id.
    pub fn channels(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        self.all(CHANNELS, "channel")
    }

    /// Every value of a table keyed by id, decoded, in key order.
    fn all<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let t = tx.open_table(table).map_err(StoreError::from_redb)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::from_redb)? {
            let (_, v) = row.map_err(StoreError::from_redb)?;
            out.push(decode::<T>(what, v.value())?);
        }
        Ok(out)
    }

    /// One endpoint.
    pub fn endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, StoreError> {
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let t = tx.open_table(ENDPOINTS).map_err(StoreError::from_redb)?;
        match t.get(id).map_err(StoreError::from_redb)? {
            Some(v) => Ok(Some(decode("endpoint", v.value())?)),
            None => Ok(None),
        }
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
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let events = tx.open_table(EVENTS).map_err(StoreError::from_redb)?;
        let progress = tx.open_table(PROGRESS).map_err(StoreError::from_redb)?;
        let mut out = Loaded::default();
        for row in events
            .range((endpoint, from)..=(endpoint, u64::MAX))
            .map_err(StoreError::from_redb)?
        {
            if out.events.len() + out.corrupt.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(StoreError::from_redb)?;
            let seq = k.value().1;
            let Record { meta, body } = match record::decode(v.value()) {
                Ok(r) => r,
                Err(e) => {
                    out.corrupt.push((seq, e.to_string()));
                    continue;
                }
            };
            // A progress row that does not decode costs the attempt count, not the event.
            let prog = match progress
                .get((endpoint, seq))
                .map_err(StoreError::from_redb)?
            {
                Some(p) => decode("progress", p.value()).unwrap_or_default(),
                None => EventProgress::default(),
            };
            out.events.push(QueuedEvent {
                seq,
                meta: Arc::new(meta),
                body,
                progress: prog,
            });
        }
        Ok(out)
    }

    /// Dead letters, oldest event first, optionally of one endpoint.
    pub fn dead_letters(&self, endpoint: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let t = tx.open_table(DEAD).map_err(StoreError::from_redb)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::from_redb)? {
            let (k, v) = row.map_err(StoreError::from_redb)?;
            // One undecodable row must not hide every other dead letter.
            let Ok(dl) = decode::<DeadLetter>("dead letter", v.value()) else {
                tracing::warn!(
                    event_id = k.value(),
                    "dead-letter row does not decode; left out of the list"
                );
                continue;
            };
            if endpoint.is_none_or(|e| e == dl.endpoint) {
                out.push(dl);
            }
        }
        Ok(out)
    }

    /// One dead letter with its record (or the raw bytes of a record that fails its check).
    pub fn dead_letter(
        &self,
        event_id: &str,
    ) -> Result<Option<(DeadLetter, StoredRecord)>, StoreError> {
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let t = tx.open_table(DEAD).map_err(StoreError::from_redb)?;
        let Some(v) = t.get(event_id).map_err(StoreError::from_redb)? else {
            return Ok(None);
        };
        let dl: DeadLetter = decode("dead letter", v.value())?;
        let r = tx.open_table(DEAD_RECORDS).map_err(StoreError::from_redb)?;
        let Some(rec) = r.get(event_id).map_err(StoreError::from_redb)? else {
            return Err(StoreError::Corrupt(format!(
                "dead letter {event_id} has no record"
            )));
        };
        let stored = match record::decode(rec.value()) {
            Ok(r) => StoredRecord::Intact(r),
            Err(e) => StoredRecord::Corrupt {
                raw: rec.value().to_vec(),
                why: e.to_string(),
            },
        };
        Ok(Some((dl, stored)))
    }

    /// The newest `limit` attempts of an endpoint, newest first.
    pub fn attempts(&self, endpoint: &str, limit: usize) -> Result<Vec<AttemptRecord>, StoreError> {
        let db = self.get()?;
        let tx = db.begin_read().map_err(StoreError::from_redb)?;
        let t = tx.open_table(ATTEMPTS).map_err(StoreError::from_redb)?;
        let mut out = Vec::new();
        for row in t
            .range((endpoint, 0)..=(endpoint, u64::MAX))
            .map_err(StoreError::from_redb)?
            .rev()
        {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(StoreError::from_redb)?;
            // An undecodable attempt row is left out rather than failing the whole log.
            if let Ok(a) = decode("attempt", v.value()) {
                out.push(a);
            }
        }
        Ok(out)
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
