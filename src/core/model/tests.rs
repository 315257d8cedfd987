//! The stored shapes: both shapes of every row that has two decode, and the helpers.

use super::*;

#[test]
fn idempotency_rows_of_both_shapes_decode() {
    #[derive(Serialize)]
    struct V1<'a> {
        event_id: &'a str,
        seq: u64,
        created_ms: u64,
    }
    let old = postcard::to_stdvec(&V1 {
        event_id: "evt_x",
        seq: 7,
        created_ms: 9,
    })
    .unwrap();
    let hit = IdempotentHit::decode(&old).unwrap();
    assert_eq!((hit.seq, hit.created_ms, hit.fingerprint), (7, 9, None));
    assert!(hit.matches(&[1; 32]), "an old row matches any request");
    let new = IdempotentHit {
        fingerprint: Some([3; 32]),
        ..hit
    };
    let back = IdempotentHit::decode(&postcard::to_stdvec(&new).unwrap()).unwrap();
    assert_eq!(back, new);
    assert!(back.matches(&[3; 32]) && !back.matches(&[4; 32]));
    assert_eq!(IdempotentHit::decode(b"\xff"), None);
}

#[test]
fn fingerprints_tell_requests_apart() {
    let f = request_fingerprint;
    let base = f("application/json", Some("t"), b"{}");
    assert_eq!(base, f("application/json", Some("t"), b"{}"));
    assert_ne!(base, f("application/json", Some("t"), b"{ }"));
    assert_ne!(base, f("text/plain", Some("t"), b"{}"));
    assert_ne!(base, f("application/json", None, b"{}"));
    assert_ne!(base, f("application/json", Some("t{}"), b""));
    assert_ne!(
        f("application/json", Some(""), b""),
        f("application/json", None, b"")
    );
}

/// The first shapes, as the previous build wrote them (field for field).
mod v1 {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct Config<'a> {
        pub url: &'a str,
        pub secret: Option<&'a str>,
        pub password: Option<&'a str>,
        pub timeout_ms: u64,
        pub retry_schedule_ms: Vec<u64>,
        pub max_in_flight: u32,
    }

    #[derive(Serialize)]
    pub struct Endpoint<'a> {
        pub id: &'a str,
        pub config: Config<'a>,
        pub paused: bool,
        pub created_ms: u64,
        pub updated_ms: u64,
        pub next_seq: u64,
        pub pending: u64,
        pub next_attempt_log: u64,
        pub down: bool,
    }

    #[derive(Serialize, Clone)]
    pub struct Attempt<'a> {
        pub event_id: &'a str,
        pub seq: u64,
        pub attempt: u32,
        pub started_ms: u64,
        pub status: Option<u16>,
        pub latency_ms: u32,
        pub error: Option<&'a str>,
        pub message: Option<&'a str>,
    }

    #[derive(Serialize)]
    pub struct Error<'a> {
        pub code: &'a str,
        pub message: &'a str,
        pub status: Option<u16>,
        pub at_ms: u64,
    }

    #[derive(Serialize)]
    pub struct Progress<'a> {
        pub attempts: u32,
        pub failures: u32,
        pub last_error: Option<Error<'a>>,
        pub history: Vec<Attempt<'a>>,
    }

    #[derive(Serialize)]
    pub struct Dead<'a> {
        pub event_id: &'a str,
        pub endpoint: &'a str,
        pub seq: u64,
        pub reason: &'a str,
        pub progress: Progress<'a>,
        pub dead_at_ms: u64,
    }
}

fn v1_attempt(n: u32) -> v1::Attempt<'static> {
    v1::Attempt {
        event_id: "evt_01KAXYZ0000000000000000000",
        seq: 4,
        attempt: n,
        started_ms: 1_700_000_000_000 + u64::from(n),
        status: Some(503),
        latency_ms: 17,
        error: Some("HTTP_5XX"),
        message: Some("HTTP 503 Service Unavailable"),
    }
}

