//! Durable state shapes shared by the store, the scheduler and the API. All are encoded with
//! postcard in the store; field order is part of the on-disk format. Postcard is not
//! self-describing, so a missing trailing field does not decode as `None`: a new field goes at
//! the end as an `Option` together with a decoder that falls back to the old shape (see
//! [`IdempotentHit::decode`]); any other change bumps [`crate::store::SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};

use crate::core::secret::Secret;
use std::time::Duration;

mod security;

pub use security::{ChannelSecurity, EndpointSecurity, PreviousSecret, SignatureMode};

/// Default attempt timeout (contract: 5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default waits before retry 1, 2, 3 (contract: 5 s, 15 s, 60 s).
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
];
/// How many attempts of one event we keep in its history.
pub const HISTORY_MAX: usize = 32;

/// An endpoint's configuration, as the operator set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConfig {
    pub url: String,
    pub secret: Option<Secret>,
    pub password: Option<Secret>,
    pub timeout_ms: u64,
    pub retry_schedule_ms: Vec<u64>,
    pub max_in_flight: u32,
    /// Most pending events this endpoint may hold (`None`: `--max-backlog`). Stored at the
    /// end of [`EndpointRecord`] (third shape), not here: this struct is nested in it, where a
    /// new field cannot be told from an old record's next one.
    #[serde(skip)]
    pub max_backlog: Option<u64>,
    /// Signature scheme, secret in rotation, client certificate. Stored at the end of
    /// [`EndpointRecord`] (fourth shape), for the same reason as `max_backlog`.
    #[serde(skip)]
    pub security: EndpointSecurity,
}

/// An endpoint as stored: configuration plus the counters the writer owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub config: EndpointConfig,
    pub paused: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// The sequence number the next event gets (never reused).
    pub next_seq: u64,
    /// Events accepted and neither delivered nor dead-lettered.
    pub pending: u64,
    /// Key of the next attempt-log row for this endpoint.
    pub next_attempt_log: u64,
    /// The endpoint lost an event to endpoint failures and has not answered 2xx/4xx since:
    /// its backlog is held and probed (survives restarts).
    pub down: bool,
    // ---- second shape (trailing; records of the first shape decode with these unset, see
    // [`EndpointRecord::decode`]) ----
    /// The last time (unix ms) a test, call or delivery got a 2xx since the URL was last set;
    /// refreshed at most once a minute ([`CONNECTED_REFRESH_MS`]).
    pub connected_at_ms: Option<u64>,
    /// Since when (unix ms) the endpoint is in its state (`active`, `paused`, `down`); `None`
    /// in records of the first shape until the state next changes.
    pub state_since_ms: Option<u64>,
    /// The last delivery failure, kept across restarts (with `down`, its reason).
    pub last_error: Option<ErrorInfo>,
    // ---- third shape (schema 3; trailing, see [`EndpointRecord::decode`]) ----
    /// The stored `config.max_backlog` (which is not serialized where it is nested).
    pub max_backlog: Option<u64>,
    /// Where the endpoint's log stands: its delivery cursor, what retention kept, its bytes.
    pub log: LogPos,
    // ---- fourth shape (schema 5; trailing, see [`EndpointRecord::decode`]) ----
    /// The stored `config.security` (not serialized where it is nested).
    pub security: EndpointSecurity,
}

/// Where an endpoint's log stands (see the retained log in `store/rules/log.rs`).
///
/// An endpoint's `events` rows are its log: every event accepted and not yet removed by
/// retention (nor moved to the dead letters). Which of them are pending is told by the cursor
/// and two small side tables, so a delivery does not delete a row: pending are the rows at or
/// above `cursor` that have no `done` row, and the rows with a `reopened` row (back-filled or
/// replayed below the cursor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPos {
    /// No row below this seq is pending unless it is reopened.
    pub cursor: u64,
    /// No `events` row of this endpoint is below this seq (retention removed them).
    pub retained_from: u64,
    /// Rows in `done`: delivered at or above the cursor, out of order.
    pub done: u64,
    /// Rows in `reopened`: pending although delivered (back-fill) or below the cursor.
    pub reopened: u64,
    /// Bytes of the pending records.
    pub pending_bytes: u64,
    /// Bytes of every record in the log (pending and retained).
    pub log_bytes: u64,
    /// When the newest event retention removed was accepted (unix ms; 0: none removed): a
    /// back-fill from before it cannot be whole.
    pub removed_through_ms: u64,
}

/// `connected_at` is rewritten by a 2xx only when it is unset or older than this, so a steady
/// stream of deliveries does not change the endpoint record for it.
pub const CONNECTED_REFRESH_MS: u64 = 60_000;

