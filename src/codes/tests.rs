//! Checks of the catalogue against the code that produces the codes and the README that lists
//! them: a code produced but not catalogued, or documented but not produced, fails here.

use super::*;
use std::collections::HashSet;

use crate::source_tree::Source;

/// Every source file under `src/` but the catalogue itself, split into the daemon's files and
/// the command line's (`cli`, `client`).
fn all_sources() -> (Vec<Source>, Vec<Source>) {
    crate::source_tree::sources()
        .into_iter()
        .filter(|(name, _)| name != "codes.rs" && !name.starts_with("codes/"))
        .partition(|(name, _)| {
            !["cli.rs", "cli/", "client.rs", "client/"]
                .iter()
                .any(|c| name == *c || name.starts_with(c))
        })
}

/// The daemon's sources.
fn sources() -> Vec<Source> {
    all_sources().0
}

fn is_code(s: &str) -> bool {
    s.len() >= 4
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Code-like words of source text: UPPER_SNAKE with an underscore, or one of the catalogue's
/// few codes without one (so that `"POST"` and `"GET"` are not taken for codes).
fn looks_like_a_code(s: &str) -> bool {
    is_code(s)
        && !["COURIER_", "CARGO_", "RUST_"]
            .iter()
            .any(|p| s.starts_with(p))
        && (s.contains('_') || CATALOG.iter().any(|c| c.code == s))
}

/// Every `"UPPER_SNAKE"` string literal of a text (a quote, the word, a quote).
fn quoted_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('"') {
        let after = &rest[i + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if after[end..].starts_with('"') && looks_like_a_code(&after[..end]) {
            out.push(after[..end].to_string());
            rest = &after[end + 1..];
        } else {
            rest = after;
        }
    }
    out
}

#[test]
fn entries_are_well_formed_and_unique() {
    let mut seen = HashSet::new();
    for c in CATALOG {
        assert!(seen.insert(c.code), "{} twice", c.code);
        assert!(is_code(c.code), "{}", c.code);
        assert!(!c.meaning.is_empty() && !c.fix.is_empty(), "{}", c.code);
        let answers = matches!(c.kind, Kind::Api | Kind::Ingress);
        assert_eq!(answers, c.http_status.is_some(), "{}", c.code);
    }
}

#[test]
fn every_code_the_daemon_produces_is_catalogued() {
    for (file, text) in sources() {
        for code in quoted_codes(&text) {
            assert!(
                lookup(&code).is_some(),
                "{file} produces {code:?}, which the catalogue (src/codes.rs) does not list"
            );
        }
    }
    for (file, cli) in all_sources().1 {
        for part in cli.split("code: \"").skip(1) {
            let code = part.split('"').next().unwrap_or("");
            assert_eq!(
                lookup(code).map(|c| c.kind),
                Some(Kind::Client),
                "{file} {code}"
            );
        }
    }
    use crate::core::retry::FailureKind as F;
    for k in [
        F::Timeout,
        F::ConnectionRefused,
        F::ConnectionReset,
        F::Dns,
        F::Tls,
        F::Connect,
        F::Protocol,
        F::Http(302),
        F::Http(404),
        F::Http(429),
        F::Http(503),
    ] {
        assert_eq!(
            lookup(k.code()).map(|c| c.kind),
            Some(Kind::Attempt),
            "{k:?}"
        );
    }
}

#[test]
fn every_catalogued_code_is_produced_somewhere() {
    let (daemon, cli) = all_sources();
    let produced: HashSet<String> = daemon
        .iter()
        .chain(cli.iter())
        .flat_map(|(_, t)| quoted_codes(t))
        .collect();
    for c in CATALOG {
        assert!(
            produced.contains(c.code),
            "{} is catalogued but nothing produces it",
            c.code
        );
    }
}

/// The README's "Error codes" tables are the catalogue, as `courier explain --markdown` prints it.
#[test]
fn the_readme_tables_are_the_catalogue() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split_once("<!-- codes:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- codes:end -->"))
        .map(|(block, _)| block);
    assert_eq!(
        block,
        Some(markdown().as_str()),
        "README's error tables differ from src/codes.rs; paste the output of \
         `cargo run -q -- explain --markdown` between the codes:begin/end markers"
    );
}

/// Every code-like word in backticks in the README is one Courier produces (and, by the test
/// above, every code is documented).
#[test]
fn the_readme_names_only_catalogued_codes() {
    let readme = include_str!("../../README.md");
    let words: HashSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| looks_like_a_code(w))
        .collect();
    for c in CATALOG {
        assert!(words.contains(c.code), "README does not list {}", c.code);
    }
    for w in words {
        assert!(
            lookup(w).is_some(),
            "README lists {w}, which Courier does not produce"
        );
    }
}

#[test]
fn api_errors_always_carry_a_hint() {
    for c in CATALOG.iter().filter(|c| c.http_status.is_some()) {
        let e = crate::error::ApiError::new(http::StatusCode::BAD_REQUEST, c.code, "m")
            .advise("something particular to this refusal");
        let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["error"]["hint"], c.fix, "{}", c.code);
        assert_eq!(
            body["error"]["message"], "m; something particular to this refusal",
            "{}",
            c.code
        );
    }
}
