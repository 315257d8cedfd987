//! The journal: Courier's durable store, behind the [`Journal`] trait. The embedded backend is
//! one redb file in the data directory ([`redb`]), the reference backend lives in memory
//! ([`memory`]); every backend keeps the contract and the invariants below.
//!
//! What a write does to the tables is decided once, for every backend, by [`rules`], written
//! against the storage-transaction seam [`tables`]; a backend supplies transactions, commits
//! them and sends the [`Notice`]s. `tests/journal_contract.rs` runs one suite against every
//! backend (a new backend adds one line there).
//!
//! # Durability contract
//!
//! * An event is acknowledged (202) only after the write transaction holding it committed with
//!   `Durability::Immediate` (redb fsyncs before `commit` returns). Every acknowledged event is
//!   then in `events` (pending) or `dead_letters` until it is delivered; nothing else removes it.
//! * Delivery progress (attempt counts, history, delivered, dead-lettered) is committed by the
//!   same writer. Deliveries and plain attempt results may ride a non-durable commit; they are
//!   made durable by the next durable commit (at most [`redb::writer::LAZY_SYNC`] later). A crash can
//!   therefore forget that an event was delivered or attempted: it is sent again with the same
//!   event id (redelivery is allowed). It can never forget an acknowledged event.
//! * Dead-lettering, replay, purge and endpoint changes are committed durably before they are
//!   answered.
//! * After an I/O error (a full disk, say) redb refuses further work until the file is reopened;
//!   the writer fails the batch (nothing of it is applied or acknowledged), reopens the file and
//!   carries on. redb recovers the last durable commit on open.
//!
//! # Invariants
//!
//! What holds between the tables after every commit (and so after every crash), in words.
//! [`invariants::check`] checks them over any backend's tables; the contract suite runs it
//! after every case, against both backends.
//!
//! 1. **Nothing acknowledged is lost.** Every acknowledged event is in exactly one of `events`
//!    (pending) or `dead_letters` until it is delivered or purged: no event id is both a pending
//!    record and a dead letter, and a dead letter's `(endpoint, seq)` is never also a pending
//!    row (which is what lets a replay go back to its original place).
//! 2. **Counters agree with rows.** An endpoint's `pending` equals the number of its rows in
//!    `events`. Every row of `events`, `progress`, `attempts` and `idempotency` belongs to an
//!    existing endpoint (a delete takes them all, after dead-lettering the backlog).
//! 3. **Sequence numbers are never reused.** An endpoint's `next_seq` is greater than every seq
//!    ever used by that endpoint id: its pending events, its remembered keys and its dead
//!    letters (including those left by a deleted namesake). A deleted id keeps a tombstone with
//!    its `next_seq` (greater than the seq of each of its dead letters) until it is created again,
//!    which takes the tombstone over; an existing endpoint has no tombstone.
//! 4. **Side rows have their main row.** A `progress` row exists only beside its `events` row;
//!    a dead letter's record exists exactly when its dead letter does, and so does its row in
//!    the dead-letter index, at its `(endpoint, seq)`, naming it.
//! 5. **The attempt log is bounded.** It is a ring: attempt `n` of an endpoint is at slot
//!    `n % ATTEMPT_LOG_KEEP` (overwritten, never deleted), so it holds at most
//!    [`ATTEMPT_LOG_KEEP`] rows per endpoint, at keys below [`ATTEMPT_LOG_KEEP`] and below the
//!    endpoint's `next_attempt_log`; a row counts repeats only for a failed probe.
//! 6. **Rows decode.** Endpoint, dead-letter, attempt and progress rows decode as their shape
//!    (a pending record that fails its check is no violation: delivery quarantines it as
//!    `RECORD_CORRUPT`).
//! 7. **The segment log agrees with its rows** (redb only, `redb/segments/check.rs`): each
//!    segment's live count is the stubs pointing into it, every stub lies inside the
//!    committed end of the log, every listed segment's file opens.
//!
//! Channels may name an endpoint that was deleted after them (the ingress answers that);
//! that is not a violation.
//!
//! # Layout of the redb backend
//!
//! | table          | key                     | value                                   |
//! |----------------|-------------------------|-----------------------------------------|
//! | `meta`         | name                    | u64 (`schema`; `tomb:<endpoint>` = next seq of a deleted endpoint; `seg_active`, `seg_len` = the segment log's committed end) |
//! | `endpoints`    | endpoint id             | postcard [`EndpointRecord`] (two shapes: [`EndpointRecord::decode`]), sealed (schema 5: [`seal`]) |
//! | `events`       | (endpoint, seq)         | a 29-byte stub into the segment log (schema 4; `redb/segments.rs`), or [`crate::core::record`] bytes in rows written before; pending and retained events |
//! | `segments`     | segment number          | (live rows, live record bytes) of that segment file (schema 4) |
//! | `progress`     | (endpoint, seq)         | postcard [`EventProgress`], attempted pending events |
//! | `dead_letters` | event id                | postcard [`DeadLetter`]                 |
//! | `dead_records` | event id                | [`crate::core::record`] bytes of the dead letter |
//! | `dead_index`   | (endpoint, seq)         | event id of that dead letter (schema 2; built at open from schema 1) |
//! | `attempts`     | (endpoint, slot)        | postcard [`AttemptRecord`] + kind, answer snippet, repeats and last repeat ([`AttemptRecord::encode_logged`]); a ring of [`ATTEMPT_LOG_KEEP`] slots per endpoint (attempt n at n % 1000; plain n in schema 2, moved at open) |
//! | `idempotency`  | (endpoint, key)         | postcard [`IdempotentHit`]              |
//! | `channels`     | channel id              | postcard [`ChannelRecord`] (ingress), sealed (schema 5: [`seal`]) |

