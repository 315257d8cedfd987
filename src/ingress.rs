//! The inbound webhook ingress: outside platforms POST messages to `/webhook/{channel}`
//! (Custom Messenger's incoming webhook). Each request is rate limited per channel with a token
//! bucket, optionally HMAC-verified, validated, and enqueued — body byte for byte — to the
//! channel's endpoint like any producer's event. Served only on its own listener
//! (`--ingress-listen`), never next to the admin API.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{AppState, read_body, valid_endpoint_id};
use crate::body::{self, Body};
use crate::core::ratelimit::TokenBucket;
use crate::core::record::EventMeta;
use crate::core::timefmt::{now_ms, rfc3339};
use crate::error::ApiError;
use crate::model::{ChannelConfig, ChannelRecord, DEFAULT_CHANNEL_RATE};
use crate::store::{EnqueueReq, StoreError};

/// The event type given to accepted inbound messages.
pub const INBOUND_EVENT_TYPE: &str = "message.received";
/// Largest accepted channel rate.
pub const RATE_MAX: u32 = 100_000;

/// Channels and their buckets, shared by the ingress and the admin API.
#[derive(Default)]
pub struct Channels {
    by_id: RwLock<HashMap<String, Arc<ChannelRecord>>>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl Channels {
    pub fn load(list: Vec<ChannelRecord>) -> Self {
        let c = Self::default();
        for r in list {
            c.set(r);
        }
        c
    }

    pub fn get(&self, id: &str) -> Option<Arc<ChannelRecord>> {
        self.by_id.read().ok()?.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<ChannelRecord>> {
        let mut v: Vec<_> = self
            .by_id
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Installs a (new) configuration; its bucket starts full.
    pub fn set(&self, rec: ChannelRecord) {
        if let Ok(mut b) = self.buckets.lock() {
            b.remove(&rec.id);
        }
        if let Ok(mut m) = self.by_id.write() {
            m.insert(rec.id.clone(), Arc::new(rec));
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut b) = self.buckets.lock() {
            b.remove(id);
        }
        if let Ok(mut m) = self.by_id.write() {
            m.remove(id);
        }
    }

    /// Takes a token of the channel's bucket, or says how long to wait.
    fn admit(&self, ch: &ChannelRecord, now: Instant) -> Result<(), std::time::Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        buckets
            .entry(ch.id.clone())
            .or_insert_with(|| TokenBucket::new(ch.config.rate_limit, ch.config.burst, now))
            .try_acquire(now)
    }
}

type Resp = Response<Full<Bytes>>;

fn json_resp(status: StatusCode, v: Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Entry point of the ingress listener. A body the route did not read is drained before the
/// answer (see `body::finish`).
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let mut req = req.map(Body::new);
    let resp = match route(&state, &mut req).await {
        Ok(r) => r,
        Err((e, retry_after)) => {
            let mut r = json_resp(
                e.status,
                serde_json::from_str(&e.body()).unwrap_or(Value::Null),
            );
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

type Refusal = (ApiError, Option<u64>);

fn refuse(e: ApiError) -> Refusal {
    (e, None)
}

async fn route(state: &Arc<AppState>, req: &mut Request<Body>) -> Result<Resp, Refusal> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segs.as_slice()) {
        (&Method::GET, ["livez"]) => Ok(json_resp(StatusCode::OK, json!({"status": "ok"}))),
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
            .hint("incoming webhooks go to POST /webhook/{channel}"),
        )),
    }
}

async fn inbound(
    state: &Arc<AppState>,
    channel: &str,
    req: &mut Request<Body>,
) -> Result<Resp, Refusal> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(refuse(ApiError::shutting_down()));
    }
    let Some(ch) = state.channels.get(channel) else {
        count("unknown_channel");
        return Err(refuse(ApiError::channel_not_found(channel)));
    };
    if let Err(wait) = state.channels.admit(&ch, Instant::now()) {
        count("rate_limited");
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
            .hint(
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
        count("invalid");
        return Err(refuse(invalid("Content-Type must be application/json")));
    }
    let signature = req
        .headers()
        .get(crate::core::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The same rule as the API's: a key that is not printable ASCII or too long is refused,
    // never silently dropped (that would turn a retry into a duplicate).
    let idempotency_key =
        crate::api::header_str(req.headers(), "idempotency-key").map_err(refuse)?;
    let body = read_body(req, state.max_body_bytes).await.map_err(refuse)?;
    if let Some(secret) = &ch.config.secret {
        let ok = signature.as_deref().is_some_and(|sig| {
            crate::core::signing::verify(secret.expose().as_bytes(), &body, sig)
        });
        if !ok {
            count("hmac_mismatch");
            return Err(refuse(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "HMAC_MISMATCH",
                    "the X-HAPP-Signature header does not match the request body",
                )
                .hint("compute HMAC-SHA256 of the raw request body (not the URL) with the channel's secret and send it as X-HAPP-Signature: sha256=<hex>"),
            ));
        }
    }
    if let Err(why) = validate_payload(&body) {
        count("invalid");
        return Err(refuse(invalid(&why)));
    }
    let now = now_ms();
    let meta = EventMeta {
        id: state.ids.next(now),
        enqueued_at_ms: now,
        content_type: "application/json".into(),
        event_type: Some(INBOUND_EVENT_TYPE.into()),
    };
    let req = EnqueueReq::new(ch.config.endpoint.clone(), meta, body, idempotency_key)
        .map_err(|e| refuse(invalid(&e.to_string())))?;
    match state.journal.enqueue(req).await {
        // One rule for every intake route: a repeated Idempotency-Key with the same request is
        // 200 with the original id and "duplicate": true; with another request, 409.
        Ok(ok) if ok.duplicate => {
            count("duplicate");
            Ok(json_resp(
                StatusCode::OK,
                json!({"status": "duplicate", "id": ok.id, "duplicate": true}),
            ))
        }
        Ok(ok) => {
            count("accepted");
            Ok(json_resp(
                StatusCode::ACCEPTED,
                json!({"status": "accepted", "id": ok.id}),
            ))
        }
        Err(StoreError::EndpointNotFound(ep)) => Err(refuse(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CHANNEL_TARGET_MISSING",
                format!("channel {channel:?} points at endpoint {ep:?}, which no longer exists"),
            )
            .hint("the operator must re-create the endpoint or re-point the channel"),
        )),
        Err(e) => Err(refuse(e.into())),
    }
}

