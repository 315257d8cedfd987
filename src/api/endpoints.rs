//! `/v1/endpoints…`: create/update (settings validated by [`crate::core::endpoint`]), show,
//! list, pause/resume, delete, the attempt log of an endpoint; and what operators do outside
//! its queue: the connection test, the synchronous call (seed 004's tool webhooks) and retry
//! now.

use std::collections::HashMap;

use http::{Request, StatusCode};

use super::AppState;
use super::http::{ADMIN_BODY_MAX, Resp, check_id, fixed_limit, json_ok, no_content, to_base64};
use super::views::{attempt_view, endpoint_view, hint};
use crate::body::{Body, header_str, read_body};
use crate::core::endpoint::endpoint_config;
use crate::core::model::{AttemptKind, AttemptRecord, EndpointRecord};
use crate::core::partition::{NothingWaiting, RetryNow};
use crate::core::timefmt::now_ms;
use crate::destination::{Call, Outcome, Ping};
use crate::error::ApiError;
use crate::intake::DEFAULT_CONTENT_TYPE;
use crate::scheduler::RuntimeView;
use crate::views::{
    AttemptError, AttemptList, CallResult, EndpointList, EndpointView, RetryResult, TestResult,
};

pub async fn list(state: &AppState) -> Result<Resp, ApiError> {
    let recs = state.journal.endpoints().await?;
    let views: HashMap<String, RuntimeView> = state
        .sched
        .inspect(None)
        .await
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    let mut endpoints = Vec::with_capacity(recs.len());
    for r in &recs {
        let rt = views.get(&r.id);
        let stored = stored_oldest(state, r, rt).await;
        endpoints.push(endpoint_view(r, rt, stored, state.limits.max_backlog));
    }
    json_ok(StatusCode::OK, &EndpointList { endpoints })
}

async fn one_view(state: &AppState, rec: &EndpointRecord) -> EndpointView {
    let rt = state.sched.inspect(Some(rec.id.clone())).await;
    let stored = stored_oldest(state, rec, rt.first()).await;
    endpoint_view(rec, rt.first(), stored, state.limits.max_backlog)
}

/// When the oldest waiting event of an endpoint the scheduler does not know (offline
/// inspection) was accepted: its first pending row. `None` when the scheduler knows it (its
/// view says) or nothing waits.
async fn stored_oldest(
    state: &AppState,
    rec: &EndpointRecord,
    rt: Option<&RuntimeView>,
) -> Option<u64> {
    if rt.is_some() || rec.pending == 0 {
        return None;
    }
    let loaded = state.journal.load_events(&rec.id, 0, 1).await.ok()?;
    loaded.events.first().map(|e| e.meta.enqueued_at_ms)
}

pub async fn get(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_id(id)?;
    let owned = id.to_string();
    let rec = state
        .journal
        .endpoint(&owned)
        .await?
        .ok_or_else(|| ApiError::endpoint_not_found(id))?;
    json_ok(StatusCode::OK, &one_view(state, &rec).await)
}

/// `PUT /v1/endpoints/{id}`: 201 when created, 200 when updated.
pub async fn put(state: &AppState, id: &str, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    check_id(id)?;
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "endpoint settings are at most 64 KiB"))?;
    let owned = id.to_string();
    let current = state.journal.endpoint(&owned).await?;
    let config = endpoint_config(&body, current.as_ref().map(|r| &r.config), state.allow_http)?;
    let (rec, created) = state.journal.put_endpoint(owned, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_ok(status, &one_view(state, &rec).await)
}

/// `PATCH /v1/endpoints/{id}`: like an update by PUT (omitted fields keep their value), but
/// never creates: an unknown id is 404 `ENDPOINT_NOT_FOUND`.
pub async fn patch(state: &AppState, id: &str, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    check_id(id)?;
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "endpoint settings are at most 64 KiB"))?;
    let owned = id.to_string();
    let current = state
        .journal
        .endpoint(&owned)
        .await?
        .ok_or_else(|| ApiError::endpoint_not_found(id))?;
    let config = endpoint_config(&body, Some(&current.config), state.allow_http)?;
    let (rec, _) = state.journal.put_endpoint(owned, config).await?;
    json_ok(StatusCode::OK, &one_view(state, &rec).await)
}