pub mod invariants;
pub mod memory;
pub mod redb;
pub mod rules;
pub mod seal;
pub mod tables;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::core::dead_filter::{Cursor, DeadFilter};
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord,
    EventProgress,
};
use crate::core::record::{self, EventMeta, Record};

pub use rules::RECORD_CORRUPT;
pub use rules::dead_letters::REPLAY_CHUNK_BYTES;
pub use rules::endpoints::ENDPOINT_DELETED;

/// Bumped when a stored shape changes incompatibly.
/// 2: the `dead_index` table (built at open from a journal of schema 1).
/// 3: the retained log: `events` keeps delivered events (for back-fill) until retention removes
///    them; the `done` and `reopened` tables; the endpoint record's third shape. A build of
///    schema 2 would take retained rows for pending ones, so it must refuse such a journal.
/// 4: the segment log: a new record goes to a segment file and its `events` row holds a stub
///    pointing at it (rows of older schemas keep their records); the `segments` table and the
///    log's end in `meta`. A build of schema 3 would take stubs for corrupt records.
/// 5: sealed rows: every `endpoints` and `channels` row is sealed under the master key
///    ([`seal`], `redb/sealed.rs`); the upgrade seals the clear rows. A build of schema 4 would
///    take sealed rows for corrupt ones (it refuses the journal: a newer schema).
pub const SCHEMA_VERSION: u64 = 5;
/// Attempt-log rows kept per endpoint.
pub const ATTEMPT_LOG_KEEP: u64 = 1000;
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 3600 * 1000;

/// Where a journal reads the time its rules use (unix ms): the wall clock, or a test's clock
/// (to step over the idempotency window without waiting a day).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::core::timefmt::now_ms)
}

