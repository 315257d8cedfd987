//! The typed views serialize exactly the JSON the server answered before they existed: each
//! is compared, field by field, with the `json!` view it replaced — plus the fields the v2
//! contract adds ("Connect and test": `hint`, `connected_at`, `state_since`,
//! `next_attempt_at`, an attempt's `kind` and `answer`; "Observability": `oldest_event_at`,
//! `oldest_event_age_secs`; "Backlog limits": `max_backlog`, `max_backlog_own`), named here
//! one by one.

use serde_json::{Value, json};

use super::*;
use crate::core::model::{ChannelConfig, EndpointConfig, EventProgress};
use crate::core::record::{EventMeta, Record};

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

fn old_error_json(e: &Option<ErrorInfo>) -> Value {
    match e {
        None => Value::Null,
        Some(e) => json!({
            "code": e.code, "message": e.message, "status": e.status, "at": rfc3339(e.at_ms),
            // v2
            "hint": crate::codes::lookup(&e.code).map(|c| c.fix),
        }),
    }
}

fn old_endpoint_view(rec: &EndpointRecord, rt: Option<&RuntimeView>) -> Value {
    let c = &rec.config;
    let state = match rt {
        Some(v) => v.state,
        None if rec.paused => "paused",
        None => "active",
    };
    json!({
        "id": rec.id,
        "url": c.url,
        "secret_set": c.secret.is_some(),
        "password_set": c.password.is_some(),
        "timeout": duration::format(Duration::from_millis(c.timeout_ms)),
        "retry_schedule": c.retry_schedule_ms.iter()
            .map(|ms| duration::format(Duration::from_millis(*ms))).collect::<Vec<_>>(),
        "max_in_flight": c.max_in_flight,
        "state": state,
        "backlog": rt.map(|v| v.backlog).unwrap_or(rec.pending),
        "in_flight": rt.map(|v| v.in_flight).unwrap_or(0),
        "last_error": old_error_json(&rt.and_then(|v| v.last_error.clone()).or(rec.last_error.clone())),
        "created_at": rfc3339(rec.created_ms),
        "updated_at": rfc3339(rec.updated_ms),
        // v2
        "connected_at": rec.connected_at_ms.map(rfc3339),
        "state_since": rec.state_since_ms.map(rfc3339),
        "next_attempt_at": rt.and_then(|v| v.next_attempt_ms).map(rfc3339),
        "oldest_event_at": rt.and_then(|v| v.oldest_event_ms).map(rfc3339),
        "oldest_event_age_secs": rt.and_then(|v| v.oldest_event_ms).map(|ms| (NOW - ms) / 1000),
        // v2, backlog limits
        "max_backlog": c.max_backlog.unwrap_or(DEFAULT_BACKLOG),
        "max_backlog_own": c.max_backlog.is_some(),
    })
}

/// The daemon's `--max-backlog` the views are made with.
const DEFAULT_BACKLOG: u64 = 5_000;

/// The instant the views are made at.
const NOW: u64 = 1_795_240_160_000;

fn old_attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "event_id": a.event_id, "seq": a.seq, "attempt": a.attempt,
        "started_at": rfc3339(a.started_ms), "status": a.status, "latency_ms": a.latency_ms,
        "error": a.error, "message": a.message,
        // v2
        "kind": a.kind.as_str(), "answer": a.answer,
    })
}

fn old_dead_json(d: &DeadLetter) -> Value {
    json!({
        "id": d.event_id, "endpoint": d.endpoint, "seq": d.seq, "reason": d.reason,
        "attempts": d.progress.attempts, "last_error": old_error_json(&d.progress.last_error),
        "dead_at": rfc3339(d.dead_at_ms),
    })
}

fn old_dead_detail(dl: &DeadLetter, rec: &StoredRecord) -> Value {
    let mut v = old_dead_json(dl);
    match rec {
        StoredRecord::Intact(rec) => {
            v["content_type"] = json!(rec.meta.content_type);
            v["event_type"] = json!(rec.meta.event_type);
            v["enqueued_at"] = json!(rfc3339(rec.meta.enqueued_at_ms));
            match std::str::from_utf8(&rec.body) {
                Ok(s) => v["payload"] = json!(s),
                Err(_) => {
                    v["payload"] = Value::Null;
                    v["payload_base64"] = json!(crate::api::http::to_base64(&rec.body));
                }
            }
        }
        StoredRecord::Corrupt { raw, why } => {
            v["content_type"] = Value::Null;
            v["event_type"] = Value::Null;
            v["enqueued_at"] = Value::Null;
            v["payload"] = Value::Null;
            v["payload_base64"] = json!(crate::api::http::to_base64(raw));
            v["record_error"] = json!(why);
        }
    }
    v["history"] = Value::Array(dl.progress.history.iter().map(old_attempt_json).collect());
    v
}

