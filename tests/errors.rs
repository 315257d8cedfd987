//! Black-box tests of the error catalogue: `GET /v1/errors` is the catalogue of `src/codes.rs`,
//! every refusal the API gives carries its catalogued status and, as its hint, the code's fix,
//! and `courier explain` prints the same without a daemon.

use testkit::daemon;

use std::process::{Command, Stdio};

use courier::codes::{self, CATALOG};
use courier::views::{ErrorCatalogue, ErrorCodeView};
use daemon::{BIN, Daemon};
use serde_json::json;

/// Asserts an error answer is explained by the catalogue: the code is there, the status is its
/// `http_status`, the hint is its `fix`, and the message is a sentence.
fn assert_catalogued(what: &str, a: &daemon::Answer) {
    let code = a.json["error"]["code"].as_str().unwrap_or("");
    let entry = codes::lookup(code).unwrap_or_else(|| panic!("{what}: {code:?} not catalogued"));
    assert_eq!(Some(a.status), entry.http_status, "{what}: {a:?}");
    assert_eq!(a.json["error"]["hint"], entry.fix, "{what}: {a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {a:?}"
    );
}

#[tokio::test]
async fn the_api_serves_the_catalogue() {
    let d = Daemon::start(&[]).await;
    let a = d.req("GET", "/v1/errors", None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let list: ErrorCatalogue = serde_json::from_value(a.json).unwrap();
    let want: Vec<ErrorCodeView> = CATALOG.iter().map(ErrorCodeView::from).collect();
    assert_eq!(list.errors, want);
    for code in [
        "HTTPS_REQUIRED",
        "ETIMEDOUT",
        "MAX_RETRIES_EXCEEDED",
        "HMAC_MISMATCH",
    ] {
        let a = d.req("GET", &format!("/v1/errors/{code}"), None).await;
        assert_eq!(a.status, 200, "{a:?}");
        let one: ErrorCodeView = serde_json::from_value(a.json).unwrap();
        assert_eq!(Some(&one), want.iter().find(|v| v.code == code));
    }
    let a = d.req("GET", "/v1/errors/https_required", None).await;
    assert_eq!(a.json["code"], "HTTPS_REQUIRED", "any case: {a:?}");
    let a = d.req("GET", "/v1/errors/NO_SUCH_CODE", None).await;
    assert_eq!(a.json["error"]["code"], "UNKNOWN_ERROR_CODE");
    assert_catalogued("unknown code", &a);
    let a = d
        .req(
            "PUT",
            "/v1/endpoints/x",
            Some(r#"{"url":"http://127.0.0.1:9/"}"#),
        )
        .await;
    assert_eq!(a.json["error"]["code"], "HTTPS_REQUIRED");
    assert_catalogued("http url", &a);
}

#[tokio::test]
async fn every_refusal_carries_its_catalogued_status_and_fix() {
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    d.send("acme", "{}").await;
    let big = "x".repeat(2 << 20);
    let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
        ("ENDPOINT_NOT_FOUND", "GET", "/v1/endpoints/nope", None),
        ("ROUTE_NOT_FOUND", "GET", "/v2/nothing", None),
        ("METHOD_NOT_ALLOWED", "DELETE", "/v1/endpoints", None),
        ("INVALID_ENDPOINT_ID", "GET", "/v1/endpoints/a%20b", None),
        ("INVALID_EVENT_ID", "GET", "/v1/dead-letters/evt_nope", None),
        (
            "DEAD_LETTER_NOT_FOUND",
            "GET",
            "/v1/dead-letters/evt_00000000000000000000000000",
            None,
        ),
        ("CHANNEL_NOT_FOUND", "GET", "/v1/channels/nope", None),
        ("INVALID_JSON", "PUT", "/v1/endpoints/b", Some("{")),
        (
            "INVALID_URL",
            "PUT",
            "/v1/endpoints/b",
            Some(r#"{"url":"ftp://x/"}"#),
        ),
        (
            "INVALID_TIMEOUT",
            "PUT",
            "/v1/endpoints/acme",
            Some(r#"{"timeout":"0s"}"#),
        ),
        (
            "INVALID_RETRY_SCHEDULE",
            "PUT",
            "/v1/endpoints/acme",
            Some(r#"{"retry_schedule":["1ms"]}"#),
        ),
        (
            "INVALID_LIMIT",
            "GET",
            "/v1/endpoints/acme/attempts?limit=0",
            None,
        ),
        (
            "INVALID_BATCH",
            "POST",
            "/v1/events/batch",
            Some("not json\n"),
        ),
        ("ENDPOINT_NOT_EMPTY", "DELETE", "/v1/endpoints/acme", None),
        (
            "PAYLOAD_TOO_LARGE",
            "POST",
            "/v1/endpoints/acme/events",
            Some(&big),
        ),
    ];
    for (code, method, path, body) in cases {
        let a = d.req(method, path, body).await;
        assert_eq!(a.json["error"]["code"], code, "{method} {path}: {a:?}");
        assert_catalogued(&format!("{method} {path}"), &a);
    }
}

/// Runs `courier explain ARGS` with no daemon anywhere; returns (exit code, stdout, stderr).
fn explain(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("explain")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("COURIER_SOCKET")
        .output()
        .expect("run courier explain");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn explain_prints_meaning_and_fix_without_a_daemon() {
    let entry = codes::lookup("HTTPS_REQUIRED").unwrap();
    let (code, out, err) = explain(&["https_required"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("HTTPS_REQUIRED  (API answer, HTTP 422)\n"),
        "{out}"
    );
    assert!(
        out.contains(entry.meaning) && out.contains(entry.fix),
        "{out}"
    );

    let (code, out, _) = explain(&["--json", "HMAC_MISMATCH"]);
    assert_eq!(code, 0);
    let v: ErrorCodeView = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        ErrorCodeView::from(codes::lookup("HMAC_MISMATCH").unwrap())
    );

    // A receiver's status finds the attempt code it becomes.
    let (code, out, _) = explain(&["503"]);
    assert_eq!(code, 0);
    assert!(out.contains("HTTP_5XX"), "{out}");

    // No argument lists every code.
    let (code, out, _) = explain(&[]);
    assert_eq!(code, 0);
    for c in CATALOG {
        assert!(out.contains(c.code), "{} missing from the list", c.code);
    }

    let (code, out, err) = explain(&["NO_SUCH_THING"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("UNKNOWN_ERROR_CODE") && err.contains("hint: "),
        "{err}"
    );

    let (code, out, _) = explain(&["--markdown"]);
    assert_eq!((code, out), (0, codes::markdown()));
}