/// The future a journal operation returns.
pub type JFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where a journal tells the scheduler what a commit changed (called after the commit, in
/// commit order).
pub type NoticeSink = Box<dyn Fn(Notice) + Send>;

/// The durable store, as the API, the ingress and the scheduler see it.
///
/// Every write future resolves only after its change is durable under the contract above
/// (`record_progress` and `quarantine` are not awaited: the scheduler does not wait for the
/// journal). A backend answers each write with the error of that write only; a storage failure
/// fails the writes it affected and nothing else.
pub trait Journal: Send + Sync + 'static {
    /// Accepts one event (durable when this resolves).
    fn enqueue(&self, req: EnqueueReq) -> JFuture<'_, EnqueueOk>;
    /// Accepts every event of a batch, or none (one commit).
    fn enqueue_batch(&self, reqs: Vec<EnqueueReq>) -> JFuture<'_, Vec<EnqueueOk>>;
    /// Creates or updates an endpoint; `true` when it was created.
    fn put_endpoint(
        &self,
        id: String,
        config: EndpointConfig,
    ) -> JFuture<'_, (EndpointRecord, bool)>;
    fn set_paused(&self, id: String, paused: bool) -> JFuture<'_, EndpointRecord>;
    /// Deletes an endpoint; with `force`, its pending events become dead letters
    /// (`ENDPOINT_DELETED`), without it a backlog refuses the delete.
    fn delete_endpoint(&self, id: String, force: bool) -> JFuture<'_, ()>;
    /// Puts a dead letter back at its original place in its endpoint's queue; answers
    /// `(endpoint, seq)`.
    fn replay(&self, event_id: String) -> JFuture<'_, (String, u64)>;
    fn purge(&self, event_id: String) -> JFuture<'_, ()>;
    /// Replays the dead letters `filter` selects (its endpoint is required) whose seq is after
    /// `after`, in the endpoint's order, at most `limit` of them in one durable commit, each as
    /// [`Journal::replay`] does; those that cannot be (corrupt record) are counted as skipped
    /// and stay. [`BulkDone::next`] says where to go on when it stopped before the end.
    fn replay_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone>;
    /// Purges the dead letters `filter` selects (its endpoint is required; it need not exist
    /// any more) whose seq is after `after`: at most `limit` in one durable commit.
    fn purge_matching(
        &self,
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, BulkDone>;
    /// Creates or updates an ingress channel (its endpoint must exist).
    fn put_channel(&self, id: String, config: ChannelConfig) -> JFuture<'_, (ChannelRecord, bool)>;
    fn delete_channel(&self, id: String) -> JFuture<'_, ()>;
    /// A durable barrier: everything sent before is durable when this resolves.
    fn sync(&self) -> JFuture<'_, ()>;
    /// Makes everything durable and stops taking writes (at shutdown).
    fn close(&self) -> JFuture<'_, ()>;

    /// Logs an attempt made outside the queue (a connection test, a call) in the endpoint's
    /// attempt log; a 2xx sets its `connected_at`. Resolves after the commit, which is lazy
    /// like an attempt result's (not fsynced at once). No event's progress changes.
    fn log_attempt(&self, endpoint: String, attempt: AttemptRecord) -> JFuture<'_, ()>;
    /// An attempt's result (not awaited; made durable as the contract says).
    fn record_progress(&self, update: ProgressUpdate);
    /// Sets aside a pending event whose stored record is corrupt: it becomes a dead letter with
    /// reason [`RECORD_CORRUPT`] (not awaited).
    fn quarantine(&self, endpoint: Arc<str>, seq: u64, why: String);

    /// All endpoints, sorted by id.
    fn endpoints(&self) -> JFuture<'_, Vec<EndpointRecord>>;
    fn endpoint(&self, id: &str) -> JFuture<'_, Option<EndpointRecord>>;
    /// All ingress channels, sorted by id.
    fn channels(&self) -> JFuture<'_, Vec<ChannelRecord>>;
    /// Up to `limit` pending events of `endpoint` with `seq >= from`, in order, with progress;
    /// records that fail their check are reported in [`Loaded::corrupt`] (counting toward
    /// `limit`).
    fn load_events(&self, endpoint: &str, from: u64, limit: usize) -> JFuture<'_, Loaded>;
    /// Dead letters, oldest first, optionally of one endpoint.
    fn dead_letters(&self, endpoint: Option<&str>) -> JFuture<'_, Vec<DeadLetter>>;
    /// One page of the dead letters a filter selects, in its walk's order (see
    /// [`crate::core::dead_filter`]); a page looks at no more than [`rules::dead_letters::PAGE_SCAN`]
    /// rows, so with a sparse filter it may hold fewer than `limit` while `next` is set.
    fn dead_letter_page(&self, query: DeadQuery) -> JFuture<'_, DeadPage>;
    /// One dead letter with its record.
    fn dead_letter(&self, event_id: &str) -> JFuture<'_, Option<(DeadLetter, StoredRecord)>>;
    /// The newest `limit` attempts of an endpoint, newest first.
    fn attempts(&self, endpoint: &str, limit: usize) -> JFuture<'_, Vec<AttemptRecord>>;

    /// Back-fill: reopens, in one durable commit, up to `req.limit` retained events of the
    /// endpoint accepted in the window that were delivered already, after `req.after` in seq
    /// order. Each goes back to its place, pending again, marked as a replay (sent with
    /// `X-HAPP-Replay: 1`), ahead of every event not yet started. Events of the window still
    /// pending are counted, not reopened. [`BackfillDone::next`] says where to go on.
    fn backfill(&self, req: BackfillReq) -> JFuture<'_, BackfillDone>;
    /// Retention: removes delivered events accepted before `retention` ago (and, over
    /// `max_journal_bytes`, the oldest delivered ones first), at most a bounded amount per
    /// call (one commit); [`SweepDone::more`] says whether to call again at once.
    fn sweep(&self) -> JFuture<'_, SweepDone>;
    /// Bytes of event records the journal holds: pending, retained and dead letters.
    fn held_bytes(&self) -> u64 {
        0
    }

    /// Whether the journal can commit, as its last commit found (`/readyz`). A backend that
    /// cannot fail to commit keeps the default.
    fn commit_health(&self) -> CommitHealth {
        CommitHealth::Ok
    }
}

/// Whether commits succeed, as the last one found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitHealth {
    Ok,
    /// The last commit failed for want of space (`STORAGE_FULL`), at `since_ms` (unix ms).
    Full {
        since_ms: u64,
    },
    /// The last commit failed otherwise, or the storage could not be reopened
    /// (`STORAGE_UNAVAILABLE`), at `since_ms`.
    Failing {
        since_ms: u64,
    },
}

