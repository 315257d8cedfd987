//! Checks of the source layout that ARCHITECTURE.md promises: every file opens with a line
//! saying what it owns, no source file is over the size limit, the top-level modules import
//! each other without a cycle, and `core` (pure policy) imports nothing outside itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most lines a non-test source file may have.
const MAX_LINES: usize = 650;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// Every Rust file of the package and its helper crates (not `fuzz/`'s build output).
fn all_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [
        "src",
        "tests",
        "benches",
        "bench",
        "examples",
        "crates",
        "fuzz/fuzz_targets",
    ] {
        rust_files(&root().join(dir), &mut out);
    }
    out
}

fn shown(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_file_opens_with_what_it_owns() {
    let mut missing = Vec::new();
    for p in all_files() {
        let text = std::fs::read_to_string(&p).unwrap();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with("#!["))
            .unwrap_or("");
        if !first.starts_with("//!") {
            missing.push(shown(&p));
        }
    }
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line: {missing:?}"
    );
}

#[test]
fn no_source_file_is_over_the_limit() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let long: Vec<(String, usize)> = files
        .iter()
        .filter(|p| !p.ends_with("tests.rs"))
        .map(|p| {
            (
                shown(p),
                std::fs::read_to_string(p).unwrap().lines().count(),
            )
        })
        .filter(|(_, n)| *n > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

/// The top-level module a file under `src/` belongs to (`src/api/endpoints.rs` → `api`).
fn module_of(p: &Path) -> Option<String> {
    let rel = p.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The top-level modules a text names through `crate::…` paths (plain and `crate::{a, b::c}`).
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for part in text.split("crate::").skip(1) {
        if let Some(group) = part.strip_prefix('{') {
            // The group's top-level names: split at commas outside nested braces.
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '}' if depth == 0 => break,
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(ident(item.trim()));
            out.remove("");
        } else {
            let name = ident(part);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Module → the other top-level modules it uses (test code left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mods: BTreeSet<String> = files.iter().filter_map(|p| module_of(p)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &files {
        let Some(m) = module_of(p) else { continue };
        if p.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(p).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        // Code only: doc links and comments are not imports.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = g.entry(m.clone()).or_default();
        for u in uses(&text) {
            if u != m && mods.contains(&u) {
                entry.insert(u);
            }
        }
    }
    g
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let g = graph();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &g, &mut state, &mut stack) {
                panic!("import cycle: {}\n(graph: {g:#?})", c.join(" → "));
            }
        }
    }
}

#[test]
fn core_imports_nothing_outside_core() {
    let g = graph();
    let outside = g.get("core").cloned().unwrap_or_default();
    assert!(
        outside.is_empty(),
        "core (pure policy) must not import {outside:?}"
    );
}

/// `rust-version` really builds: it is at least the `rust-version` every dependency in the
/// lock file declares (redb 4.4 needs 1.90, for one). Read from `cargo metadata`, offline.
#[test]
fn rust_version_covers_every_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let packages = meta["packages"].as_array().unwrap();
    let ours = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["rust_version"].as_str())
            .unwrap_or_else(|| panic!("{name} declares no rust-version"))
            .to_string()
    };
    let msrv = ours("courier");
    assert_eq!(
        ours("courier-testkit"),
        msrv,
        "one rust-version for the workspace"
    );
    for p in packages {
        if let Some(rv) = p["rust_version"].as_str() {
            assert!(
                version(rv) <= version(&msrv),
                "{} {} needs Rust {rv}, above courier's rust-version {msrv}",
                p["name"],
                p["version"]
            );
        }
    }
}