fn count(result: &'static str) {
    metrics::counter!(crate::telemetry::INBOUND, crate::telemetry::RESULT => result).increment(1);
}

fn invalid(why: &str) -> ApiError {
    ApiError::unprocessable("INVALID_PAYLOAD", why.to_string()).hint(
        "send a JSON object with the required string fields sender_id and text (optional: sender_name, metadata object, attachments [{type, url}]) and Content-Type: application/json",
    )
}

/// Checks an incoming message: a JSON object with string `sender_id` (non-empty) and `text`,
/// optional string `sender_name`, object `metadata`, and `attachments` of `{type, url}` with
/// type `image`, `file` or `audio` and an http(s) URL.
pub fn validate_payload(body: &[u8]) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON ({e})"))?;
    let Some(obj) = v.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    match obj.get("sender_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => {}
        Some(Value::String(_)) => return Err("sender_id must be 1-256 characters".into()),
        Some(_) => return Err("sender_id must be a string".into()),
        None => return Err("sender_id is required".into()),
    }
    match obj.get("text") {
        Some(Value::String(_)) => {}
        Some(_) => return Err("text must be a string".into()),
        None => return Err("text is required".into()),
    }
    if let Some(n) = obj.get("sender_name")
        && !n.is_string()
    {
        return Err("sender_name must be a string".into());
    }
    if let Some(m) = obj.get("metadata")
        && !m.is_object()
    {
        return Err("metadata must be an object".into());
    }
    if let Some(a) = obj.get("attachments") {
        let Some(list) = a.as_array() else {
            return Err("attachments must be an array".into());
        };
        for (i, item) in list.iter().enumerate() {
            let ty = item.get("type").and_then(Value::as_str);
            if !matches!(ty, Some("image" | "file" | "audio")) {
                return Err(format!(
                    "attachments[{i}].type must be image, file or audio"
                ));
            }
            let url = item.get("url").and_then(Value::as_str).unwrap_or("");
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("attachments[{i}].url must be an http(s) URL"));
            }
        }
    }
    Ok(())
}

/// `PUT /v1/channels/{id}` body. On update every omitted field keeps its current value;
/// `"secret": null` removes the secret (nothing else does).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    endpoint: Option<String>,
    #[serde(default, deserialize_with = "crate::api::explicit")]
    secret: Option<Option<crate::core::secret::Secret>>,
    rate_limit: Option<u32>,
    burst: Option<u32>,
}

/// Validates a channel body, merging it over `current` (the stored configuration on update).
pub fn channel_config(
    body: &[u8],
    current: Option<&ChannelConfig>,
) -> Result<ChannelConfig, ApiError> {
    let hint = r#"send {"endpoint": "acme", "secret": "…", "rate_limit": 100}; on update only the fields to change"#;
    let b: ChannelBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "INVALID_JSON",
            format!("channel body: {}", crate::api::redact_serde(&e)),
        )
        .hint(hint)
    })?;
    let endpoint = match (b.endpoint, current) {
        (Some(e), _) => e,
        (None, Some(c)) => c.endpoint.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "INVALID_JSON",
                "channel body: \"endpoint\" is required to create a channel",
            )
            .hint(hint));
        }
    };
    if !valid_endpoint_id(&endpoint) {
        return Err(ApiError::endpoint_not_found(&endpoint));
    }
    let secret = match b.secret {
        None => current.and_then(|c| c.secret.clone()),
        Some(v) => v,
    };
    if let Some(s) = &secret
        && (s.is_empty() || s.len() > crate::api::SECRET_MAX)
    {
        return Err(ApiError::unprocessable(
            "INVALID_SECRET",
            format!("secret must be 1-{} bytes", crate::api::SECRET_MAX),
        ));
    }
    let rate = b
        .rate_limit
        .or(current.map(|c| c.rate_limit))
        .unwrap_or(DEFAULT_CHANNEL_RATE);
    let burst = b.burst.or(current.map(|c| c.burst)).unwrap_or(rate);
    if !(1..=RATE_MAX).contains(&rate) || !(1..=RATE_MAX).contains(&burst) {
        return Err(ApiError::unprocessable(
            "INVALID_RATE_LIMIT",
            format!("rate_limit and burst must be 1-{RATE_MAX}"),
        ));
    }
    Ok(ChannelConfig {
        endpoint,
        secret,
        rate_limit: rate,
        burst,
    })
}

