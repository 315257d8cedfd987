//! Unit tests of the CLI's pure rendering: tables, key lines, errors, from typed views.

use bytes::Bytes;
use hyper::StatusCode;

use super::*;

fn error_view(code: &str, message: &str, status: Option<u16>, at: &str) -> ErrorView {
    ErrorView {
        code: code.into(),
        message: message.into(),
        status,
        at: at.into(),
        hint: None,
    }
}

fn attempt(
    event_id: &str,
    seq: u64,
    n: u32,
    started_at: &str,
    status: Option<u16>,
    latency_ms: u32,
    failure: Option<(&str, &str)>,
) -> AttemptView {
    AttemptView {
        event_id: event_id.into(),
        seq,
        attempt: n,
        started_at: started_at.into(),
        status,
        latency_ms,
        error: failure.map(|f| f.0.into()),
        message: failure.map(|f| f.1.into()),
        kind: "delivery".into(),
        answer: None,
        repeats: 0,
        last_at: None,
    }
}

fn endpoint(id: &str, url: &str, state: &str, backlog: u64, in_flight: u32) -> EndpointView {
    EndpointView {
        id: id.into(),
        url: url.into(),
        secret_set: false,
        password_set: false,
        timeout: "5s".into(),
        retry_schedule: vec!["5s".into(), "15s".into(), "60s".into()],
        max_in_flight: 1,
        state: state.into(),
        backlog,
        in_flight,
        last_error: None,
        created_at: "T1".into(),
        updated_at: "T2".into(),
        connected_at: None,
        state_since: None,
        next_attempt_at: None,
        oldest_event_at: None,
        oldest_event_age_secs: None,
        max_backlog: None,
        max_backlog_own: false,
        extra: Default::default(),
    }
}

#[test]
fn last_error_formats() {
    assert_eq!(format_last_error(None), "-");
    assert_eq!(
        format_last_error(Some(&error_view(
            "HTTP_5XX",
            "HTTP 503 Service Unavailable",
            Some(503),
            "2026-11-21T06:49:06.123Z"
        ))),
        "HTTP_5XX (503) HTTP 503 Service Unavailable"
    );
    assert_eq!(
        format_last_error(Some(&error_view(
            "TIMEOUT",
            "no answer\nwithin 5s",
            None,
            "T"
        ))),
        "TIMEOUT no answer within 5s"
    );
}

#[test]
fn table_alignment() {
    let rows = vec![
        vec!["a".to_string(), "long value".to_string(), "x".to_string()],
        vec!["bbbb".to_string(), "v".to_string(), String::new()],
    ];
    assert_eq!(
        render_table(&["K", "VALUE", "LAST"], &rows),
        "K     VALUE       LAST\n\
         a     long value  x\n\
         bbbb  v\n"
    );
    assert_eq!(render_table(&["A", "B"], &[]), "A  B\n");
}

#[test]
fn endpoint_table() {
    let mut b = endpoint("b", "https://b.io/h", "down", 12, 1);
    b.last_error = Some(error_view(
        "HTTP_5XX",
        "HTTP 503 Service Unavailable",
        Some(503),
        "2026-11-21T06:49:06.123Z",
    ));
    let list = vec![
        endpoint("acme", "https://api.acme.io/happ/chat", "active", 0, 0),
        b,
    ];
    assert_eq!(
        render_endpoint_table(&list),
        "ID    STATE   BACKLOG  IN_FLIGHT  URL                            LAST_ERROR\n\
         acme  active  0        0          https://api.acme.io/happ/chat  -\n\
         b     down    12       1          https://b.io/h                 HTTP_5XX (503) HTTP 503 Service Unavailable\n"
    );
}

#[test]
fn dead_letter_table() {
    let items = vec![DeadLetterView {
        id: "evt_1".into(),
        endpoint: "acme".into(),
        seq: 3,
        reason: "MAX_RETRIES_EXCEEDED".into(),
        attempts: 4,
        last_error: Some(error_view(
            "HTTP_4XX",
            "HTTP 400 Bad Request",
            Some(400),
            "T",
        )),
        dead_at: "2026-11-21T06:49:06.123Z".into(),
    }];
    assert_eq!(
        render_dead_letter_table(&items),
        "EVENT_ID  ENDPOINT  SEQ  REASON                ATTEMPTS  LAST_ERROR                           DEAD_AT\n\
         evt_1     acme      3    MAX_RETRIES_EXCEEDED  4         HTTP_4XX (400) HTTP 400 Bad Request  2026-11-21T06:49:06.123Z\n"
    );
}

