//! Where events go: the [`Destination`] trait ("deliver this event, attempt n → an outcome";
//! "test → an outcome"; "call with this body → the receiver's answer") and the [`Factory`] that builds an endpoint's destination from its
//! stored settings. The scheduler knows nothing else of a destination: no URL, header,
//! signature or credential.
//!
//! An [`Outcome`] is data, not an error. A failure names its stable code and says what the
//! destination asks for next ([`Next`]): the retry schedule, a wait that uses no retry (a
//! 429's `Retry-After`), a pause of the endpoint (a revoked CRM token), or a dead letter now;
//! and whether it blames the endpoint (which can put it `down`). The policy that acts on it is
//! [`crate::core::partition`].
//!
//! Implementations: [`webhook`] (HTTPS POST with Courier's headers, HMAC signature and bearer
//! password) over the shared pooled client of [`http`] (timeout over the whole exchange:
//! [`deadline`]). A new kind (a CRM, another signature scheme) is a module here plus a branch
//! in [`Destinations::build`].

pub mod deadline;
pub mod http;
pub mod webhook;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::core::endpoint::{DestinationKind, EndpointSpec};
use crate::core::record::EventMeta;

pub use crate::core::partition::{Next, Verdict};

/// The future an attempt returns; it owns what it needs (it runs beside the scheduler).
pub type DFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The future a call returns.
pub type CFuture = Pin<Box<dyn Future<Output = CallOutcome> + Send>>;

/// The event type of the connection test.
pub const PING_EVENT_TYPE: &str = "webhook.ping";

/// Most bytes of a receiver's answer a call returns; a longer answer is cut there and
/// [`CallOutcome::truncated`] says so.
pub const CALL_ANSWER_MAX: usize = 1 << 20;

/// The stable code of a call to a destination kind that cannot answer one.
pub const CALL_NOT_SUPPORTED: &str = "CALL_NOT_SUPPORTED";

/// A synchronous call (seed 004's tool webhooks): a body sent now, outside the queue, whose
/// answer goes back to the caller.
#[derive(Debug, Clone)]
pub struct Call {
    /// An event id of its own (`X-HAPP-Event-Id`), so the receiver can tell calls apart.
    pub id: String,
    pub at_ms: u64,
    pub content_type: String,
    pub event_type: Option<String>,
    pub body: Bytes,
}

/// What a call came to: the attempt's outcome plus the receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    pub outcome: Outcome,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The answer body, at most [`CALL_ANSWER_MAX`] bytes.
    pub body: Bytes,
    /// The answer was longer than [`CALL_ANSWER_MAX`] and was cut there.
    pub truncated: bool,
}

/// One attempt to deliver: the event (shared, never copied) and the attempt number.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub meta: Arc<EventMeta>,
    pub body: Bytes,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Sent again by a back-fill (`QueuedEvent::replay`): the attempt carries
    /// `X-HAPP-Replay: 1`.
    pub replay: bool,
}

/// A connection test: the `webhook.ping` event's id and time (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub id: String,
    pub at_ms: u64,
}

impl Ping {
    /// The ping as an event: `{"type":"webhook.ping","id":…,"created_at":…}` as JSON.
    pub fn event(&self) -> (EventMeta, Bytes) {
        let body = serde_json::json!({
            "type": PING_EVENT_TYPE,
            "id": self.id,
            "created_at": crate::core::timefmt::rfc3339(self.at_ms),
        });
        let meta = EventMeta {
            id: self.id.clone(),
            enqueued_at_ms: self.at_ms,
            content_type: "application/json".into(),
            event_type: Some(PING_EVENT_TYPE.into()),
        };
        (meta, Bytes::from(body.to_string()))
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's status, when one was received.
    pub status: Option<u16>,
    /// Why the attempt failed (`None`: delivered).
    pub failure: Option<Failure>,
    /// The real time the attempt took.
    pub latency: Duration,
    /// The start of the receiver's answer body, for the attempt log
    /// ([`crate::core::model::answer_snippet`]).
    pub answer: Option<String>,
}

/// A failed attempt, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable code (catalogued in [`crate::codes`]): `ECONNREFUSED`, `HTTP_5XX`, …
    pub code: &'static str,
    /// A sentence for operators (never a secret).
    pub message: String,
    /// The endpoint itself looks unhealthy, as opposed to rejecting this one event.
    pub blames_endpoint: bool,
    pub next: Next,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    /// What the partition's policy needs of it.
    pub fn verdict(&self) -> Verdict {
        match &self.failure {
            None => Verdict::Delivered,
            Some(f) => Verdict::Failed {
                blames_endpoint: f.blames_endpoint,
                next: f.next,
            },
        }
    }
}

/// Delivers an endpoint's events. Built per endpoint (and rebuilt when its settings change);
/// tests substitute scripted ones.
pub trait Destination: Send + Sync + 'static {
    /// Sends one attempt of an event.
    fn deliver(&self, delivery: Delivery) -> DFuture;
    /// Checks the connection: sends the signed `webhook.ping` (or what the kind checks).
    fn test(&self, ping: Ping) -> DFuture;
    /// Sends `call` now and answers the receiver's answer. Kinds that cannot answer a call
    /// keep this default: a failure [`CALL_NOT_SUPPORTED`].
    fn call(&self, call: Call) -> CFuture {
        let _ = call;
        Box::pin(std::future::ready(CallOutcome {
            outcome: Outcome {
                status: None,
                failure: Some(Failure {
                    code: CALL_NOT_SUPPORTED,
                    message: "this endpoint's destination kind does not answer calls".into(),
                    blames_endpoint: false,
                    next: Next::Schedule,
                }),
                latency: Duration::ZERO,
                answer: None,
            },
            content_type: None,
            body: Bytes::new(),
            truncated: false,
        }))
    }
}

/// Why an endpoint's destination could not be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The settings are not usable for this kind (a future kind's missing field, say).
    #[error("endpoint settings unusable for its destination: {0}")]
    Settings(String),
}

/// Builds an endpoint's destination from its typed settings (parsed once, by
/// [`EndpointSpec`]); a new destination kind is one more arm of the daemon's factory.
pub trait Factory: Send + Sync + 'static {
    fn build(&self, id: &str, spec: &EndpointSpec) -> Result<Arc<dyn Destination>, BuildError>;
}

/// The daemon's factory: every destination shares one pooled HTTP client.
pub struct Destinations {
    http: http::Client,
}

impl Destinations {
    /// Trusts the web roots plus `ca_file`; plain `http://` only with `allow_http`.
    pub fn new(ca_file: Option<&Path>, allow_http: bool) -> Result<Self, http::ClientInitError> {
        Ok(Self {
            http: http::Client::new(ca_file, allow_http)?,
        })
    }
}

impl Factory for Destinations {
    fn build(&self, _id: &str, spec: &EndpointSpec) -> Result<Arc<dyn Destination>, BuildError> {
        match spec.destination {
            DestinationKind::Webhook => {
                Ok(Arc::new(webhook::Webhook::new(self.http.clone(), spec)))
            }
        }
    }
}
