//! The catalogue of every metric Courier exports: name, kind, help and labels, in one place.
//! Code that emits a metric names it by a constant of this module (a test checks that no
//! metric name is written anywhere else), and [`describe`] registers every help text with the
//! Prometheus exporter. Labels are bounded: each label's values are a fixed set of codes.
//!
//! (Named `telemetry` so that it does not shadow the `metrics` crate inside this one.)

/// What kind of metric a catalogue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Label keys, each with a bounded set of values (named in `help`).
    pub labels: &'static [&'static str],
}

pub const EVENTS_ACCEPTED: &str = "courier_events_accepted_total";
pub const DELIVERIES: &str = "courier_deliveries_total";
pub const ATTEMPTS: &str = "courier_attempts_total";
pub const DEAD_LETTERS: &str = "courier_dead_letters_total";
pub const COMMIT_FAILURES: &str = "courier_writer_commit_failures_total";
pub const INBOUND: &str = "courier_inbound_total";
pub const BACKLOG: &str = "courier_backlog";
pub const IN_FLIGHT: &str = "courier_in_flight";
pub const BATCH_OPS: &str = "courier_writer_batch_ops";
pub const COMMIT_SECONDS: &str = "courier_writer_commit_seconds";
pub const ATTEMPT_SECONDS: &str = "courier_attempt_seconds";

/// Label key of [`ATTEMPTS`] and [`INBOUND`].
pub const RESULT: &str = "result";
/// Label key of [`DEAD_LETTERS`].
pub const REASON: &str = "reason";

/// Every metric, in the order `GET /metrics` documents them.
pub const CATALOG: &[Metric] = &[
    Metric {
        name: EVENTS_ACCEPTED,
        kind: Kind::Counter,
        help: "Events made durable and acknowledged",
        labels: &[],
    },
    Metric {
        name: DELIVERIES,
        kind: Kind::Counter,
        help: "Events delivered (2xx)",
        labels: &[],
    },
    Metric {
        name: ATTEMPTS,
        kind: Kind::Counter,
        help: "Delivery attempts by result (success, failure)",
        labels: &[RESULT],
    },
    Metric {
        name: DEAD_LETTERS,
        kind: Kind::Counter,
        help: "Events dead-lettered by reason (MAX_RETRIES_EXCEEDED, ENDPOINT_DELETED, RECORD_CORRUPT)",
        labels: &[REASON],
    },
    Metric {
        name: COMMIT_FAILURES,
        kind: Kind::Counter,
        help: "Journal commits that failed",
        labels: &[],
    },
    Metric {
        name: INBOUND,
        kind: Kind::Counter,
        help: "Ingress requests by result (accepted, duplicate, rate_limited, hmac_mismatch, invalid, unknown_channel)",
        labels: &[RESULT],
    },
    Metric {
        name: BACKLOG,
        kind: Kind::Gauge,
        help: "Events accepted and not yet delivered or dead-lettered",
        labels: &[],
    },
    Metric {
        name: IN_FLIGHT,
        kind: Kind::Gauge,
        help: "Delivery attempts in flight",
        labels: &[],
    },
    Metric {
        name: BATCH_OPS,
        kind: Kind::Histogram,
        help: "Operations per journal commit (group commit size)",
        labels: &[],
    },
    Metric {
        name: COMMIT_SECONDS,
        kind: Kind::Histogram,
        help: "Journal commit latency",
        labels: &[],
    },
    Metric {
        name: ATTEMPT_SECONDS,
        kind: Kind::Histogram,
        help: "Delivery attempt latency",
        labels: &[],
    },
];

/// Registers every metric's help text with the installed recorder.
pub fn describe() {
    for m in CATALOG {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

#[cfg(test)]
mod tests;
