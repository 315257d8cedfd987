//! `/v1/channels…`: the ingress channels (settings validated by [`crate::core::channel`]); a
//! change is journaled, then installed in the ingress's channel table.

use http::{Request, StatusCode};

use super::AppState;
use super::http::{ADMIN_BODY_MAX, Resp, fixed_limit, json_ok, no_content};
use super::views::channel_view;
use crate::body::{Body, read_body};
use crate::core::channel::channel_config;
use crate::error::ApiError;
use crate::views::ChannelList;

pub fn list(state: &AppState) -> Result<Resp, ApiError> {
    let channels = state
        .channels
        .all()
        .iter()
        .map(|c| channel_view(c))
        .collect();
    json_ok(StatusCode::OK, &ChannelList { channels })
}

pub fn get(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    match state.channels.get(id) {
        Some(c) => json_ok(StatusCode::OK, &channel_view(&c)),
        None => Err(ApiError::channel_not_found(id)),
    }
}

/// `PUT /v1/channels/{id}`: 201 when created, 200 when updated.
pub async fn put(state: &AppState, id: &str, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "channel settings are at most 64 KiB"))?;
    let current = state.channels.get(id);
    let config = channel_config(&body, current.as_ref().map(|c| &c.config))?;
    let (rec, created) = state.journal.put_channel(id.to_string(), config).await?;
    let view = channel_view(&rec);
    state.channels.set(rec);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_ok(status, &view)
}

pub async fn delete(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    state.journal.delete_channel(id.to_string()).await?;
    state.channels.remove(id);
    no_content()
}