fn old_channel_view(r: &ChannelRecord) -> Value {
    json!({
        "id": r.id,
        "endpoint": r.config.endpoint,
        "secret_set": r.config.secret.is_some(),
        "rate_limit": r.config.rate_limit,
        "burst": r.config.burst,
        "webhook_path": format!("/webhook/{}", r.id),
        "created_at": rfc3339(r.created_ms),
        "updated_at": rfc3339(r.updated_ms),
    })
}

fn error_info() -> ErrorInfo {
    ErrorInfo {
        code: "HTTP_5XX".into(),
        message: "503 from the endpoint".into(),
        status: Some(503),
        at_ms: 1_795_240_146_123,
    }
}

fn attempt(n: u32, status: Option<u16>) -> AttemptRecord {
    AttemptRecord {
        event_id: "evt_01KAXYZ0000000000000000000".into(),
        seq: 3,
        attempt: n,
        started_ms: 1_795_240_146_000 + u64::from(n),
        status,
        latency_ms: 12,
        error: status.is_none().then(|| "ECONNREFUSED".to_string()),
        message: status.is_none().then(|| "connection refused".to_string()),
        kind: crate::core::model::AttemptKind::Delivery,
        answer: status.map(|_| "ok".to_string()),
        repeats: 0,
        last_ms: 0,
    }
}

#[test]
fn endpoint_views_are_unchanged() {
    let mut rec = EndpointRecord {
        id: "acme".into(),
        config: EndpointConfig {
            url: "https://h/x".into(),
            secret: Some("s".into()),
            password: None,
            timeout_ms: 2_500,
            retry_schedule_ms: vec![100, 5_000, 120_000, 7_200_000],
            max_in_flight: 3,
            max_backlog: None,
            security: Default::default(),
        },
        paused: false,
        created_ms: 1_795_240_146_123,
        updated_ms: 1_795_240_147_000,
        next_seq: 9,
        pending: 4,
        next_attempt_log: 0,
        down: false,
        connected_at_ms: Some(1_795_240_148_000),
        state_since_ms: Some(1_795_240_146_500),
        last_error: None,
        max_backlog: None,
        log: Default::default(),
        security: Default::default(),
    };
    let rt = RuntimeView {
        id: "acme".into(),
        state: "down",
        backlog: 7,
        in_flight: 2,
        last_error: Some(error_info()),
        next_attempt_ms: Some(1_795_240_150_000),
        oldest_event_ms: Some(1_795_240_146_900),
    };
    let quiet = RuntimeView {
        last_error: None,
        state: "active",
        ..rt.clone()
    };
    for (paused, own) in [(false, None), (true, None), (false, Some(3))] {
        rec.paused = paused;
        rec.config.max_backlog = own;
        for stored_error in [None, Some(error_info())] {
            rec.last_error = stored_error;
            for rt in [None, Some(&rt), Some(&quiet)] {
                assert_eq!(
                    to_value(&endpoint_view_at(&rec, rt, None, DEFAULT_BACKLOG, NOW)),
                    old_endpoint_view(&rec, rt)
                );
            }
        }
    }
}

/// Without a runtime view (offline inspection), the stored record says paused or down, in
/// the scheduler's order.
#[test]
fn a_stored_endpoint_shows_its_stored_state() {
    let mut rec = EndpointRecord {
        id: "acme".into(),
        config: EndpointConfig {
            url: "https://h/x".into(),
            secret: None,
            password: None,
            timeout_ms: 5_000,
            retry_schedule_ms: vec![],
            max_in_flight: 1,
            max_backlog: None,
            security: Default::default(),
        },
        paused: false,
        created_ms: 0,
        updated_ms: 0,
        next_seq: 1,
        pending: 0,
        next_attempt_log: 0,
        down: true,
        connected_at_ms: None,
        state_since_ms: None,
        last_error: None,
        max_backlog: None,
        log: Default::default(),
        security: Default::default(),
    };
    assert_eq!(endpoint_view(&rec, None, None, 1).state, "down");
    rec.paused = true;
    assert_eq!(endpoint_view(&rec, None, None, 1).state, "paused");
}

