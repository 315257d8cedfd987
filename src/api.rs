//! The producer/admin HTTP API (served on the Unix socket, on TCP and in-process offline): the
//! shared state, the step every request passes before routing (admin access: [`auth`]), the
//! request log line, and the router. The handlers live one file per resource: [`endpoints`],
//! [`events`] (with the NDJSON [`batch`]), [`dead_letters`], [`backfill`] (from the retained
//! log), [`channels`], [`errors`] (the
//! error catalogue), [`admin`] (livez/readyz/metrics), [`status`] (the one-screen summary);
//! [`http`] has the response and request helpers and [`views`] turns
//! records into the JSON shapes of [`crate::views`].

pub mod admin;
pub mod auth;
pub mod backfill;
pub mod batch;
pub mod channels;
pub mod dead_letters;
pub mod endpoints;
pub mod errors;
pub mod events;
pub mod http;
pub mod status;
pub mod views;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use ::http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use self::auth::{AdminGate, Via};
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
    /// Who may use the TCP listener (admin tokens, or `--listen-insecure`).
    pub gate: AdminGate,
    /// What only a running daemon knows (uptime, intake and delivery rates); `None` when the
    /// router is served without one (offline inspection), and the routes say so.
    pub activity: Option<Arc<crate::telemetry::Activity>>,
    /// Endpoints with series of their own in `/metrics`; the rest are summed under `_other`.
    pub metrics_max_endpoints: usize,
    /// The journal's file (its size is in `/v1/status`), when it is one.
    pub journal_file: Option<PathBuf>,
    /// The limits the daemon runs with (`--max-backlog`, `--max-journal-bytes`,
    /// `--retention`): shown in the endpoint views and the status. Offline inspection does
    /// not know the daemon's flags and has the defaults.
    pub limits: crate::store::Limits,
}

/// Entry point for every request that came `via` a listener: the [`before`] step, the route,
/// the log line. A body the route did not read is drained before the answer (see
/// `body::finish`).
pub async fn handle(
    state: Arc<AppState>,
    via: Via,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let mut req = req.map(Body::new);
    let answer = match before(&state, via, &req) {
        Ok(()) => route(&state, &mut req).await,
        Err(e) => Err(e),
    };
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            let mut r = error_response(&e);
            if e.status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    ::http::header::WWW_AUTHENTICATE,
                    ::http::HeaderValue::from_static("Bearer"),
                );
            }
            r
        }
    };
    let status = resp.status().as_u16();
    tracing::debug!(method = %req.method(), path = req.uri().path(), status, "api");
    body::finish(req).await;
    Ok(resp)
}

/// The step every request passes before it is routed: admin access by listener (see
/// [`auth`]): the socket passes, TCP needs a bearer token (probes and metrics excepted),
/// offline only reads pass.
fn before(state: &AppState, via: Via, req: &Request<Body>) -> Result<(), ApiError> {
    state.gate.check(via, req)
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
            Method::PATCH => endpoints::patch(state, id, req).await,
            Method::GET => endpoints::get(state, id).await,
            Method::DELETE => {
                let force = query.get("force").is_some_and(|v| v == "true" || v == "1");
                endpoints::delete(state, id, force).await
            }
            _ => Err(method_not_allowed("PUT, PATCH, GET, DELETE")),
        },
        ["v1", "endpoints", id, action @ ("pause" | "resume")] => match m {
            Method::POST => endpoints::set_paused(state, id, *action == "pause").await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "test"] => match m {
            Method::POST => endpoints::test(state, id).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "call"] => match m {
            Method::POST => endpoints::call(state, id, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "retry"] => match m {
            Method::POST => endpoints::retry(state, id).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "events"] => match m {
            Method::POST => events::enqueue(state, id, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "replay"] => match m {
            Method::POST => backfill::backfill(state, id, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "endpoints", id, "attempts"] => match m {
            Method::GET => {
                let limit = endpoints::attempts_limit(&query)?;
                endpoints::attempts(state, id, limit).await
            }
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "errors"] => match m {
            Method::GET => errors::list(),
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "errors", code] => match m {
            Method::GET => errors::get(code),
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
            Method::GET => dead_letters::list(state, &query).await,
            Method::DELETE => dead_letters::purge_matching(state, &query).await,
            _ => Err(method_not_allowed("GET, DELETE")),
        },
        ["v1", "dead-letters", "replay"] => match m {
            Method::POST => dead_letters::replay_matching(state, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["v1", "dead-letters", "export"] => match m {
            Method::GET => dead_letters::export(state, &query).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["v1", "dead-letters", "count"] => match m {
            Method::GET => dead_letters::count(state, &query).await,
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
        .advise("see the API summary in the README")),
    }
}
