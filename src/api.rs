//! The producer/admin HTTP API (served on the Unix socket and on TCP): routing, validation,
//! and turning store and scheduler answers into the JSON of the contract.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{self, Body, drain};
use crate::core::duration;
use crate::core::ids::{IdGen, looks_like_event_id};
use crate::core::record::EventMeta;
use crate::core::secret::Secret;
use crate::core::timefmt::{now_ms, rfc3339};
use crate::error::ApiError;
use crate::model::{
    AttemptRecord, DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT, DeadLetter, EndpointConfig,
    EndpointRecord, ErrorInfo,
};
use crate::scheduler::{RuntimeView, SchedulerHandle};
use crate::store::{EnqueueReq, Journal, StoreError, StoredRecord};

/// Longest accepted `Content-Type`, `X-Event-Type` or `Idempotency-Key`.
pub const HEADER_VALUE_MAX: usize = 256;
/// Bounds on endpoint settings.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);
pub const RETRY_ENTRIES_MAX: usize = 32;
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(24 * 3600);
pub const MAX_IN_FLIGHT_MAX: u32 = 1000;
pub const SECRET_MAX: usize = 1024;

/// Shared state of the API handlers.
pub struct AppState {
    pub journal: Arc<dyn Journal>,
    pub sched: SchedulerHandle,
    pub ids: IdGen,
    pub max_body_bytes: usize,
    pub allow_http: bool,
    /// Set at shutdown: intake answers 503 SHUTTING_DOWN.
    pub stopping: AtomicBool,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Ingress channels and their rate-limit buckets.
    pub channels: crate::ingress::Channels,
}

type Resp = Response<Full<Bytes>>;

/// Entry point for every request. A body the route did not read is drained before the answer
/// (see `body::finish`).
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let mut req = req.map(Body::new);
    let resp = match route(&state, &mut req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let status = resp.status().as_u16();
    tracing::debug!(method = %req.method(), path = req.uri().path(), status, "api");
    body::finish(req).await;
    Ok(resp)
}

fn error_response(e: &ApiError) -> Resp {
    json_response(e.status, e.body())
}

fn json_response(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn json_ok(status: StatusCode, v: Value) -> Result<Resp, ApiError> {
    Ok(json_response(status, v.to_string()))
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

fn no_content() -> Result<Resp, ApiError> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("this route accepts {allowed}"),
    )
}

async fn route(state: &Arc<AppState>, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = req.method().clone();
    match segs.as_slice() {
        ["livez"] => Ok(text(StatusCode::OK, "ok\n")),
        ["readyz"] => Ok(if state.stopping.load(Ordering::Relaxed) {
            text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
        } else {
            text(StatusCode::OK, "ready\n")
        }),
        ["metrics"] => {
            let body = state
                .metrics
                .as_ref()
                .map(|h| h.render())
                .unwrap_or_default();
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(r)
        }
        ["v1", "endpoints"] => match m {
            Method::GET => list_endpoints(state).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "endpoints", id] => {
            let id = *id;
            match m {
                Method::PUT => put_endpoint(state, id, req).await,
                Method::GET => get_endpoint(state, id).await,
                Method::DELETE => {
                    let force = query.get("force").is_some_and(|v| v == "true" || v == "1");
                    delete_endpoint(state, id, force).await
                }
                _ => Err(method_not_allowed("PUT, GET, DELETE")),
            }
        }
        ["v1", "endpoints", id, action @ ("pause" | "resume")] => match m {
            Method::POST => set_paused(state, id, *action == "pause").await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "events"] => match m {
            Method::POST => enqueue(state, id, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "attempts"] => match m {
            Method::GET => {
                let limit = match query.get("limit") {
                    None => 20,
                    Some(v) => v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "INVALID_LIMIT",
                                "limit must be a whole number from 1 to 1000",
                            )
                        })?,
                };
                attempts(state, id, limit).await
            }
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "events", "batch"] => match m {
            Method::POST => enqueue_batch(state, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "channels"] => match m {
            Method::GET => {
                let list: Vec<Value> = state
                    .channels
                    .all()
                    .iter()
                    .map(|c| crate::ingress::channel_view(c))
                    .collect();
                json_ok(StatusCode::OK, json!({ "channels": list }))
            }
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "channels", id] => {
            let id = *id;
            check_channel_id(id)?;
            match m {
                Method::PUT => put_channel(state, id, req).await,
                Method::GET => match state.channels.get(id) {
                    Some(c) => json_ok(StatusCode::OK, crate::ingress::channel_view(&c)),
                    None => Err(ApiError::channel_not_found(id)),
                },
                Method::DELETE => {
                    let owned = id.to_string();
                    state.journal.delete_channel(owned).await?;
                    state.channels.remove(id);
                    no_content()
                }
                _ => Err(method_not_allowed("PUT, GET, DELETE")),
            }
        }
        ["v1", "dead-letters"] => match m {
            Method::GET => list_dead(state, query.get("endpoint").cloned()).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "dead-letters", id] => match m {
            Method::GET => get_dead(state, id).await,
            Method::DELETE => purge_dead(state, id).await,
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        ["v1", "dead-letters", id, "replay"] => match m {
            Method::POST => replay_dead(state, id).await,
            _ => Err(method_not_allowed("POST")),
        },
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ROUTE_NOT_FOUND",
            format!("no route {path}"),
        )
        .hint("see the API summary in the README")),
    }
}

