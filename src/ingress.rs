//! The inbound webhook ingress: outside platforms POST messages to `/webhook/{channel}`
//! (Custom Messenger's incoming webhook). Each request is rate limited per channel with a token
//! bucket, optionally HMAC-verified, validated, and enqueued — body byte for byte — to the
//! channel's endpoint through the one [`intake`](crate::intake) like any producer's event.
//! Served only on its own listener (`--ingress-listen`), never next to the admin API, with its
//! own small [`IngressState`]: it imports nothing of the admin API.

pub mod channels;
pub mod payload;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;

use crate::body::{self, Body, header_str, read_body};
use crate::error::ApiError;
use crate::intake::{Intake, IntakeError, NewEvent, status_of};
use crate::store::StoreError;

pub use channels::Channels;
pub use payload::validate_payload;

/// The event type given to accepted inbound messages.
pub const INBOUND_EVENT_TYPE: &str = "message.received";

/// What the ingress listener needs, and nothing more.
pub struct IngressState {
    /// Where accepted messages go (and the stopping flag).
    pub intake: Arc<Intake>,
    /// The channels and their buckets (shared with the admin API, which updates them).
    pub channels: Arc<Channels>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
}

type Resp = Response<Full<Bytes>>;

fn json_resp(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Entry point of the ingress listener. A body the route did not read is drained before the
/// answer (see `body::finish`).
pub async fn handle(state: Arc<IngressState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let mut req = req.map(Body::new);
    let resp = match route(&state, &mut req).await {
        Ok(r) => r,
        Err((e, retry_after)) => {
            count(e.code);
            let mut r = json_resp(e.status, e.body());
            if let Some(secs) = retry_after
                && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    };
    body::finish(req).await;
    Ok(resp)
}

/// A refusal, with the `Retry-After` seconds of a rate-limited request.
type Refusal = (ApiError, Option<u64>);

fn refuse(e: ApiError) -> Refusal {
    (e, None)
}

async fn route(state: &IngressState, req: &mut Request<Body>) -> Result<Resp, Refusal> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segs.as_slice()) {
        (&Method::GET, ["livez"]) => Ok(json_resp(
            StatusCode::OK,
            json!({"status": "ok"}).to_string(),
        )),
        (&Method::POST, ["webhook", channel]) => {
            let channel = channel.to_string();
            inbound(state, &channel, req).await
        }
        (_, ["webhook", _]) => Err(refuse(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "incoming webhooks are POST requests",
        ))),
        _ => Err(refuse(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ROUTE_NOT_FOUND",
                format!("no route {path}"),
            )
            .advise("incoming webhooks go to POST /webhook/{channel}"),
        )),
    }
}

async fn inbound(
    state: &IngressState,
    channel: &str,
    req: &mut Request<Body>,
) -> Result<Resp, Refusal> {
    state.intake.check_open().map_err(refuse)?;
    let Some(ch) = state.channels.get(channel) else {
        return Err(refuse(ApiError::channel_not_found(channel)));
    };
    if let Err(wait) = state.channels.admit(&ch, Instant::now()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err((
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!(
                    "channel {channel:?} accepts up to {} requests a second",
                    ch.config.rate_limit
                ),
            )
            .advise(
                "queue on your side and send at an even pace; retry after the Retry-After seconds",
            ),
            Some(secs),
        ));
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(refuse(invalid("Content-Type must be application/json")));
    }
    let signature = req
        .headers()
        .get(crate::core::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The same rule as the API's: a key that is not printable ASCII or too long is refused,
    // never silently dropped (that would turn a retry into a duplicate).
    let idempotency_key = header_str(req.headers(), "idempotency-key").map_err(refuse)?;
    let body = read_body(req, state.max_body_bytes).await.map_err(refuse)?;
    if let Some(secret) = &ch.config.secret {
        let ok = signature.as_deref().is_some_and(|sig| {
            crate::core::signing::verify(secret.expose().as_bytes(), &body, sig)
        });
        if !ok {
            return Err(refuse(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "HMAC_MISMATCH",
                    "the X-HAPP-Signature header does not match the request body",
                )
                .advise("compute HMAC-SHA256 of the raw request body (not the URL) with the channel's secret and send it as X-HAPP-Signature: sha256=<hex>"),
            ));
        }
    }
    if let Err(why) = validate_payload(&body) {
        return Err(refuse(invalid(&why)));
    }
    let ev = NewEvent {
        endpoint: ch.config.endpoint.clone(),
        content_type: "application/json".into(),
        event_type: Some(INBOUND_EVENT_TYPE.into()),
        idempotency_key,
        body,
    };
    match state.intake.enqueue(ev).await {
        // One rule for every intake route: a repeated Idempotency-Key with the same request is
        // 200 with the original id and "duplicate": true; with another request, 409.
        Ok(ok) if ok.duplicate => {
            count(crate::telemetry::DUPLICATE);
            Ok(json_resp(
                status_of(&ok),
                json!({"status": "duplicate", "id": ok.id, "duplicate": true}).to_string(),
            ))
        }
        Ok(ok) => {
            count(crate::telemetry::OK);
            Ok(json_resp(
                status_of(&ok),
                json!({"status": "accepted", "id": ok.id}).to_string(),
            ))
        }
        Err(IntakeError::Record(e)) => Err(refuse(invalid(&e.to_string()))),
        Err(IntakeError::Store(StoreError::EndpointNotFound(ep))) => Err(refuse(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CHANNEL_TARGET_MISSING",
                format!("channel {channel:?} points at endpoint {ep:?}, which no longer exists"),
            )
            .advise("the operator must re-create the endpoint or re-point the channel"),
        )),
        Err(IntakeError::Store(e)) => Err(refuse(e.into())),
    }
}

/// Counts a request by the code of its answer (`OK`, `DUPLICATE` or the refusal's code).
fn count(code: &'static str) {
    metrics::counter!(crate::telemetry::INGRESS_REQUESTS, crate::telemetry::CODE => code)
        .increment(1);
}

fn invalid(why: &str) -> ApiError {
    ApiError::unprocessable("INVALID_PAYLOAD", why.to_string()).advise(
        "send a JSON object with the required string fields sender_id and text (optional: sender_name, metadata object, attachments [{type, url}]) and Content-Type: application/json",
    )
}
