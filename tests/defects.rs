//! Black-box regressions of defects found by trying Courier as a new user and as a hostile one:
//! each test names the defect it pins down and runs the real binary.

use testkit::{daemon, receiver};

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use daemon::{BIN, Daemon, free_port};
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use redb::ReadableTable;
use serde_json::{Value, json};

/// POSTs to the ingress over TCP; returns (status, JSON).
async fn ingress_post(
    addr: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value) {
    let (status, _, v) = daemon::post_tcp(addr, path, body, headers).await;
    (status, v)
}

/// Every error answer carries a stable code, a message and a hint.
fn assert_explained(a: &daemon::Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.json["error"]["code"], code, "{a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    assert!(
        a.json["error"]["hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "no hint: {a:?}"
    );
    let fix = courier::codes::lookup(code).map(|c| c.fix);
    assert_eq!(
        a.json["error"]["hint"].as_str(),
        fix,
        "the hint is the catalogue's fix"
    );
}

// ---- 1. tight probe loop ----

#[tokio::test]
async fn a_zero_second_retry_entry_is_refused() {
    let d = Daemon::start(&["--allow-http"]).await;
    let a = d
        .req(
            "PUT",
            "/v1/endpoints/z",
            Some(r#"{"url": "https://127.0.0.1:9999/z", "retry_schedule": ["0s","2s"], "timeout": "1s"}"#),
        )
        .await;
    assert_explained(&a, 422, "INVALID_RETRY_SCHEDULE");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100ms"),
        "{a:?}"
    );
}

// ---- 2. updates merge ----