/// The first shape of [`EndpointRecord`] (journals of schema 1 before the connect/test
/// fields), still found in journals written by older builds.
#[derive(Deserialize)]
struct EndpointRecordV1 {
    id: String,
    config: EndpointConfig,
    paused: bool,
    created_ms: u64,
    updated_ms: u64,
    next_seq: u64,
    pending: u64,
    next_attempt_log: u64,
    down: bool,
}

/// The second shape of [`EndpointRecord`] (schema 2): the first, then the connect/test fields.
#[derive(Deserialize)]
struct EndpointRecordV2 {
    id: String,
    config: EndpointConfig,
    paused: bool,
    created_ms: u64,
    updated_ms: u64,
    next_seq: u64,
    pending: u64,
    next_attempt_log: u64,
    down: bool,
    connected_at_ms: Option<u64>,
    state_since_ms: Option<u64>,
    last_error: Option<ErrorInfo>,
}

/// The third shape of [`EndpointRecord`] (schemas 3 and 4): the second, then `max_backlog`
/// and the log position.
#[derive(Deserialize)]
struct EndpointRecordV3 {
    id: String,
    config: EndpointConfig,
    paused: bool,
    created_ms: u64,
    updated_ms: u64,
    next_seq: u64,
    pending: u64,
    next_attempt_log: u64,
    down: bool,
    connected_at_ms: Option<u64>,
    state_since_ms: Option<u64>,
    last_error: Option<ErrorInfo>,
    max_backlog: Option<u64>,
    log: LogPos,
}

impl EndpointRecord {
    /// Decodes any of its shapes (postcard has no optional trailing fields: an older record
    /// ends where the newer fields begin, so the newer decode fails and the older shape is
    /// read). A record of the older shapes has its log at cursor 0 with no bytes counted:
    /// every row it has in `events` is pending, as those journals kept only pending rows.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if let Ok(mut rec) = postcard::from_bytes::<EndpointRecord>(bytes) {
            rec.config.max_backlog = rec.max_backlog;
            rec.config.security = rec.security.clone();
            return Some(rec);
        }
        if let Ok(v3) = postcard::from_bytes::<EndpointRecordV3>(bytes) {
            let mut config = v3.config;
            config.max_backlog = v3.max_backlog;
            return Some(Self {
                id: v3.id,
                config,
                paused: v3.paused,
                created_ms: v3.created_ms,
                updated_ms: v3.updated_ms,
                next_seq: v3.next_seq,
                pending: v3.pending,
                next_attempt_log: v3.next_attempt_log,
                down: v3.down,
                connected_at_ms: v3.connected_at_ms,
                state_since_ms: v3.state_since_ms,
                last_error: v3.last_error,
                max_backlog: v3.max_backlog,
                log: v3.log,
                security: EndpointSecurity::default(),
            });
        }
        if let Ok(v2) = postcard::from_bytes::<EndpointRecordV2>(bytes) {
            return Some(Self {
                id: v2.id,
                config: v2.config,
                paused: v2.paused,
                created_ms: v2.created_ms,
                updated_ms: v2.updated_ms,
                next_seq: v2.next_seq,
                pending: v2.pending,
                next_attempt_log: v2.next_attempt_log,
                down: v2.down,
                connected_at_ms: v2.connected_at_ms,
                state_since_ms: v2.state_since_ms,
                last_error: v2.last_error,
                max_backlog: None,
                log: LogPos::default(),
                security: EndpointSecurity::default(),
            });
        }
        let v1: EndpointRecordV1 = postcard::from_bytes(bytes).ok()?;
        Some(Self {
            id: v1.id,
            config: v1.config,
            paused: v1.paused,
            created_ms: v1.created_ms,
            updated_ms: v1.updated_ms,
            next_seq: v1.next_seq,
            pending: v1.pending,
            next_attempt_log: v1.next_attempt_log,
            down: v1.down,
            connected_at_ms: None,
            state_since_ms: None,
            last_error: None,
            max_backlog: None,
            log: LogPos::default(),
            security: EndpointSecurity::default(),
        })
    }

    /// Notes a 2xx at `now`: sets `connected_at` when it is unset or stale; `true` when it
    /// changed.
    pub fn note_connected(&mut self, now: u64) -> bool {
        if self
            .connected_at_ms
            .is_some_and(|at| now.saturating_sub(at) < CONNECTED_REFRESH_MS)
        {
            return false;
        }
        self.connected_at_ms = Some(now);
        true
    }
}

/// A failure, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable code: `ETIMEDOUT`, `ECONNREFUSED`, `TLS_ERROR`, `HTTP_5XX`, …
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub at_ms: u64,
}

