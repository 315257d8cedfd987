//! Black-box tests of the API contract, the CLI and the process, against the real binary.

use testkit::daemon;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use daemon::{BIN, Daemon};
use serde_json::json;

#[tokio::test]
async fn endpoint_lifecycle_and_views_never_show_secrets() {
    let d = Daemon::start(&["--allow-http"]).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "secret": "s3cret-value",
                      "password": "hunter2-value", "timeout": "2s",
                      "retry_schedule": ["1s", "2s"], "max_in_flight": 1});
    let a = d
        .req("PUT", "/v1/endpoints/acme", Some(&body.to_string()))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let raw = String::from_utf8_lossy(&a.raw).to_string();
    assert!(
        !raw.contains("s3cret-value") && !raw.contains("hunter2-value"),
        "{raw}"
    );
    assert_eq!(a.json["secret_set"], true);
    assert_eq!(a.json["password_set"], true);
    assert_eq!(a.json["timeout"], "2s");
    assert_eq!(a.json["retry_schedule"], json!(["1s", "2s"]));
    assert_eq!(a.json["state"], "active");
    assert_eq!(a.json["backlog"], 0);

    let a = d
        .req("PUT", "/v1/endpoints/acme", Some(&body.to_string()))
        .await;
    assert_eq!(a.status, 200, "update answers 200");

    let list = d.req("GET", "/v1/endpoints", None).await;
    assert_eq!(list.json["endpoints"].as_array().unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&list.raw).contains("s3cret-value"));

    let a = d.req("POST", "/v1/endpoints/acme/pause", None).await;
    assert_eq!(a.json["state"], "paused");
    let a = d.req("POST", "/v1/endpoints/acme/resume", None).await;
    assert_eq!(a.json["state"], "active");

    let a = d.req("DELETE", "/v1/endpoints/acme", None).await;
    assert_eq!(a.status, 204);
    let a = d.req("GET", "/v1/endpoints/acme", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json["error"]["code"], "ENDPOINT_NOT_FOUND");
    assert!(!d.log().contains("s3cret-value"), "secret in the log");
}

#[tokio::test]
async fn errors_have_codes_messages_and_hints() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let a = d
        .req(
            "PUT",
            "/v1/endpoints/x",
            Some(r#"{"url":"http://api.acme.io/x"}"#),
        )
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(a.json["error"]["code"], "HTTPS_REQUIRED");
    assert!(a.json["error"]["hint"].is_string());

    let a = d.req("PUT", "/v1/endpoints/bad%20id", Some("{}")).await;
    assert_eq!(a.json["error"]["code"], "INVALID_ENDPOINT_ID");
    let a = d.req("PUT", "/v1/endpoints/x", Some("{not json")).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );

    let a = d.req("POST", "/v1/endpoints/nope/events", Some("{}")).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );

    d.put_endpoint("big", json!({"url": "https://api.acme.io/x"}))
        .await;
    let a = d
        .req("POST", "/v1/endpoints/big/events", Some(&"x".repeat(2000)))
        .await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );

    let a = d.req("GET", "/v1/nothing-here", None).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ROUTE_NOT_FOUND"))
    );
    let a = d.req("PATCH", "/v1/endpoints", None).await;
    assert_eq!(a.status, 405);
    let a = d
        .req(
            "GET",
            "/v1/dead-letters/evt_00000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(a.json["error"]["code"], "DEAD_LETTER_NOT_FOUND");
    // A malformed id is a 400 of its own, not a 404.
    let a = d.req("GET", "/v1/dead-letters/evt_nope", None).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json["error"]["code"], "INVALID_EVENT_ID");

    // Non-UTF-8 and oversized headers are refused, not a crash.
    let a = d
        .try_request(
            "POST",
            "/v1/endpoints/big/events",
            Some(Bytes::from_static(b"{}")),
            &[("x-event-type", &"t".repeat(300))],
        )
        .await
        .unwrap();
    assert_eq!(a.json["error"]["code"], "INVALID_HEADER");
    // Still alive and serving.
    assert_eq!(d.req("GET", "/livez", None).await.status, 200);
}

#[tokio::test]
async fn idempotency_key_returns_the_original_event() {
    let d = Daemon::start(&[]).await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let h = [("idempotency-key", "order-1047")];
    let a1 = d
        .try_request(
            "POST",
            "/v1/endpoints/acme/events",
            Some(Bytes::from_static(b"{}")),
            &h,
        )
        .await
        .unwrap();
    let a2 = d
        .try_request(
            "POST",
            "/v1/endpoints/acme/events",
            Some(Bytes::from_static(b"{}")),
            &h,
        )
        .await
        .unwrap();
    assert_eq!(a1.status, 202);
    assert_eq!(a2.status, 200);
    assert_eq!(a2.json["duplicate"], true);
    assert_eq!(a1.json["id"], a2.json["id"]);
    assert_eq!(d.endpoint("acme").await["backlog"], 1);
}

