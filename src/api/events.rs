//! `POST /v1/endpoints/{id}/events` (one event, its body byte for byte) and
//! `POST /v1/events/batch` (NDJSON, one commit, all or nothing): the HTTP side of the intake.

use http::{Request, StatusCode};

use super::AppState;
use super::batch::{BATCH_MAX_BYTES, batch_line_of, parse_batch, unknown_endpoint_on_line};
use super::http::{Resp, check_id, fixed_limit, json_ok};
use super::views::accepted;
use crate::body::{Body, header_str, read_body};
use crate::core::timefmt::now_ms;
use crate::error::ApiError;
use crate::intake::{DEFAULT_CONTENT_TYPE, DUPLICATE_HINT, IntakeError, NewEvent, status_of};
use crate::store::StoreError;
use crate::views::BatchAccepted;

/// `POST /v1/endpoints/{id}/events`: the body is the event; `Content-Type`, `X-Event-Type` and
/// `Idempotency-Key` are its metadata.
pub async fn enqueue(
    state: &AppState,
    id: &str,
    req: &mut Request<Body>,
) -> Result<Resp, ApiError> {
    state.intake.check_open()?;
    check_id(id)?;
    let body = read_body(req, state.max_body_bytes).await?;
    let headers = req.headers();
    let content_type =
        header_str(headers, "content-type")?.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into());
    let event_type = header_str(headers, "x-event-type")?;
    let idempotency_key = header_str(headers, "idempotency-key")?;
    let ev = NewEvent {
        endpoint: id.to_string(),
        content_type,
        event_type,
        idempotency_key,
        body,
    };
    let ok = state.intake.enqueue(ev).await.map_err(|e| match e {
        IntakeError::Record(e) => ApiError::bad_request("INVALID_EVENT", e.to_string()),
        IntakeError::Store(e) => e.into(),
    })?;
    let status = status_of(&ok);
    json_ok(status, &accepted(ok, id.to_string(), Some(DUPLICATE_HINT)))
}

/// `POST /v1/events/batch`.
pub async fn enqueue_batch(state: &AppState, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    state.intake.check_open()?;
    let body = read_body(req, BATCH_MAX_BYTES).await.map_err(|e| {
        fixed_limit(
            e,
            "a batch is at most 32 MiB; split it into several requests",
        )
    })?;
    let reqs = parse_batch(&body, state.max_body_bytes, state.intake.ids(), now_ms())?;
    let endpoints: Vec<String> = reqs.iter().map(|r| r.endpoint.clone()).collect();
    let oks = state
        .intake
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
    let events = oks
        .into_iter()
        .zip(endpoints)
        .map(|(ok, ep)| accepted(ok, ep, None))
        .collect();
    json_ok(StatusCode::ACCEPTED, &BatchAccepted { events })
}