/// `a=1&b=2` into a map (no percent-decoding needed for our ids and numbers, but `%2E` etc.
/// are decoded).
fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Endpoint (and channel) ids: 1-64 chars of `[A-Za-z0-9_.-]`, except `.` and `..`, which no
/// HTTP client can address (they are dot-segments of a path, removed before the request is sent).
pub fn valid_endpoint_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `Ok` when `valid`, else a 400 `code` saying why `id` is not one.
fn check_shape(
    valid: bool,
    code: &'static str,
    what: &str,
    rule: &str,
    id: &str,
) -> Result<(), ApiError> {
    if valid {
        return Ok(());
    }
    Err(ApiError::bad_request(
        code,
        format!("{} is not {what}: ids are {rule}", shown(id)),
    ))
}

const ID_RULE: &str = "1-64 characters of A-Z a-z 0-9 _ . - (not . or ..)";

fn check_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        valid_endpoint_id(id),
        "INVALID_ENDPOINT_ID",
        "an endpoint id",
        ID_RULE,
        id,
    )
}

fn check_channel_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        valid_endpoint_id(id),
        "INVALID_CHANNEL_ID",
        "a channel id",
        ID_RULE,
        id,
    )
}

fn check_event_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        looks_like_event_id(id),
        "INVALID_EVENT_ID",
        "an event id",
        "evt_ followed by 26 characters",
        id,
    )
}

/// An id from a request, quoted for a message: escaped, and cut after 80 characters.
fn shown(id: &str) -> String {
    match id.char_indices().nth(80) {
        Some((i, _)) => format!("{:?}…", &id[..i]),
        None => format!("{id:?}"),
    }
}

/// A 413 of a route whose limit is fixed (not `max_body_bytes`): the hint says so.
fn fixed_limit(e: ApiError, what: &str) -> ApiError {
    if e.code == "PAYLOAD_TOO_LARGE" {
        e.hint(format!(
            "{what}; this limit is fixed (max_body_bytes does not change it)"
        ))
    } else {
        e
    }
}

// ---------- endpoints ----------

fn error_json(e: &Option<ErrorInfo>) -> Value {
    match e {
        None => Value::Null,
        Some(e) => json!({
            "code": e.code, "message": e.message, "status": e.status, "at": rfc3339(e.at_ms),
        }),
    }
}

/// The endpoint view: configuration (never secrets) plus runtime state.
pub fn endpoint_view(rec: &EndpointRecord, rt: Option<&RuntimeView>) -> Value {
    let c = &rec.config;
    let state = match rt {
        Some(v) => v.state,
        None if rec.paused => "paused",
        None => "active",
    };
    json!({
        "id": rec.id,
        "url": c.url,
        "secret_set": c.secret.is_some(),
        "password_set": c.password.is_some(),
        "timeout": duration::format(Duration::from_millis(c.timeout_ms)),
        "retry_schedule": c.retry_schedule_ms.iter()
            .map(|ms| duration::format(Duration::from_millis(*ms))).collect::<Vec<_>>(),
        "max_in_flight": c.max_in_flight,
        "state": state,
        "backlog": rt.map(|v| v.backlog).unwrap_or(rec.pending),
        "in_flight": rt.map(|v| v.in_flight).unwrap_or(0),
        "last_error": error_json(&rt.and_then(|v| v.last_error.clone())),
        "created_at": rfc3339(rec.created_ms),
        "updated_at": rfc3339(rec.updated_ms),
    })
}

async fn list_endpoints(state: &Arc<AppState>) -> Result<Resp, ApiError> {
    let recs = state.journal.endpoints().await?;
    let views: HashMap<String, RuntimeView> = state
        .sched
        .inspect(None)
        .await
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    let list: Vec<Value> = recs
        .iter()
        .map(|r| endpoint_view(r, views.get(&r.id)))
        .collect();
    json_ok(StatusCode::OK, json!({ "endpoints": list }))
}

async fn one_view(state: &Arc<AppState>, rec: &EndpointRecord) -> Value {
    let rt = state.sched.inspect(Some(rec.id.clone())).await;
    endpoint_view(rec, rt.first())
}

async fn get_endpoint(state: &Arc<AppState>, id: &str) -> Result<Resp, ApiError> {
    check_id(id)?;
    let owned = id.to_string();
    let rec = state
        .journal
        .endpoint(&owned)
        .await?
        .ok_or_else(|| ApiError::endpoint_not_found(id))?;
    json_ok(StatusCode::OK, one_view(state, &rec).await)
}

