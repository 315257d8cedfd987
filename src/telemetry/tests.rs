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