/// `POST /v1/endpoints/{id}/pause` and `…/resume`.
pub async fn set_paused(state: &AppState, id: &str, paused: bool) -> Result<Resp, ApiError> {
    check_id(id)?;
    let rec = state.journal.set_paused(id.to_string(), paused).await?;
    json_ok(StatusCode::OK, &one_view(state, &rec).await)
}

/// `DELETE /v1/endpoints/{id}[?force=true]`.
pub async fn delete(state: &AppState, id: &str, force: bool) -> Result<Resp, ApiError> {
    check_id(id)?;
    state.journal.delete_endpoint(id.to_string(), force).await?;
    no_content()
}

/// How many attempts `GET /v1/endpoints/{id}/attempts` shows: `?limit=` from 1 to 1000, 20 by
/// default.
pub fn attempts_limit(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(20),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_LIMIT",
                    "limit must be a whole number from 1 to 1000",
                )
            }),
    }
}

/// `GET /v1/endpoints/{id}/attempts`: newest first.
pub async fn attempts(state: &AppState, id: &str, limit: usize) -> Result<Resp, ApiError> {
    check_id(id)?;
    let owned = id.to_string();
    let exists = state.journal.endpoint(&owned).await?.is_some();
    let list = state.journal.attempts(&owned, limit).await?;
    if !exists {
        return Err(ApiError::endpoint_not_found(id));
    }
    let attempts = list.iter().map(attempt_view).collect();
    json_ok(StatusCode::OK, &AttemptList { attempts })
}

/// The destination the scheduler delivers this endpoint with (404 for an unknown endpoint).
async fn destination(
    state: &AppState,
    id: &str,
) -> Result<std::sync::Arc<dyn crate::destination::Destination>, ApiError> {
    check_id(id)?;
    if state.journal.endpoint(id).await?.is_none() {
        return Err(ApiError::endpoint_not_found(id));
    }
    state
        .sched
        .destination(id.to_string())
        .await
        .ok_or_else(|| not_delivering(id))
}

fn not_delivering(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "ENDPOINT_NOT_DELIVERING",
        format!("the daemon does not deliver to endpoint {id:?}: its stored settings are unusable"),
    )
}

/// An attempt made outside the queue, for the endpoint's attempt log.
fn attempt_record(
    kind: AttemptKind,
    event_id: String,
    started_ms: u64,
    o: &mut Outcome,
) -> AttemptRecord {
    AttemptRecord {
        event_id,
        seq: 0,
        attempt: 1,
        started_ms,
        status: o.status,
        latency_ms: o.latency.as_millis().min(u128::from(u32::MAX)) as u32,
        error: o.failure.as_ref().map(|f| f.code.to_string()),
        message: o.failure.as_ref().map(|f| f.message.clone()),
        kind,
        answer: o.answer.take(),
        repeats: 0,
        last_ms: 0,
    }
}

/// Logs a test or call in the endpoint's attempt log (a 2xx sets `connected_at`); a failure
/// to log does not change the answer.
async fn log_attempt(state: &AppState, id: &str, rec: AttemptRecord) {
    tracing::info!(endpoint = id, kind = rec.kind.as_str(), status = ?rec.status,
        error = rec.error.as_deref().unwrap_or(""), latency_ms = rec.latency_ms, "attempt outside the queue");
    if let Err(e) = state.journal.log_attempt(id.to_string(), rec).await {
        tracing::warn!(endpoint = id, error = %e, "cannot log the attempt");
    }
}

fn attempt_error(o: &Outcome) -> Option<AttemptError> {
    o.failure.as_ref().map(|f| AttemptError {
        code: f.code.to_string(),
        message: f.message.clone(),
        hint: hint(f.code),
    })
}

/// `POST /v1/endpoints/{id}/test`: one signed `webhook.ping` now, outside the queue (neither
/// waiting for nor delaying the backlog, whatever the endpoint's state), within its timeout.
pub async fn test(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    let dest = destination(state, id).await?;
    let started_ms = now_ms();
    let ping = Ping {
        id: state.intake.ids().next(started_ms),
        at_ms: started_ms,
    };
    let event_id = ping.id.clone();
    let mut o = dest.test(ping).await;
    let result = TestResult {
        connected: o.is_success(),
        status: o.status,
        latency_ms: o.latency.as_millis() as u64,
        error: attempt_error(&o),
    };
    let rec = attempt_record(AttemptKind::Test, event_id, started_ms, &mut o);
    log_attempt(state, id, rec).await;
    json_ok(StatusCode::OK, &result)
}