#[test]
fn attempt_table() {
    let items = vec![
        attempt("evt_2", 2, 1, "T2", Some(200), 12, None),
        attempt(
            "evt_1",
            1,
            4,
            "T1",
            None,
            5000,
            Some(("TIMEOUT", "timed out after 5s")),
        ),
    ];
    assert_eq!(
        render_attempt_table(&items, true),
        "EVENT_ID  SEQ  ATTEMPT  STARTED_AT  STATUS  LATENCY_MS  ERROR\n\
         evt_2     2    1        T2          200     12          -\n\
         evt_1     1    4        T1          -       5000        TIMEOUT timed out after 5s\n"
    );
}

#[test]
fn endpoint_view() {
    let mut v = endpoint("acme", "https://a.io/h", "active", 0, 0);
    v.secret_set = true;
    v.last_error = Some(error_view("CONNECT", "refused", None, "T0"));
    // A field of a newer daemon is shown too, after the known ones.
    v.extra.insert("zz_new_field".into(), serde_json::json!(7));
    assert_eq!(
        render_endpoint(&v),
        "id: acme\nurl: https://a.io/h\nstate: active\nbacklog: 0\nin_flight: 0\n\
         max_in_flight: 1\ntimeout: 5s\nretry_schedule: 5s, 15s, 60s\nsecret: set\n\
         password: not set\nlast_error: CONNECT refused at T0\ncreated_at: T1\n\
         updated_at: T2\nzz_new_field: 7\n"
    );
    v.retry_schedule.clear();
    assert!(render_endpoint(&v).contains("\nretry_schedule: (none)\n"));
    v.max_backlog = Some(1_000_000);
    assert!(
        render_endpoint(&v)
            .contains("\nmax_in_flight: 1\nmax_backlog: 1000000 (the daemon's --max-backlog)\n")
    );
    v.max_backlog = Some(3);
    v.max_backlog_own = true;
    assert!(render_endpoint(&v).contains("\nmax_backlog: 3 (its own)\n"));
}

#[test]
fn channel_view_and_table() {
    let c = ChannelView {
        id: "c1".into(),
        endpoint: "happ".into(),
        secret_set: true,
        rate_limit: 100,
        burst: 100,
        webhook_path: "/webhook/c1".into(),
        created_at: "T1".into(),
        updated_at: "T2".into(),
    };
    assert_eq!(
        render_channel(&c),
        "id: c1\nendpoint: happ\nrate_limit: 100\nburst: 100\nwebhook_path: /webhook/c1\n\
         created_at: T1\nupdated_at: T2\nsecret: set\n"
    );
    assert_eq!(
        render_channel_table(&[c]),
        "ID  ENDPOINT  RATE_LIMIT  BURST  SIGNED  WEBHOOK_PATH\n\
         c1  happ      100         100    yes     /webhook/c1\n"
    );
}

fn dead_letter(id: &str) -> DeadLetterDetail {
    DeadLetterDetail {
        summary: DeadLetterView {
            id: id.into(),
            endpoint: "acme".into(),
            seq: 3,
            reason: "MAX_RETRIES_EXCEEDED".into(),
            attempts: 2,
            last_error: None,
            dead_at: "T9".into(),
        },
        content_type: Some("application/json".into()),
        event_type: None,
        enqueued_at: Some("T0".into()),
        payload: None,
        payload_base64: None,
        record_error: None,
        history: vec![],
        extra: Default::default(),
    }
}

#[test]
fn dead_letter_view() {
    let mut v = dead_letter("evt_1");
    v.payload = Some("{\"a\":1}\u{1b}[2J".into());
    v.history = vec![
        attempt(
            "evt_1",
            3,
            1,
            "T1",
            Some(503),
            7,
            Some(("HTTP_5XX", "HTTP 503")),
        ),
        attempt(
            "evt_1",
            3,
            2,
            "T2",
            Some(503),
            8,
            Some(("HTTP_5XX", "HTTP 503")),
        ),
    ];
    assert_eq!(
        render_dead_letter(&v),
        "id: evt_1\nendpoint: acme\nseq: 3\nreason: MAX_RETRIES_EXCEEDED\nattempts: 2\n\
         last_error: -\ndead_at: T9\ncontent_type: application/json\nevent_type: -\n\
         enqueued_at: T0\n\
         history:\n\
         \x20 ATTEMPT  STARTED_AT  STATUS  LATENCY_MS  ERROR\n\
         \x20 1        T1          503     7           HTTP_5XX HTTP 503\n\
         \x20 2        T2          503     8           HTTP_5XX HTTP 503\n\
         payload:\n{\"a\":1}\u{FFFD}[2J\n"
    );
    let mut corrupt = dead_letter("evt_2");
    corrupt.content_type = None;
    corrupt.enqueued_at = None;
    corrupt.payload_base64 = Some("AAE=".into());
    corrupt.record_error = Some("bad checksum".into());
    assert_eq!(
        render_dead_letter(&corrupt),
        "id: evt_2\nendpoint: acme\nseq: 3\nreason: MAX_RETRIES_EXCEEDED\nattempts: 2\n\
         last_error: -\ndead_at: T9\ncontent_type: -\nevent_type: -\nenqueued_at: -\n\
         record_error: bad checksum\nhistory: (none)\npayload_base64:\nAAE=\n"
    );
}

