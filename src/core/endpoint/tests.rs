//! Unit tests of the endpoint settings: id rules, URL rules, defaults, merge and codes.

use super::*;

#[test]
fn endpoint_ids() {
    assert!(valid_endpoint_id("acme"));
    assert!(valid_endpoint_id("a.b-c_D9"));
    assert!(valid_endpoint_id(&"x".repeat(64)));
    assert!(!valid_endpoint_id(""));
    assert!(!valid_endpoint_id(&"x".repeat(65)));
    assert!(!valid_endpoint_id("a/b"));
    assert!(!valid_endpoint_id("a b"));
    // Dot-segments: clients resolve them away, so such an endpoint could never be addressed.
    assert!(!valid_endpoint_id("."));
    assert!(!valid_endpoint_id(".."));
    assert!(valid_endpoint_id("..."));
    assert!(valid_endpoint_id(".a"));
}

#[test]
fn urls() {
    assert!(validate_url("https://api.acme.io/happ/chat", false).is_ok());
    assert_eq!(
        validate_url("http://api.acme.io/x", false)
            .unwrap_err()
            .code(),
        "HTTPS_REQUIRED"
    );
    assert!(validate_url("http://127.0.0.1:9/x", true).is_ok());
    assert_eq!(
        validate_url("ftp://x/y", true).unwrap_err().code(),
        "INVALID_URL"
    );
    assert_eq!(
        validate_url("/relative", true).unwrap_err().code(),
        "INVALID_URL"
    );
    assert_eq!(
        validate_url("https://user:pw@host/x", false)
            .unwrap_err()
            .code(),
        "INVALID_URL"
    );
}

#[test]
fn schemes_are_stored_in_lowercase_and_parsed() {
    let u = EndpointUrl::parse("HTTPS://h.io/X", false).unwrap();
    assert_eq!(u.as_str(), "https://h.io/X");
    assert_eq!(u.uri().host(), Some("h.io"));
}