/// `PUT /v1/endpoints/{id}` body. Omitted fields keep their current value on update (defaults on
/// create; `url` is required then); `"secret": null` / `"password": null` remove them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    secret: Option<Option<Secret>>,
    #[serde(default, deserialize_with = "explicit")]
    password: Option<Option<Secret>>,
    timeout: Option<String>,
    retry_schedule: Option<Vec<String>>,
    max_in_flight: Option<u32>,
}

/// Distinguishes a missing field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn explicit<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?))
}

/// serde's message without any quoted input (which might be a secret). serde renders an
/// offending string as `string "<raw text>"` — raw, so it may itself hold quotes — followed by
/// `, expected …` or ` at line …`; everything between is cut.
pub(crate) fn redact_serde(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let Some(start) = s.find("string \"") else {
        return s;
    };
    let open = start + "string \"".len();
    let tail = s[open..]
        .rfind("\", expected")
        .or_else(|| s[open..].rfind("\" at line"))
        .map(|i| &s[open + i + 1..])
        .unwrap_or("");
    format!("{}…\"{tail}", &s[..open])
}

/// Validates an endpoint body into a configuration, merging over `current`.
pub fn endpoint_config(
    body: &[u8],
    current: Option<&EndpointConfig>,
    allow_http: bool,
) -> Result<EndpointConfig, ApiError> {
    let hint = r#"send {"url": "https://…", "secret": "…", "timeout": "5s", "retry_schedule": ["5s","15s","60s"], "max_in_flight": 1}; on update only the fields to change"#;
    let b: EndpointBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "INVALID_JSON",
            format!("endpoint body: {}", redact_serde(&e)),
        )
        .hint(hint)
    })?;
    let url = match (b.url, current) {
        (Some(u), _) => {
            validate_url(&u, allow_http)?;
            // Schemes are case-insensitive (RFC 3986); store the canonical lowercase form.
            match u.split_once("://") {
                Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
                None => u,
            }
        }
        // An update that leaves the URL alone keeps it as stored (checked when it was set).
        (None, Some(c)) => c.url.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "INVALID_JSON",
                "endpoint body: \"url\" is required to create an endpoint",
            )
            .hint(hint));
        }
    };
    let secret = match b.secret {
        None => current.and_then(|c| c.secret.clone()),
        Some(v) => v,
    };
    if let Some(s) = &secret
        && (s.is_empty() || s.len() > SECRET_MAX)
    {
        return Err(ApiError::unprocessable(
            "INVALID_SECRET",
            format!("secret must be 1-{SECRET_MAX} bytes"),
        ));
    }
    let password = match b.password {
        None => current.and_then(|c| c.password.clone()),
        Some(v) => v,
    };
    if let Some(p) = &password
        && (p.is_empty()
            || p.len() > SECRET_MAX
            || !p.expose().bytes().all(|c| (0x20..0x7f).contains(&c)))
    {
        return Err(ApiError::unprocessable(
            "INVALID_PASSWORD",
            format!("password must be 1-{SECRET_MAX} printable ASCII characters"),
        ));
    }
    let timeout_ms = match &b.timeout {
        None => current.map_or(DEFAULT_TIMEOUT.as_millis() as u64, |c| c.timeout_ms),
        Some(t) => {
            let d = duration::parse(t)
                .map_err(|e| ApiError::unprocessable("INVALID_TIMEOUT", format!("timeout: {e}")))?;
            if d.is_zero() || d > TIMEOUT_MAX {
                return Err(ApiError::unprocessable(
                    "INVALID_TIMEOUT",
                    format!(
                        "timeout must be between 1ms and {}",
                        duration::format(TIMEOUT_MAX)
                    ),
                ));
            }
            d.as_millis() as u64
        }
    };
    let retry_schedule_ms = match &b.retry_schedule {
        None => current.map_or_else(
            || {
                DEFAULT_RETRY_SCHEDULE
                    .iter()
                    .map(|d| d.as_millis() as u64)
                    .collect()
            },
            |c| c.retry_schedule_ms.clone(),
        ),
        Some(list) => {
            if list.len() > RETRY_ENTRIES_MAX {
                return Err(ApiError::unprocessable(
                    "INVALID_RETRY_SCHEDULE",
                    format!("retry_schedule has at most {RETRY_ENTRIES_MAX} entries"),
                ));
            }
            let mut out = Vec::with_capacity(list.len());
            for s in list {
                let d = duration::parse(s).map_err(|e| {
                    ApiError::unprocessable(
                        "INVALID_RETRY_SCHEDULE",
                        format!("retry_schedule: {e}"),
                    )
                })?;
                if d < crate::core::retry::MIN_RETRY_DELAY || d > RETRY_DELAY_MAX {
                    return Err(ApiError::unprocessable(
                        "INVALID_RETRY_SCHEDULE",
                        format!(
                            "retry_schedule entries are from {} to {} (got {s:?})",
                            duration::format(crate::core::retry::MIN_RETRY_DELAY),
                            duration::format(RETRY_DELAY_MAX)
                        ),
                    ));
                }
                out.push(d.as_millis() as u64);
            }
            out
        }
    };
    let max_in_flight = b
        .max_in_flight
        .or(current.map(|c| c.max_in_flight))
        .unwrap_or(1);
    if !(1..=MAX_IN_FLIGHT_MAX).contains(&max_in_flight) {
        return Err(ApiError::unprocessable(
            "INVALID_MAX_IN_FLIGHT",
            format!("max_in_flight must be 1-{MAX_IN_FLIGHT_MAX} (1 keeps strict order)"),
        ));
    }
    Ok(EndpointConfig {
        url,
        secret,
        password,
        timeout_ms,
        retry_schedule_ms,
        max_in_flight,
    })
}

