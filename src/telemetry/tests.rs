//! Checks of the metrics catalogue against the code: every metric emitted is named by a
//! catalogue constant, and every catalogued metric is emitted somewhere.

use super::*;
use std::collections::HashSet;

/// Every non-test source file under `src/` except this catalogue.
fn sources() -> Vec<crate::source_tree::Source> {
    crate::source_tree::sources()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("telemetry"))
        .collect()
}

#[test]
fn names_are_unique_and_prometheus_shaped() {
    let mut seen = HashSet::new();
    for m in CATALOG {
        assert!(seen.insert(m.name), "{} twice", m.name);
        assert!(m.name.starts_with("courier_"), "{}", m.name);
        assert!(
            m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{}",
            m.name
        );
        assert_eq!(
            m.kind == Kind::Counter,
            m.name.ends_with("_total"),
            "{}: counters and only counters end in _total",
            m.name
        );
        assert!(!m.help.is_empty());
    }
}

#[test]
fn no_metric_is_named_outside_the_catalogue() {
    for (file, text) in sources() {
        assert!(
            !text.contains("\"courier_"),
            "{file} writes a metric name literally; use a constant of crate::telemetry"
        );
        for mac in ["counter!(", "gauge!(", "histogram!("] {
            for part in text.split(mac).skip(1) {
                let arg = part.trim_start();
                let arg = arg.strip_prefix("crate::").unwrap_or(arg);
                assert!(
                    arg.starts_with("telemetry::"),
                    "{file}: {mac} with {:?}; name metrics by crate::telemetry constants",
                    arg.chars().take(40).collect::<String>()
                );
            }
        }
    }
}

#[test]
fn every_catalogued_metric_is_emitted() {
    let all: String = sources().into_iter().map(|(_, t)| t).collect();
    let consts = include_str!("../telemetry.rs");
    for m in CATALOG {
        // The constant that holds this name.
        let konst = consts
            .lines()
            .find(|l| l.starts_with("pub const ") && l.contains(&format!("\"{}\"", m.name)))
            .and_then(|l| l.strip_prefix("pub const "))
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("{} has no constant", m.name));
        assert!(
            all.contains(&format!("telemetry::{konst}")),
            "{} ({konst}) is catalogued but never emitted",
            m.name
        );
    }
}

#[test]
fn histograms_have_buckets_and_others_none() {
    for m in CATALOG {
        assert_eq!(
            m.kind == Kind::Histogram,
            !m.buckets.is_empty(),
            "{}",
            m.name
        );
        assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}", m.name);
    }
}

#[test]
fn rates_are_the_growth_over_about_the_last_minute() {
    let a = Activity::default();
    let t0 = a.started;
    a.accepted.store(120, Ordering::Relaxed);
    // Younger than a minute: since start.
    let (i, d) = a.rates_at(t0 + Duration::from_secs(60));
    assert!((i - 2.0).abs() < 1e-9 && d == 0.0, "{i} {d}");
    // Samples every 5 s; later, only the last minute counts.
    for k in 1..=24u64 {
        a.sample_at(t0 + Duration::from_secs(5 * k));
        if k == 12 {
            a.delivered.store(60, Ordering::Relaxed);
        }
    }
    a.accepted.store(180, Ordering::Relaxed);
    let (i, d) = a.rates_at(t0 + Duration::from_secs(125));
    // The base is the sample of t=60 s (120 accepted, 0 delivered), 65 s before.
    assert!((i - 60.0 / 65.0).abs() < 1e-9, "{i}");
    assert!((d - 60.0 / 65.0).abs() < 1e-9, "{d}");
    assert!(a.samples.lock().unwrap().len() <= 14);
}