/// What an attempt was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptKind {
    /// An attempt to deliver a queued event.
    #[default]
    Delivery,
    /// An attempt of a `down` endpoint's oldest event, to see whether it is back.
    Probe,
    /// A connection test (`webhook.ping`, `POST /v1/endpoints/{id}/test`).
    Test,
    /// A synchronous call (`POST /v1/endpoints/{id}/call`).
    Call,
}

impl AttemptKind {
    /// A queued event's attempt: a probe when the endpoint is `down`, else a delivery.
    pub fn queued(probe: bool) -> Self {
        if probe {
            AttemptKind::Probe
        } else {
            AttemptKind::Delivery
        }
    }

    /// The name the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Delivery => "delivery",
            AttemptKind::Probe => "probe",
            AttemptKind::Test => "test",
            AttemptKind::Call => "call",
        }
    }
}

/// Most bytes of a receiver's answer body kept with an attempt (cut at a character boundary).
pub const ANSWER_SNIPPET_MAX: usize = 256;

/// The first [`ANSWER_SNIPPET_MAX`] bytes of an answer body as text (invalid UTF-8 replaced,
/// never cut inside a character); `None` for an empty body.
pub fn answer_snippet(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    // Looking at a little more than the cap is enough: a character is at most 4 bytes.
    let head = &body[..body.len().min(ANSWER_SNIPPET_MAX + 4)];
    let mut s = String::from_utf8_lossy(head).into_owned();
    if s.len() > ANSWER_SNIPPET_MAX {
        let mut end = ANSWER_SNIPPET_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    Some(s)
}

/// One attempt (of a delivery, a probe, a test or a call).
///
/// Its stored shape is the first one everywhere it is nested (an event's history in
/// `progress` and `dead_letters`): `kind`, `answer`, `repeats` and `last_ms` are not part of it
/// (`serde(skip)`). The endpoint's attempt log stores them after it
/// ([`AttemptRecord::encode_logged`]), which a first-shape row simply lacks and a second-shape
/// row has without the repeats ([`AttemptRecord::decode_logged`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub event_id: String,
    pub seq: u64,
    pub attempt: u32,
    pub started_ms: u64,
    pub status: Option<u16>,
    pub latency_ms: u32,
    /// Error code when the attempt failed.
    pub error: Option<String>,
    pub message: Option<String>,
    /// What the attempt was (the attempt log keeps it; an event's history is deliveries).
    #[serde(skip)]
    pub kind: AttemptKind,
    /// The start of the receiver's answer body ([`answer_snippet`]; the attempt log keeps it).
    #[serde(skip)]
    pub answer: Option<String>,
    /// How many identical probe failures followed this one (the attempt log counts them in
    /// this row instead of adding one each; 0 everywhere else).
    #[serde(skip)]
    pub repeats: u32,
    /// When the last of those repeats started (unix ms; 0 when `repeats` is 0).
    #[serde(skip)]
    pub last_ms: u64,
}

/// What an attempt-log row holds after the first-shape [`AttemptRecord`] (third shape).
#[derive(Serialize, Deserialize)]
struct LoggedTail {
    kind: AttemptKind,
    answer: Option<String>,
    repeats: u32,
    last_ms: u64,
}

/// The tail of the second shape: a row written before repeats were counted, which a
/// [`LoggedTail`] read fails on (it ends where `repeats` would begin).
#[derive(Deserialize)]
struct LoggedTailV2 {
    kind: AttemptKind,
    answer: Option<String>,
}

impl AttemptRecord {
    /// An attempt-log row: the first shape, then `kind`, `answer`, `repeats` and `last_ms`.
    pub fn encode_logged(&self) -> Vec<u8> {
        let tail = LoggedTail {
            kind: self.kind,
            answer: self.answer.clone(),
            repeats: self.repeats,
            last_ms: self.last_ms,
        };
        // postcard encoding of plain structs into a Vec cannot fail.
        let mut out = postcard::to_stdvec(self).unwrap_or_default();
        out.extend(postcard::to_stdvec(&tail).unwrap_or_default());
        out
    }

    /// Decodes an attempt-log row of any shape (a first-shape row is a delivery with no
    /// answer kept; a row of the first two shapes has no repeats).
    pub fn decode_logged(bytes: &[u8]) -> Option<Self> {
        let (mut rec, rest) = postcard::take_from_bytes::<AttemptRecord>(bytes).ok()?;
        if rest.is_empty() {
            return Some(rec);
        }
        match postcard::from_bytes::<LoggedTail>(rest) {
            Ok(tail) => {
                rec.kind = tail.kind;
                rec.answer = tail.answer;
                rec.repeats = tail.repeats;
                rec.last_ms = tail.last_ms;
            }
            Err(_) => {
                let tail: LoggedTailV2 = postcard::from_bytes(rest).ok()?;
                rec.kind = tail.kind;
                rec.answer = tail.answer;
            }
        }
        Some(rec)
    }
}

