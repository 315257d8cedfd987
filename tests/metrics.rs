//! Black-box: `/metrics` after a scripted run (counters at 0 before any traffic, backlog per
//! endpoint while paused, attempts by code, dead letters by reason, deliveries, the
//! histograms' counts, the `_other` cap), `courier status`, and `--max-backlog`.

use testkit::{daemon, receiver};

use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::json;

/// The value of the sample `series` (name with labels, exactly as exported).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics(d: &Daemon) -> String {
    let a = d.req("GET", "/metrics", None).await;
    assert_eq!(a.status, 200);
    String::from_utf8_lossy(&a.raw).into_owned()
}

/// Polls `/metrics` until `series` has `want`.
async fn wait_sample(d: &Daemon, series: &str, want: f64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics(d).await;
        if sample(&m, series) == Some(want) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never reached {want}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_tell_a_scripted_run() {
    let ok = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let failing =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(503))))
            .await
            .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;

    // Before any traffic: the counters are there, at 0.
    let m = metrics(&d).await;
    for series in [
        "courier_events_accepted_total",
        "courier_deliveries_total",
        "courier_attempts_total{code=\"OK\"}",
        "courier_dead_letters_total{reason=\"MAX_RETRIES_EXCEEDED\"}",
        "courier_ingress_requests_total{code=\"OK\"}",
        "courier_writer_commit_failures_total",
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series}:\n{m}");
    }

    // Paused: the backlog per endpoint, and the oldest event's age.
    d.put_endpoint("held", json!({"url": ok.url("/held")}))
        .await;
    d.req("POST", "/v1/endpoints/held/pause", None).await;
    for _ in 0..3 {
        d.send("held", "{}").await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = wait_sample(&d, "courier_endpoint_backlog{endpoint=\"held\"}", 3.0).await;
    let age = sample(
        &m,
        "courier_endpoint_oldest_event_age_seconds{endpoint=\"held\"}",
    )
    .unwrap();
    assert!((1.0..60.0).contains(&age), "oldest age {age}:\n{m}");
    assert_eq!(
        sample(
            &m,
            "courier_endpoint_state{endpoint=\"held\",state=\"paused\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "courier_endpoint_state{endpoint=\"held\",state=\"active\"}"
        ),
        Some(0.0)
    );

    // A failing receiver: attempts by code, a dead letter by reason, the endpoint down.
    d.put_endpoint(
        "bad",
        json!({"url": failing.url("/bad"), "retry_schedule": ["100ms"]}),
    )
    .await;
    d.send("bad", "{}").await;
    let m = wait_sample(
        &d,
        "courier_dead_letters_total{reason=\"MAX_RETRIES_EXCEEDED\"}",
        1.0,
    )
    .await;
    assert_eq!(
        sample(&m, "courier_attempts_total{code=\"HTTP_5XX\"}"),
        Some(2.0),
        "{m}"
    );
    let m = wait_sample(
        &d,
        "courier_endpoint_state{endpoint=\"bad\",state=\"down\"}",
        1.0,
    )
    .await;
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"bad\"}"),
        Some(0.0)
    );

    // Deliveries, and the histograms' counts.
    d.req("POST", "/v1/endpoints/held/resume", None).await;
    let m = wait_sample(&d, "courier_deliveries_total", 3.0).await;
    assert_eq!(
        sample(&m, "courier_attempts_total{code=\"OK\"}"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "courier_events_accepted_total"),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "courier_delivery_latency_seconds_count"),
        Some(3.0),
        "{m}"
    );
    let lat = sample(&m, "courier_delivery_latency_seconds_sum").unwrap();
    assert!(
        lat >= 3.0,
        "each delivery waited over a second while paused: {lat}"
    );
    assert_eq!(
        sample(&m, "courier_delivery_latency_seconds_bucket{le=\"0.5\"}"),
        Some(0.0),
        "{m}"
    );
    assert!(
        sample(&m, "courier_attempt_duration_seconds_count").unwrap_or(0.0) >= 5.0,
        "{m}"
    );
    assert!(sample(&m, "courier_commit_batch_events_count").unwrap_or(0.0) >= 1.0);
    assert!(sample(&m, "courier_commit_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"held\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "courier_endpoint_oldest_event_age_seconds{endpoint=\"held\"}"
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn endpoints_past_the_cap_are_summed_under_other() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let d = Daemon::start(&["--allow-http", "--metrics-max-endpoints", "2"]).await;
    for (id, n) in [("a", 1), ("b", 2), ("c", 3)] {
        d.put_endpoint(id, json!({"url": r.url("/x")})).await;
        d.req("POST", &format!("/v1/endpoints/{id}/pause"), None)
            .await;
        for _ in 0..n {
            d.send(id, "{}").await;
        }
    }
    let m = metrics(&d).await;
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"a\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"b\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"_other\"}"),
        Some(3.0)
    );
    assert!(!m.contains("endpoint=\"c\""), "{m}");
    assert_eq!(
        sample(
            &m,
            "courier_endpoint_state{endpoint=\"_other\",state=\"paused\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn status_shows_the_daemon_on_one_screen() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/a")})).await;
    d.put_endpoint("held", json!({"url": r.url("/h")})).await;
    d.req("POST", "/v1/endpoints/held/pause", None).await;
    d.send("acme", "{}").await;
    d.send("held", "{}").await;
    d.send("held", "{}").await;
    assert!(
        r.wait_for(|ds| ds.len() == 1, Duration::from_secs(10))
            .await
    );

    let (code, out, err) = d.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["backlog"], 2, "{v}");
    assert_eq!(
        v["endpoints"],
        json!({"total": 2, "active": 1, "paused": 1, "down": 0})
    );
    assert_eq!(v["dead_letters"], 0);
    assert_eq!(v["oldest_waiting"]["endpoint"], "held");
    assert!(v["journal_bytes"].as_u64().unwrap() > 0);
    assert!(v["intake_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["delivery_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["storage"], "ok");

    let (code, out, err) = d.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "uptime:",
        "intake:",
        "delivery:",
        "backlog:       2 events",
        "endpoints:     2 (1 active, 1 paused, 0 down)",
        "dead letters:  0",
        "on held",
        "journal:",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
}

