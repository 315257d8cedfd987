//! The HTTPS webhook destination (v1 contract): `POST <url>` with the stored body, its
//! `Content-Type`, `X-HAPP-Event-Id`, `X-HAPP-Attempt`, `X-HAPP-Event`, the
//! `X-HAPP-Signature: sha256=…` HMAC when a secret is set ([`crate::core::signing`]) and
//! `Authorization: Bearer …` when a password is set, `X-HAPP-Replay: 1` on the attempts of a
//! back-filled event; and what an answer means for the retry policy ([`outcome`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::Full;

use super::http::{Answer, Client};
use super::{
    CALL_ANSWER_MAX, CFuture, Call, CallOutcome, DFuture, Delivery, Destination, Failure, Next,
    Outcome, Ping,
};
use crate::core::endpoint::EndpointSpec;
use crate::core::record::EventMeta;
use crate::core::retry::FailureKind;

/// The header that marks an attempt of a back-filled event (`X-HAPP-Replay: 1`).
pub const REPLAY_HEADER: &str = "x-happ-replay";

/// An endpoint's webhook: its URL, credentials and timeout, over the shared client.
pub struct Webhook {
    http: Client,
    target: Arc<Target>,
}

/// What every attempt of the endpoint shares (prepared once per settings change).
struct Target {
    url: Uri,
    /// The HMAC key, when the endpoint has a secret.
    secret: Option<Vec<u8>>,
    /// `Bearer <password>`, marked sensitive, when the endpoint has a password.
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl Webhook {
    pub fn new(http: Client, spec: &EndpointSpec) -> Self {
        let target = Target {
            url: spec.url.uri().clone(),
            secret: spec.secret.as_ref().map(|s| s.expose().as_bytes().to_vec()),
            authorization: spec.password.as_ref().and_then(|p| {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", p.expose())).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
            timeout: spec.timeout,
        };
        Self {
            http,
            target: Arc::new(target),
        }
    }

    fn send(&self, meta: Arc<EventMeta>, body: Bytes, attempt: u32, replay: bool) -> DFuture {
        let http = self.http.clone();
        let target = self.target.clone();
        Box::pin(async move {
            // Signed here, beside the scheduler, not on its task.
            let answer = match target.request(&meta, body, attempt, replay) {
                Ok(req) => http.send(req, target.timeout).await,
                Err(msg) => Answer::unsent(FailureKind::Protocol, msg),
            };
            outcome(answer)
        })
    }
}

impl Target {
    /// The POST with Courier's headers (`replay`: the event was back-filled).
    fn request(
        &self,
        meta: &EventMeta,
        body: Bytes,
        attempt: u32,
        replay: bool,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut b = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, meta.content_type.as_str())
            .header(
                header::USER_AGENT,
                concat!("courier/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-happ-event-id", meta.id.as_str())
            .header("x-happ-attempt", attempt.to_string());
        if let Some(t) = &meta.event_type {
            b = b.header("x-happ-event", t.as_str());
        }
        if replay {
            b = b.header(REPLAY_HEADER, HeaderValue::from_static("1"));
        }
        if let Some(secret) = &self.secret {
            b = b.header(
                crate::core::signing::SIGNATURE_HEADER,
                crate::core::signing::sign(secret, &body),
            );
        }
        if let Some(auth) = &self.authorization {
            b = b.header(header::AUTHORIZATION, auth.clone());
        }
        b.body(Full::new(body))
            .map_err(|e| format!("cannot build request: {e}"))
    }
}

impl Destination for Webhook {
    fn deliver(&self, d: Delivery) -> DFuture {
        self.send(d.meta, d.body, d.attempt, d.replay)
    }

    fn test(&self, ping: Ping) -> DFuture {
        let (meta, body) = ping.event();
        self.send(Arc::new(meta), body, 1, false)
    }

    /// The body POSTed like an event (signed, with the endpoint's headers and its
    /// `Content-Type`), the answer read up to [`CALL_ANSWER_MAX`], all within the timeout.
    fn call(&self, call: Call) -> CFuture {
        let http = self.http.clone();
        let target = self.target.clone();
        Box::pin(async move {
            let meta = EventMeta {
                id: call.id,
                enqueued_at_ms: call.at_ms,
                content_type: call.content_type,
                event_type: call.event_type,
            };
            let answer = match target.request(&meta, call.body, 1, false) {
                Ok(req) => http.call(req, target.timeout, CALL_ANSWER_MAX).await,
                Err(msg) => Answer::unsent(FailureKind::Protocol, msg),
            };
            let content_type = answer.content_type.clone();
            let body = answer.body.clone();
            let truncated = answer.body_truncated;
            CallOutcome {
                outcome: outcome(answer),
                content_type,
                body,
                truncated,
            }
        })
    }
}

/// What an HTTP answer means for a webhook: a 2xx is delivered; any other status or failure
/// uses up the next retry, except a 429 with a `Retry-After`, which is waited out without
/// using one. Timeouts, connection and TLS errors, 5xx and 429 blame the endpoint.
pub fn outcome(a: Answer) -> Outcome {
    let failure = a.failure.map(|(kind, message)| {
        let next = match a.retry_after {
            Some(wait) if a.status == Some(429) => Next::After(wait),
            _ => Next::Schedule,
        };
        Failure {
            code: kind.code(),
            message,
            blames_endpoint: kind.blames_endpoint(),
            next,
        }
    });
    Outcome {
        status: a.status,
        failure,
        latency: a.latency,
        answer: crate::core::model::answer_snippet(&a.body),
    }
}

#[cfg(test)]
mod tests;
