//! `/v1/endpoints…`: create/update (settings validated by [`crate::core::endpoint`]), show,
//! list, pause/resume, delete, and the attempt log of an endpoint.

use std::collections::HashMap;

use http::{Request, StatusCode};

use super::AppState;
use super::http::{ADMIN_BODY_MAX, Resp, check_id, fixed_limit, json_ok, no_content};
use super::views::{attempt_view, endpoint_view};
use crate::body::{Body, read_body};
use crate::core::endpoint::endpoint_config;
use crate::core::model::EndpointRecord;
use crate::error::ApiError;
use crate::scheduler::RuntimeView;
use crate::views::{AttemptList, EndpointList, EndpointView};

pub async fn list(state: &AppState) -> Result<Resp, ApiError> {
    let recs = state.journal.endpoints().await?;
    let views: HashMap<String, RuntimeView> = state
        .sched
        .inspect(None)
        .await
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    let endpoints = recs
        .iter()
        .map(|r| endpoint_view(r, views.get(&r.id)))
        .collect();
    json_ok(StatusCode::OK, &EndpointList { endpoints })
}

async fn one_view(state: &AppState, rec: &EndpointRecord) -> EndpointView {
    let rt = state.sched.inspect(Some(rec.id.clone())).await;
    endpoint_view(rec, rt.first())
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