fn attempt(n: u32) -> AttemptRecord {
    AttemptRecord {
        event_id: "evt_01KAXYZ0000000000000000000".into(),
        seq: 4,
        attempt: n,
        started_ms: 1_700_000_000_000 + u64::from(n),
        status: Some(503),
        latency_ms: 17,
        error: Some("HTTP_5XX".into()),
        message: Some("HTTP 503 Service Unavailable".into()),
        kind: AttemptKind::Delivery,
        answer: None,
        repeats: 0,
        last_ms: 0,
    }
}

#[test]
fn endpoint_records_of_the_first_shape_decode() {
    let old = postcard::to_stdvec(&v1::Endpoint {
        id: "acme",
        config: v1::Config {
            url: "https://h/x",
            secret: Some("s3cret"),
            password: None,
            timeout_ms: 5_000,
            retry_schedule_ms: vec![5_000, 15_000],
            max_in_flight: 1,
        },
        paused: false,
        created_ms: 10,
        updated_ms: 20,
        next_seq: 9,
        pending: 3,
        next_attempt_log: 7,
        down: true,
    })
    .unwrap();
    let rec = EndpointRecord::decode(&old).unwrap();
    assert_eq!(
        (rec.id.as_str(), rec.next_seq, rec.pending, rec.down),
        ("acme", 9, 3, true)
    );
    assert_eq!(
        rec.config.secret.as_ref().map(|s| s.expose()),
        Some("s3cret")
    );
    assert_eq!(
        (
            rec.connected_at_ms,
            rec.state_since_ms,
            rec.last_error.clone()
        ),
        (None, None, None)
    );
    // The second shape round-trips, and is not mistaken for the first.
    let new = EndpointRecord {
        connected_at_ms: Some(30),
        state_since_ms: Some(25),
        last_error: Some(ErrorInfo {
            code: "HTTP_5XX".into(),
            message: "m".into(),
            status: Some(503),
            at_ms: 24,
        }),
        ..rec.clone()
    };
    let bytes = postcard::to_stdvec(&new).unwrap();
    assert_eq!(EndpointRecord::decode(&bytes), Some(new));
    assert_eq!(EndpointRecord::decode(b"\x01"), None);
}

#[test]
fn histories_keep_the_first_shape_and_old_rows_decode() {
    let last = v1::Error {
        code: "HTTP_5XX",
        message: "m",
        status: Some(503),
        at_ms: 5,
    };
    let old_progress = v1::Progress {
        attempts: 2,
        failures: 2,
        last_error: Some(last),
        history: vec![v1_attempt(1), v1_attempt(2)],
    };
    let progress = EventProgress {
        attempts: 2,
        failures: 2,
        last_error: Some(ErrorInfo {
            code: "HTTP_5XX".into(),
            message: "m".into(),
            status: Some(503),
            at_ms: 5,
        }),
        history: vec![attempt(1), attempt(2)],
    };
    let old = postcard::to_stdvec(&old_progress).unwrap();
    assert_eq!(
        postcard::from_bytes::<EventProgress>(&old).unwrap(),
        progress
    );
    // Written now, a history is byte for byte the first shape: a kind or an answer in memory
    // is not stored there (the attempt log has them).
    let mut with_extras = progress.clone();
    with_extras.history[1].kind = AttemptKind::Probe;
    with_extras.history[1].answer = Some("busy".into());
    assert_eq!(postcard::to_stdvec(&with_extras).unwrap(), old);
    let old_dead = postcard::to_stdvec(&v1::Dead {
        event_id: "evt_01KAXYZ0000000000000000000",
        endpoint: "acme",
        seq: 4,
        reason: "MAX_RETRIES_EXCEEDED",
        progress: old_progress,
        dead_at_ms: 99,
    })
    .unwrap();
    let dl: DeadLetter = postcard::from_bytes(&old_dead).unwrap();
    assert_eq!((dl.progress, dl.dead_at_ms), (progress, 99));
}

