//! The JSON shapes of the admin API contract (v1), as types: the server serializes them
//! ([`crate::api`]), the typed client deserializes them ([`crate::client`]), and the CLI, the
//! tests and the benchmarks read them. A field added here is added to the contract.
//!
//! Optional fields that the contract shows as `null` are `Option`s serialized as `null` (never
//! skipped), so a view's JSON is the same whatever its values.
//!
//! The views an operator reads whole (`endpoint show`, `dlq show`) keep the fields this build
//! does not know in `extra` (always empty on the server), so a CLI older than its daemon still
//! shows every field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A failure as shown to operators (`last_error`, an attempt's error in a dead letter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    /// RFC 3339, UTC.
    pub at: String,
    /// What to do about it: the catalogue's `fix` for the code ([`crate::codes`]).
    #[serde(default)]
    pub hint: Option<String>,
}

/// `GET /v1/endpoints/{id}` (and each item of the list, and the answer of PUT, pause, resume).
/// Never holds a secret or password: only whether one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub secret_set: bool,
    pub password_set: bool,
    /// A duration such as `5s`.
    pub timeout: String,
    pub retry_schedule: Vec<String>,
    pub max_in_flight: u32,
    /// `active`, `paused` or `down`.
    pub state: String,
    pub backlog: u64,
    pub in_flight: u32,
    pub last_error: Option<ErrorView>,
    pub created_at: String,
    pub updated_at: String,
    /// The last time a test, call or delivery got a 2xx since the URL was last changed.
    #[serde(default)]
    pub connected_at: Option<String>,
    /// Since when the endpoint is in its `state` (null when unknown: set before it was kept).
    #[serde(default)]
    pub state_since: Option<String>,
    /// When the next attempt is due by itself: a `down` endpoint's probe, or the earliest
    /// retry waiting (null when nothing waits for a time).
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// When the oldest waiting event was accepted, and how long ago (null when nothing waits,
    /// or when a running daemon did not answer: offline inspection).
    #[serde(default)]
    pub oldest_event_at: Option<String>,
    #[serde(default)]
    pub oldest_event_age_secs: Option<u64>,
    /// Most events the endpoint may hold before intake answers 429 `BACKLOG_FULL`: its own
    /// `max_backlog`, else the daemon's `--max-backlog` (null from a daemon before limits).
    #[serde(default)]
    pub max_backlog: Option<u64>,
    /// Whether `max_backlog` is the endpoint's own setting (not the daemon's default).
    #[serde(default)]
    pub max_backlog_own: bool,
    /// Fields of a newer daemon that this build does not know (empty when serialized here).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `POST /v1/endpoints/{id}/test`: the connection test's result (seeds 001/003: Connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// A 2xx within the endpoint's timeout.
    pub connected: bool,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<AttemptError>,
}

/// Why a test or a call failed: the stable code, a sentence and the catalogue's fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

/// `POST /v1/endpoints/{id}/call`: the receiver's answer (seed 004's tool webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The answer: its JSON value when the content type is JSON and it parses, else a string
    /// (standard base64 when it is not UTF-8, see `body_encoding`); null for an empty answer.
    pub body: serde_json::Value,
    /// `json`, `text` or `base64`: how `body` holds the answer.
    pub body_encoding: String,
    /// The answer was longer than 1 MiB: `body` holds its first 1 MiB (never JSON then).
    pub truncated: bool,
    /// Why the call failed (a non-2xx status, a timeout, …); null on a 2xx.
    pub error: Option<AttemptError>,
}

/// `POST /v1/endpoints/{id}/retry`: what "retry now" did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryResult {
    /// `probe` (a down endpoint is probed now), `retry` (waiting retries start now) or
    /// `none` (nothing was waiting).
    pub action: String,
    /// Events started now.
    pub events: u64,
    /// A sentence for operators.
    pub message: String,
}

/// `GET /v1/endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// The body of `PUT /v1/endpoints/{id}`. Omitted fields keep their value on update (defaults on
/// create, where `url` is required); `secret: Some(None)` / `password: Some(None)` send an
/// explicit `null`, which removes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// `Some(None)` sends `null`: back to the daemon's `--max-backlog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_backlog: Option<Option<u64>>,
}

/// The answer to an accepted event (`202`, or `200` with `duplicate` for a repeated
/// `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub seq: u64,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `POST /v1/events/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAccepted {
    pub events: Vec<Accepted>,
}