impl CommitHealth {
    /// The stable code of a failing journal (`None` when it commits).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            CommitHealth::Ok => None,
            CommitHealth::Full { .. } => Some("STORAGE_FULL"),
            CommitHealth::Failing { .. } => Some("STORAGE_UNAVAILABLE"),
        }
    }
}

/// A [`CommitHealth`] shared between a journal's writer and its readers: 0 when commits
/// succeed, else the time of the last failure (unix ms) with its kind in the lowest bit.
#[derive(Debug, Default)]
pub struct HealthFlag(std::sync::atomic::AtomicU64);

impl HealthFlag {
    /// A commit succeeded.
    pub fn ok(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// A commit (or a reopen) failed with `e`, now.
    pub fn failed(&self, e: &StoreError) {
        let full = u64::from(matches!(e, StoreError::DiskFull));
        let at = crate::core::timefmt::now_ms().max(1);
        self.0
            .store((at << 1) | full, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> CommitHealth {
        let v = self.0.load(std::sync::atomic::Ordering::Relaxed);
        match (v, v & 1) {
            (0, _) => CommitHealth::Ok,
            (v, 1) => CommitHealth::Full { since_ms: v >> 1 },
            (v, _) => CommitHealth::Failing { since_ms: v >> 1 },
        }
    }
}

/// Limits the journal's rules enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most pending events per endpoint (an endpoint's own `max_backlog` overrides it); intake
    /// past it is refused with `BACKLOG_FULL`.
    pub max_backlog: u64,
    /// Most bytes of event records the journal holds (pending, retained, dead); intake past it
    /// is refused with `STORAGE_FULL` (see `store/rules/log.rs` for who is refused first).
    pub max_journal_bytes: Option<u64>,
    /// How long delivered events are kept for back-fill (ms).
    pub retention_ms: u64,
}

/// The default of `--max-backlog`.
pub const DEFAULT_MAX_BACKLOG: u64 = 1_000_000;
/// The default of `--retention`: 72 hours.
pub const DEFAULT_RETENTION_MS: u64 = 72 * 3600 * 1000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_backlog: DEFAULT_MAX_BACKLOG,
            max_journal_bytes: None,
            retention_ms: DEFAULT_RETENTION_MS,
        }
    }
}

/// A back-fill request ([`Journal::backfill`]): the endpoint's events accepted from `since_ms`
/// to `until_ms` (inclusive, unix ms; `None`: up to now), after seq `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReq {
    pub endpoint: String,
    pub since_ms: u64,
    pub until_ms: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

/// What one back-fill commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillDone {
    /// Events reopened (sent again).
    pub done: u64,
    /// Events of the window that were still pending (they go out in their turn, once).
    pub pending: u64,
    /// The seq to go on after, when it stopped before the end of the window.
    pub next: Option<u64>,
    /// When the oldest event the endpoint still retains was accepted (unix ms); `None` when
    /// it retains none.
    pub retained_since_ms: Option<u64>,
    /// Retention removed events of this endpoint that were accepted in the window.
    pub cut: bool,
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepDone {
    /// Delivered events removed.
    pub removed: u64,
    /// Their record bytes.
    pub bytes: u64,
    /// More is due now (the pass stopped at its bound).
    pub more: bool,
    /// Record bytes compaction copied out of a mostly empty segment (redb journal).
    pub moved: u64,
}

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
    /// The endpoint holds `limit` pending events already (`--max-backlog`).
    #[error("endpoint {id:?} holds {limit} undelivered events, its limit")]
    BacklogFull { id: String, limit: u64 },
    /// The journal holds `limit` bytes of events (`--max-journal-bytes`); this endpoint's
    /// intake is refused (the storage itself is fine: nothing needs reopening).
    #[error(
        "the journal holds {held} bytes of events, at its limit of {limit} (endpoint {id:?} holds {endpoint_bytes})"
    )]
    JournalFull {
        id: String,
        held: u64,
        limit: u64,
        endpoint_bytes: u64,
    },
    /// A back-fill window entirely older than what retention kept.
    #[error("endpoint {id:?} retains no events of that window")]
    WindowGone {
        id: String,
        retained_since_ms: Option<u64>,
    },
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
    /// A read could not be run (its worker failed); nothing was changed.
    #[error("a storage read failed unexpectedly")]
    Internal,
}

