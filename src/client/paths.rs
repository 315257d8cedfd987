//! The admin API's request paths, with every caller-given segment percent-encoded.

use std::fmt::Write as _;

/// Percent-encodes everything but `[A-Za-z0-9_.~-]` so an odd id cannot change the route;
/// valid ids pass through unchanged and the daemon judges the rest.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `/v1/endpoints`.
pub const ENDPOINTS: &str = "/v1/endpoints";
/// `/v1/events/batch`.
pub const BATCH: &str = "/v1/events/batch";
/// `/v1/channels`.
pub const CHANNELS: &str = "/v1/channels";

/// `/v1/endpoints/{id}`.
pub fn endpoint(id: &str) -> String {
    format!("/v1/endpoints/{}", encode_segment(id))
}

/// `/v1/endpoints/{id}/{action}` (`pause`, `resume`, `events`).
pub fn endpoint_action(id: &str, action: &str) -> String {
    format!("{}/{action}", endpoint(id))
}

/// `DELETE` target of an endpoint, `?force=true` when forced.
pub fn remove_endpoint(id: &str, force: bool) -> String {
    let path = endpoint(id);
    if force {
        format!("{path}?force=true")
    } else {
        path
    }
}

/// `/v1/endpoints/{id}/attempts?limit=N`.
pub fn attempts(id: &str, limit: u32) -> String {
    format!("{}/attempts?limit={limit}", endpoint(id))
}

/// `/v1/dead-letters`, filtered to one endpoint when given.
pub fn dead_letters(endpoint: Option<&str>) -> String {
    match endpoint {
        Some(id) => format!("/v1/dead-letters?endpoint={}", encode_segment(id)),
        None => "/v1/dead-letters".to_owned(),
    }
}

/// `/v1/dead-letters{suffix}` with the filter (and a page's `limit` and `cursor`) as its query.
pub fn dead_letters_filtered(
    suffix: &str,
    filter: &crate::views::DeadLetterFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> String {
    let mut q = Vec::new();
    let limit = limit.map(|n| n.to_string());
    for (name, value) in [
        ("endpoint", filter.endpoint.as_deref()),
        ("reason", filter.reason.as_deref()),
        ("since", filter.since.as_deref()),
        ("until", filter.until.as_deref()),
        ("limit", limit.as_deref()),
        ("cursor", cursor),
    ] {
        if let Some(v) = value {
            q.push(format!("{name}={}", encode_segment(v)));
        }
    }
    match q.is_empty() {
        true => format!("/v1/dead-letters{suffix}"),
        false => format!("/v1/dead-letters{suffix}?{}", q.join("&")),
    }
}

/// `/v1/dead-letters/{event_id}`.
pub fn dead_letter(event_id: &str) -> String {
    format!("/v1/dead-letters/{}", encode_segment(event_id))
}

/// `/v1/channels/{id}`.
pub fn channel(id: &str) -> String {
    format!("/v1/channels/{}", encode_segment(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(endpoint("acme"), "/v1/endpoints/acme");
        assert_eq!(endpoint("a.b_c-9"), "/v1/endpoints/a.b_c-9");
        assert_eq!(endpoint("a/b?c"), "/v1/endpoints/a%2Fb%3Fc");
        assert_eq!(remove_endpoint("acme", false), "/v1/endpoints/acme");
        assert_eq!(
            remove_endpoint("acme", true),
            "/v1/endpoints/acme?force=true"
        );
        assert_eq!(attempts("acme", 20), "/v1/endpoints/acme/attempts?limit=20");
        assert_eq!(dead_letters(None), "/v1/dead-letters");
        assert_eq!(dead_letters(Some("acme")), "/v1/dead-letters?endpoint=acme");
        let f = crate::views::DeadLetterFilter {
            endpoint: Some("acme".into()),
            since: Some("2026-11-21T07:00:00+01:00".into()),
            ..Default::default()
        };
        assert_eq!(
            dead_letters_filtered("/export", &f, Some(5), Some("MXMx")),
            "/v1/dead-letters/export?endpoint=acme&since=2026-11-21T07%3A00%3A00%2B01%3A00&limit=5&cursor=MXMx"
        );
        assert_eq!(
            dead_letters_filtered("", &Default::default(), None, None),
            "/v1/dead-letters"
        );
        assert_eq!(dead_letter("evt_1"), "/v1/dead-letters/evt_1");
        assert_eq!(encode_segment("é "), "%C3%A9%20");
        assert_eq!(
            endpoint_action("a b", "events"),
            "/v1/endpoints/a%20b/events"
        );
        assert_eq!(channel("c/1"), "/v1/channels/c%2F1");
    }
}