/// One delivery attempt (`GET /v1/endpoints/{id}/attempts`, a dead letter's `history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub event_id: String,
    pub seq: u64,
    pub attempt: u32,
    pub started_at: String,
    pub status: Option<u16>,
    pub latency_ms: u32,
    pub error: Option<String>,
    pub message: Option<String>,
    /// `delivery`, `probe`, `test` or `call` (an event's history: `delivery`).
    #[serde(default = "delivery")]
    pub kind: String,
    /// The start of the receiver's answer body (at most 256 bytes, UTF-8); the attempt log
    /// keeps it, an event's history does not.
    #[serde(default)]
    pub answer: Option<String>,
    /// How many identical failures of this probe followed it (same event, code and status),
    /// counted in this one entry of the attempt log; shown only when there were some.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
    /// When the last of those repeats started (RFC 3339); only with `repeats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn delivery() -> String {
    "delivery".into()
}

/// `GET /v1/endpoints/{id}/attempts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptList {
    pub attempts: Vec<AttemptView>,
}

/// One dead letter in `GET /v1/dead-letters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub id: String,
    pub endpoint: String,
    pub seq: u64,
    pub reason: String,
    pub attempts: u32,
    pub last_error: Option<ErrorView>,
    pub dead_at: String,
}

/// `GET /v1/dead-letters`: one page, oldest first; `next_cursor` is `null` at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetterView>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The filters of the bulk dead-letter routes (query of `GET`/`DELETE /v1/dead-letters`,
/// `…/count`, `…/export`; body of `POST /v1/dead-letters/replay`). Times are RFC 3339, on
/// `dead_at`: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Replay only: at most this many in this call (1-1000), answering `next_cursor`; without
    /// it every match is replayed before the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Replay only: go on after the `next_cursor` of the previous call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `POST /v1/dead-letters/replay` (202): how many went back into their queue, how many had to
/// stay (a corrupt record cannot be sent again), and where to go on (with a `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkReplayed {
    pub replayed: u64,
    pub skipped: u64,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `DELETE /v1/dead-letters?endpoint=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub purged: u64,
}

/// `GET /v1/dead-letters/count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterCount {
    pub count: u64,
}

/// `GET /v1/dead-letters/{id}`: the summary plus the event and its attempt history. For a
/// record that failed its check, the event fields are `null`, `payload_base64` holds the raw
/// stored bytes and `record_error` says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetterView,
    pub content_type: Option<String>,
    pub event_type: Option<String>,
    pub enqueued_at: Option<String>,
    /// The body when it is UTF-8.
    pub payload: Option<String>,
    /// The body (or the raw record) in standard base64 when `payload` cannot hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
    pub history: Vec<AttemptView>,
    /// Fields of a newer daemon that this build does not know (empty when serialized here).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `POST /v1/dead-letters/{id}/replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    pub id: String,
    pub endpoint: String,
    pub seq: u64,
}

/// The body of `POST /v1/endpoints/{id}/replay` (back-fill from the retained log): the window
/// of acceptance times, RFC 3339, `since` inclusive, `until` exclusive (absent, or in the
/// future: up to the time of the request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// Required (`SINCE_REQUIRED` without it); `Option` so that its absence has its own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// At most this many events (1-1000) in this call, answering `next_cursor`; without it
    /// the whole window is handled before the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Go on after the `next_cursor` of the previous call (with the same window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `POST /v1/endpoints/{id}/replay` (202): what the back-fill did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfilled {
    /// Events of the window sent again (they were delivered already), with `X-HAPP-Replay: 1`.
    pub replayed: u64,
    /// Events of the window still waiting for their first delivery: left in line, sent once.
    pub pending: u64,
    /// When the oldest event the endpoint still retains was accepted (null: it retains none).
    pub retained_since: Option<String>,
    /// Retention already removed events of this endpoint accepted in the window: only the
    /// part from `retained_since` on was sent.
    pub cut: bool,
    /// With a `limit`: where the next call goes on (null once the window is done).
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// With a `limit` and a `next_cursor`: no more events than this are left of the window
    /// (the endpoint's sequence numbers after the cursor), for a progress bar.
    #[serde(default)]
    pub left_at_most: Option<u64>,
}

/// An ingress channel (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: String,
    pub endpoint: String,
    pub secret_set: bool,
    pub rate_limit: u32,
    pub burst: u32,
    /// Where the outside platform posts: `/webhook/{id}` on the ingress listener.
    pub webhook_path: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /v1/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

/// The body of `PUT /v1/channels/{id}`; like [`EndpointUpdate`], omitted fields keep their value
/// and `secret: Some(None)` removes the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// Every non-2xx answer: `{"error": {code, message, hint}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub hint: Option<String>,
}

