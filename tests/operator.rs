//! Black-box: `--operator-endpoint` — Courier's own events (`endpoint.down`,
//! `endpoint.recovered`, `event.dead_lettered`, `endpoint.backlog_full`) reach the operator's
//! endpoint, typed, delivered like any other; none is about the operator endpoint itself.

use testkit::{daemon, receiver};

use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::{Value, json};

/// The operator events received so far: (type header, body).
fn events(r: &Receiver) -> Vec<(String, Value)> {
    r.successful()
        .iter()
        .map(|d| {
            (
                d.event_type.clone().unwrap_or_default(),
                serde_json::from_slice(&d.body).unwrap_or(Value::Null),
            )
        })
        .collect()
}

async fn wait_event(r: &Receiver, kind: &str, endpoint: &str) -> Value {
    let found = r
        .wait_for(
            |ds| {
                ds.iter().any(|d| {
                    d.event_type.as_deref() == Some(kind)
                        && serde_json::from_slice::<Value>(&d.body)
                            .is_ok_and(|v| v["endpoint"] == endpoint)
                })
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(found, "no {kind} about {endpoint}: {:?}", events(r));
    events(r)
        .into_iter()
        .find(|(k, v)| k == kind && v["endpoint"] == endpoint)
        .map(|(_, v)| v)
        .unwrap()
}

#[tokio::test]
async fn down_dead_letter_recovered_and_backlog_full_reach_the_operator() {
    let ops = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let bad =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(503))))
            .await
            .unwrap();
    let d = Daemon::start(&[
        "--allow-http",
        "--operator-endpoint",
        "ops",
        "--max-backlog",
        "2",
    ])
    .await;
    d.put_endpoint("ops", json!({"url": ops.url("/ops")})).await;
    d.put_endpoint("bad", json!({"url": bad.url("/bad"), "retry_schedule": []}))
        .await;
    let (id, _) = d.send("bad", "{}").await;

    let dl = wait_event(&ops, "event.dead_lettered", "bad").await;
    assert_eq!(dl["type"], "event.dead_lettered");
    assert_eq!(dl["count"], 1);
    assert_eq!(dl["event_ids"], json!([id]));
    assert_eq!(dl["reason"], "MAX_RETRIES_EXCEEDED");
    assert_eq!(dl["last_error"]["code"], "HTTP_5XX");
    assert!(dl["last_error"]["hint"].is_string(), "{dl}");
    assert!(dl["at"].as_str().unwrap().ends_with('Z'));
    let down = wait_event(&ops, "endpoint.down", "bad").await;
    assert_eq!(down["last_error"]["code"], "HTTP_5XX", "{down}");

    // The receiver answers again: the probe (the next held event) brings it back.
    d.send("bad", "{}").await;
    bad.set_plan(Plan::always(Behavior::Status(200)));
    let up = wait_event(&ops, "endpoint.recovered", "bad").await;
    assert_eq!(up["type"], "endpoint.recovered");

    // A full backlog is told once per crossing, however many requests it refuses.
    d.put_endpoint("full", json!({"url": ops.url("/full")}))
        .await;
    d.req("POST", "/v1/endpoints/full/pause", None).await;
    d.send("full", "{}").await;
    d.send("full", "{}").await;
    for _ in 0..5 {
        let a = d.req("POST", "/v1/endpoints/full/events", Some("{}")).await;
        assert_eq!(a.status, 429);
    }
    let full = wait_event(&ops, "endpoint.backlog_full", "full").await;
    assert_eq!(full["limit"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = events(&ops);
    let n_full = all
        .iter()
        .filter(|(k, _)| k == "endpoint.backlog_full")
        .count();
    assert_eq!(n_full, 1, "{all:?}");
    for (kind, body) in &all {
        if kind.starts_with("endpoint.") || kind.starts_with("event.") {
            assert_eq!(body["type"], kind.as_str());
        }
    }
}

#[tokio::test]
async fn a_failing_operator_endpoint_says_nothing_about_itself() {
    // The operator endpoint's own receiver fails: its events dead-letter and it goes down,
    // which must not make events about it (no feedback loop).
    let ops =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(500))))
            .await
            .unwrap();
    let bad =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(503))))
            .await
            .unwrap();
    let d = Daemon::start(&["--allow-http", "--operator-endpoint", "ops"]).await;
    d.put_endpoint("ops", json!({"url": ops.url("/ops"), "retry_schedule": []}))
        .await;
    d.put_endpoint("bad", json!({"url": bad.url("/bad"), "retry_schedule": []}))
        .await;
    d.send("bad", "{}").await;
    // bad's dead letter is told to ops, which fails it: ops dead-letters and goes down.
    d.wait_for_endpoint("ops", Duration::from_secs(20), |v| v["state"] == "down")
        .await;
    // ops answers again: what it holds drains; nothing of it is about ops.
    ops.set_plan(Plan::always(Behavior::Status(200)));
    d.wait_for_endpoint("ops", Duration::from_secs(20), |v| {
        v["state"] == "active" && v["backlog"] == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = events(&ops);
    assert!(
        all.iter()
            .any(|(k, v)| k == "endpoint.down" && v["endpoint"] == "bad"),
        "{all:?}"
    );
    assert!(
        all.iter().all(|(_, v)| v["endpoint"] != "ops"),
        "an event about the operator endpoint itself: {all:?}"
    );
    let dl: Vec<Value> = d.dead_letters().await;
    assert!(dl.iter().any(|x| x["endpoint"] == "ops"), "{dl:?}");
    assert_eq!(
        d.dead_letters().await.len(),
        dl.len(),
        "no storm of dead letters"
    );
}