#[test]
fn endpoint_defaults_and_merge() {
    let c = endpoint_config(br#"{"url":"https://h/x","secret":"s"}"#, None, false).unwrap();
    assert_eq!(c.timeout_ms, 5000);
    assert_eq!(c.retry_schedule_ms, vec![5000, 15000, 60000]);
    assert_eq!(c.max_in_flight, 1);
    assert_eq!(c.secret.as_ref().map(Secret::expose), Some("s"));
    // An update that omits the secret keeps it; an explicit null removes it.
    let c2 = endpoint_config(br#"{"url":"https://h/y","timeout":"2s"}"#, Some(&c), false).unwrap();
    assert_eq!(c2.secret.as_ref().map(Secret::expose), Some("s"));
    assert_eq!(c2.timeout_ms, 2000);
    let c3 = endpoint_config(br#"{"url":"https://h/y","secret":null}"#, Some(&c2), false).unwrap();
    assert_eq!(c3.secret, None);
}

/// Every updatable field of an endpoint keeps its value unless the update names it; only an
/// explicit `null` removes a secret or password.
#[test]
fn endpoint_updates_merge_every_field() {
    let cur = EndpointConfig {
        url: "https://h/x".into(),
        secret: Some("s".into()),
        password: Some("p".into()),
        timeout_ms: 2_000,
        retry_schedule_ms: vec![1_000, 2_000],
        max_in_flight: 3,
        max_backlog: None,
        security: Default::default(),
    };
    let upd = |b: &str| endpoint_config(b.as_bytes(), Some(&cur), false).unwrap();
    assert_eq!(upd("{}"), cur, "an empty update changes nothing");
    let cases: [(&str, EndpointConfig); 8] = [
        (
            r#"{"url":"https://h/y"}"#,
            EndpointConfig {
                url: "https://h/y".into(),
                ..cur.clone()
            },
        ),
        (
            r#"{"secret":"s2"}"#,
            EndpointConfig {
                secret: Some("s2".into()),
                ..cur.clone()
            },
        ),
        (
            r#"{"secret":null}"#,
            EndpointConfig {
                secret: None,
                ..cur.clone()
            },
        ),
        (
            r#"{"password":"p2"}"#,
            EndpointConfig {
                password: Some("p2".into()),
                ..cur.clone()
            },
        ),
        (
            r#"{"password":null}"#,
            EndpointConfig {
                password: None,
                ..cur.clone()
            },
        ),
        (
            r#"{"timeout":"3s"}"#,
            EndpointConfig {
                timeout_ms: 3_000,
                ..cur.clone()
            },
        ),
        (
            r#"{"retry_schedule":[]}"#,
            EndpointConfig {
                retry_schedule_ms: vec![],
                ..cur.clone()
            },
        ),
        (
            r#"{"max_in_flight":1}"#,
            EndpointConfig {
                max_in_flight: 1,
                ..cur.clone()
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(upd(body), want, "{body}");
    }
    assert_eq!(
        endpoint_config(b"{}", None, false).unwrap_err().code(),
        "INVALID_JSON",
        "url is required on create"
    );
}

#[test]
fn endpoint_validation_codes() {
    let code = |b: &str| {
        endpoint_config(b.as_bytes(), None, false)
            .unwrap_err()
            .code()
    };
    assert_eq!(code("not json"), "INVALID_JSON");
    assert_eq!(code(r#"{"url":"https://h","bogus":1}"#), "INVALID_JSON");
    assert_eq!(
        code(r#"{"url":"https://h","timeout":"5 years"}"#),
        "INVALID_TIMEOUT"
    );
    assert_eq!(
        code(r#"{"url":"https://h","timeout":"0s"}"#),
        "INVALID_TIMEOUT"
    );
    assert_eq!(
        code(r#"{"url":"https://h","retry_schedule":["5s","x"]}"#),
        "INVALID_RETRY_SCHEDULE"
    );
    assert_eq!(
        code(r#"{"url":"https://h","max_in_flight":0}"#),
        "INVALID_MAX_IN_FLIGHT"
    );
    assert_eq!(code(r#"{"url":"https://h","secret":""}"#), "INVALID_SECRET");
    assert_eq!(
        code(r#"{"url":"https://h","password":"a\nb"}"#),
        "INVALID_PASSWORD"
    );
    assert_eq!(code(r#"{"url":"http://h"}"#), "HTTPS_REQUIRED");
    // Regression: a 0s entry made probes of a down endpoint a tight loop.
    assert_eq!(
        code(r#"{"url":"https://h","retry_schedule":["0s","2s"]}"#),
        "INVALID_RETRY_SCHEDULE"
    );
    assert_eq!(
        code(r#"{"url":"https://h","retry_schedule":["99ms"]}"#),
        "INVALID_RETRY_SCHEDULE"
    );
}

#[test]
fn serde_messages_do_not_echo_strings() {
    let e = endpoint_config(
        br#"{"url":"https://h","max_in_flight":"hunter2"}"#,
        None,
        false,
    )
    .unwrap_err();
    assert!(!e.message().contains("hunter2"), "{}", e.message());
}

#[test]
fn specs_round_trip_the_stored_shape() {
    let c = endpoint_config(
        br#"{"url":"https://h/x","password":"p","timeout":"250ms","retry_schedule":["1s","2m"],"max_in_flight":4}"#,
        None,
        false,
    )
    .unwrap();
    let spec = EndpointSpec::from_config(&c).unwrap();
    assert_eq!(spec.destination, DestinationKind::Webhook);
    assert_eq!(spec.timeout, Duration::from_millis(250));
    assert_eq!(
        spec.retry_schedule,
        [Duration::from_secs(1), Duration::from_secs(120)]
    );
    assert_eq!(spec.into_config(), c);
}

#[test]
fn retry_schedules_and_timeouts_parse_alone() {
    assert_eq!(
        parse_retry_schedule(&["5s", "15s"]).unwrap(),
        [Duration::from_secs(5), Duration::from_secs(15)]
    );
    assert!(parse_retry_schedule::<&str>(&[]).unwrap().is_empty());
    let long = vec!["1s"; RETRY_ENTRIES_MAX + 1];
    assert_eq!(
        parse_retry_schedule(&long).unwrap_err().code(),
        "INVALID_RETRY_SCHEDULE"
    );
    assert_eq!(parse_timeout("2s").unwrap(), Duration::from_secs(2));
    assert_eq!(parse_timeout("11m").unwrap_err().code(), "INVALID_TIMEOUT");
}

/// `max_backlog`: an endpoint's own limit is kept across updates that leave it out, `null`
/// gives it back to the daemon's `--max-backlog`, and 0 or too many is refused.
#[test]
fn an_endpoint_sets_and_clears_its_own_max_backlog() {
    let c = endpoint_config(br#"{"url":"https://h","max_backlog":3}"#, None, false).unwrap();
    assert_eq!(c.max_backlog, Some(3));
    let kept = endpoint_config(br#"{"timeout":"2s"}"#, Some(&c), false).unwrap();
    assert_eq!(kept.max_backlog, Some(3), "an update without it keeps it");
    let changed = endpoint_config(br#"{"max_backlog":50}"#, Some(&c), false).unwrap();
    assert_eq!(changed.max_backlog, Some(50));
    let cleared = endpoint_config(br#"{"max_backlog":null}"#, Some(&c), false).unwrap();
    assert_eq!(
        cleared.max_backlog, None,
        "null: the daemon's default again"
    );
    let fresh = endpoint_config(br#"{"url":"https://h"}"#, None, false).unwrap();
    assert_eq!(
        fresh.max_backlog, None,
        "a new endpoint has none of its own"
    );
    assert_eq!(
        EndpointSpec::from_config(&c).unwrap().into_config(),
        c,
        "the stored shape keeps it"
    );
    let code = |b: &str| endpoint_config(b.as_bytes(), None, false).unwrap_err();
    for bad in [0, MAX_BACKLOG_MAX + 1] {
        let e = code(&format!(r#"{{"url":"https://h","max_backlog":{bad}}}"#));
        assert_eq!(e.code(), "INVALID_MAX_BACKLOG", "{bad}");
        assert!(e.message().contains("max_backlog"), "{}", e.message());
    }
    assert_eq!(
        code(r#"{"url":"https://h","max_backlog":-1}"#).code(),
        "INVALID_JSON"
    );
    assert_eq!(
        code(r#"{"url":"https://h","max_backlog":"lots"}"#).code(),
        "INVALID_JSON"
    );
}
