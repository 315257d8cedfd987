//! The coalescing of operator events, with time as an argument.

use super::*;

fn dead(endpoint: &str, id: &str) -> OperatorEvent {
    OperatorEvent::DeadLettered {
        endpoint: Arc::from(endpoint),
        at_ms: 1_700_000_000_000,
        event_id: id.into(),
        reason: "MAX_RETRIES_EXCEEDED".into(),
        last_error: Some(ErrorInfo {
            code: "HTTP_5XX".into(),
            message: "503".into(),
            status: Some(503),
            at_ms: 1,
        }),
    }
}

#[test]
fn the_first_dead_letter_goes_at_once_and_a_storm_becomes_one_event_per_window() {
    let t0 = Instant::now();
    let mut c = Coalescer::default();
    let (kind, first) = c.take(t0, dead("a", "evt_1")).unwrap();
    assert_eq!(kind, EVENT_DEAD_LETTERED);
    assert_eq!(first["count"], 1);
    assert_eq!(first["event_ids"], json!(["evt_1"]));
    assert_eq!(first["last_error"]["code"], "HTTP_5XX");
    assert!(first["last_error"]["hint"].is_string());
    for i in 2..=100 {
        assert!(
            c.take(
                t0 + Duration::from_millis(i),
                dead("a", &format!("evt_{i}"))
            )
            .is_none()
        );
    }
    // Another endpoint has its own window.
    assert!(c.take(t0, dead("b", "evt_b")).is_some());
    assert_eq!(c.next_due(), Some(t0 + COALESCE));
    assert!(c.due(t0 + COALESCE / 2).is_empty());
    let out = c.due(t0 + COALESCE);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1["endpoint"], "a");
    assert_eq!(out[0].1["count"], 99);
    assert_eq!(out[0].1["event_ids"].as_array().unwrap().len(), MAX_IDS);
    // A quiet window is forgotten; the next dead letter goes at once again.
    assert!(c.due(t0 + COALESCE * 2).is_empty());
    assert!(c.windows.is_empty());
    assert!(c.take(t0 + COALESCE * 3, dead("a", "evt_x")).is_some());
}

#[test]
fn other_events_are_not_held_and_say_what_happened() {
    let mut c = Coalescer::default();
    let now = Instant::now();
    let (k, b) = c
        .take(
            now,
            OperatorEvent::BacklogFull {
                endpoint: Arc::from("a"),
                at_ms: 0,
                limit: 5,
            },
        )
        .unwrap();
    assert_eq!(k, ENDPOINT_BACKLOG_FULL);
    assert_eq!(b["limit"], 5);
    assert_eq!(b["at"], "1970-01-01T00:00:00.000Z");
    let (k, b) = c
        .take(
            now,
            OperatorEvent::Down {
                endpoint: Arc::from("a"),
                at_ms: 0,
                last_error: None,
            },
        )
        .unwrap();
    assert_eq!(k, ENDPOINT_DOWN);
    assert_eq!(b["endpoint"], "a");
    assert!(b["last_error"].is_null());
}

#[tokio::test]
async fn nothing_is_said_about_the_operator_endpoint_itself() {
    let (tx, mut rx) = channel("ops");
    tx.emit(dead("ops", "evt_1"));
    tx.emit(OperatorEvent::Down {
        endpoint: Arc::from("ops"),
        at_ms: 0,
        last_error: None,
    });
    tx.emit(dead("acme", "evt_2"));
    drop(tx);
    let got = rx.recv().await.unwrap();
    assert_eq!(got.endpoint(), "acme");
    assert!(rx.recv().await.is_none());
}
