//! The operational routes of the admin listener: `/livez` (the process answers), `/readyz`
//! (it takes work; 503 once shutdown began) and `/metrics` (Prometheus text).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::AppState;
use super::http::{Resp, text};

pub fn livez() -> Resp {
    text(StatusCode::OK, "ok\n")
}

pub fn readyz(state: &AppState) -> Resp {
    if state.intake.is_stopping() {
        text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    } else {
        text(StatusCode::OK, "ready\n")
    }
}

pub fn metrics(state: &AppState) -> Resp {
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)).into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}
