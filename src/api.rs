//! The producer/admin HTTP API (served on the Unix socket and on TCP): the shared state, the
//! step every request passes before routing (where admin authentication will go), the request
//! log line, and the router. The handlers live one file per resource: [`endpoints`],
//! [`events`] (with the NDJSON [`batch`]), [`dead_letters`], [`channels`], [`admin`]
//! (livez/readyz/metrics), [`status`] (the one-screen summary); [`http`] has the response and request helpers and [`views`] turns
//! records into the JSON shapes of [`crate::views`].

pub mod admin;
pub mod batch;
pub mod channels;
pub mod dead_letters;
pub mod endpoints;
pub mod events;
pub mod http;
pub mod status;
pub mod views;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use ::http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use self::http::{Resp, check_channel_id, error_response, method_not_allowed, parse_query};
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::ingress::Channels;
use crate::intake::Intake;
use crate::scheduler::SchedulerHandle;
use crate::store::Journal;

pub use self::http::ADMIN_BODY_MAX;
pub use batch::{BATCH_MAX_BYTES, BATCH_MAX_EVENTS, parse_batch};

/// Shared state of the API handlers.
pub struct AppState {
    pub journal: Arc<dyn Journal>,
    /// Where events enter (and the stopping flag: set at shutdown, intake answers 503
    /// `SHUTTING_DOWN` and `/readyz` 503).
    pub intake: Arc<Intake>,
    pub sched: SchedulerHandle,
    pub max_body_bytes: usize,
    pub allow_http: bool,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Ingress channels and their rate-limit buckets (the ingress reads them; PUT and DELETE
    /// here update them).
    pub channels: Arc<Channels>,
    /// What only a running daemon knows (uptime, intake and delivery rates); `None` when the
    /// router is served without one (offline inspection), and the routes say so.
    pub activity: Option<Arc<crate::telemetry::Activity>>,
    /// Endpoints with series of their own in `/metrics`; the rest are summed under `_other`.
    pub metrics_max_endpoints: usize,
    /// The journal's file (its size is in `/v1/status`), when it is one.
    pub journal_file: Option<PathBuf>,
}

/// Entry point for every request: the [`before`] step, the route, the log line. A body the
/// route did not read is drained before the answer (see `body::finish`).
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let mut req = req.map(Body::new);
    let answer = match before(&state, &req) {
        Ok(()) => route(&state, &mut req).await,
        Err(e) => Err(e),
    };
    let resp = match answer {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let status = resp.status().as_u16();
    tracing::debug!(method = %req.method(), path = req.uri().path(), status, "api");
    body::finish(req).await;
    Ok(resp)
}

/// The step every request passes before it is routed: where admin authentication (bearer
/// tokens, scopes) will be checked, refusing a request with its error. Today every request
/// passes.
fn before(_state: &AppState, _req: &Request<Body>) -> Result<(), ApiError> {
    Ok(())
}

async fn route(state: &AppState, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = req.method().clone();
    match segs.as_slice() {
        ["livez"] => Ok(admin::livez()),
        ["readyz"] => Ok(admin::readyz(state).await),
        ["metrics"] => Ok(admin::metrics(state).await),
        ["v1", "status"] => match m {
            Method::GET => status::status(state).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "endpoints"] => match m {
            Method::GET => endpoints::list(state).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "endpoints", id] => match m {
            Method::PUT => endpoints::put(state, id, req).await,
            Method::GET => endpoints::get(state, id).await,
            Method::DELETE => {
                let force = query.get("force").is_some_and(|v| v == "true" || v == "1");
                endpoints::delete(state, id, force).await
            }
            _ => Err(method_not_allowed("PUT, GET, DELETE")),
        },
        ["v1", "endpoints", id, action @ ("pause" | "resume")] => match m {
            Method::POST => endpoints::set_paused(state, id, *action == "pause").await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "events"] => match m {
            Method::POST => events::enqueue(state, id, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "attempts"] => match m {
            Method::GET => {
                let limit = endpoints::attempts_limit(&query)?;
                endpoints::attempts(state, id, limit).await
            }
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "events", "batch"] => match m {
            Method::POST => events::enqueue_batch(state, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "channels"] => match m {
            Method::GET => channels::list(state),
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "channels", id] => {
            check_channel_id(id)?;
            match m {
                Method::PUT => channels::put(state, id, req).await,
                Method::GET => channels::get(state, id),
                Method::DELETE => channels::delete(state, id).await,
                _ => Err(method_not_allowed("PUT, GET, DELETE")),
            }
        }
        ["v1", "dead-letters"] => match m {
            Method::GET => {
                dead_letters::list(state, query.get("endpoint").map(String::as_str)).await
            }
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "dead-letters", id] => match m {
            Method::GET => dead_letters::get(state, id).await,
            Method::DELETE => dead_letters::purge(state, id).await,
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        ["v1", "dead-letters", id, "replay"] => match m {
            Method::POST => dead_letters::replay(state, id).await,
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
