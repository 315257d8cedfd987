//! What the scheduler tells the outside as it works: its metric handles (taken once), the log
//! lines and operator events of health changes, the set-aside of a corrupt record, and the
//! oldest waiting event of endpoints whose events are not in memory.

use super::*;

/// The scheduler's metric handles, taken once: per event it only increments them.
pub(super) struct Meters {
    pub(super) deliveries: metrics::Counter,
    pub(super) attempts_ok: metrics::Counter,
    pub(super) attempt_duration: metrics::Histogram,
    pub(super) delivery_latency: metrics::Histogram,
    pub(super) in_flight: metrics::Gauge,
    pub(super) backlog: metrics::Gauge,
}

impl Meters {
    pub(super) fn new() -> Self {
        Self {
            deliveries: metrics::counter!(crate::telemetry::DELIVERIES),
            attempts_ok: metrics::counter!(crate::telemetry::ATTEMPTS, crate::telemetry::CODE => crate::telemetry::OK),
            attempt_duration: metrics::histogram!(crate::telemetry::ATTEMPT_DURATION),
            delivery_latency: metrics::histogram!(crate::telemetry::DELIVERY_LATENCY),
            in_flight: metrics::gauge!(crate::telemetry::IN_FLIGHT),
            backlog: metrics::gauge!(crate::telemetry::BACKLOG),
        }
    }
}

/// Logs a change of health, and tells the operator endpoint.
pub(super) fn log_health(
    p: &Part,
    down: Option<bool>,
    operator: Option<&crate::operator::OperatorTx>,
) {
    let id = &p.id;
    let ev = match down {
        Some(true) => {
            tracing::warn!(endpoint = %id, "endpoint down; holding its backlog and probing");
            OperatorEvent::Down {
                endpoint: id.clone(),
                at_ms: now_ms(),
                last_error: p.last_error.clone(),
            }
        }
        Some(false) => {
            tracing::info!(endpoint = %id, "endpoint answered; active again");
            OperatorEvent::Recovered {
                endpoint: id.clone(),
                at_ms: now_ms(),
            }
        }
        None => return,
    };
    if let Some(op) = operator {
        op.emit(ev);
    }
}

/// Fills in the oldest waiting event's time of the views whose oldest event is not in memory:
/// the first pending row of each (one short read per endpoint).
pub(super) async fn fill_oldest(journal: &dyn Journal, views: &mut [RuntimeView]) {
    for v in views
        .iter_mut()
        .filter(|v| v.backlog > 0 && v.oldest_event_ms.is_none())
    {
        if let Ok(l) = journal.load_events(&v.id, 0, 1).await {
            v.oldest_event_ms = l.events.first().map(|e| e.meta.enqueued_at_ms);
        }
    }
}

/// A pending record failed its check: it is set aside as a dead letter (`RECORD_CORRUPT`) and
/// the partition goes on with the next event. Said once: in the log, the metrics and the
/// endpoint's `last_error` (the record is never read again).
pub(super) fn quarantine(
    p: &mut Part,
    journal: &dyn Journal,
    seq: u64,
    why: String,
    operator: Option<&crate::operator::OperatorTx>,
) {
    use crate::store::RECORD_CORRUPT;
    tracing::error!(endpoint = %p.id, seq, error = %why,
        "corrupt event record set aside as a dead letter (RECORD_CORRUPT); delivery goes on with the next event");
    p.last_error = Some(ErrorInfo {
        code: RECORD_CORRUPT.into(),
        message: format!(
            "the stored record of event seq {seq} is corrupt ({why}); it was set aside as a dead letter"
        ),
        status: None,
        at_ms: now_ms(),
    });
    if let Some(op) = operator {
        op.emit(OperatorEvent::DeadLettered {
            endpoint: p.id.clone(),
            at_ms: now_ms(),
            event_id: format!("(seq {seq}, record corrupt)"),
            reason: RECORD_CORRUPT.into(),
            last_error: p.last_error.clone(),
        });
    }
    journal.quarantine(p.id.clone(), seq, why);
}
