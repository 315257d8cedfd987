//! `courier::core::endpoint::endpoint_config` on arbitrary `PUT /v1/endpoints/{id}` bodies, with
//! `allow_http` both off and on for every input.
//!
//! Properties:
//! - never panics;
//! - when Ok: the URL starts with `https://`, or `http://` only when `allow_http`; it parses as
//!   an `http::Uri` with a host, and a port, when one is written, is a number in 0..=65535 (a
//!   port that does not parse is silently replaced by 443/80 when delivering); an input accepted
//!   without `allow_http` is accepted identically with it; the other fields are within the
//!   documented bounds;
//! - when Err: neither the message nor the hint (of the API's answer, `ApiError::from`) contains the value of a top-level `"secret"` or
//!   `"password"` string of 8 bytes or more. A hit must be confirmed by a canary before it
//!   counts: the same JSON object, with that value replaced by a same-length string found
//!   nowhere else, must produce an error that contains the canary. (Without the canary, a secret
//!   that merely equals fixed message text such as `"duration"`, or another field's value, would
//!   be reported as a leak.)
//! - when Err with `INVALID_JSON`: the message quotes no part of any top-level string value
//!   (`redact_serde`'s promise). Checked by difference: every piece of 8+ bytes of the value
//!   (split at quotes, backslashes and control characters, which serde's message escapes) that
//!   the message contains must also be in the message for the same object with that value
//!   replaced by a neutral string of the same JSON length.
#![no_main]

use courier::core::endpoint::{
    MAX_IN_FLIGHT_MAX, RETRY_DELAY_MAX, RETRY_ENTRIES_MAX, SECRET_MAX, TIMEOUT_MAX, endpoint_config,
};
use courier::error::ApiError;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let strict = endpoint_config(data, None, false);
    let lax = endpoint_config(data, None, true);

    if let Ok(c) = &strict {
        assert!(
            c.url.starts_with("https://"),
            "accepted without allow_http: url {:?}",
            c.url
        );
        assert_eq!(lax.as_ref(), Ok(c), "allow_http changed an https config");
    }
    if let Ok(c) = &lax {
        assert!(
            c.url.starts_with("https://") || c.url.starts_with("http://"),
            "accepted with allow_http: url {:?}",
            c.url
        );
        check_url(&c.url);
        for v in [&c.secret, &c.password].into_iter().flatten() {
            assert!((1..=SECRET_MAX).contains(&v.len()));
        }
        assert!((1..=TIMEOUT_MAX.as_millis() as u64).contains(&c.timeout_ms));
        assert!(c.retry_schedule_ms.len() <= RETRY_ENTRIES_MAX);
        assert!(
            c.retry_schedule_ms
                .iter()
                .all(|ms| *ms <= RETRY_DELAY_MAX.as_millis() as u64)
        );
        assert!((1..=MAX_IN_FLIGHT_MAX).contains(&c.max_in_flight));
    }

    if (strict.is_err() || lax.is_err())
        && let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(data)
    {
        for allow_http in [false, true] {
            check_no_leak(&obj, allow_http);
        }
    }
});

/// An accepted URL is one the delivery side reads the same way.
fn check_url(url: &str) {
    let uri: http::Uri = url.parse().expect("an accepted url parses");
    let auth = uri.authority().expect("an accepted url has an authority");
    assert!(!auth.host().is_empty(), "url {url:?} has an empty host");
    // The port is what follows the last ':' after any IPv6 literal; empty means the default.
    let after_host = match auth.as_str().rfind(']') {
        Some(i) => &auth.as_str()[i + 1..],
        None => auth.as_str(),
    };
    if let Some((_, port)) = after_host.rsplit_once(':') {
        assert!(
            port.is_empty() || port.parse::<u16>().is_ok(),
            "url {url:?} accepted with port {port:?}, which is not a number in 0..=65535 \
             (delivery would use the scheme's default port)"
        );
    }
}

fn text(e: &ApiError) -> String {
    format!("{}\n{}", e.message, e.hint().unwrap_or(""))
}

fn run(obj: &Map<String, Value>, allow_http: bool) -> Option<ApiError> {
    endpoint_config(&serde_json::to_vec(obj).unwrap(), None, allow_http)
        .err()
        .map(ApiError::from)
}

/// Checks on the normalised object (re-serialised, so both runs compare like with like).
fn check_no_leak(obj: &Map<String, Value>, allow_http: bool) {
    let Some(err) = run(obj, allow_http) else {
        return;
    };
    let msg = text(&err);
    let normalized = serde_json::to_string(obj).unwrap();

    // 1. secret / password values, confirmed by a canary.
    for field in ["secret", "password"] {
        let Some(Value::String(v)) = obj.get(field) else {
            continue;
        };
        if v.len() < 8 {
            continue;
        }
        // Same byte length and validity class (printable ASCII or not) as the value.
        let printable = v.bytes().all(|c| (0x20..0x7f).contains(&c));
        let Some(canary) = "QZXJKVWY".chars().find_map(|c| {
            let mut s = String::new();
            if !printable {
                s.push('\u{7f}');
            }
            while s.len() < v.len() {
                s.push(c);
            }
            (!normalized.contains(&s) && !msg.contains(&s)).then_some(s)
        }) else {
            continue;
        };
        let mut obj2 = obj.clone();
        obj2.insert(field.to_string(), Value::String(canary.clone()));
        if let Some(e2) = run(&obj2, allow_http) {
            let msg2 = text(&e2);
            assert!(
                !msg2.contains(&canary),
                "the {field} value appears in the error (allow_http={allow_http}): {msg2:?}"
            );
        }
    }

    // 2. INVALID_JSON quotes no part of any string value.
    if err.code != "INVALID_JSON" {
        return;
    }
    for (k, v) in obj {
        let Value::String(v) = v else { continue };
        let pieces: Vec<&str> = v
            .split(|c: char| c == '"' || c == '\\' || c.is_control())
            .filter(|p| p.len() >= 8 && msg.contains(*p))
            .collect();
        if pieces.is_empty() {
            continue;
        }
        // Same JSON-encoded length, so "line 1 column N" stays the same.
        let json_len = serde_json::to_string(v).unwrap().len() - 2;
        let Some(neutral) = "xQZJ".chars().find(|c| !v.contains(*c)) else {
            continue;
        };
        let mut obj2 = obj.clone();
        obj2.insert(
            k.clone(),
            Value::String(neutral.to_string().repeat(json_len)),
        );
        let msg2 = run(&obj2, allow_http).map(|e| text(&e)).unwrap_or_default();
        for p in pieces {
            assert!(
                msg2.contains(p),
                "INVALID_JSON message quotes part of the {k:?} value ({p:?}): {msg:?}"
            );
        }
    }
}