#[test]
fn attempt_log_rows_of_both_shapes_decode() {
    let old = postcard::to_stdvec(&v1_attempt(3)).unwrap();
    let a = AttemptRecord::decode_logged(&old).unwrap();
    assert_eq!(
        a,
        attempt(3),
        "a first-shape row is a delivery without an answer"
    );
    for (kind, answer) in [
        (AttemptKind::Test, Some("pong".to_string())),
        (AttemptKind::Call, None),
        (AttemptKind::Probe, Some(String::new())),
    ] {
        let rec = AttemptRecord {
            kind,
            answer,
            ..attempt(1)
        };
        assert_eq!(
            AttemptRecord::decode_logged(&rec.encode_logged()),
            Some(rec)
        );
    }
    // A row of the third shape counts repeated probe failures.
    let repeated = AttemptRecord {
        kind: AttemptKind::Probe,
        repeats: 41,
        last_ms: 1_700_000_060_000,
        ..attempt(2)
    };
    assert_eq!(
        AttemptRecord::decode_logged(&repeated.encode_logged()),
        Some(repeated)
    );
    assert_eq!(AttemptRecord::decode_logged(b"\x05ab"), None);
    let mut bad_tail = old.clone();
    bad_tail.push(9); // no such kind
    assert_eq!(AttemptRecord::decode_logged(&bad_tail), None);
}

#[test]
fn attempt_log_rows_of_the_second_shape_decode_without_repeats() {
    // The bytes of a second-shape row: the first shape, then the kind (a varint) and the
    // answer (an option of a string), nothing after it.
    let mut row = postcard::to_stdvec(&v1_attempt(5)).unwrap();
    row.extend(postcard::to_stdvec(&(AttemptKind::Probe, Some("busy"))).unwrap());
    assert_eq!(&row[row.len() - 7..], b"\x01\x01\x04busy");
    let a = AttemptRecord::decode_logged(&row).unwrap();
    assert_eq!(
        a,
        AttemptRecord {
            kind: AttemptKind::Probe,
            answer: Some("busy".into()),
            ..attempt(5)
        }
    );
    assert_eq!((a.repeats, a.last_ms), (0, 0));
    // One without an answer, too.
    let mut row = postcard::to_stdvec(&v1_attempt(6)).unwrap();
    row.extend([3, 0]); // Call, None
    let a = AttemptRecord::decode_logged(&row).unwrap();
    assert_eq!((a.kind, a.answer, a.repeats), (AttemptKind::Call, None, 0));
    // The shape nested in an event's history does not change: no repeats in it.
    let nested = AttemptRecord {
        repeats: 3,
        last_ms: 9,
        ..attempt(1)
    };
    assert_eq!(
        postcard::to_stdvec(&nested).unwrap(),
        postcard::to_stdvec(&v1_attempt(1)).unwrap()
    );
}

#[test]
fn answer_snippets_are_bounded_and_cut_at_characters() {
    assert_eq!(answer_snippet(b""), None);
    assert_eq!(answer_snippet(b"ok").as_deref(), Some("ok"));
    let long = "é".repeat(300); // 600 bytes
    let s = answer_snippet(long.as_bytes()).unwrap();
    assert_eq!(s.len(), ANSWER_SNIPPET_MAX, "128 two-byte characters");
    assert!(s.chars().all(|c| c == 'é'));
    let s = answer_snippet(&[b'a'; 1000]).unwrap();
    assert_eq!(s.len(), ANSWER_SNIPPET_MAX);
    // Not UTF-8: replaced, still bounded.
    let s = answer_snippet(&[0xff; 400]).unwrap();
    assert!(s.len() <= ANSWER_SNIPPET_MAX && s.chars().all(|c| c == '\u{FFFD}'));
}

