//! The catalogue of every metric Courier exports: name, kind, help, labels and (histograms)
//! buckets, in one place. Code that emits a metric names it by a constant of this module (a
//! test checks that no metric name is written anywhere else), and [`describe`] registers every
//! help text with the Prometheus exporter. Labels are bounded: each label's values are a fixed
//! set of codes, except `endpoint`, whose series are capped (`--metrics-max-endpoints`, the
//! rest summed under [`OTHER_ENDPOINTS`]) and computed at scrape time, never per event.
//!
//! Also here: [`Activity`], the two counts behind `courier status`'s rates (events accepted
//! and delivered, sampled every few seconds into a one-minute window).
//!
//! (Named `telemetry` so that it does not shadow the `metrics` crate inside this one.)

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Upper bounds of a histogram's buckets (empty for counters and gauges).
    pub buckets: &'static [f64],
}

pub const EVENTS_ACCEPTED: &str = "courier_events_accepted_total";
pub const DELIVERIES: &str = "courier_deliveries_total";
pub const ATTEMPTS: &str = "courier_attempts_total";
pub const DEAD_LETTERS: &str = "courier_dead_letters_total";
pub const COMMIT_FAILURES: &str = "courier_writer_commit_failures_total";
pub const INGRESS_REQUESTS: &str = "courier_ingress_requests_total";
pub const OPERATOR_DROPPED: &str = "courier_operator_events_dropped_total";
pub const BACKLOG: &str = "courier_backlog";
pub const IN_FLIGHT: &str = "courier_in_flight";
pub const ENDPOINT_BACKLOG: &str = "courier_endpoint_backlog";
pub const ENDPOINT_OLDEST_AGE: &str = "courier_endpoint_oldest_event_age_seconds";
pub const ENDPOINT_STATE: &str = "courier_endpoint_state";
pub const DELIVERY_LATENCY: &str = "courier_delivery_latency_seconds";
pub const ATTEMPT_DURATION: &str = "courier_attempt_duration_seconds";
pub const COMMIT_BATCH: &str = "courier_commit_batch_events";
pub const COMMIT_DURATION: &str = "courier_commit_duration_seconds";
pub const RETENTION_REMOVED: &str = "courier_retention_removed_total";
pub const RETENTION_REMOVED_BYTES: &str = "courier_retention_removed_bytes_total";

/// Label key of [`ATTEMPTS`] and [`INGRESS_REQUESTS`]: a stable code of [`crate::codes`], or
/// [`OK`] for success.
pub const CODE: &str = "code";
/// Label key of [`DEAD_LETTERS`].
pub const REASON: &str = "reason";
/// Label key of the per-endpoint gauges.
pub const ENDPOINT: &str = "endpoint";
/// Label key of [`ENDPOINT_STATE`]: one of [`STATES`].
pub const STATE: &str = "state";

/// The `code` of a successful attempt or an accepted ingress request.
pub const OK: &str = "OK";
/// The `code` of an ingress request whose `Idempotency-Key` was seen before (answered 200).
pub const DUPLICATE: &str = "DUPLICATE";
/// The `endpoint` under which the endpoints past the cap are summed.
pub const OTHER_ENDPOINTS: &str = "_other";
/// Every value of [`STATE`].
pub const STATES: [&str; 3] = ["active", "paused", "down"];

/// Seconds, from 1 ms to 5 min: attempts are bounded by their timeout, deliveries may wait
/// through retries.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 1800.0, 3600.0,
];
const ATTEMPT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Commits take one fsync (a few ms on SSDs, tens on network disks).
const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Events (and attempt results) per commit, up to the writer's batch limit.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
];

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        help,
        labels,
        buckets: &[],
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        help,
        labels,
        buckets: &[],
    }
}

const fn histogram(name: &'static str, help: &'static str, buckets: &'static [f64]) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        help,
        labels: &[],
        buckets,
    }
}