/// `POST /v1/endpoints/{id}/call` (seed 004's tool webhooks): the request body sent now,
/// signed, with its `Content-Type` and `X-Event-Type`, outside the queue, within the
/// endpoint's timeout; answers the receiver's status and answer (at most 1 MiB, cut there).
pub async fn call(state: &AppState, id: &str, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    check_id(id)?;
    let body = read_body(req, state.max_body_bytes).await?;
    let headers = req.headers();
    let content_type =
        header_str(headers, "content-type")?.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into());
    let event_type = header_str(headers, "x-event-type")?;
    let dest = destination(state, id).await?;
    let started_ms = now_ms();
    let call = Call {
        id: state.intake.ids().next(started_ms),
        at_ms: started_ms,
        content_type,
        event_type,
        body,
    };
    let event_id = call.id.clone();
    let mut c = dest.call(call).await;
    let (body, body_encoding) = answer_json(c.content_type.as_deref(), &c.body, c.truncated);
    let result = CallResult {
        status: c.outcome.status,
        latency_ms: c.outcome.latency.as_millis() as u64,
        content_type: c.content_type.clone(),
        body,
        body_encoding: body_encoding.into(),
        truncated: c.truncated,
        error: attempt_error(&c.outcome),
    };
    let rec = attempt_record(AttemptKind::Call, event_id, started_ms, &mut c.outcome);
    log_attempt(state, id, rec).await;
    json_ok(StatusCode::OK, &result)
}

/// A receiver's answer as JSON: its value when it is JSON (and whole), else a string — the
/// text, or standard base64 when it is not UTF-8 — with the name of the encoding used.
pub fn answer_json(
    content_type: Option<&str>,
    body: &[u8],
    truncated: bool,
) -> (serde_json::Value, &'static str) {
    if body.is_empty() {
        return (serde_json::Value::Null, "none");
    }
    let is_json = content_type.is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    });
    if is_json
        && !truncated
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
    {
        return (v, "json");
    }
    match std::str::from_utf8(body) {
        Ok(s) => (serde_json::Value::String(s.to_string()), "text"),
        // Cut inside a character at the 1 MiB mark: the text up to it.
        Err(e) if truncated && e.error_len().is_none() => {
            let s = String::from_utf8_lossy(&body[..e.valid_up_to()]).into_owned();
            (serde_json::Value::String(s), "text")
        }
        Err(_) => (serde_json::Value::String(to_base64(body)), "base64"),
    }
}

/// `POST /v1/endpoints/{id}/retry`: attempt now what waits — a `down` endpoint's probe, or the
/// events waiting for a retry (the retry they use is the one they would have used).
pub async fn retry(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_id(id)?;
    if state.journal.endpoint(id).await?.is_none() {
        return Err(ApiError::endpoint_not_found(id));
    }
    let answer = state
        .sched
        .retry_now(id.to_string())
        .await
        .ok_or_else(|| not_delivering(id))?;
    json_ok(StatusCode::OK, &retry_result(answer))
}

fn retry_result(r: RetryNow) -> RetryResult {
    let (action, events, message) = match r {
        RetryNow::Probe => (
            "probe",
            1,
            "the endpoint is down: its oldest event is being sent now as a probe".to_string(),
        ),
        RetryNow::Retry { events } => (
            "retry",
            events as u64,
            format!(
                "{events} event{} waiting for a retry {} being sent now",
                if events == 1 { "" } else { "s" },
                if events == 1 { "is" } else { "are" }
            ),
        ),
        RetryNow::Nothing(why) => (
            "none",
            0,
            match why {
                NothingWaiting::Paused => {
                    "nothing was waiting: the endpoint is paused (resume it to deliver)"
                }
                NothingWaiting::InFlight => {
                    "nothing was waiting: an attempt is under way now and none waits for a retry"
                }
                NothingWaiting::Empty => {
                    "nothing was waiting: no event waits for a retry or a probe"
                }
                NothingWaiting::Stopping => "nothing was waiting: the daemon is stopping",
            }
            .to_string(),
        ),
    };
    RetryResult {
        action: action.into(),
        events,
        message,
    }
}