/// Delivery progress of one event that has been attempted at least once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProgress {
    /// Attempts made so far (the next one sends `X-HAPP-Attempt: attempts + 1`).
    pub attempts: u32,
    /// Failed attempts that used up an entry of the retry schedule.
    pub failures: u32,
    pub last_error: Option<ErrorInfo>,
    /// Newest attempts, oldest first, at most [`HISTORY_MAX`].
    pub history: Vec<AttemptRecord>,
}

impl EventProgress {
    /// Appends an attempt, keeping the newest [`HISTORY_MAX`].
    pub fn push(&mut self, a: AttemptRecord) {
        if self.history.len() >= HISTORY_MAX {
            self.history.remove(0);
        }
        self.history.push(a);
    }
}

/// A dead letter's metadata (its record is kept beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub event_id: String,
    pub endpoint: String,
    pub seq: u64,
    /// `MAX_RETRIES_EXCEEDED`, `ENDPOINT_DELETED`, …
    pub reason: String,
    pub progress: EventProgress,
    pub dead_at_ms: u64,
}

/// What the idempotency table remembers for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentHit {
    pub event_id: String,
    pub seq: u64,
    pub created_ms: u64,
    /// SHA-256 of the request (see [`request_fingerprint`]); `None` in rows written before it
    /// was kept, which match any request.
    pub fingerprint: Option<[u8; 32]>,
}

/// The first shape of [`IdempotentHit`], still found in journals written by older builds.
#[derive(Deserialize)]
struct IdempotentHitV1 {
    event_id: String,
    seq: u64,
    created_ms: u64,
}

impl IdempotentHit {
    /// Decodes either shape (postcard has no optional trailing fields).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if let Ok(hit) = postcard::from_bytes::<IdempotentHit>(bytes) {
            return Some(hit);
        }
        let v1: IdempotentHitV1 = postcard::from_bytes(bytes).ok()?;
        Some(Self {
            event_id: v1.event_id,
            seq: v1.seq,
            created_ms: v1.created_ms,
            fingerprint: None,
        })
    }

    /// Whether a request with this fingerprint repeats the one remembered.
    pub fn matches(&self, fingerprint: &[u8; 32]) -> bool {
        self.fingerprint.is_none_or(|f| f == *fingerprint)
    }
}

/// What makes two requests with one `Idempotency-Key` the same: the body byte for byte, the
/// `Content-Type` and the event type.
pub fn request_fingerprint(content_type: &str, event_type: Option<&str>, body: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [content_type.as_bytes(), event_type.unwrap_or("").as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update([u8::from(event_type.is_some())]);
    h.update(body);
    h.finalize().into()
}

/// Default inbound rate per channel (Custom Messenger: 100 messages a second).
pub const DEFAULT_CHANNEL_RATE: u32 = 100;

/// An ingress channel: where incoming webhooks of one outside platform go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// The endpoint accepted messages are enqueued to.
    pub endpoint: String,
    /// When set, requests must carry a valid `X-HAPP-Signature`.
    pub secret: Option<Secret>,
    /// Requests a second (token bucket rate).
    pub rate_limit: u32,
    /// Bucket size (requests accepted in a burst).
    pub burst: u32,
    /// Secret in rotation and timestamp tolerance. Stored at the end of [`ChannelRecord`]
    /// (second shape): a new field cannot follow a nested struct.
    #[serde(skip)]
    pub security: ChannelSecurity,
}

/// A channel as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: String,
    pub config: ChannelConfig,
    pub created_ms: u64,
    pub updated_ms: u64,
    // ---- second shape (schema 5; trailing, see [`ChannelRecord::decode`]) ----
    /// The stored `config.security`.
    pub security: ChannelSecurity,
}

/// The first shape of [`ChannelRecord`] (schemas 1 to 4).
#[derive(Deserialize)]
struct ChannelRecordV1 {
    id: String,
    config: ChannelConfig,
    created_ms: u64,
    updated_ms: u64,
}

impl ChannelRecord {
    /// Decodes either shape; a first-shape row has the default security settings.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if let Ok(mut rec) = postcard::from_bytes::<ChannelRecord>(bytes) {
            rec.config.security = rec.security.clone();
            return Some(rec);
        }
        let v1: ChannelRecordV1 = postcard::from_bytes(bytes).ok()?;
        Some(Self {
            id: v1.id,
            config: v1.config,
            created_ms: v1.created_ms,
            updated_ms: v1.updated_ms,
            security: ChannelSecurity::default(),
        })
    }
}

#[cfg(test)]
mod tests;