#[tokio::test]
async fn updating_a_channel_keeps_its_secret_and_burst() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&["--allow-http", "--ingress-listen", &addr]).await;
    d.put_endpoint("e", json!({"url": r.url("/in")})).await;
    let a = d
        .req(
            "PUT",
            "/v1/channels/c",
            Some(r#"{"endpoint":"e","secret":"k","rate_limit":10,"burst":30}"#),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let a = d
        .req(
            "PUT",
            "/v1/channels/c",
            Some(r#"{"endpoint": "e", "rate_limit": 50}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["secret_set"], true, "{a:?}");
    assert_eq!(a.json["rate_limit"], 50);
    assert_eq!(a.json["burst"], 30, "burst was reset: {a:?}");
    // Unsigned messages are still refused.
    let msg = br#"{"sender_id":"u","text":"hi"}"#;
    let ct = [("content-type", "application/json".to_string())];
    let (status, v) = ingress_post(&addr, "/webhook/c", msg, &ct).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["code"], "HMAC_MISMATCH");
    // Only an explicit null removes it.
    let a = d
        .req("PUT", "/v1/channels/c", Some(r#"{"secret": null}"#))
        .await;
    assert_eq!(a.json["secret_set"], false, "{a:?}");
    assert_eq!(a.json["endpoint"], "e");
    let (status, _) = ingress_post(&addr, "/webhook/c", msg, &ct).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn updating_an_endpoint_without_url_keeps_every_other_field() {
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "acme",
        json!({"url": "http://127.0.0.1:9/x", "secret": "s", "password": "p", "timeout": "2s",
               "retry_schedule": ["1s"], "max_in_flight": 4}),
    )
    .await;
    let v = d.put_endpoint("acme", json!({"timeout": "3s"})).await;
    assert_eq!(v["url"], "http://127.0.0.1:9/x");
    assert_eq!(v["timeout"], "3s");
    assert_eq!(
        (v["secret_set"].clone(), v["password_set"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(v["retry_schedule"], json!(["1s"]));
    assert_eq!(v["max_in_flight"], 4);
    let a = d.req("PUT", "/v1/endpoints/new", Some("{}")).await;
    assert_explained(&a, 400, "INVALID_JSON");
}

// ---- 3. corrupt records ----

/// Flips one byte in the body of the pending event `seq` of `endpoint`, with the daemon stopped:
/// in the segment file its row points at (or, for a record kept in its row, in the row).
fn corrupt_pending(data_dir: &std::path::Path, endpoint: &str, seq: u64) {
    use std::os::unix::fs::FileExt;
    const EVENTS: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("events");
    let db = redb::Database::open(data_dir.join("courier.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(EVENTS).unwrap();
        let mut bytes = t
            .get((endpoint, seq))
            .unwrap()
            .expect("pending event")
            .value()
            .to_vec();
        if let Some(loc) = courier::store::redb::segments::Loc::decode(&bytes) {
            let seg = data_dir
                .join("segments")
                .join(format!("{:016x}.seg", loc.seg));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(seg)
                .unwrap();
            let at = loc.off + u64::from(loc.len) - 1;
            let mut b = [0u8];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
        } else {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
            t.insert((endpoint, seq), bytes.as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
}

#[tokio::test]
async fn a_corrupt_record_is_set_aside_and_the_endpoint_goes_on() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let (first, _) = d.send("acme", r#"{"n":1}"#).await;
    let (_, bad_seq) = d.send("acme", r#"{"n":2}"#).await;
    let (third, _) = d.send("acme", r#"{"n":3}"#).await;
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    corrupt_pending(&d.data, "acme", bad_seq);
    d.spawn().await;
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    assert!(
        r.wait_for(|ds| ds.len() >= 2, Duration::from_secs(20))
            .await,
        "the events behind the corrupt one never moved: {}",
        d.endpoint("acme").await
    );
    let got: Vec<String> = r
        .deliveries()
        .iter()
        .filter_map(|x| x.event_id.clone())
        .collect();
    assert_eq!(got, [first, third]);
    let v = d
        .wait_for_endpoint("acme", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;
    assert_eq!(v["state"], "active");
    assert_eq!(v["last_error"]["code"], "RECORD_CORRUPT", "{v}");
    // The dead letter keeps the raw bytes for inspection, and cannot be replayed.
    let dl = d.wait_dead_letters(1, Duration::from_secs(5)).await;
    assert_eq!(dl[0]["reason"], "RECORD_CORRUPT");
    assert_eq!(dl[0]["seq"], bad_seq);
    assert_eq!(dl[0]["last_error"]["code"], "RECORD_CORRUPT");
    let id = dl[0]["id"].as_str().unwrap().to_string();
    let show = d.req("GET", &format!("/v1/dead-letters/{id}"), None).await;
    assert_eq!(show.status, 200, "{show:?}");
    assert!(
        show.json["payload_base64"]
            .as_str()
            .is_some_and(|b| b.len() > 16),
        "{show:?}"
    );
    assert!(
        show.json["record_error"]
            .as_str()
            .is_some_and(|e| e.contains("checksum")),
        "{show:?}"
    );
    let replay = d
        .req("POST", &format!("/v1/dead-letters/{id}/replay"), None)
        .await;
    assert_explained(&replay, 409, "NOT_REPLAYABLE");
    assert_eq!(
        d.req("DELETE", &format!("/v1/dead-letters/{id}"), None)
            .await
            .status,
        204
    );
    // Metrics count it; the log says it once, not over and over.
    let m = d.req("GET", "/metrics", None).await;
    let text = String::from_utf8_lossy(&m.raw);
    assert!(
        text.lines()
            .any(|l| l.starts_with("courier_dead_letters_total{reason=\"RECORD_CORRUPT\"} 1")),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let said = d.log().matches("corrupt event record set aside").count();
    assert_eq!(said, 1, "{}", d.log());
}

#[tokio::test]
async fn a_forced_delete_is_not_stopped_by_a_corrupt_record() {
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let (good, _) = d.send("acme", "{}").await;
    let (_, bad_seq) = d.send("acme", "{}").await;
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    corrupt_pending(&d.data, "acme", bad_seq);
    d.spawn().await;
    let a = d.req("DELETE", "/v1/endpoints/acme?force=true", None).await;
    assert_eq!(a.status, 204, "{a:?}");
    let mut reasons: Vec<(String, String)> = d
        .dead_letters()
        .await
        .iter()
        .map(|x| {
            (
                x["reason"].as_str().unwrap().into(),
                x["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0], ("ENDPOINT_DELETED".to_string(), good));
    assert_eq!(reasons[1].0, "RECORD_CORRUPT");
}

// ---- 7. every answer explained ----

#[tokio::test]
async fn refusals_name_the_problem_and_the_fix() {
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    // An invalid id is a 400 everywhere, not a 404.
    for (m, p) in [
        ("GET", "/v1/endpoints/a%20b"),
        ("POST", "/v1/endpoints/a%20b/pause"),
        ("DELETE", "/v1/endpoints/a%20b"),
        ("GET", "/v1/endpoints/a%20b/attempts"),
        ("POST", "/v1/endpoints/a%20b/events"),
    ] {
        assert_explained(&d.req(m, p, Some("{}")).await, 400, "INVALID_ENDPOINT_ID");
    }
    assert_explained(
        &d.req("GET", "/v1/channels/a%20b", None).await,
        400,
        "INVALID_CHANNEL_ID",
    );
    for (m, p) in [
        ("GET", "/v1/dead-letters/nope"),
        ("POST", "/v1/dead-letters/nope/replay"),
        ("DELETE", "/v1/dead-letters/nope"),
    ] {
        assert_explained(&d.req(m, p, None).await, 400, "INVALID_EVENT_ID");
    }
    // Validation errors carry hints.
    for body in [
        r#"{"url":"http://127.0.0.1:9/x","timeout":"0s"}"#,
        r#"{"url":"http://127.0.0.1:9/x","max_in_flight":0}"#,
        r#"{"url":"http://127.0.0.1:9/x","secret":""}"#,
    ] {
        let a = d.req("PUT", "/v1/endpoints/v", Some(body)).await;
        assert_eq!(a.status, 422, "{a:?}");
        assert!(a.json["error"]["hint"].is_string(), "{body}: {a:?}");
    }
    // Durations: the messages say what is wrong.
    for (t, says) in [("1.5s", "1500ms"), ("-1s", "negative"), ("5 s", "space")] {
        let a = d
            .req(
                "PUT",
                "/v1/endpoints/v",
                Some(&json!({"url": "http://127.0.0.1:9/x", "timeout": t}).to_string()),
            )
            .await;
        assert_explained(&a, 422, "INVALID_TIMEOUT");
        assert!(
            a.json["error"]["message"].as_str().unwrap().contains(says),
            "{t}: {a:?}"
        );
    }
    // A batch line naming an unknown endpoint says which line; an empty batch says no line 0.
    let batch = "{\"endpoint\":\"acme\",\"body\":1}\n{\"endpoint\":\"ghost\",\"body\":2}\n";
    let a = d.req("POST", "/v1/events/batch", Some(batch)).await;
    assert_explained(&a, 404, "ENDPOINT_NOT_FOUND");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2:"),
        "{a:?}"
    );
    let a = d.req("POST", "/v1/events/batch", Some("\n\n")).await;
    assert_explained(&a, 400, "INVALID_BATCH");
    assert!(
        !a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 0"),
        "{a:?}"
    );
    // The 413 messages name the limit that applies (the hint is the code's catalogued fix).
    let big = format!(
        "{{\"url\":\"http://127.0.0.1:9/x\",\"secret\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let a = d.req("PUT", "/v1/endpoints/v", Some(&big)).await;
    assert_explained(&a, 413, "PAYLOAD_TOO_LARGE");
    let message = a.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("64 KiB") && message.contains("fixed"),
        "{message}"
    );
    let a = d
        .req(
            "POST",
            "/v1/endpoints/acme/events",
            Some(&"x".repeat(2 << 20)),
        )
        .await;
    assert_explained(&a, 413, "PAYLOAD_TOO_LARGE");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{a:?}"
    );
}

// ---- 8. exit codes ----

#[test]
fn bad_serve_values_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (vec!["serve"], vec![("COURIER_ALLOW_HTTP", "maybe")]),
        (vec!["serve", "--shutdown-grace", "-5s"], vec![]),
        (vec!["serve", "--max-body-bytes", "lots"], vec![]),
        (vec!["serve"], vec![("COURIER_CACHE_MIB", "-1")]),
        (vec!["serve", "--no-such-flag"], vec![]),
    ];
    for (args, env) in cases {
        let out = Command::new(BIN)
            .args(&args)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?} {env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?} {env:?}: {err}");
        assert!(err.contains("config error"), "{err}");
    }
    assert!(!dir.path().join("courier-data").exists());
    // Help is still help, and client commands keep exit 2 for bad arguments.
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new(BIN)
        .args(["endpoint", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---- 9. idempotency ----

#[tokio::test]
async fn a_reused_idempotency_key_with_another_body_is_a_conflict() {
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let post = |body: &'static str, ty: &'static str| {
        let d = &d;
        async move {
            d.try_request(
                "POST",
                "/v1/endpoints/acme/events",
                Some(Bytes::from_static(body.as_bytes())),
                &[("idempotency-key", "order-1"), ("x-event-type", ty)],
            )
            .await
            .unwrap()
        }
    };
    let a1 = post(r#"{"total":10}"#, "order.created").await;
    assert_eq!(a1.status, 202);
    let same = post(r#"{"total":10}"#, "order.created").await;
    assert_eq!(
        (same.status, &same.json["duplicate"]),
        (200, &json!(true)),
        "{same:?}"
    );
    assert_eq!(same.json["id"], a1.json["id"]);
    let other = post(r#"{"total":99}"#, "order.created").await;
    assert_explained(&other, 409, "IDEMPOTENCY_MISMATCH");
    let other_type = post(r#"{"total":10}"#, "order.updated").await;
    assert_explained(&other_type, 409, "IDEMPOTENCY_MISMATCH");
    // In a batch: the line is named and nothing of the batch is enqueued.
    let batch = "{\"endpoint\":\"acme\",\"body\":1}\n{\"endpoint\":\"acme\",\"body\":{\"total\":99},\"event_type\":\"order.created\",\"idempotency_key\":\"order-1\"}\n";
    let a = d.req("POST", "/v1/events/batch", Some(batch)).await;
    assert_explained(&a, 409, "IDEMPOTENCY_MISMATCH");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2:"),
        "{a:?}"
    );
    // Two lines of one batch with one key and different bodies conflict too.
    let batch = "{\"endpoint\":\"acme\",\"body\":1,\"idempotency_key\":\"k2\"}\n{\"endpoint\":\"acme\",\"body\":2,\"idempotency_key\":\"k2\"}\n";
    let a = d.req("POST", "/v1/events/batch", Some(batch)).await;
    assert_explained(&a, 409, "IDEMPOTENCY_MISMATCH");
    assert_eq!(
        d.endpoint("acme").await["backlog"],
        1,
        "a refused request enqueued something"
    );
}

#[tokio::test]
async fn the_ingress_answers_a_duplicate_like_the_api() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&["--allow-http", "--ingress-listen", &addr]).await;
    d.put_endpoint("e", json!({"url": r.url("/in")})).await;
    d.req("PUT", "/v1/channels/c", Some(r#"{"endpoint":"e"}"#))
        .await;
    let h = [
        ("content-type", "application/json".to_string()),
        ("idempotency-key", "msg-1".to_string()),
    ];
    let (s1, v1) = ingress_post(&addr, "/webhook/c", br#"{"sender_id":"u","text":"hi"}"#, &h).await;
    assert_eq!(s1, 202, "{v1}");
    let (s2, v2) = ingress_post(&addr, "/webhook/c", br#"{"sender_id":"u","text":"hi"}"#, &h).await;
    assert_eq!((s2, &v2["duplicate"]), (200, &json!(true)), "{v2}");
    assert_eq!(v2["id"], v1["id"]);
    let (s3, v3) = ingress_post(
        &addr,
        "/webhook/c",
        br#"{"sender_id":"u","text":"other"}"#,
        &h,
    )
    .await;
    assert_eq!(s3, 409, "{v3}");
    assert_eq!(v3["error"]["code"], "IDEMPOTENCY_MISMATCH");
}

// ---- 10. ids that cannot be addressed ----

#[tokio::test]
async fn dot_ids_are_refused() {
    let d = Daemon::start(&["--allow-http"]).await;
    for id in [".", ".."] {
        let a = d
            .req(
                "PUT",
                &format!("/v1/endpoints/{id}"),
                Some(r#"{"url":"http://127.0.0.1:9/x"}"#),
            )
            .await;
        assert_explained(&a, 400, "INVALID_ENDPOINT_ID");
        let a = d
            .req(
                "PUT",
                &format!("/v1/channels/{id}"),
                Some(r#"{"endpoint":"x"}"#),
            )
            .await;
        assert_explained(&a, 400, "INVALID_CHANNEL_ID");
    }
    let a = d.req("GET", "/v1/endpoints", None).await;
    assert_eq!(a.json["endpoints"], json!([]));
}

#[tokio::test]
async fn retries_against_a_failing_receiver_keep_the_floor() {
    // A 429 with Retry-After: 0 used to be retried at once, for ever, without using a retry.
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    r.set_plan(Plan::always(Behavior::RetryAfter {
        status: 429,
        secs: 0,
    }));
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("z", json!({"url": r.url("/z"), "retry_schedule": []}))
        .await;
    d.send("z", "{}").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = r.deliveries().len();
    assert!(
        (2..=5).contains(&n),
        "{n} attempts in 3 s against Retry-After: 0"
    );
}