/// One entry of the error catalogue (`GET /v1/errors/{code}`, `courier explain CODE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCodeView {
    pub code: String,
    /// `api`, `ingress`, `attempt`, `dead_letter` or `client`.
    pub kind: String,
    /// The status of the answer that carries it, for API and ingress codes.
    pub http_status: Option<u16>,
    pub meaning: String,
    pub fix: String,
}

impl From<&crate::codes::CodeInfo> for ErrorCodeView {
    fn from(c: &crate::codes::CodeInfo) -> Self {
        Self {
            code: c.code.to_string(),
            kind: c.kind.as_str().to_string(),
            http_status: c.http_status,
            meaning: c.meaning.to_string(),
            fix: c.fix.to_string(),
        }
    }
}

/// `GET /v1/errors`: every stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCatalogue {
    pub errors: Vec<ErrorCodeView>,
}

/// `GET /v1/status` (`courier status`): the daemon on one screen. The runtime figures
/// (`uptime_secs`, the rates) are `null` when the answer was made without a running daemon
/// (`"running": false`, offline inspection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    /// Whether a running daemon answered (its scheduler's view), or the journal alone.
    pub running: bool,
    pub uptime_secs: Option<u64>,
    /// Events accepted per second over the last `rate_window_secs`.
    pub intake_per_sec: Option<f64>,
    /// Events delivered (2xx) per second over the last `rate_window_secs`.
    pub delivery_per_sec: Option<f64>,
    pub rate_window_secs: u64,
    /// Events accepted and neither delivered nor dead-lettered, all endpoints.
    pub backlog: u64,
    pub endpoints: EndpointCounts,
    pub dead_letters: u64,
    /// The oldest waiting event of all endpoints.
    pub oldest_waiting: Option<OldestWaiting>,
    /// Size of the journal file, in bytes.
    pub journal_bytes: Option<u64>,
    /// `ok`, or the code of why the journal cannot commit (`STORAGE_FULL`, `STORAGE_UNAVAILABLE`).
    pub storage: String,
    /// How long delivered events are kept for back-fill (`--retention`, a duration such as
    /// `72h`); null when no running daemon answered (its flags are not stored).
    #[serde(default)]
    pub retention: Option<String>,
    /// Bytes of event records the journal holds: pending, retained and dead letters.
    #[serde(default)]
    pub held_bytes: Option<u64>,
    /// `--max-journal-bytes`, when set (null: no limit, or no running daemon answered).
    #[serde(default)]
    pub max_journal_bytes: Option<u64>,
}

/// Endpoints by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCounts {
    pub total: u64,
    pub active: u64,
    pub paused: u64,
    pub down: u64,
}

/// Where the oldest waiting event is, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OldestWaiting {
    pub endpoint: String,
    /// RFC 3339, UTC.
    pub enqueued_at: String,
    pub age_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_send_only_what_is_set_and_null_to_remove() {
        let u = EndpointUpdate {
            timeout: Some("2s".into()),
            secret: Some(None),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"timeout": "2s", "secret": null})
        );
        let c = ChannelUpdate {
            rate_limit: Some(5),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"rate_limit": 5})
        );
    }

    #[test]
    fn a_dead_letter_detail_is_flat() {
        let d = DeadLetterDetail {
            summary: DeadLetterView {
                id: "evt".into(),
                endpoint: "acme".into(),
                seq: 1,
                reason: "MAX_RETRIES_EXCEEDED".into(),
                attempts: 4,
                last_error: None,
                dead_at: "2026-01-01T00:00:00Z".into(),
            },
            content_type: Some("application/json".into()),
            event_type: None,
            enqueued_at: None,
            payload: Some("{}".into()),
            payload_base64: None,
            record_error: None,
            history: vec![],
            extra: BTreeMap::new(),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["id"], "evt");
        assert_eq!(v["event_type"], serde_json::Value::Null);
        assert!(v.get("payload_base64").is_none());
        let back: DeadLetterDetail = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, d);
        // A field of a newer daemon lands in `extra`, not in the summary's fields.
        let mut newer = v;
        newer["zz_new_field"] = serde_json::json!(7);
        let back: DeadLetterDetail = serde_json::from_value(newer).unwrap();
        assert_eq!(back.extra.len(), 1, "{:?}", back.extra);
        assert_eq!(back.extra["zz_new_field"], 7);
        assert_eq!(back.summary, d.summary);
    }
}