/// Checks an endpoint URL: absolute, https (http only with `--allow-http`), with a host and
/// without credentials.
pub fn validate_url(url: &str, allow_http: bool) -> Result<(), ApiError> {
    let bad = |m: &str| {
        ApiError::unprocessable("INVALID_URL", m.to_string())
            .hint("give an absolute URL such as https://api.acme.io/happ/chat")
    };
    let uri: http::Uri = url.parse().map_err(|_| bad("url does not parse"))?;
    let Some(auth) = uri.authority() else {
        return Err(bad("url has no host"));
    };
    if auth.as_str().contains('@') {
        return Err(bad(
            "url must not carry credentials; use \"password\" instead",
        ));
    }
    if auth.host().is_empty() {
        return Err(bad("url has no host"));
    }
    // The http crate accepts any characters after the colon and hyper then falls back to the
    // default port, so `https://api:8443x/` would quietly go to 443: check the port here.
    let after_host = match auth.as_str().rfind(']') {
        Some(i) => &auth.as_str()[i + 1..],
        None => auth.as_str(),
    };
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(bad("url port must be a number from 1 to 65535"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_http => Ok(()),
        Some("http") => Err(ApiError::unprocessable(
            "HTTPS_REQUIRED",
            "endpoint URLs must use https://",
        )
        .hint("install a TLS certificate (or put nginx/Caddy in front); start courier with --allow-http only for local development")),
        _ => Err(bad("url scheme must be https")),
    }
}

/// Reads the request body, of at most `max` bytes; it is taken out of the request, which must
/// not be read twice.
///
/// An over-limit body is answered 413 `PAYLOAD_TOO_LARGE`, but only after the rest of it was
/// read and discarded (see `body::drain`): a client that writes its whole request before it
/// reads (Python's `http.client`, most HTTP libraries) would otherwise see the connection reset
/// instead of the answer. Bodies declared longer than the drain bound, and requests that wait
/// for `100 Continue` before they send their body, are answered at once (`body::may_drain`).
pub(crate) async fn read_body(req: &mut Request<Body>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than the limit of {max} bytes"),
        )
        .hint("send smaller events, or raise max_body_bytes")
    };
    let read_failed =
        || ApiError::bad_request("BODY_READ_FAILED", "the request body could not be read");
    if body::declared_length(req.headers()).is_some_and(|len| len > max as u64) {
        // Left in the request, unread: it is drained, or not, like any body a route refused
        // without reading it (`body::finish`).
        return Err(too_large());
    }
    let Some(mut body) = req.body_mut().take() else {
        return Err(read_failed());
    };
    match Limited::new(&mut body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            // Reading has begun (any `100 Continue` was sent): read the rest whatever it is.
            drain(&mut body).await;
            Err(too_large())
        }
        Err(_) => Err(read_failed()),
    }
}

async fn put_endpoint(
    state: &Arc<AppState>,
    id: &str,
    req: &mut Request<Body>,
) -> Result<Resp, ApiError> {
    check_id(id)?;
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "endpoint settings are at most 64 KiB"))?;
    let owned = id.to_string();
    let current = state.journal.endpoint(&owned).await?;
    let config = endpoint_config(&body, current.as_ref().map(|r| &r.config), state.allow_http)?;
    let id = id.to_string();
    let (rec, created) = state.journal.put_endpoint(id, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_ok(status, one_view(state, &rec).await)
}

async fn put_channel(
    state: &Arc<AppState>,
    id: &str,
    req: &mut Request<Body>,
) -> Result<Resp, ApiError> {
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "channel settings are at most 64 KiB"))?;
    let current = state.channels.get(id);
    let config = crate::ingress::channel_config(&body, current.as_ref().map(|c| &c.config))?;
    let id = id.to_string();
    let (rec, created) = state.journal.put_channel(id, config).await?;
    let view = crate::ingress::channel_view(&rec);
    state.channels.set(rec);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_ok(status, view)
}

async fn set_paused(state: &Arc<AppState>, id: &str, paused: bool) -> Result<Resp, ApiError> {
    check_id(id)?;
    let id = id.to_string();
    let rec = state.journal.set_paused(id, paused).await?;
    json_ok(StatusCode::OK, one_view(state, &rec).await)
}

async fn delete_endpoint(state: &Arc<AppState>, id: &str, force: bool) -> Result<Resp, ApiError> {
    check_id(id)?;
    let id = id.to_string();
    state.journal.delete_endpoint(id, force).await?;
    no_content()
}

// ---------- events ----------

