//! Checks of the metrics catalogue against the code: every metric emitted is named by a
//! catalogue constant, and every catalogued metric is emitted somewhere.

use super::*;
use std::collections::HashSet;

/// Every non-test source file under `src/` except this catalogue, read at test time.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src/ is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let name = p.strip_prefix(&root).ok()?.to_string_lossy().to_string();
            if name.starts_with("telemetry") || name.ends_with("tests.rs") {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            Some((name, text.split("#[cfg(test)]").next()?.to_string()))
        })
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