/// The channel view (never the secret).
pub fn channel_view(r: &ChannelRecord) -> Value {
    json!({
        "id": r.id,
        "endpoint": r.config.endpoint,
        "secret_set": r.config.secret.is_some(),
        "rate_limit": r.config.rate_limit,
        "burst": r.config.burst,
        "webhook_path": format!("/webhook/{}", r.id),
        "created_at": rfc3339(r.created_ms),
        "updated_at": rfc3339(r.updated_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert!(validate_payload(br#"{"sender_id":"user_42","text":"Hello!"}"#).is_ok());
        assert!(validate_payload(
            br#"{"sender_id":"u","text":"","sender_name":"Dmytro","metadata":{"source":"website"},
                "attachments":[{"type":"image","url":"https://x/y.png"}]}"#
        )
        .is_ok());
        let e = |b: &[u8]| validate_payload(b).unwrap_err();
        assert!(e(b"{\"text\":\"Hello\"}").contains("sender_id is required"));
        assert!(e(b"{\"sender_id\":\"u\"}").contains("text is required"));
        assert!(e(b"{\"sender_id\":42,\"text\":\"x\"}").contains("sender_id must be a string"));
        assert!(e(b"{\"sender_id\":\"\",\"text\":\"x\"}").contains("1-256"));
        assert!(e(b"[1]").contains("object"));
        assert!(e(b"not json").contains("not valid JSON"));
        assert!(e(br#"{"sender_id":"u","text":"x","metadata":[]}"#).contains("metadata"));
        assert!(e(br#"{"sender_id":"u","text":"x","attachments":[{"type":"video","url":"https://x"}]}"#)
            .contains("attachments[0].type"));
        assert!(
            e(br#"{"sender_id":"u","text":"x","attachments":[{"type":"file","url":"ftp://x"}]}"#)
                .contains("attachments[0].url")
        );
    }

    #[test]
    fn channel_bodies() {
        let c = channel_config(br#"{"endpoint":"happ","secret":"k"}"#, None).unwrap();
        assert_eq!((c.rate_limit, c.burst), (100, 100));
        assert_eq!(
            channel_config(br#"{"endpoint":"happ","rate_limit":0}"#, None)
                .unwrap_err()
                .code,
            "INVALID_RATE_LIMIT"
        );
        assert_eq!(
            channel_config(br#"{"endpoint":"a/b"}"#, None)
                .unwrap_err()
                .code,
            "ENDPOINT_NOT_FOUND"
        );
        assert_eq!(
            channel_config(b"{}", None).unwrap_err().code,
            "INVALID_JSON"
        );
        assert_eq!(
            channel_config(br#"{"endpoint":".."}"#, None)
                .unwrap_err()
                .code,
            "ENDPOINT_NOT_FOUND"
        );
    }

    /// Regression: an update that named only the rate removed the secret (turning off the
    /// channel's authentication) and reset the burst. Every field must keep its value unless
    /// the update names it; only an explicit `"secret": null` removes the secret.
    #[test]
    fn channel_updates_merge_every_field() {
        let cur = ChannelConfig {
            endpoint: "happ".into(),
            secret: Some("k".into()),
            rate_limit: 10,
            burst: 30,
        };
        let upd = |b: &str| channel_config(b.as_bytes(), Some(&cur)).unwrap();
        assert_eq!(upd("{}"), cur, "an empty update changes nothing");
        assert_eq!(
            upd(r#"{"endpoint":"other"}"#),
            ChannelConfig {
                endpoint: "other".into(),
                ..cur.clone()
            }
        );
        assert_eq!(
            upd(r#"{"secret":"k2"}"#),
            ChannelConfig {
                secret: Some("k2".into()),
                ..cur.clone()
            }
        );
        assert_eq!(
            upd(r#"{"secret":null}"#),
            ChannelConfig {
                secret: None,
                ..cur.clone()
            }
        );
        assert_eq!(
            upd(r#"{"endpoint":"happ","rate_limit":50}"#),
            ChannelConfig {
                rate_limit: 50,
                ..cur.clone()
            }
        );
        assert_eq!(
            upd(r#"{"burst":5}"#),
            ChannelConfig {
                burst: 5,
                ..cur.clone()
            }
        );
    }
}