#[test]
fn attempt_and_dead_letter_views_are_unchanged() {
    for a in [attempt(1, Some(200)), attempt(2, None)] {
        assert_eq!(to_value(&attempt_view(&a)), old_attempt_json(&a));
    }
    let mut dl = DeadLetter {
        event_id: "evt_01KAXYZ0000000000000000000".into(),
        endpoint: "acme".into(),
        seq: 3,
        reason: "MAX_RETRIES_EXCEEDED".into(),
        progress: EventProgress {
            attempts: 2,
            failures: 2,
            last_error: Some(error_info()),
            history: vec![attempt(1, Some(500)), attempt(2, None)],
        },
        dead_at_ms: 1_795_240_149_000,
    };
    let meta = |event_type: Option<&str>| EventMeta {
        id: dl.event_id.clone(),
        enqueued_at_ms: 1_795_240_140_000,
        content_type: "application/json".into(),
        event_type: event_type.map(str::to_string),
    };
    let records = [
        StoredRecord::Intact(Record {
            meta: meta(Some("t")),
            body: bytes::Bytes::from_static(b"{\"x\":1}"),
        }),
        StoredRecord::Intact(Record {
            meta: meta(None),
            body: bytes::Bytes::from_static(&[0, 255, 254]),
        }),
        StoredRecord::Corrupt {
            raw: vec![1, 2, 3, 4],
            why: "checksum mismatch".into(),
        },
    ];
    for last_error in [Some(error_info()), None] {
        dl.progress.last_error = last_error;
        assert_eq!(to_value(&dead_letter_view(&dl)), old_dead_json(&dl));
        for rec in &records {
            assert_eq!(
                to_value(&dead_letter_detail(&dl, rec)),
                old_dead_detail(&dl, rec)
            );
        }
    }
}

#[test]
fn channel_views_are_unchanged() {
    let mut r = ChannelRecord {
        id: "happ".into(),
        config: ChannelConfig {
            endpoint: "acme".into(),
            secret: Some("k".into()),
            rate_limit: 10,
            burst: 30,
            security: Default::default(),
        },
        created_ms: 1_795_240_146_123,
        updated_ms: 1_795_240_146_124,
        security: Default::default(),
    };
    assert_eq!(to_value(&channel_view(&r)), old_channel_view(&r));
    r.config.secret = None;
    assert_eq!(to_value(&channel_view(&r)), old_channel_view(&r));
}

#[test]
fn accepted_answers_are_unchanged() {
    let ok = |duplicate| EnqueueOk {
        id: "evt_x".into(),
        seq: 5,
        duplicate,
    };
    let hint = crate::intake::DUPLICATE_HINT;
    // The single event.
    assert_eq!(
        to_value(&accepted(ok(false), "acme".into(), Some(hint))),
        json!({"id": "evt_x", "seq": 5, "endpoint": "acme"})
    );
    assert_eq!(
        to_value(&accepted(ok(true), "acme".into(), Some(hint))),
        json!({"id": "evt_x", "seq": 5, "endpoint": "acme", "duplicate": true,
               "hint": "this Idempotency-Key was used before; this is the original event"})
    );
    // A batch item.
    assert_eq!(
        to_value(&accepted(ok(true), "acme".into(), None)),
        json!({"id": "evt_x", "seq": 5, "endpoint": "acme", "duplicate": true})
    );
}

#[test]
fn repeated_probe_failures_show_their_count_and_last_time() {
    let mut a = attempt(3, None);
    assert!(to_value(&attempt_view(&a)).get("repeats").is_none());
    assert!(to_value(&attempt_view(&a)).get("last_at").is_none());
    a.kind = crate::core::model::AttemptKind::Probe;
    a.repeats = 149;
    a.last_ms = 1_795_240_149_000;
    let v = to_value(&attempt_view(&a));
    assert_eq!(v["repeats"], json!(149));
    assert_eq!(
        v["last_at"],
        json!(crate::core::timefmt::rfc3339(a.last_ms))
    );
    let back: crate::views::AttemptView = serde_json::from_value(v).unwrap();
    assert_eq!((back.repeats, back.last_at.is_some()), (149, true));
}