impl StoreError {
    /// Whether the database must be reopened before further use.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::DiskFull | StoreError::Storage(_))
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    b: &[u8],
) -> Result<T, StoreError> {
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

/// What [`Journal::dead_letter_page`] reads: the filter, where to start (after `after`), at
/// most `limit` dead letters, and whether with their records (for the export).
#[derive(Debug, Clone, Default)]
pub struct DeadQuery {
    pub filter: DeadFilter,
    pub after: Option<Cursor>,
    pub limit: usize,
    pub records: bool,
}

/// One dead letter of a page, with its record when asked for.
#[derive(Debug, Clone)]
pub struct DeadEntry {
    pub letter: DeadLetter,
    pub record: Option<StoredRecord>,
}

/// A page of dead letters; `next` is `None` when nothing is left after it.
#[derive(Debug, Clone, Default)]
pub struct DeadPage {
    pub entries: Vec<DeadEntry>,
    pub next: Option<Cursor>,
}

/// What one bulk replay or purge did: how many it replayed or purged (`done`), how many it had
/// to leave (`skipped`: a replay of a corrupt record), and the seq to go on after when it
/// stopped before the end of the walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkDone {
    pub done: u64,
    pub skipped: u64,
    pub next: Option<u64>,
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
    /// Sent again by a back-fill: its attempts carry `X-HAPP-Replay: 1`.
    pub replay: bool,
    /// Bytes of its stored record (the journal's byte accounting).
    pub record_len: u32,
}

/// One event to accept.
#[derive(Debug)]
pub struct EnqueueReq {
    pub endpoint: String,
    pub meta: Arc<EventMeta>,
    pub body: Bytes,
    /// The encoded record (made by the caller, off the writer thread).
    pub record: Vec<u8>,
    pub idempotency_key: Option<String>,
    /// What a repeat of the key must match, computed (off the writer thread) when a key is given.
    pub fingerprint: Option<[u8; 32]>,
}

impl EnqueueReq {
    /// Builds the request, encoding the record.
    pub fn new(
        endpoint: String,
        meta: EventMeta,
        body: Bytes,
        idempotency_key: Option<String>,
    ) -> Result<Self, record::RecordError> {
        let record = record::encode(&meta, &body)?;
        let fingerprint = idempotency_key.as_ref().map(|_| {
            crate::core::model::request_fingerprint(
                &meta.content_type,
                meta.event_type.as_deref(),
                &body,
            )
        });
        Ok(Self {
            endpoint,
            meta: Arc::new(meta),
            body,
            record,
            idempotency_key,
            fingerprint,
        })
    }
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueOk {
    pub id: String,
    pub seq: u64,
    /// The `Idempotency-Key` was seen before; this is the original event.
    pub duplicate: bool,
}

/// The result of an attempt, for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressOutcome {
    Delivered,
    /// Still pending (will be retried or probed).
    Pending,
    Dead {
        reason: String,
    },
}

/// An attempt result from the scheduler.
#[derive(Debug, Clone)]
pub struct ProgressUpdate {
    pub endpoint: Arc<str>,
    pub seq: u64,
    pub attempt: AttemptRecord,
    pub progress: EventProgress,
    pub outcome: ProgressOutcome,
    /// `Some(true)` when this attempt put the endpoint down, `Some(false)` when it brought it
    /// back, persisted with the attempt.
    pub down: Option<bool>,
}

/// What the scheduler learns after a commit.
#[derive(Debug, Clone)]
pub enum Notice {
    Enqueued {
        endpoint: Arc<str>,
        event: QueuedEvent,
    },
    /// Boxed: a record is large beside the other notices (and the scheduler's messages).
    EndpointUpserted(Box<EndpointRecord>),
    EndpointDeleted(String),
    Replayed {
        endpoint: Arc<str>,
        event: QueuedEvent,
    },
    /// Intake to the endpoint was refused: its backlog reached the limit (once per crossing:
    /// again only after an event was accepted below the limit).
    BacklogFull {
        endpoint: Arc<str>,
        limit: u64,
    },
}
