//! Checks of the catalogue against the code that produces the codes and the README that lists
//! them: a code produced but not catalogued, or documented but not produced, fails here.

use super::*;
use std::collections::HashSet;

/// The sources that produce codes, without their `#[cfg(test)]` parts.
fn sources() -> Vec<(&'static str, &'static str)> {
    let files = [
        ("api.rs", include_str!("../api.rs")),
        ("error.rs", include_str!("../error.rs")),
        ("ingress.rs", include_str!("../ingress.rs")),
        ("retry.rs", include_str!("../retry.rs")),
        ("scheduler.rs", include_str!("../scheduler.rs")),
        ("store.rs", include_str!("../store.rs")),
        ("store/writer.rs", include_str!("../store/writer.rs")),
        (
            "store/writer/idempotency.rs",
            include_str!("../store/writer/idempotency.rs"),
        ),
        (
            "store/writer/quarantine.rs",
            include_str!("../store/writer/quarantine.rs"),
        ),
        ("body.rs", include_str!("../body.rs")),
        ("deadline.rs", include_str!("../deadline.rs")),
        ("daemon.rs", include_str!("../daemon.rs")),
    ];
    files
        .into_iter()
        .map(|(n, s)| (n, s.split("#[cfg(test)]").next().unwrap_or(s)))
        .collect()
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
    is_code(s) && (s.contains('_') || CATALOG.iter().any(|c| c.code == s))
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
        for code in quoted_codes(text) {
            assert!(
                lookup(&code).is_some(),
                "{file} produces {code:?}, which the catalogue (src/codes.rs) does not list"
            );
        }
    }
    let cli = include_str!("../cli.rs");
    let cli = cli.split("#[cfg(test)]").next().unwrap_or(cli);
    for part in cli.split("code: \"").skip(1) {
        let code = part.split('"').next().unwrap_or("");
        assert_eq!(
            lookup(code).map(|c| c.kind),
            Some(Kind::Client),
            "cli.rs {code}"
        );
    }
    use crate::retry::FailureKind as F;
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
    let produced: HashSet<String> = sources()
        .into_iter()
        .flat_map(|(_, t)| quoted_codes(t))
        .chain(quoted_codes(include_str!("../cli.rs")))
        .collect();
    for c in CATALOG {
        assert!(
            produced.contains(c.code),
            "{} is catalogued but nothing produces it",
            c.code
        );
    }
}

/// The README's tables list exactly the catalogue: every code is documented, and every code-like
/// word in backticks there is one Courier produces.
#[test]
fn the_readme_lists_exactly_the_catalogue() {
    let readme = include_str!("../../README.md");
    let words: HashSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| looks_like_a_code(w) && !w.starts_with("COURIER_"))
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
        let e = crate::error::ApiError::new(http::StatusCode::BAD_REQUEST, c.code, "m");
        assert_eq!(e.hint.as_deref(), Some(c.fix), "{}", c.code);
    }
}