#[tokio::test]
async fn delete_with_backlog_needs_force_and_dead_letters_the_rest() {
    let d = Daemon::start(&[]).await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let (id, _) = d.send("acme", "{}").await;
    let a = d.req("DELETE", "/v1/endpoints/acme", None).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (409, Some("ENDPOINT_NOT_EMPTY"))
    );
    let a = d.req("DELETE", "/v1/endpoints/acme?force=true", None).await;
    assert_eq!(a.status, 204);
    let dl = d.dead_letters().await;
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["id"], id.as_str());
    assert_eq!(dl[0]["reason"], "ENDPOINT_DELETED");
    // Re-created endpoint continues numbering; the dead letter replays into it.
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let (_, seq) = d.send("acme", "{}").await;
    assert_eq!(seq, 2);
    let a = d
        .req("POST", &format!("/v1/dead-letters/{id}/replay"), None)
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(d.endpoint("acme").await["backlog"], 2);
}

#[tokio::test]
async fn tcp_listener_serves_the_same_api() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start_env(
        &["--listen", &addr],
        &[("COURIER_ADMIN_TOKEN", "tcp-test-token")],
    )
    .await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/v1/endpoints/acme")
        .header("host", "localhost")
        .header("authorization", "Bearer tcp-test-token")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn bad_config_exits_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["serve", "--listen", "not-an-address"],
        vec!["serve", "--shutdown-grace", "5 parsecs"],
        vec!["serve", "--ca-file", "/nonexistent/ca.pem"],
        vec!["serve", "--config", "/nonexistent/courier.toml"],
    ];
    for args in cases {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("config error"), "{err}");
    }
    // Nothing was created or bound.
    assert!(!dir.path().join("courier-data").exists());
    assert!(!dir.path().join("courier.sock").exists());
}

#[test]
fn config_file_and_env_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("courier.toml");
    std::fs::write(&cfg, "listen = \"off\"\nbogus = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let out = Command::new(BIN)
        .args(["serve"])
        .env("COURIER_LISTEN", "garbage")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[tokio::test]
async fn sigterm_exits_zero_and_removes_the_socket() {
    let mut d = Daemon::start(&[]).await;
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    assert!(!d.socket.exists());
    assert!(d.log().contains("stopped cleanly"));
}

#[tokio::test]
async fn second_daemon_on_the_same_data_refuses_to_start() {
    let d = Daemon::start(&[]).await;
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(&d.data)
        .arg("--socket")
        .arg(d.dir.join("other.sock"))
        .args(["--listen", "off"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already open"));
    // The first one is unaffected.
    assert_eq!(d.req("GET", "/readyz", None).await.status, 200);
}

#[tokio::test]
async fn cli_manages_endpoints_and_reports_errors() {
    let d = Daemon::start(&[]).await;
    let (code, out, err) = d.cli(&[
        "endpoint",
        "add",
        "acme",
        "https://api.acme.io/happ/chat",
        "--secret",
        "s3cret",
        "--retry-schedule",
        "1s,2s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acme") && !out.contains("s3cret"), "{out}");
    let (code, out, _) = d.cli(&["endpoint", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("acme") && out.contains("active"), "{out}");
    let (code, out, _) = d.cli(&["endpoint", "show", "acme", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["retry_schedule"], json!(["1s", "2s"]));
    let (code, _, err) = d.cli(&["endpoint", "show", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("ENDPOINT_NOT_FOUND") && err.contains("hint"),
        "{err}"
    );
    let (code, _, err) = d.cli(&["endpoint", "add", "x", "http://insecure.example/x"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTPS_REQUIRED"), "{err}");
    let (code, out, _) = d.cli(&["dlq", "list"]);
    assert_eq!(code, 0, "{out}");

    let body = d.dir.join("event.json");
    std::fs::write(&body, r#"{"event":"call.completed"}"#).unwrap();
    d.cli(&["endpoint", "pause", "acme"]);
    let (code, out, err) = d.cli(&[
        "send",
        "acme",
        body.to_str().unwrap(),
        "--event-type",
        "call.completed",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("evt_"), "{out}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(d.endpoint("acme").await["backlog"], 1);

    // Unreachable daemon: exit 69 with a hint.
    let out = Command::new(BIN)
        .args(["endpoint", "list", "--socket", "/nonexistent/courier.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DAEMON_UNREACHABLE"));
}

#[tokio::test]
async fn batch_is_all_or_nothing_and_answers_in_order() {
    let d = Daemon::start(&[]).await;
    for ep in ["a", "b"] {
        d.put_endpoint(ep, json!({"url": "https://api.acme.io/x"}))
            .await;
        d.req("POST", &format!("/v1/endpoints/{ep}/pause"), None)
            .await;
    }
    let batch = "{\"endpoint\":\"a\",\"body\":{\"n\":1}}\n{\"endpoint\":\"b\",\"body\":{\"n\":2}}\n{\"endpoint\":\"a\",\"body\":{\"n\":3},\"event_type\":\"t\"}\n";
    let a = d.req("POST", "/v1/events/batch", Some(batch)).await;
    assert_eq!(a.status, 202, "{a:?}");
    let evs = a.json["events"].as_array().unwrap();
    let got: Vec<(String, u64)> = evs
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
    // One unknown endpoint: nothing of the batch is accepted.
    let bad = "{\"endpoint\":\"a\",\"body\":{}}\n{\"endpoint\":\"zzz\",\"body\":{}}\n";
    let a = d.req("POST", "/v1/events/batch", Some(bad)).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    let a = d
        .req("POST", "/v1/events/batch", Some("{\"endpoint\":\"a\"\n"))
        .await;
    assert_eq!(a.json["error"]["code"], "INVALID_BATCH");
    assert_eq!(d.endpoint("a").await["backlog"], 2);
    assert_eq!(d.endpoint("b").await["backlog"], 1);
}
