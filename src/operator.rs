//! Operator events (`--operator-endpoint ID`): Courier tells an endpoint of the operator's
//! about itself — `endpoint.down`, `endpoint.recovered`, `event.dead_lettered`,
//! `endpoint.backlog_full` — as JSON events enqueued through the one intake path and delivered
//! like any other.
//!
//! The scheduler hands them to an [`OperatorTx`] (a bounded channel, never awaited: a full
//! queue drops the event and counts it); one task, [`run`], turns them into events. Bounded by
//! design: nothing is ever said about the operator endpoint itself (a down operator endpoint
//! does not report itself, so no feedback loop); dead letters of one endpoint are coalesced —
//! the first is sent at once, those that follow within [`COALESCE`] are sent together as one
//! event with their `count` (and the first [`MAX_IDS`] event ids) when the window ends; a
//! backlog limit is told once per crossing (the journal's rules see to it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::core::model::ErrorInfo;
use crate::core::timefmt::rfc3339;
use crate::intake::{DEFAULT_CONTENT_TYPE, Intake, IntakeError, NewEvent};

/// Operator events queued at most (past it they are dropped and counted).
pub const QUEUE: usize = 1024;
/// Dead letters of an endpoint within this window after one was told are told together.
pub const COALESCE: Duration = Duration::from_secs(10);
/// Event ids listed in one coalesced `event.dead_lettered`.
pub const MAX_IDS: usize = 20;

pub const ENDPOINT_DOWN: &str = "endpoint.down";
pub const ENDPOINT_RECOVERED: &str = "endpoint.recovered";
pub const EVENT_DEAD_LETTERED: &str = "event.dead_lettered";
pub const ENDPOINT_BACKLOG_FULL: &str = "endpoint.backlog_full";

/// Something an operator wants to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorEvent {
    Down {
        endpoint: Arc<str>,
        at_ms: u64,
        last_error: Option<ErrorInfo>,
    },
    Recovered {
        endpoint: Arc<str>,
        at_ms: u64,
    },
    DeadLettered {
        endpoint: Arc<str>,
        at_ms: u64,
        event_id: String,
        reason: String,
        last_error: Option<ErrorInfo>,
    },
    BacklogFull {
        endpoint: Arc<str>,
        at_ms: u64,
        limit: u64,
    },
}

impl OperatorEvent {
    /// The endpoint the event is about.
    pub fn endpoint(&self) -> &str {
        match self {
            OperatorEvent::Down { endpoint, .. }
            | OperatorEvent::Recovered { endpoint, .. }
            | OperatorEvent::DeadLettered { endpoint, .. }
            | OperatorEvent::BacklogFull { endpoint, .. } => endpoint,
        }
    }
}

/// Where the scheduler sends operator events (cheap to clone).
#[derive(Debug, Clone)]
pub struct OperatorTx {
    tx: mpsc::Sender<OperatorEvent>,
    /// The operator endpoint: nothing about it is sent.
    endpoint: Arc<str>,
}

impl OperatorTx {
    /// Queues an event without waiting; one about the operator endpoint itself is ignored, and
    /// one that finds the queue full is dropped and counted.
    pub fn emit(&self, ev: OperatorEvent) {
        if ev.endpoint() == &*self.endpoint {
            return;
        }
        if self.tx.try_send(ev).is_err() {
            metrics::counter!(crate::telemetry::OPERATOR_DROPPED).increment(1);
        }
    }
}

/// The channel between the scheduler and [`run`], for operator endpoint `endpoint`.
pub fn channel(endpoint: &str) -> (OperatorTx, mpsc::Receiver<OperatorEvent>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        OperatorTx {
            tx,
            endpoint: Arc::from(endpoint),
        },
        rx,
    )
}

/// Dead letters of one endpoint held back during its window.
#[derive(Debug)]
struct Held {
    count: u64,
    event_ids: Vec<String>,
    reason: String,
    last_error: Option<ErrorInfo>,
    at_ms: u64,
}

/// One endpoint's coalescing window: it ends at `until`; what arrived meanwhile is `held`.
#[derive(Debug)]
struct Window {
    until: Instant,
    held: Option<Held>,
}

/// Coalesces dead letters by endpoint: what [`run`] sends, decided without I/O.
#[derive(Debug, Default)]
pub struct Coalescer {
    windows: HashMap<Arc<str>, Window>,
}