pub(crate) fn header_str(h: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| {
        ApiError::bad_request("INVALID_HEADER", format!("{name} must be visible ASCII"))
    })?;
    if s.len() > HEADER_VALUE_MAX {
        return Err(ApiError::bad_request(
            "INVALID_HEADER",
            format!("{name} is longer than {HEADER_VALUE_MAX} bytes"),
        ));
    }
    Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
}

async fn enqueue(
    state: &Arc<AppState>,
    id: &str,
    req: &mut Request<Body>,
) -> Result<Resp, ApiError> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(ApiError::shutting_down());
    }
    check_id(id)?;
    let body = read_body(req, state.max_body_bytes).await?;
    let headers = req.headers();
    let content_type =
        header_str(headers, "content-type")?.unwrap_or_else(|| "application/json".into());
    let event_type = header_str(headers, "x-event-type")?;
    let idempotency_key = header_str(headers, "idempotency-key")?;
    let now = now_ms();
    let meta = EventMeta {
        id: state.ids.next(now),
        enqueued_at_ms: now,
        content_type,
        event_type,
    };
    let req = EnqueueReq::new(id.to_string(), meta, body, idempotency_key)
        .map_err(|e| ApiError::bad_request("INVALID_EVENT", e.to_string()))?;
    let ok = state.journal.enqueue(req).await?;
    let (status, mut v) = if ok.duplicate {
        (
            StatusCode::OK,
            json!({"id": ok.id, "seq": ok.seq, "endpoint": id, "duplicate": true}),
        )
    } else {
        (
            StatusCode::ACCEPTED,
            json!({"id": ok.id, "seq": ok.seq, "endpoint": id}),
        )
    };
    if ok.duplicate {
        v["hint"] = json!("this Idempotency-Key was used before; this is the original event");
    }
    json_ok(status, v)
}

/// Largest body of `PUT /v1/endpoints/{id}` and `PUT /v1/channels/{id}`.
pub const ADMIN_BODY_MAX: usize = 64 * 1024;
/// Most events in one batch.
pub const BATCH_MAX_EVENTS: usize = 10_000;
/// Largest batch request.
pub const BATCH_MAX_BYTES: usize = 32 << 20;

/// One NDJSON line of `POST /v1/events/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine<'a> {
    endpoint: String,
    /// Delivered exactly as written in the line (any JSON value).
    #[serde(borrow, default)]
    body: Option<&'a serde_json::value::RawValue>,
    /// Or arbitrary bytes, base64 (standard alphabet).
    body_base64: Option<String>,
    content_type: Option<String>,
    event_type: Option<String>,
    idempotency_key: Option<String>,
}

/// Parses a batch into enqueue requests; the whole batch is refused on the first bad line.
pub fn parse_batch(
    text: &[u8],
    max_body: usize,
    ids: &IdGen,
    now: u64,
) -> Result<Vec<EnqueueReq>, ApiError> {
    let bad = |n: usize, m: String| {
        ApiError::bad_request("INVALID_BATCH", format!("line {n}: {m}"))
            .hint(r#"one JSON object per line: {"endpoint": "acme", "body": {...}, "event_type": "..."}; nothing of this batch was accepted"#)
    };
    let mut out = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if out.len() >= BATCH_MAX_EVENTS {
            return Err(bad(
                n,
                format!("a batch holds at most {BATCH_MAX_EVENTS} events"),
            ));
        }
        let l: BatchLine<'_> =
            serde_json::from_slice(line).map_err(|e| bad(n, redact_serde(&e)))?;
        if !valid_endpoint_id(&l.endpoint) {
            return Err(unknown_endpoint_on_line(n, &l.endpoint));
        }
        let body = match (l.body, &l.body_base64) {
            (Some(raw), None) => Bytes::copy_from_slice(raw.get().as_bytes()),
            (None, Some(b64)) => Bytes::from(
                base64_decode(b64)
                    .ok_or_else(|| bad(n, "body_base64 is not valid base64".into()))?,
            ),
            _ => return Err(bad(n, "give exactly one of body or body_base64".into())),
        };
        if body.len() > max_body {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("line {n}: the body is larger than the limit of {max_body} bytes"),
            ));
        }
        for (name, v) in [
            ("content_type", &l.content_type),
            ("event_type", &l.event_type),
            ("idempotency_key", &l.idempotency_key),
        ] {
            if let Some(v) = v
                && (v.len() > HEADER_VALUE_MAX || !v.bytes().all(|c| (0x20..0x7f).contains(&c)))
            {
                return Err(bad(
                    n,
                    format!("{name} must be at most {HEADER_VALUE_MAX} printable ASCII characters"),
                ));
            }
        }
        let meta = EventMeta {
            id: ids.next(now),
            enqueued_at_ms: now,
            content_type: l.content_type.unwrap_or_else(|| "application/json".into()),
            event_type: l.event_type,
        };
        let req = EnqueueReq::new(l.endpoint, meta, body, l.idempotency_key)
            .map_err(|e| bad(n, e.to_string()))?;
        out.push(req);
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BATCH",
            "the batch holds no event (it is empty or only blank lines)",
        ));
    }
    Ok(out)
}

