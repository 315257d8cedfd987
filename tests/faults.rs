//! Black-box fault classes: each fault the receiver can inject is named correctly by the real
//! binary and handled as the contract says.

use testkit::{daemon, receiver};

use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig, TestCa, TlsMode};
use serde_json::{Value, json};

/// Sends one event to a fresh endpoint at `url` with no retries; returns its dead letter.
async fn dead_letter_for(d: &Daemon, id: &str, url: &str, timeout: &str) -> Value {
    d.put_endpoint(
        id,
        json!({"url": url, "retry_schedule": [], "timeout": timeout}),
    )
    .await;
    d.send(id, "{}").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(x) = d
            .dead_letters()
            .await
            .into_iter()
            .find(|x| x["endpoint"] == id)
        {
            return x;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter for {id}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn hang_reset_and_refused_connections_are_named() {
    let hang = Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Hang)))
        .await
        .unwrap();
    let reset = Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Reset)))
        .await
        .unwrap();
    let gone = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let gone_url = gone.url("/x");
    gone.stop().await;
    let d = Daemon::start(&["--allow-http"]).await;

    let started = std::time::Instant::now();
    let x = dead_letter_for(&d, "hang", &hang.url("/x"), "300ms").await;
    assert_eq!(x["last_error"]["code"], "ETIMEDOUT", "{x}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a hung receiver held the attempt"
    );
    let atts = d.req("GET", "/v1/endpoints/hang/attempts", None).await;
    let ms = atts.json["attempts"][0]["latency_ms"].as_u64().unwrap();
    assert!((290..2_000).contains(&ms), "hang attempt took {ms} ms");

    let x = dead_letter_for(&d, "reset", &reset.url("/x"), "5s").await;
    assert_eq!(x["last_error"]["code"], "ECONNRESET", "{x}");
    let x = dead_letter_for(&d, "gone", &gone_url, "5s").await;
    assert_eq!(x["last_error"]["code"], "ECONNREFUSED", "{x}");
    // Each of those blames the endpoint: it is down now.
    assert_eq!(d.endpoint("reset").await["state"], "down");
}

#[tokio::test]
async fn huge_answer_is_not_read_to_the_end_and_counts_as_success() {
    let r = Receiver::start(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::HugeBody {
            status: 200,
            bytes: 50_000_000,
        })),
    )
    .await
    .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("big", json!({"url": r.url("/x"), "timeout": "5s"}))
        .await;
    for _ in 0..3 {
        d.send("big", "{}").await;
    }
    let v = d
        .wait_for_endpoint("big", Duration::from_secs(20), |v| v["backlog"] == 0)
        .await;
    assert!(v["last_error"].is_null(), "{v}");
    assert!(d.dead_letters().await.is_empty());
    let atts = d.req("GET", "/v1/endpoints/big/attempts", None).await;
    for a in atts.json["attempts"].as_array().unwrap() {
        assert_eq!(a["status"], 200);
        assert!(a["error"].is_null());
    }
}

#[tokio::test]
async fn retry_after_429_is_waited_out_without_using_a_retry() {
    // Two 429s with Retry-After: 1, then 200 — with an empty schedule (no retries at all).
    let r = Receiver::start(ReceiverConfig::plain().with_plan(Plan::sequence(
        vec![(
            2,
            Behavior::RetryAfter {
                status: 429,
                secs: 1,
            },
        )],
        Behavior::Status(200),
    )))
    .await
    .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("rl", json!({"url": r.url("/x"), "retry_schedule": []}))
        .await;
    let (id, _) = d.send("rl", "{}").await;
    assert!(
        r.wait_for(
            |ds| ds.iter().any(|x| x.is_success()),
            Duration::from_secs(20)
        )
        .await
    );
    let ds = r.deliveries();
    assert_eq!(ds.len(), 3);
    assert!(
        ds.iter()
            .all(|x| x.event_id.as_deref() == Some(id.as_str()))
    );
    for w in ds.windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After not waited out: {gap:?}"
        );
    }
    assert!(d.dead_letters().await.is_empty());
}

#[tokio::test]
async fn certificate_for_another_name_is_a_tls_error() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca_pem(&ca_file).unwrap();
    let r = Receiver::start(ReceiverConfig::plain().with_tls(TlsMode::WrongName(ca.clone())))
        .await
        .unwrap();
    let d = Daemon::start(&["--ca-file", ca_file.to_str().unwrap()]).await;
    let x = dead_letter_for(&d, "wrong", &r.url("/x"), "5s").await;
    assert_eq!(x["last_error"]["code"], "TLS_ERROR", "{x}");
    assert!(r.deliveries().is_empty());
}
