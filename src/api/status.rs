//! `GET /v1/status` (`courier status`): the daemon on one screen — version, uptime, intake and
//! delivery rates, backlog, endpoints by state, dead letters, the oldest waiting event, the
//! journal's size and whether it commits, the retention and the bytes of events it holds
//! against `--max-journal-bytes`. Served by a running daemon from its scheduler's view;
//! served without one (offline inspection: no [`AppState::activity`]) from the journal alone,
//! with the runtime figures `null` and `"running": false`.

use http::StatusCode;

use super::AppState;
use super::http::{Resp, json_ok};
use crate::core::timefmt::{now_ms, rfc3339};
use crate::error::ApiError;
use crate::telemetry::RATE_WINDOW;
use crate::views::{EndpointCounts, OldestWaiting, StatusView};

/// One endpoint as the status counts it.
struct Entry {
    id: String,
    state: &'static str,
    backlog: u64,
    oldest_ms: Option<u64>,
}

pub async fn status(state: &AppState) -> Result<Resp, ApiError> {
    let entries = match &state.activity {
        Some(_) => state
            .sched
            .inspect(None)
            .await
            .into_iter()
            .map(|v| Entry {
                id: v.id,
                state: v.state,
                backlog: v.backlog,
                oldest_ms: v.oldest_event_ms,
            })
            .collect(),
        None => from_journal(state).await?,
    };
    let mut endpoints = EndpointCounts::default();
    let mut backlog = 0;
    let mut oldest: Option<(u64, &str)> = None;
    for e in &entries {
        endpoints.total += 1;
        match e.state {
            "paused" => endpoints.paused += 1,
            "down" => endpoints.down += 1,
            _ => endpoints.active += 1,
        }
        backlog += e.backlog;
        if let Some(ms) = e.oldest_ms
            && oldest.is_none_or(|(o, _)| ms < o)
        {
            oldest = Some((ms, &e.id));
        }
    }
    let dead_letters = super::dead_letters::count_matching(
        state.journal.as_ref(),
        &crate::core::dead_filter::DeadFilter::default(),
    )
    .await?;
    let now = now_ms();
    let (intake, delivery) = match &state.activity {
        Some(a) => {
            let (i, d) = a.rates();
            (Some(round2(i)), Some(round2(d)))
        }
        None => (None, None),
    };
    let running = state.activity.is_some();
    let view = StatusView {
        version: env!("CARGO_PKG_VERSION").to_string(),
        running,
        uptime_secs: state.activity.as_ref().map(|a| a.uptime().as_secs()),
        intake_per_sec: intake,
        delivery_per_sec: delivery,
        rate_window_secs: RATE_WINDOW.as_secs(),
        backlog,
        endpoints,
        dead_letters,
        oldest_waiting: oldest.map(|(ms, id)| OldestWaiting {
            endpoint: id.to_string(),
            enqueued_at: rfc3339(ms),
            age_secs: now.saturating_sub(ms) / 1000,
        }),
        journal_bytes: state.journal_file.as_deref().and_then(journal_bytes),
        storage: state
            .journal
            .commit_health()
            .code()
            .unwrap_or("ok")
            .to_string(),
        // The daemon's flags: known only to a running daemon.
        retention: running.then(|| {
            crate::core::duration::format(std::time::Duration::from_millis(
                state.limits.retention_ms,
            ))
        }),
        held_bytes: Some(state.journal.held_bytes()),
        max_journal_bytes: state.limits.max_journal_bytes.filter(|_| running),
    };
    json_ok(StatusCode::OK, &view)
}

/// The endpoints as the journal has them (no scheduler): state and backlog from their
/// records, the oldest waiting event from the first pending row of each.
async fn from_journal(state: &AppState) -> Result<Vec<Entry>, ApiError> {
    let mut out = Vec::new();
    for r in state.journal.endpoints().await? {
        let oldest_ms = if r.pending > 0 {
            state
                .journal
                .load_events(&r.id, 0, 1)
                .await
                .ok()
                .and_then(|l| l.events.first().map(|e| e.meta.enqueued_at_ms))
        } else {
            None
        };
        out.push(Entry {
            state: if r.paused {
                "paused"
            } else if r.down {
                "down"
            } else {
                "active"
            },
            backlog: r.pending,
            oldest_ms,
            id: r.id,
        });
    }
    Ok(out)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the journal takes: the database file and the segment files beside it.
fn journal_bytes(db: &std::path::Path) -> Option<u64> {
    let mut n = std::fs::metadata(db).ok()?.len();
    let dir = db.parent()?.join(crate::store::redb::segments::SEGMENT_DIR);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            n += e.metadata().map_or(0, |m| m.len());
        }
    }
    Some(n)
}