#[test]
fn connected_at_is_refreshed_at_most_once_a_minute() {
    let mut rec = EndpointRecord::decode(
        &postcard::to_stdvec(&v1::Endpoint {
            id: "a",
            config: v1::Config {
                url: "https://h/",
                secret: None,
                password: None,
                timeout_ms: 1,
                retry_schedule_ms: vec![],
                max_in_flight: 1,
            },
            paused: false,
            created_ms: 0,
            updated_ms: 0,
            next_seq: 1,
            pending: 0,
            next_attempt_log: 0,
            down: false,
        })
        .unwrap(),
    )
    .unwrap();
    assert!(rec.note_connected(1_000));
    assert!(!rec.note_connected(1_000 + CONNECTED_REFRESH_MS - 1));
    assert!(rec.note_connected(1_000 + CONNECTED_REFRESH_MS));
    assert_eq!(rec.connected_at_ms, Some(1_000 + CONNECTED_REFRESH_MS));
}

#[test]
fn security_settings_are_the_trailing_shape_and_older_rows_decode_without_them() {
    use crate::core::secret::Secret;
    let old = EndpointRecord::decode(
        &postcard::to_stdvec(&v1::Endpoint {
            id: "acme",
            config: v1::Config {
                url: "https://h/x",
                secret: Some("s3cret"),
                password: None,
                timeout_ms: 5_000,
                retry_schedule_ms: vec![5_000],
                max_in_flight: 1,
            },
            paused: false,
            created_ms: 10,
            updated_ms: 20,
            next_seq: 9,
            pending: 3,
            next_attempt_log: 7,
            down: false,
        })
        .unwrap(),
    )
    .unwrap();
    // A third-shape row (schemas 3 and 4) is a fourth-shape row without its trailing
    // security settings, which encode as four zero bytes when they are the defaults.
    let mut third = EndpointRecord {
        max_backlog: Some(5),
        ..old.clone()
    };
    third.config.max_backlog = Some(5);
    let fourth = postcard::to_stdvec(&third).unwrap();
    assert_eq!(&fourth[fourth.len() - 4..], &[0, 0, 0, 0]);
    let back = EndpointRecord::decode(&fourth[..fourth.len() - 4]).unwrap();
    assert_eq!(back, third);
    assert_eq!(back.config.max_backlog, Some(5));
    // The fourth shape round-trips, and the nested config carries the settings.
    let security = EndpointSecurity {
        signature: SignatureMode::Standard,
        previous_secret: Some(PreviousSecret {
            secret: Secret::new("old"),
            expires_ms: 99,
        }),
        client_cert_file: Some("/c.pem".into()),
        client_key_file: Some("/k.pem".into()),
    };
    let mut rec = EndpointRecord {
        security: security.clone(),
        ..third
    };
    rec.config.security = security.clone();
    let back = EndpointRecord::decode(&postcard::to_stdvec(&rec).unwrap()).unwrap();
    assert_eq!(back.config.security, security);
    assert_eq!(back, rec);

    // Channels: the first shape decodes with no security settings; the second round-trips.
    let ch = ChannelRecord {
        id: "tg".into(),
        config: ChannelConfig {
            endpoint: "acme".into(),
            secret: None,
            rate_limit: 10,
            burst: 10,
            security: ChannelSecurity::default(),
        },
        created_ms: 1,
        updated_ms: 2,
        security: ChannelSecurity::default(),
    };
    let bytes = postcard::to_stdvec(&ch).unwrap();
    assert_eq!(&bytes[bytes.len() - 2..], &[0, 0]);
    assert_eq!(
        ChannelRecord::decode(&bytes[..bytes.len() - 2]),
        Some(ch.clone())
    );
    let sec = ChannelSecurity {
        previous_secret: None,
        timestamp_tolerance_ms: Some(300_000),
    };
    let mut ch2 = ChannelRecord {
        security: sec.clone(),
        ..ch
    };
    ch2.config.security = sec;
    assert_eq!(
        ChannelRecord::decode(&postcard::to_stdvec(&ch2).unwrap()),
        Some(ch2)
    );
}