/// Every metric, in the order `GET /metrics` documents them.
pub const CATALOG: &[Metric] = &[
    counter(EVENTS_ACCEPTED, "Events made durable and acknowledged", &[]),
    counter(DELIVERIES, "Events delivered (2xx)", &[]),
    counter(
        ATTEMPTS,
        "Delivery attempts by code (OK for a 2xx, else the failure's stable code: HTTP_5XX, ETIMEDOUT, ...)",
        &[CODE],
    ),
    counter(
        DEAD_LETTERS,
        "Events dead-lettered by reason (MAX_RETRIES_EXCEEDED, ENDPOINT_DELETED, RECORD_CORRUPT, a destination's reason)",
        &[REASON],
    ),
    counter(COMMIT_FAILURES, "Journal commits that failed", &[]),
    counter(
        INGRESS_REQUESTS,
        "Inbound webhook requests by code (OK, DUPLICATE, or the refusal's stable code)",
        &[CODE],
    ),
    counter(
        OPERATOR_DROPPED,
        "Operator events not sent because their queue was full",
        &[],
    ),
    gauge(
        BACKLOG,
        "Events accepted and not yet delivered or dead-lettered",
        &[],
    ),
    gauge(IN_FLIGHT, "Delivery attempts in flight", &[]),
    gauge(
        ENDPOINT_BACKLOG,
        "Events waiting per endpoint (capped set of endpoints, the rest summed under _other)",
        &[ENDPOINT],
    ),
    gauge(
        ENDPOINT_OLDEST_AGE,
        "Age of the oldest waiting event per endpoint (0 when none; _other: the oldest of the rest)",
        &[ENDPOINT],
    ),
    gauge(
        ENDPOINT_STATE,
        "1 for the endpoint's state (active, paused, down), 0 for the others; _other counts endpoints",
        &[ENDPOINT, STATE],
    ),
    histogram(
        DELIVERY_LATENCY,
        "From acceptance to the 2xx that delivered the event",
        LATENCY_BUCKETS,
    ),
    histogram(
        ATTEMPT_DURATION,
        "Duration of each delivery attempt",
        ATTEMPT_BUCKETS,
    ),
    histogram(
        COMMIT_BATCH,
        "Events and attempt results per journal commit (group commit size)",
        BATCH_BUCKETS,
    ),
    histogram(COMMIT_DURATION, "Journal commit latency", COMMIT_BUCKETS),
    counter(
        RETENTION_REMOVED,
        "Delivered events removed by retention (--retention, --max-journal-bytes)",
        &[],
    ),
    counter(
        RETENTION_REMOVED_BYTES,
        "Bytes of event records removed by retention",
        &[],
    ),
];

/// The catalogue entry of `name`.
pub fn metric(name: &str) -> Option<&'static Metric> {
    CATALOG.iter().find(|m| m.name == name)
}

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

/// The exporter, with every histogram's buckets set (without them it would export summaries).
pub fn exporter() -> metrics_exporter_prometheus::PrometheusBuilder {
    let mut b = metrics_exporter_prometheus::PrometheusBuilder::new();
    for m in CATALOG.iter().filter(|m| m.kind == Kind::Histogram) {
        let name = metrics_exporter_prometheus::Matcher::Full(m.name.to_string());
        // Only an empty bucket list is refused, and none is.
        b = match b.set_buckets_for_metric(name, m.buckets) {
            Ok(b) => b,
            Err(_) => metrics_exporter_prometheus::PrometheusBuilder::new(),
        };
    }
    b
}

/// A Prometheus label value, escaped.
pub fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// How long the window of [`Activity::rates`] is.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How often the daemon samples [`Activity`].
pub const RATE_SAMPLE: Duration = Duration::from_secs(5);

/// Events accepted and delivered since start (one relaxed increment each, by the scheduler),
/// and samples of both for the rates `courier status` shows.
#[derive(Debug)]
pub struct Activity {
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    started: Instant,
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

impl Default for Activity {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            started: now,
            samples: Mutex::new(VecDeque::from([(now, 0, 0)])),
        }
    }
}

impl Activity {
    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Takes a sample (every [`RATE_SAMPLE`]), keeping those of the last [`RATE_WINDOW`].
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, now: Instant) {
        let a = self.accepted.load(Ordering::Relaxed);
        let d = self.delivered.load(Ordering::Relaxed);
        let Ok(mut s) = self.samples.lock() else {
            return;
        };
        s.push_back((now, a, d));
        // Keep the newest sample at least a window old, as the base of the rates.
        while s.len() > 2
            && s.get(1)
                .is_some_and(|(t, ..)| now.duration_since(*t) >= RATE_WINDOW)
        {
            s.pop_front();
        }
    }

    /// Events accepted and delivered per second: the growth of the counts since the oldest
    /// sample kept (about a minute ago; since start when younger), over the time since then.
    pub fn rates(&self) -> (f64, f64) {
        self.rates_at(Instant::now())
    }

    fn rates_at(&self, now: Instant) -> (f64, f64) {
        let a = self.accepted.load(Ordering::Relaxed);
        let d = self.delivered.load(Ordering::Relaxed);
        let base = self
            .samples
            .lock()
            .ok()
            .and_then(|s| s.front().copied())
            .unwrap_or((self.started, 0, 0));
        let secs = now.duration_since(base.0).as_secs_f64();
        if secs < 0.001 {
            return (0.0, 0.0);
        }
        (
            a.saturating_sub(base.1) as f64 / secs,
            d.saturating_sub(base.2) as f64 / secs,
        )
    }
}

#[cfg(test)]
mod tests;