#[tokio::test]
async fn the_backlog_limit_refuses_intake_until_the_endpoint_drains() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let d = Daemon::start(&["--allow-http", "--max-backlog", "2"]).await;
    d.put_endpoint("full", json!({"url": r.url("/f")})).await;
    d.put_endpoint("other", json!({"url": r.url("/o")})).await;
    d.req("POST", "/v1/endpoints/full/pause", None).await;
    d.send("full", "{}").await;
    d.send("full", "{}").await;
    let a = d.req("POST", "/v1/endpoints/full/events", Some("{}")).await;
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.json["error"]["code"], "BACKLOG_FULL");
    assert!(
        a.json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--max-backlog")
    );
    // A batch naming the full endpoint is refused whole.
    let batch = "{\"endpoint\":\"other\",\"body\":{}}\n{\"endpoint\":\"full\",\"body\":{}}\n";
    let a = d.req("POST", "/v1/events/batch", Some(batch)).await;
    assert_eq!(a.status, 429, "{a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"full\"")
    );
    // Other endpoints are unaffected; nothing was dropped.
    d.send("other", "{}").await;
    assert_eq!(d.endpoint("full").await["backlog"], 2);
    assert!(d.endpoint("other").await["backlog"].as_u64().unwrap() <= 1);
    // After the drain, intake resumes.
    d.req("POST", "/v1/endpoints/full/resume", None).await;
    d.wait_for_endpoint("full", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;
    d.send("full", "{}").await;
}

#[tokio::test]
async fn the_oldest_age_survives_a_restart_with_nothing_loaded() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("held", json!({"url": r.url("/h")})).await;
    d.req("POST", "/v1/endpoints/held/pause", None).await;
    d.send("held", "{}").await;
    d.send("held", "{}").await;
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.spawn().await;
    // Paused since before the restart: its events are in the journal only.
    let m = metrics(&d).await;
    assert_eq!(
        sample(&m, "courier_endpoint_backlog{endpoint=\"held\"}"),
        Some(2.0),
        "{m}"
    );
    let age = sample(
        &m,
        "courier_endpoint_oldest_event_age_seconds{endpoint=\"held\"}",
    )
    .unwrap();
    assert!(age >= 1.0, "{age}\n{m}");
    let (code, out, _) = d.cli(&["status", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["oldest_waiting"]["endpoint"], "held", "{v}");
    assert!(v["oldest_waiting"]["age_secs"].as_u64().unwrap() >= 1);
}
