//! The operational routes of the admin listener: `/livez` (the process answers), `/readyz`
//! (it takes work: 503 with the code once shutdown began or while the journal cannot commit)
//! and `/metrics` (Prometheus text: the recorder's series, then the per-endpoint gauges,
//! computed here at scrape time from the scheduler's view, capped).

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::AppState;
use super::http::{Resp, error_response, text};
use crate::core::timefmt::now_ms;
use crate::error::ApiError;
use crate::scheduler::RuntimeView;
use crate::store::CommitHealth;
use crate::telemetry::{self, label_value};

/// A journal that failed to commit is tried again by `/readyz` (an empty durable commit) at
/// most this often, so that a daemon nobody sends work to while it is unready can turn ready.
const READY_PROBE_AFTER: Duration = Duration::from_secs(5);
/// How long `/readyz` waits for that commit.
const READY_PROBE_WAIT: Duration = Duration::from_secs(2);

pub fn livez() -> Resp {
    text(StatusCode::OK, "ok\n")
}

pub async fn readyz(state: &AppState) -> Resp {
    if state.intake.is_stopping() {
        return error_response(&ApiError::shutting_down());
    }
    let mut health = state.journal.commit_health();
    if let CommitHealth::Full { since_ms } | CommitHealth::Failing { since_ms } = health
        && now_ms().saturating_sub(since_ms) >= READY_PROBE_AFTER.as_millis() as u64
    {
        let _ = tokio::time::timeout(READY_PROBE_WAIT, state.journal.sync()).await;
        health = state.journal.commit_health();
    }
    match health {
        CommitHealth::Ok => text(StatusCode::OK, "ready\n"),
        CommitHealth::Full { .. } => error_response(&ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "STORAGE_FULL",
            "not ready: the journal's last commit failed, its disk is full",
        )),
        CommitHealth::Failing { .. } => error_response(&ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "STORAGE_UNAVAILABLE",
            "not ready: the journal's last commit failed",
        )),
    }
}

pub async fn metrics(state: &AppState) -> Resp {
    let mut body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    if state.activity.is_some() {
        let mut views = state.sched.inspect(None).await;
        views.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        endpoint_series(&mut body, &views, state.metrics_max_endpoints, now_ms());
    }
    let mut r = Response::new(Full::new(Bytes::from(body)).into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// One endpoint's gauges (or the sum of those past the cap).
#[derive(Debug, Default)]
struct Gauges {
    backlog: u64,
    /// Oldest waiting event's age, seconds.
    oldest_age: f64,
    /// Endpoints in each of [`telemetry::STATES`].
    states: [u64; 3],
}

impl Gauges {
    fn add(&mut self, v: &RuntimeView, now: u64) {
        self.backlog += v.backlog;
        if let Some(ms) = v.oldest_event_ms {
            let age = now.saturating_sub(ms) as f64 / 1000.0;
            self.oldest_age = self.oldest_age.max(age);
        }
        if let Some(i) = telemetry::STATES.iter().position(|s| *s == v.state) {
            self.states[i] += 1;
        }
    }
}

/// Appends the per-endpoint gauges of `views` (sorted by id): the first `cap` endpoints each
/// under their id, the rest summed under `_other`.
fn endpoint_series(out: &mut String, views: &[RuntimeView], cap: usize, now: u64) {
    let mut rows: Vec<(String, Gauges)> = Vec::with_capacity(views.len().min(cap) + 1);
    let mut other: Option<Gauges> = None;
    for (i, v) in views.iter().enumerate() {
        let g = if i < cap {
            rows.push((label_value(&v.id), Gauges::default()));
            rows.last_mut().map(|r| &mut r.1)
        } else {
            Some(other.get_or_insert_with(Gauges::default))
        };
        if let Some(g) = g {
            g.add(v, now);
        }
    }
    if let Some(g) = other {
        rows.push((telemetry::OTHER_ENDPOINTS.to_string(), g));
    }
    let family = |out: &mut String, name: &str| {
        let help = telemetry::metric(name).map_or("", |m| m.help);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    family(out, telemetry::ENDPOINT_BACKLOG);
    for (id, g) in &rows {
        let _ = writeln!(
            out,
            "{}{{{}=\"{id}\"}} {}",
            telemetry::ENDPOINT_BACKLOG,
            telemetry::ENDPOINT,
            g.backlog
        );
    }
    family(out, telemetry::ENDPOINT_OLDEST_AGE);
    for (id, g) in &rows {
        let _ = writeln!(
            out,
            "{}{{{}=\"{id}\"}} {}",
            telemetry::ENDPOINT_OLDEST_AGE,
            telemetry::ENDPOINT,
            g.oldest_age
        );
    }
    family(out, telemetry::ENDPOINT_STATE);
    for (id, g) in &rows {
        for (state, n) in telemetry::STATES.iter().zip(g.states) {
            let _ = writeln!(
                out,
                "{}{{{}=\"{id}\",{}=\"{state}\"}} {n}",
                telemetry::ENDPOINT_STATE,
                telemetry::ENDPOINT,
                telemetry::STATE,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, state: &'static str, backlog: u64, oldest: Option<u64>) -> RuntimeView {
        RuntimeView {
            id: id.into(),
            state,
            backlog,
            in_flight: 0,
            last_error: None,
            oldest_event_ms: oldest,
            next_attempt_ms: None,
        }
    }

    #[test]
    fn endpoints_past_the_cap_are_summed_under_other() {
        let views = [
            view("a", "active", 1, Some(9_000)),
            view("b", "down", 2, Some(5_000)),
            view("c", "paused", 3, Some(1_000)),
            view("d", "down", 4, None),
        ];
        let mut out = String::new();
        endpoint_series(&mut out, &views, 2, 10_000);
        assert!(
            out.contains("courier_endpoint_backlog{endpoint=\"a\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("courier_endpoint_backlog{endpoint=\"b\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("courier_endpoint_backlog{endpoint=\"_other\"} 7\n"),
            "{out}"
        );
        assert!(!out.contains("endpoint=\"c\""), "{out}");
        assert!(out.contains("courier_endpoint_oldest_event_age_seconds{endpoint=\"a\"} 1\n"));
        assert!(out.contains("courier_endpoint_oldest_event_age_seconds{endpoint=\"_other\"} 9\n"));
        assert!(out.contains("courier_endpoint_state{endpoint=\"b\",state=\"down\"} 1\n"));
        assert!(out.contains("courier_endpoint_state{endpoint=\"b\",state=\"active\"} 0\n"));
        assert!(out.contains("courier_endpoint_state{endpoint=\"_other\",state=\"down\"} 1\n"));
        assert!(out.contains("courier_endpoint_state{endpoint=\"_other\",state=\"paused\"} 1\n"));
        assert_eq!(out.matches("# TYPE").count(), 3);
        let mut none = String::new();
        endpoint_series(&mut none, &views, 0, 10_000);
        assert!(none.contains("courier_endpoint_backlog{endpoint=\"_other\"} 10\n"));
    }
}
