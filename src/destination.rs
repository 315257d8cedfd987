//! Where events go: the [`Destination`] trait ("deliver this event, attempt n → an outcome";
//! "test → an outcome") and the [`Factory`] that builds an endpoint's destination from its
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

/// The event type of the connection test.
pub const PING_EVENT_TYPE: &str = "webhook.ping";

/// One attempt to deliver: the event (shared, never copied) and the attempt number.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub meta: Arc<EventMeta>,
    pub body: Bytes,
    /// 1 for the first attempt.
    pub attempt: u32,
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
