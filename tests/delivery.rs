//! Black-box delivery tests: the real binary delivering to real receivers on 127.0.0.1, plain
//! HTTP and HTTPS with a throwaway CA. Timing tolerances hold on a loaded 2-core machine.

use testkit::{daemon, receiver};

use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig, TestCa, TlsMode};
use serde_json::json;

const SECRET: &str = "s3cret";

async fn plain(plan: Plan) -> Receiver {
    Receiver::start(ReceiverConfig::plain().with_secret(SECRET).with_plan(plan))
        .await
        .expect("receiver")
}

fn ids_of(ds: &[receiver::Delivery]) -> Vec<String> {
    ds.iter().filter_map(|d| d.event_id.clone()).collect()
}

#[tokio::test]
async fn thousand_events_arrive_in_order_signed() {
    let r = plain(Plan::always(Behavior::Status(200))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook"), "secret": SECRET}))
        .await;
    let mut sent = Vec::new();
    for i in 0..1000 {
        let (id, seq) = d.send("acme", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(seq, i + 1);
        sent.push(id);
    }
    assert!(
        r.wait_for(|ds| ds.len() >= 1000, Duration::from_secs(60))
            .await,
        "only {} delivered",
        r.deliveries().len()
    );
    let got = r.deliveries();
    assert_eq!(ids_of(&got), sent, "order differs");
    for (i, del) in got.iter().enumerate() {
        assert_eq!(del.signature_valid, Some(true), "bad signature on {i}");
        assert_eq!(del.attempt, Some(1));
        assert_eq!(&del.body[..], format!("{{\"n\":{i}}}").as_bytes());
        assert_eq!(del.content_type.as_deref(), Some("application/json"));
    }
    d.wait_for_endpoint("acme", Duration::from_secs(5), |v| v["backlog"] == 0)
        .await;
}

#[tokio::test]
async fn https_with_a_throwaway_ca_and_bad_certificates() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca_pem(&ca_file).unwrap();
    let good = Receiver::start(ReceiverConfig::tls(&ca).with_secret(SECRET))
        .await
        .unwrap();
    let bad = Receiver::start(ReceiverConfig::plain().with_tls(TlsMode::BadCert))
        .await
        .unwrap();
    // No --allow-http: HTTPS only, trusting the test CA.
    let d = Daemon::start(&["--ca-file", ca_file.to_str().unwrap()]).await;
    assert!(good.url("/x").starts_with("https://"));
    d.put_endpoint(
        "good",
        json!({"url": good.url("/hook"), "secret": SECRET, "password": "pw"}),
    )
    .await;
    d.put_endpoint(
        "bad",
        json!({"url": bad.url("/hook"), "retry_schedule": []}),
    )
    .await;
    let (id, _) = d.send("good", r#"{"event":"call.completed"}"#).await;
    d.send("bad", "{}").await;
    assert!(
        good.wait_for(|ds| !ds.is_empty(), Duration::from_secs(20))
            .await
    );
    let del = &good.deliveries()[0];
    assert_eq!(del.event_id.as_deref(), Some(id.as_str()));
    assert_eq!(del.signature_valid, Some(true));
    assert_eq!(del.authorization.as_deref(), Some("Bearer pw"));
    // The untrusted certificate is a TLS_ERROR attempt and, with no retries, a dead letter.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let dl = d.dead_letters().await;
        if let Some(x) = dl.iter().find(|x| x["endpoint"] == "bad") {
            assert_eq!(x["last_error"]["code"], "TLS_ERROR", "{x}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter for bad cert"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        bad.deliveries().is_empty(),
        "nothing crosses an untrusted TLS session"
    );
}

#[tokio::test]
async fn slow_receiver_times_out_at_the_endpoint_timeout() {
    let r = plain(Plan::always(Behavior::Sleep {
        ms: 4_000,
        then: 200,
    }))
    .await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "slow",
        json!({"url": r.url("/hook"), "timeout": "500ms", "retry_schedule": ["100ms"]}),
    )
    .await;
    d.send("slow", "{}").await;
    // Two attempts, then a dead letter.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let atts = loop {
        let a = d
            .req("GET", "/v1/endpoints/slow/attempts?limit=10", None)
            .await;
        let list = a.json["attempts"].as_array().cloned().unwrap_or_default();
        if list.len() >= 2 {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "attempts: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for a in &atts {
        assert_eq!(a["error"], "ETIMEDOUT", "{a}");
        assert!(a["status"].is_null());
        let ms = a["latency_ms"].as_u64().unwrap();
        // Ends at the timeout, not when the receiver would have answered (4 s).
        assert!((490..1_500).contains(&ms), "attempt took {ms} ms");
    }
    // The receiver saw both attempts start.
    assert!(r.wait_for(|ds| ds.len() >= 2, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn scaled_down_schedule_is_followed_then_dead_letter() {
    let r = plain(Plan::always(Behavior::Status(500))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "acme",
        json!({"url": r.url("/hook"), "retry_schedule": ["200ms", "400ms", "600ms"]}),
    )
    .await;
    let (id, _) = d.send("acme", "{}").await;
    assert!(
        r.wait_for(|ds| ds.len() >= 4, Duration::from_secs(20))
            .await
    );
    let ds = r.deliveries();
    let attempts: Vec<u32> = ds.iter().filter_map(|x| x.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    for (i, want) in [200u128, 400, 600].iter().enumerate() {
        let gap = ds[i + 1].at.duration_since(ds[i].at).as_millis();
        assert!(
            gap >= *want && gap < want + 700,
            "gap before retry {} was {gap} ms, want {want} ms",
            i + 1
        );
    }
    // Dead letter with the right reason, and no fifth attempt.
    let dl = d.wait_dead_letters(1, Duration::from_secs(10)).await;
    assert_eq!(dl[0]["id"], id.as_str());
    assert_eq!(dl[0]["reason"], "MAX_RETRIES_EXCEEDED");
    assert_eq!(dl[0]["attempts"], 4);
    assert_eq!(dl[0]["last_error"]["code"], "HTTP_5XX");
    assert_eq!(dl[0]["last_error"]["status"], 500);
    let one = d.req("GET", &format!("/v1/dead-letters/{id}"), None).await;
    assert_eq!(one.json["payload"], "{}");
    assert_eq!(one.json["history"].as_array().unwrap().len(), 4);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(r.deliveries().len(), 4);
}

#[tokio::test]
async fn downtime_holds_backlog_then_drains_in_order_with_replayed_dead_letter() {
    let r = plain(Plan::always(Behavior::Status(503))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "acme",
        json!({"url": r.url("/hook"), "secret": SECRET,
               "retry_schedule": ["100ms", "100ms", "100ms"]}),
    )
    .await;
    let (first, _) = d.send("acme", r#"{"n":0}"#).await;
    // The first event exhausts its schedule: dead letter, endpoint down.
    d.wait_for_endpoint("acme", Duration::from_secs(20), |v| v["state"] == "down")
        .await;
    // The view turns `down` as the scheduler decides; the dead letter is listed once the writer
    // committed it, a moment later.
    let dl = d.wait_dead_letters(1, Duration::from_secs(5)).await;
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["id"], first.as_str());
    // Events keep arriving while it is down; they are held, not dead-lettered.
    let mut ids = vec![first.clone()];
    for i in 1..20 {
        ids.push(d.send("acme", &format!("{{\"n\":{i}}}")).await.0);
    }
    // The operator replays the dead letter: it goes back to its place at the head.
    let a = d
        .req("POST", &format!("/v1/dead-letters/{first}/replay"), None)
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert!(d.dead_letters().await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = d.endpoint("acme").await;
    assert_eq!(v["state"], "down");
    assert_eq!(v["backlog"], 20);
    assert_eq!(
        d.dead_letters().await.len(),
        0,
        "held events were dead-lettered"
    );
    // The endpoint recovers: everything arrives, in order, same ids.
    r.set_plan(Plan::always(Behavior::Status(200)));
    assert!(
        r.wait_for(
            |ds| ds.iter().filter(|x| x.is_success()).count() >= 20,
            Duration::from_secs(30)
        )
        .await,
        "not drained: {}",
        d.endpoint("acme").await
    );
    let ok: Vec<String> = ids_of(&r.successful());
    assert_eq!(ok, ids);
    let first_ok = &r.successful()[0];
    assert!(
        first_ok.attempt.unwrap() > 4,
        "replay continues attempt numbers"
    );
    assert!(
        r.successful()
            .iter()
            .all(|x| x.signature_valid == Some(true))
    );
    let v = d
        .wait_for_endpoint("acme", Duration::from_secs(5), |v| v["backlog"] == 0)
        .await;
    assert_eq!(v["state"], "active");
}

#[tokio::test]
async fn replay_after_recovery_keeps_the_event_id() {
    let r = plain(Plan::always(Behavior::Status(400))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook"), "retry_schedule": []}))
        .await;
    let (id, _) = d.send("acme", "{\"order\":1047}").await;
    d.wait_dead_letters(1, Duration::from_secs(10)).await;
    // A 400 is the receiver rejecting this event, not an outage: the endpoint stays active.
    assert_eq!(d.endpoint("acme").await["state"], "active");
    r.set_plan(Plan::always(Behavior::Status(200)));
    let a = d
        .req("POST", &format!("/v1/dead-letters/{id}/replay"), None)
        .await;
    assert_eq!(a.status, 202);
    assert!(
        r.wait_for(
            |ds| ds.iter().any(|x| x.is_success()),
            Duration::from_secs(10)
        )
        .await
    );
    let ok = r.successful();
    assert_eq!(ok[0].event_id.as_deref(), Some(id.as_str()));
    assert_eq!(ok[0].attempt, Some(2));
    assert_eq!(&ok[0].body[..], b"{\"order\":1047}");
    // Replaying again: it is no longer a dead letter.
    let a = d
        .req("POST", &format!("/v1/dead-letters/{id}/replay"), None)
        .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn pause_holds_and_resume_drains_in_order() {
    let r = plain(Plan::always(Behavior::Status(200))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(d.send("acme", &format!("{{\"n\":{i}}}")).await.0);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(r.deliveries().is_empty(), "paused endpoint received events");
    let v = d.endpoint("acme").await;
    assert_eq!(
        (v["state"].as_str(), v["backlog"].as_u64()),
        (Some("paused"), Some(50))
    );
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    assert!(
        r.wait_for(|ds| ds.len() >= 50, Duration::from_secs(20))
            .await
    );
    assert_eq!(ids_of(&r.deliveries()), ids);
}

#[tokio::test]
async fn dead_letter_cli_lists_shows_replays_and_purges() {
    let r = plain(Plan::always(Behavior::Status(422))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook"), "retry_schedule": []}))
        .await;
    let (a, _) = d.send("acme", r#"{"a":1}"#).await;
    let (b, _) = d.send("acme", r#"{"b":2}"#).await;
    d.wait_dead_letters(2, Duration::from_secs(10)).await;
    let (code, out, _) = d.cli(&["dlq", "list", "--endpoint", "acme"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&a) && out.contains(&b) && out.contains("MAX_RETRIES_EXCEEDED"),
        "{out}"
    );
    let (code, out, _) = d.cli(&["dlq", "show", &a]);
    assert_eq!(code, 0);
    assert!(out.contains(r#"{"a":1}"#), "{out}");
    let (code, _, _) = d.cli(&["dlq", "purge", &b]);
    assert_eq!(code, 0);
    r.set_plan(Plan::always(Behavior::Status(200)));
    let (code, out, err) = d.cli(&["dlq", "replay", &a]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        r.wait_for(
            |ds| ds.iter().any(|x| x.is_success()),
            Duration::from_secs(10)
        )
        .await
    );
    assert!(d.dead_letters().await.is_empty());
    let (code, _, err) = d.cli(&["dlq", "show", &b]);
    assert_eq!(code, 1);
    assert!(err.contains("DEAD_LETTER_NOT_FOUND"), "{err}");
}
