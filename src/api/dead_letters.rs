//! `/v1/dead-letters…`: list (optionally of one endpoint), show with the event and its history,
//! replay into the original place, purge.

use http::StatusCode;

use super::AppState;
use super::http::{Resp, check_event_id, json_ok, no_content};
use super::views::{dead_letter_detail, dead_letter_view};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::views::{DeadLetterList, Replayed};

/// `GET /v1/dead-letters[?endpoint=id]`: oldest first.
pub async fn list(state: &AppState, endpoint: Option<&str>) -> Result<Resp, ApiError> {
    let list = state.journal.dead_letters(endpoint).await?;
    let dead_letters = list.iter().map(dead_letter_view).collect();
    json_ok(StatusCode::OK, &DeadLetterList { dead_letters })
}

pub async fn get(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let owned = id.to_string();
    let (dl, rec) = state
        .journal
        .dead_letter(&owned)
        .await?
        .ok_or_else(|| ApiError::dead_letter_not_found(id))?;
    json_ok(StatusCode::OK, &dead_letter_detail(&dl, &rec))
}

/// `POST /v1/dead-letters/{id}/replay`: 202 with the endpoint and the original seq.
pub async fn replay(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let (endpoint, seq) = state
        .journal
        .replay(id.to_string())
        .await
        .map_err(|e| match e {
            StoreError::EndpointNotFound(ep) => ApiError::endpoint_not_found(&ep)
                .advise("the endpoint was deleted; create it again with the same id, then replay"),
            other => other.into(),
        })?;
    json_ok(
        StatusCode::ACCEPTED,
        &Replayed {
            id: id.to_string(),
            endpoint,
            seq,
        },
    )
}

pub async fn purge(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    state.journal.purge(id.to_string()).await?;
    no_content()
}
