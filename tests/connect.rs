//! Black-box tests of connect and test, the synchronous call, retry now and the operator's
//! `endpoint show`, against the real binary and real receivers on 127.0.0.1: the seeds' common
//! errors come out with their codes and hints, tests and calls run outside the queue, and what
//! an operator sees survives a restart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{daemon, receiver};

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig, TlsMode};

const SECRET: &str = "connect-secret-7Q";
const PASSWORD: &str = "connect-pass-9Z";

async fn receiver(plan: Plan) -> Receiver {
    Receiver::start(ReceiverConfig::plain().with_secret(SECRET).with_plan(plan))
        .await
        .unwrap()
}

async fn test(d: &Daemon, id: &str) -> Value {
    let a = d
        .req("POST", &format!("/v1/endpoints/{id}/test"), None)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json
}

async fn attempts(d: &Daemon, id: &str) -> Vec<Value> {
    let a = d
        .req(
            "GET",
            &format!("/v1/endpoints/{id}/attempts?limit=50"),
            None,
        )
        .await;
    a.json["attempts"].as_array().cloned().unwrap_or_default()
}

fn fix(code: &str) -> &'static str {
    courier::codes::lookup(code)
        .unwrap_or_else(|| panic!("{code} not catalogued"))
        .fix
}

/// No secret or password in any answer or log line of the run.
fn no_secrets(d: &Daemon, texts: &[&str]) {
    for t in texts.iter().copied().chain([d.log().as_str()]) {
        assert!(
            !t.contains(SECRET) && !t.contains(PASSWORD),
            "a secret leaked: {t}"
        );
    }
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_receiver_is_connected_and_the_ping_is_signed() {
    let r = receiver(Plan::always(Behavior::Status(200))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "good",
        json!({"url": r.url("/hook"), "secret": SECRET, "password": PASSWORD}),
    )
    .await;
    assert_eq!(d.endpoint("good").await["connected_at"], Value::Null);
    let t = test(&d, "good").await;
    assert_eq!(t["connected"], true, "{t}");
    assert_eq!(
        (t["status"].as_u64(), &t["error"]),
        (Some(200), &Value::Null)
    );
    assert!(t["latency_ms"].as_u64().is_some());
    let got = r.deliveries();
    assert_eq!(got.len(), 1);
    let ping = &got[0];
    assert_eq!(ping.event_type.as_deref(), Some("webhook.ping"));
    assert_eq!(ping.signature_valid, Some(true), "the ping is signed");
    assert_eq!(
        ping.authorization.as_deref(),
        Some(format!("Bearer {PASSWORD}").as_str())
    );
    let body: Value = serde_json::from_slice(&ping.body).unwrap();
    assert_eq!(body["type"], "webhook.ping");
    let v = d.endpoint("good").await;
    assert!(v["connected_at"].is_string(), "{v}");
    let log = attempts(&d, "good").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0]["kind"].as_str(), log[0]["status"].as_u64()),
        (Some("test"), Some(200))
    );
    assert_eq!(v["backlog"], 0, "a test is no event");

    let (code, out, err) = d.cli(&["endpoint", "test", "good"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Connected"), "{out}");
    let (code, out, err) = d.cli(&[
        "endpoint",
        "connect",
        "good2",
        &r.url("/hook"),
        "--password",
        PASSWORD,
        "--secret",
        SECRET,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Connected: endpoint good2 answered in"),
        "{out}"
    );
    no_secrets(&d, &[&out, &err, &v.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_common_errors_come_with_their_code_and_hint() {
    let plan = Plan::always(Behavior::Status(200))
        .with_path("/401", Behavior::Status(401))
        .with_path("/403", Behavior::Status(403))
        .with_path("/404", Behavior::Status(404))
        .with_path("/503", Behavior::Status(503))
        .with_path(
            "/slow",
            Behavior::Sleep {
                ms: 3_000,
                then: 200,
            },
        );
    let r = receiver(plan).await;
    let gone = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let refused = gone.url("/x");
    gone.stop().await;
    let untrusted = Receiver::start(ReceiverConfig::plain().with_tls(TlsMode::BadCert))
        .await
        .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    let cases = [
        ("wrong-password", r.url("/401"), "HTTP_401", Some(401)),
        ("forbidden", r.url("/403"), "HTTP_403", Some(403)),
        ("not-found", r.url("/404"), "HTTP_404", Some(404)),
        ("service-down", r.url("/503"), "HTTP_5XX", Some(503)),
        ("slow", r.url("/slow"), "ETIMEDOUT", None),
        ("refused", refused, "ECONNREFUSED", None),
        ("untrusted", untrusted.url("/x"), "TLS_ERROR", None),
    ];
    for (id, url, code, status) in &cases {
        d.put_endpoint(
            id,
            json!({"url": url, "timeout": "500ms", "password": PASSWORD}),
        )
        .await;
        let started = Instant::now();
        let t = test(&d, id).await;
        assert_eq!(t["connected"], false, "{id}: {t}");
        assert_eq!(t["status"].as_u64().map(|s| s as u16), *status, "{id}: {t}");
        assert_eq!(t["error"]["code"], *code, "{id}: {t}");
        assert_eq!(
            t["error"]["hint"],
            fix(code),
            "{id}: the hint is the catalogue's fix"
        );
        assert!(
            t["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        if *id == "slow" {
            assert!(
                started.elapsed() < Duration::from_millis(2_500),
                "the test is bounded by the endpoint's timeout"
            );
        }
        let log = attempts(&d, id).await;
        assert_eq!(
            (log[0]["kind"].as_str(), &log[0]["error"]),
            (Some("test"), &json!(code))
        );
    }
    // The seeds' wording is what the catalogue says.
    let meaning = |c: &str| courier::codes::lookup(c).map(|i| i.meaning).unwrap_or("");
    assert!(meaning("HTTP_401").starts_with("wrong password"));
    assert!(meaning("HTTP_404").starts_with("URL not found"));
    assert!(meaning("HTTP_5XX").starts_with("service down"));
    assert!(meaning("ETIMEDOUT").starts_with("slow response"));
    assert!(meaning("ECONNREFUSED").starts_with("unreachable"));

    // `endpoint connect` says Connected only on a 2xx; otherwise code and hint, exit code 1.
    let (code, out, err) = d.cli(&["endpoint", "connect", "cli-401", &r.url("/401")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("Not connected"), "{out}");
    assert!(
        err.contains("error: HTTP_401: HTTP 401 Unauthorized"),
        "{err}"
    );
    assert!(err.contains(&format!("hint: {}", fix("HTTP_401"))), "{err}");
    let (code, out, err) = d.cli(&["endpoint", "connect", "cli-ok", &r.url("/fine")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = d.cli(&["endpoint", "test", "not-found"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP_404") && err.contains("hint:"), "{err}");
    let a = d.req("POST", "/v1/endpoints/nope/test", None).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    no_secrets(&d, &[&out, &err]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_returns_the_receivers_answer_bounded() {
    let plan = Plan::always(Behavior::Answer {
        status: 200,
        content_type: "application/json; charset=utf-8".into(),
        body: r#"{"reply":"hi","items":[1,2]}"#.into(),
    })
    .with_path(
        "/text",
        Behavior::Answer {
            status: 404,
            content_type: "text/plain".into(),
            body: "no such tool".into(),
        },
    )
    .with_path(
        "/huge",
        Behavior::HugeBody {
            status: 200,
            bytes: 3 << 20,
        },
    );
    let r = receiver(plan).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("tool", json!({"url": r.url("/tool"), "secret": SECRET}))
        .await;
    let a = d
        .try_request(
            "POST",
            "/v1/endpoints/tool/call",
            Some(bytes::Bytes::from_static(br#"{"q":1}"#)),
            &[
                ("content-type", "application/json"),
                ("x-event-type", "tool.lookup"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let c = &a.json;
    assert_eq!(c["status"], 200, "{c}");
    assert_eq!(c["body"], json!({"reply": "hi", "items": [1, 2]}));
    assert_eq!(
        (c["body_encoding"].as_str(), &c["truncated"]),
        (Some("json"), &json!(false))
    );
    assert_eq!(c["content_type"], "application/json; charset=utf-8");
    assert_eq!(c["error"], Value::Null);
    let got = r.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], br#"{"q":1}"#);
    assert_eq!(got[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(got[0].event_type.as_deref(), Some("tool.lookup"));
    assert_eq!(got[0].signature_valid, Some(true));
    let log = attempts(&d, "tool").await;
    assert_eq!(log[0]["kind"], "call");
    assert_eq!(log[0]["answer"], r#"{"reply":"hi","items":[1,2]}"#);
    assert_eq!(d.endpoint("tool").await["backlog"], 0);

    // A non-2xx answer is an error, with its body all the same.
    d.put_endpoint("tool-text", json!({"url": r.url("/text")}))
        .await;
    let c = d
        .req("POST", "/v1/endpoints/tool-text/call", Some("{}"))
        .await
        .json;
    assert_eq!(
        (c["status"].as_u64(), c["body"].as_str()),
        (Some(404), Some("no such tool"))
    );
    assert_eq!(c["body_encoding"], "text");
    assert_eq!(c["error"]["code"], "HTTP_404");
    assert_eq!(c["error"]["hint"], fix("HTTP_404"));

    // At most 1 MiB of the answer is read: a longer one is cut there and said so.
    d.put_endpoint(
        "tool-huge",
        json!({"url": r.url("/huge"), "timeout": "10s"}),
    )
    .await;
    let c = d
        .req("POST", "/v1/endpoints/tool-huge/call", Some("{}"))
        .await
        .json;
    assert_eq!(c["truncated"], true);
    assert_eq!(c["body"].as_str().map(str::len), Some(1 << 20));
    let log = attempts(&d, "tool-huge").await;
    assert_eq!(
        log[0]["answer"].as_str().map(str::len),
        Some(256),
        "the snippet is bounded"
    );

    // The CLI prints the answer.
    let (code, out, err) = d.cli(&["endpoint", "call", "tool", "--data", r#"{"q":2}"#]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("HTTP 200 in "), "{out}");
    assert!(out.contains("\"reply\": \"hi\""), "{out}");
    let (code, out, err) = d.cli(&["endpoint", "call", "tool-text"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("no such tool") && err.contains("HTTP_404"),
        "{out}{err}"
    );
    no_secrets(&d, &[&out, &err]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_log_their_kind_and_a_bounded_answer_snippet() {
    let long = "é".repeat(400);
    let r = receiver(Plan::always(Behavior::Answer {
        status: 200,
        content_type: "text/plain".into(),
        body: long.clone(),
    }))
    .await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("snip", json!({"url": r.url("/s")})).await;
    d.send("snip", "{}").await;
    wait_until("the delivery", Duration::from_secs(20), async || {
        !attempts(&d, "snip").await.is_empty()
    })
    .await;
    let a = &attempts(&d, "snip").await[0];
    assert_eq!(a["kind"], "delivery");
    let snippet = a["answer"].as_str().unwrap();
    assert_eq!(
        snippet.len(),
        256,
        "128 two-byte characters: cut at a character"
    );
    assert!(long.starts_with(snippet));
    test(&d, "snip").await;
    let kinds: Vec<String> = attempts(&d, "snip")
        .await
        .iter()
        .map(|a| a["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["test", "delivery"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_change_clears_connected_at() {
    let r = receiver(Plan::always(Behavior::Status(204))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("moving", json!({"url": r.url("/a")})).await;
    test(&d, "moving").await;
    let at = d.endpoint("moving").await["connected_at"].clone();
    assert!(at.is_string());
    let v = d.put_endpoint("moving", json!({"timeout": "3s"})).await;
    assert_eq!(v["connected_at"], at, "same URL: still connected");
    let v = d.put_endpoint("moving", json!({"url": r.url("/b")})).await;
    assert_eq!(v["connected_at"], Value::Null, "{v}");
    // A delivery's 2xx connects it again.
    d.send("moving", "{}").await;
    d.wait_for_endpoint("moving", Duration::from_secs(20), |v| {
        v["connected_at"].is_string()
    })
    .await;
}

/// Tests run outside the queue: neither held by a pause or downtime nor delaying the backlog.
/// Retry now skips a retry's wait and probes a down endpoint at once. What an operator sees
/// (state since when, the last error with its hint) survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_tests_outside_the_queue_and_show_after_a_restart() {
    // Two 503s, then 200s.
    let r = receiver(Plan::sequence(
        vec![(2, Behavior::Status(503))],
        Behavior::Status(200),
    ))
    .await;
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "flaky",
        json!({"url": r.url("/f"), "retry_schedule": ["1m"]}),
    )
    .await;
    let (e1, _) = d.send("flaky", r#"{"n":1}"#).await;
    wait_until("the first attempt", Duration::from_secs(20), async || {
        r.deliveries().len() == 1
    })
    .await;
    let v = d
        .wait_for_endpoint("flaky", Duration::from_secs(20), |v| {
            v["next_attempt_at"].is_string()
        })
        .await;
    assert_eq!(v["state"], "active");
    assert_eq!(v["last_error"]["code"], "HTTP_5XX");
    assert_eq!(v["last_error"]["hint"], fix("HTTP_5XX"));
    // The retry waits a minute: retry now sends it at once, as attempt 2.
    let a = d.req("POST", "/v1/endpoints/flaky/retry", None).await;
    assert_eq!(
        (a.status, a.json["action"].as_str()),
        (200, Some("retry")),
        "{a:?}"
    );
    assert_eq!(a.json["events"], 1);
    wait_until("the retry", Duration::from_secs(10), async || {
        r.deliveries().len() == 2
    })
    .await;
    assert_eq!(r.deliveries()[1].attempt, Some(2));
    assert_eq!(r.deliveries()[1].event_id.as_deref(), Some(e1.as_str()));
    // Its schedule is used up: dead letter, the endpoint is down; e2 is held.
    let (e2, _) = d.send("flaky", r#"{"n":2}"#).await;
    let v = d
        .wait_for_endpoint("flaky", Duration::from_secs(20), |v| v["state"] == "down")
        .await;
    assert!(
        v["state_since"].is_string() && v["next_attempt_at"].is_string(),
        "{v}"
    );
    // A test while down is sent at once and changes nothing of the backlog.
    let t = test(&d, "flaky").await;
    assert_eq!(t["connected"], true, "{t}");
    let v = d.endpoint("flaky").await;
    assert_eq!(
        (v["state"].as_str(), v["backlog"].as_u64()),
        (Some("down"), Some(1))
    );
    assert!(
        !r.deliveries()
            .iter()
            .any(|x| x.event_id.as_deref() == Some(e2.as_str()))
    );

    // A restart keeps the state, since when, and the last error with its hint.
    let before = d.endpoint("flaky").await;
    let (code, screen, err) = d.cli(&["endpoint", "show", "flaky"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.terminate(), Some(0));
    d.spawn().await;
    let after = d.endpoint("flaky").await;
    assert_eq!(after["state"], "down");
    assert_eq!(after["state_since"], before["state_since"]);
    assert_eq!(after["last_error"]["code"], "HTTP_5XX", "{after}");
    assert_eq!(after["last_error"]["hint"], fix("HTTP_5XX"));
    assert_eq!(after["connected_at"], before["connected_at"]);
    assert!(screen.contains("state: down since "), "{screen}");
    assert!(screen.contains("last_error: HTTP_5XX (503)"), "{screen}");
    assert!(
        screen.contains(&format!("hint: {}", fix("HTTP_5XX"))),
        "{screen}"
    );
    assert!(screen.contains("next_attempt: probe at "), "{screen}");
    assert!(screen.contains("recent attempts:\n  KIND"), "{screen}");
    let (code, out, _) = d.cli(&["endpoint", "show", "flaky", "--json"]);
    assert_eq!(code, 0);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["state"], "down");
    let kinds: Vec<&str> = j["recent_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["test", "delivery", "delivery"], "{out}");

    // Down, after the restart: the probe is a minute away; retry now sends it at once.
    let (code, out, err) = d.cli(&["endpoint", "retry", "flaky"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("probe"), "{out}");
    wait_until("the probe", Duration::from_secs(10), async || {
        r.deliveries()
            .iter()
            .any(|x| x.event_id.as_deref() == Some(e2.as_str()))
    })
    .await;
    d.wait_for_endpoint("flaky", Duration::from_secs(10), |v| {
        v["state"] == "active" && v["backlog"] == 0
    })
    .await;
    let a = d.req("POST", "/v1/endpoints/flaky/retry", None).await;
    assert_eq!(a.json["action"], "none", "{a:?}");
    assert!(
        a.json["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing was waiting")
    );

    // Paused: a test still goes out at once; the backlog stays held.
    d.req("POST", "/v1/endpoints/flaky/pause", None).await;
    let (e3, _) = d.send("flaky", r#"{"n":3}"#).await;
    let t = test(&d, "flaky").await;
    assert_eq!(t["connected"], true);
    let v = d.endpoint("flaky").await;
    assert_eq!(
        (v["state"].as_str(), v["backlog"].as_u64()),
        (Some("paused"), Some(1))
    );
    let a = d.req("POST", "/v1/endpoints/flaky/retry", None).await;
    assert_eq!(a.json["action"], "none");
    d.req("POST", "/v1/endpoints/flaky/resume", None).await;
    wait_until("the held event", Duration::from_secs(10), async || {
        r.deliveries()
            .iter()
            .any(|x| x.event_id.as_deref() == Some(e3.as_str()))
    })
    .await;
}

/// `endpoint show` says how old the oldest waiting event is, and nothing once none waits.
#[tokio::test]
async fn the_view_shows_the_oldest_waiting_event() {
    let rx = receiver(Plan::always(Behavior::Status(200))).await;
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": rx.url("/h")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let before = courier::core::timefmt::now_ms();
    d.send("acme", "{}").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.send("acme", "{}").await;
    let v = d.endpoint("acme").await;
    let age = v["oldest_event_age_secs"].as_u64().unwrap_or(0);
    assert!((1..60).contains(&age), "{v}");
    let at = v["oldest_event_at"].as_str().unwrap();
    assert!(
        at >= courier::core::timefmt::rfc3339(before - 1000).as_str(),
        "{v}"
    );
    let (code, out, err) = d.cli(&["endpoint", "show", "acme"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("the oldest accepted 1s ago") || out.contains("s ago ("),
        "{out}"
    );
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    let v = d
        .wait_for_endpoint("acme", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;
    assert!(
        v["oldest_event_at"].is_null() && v["oldest_event_age_secs"].is_null(),
        "{v}"
    );
}