/// A batch line naming an endpoint that does not exist: 404, with the line.
fn unknown_endpoint_on_line(line: usize, endpoint: &str) -> ApiError {
    let e = ApiError::endpoint_not_found(endpoint);
    ApiError {
        message: format!(
            "line {line}: {}; nothing of this batch was accepted",
            e.message
        ),
        ..e
    }
}

async fn enqueue_batch(state: &Arc<AppState>, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(ApiError::shutting_down());
    }
    let body = read_body(req, BATCH_MAX_BYTES).await.map_err(|e| {
        fixed_limit(
            e,
            "a batch is at most 32 MiB; split it into several requests",
        )
    })?;
    let reqs = parse_batch(&body, state.max_body_bytes, &state.ids, now_ms())?;
    let endpoints: Vec<String> = reqs.iter().map(|r| r.endpoint.clone()).collect();
    let oks = state
        .journal
        .enqueue_batch(reqs)
        .await
        .map_err(|e| match e {
            // Name the first line that points at the missing endpoint.
            StoreError::EndpointNotFound(ep) => {
                let line = batch_line_of(&body, endpoints.iter().position(|e| *e == ep));
                unknown_endpoint_on_line(line, &ep)
            }
            e @ StoreError::IdempotencyMismatch { index, .. } => {
                let line = batch_line_of(&body, Some(index));
                let e = ApiError::from(e);
                ApiError {
                    message: format!("line {line}: {}", e.message),
                    ..e
                }
            }
            other => other.into(),
        })?;
    let events: Vec<Value> = oks
        .iter()
        .zip(endpoints)
        .map(|(ok, ep)| {
            let mut v = json!({"id": ok.id, "seq": ok.seq, "endpoint": ep});
            if ok.duplicate {
                v["duplicate"] = json!(true);
            }
            v
        })
        .collect();
    json_ok(StatusCode::ACCEPTED, json!({ "events": events }))
}

/// The 1-based line number of the `index`-th event of a batch (blank lines are not events).
fn batch_line_of(text: &[u8], index: Option<usize>) -> usize {
    let Some(index) = index else { return 0 };
    text.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .nth(index)
        .map_or(0, |(i, _)| i + 1)
}

// ---------- attempts ----------

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "event_id": a.event_id, "seq": a.seq, "attempt": a.attempt,
        "started_at": rfc3339(a.started_ms), "status": a.status, "latency_ms": a.latency_ms,
        "error": a.error, "message": a.message,
    })
}

async fn attempts(state: &Arc<AppState>, id: &str, limit: usize) -> Result<Resp, ApiError> {
    check_id(id)?;
    let owned = id.to_string();
    let exists = state.journal.endpoint(&owned).await?.is_some();
    let list = state.journal.attempts(&owned, limit).await?;
    if !exists {
        return Err(ApiError::endpoint_not_found(id));
    }
    let list: Vec<Value> = list.iter().map(attempt_json).collect();
    json_ok(StatusCode::OK, json!({ "attempts": list }))
}

// ---------- dead letters ----------

fn dead_json(d: &DeadLetter) -> Value {
    json!({
        "id": d.event_id, "endpoint": d.endpoint, "seq": d.seq, "reason": d.reason,
        "attempts": d.progress.attempts, "last_error": error_json(&d.progress.last_error),
        "dead_at": rfc3339(d.dead_at_ms),
    })
}

async fn list_dead(state: &Arc<AppState>, endpoint: Option<String>) -> Result<Resp, ApiError> {
    let list = state.journal.dead_letters(endpoint.as_deref()).await?;
    let list: Vec<Value> = list.iter().map(dead_json).collect();
    json_ok(StatusCode::OK, json!({ "dead_letters": list }))
}

async fn get_dead(state: &Arc<AppState>, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let owned = id.to_string();
    let (dl, rec) = state
        .journal
        .dead_letter(&owned)
        .await?
        .ok_or_else(|| ApiError::dead_letter_not_found(id))?;
    let mut v = dead_json(&dl);
    match rec {
        StoredRecord::Intact(rec) => {
            v["content_type"] = json!(rec.meta.content_type);
            v["event_type"] = json!(rec.meta.event_type);
            v["enqueued_at"] = json!(rfc3339(rec.meta.enqueued_at_ms));
            match std::str::from_utf8(&rec.body) {
                Ok(s) => v["payload"] = json!(s),
                Err(_) => {
                    v["payload"] = Value::Null;
                    v["payload_base64"] = json!(base64(&rec.body));
                }
            }
        }
        // The raw stored bytes (header, metadata, body) for inspection; nothing is trusted.
        StoredRecord::Corrupt { raw, why } => {
            v["content_type"] = Value::Null;
            v["event_type"] = Value::Null;
            v["enqueued_at"] = Value::Null;
            v["payload"] = Value::Null;
            v["payload_base64"] = json!(base64(&raw));
            v["record_error"] = json!(why);
        }
    }
    v["history"] = Value::Array(dl.progress.history.iter().map(attempt_json).collect());
    json_ok(StatusCode::OK, v)
}

