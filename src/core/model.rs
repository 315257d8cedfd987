//! Durable state shapes shared by the store, the scheduler and the API. All are encoded with
//! postcard in the store; field order is part of the on-disk format. Postcard is not
//! self-describing, so a missing trailing field does not decode as `None`: a new field goes at
//! the end as an `Option` together with a decoder that falls back to the old shape (see
//! [`IdempotentHit::decode`]); any other change bumps [`crate::store::SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};

use crate::core::secret::Secret;
use std::time::Duration;

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

/// One delivery attempt.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_rows_of_both_shapes_decode() {
        #[derive(Serialize)]
        struct V1<'a> {
            event_id: &'a str,
            seq: u64,
            created_ms: u64,
        }
        let old = postcard::to_stdvec(&V1 {
            event_id: "evt_x",
            seq: 7,
            created_ms: 9,
        })
        .unwrap();
        let hit = IdempotentHit::decode(&old).unwrap();
        assert_eq!((hit.seq, hit.created_ms, hit.fingerprint), (7, 9, None));
        assert!(hit.matches(&[1; 32]), "an old row matches any request");
        let new = IdempotentHit {
            fingerprint: Some([3; 32]),
            ..hit
        };
        let back = IdempotentHit::decode(&postcard::to_stdvec(&new).unwrap()).unwrap();
        assert_eq!(back, new);
        assert!(back.matches(&[3; 32]) && !back.matches(&[4; 32]));
        assert_eq!(IdempotentHit::decode(b"\xff"), None);
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let f = request_fingerprint;
        let base = f("application/json", Some("t"), b"{}");
        assert_eq!(base, f("application/json", Some("t"), b"{}"));
        assert_ne!(base, f("application/json", Some("t"), b"{ }"));
        assert_ne!(base, f("text/plain", Some("t"), b"{}"));
        assert_ne!(base, f("application/json", None, b"{}"));
        assert_ne!(base, f("application/json", Some("t{}"), b""));
        assert_ne!(
            f("application/json", Some(""), b""),
            f("application/json", None, b"")
        );
    }
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
}

/// A channel as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: String,
    pub config: ChannelConfig,
    pub created_ms: u64,
    pub updated_ms: u64,
}