fn api_error(status: StatusCode, body: &'static [u8]) -> ApiError {
    ApiError::new(status, Bytes::from_static(body))
}

#[test]
fn api_errors() {
    let body = br#"{"error":{"code":"ENDPOINT_NOT_FOUND","message":"no endpoint \"x\"","hint":"list them with `courier endpoint list`"}}"#;
    assert_eq!(
        render_api_error(&api_error(StatusCode::NOT_FOUND, body)),
        "error: ENDPOINT_NOT_FOUND: no endpoint \"x\"\nhint: list them with `courier endpoint list`\n"
    );
    let no_hint = br#"{"error":{"code":"ENDPOINT_NOT_EMPTY","message":"backlog is 3"}}"#;
    assert_eq!(
        render_api_error(&api_error(StatusCode::CONFLICT, no_hint)),
        "error: ENDPOINT_NOT_EMPTY: backlog is 3\n"
    );
    assert_eq!(
        render_api_error(&api_error(StatusCode::BAD_GATEWAY, b"<html>\nbad</html>")),
        "error: HTTP 502 Bad Gateway: <html> bad</html>\n"
    );
    assert_eq!(
        render_api_error(&api_error(StatusCode::INTERNAL_SERVER_ERROR, b"")),
        "error: HTTP 500 Internal Server Error: (empty body)\n"
    );
    let long = "x".repeat(500);
    let text = render_api_error(&ApiError::new(StatusCode::BAD_REQUEST, long.into()));
    assert_eq!(
        text.chars().count(),
        "error: HTTP 400 Bad Request: ".len() + 200 + 1
    );
}

#[test]
fn confirmation_lines() {
    let accepted = Accepted {
        id: "evt_9".into(),
        seq: 42,
        endpoint: "acme".into(),
        duplicate: false,
        hint: None,
    };
    assert_eq!(accepted_line(&accepted), "accepted evt_9 seq 42\n");
    let duplicate = Accepted {
        duplicate: true,
        ..accepted
    };
    assert!(accepted_line(&duplicate).starts_with("accepted evt_9 seq 42 (duplicate"));
    let replayed = Replayed {
        id: "evt_3".into(),
        endpoint: "acme".into(),
        seq: 3,
    };
    assert_eq!(
        replay_line(&replayed),
        "replayed evt_3 (endpoint acme, seq 3)\n"
    );
    let mut v = endpoint("acme", "https://a.io/h", "paused", 3, 0);
    assert_eq!(
        state_line("paused", "acme", &v),
        "paused endpoint acme (state paused, backlog 3)\n"
    );
    v.state = "active".into();
    assert_eq!(
        saved_endpoint("acme", true, &v).lines().next(),
        Some("created endpoint acme")
    );
}

#[test]
fn repeated_probe_failures_are_one_line_with_their_count() {
    let mut a = attempt(
        "evt_1",
        1,
        7,
        "T1",
        None,
        3,
        Some(("ECONNREFUSED", "connection refused")),
    );
    a.kind = "probe".into();
    assert_eq!(repeat_note(&a), "");
    a.repeats = 149;
    a.last_at = Some("T9".into());
    assert_eq!(
        render_attempt_table(&[a.clone()], false),
        "ATTEMPT  STARTED_AT  STATUS  LATENCY_MS  ERROR\n\
         7        T1          -       3           ECONNREFUSED connection refused (repeated 149 times, last at T9)\n"
    );
    assert!(recent_attempt_table(&[a.clone()]).contains("(repeated 149 times, last at T9)"));
    a.repeats = 1;
    assert_eq!(repeat_note(&a), " (repeated once, last at T9)");
}