async fn replay_dead(state: &Arc<AppState>, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let event_id = id.to_string();
    let (endpoint, seq) = state.journal.replay(event_id).await.map_err(|e| match e {
        StoreError::EndpointNotFound(ep) => ApiError::endpoint_not_found(&ep)
            .hint("the endpoint was deleted; create it again with the same id, then replay"),
        other => other.into(),
    })?;
    json_ok(
        StatusCode::ACCEPTED,
        json!({"id": id, "endpoint": endpoint, "seq": seq}),
    )
}

async fn purge_dead(state: &Arc<AppState>, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let event_id = id.to_string();
    state.journal.purge(event_id).await?;
    no_content()
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on any invalid character.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_keep_bodies_verbatim() {
        let ids = IdGen::new();
        let text = b"{\"endpoint\":\"a\",\"body\":{\"x\": 1,  \"y\":[1,2]},\"event_type\":\"t\"}\n\n{\"endpoint\":\"b\",\"body_base64\":\"AP8=\",\"content_type\":\"application/octet-stream\"}\r\n";
        let reqs = parse_batch(text, 1024, &ids, 0).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(&reqs[0].body[..], b"{\"x\": 1,  \"y\":[1,2]}");
        assert_eq!(reqs[0].meta.event_type.as_deref(), Some("t"));
        assert_eq!(&reqs[1].body[..], &[0u8, 255]);
        assert_eq!(reqs[1].meta.content_type, "application/octet-stream");
    }

    #[test]
    fn bad_batches_name_the_line() {
        let ids = IdGen::new();
        let e =
            parse_batch(b"{\"endpoint\":\"a\",\"body\":1}\n{nope}\n", 1024, &ids, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_BATCH");
        assert!(e.message.starts_with("line 2"), "{}", e.message);
        let e = parse_batch(b"{\"endpoint\":\"a\"}", 1024, &ids, 0).unwrap_err();
        assert!(e.message.contains("exactly one"), "{}", e.message);
        let e =
            parse_batch(b"{\"endpoint\":\"a\",\"body\":\"xxxxxxxxxx\"}", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "PAYLOAD_TOO_LARGE");
        let e = parse_batch(b"\n \n", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_BATCH");
        let e = parse_batch(b"{\"endpoint\":\"a/b\",\"body\":1}", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "ENDPOINT_NOT_FOUND");
        // Regression: the unknown endpoint's line was not named, and an empty batch said "line 0".
        let e = parse_batch(
            b"{\"endpoint\":\"a\",\"body\":1}\n\n{\"endpoint\":\"..\",\"body\":1}",
            4,
            &ids,
            0,
        )
        .unwrap_err();
        assert_eq!(e.code, "ENDPOINT_NOT_FOUND");
        assert!(e.message.starts_with("line 3:"), "{}", e.message);
        let e = parse_batch(b"\n \n", 4, &ids, 0).unwrap_err();
        assert!(!e.message.contains("line 0"), "{}", e.message);
        assert!(e.hint.is_some());
        assert_eq!(batch_line_of(b"a\n\n b\nc", Some(1)), 3);
        assert_eq!(batch_line_of(b"a\n\n b\nc", Some(2)), 4);
    }

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0, 255, 254, 1, 2]] {
            assert_eq!(base64_decode(&base64(data)).unwrap(), data);
        }
        assert_eq!(base64_decode("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(base64_decode("Zm9"), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn endpoint_ids() {
        assert!(valid_endpoint_id("acme"));
        assert!(valid_endpoint_id("a.b-c_D9"));
        assert!(valid_endpoint_id(&"x".repeat(64)));
        assert!(!valid_endpoint_id(""));
        assert!(!valid_endpoint_id(&"x".repeat(65)));
        assert!(!valid_endpoint_id("a/b"));
        assert!(!valid_endpoint_id("a b"));
        // Dot-segments: clients resolve them away, so such an endpoint could never be addressed.
        assert!(!valid_endpoint_id("."));
        assert!(!valid_endpoint_id(".."));
        assert!(valid_endpoint_id("..."));
        assert!(valid_endpoint_id(".a"));
    }

    #[test]
    fn urls() {
        assert!(validate_url("https://api.acme.io/happ/chat", false).is_ok());
        assert_eq!(
            validate_url("http://api.acme.io/x", false)
                .unwrap_err()
                .code,
            "HTTPS_REQUIRED"
        );
        assert!(validate_url("http://127.0.0.1:9/x", true).is_ok());
        assert_eq!(
            validate_url("ftp://x/y", true).unwrap_err().code,
            "INVALID_URL"
        );
        assert_eq!(
            validate_url("/relative", true).unwrap_err().code,
            "INVALID_URL"
        );
        assert_eq!(
            validate_url("https://user:pw@host/x", false)
                .unwrap_err()
                .code,
            "INVALID_URL"
        );
    }

    #[test]
    fn endpoint_defaults_and_merge() {
        let c = endpoint_config(br#"{"url":"https://h/x","secret":"s"}"#, None, false).unwrap();
        assert_eq!(c.timeout_ms, 5000);
        assert_eq!(c.retry_schedule_ms, vec![5000, 15000, 60000]);
        assert_eq!(c.max_in_flight, 1);
        assert_eq!(c.secret.as_ref().map(Secret::expose), Some("s"));
        // An update that omits the secret keeps it; an explicit null removes it.
        let c2 =
            endpoint_config(br#"{"url":"https://h/y","timeout":"2s"}"#, Some(&c), false).unwrap();
        assert_eq!(c2.secret.as_ref().map(Secret::expose), Some("s"));
        assert_eq!(c2.timeout_ms, 2000);
        let c3 =
            endpoint_config(br#"{"url":"https://h/y","secret":null}"#, Some(&c2), false).unwrap();
        assert_eq!(c3.secret, None);
    }

    /// Every updatable field of an endpoint keeps its value unless the update names it; only an
    /// explicit `null` removes a secret or password.
    #[test]
    fn endpoint_updates_merge_every_field() {
        let cur = EndpointConfig {
            url: "https://h/x".into(),
            secret: Some("s".into()),
            password: Some("p".into()),
            timeout_ms: 2_000,
            retry_schedule_ms: vec![1_000, 2_000],
            max_in_flight: 3,
        };
        let upd = |b: &str| endpoint_config(b.as_bytes(), Some(&cur), false).unwrap();
        assert_eq!(upd("{}"), cur, "an empty update changes nothing");
        let cases: [(&str, EndpointConfig); 8] = [
            (
                r#"{"url":"https://h/y"}"#,
                EndpointConfig {
                    url: "https://h/y".into(),
                    ..cur.clone()
                },
            ),
            (
                r#"{"secret":"s2"}"#,
                EndpointConfig {
                    secret: Some("s2".into()),
                    ..cur.clone()
                },
            ),
            (
                r#"{"secret":null}"#,
                EndpointConfig {
                    secret: None,
                    ..cur.clone()
                },
            ),
            (
                r#"{"password":"p2"}"#,
                EndpointConfig {
                    password: Some("p2".into()),
                    ..cur.clone()
                },
            ),
            (
                r#"{"password":null}"#,
                EndpointConfig {
                    password: None,
                    ..cur.clone()
                },
            ),
            (
                r#"{"timeout":"3s"}"#,
                EndpointConfig {
                    timeout_ms: 3_000,
                    ..cur.clone()
                },
            ),
            (
                r#"{"retry_schedule":[]}"#,
                EndpointConfig {
                    retry_schedule_ms: vec![],
                    ..cur.clone()
                },
            ),
            (
                r#"{"max_in_flight":1}"#,
                EndpointConfig {
                    max_in_flight: 1,
                    ..cur.clone()
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(upd(body), want, "{body}");
        }
        assert_eq!(
            endpoint_config(b"{}", None, false).unwrap_err().code,
            "INVALID_JSON",
            "url is required on create"
        );
    }

    #[test]
    fn endpoint_validation_codes() {
        let code = |b: &str| endpoint_config(b.as_bytes(), None, false).unwrap_err().code;
        assert_eq!(code("not json"), "INVALID_JSON");
        assert_eq!(code(r#"{"url":"https://h","bogus":1}"#), "INVALID_JSON");
        assert_eq!(
            code(r#"{"url":"https://h","timeout":"5 years"}"#),
            "INVALID_TIMEOUT"
        );
        assert_eq!(
            code(r#"{"url":"https://h","timeout":"0s"}"#),
            "INVALID_TIMEOUT"
        );
        assert_eq!(
            code(r#"{"url":"https://h","retry_schedule":["5s","x"]}"#),
            "INVALID_RETRY_SCHEDULE"
        );
        assert_eq!(
            code(r#"{"url":"https://h","max_in_flight":0}"#),
            "INVALID_MAX_IN_FLIGHT"
        );
        assert_eq!(code(r#"{"url":"https://h","secret":""}"#), "INVALID_SECRET");
        assert_eq!(
            code(r#"{"url":"https://h","password":"a\nb"}"#),
            "INVALID_PASSWORD"
        );
        assert_eq!(code(r#"{"url":"http://h"}"#), "HTTPS_REQUIRED");
        // Regression: a 0s entry made probes of a down endpoint a tight loop.
        assert_eq!(
            code(r#"{"url":"https://h","retry_schedule":["0s","2s"]}"#),
            "INVALID_RETRY_SCHEDULE"
        );
        assert_eq!(
            code(r#"{"url":"https://h","retry_schedule":["99ms"]}"#),
            "INVALID_RETRY_SCHEDULE"
        );
    }

    #[test]
    fn serde_messages_do_not_echo_strings() {
        let e = endpoint_config(
            br#"{"url":"https://h","max_in_flight":"hunter2"}"#,
            None,
            false,
        )
        .unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn query_parsing() {
        let q = parse_query("endpoint=acme&limit=5&x=a%2Eb");
        assert_eq!(q["endpoint"], "acme");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "a.b");
    }
}