impl Coalescer {
    /// Takes an event; answers what to send now (an event's type and body), if anything.
    pub fn take(&mut self, now: Instant, ev: OperatorEvent) -> Option<(&'static str, Value)> {
        let OperatorEvent::DeadLettered {
            endpoint,
            at_ms,
            event_id,
            reason,
            last_error,
        } = ev
        else {
            return Some(body(&ev));
        };
        match self.windows.get_mut(&endpoint) {
            Some(w) if now < w.until => {
                let h = w.held.get_or_insert_with(|| Held {
                    count: 0,
                    event_ids: Vec::new(),
                    reason: reason.clone(),
                    last_error: None,
                    at_ms,
                });
                h.count += 1;
                if h.event_ids.len() < MAX_IDS {
                    h.event_ids.push(event_id);
                }
                h.reason = reason;
                h.last_error = last_error;
                h.at_ms = at_ms;
                None
            }
            _ => {
                let held = Held {
                    count: 1,
                    event_ids: vec![event_id],
                    reason,
                    last_error,
                    at_ms,
                };
                let out = dead_lettered(&endpoint, &held);
                self.windows.insert(
                    endpoint,
                    Window {
                        until: now + COALESCE,
                        held: None,
                    },
                );
                Some(out)
            }
        }
    }

    /// When the next window ends.
    pub fn next_due(&self) -> Option<Instant> {
        self.windows.values().map(|w| w.until).min()
    }

    /// Ends the windows due by `now`: what they held is sent (and opens a new window); a window
    /// that held nothing is forgotten.
    pub fn due(&mut self, now: Instant) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        self.windows.retain(|endpoint, w| {
            if w.until > now {
                return true;
            }
            match w.held.take() {
                Some(h) => {
                    out.push(dead_lettered(endpoint, &h));
                    w.until = now + COALESCE;
                    true
                }
                None => false,
            }
        });
        out
    }
}

fn error_json(e: &Option<ErrorInfo>) -> Value {
    match e {
        Some(e) => json!({
            "code": e.code,
            "message": e.message,
            "status": e.status,
            "hint": crate::codes::lookup(&e.code).map(|c| c.fix),
        }),
        None => Value::Null,
    }
}

fn dead_lettered(endpoint: &str, h: &Held) -> (&'static str, Value) {
    (
        EVENT_DEAD_LETTERED,
        json!({
            "type": EVENT_DEAD_LETTERED,
            "endpoint": endpoint,
            "at": rfc3339(h.at_ms),
            "count": h.count,
            "event_ids": h.event_ids,
            "reason": h.reason,
            "last_error": error_json(&h.last_error),
        }),
    )
}

/// The event type and JSON body of an event that is not coalesced.
fn body(ev: &OperatorEvent) -> (&'static str, Value) {
    match ev {
        OperatorEvent::Down {
            endpoint,
            at_ms,
            last_error,
        } => (
            ENDPOINT_DOWN,
            json!({"type": ENDPOINT_DOWN, "endpoint": &**endpoint, "at": rfc3339(*at_ms),
                   "last_error": error_json(last_error)}),
        ),
        OperatorEvent::Recovered { endpoint, at_ms } => (
            ENDPOINT_RECOVERED,
            json!({"type": ENDPOINT_RECOVERED, "endpoint": &**endpoint, "at": rfc3339(*at_ms)}),
        ),
        OperatorEvent::BacklogFull {
            endpoint,
            at_ms,
            limit,
        } => (
            ENDPOINT_BACKLOG_FULL,
            json!({"type": ENDPOINT_BACKLOG_FULL, "endpoint": &**endpoint, "at": rfc3339(*at_ms),
                   "limit": limit}),
        ),
        OperatorEvent::DeadLettered {
            endpoint,
            at_ms,
            event_id,
            reason,
            last_error,
        } => dead_lettered(
            endpoint,
            &Held {
                count: 1,
                event_ids: vec![event_id.clone()],
                reason: reason.clone(),
                last_error: last_error.clone(),
                at_ms: *at_ms,
            },
        ),
    }
}

/// Turns operator events into events of `endpoint`, through the intake, until the channel
/// closes (the scheduler stopped).
pub async fn run(mut rx: mpsc::Receiver<OperatorEvent>, intake: Arc<Intake>, endpoint: String) {
    let mut c = Coalescer::default();
    loop {
        let due = c.next_due();
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if let Some(out) = c.take(Instant::now(), ev) {
                        send(&intake, &endpoint, out).await;
                    }
                }
                None => return,
            },
            _ = sleep_until(due) => {
                for out in c.due(Instant::now()) {
                    send(&intake, &endpoint, out).await;
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn send(intake: &Intake, endpoint: &str, (kind, body): (&'static str, Value)) {
    let ev = NewEvent {
        endpoint: endpoint.to_string(),
        content_type: DEFAULT_CONTENT_TYPE.into(),
        event_type: Some(kind.into()),
        idempotency_key: None,
        body: Bytes::from(body.to_string()),
    };
    match intake.enqueue(ev).await {
        Ok(_) => {}
        Err(IntakeError::Store(e)) => {
            tracing::warn!(operator_endpoint = %endpoint, event_type = kind, error = %e, "operator event not accepted");
        }
        Err(IntakeError::Record(e)) => {
            tracing::warn!(operator_endpoint = %endpoint, event_type = kind, error = %e, "operator event not encodable");
        }
    }
}

#[cfg(test)]
mod tests;
