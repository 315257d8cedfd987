//! No secret leaves Courier: a run that uses every kind of secret (an endpoint's signing secret
//! and bearer password, a channel's secret, the admin token) and every operator surface
//! (views, tests, calls, attempts, dead letters, export, status, metrics, errors, the CLI,
//! offline inspection) is searched, answer by answer and log line by log line, for each
//! secret's value; then every data file the run left (the journal, the segment files) is
//! searched for each secret's bytes, and the master key file is owner-only.

use testkit::{daemon, receiver};

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use bytes::Bytes;
use daemon::{Answer, Daemon};
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::json;

const SECRETS: [&str; 4] = [
    "endpoint-signing-secret-4b1d",
    "endpoint-bearer-password-9c2e",
    "channel-inbound-secret-7a3f",
    "admin-token-value-5e8d",
];

/// Fails if any secret is in `text`.
fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s:?}: {text}");
    }
}

fn clean_answer(what: &str, a: &Answer) {
    assert_clean(what, &String::from_utf8_lossy(&a.raw));
}

#[tokio::test]
async fn no_secret_in_any_answer_or_log_line() {
    let rx =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(200))))
            .await
            .unwrap();
    let port = daemon::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut d = Daemon::start_env(
        &[
            "--allow-http",
            "--listen",
            &listen,
            "--log",
            "courier=debug",
        ],
        &[("COURIER_ADMIN_TOKEN", SECRETS[3])],
    )
    .await;
    let ep = d
        .put_endpoint(
            "acme",
            json!({"url": rx.url("/hook"), "secret": SECRETS[0], "password": SECRETS[1],
                   "retry_schedule": []}),
        )
        .await;
    assert_clean("PUT endpoint", &ep.to_string());
    let ch = d
        .req(
            "PUT",
            "/v1/channels/cm",
            Some(&json!({"endpoint": "acme", "secret": SECRETS[2]}).to_string()),
        )
        .await;
    clean_answer("PUT channel", &ch);

    // Deliveries, then failures that end as dead letters.
    let (id, _) = d.send("acme", r#"{"n":1}"#).await;
    assert!(
        rx.wait_for(|ds| !ds.is_empty(), Duration::from_secs(10))
            .await
    );
    rx.set_plan(Plan::always(Behavior::Status(400)));
    d.send("acme", r#"{"n":2}"#).await;
    d.wait_dead_letters(1, Duration::from_secs(10)).await;
    let dead = d.dead_letters().await;
    let dead_id = dead[0]["id"].as_str().unwrap().to_string();
    rx.set_plan(Plan::always(Behavior::Status(200)));

    let mut paths = vec![
        ("GET", "/v1/endpoints".to_string()),
        ("GET", "/v1/endpoints/acme".into()),
        ("POST", "/v1/endpoints/acme/test".into()),
        ("POST", "/v1/endpoints/acme/call".into()),
        ("POST", "/v1/endpoints/acme/retry".into()),
        ("GET", "/v1/endpoints/acme/attempts?limit=100".into()),
        ("GET", "/v1/channels".into()),
        ("GET", "/v1/channels/cm".into()),
        ("GET", "/v1/dead-letters".into()),
        ("GET", format!("/v1/dead-letters/{dead_id}")),
        ("GET", "/v1/dead-letters/export?endpoint=acme".into()),
        ("GET", "/v1/status".into()),
        ("GET", "/v1/errors".into()),
        ("GET", "/metrics".into()),
        ("GET", "/readyz".into()),
    ];
    paths.push(("GET", format!("/v1/dead-letters/{id}")));
    for (method, path) in &paths {
        let a = d.req(method, path, None).await;
        clean_answer(&format!("{method} {path}"), &a);
    }
    // Refusals, over TCP too: a wrong token is not echoed, nor the right one.
    for token in ["wrong-token", SECRETS[3]] {
        let auth = format!("Bearer {token}");
        let (a, headers) = daemon::tcp_request(
            &listen,
            "GET",
            "/v1/endpoints/acme",
            None,
            &[("authorization", &auth)],
        )
        .await
        .unwrap();
        clean_answer("TCP GET", &a);
        assert_clean("TCP headers", &format!("{headers:?}"));
    }
    let inbound = d
        .try_request(
            "PUT",
            "/v1/endpoints/acme",
            Some(Bytes::from(format!(
                r#"{{"secret": 7, "password": "{}"}}"#,
                SECRETS[1]
            ))),
            &[],
        )
        .await
        .unwrap();
    clean_answer("refused PUT", &inbound);

    // The CLI, online and offline.
    for args in [
        &["endpoint", "list"][..],
        &["endpoint", "show", "acme"],
        &["endpoint", "show", "acme", "--json"],
        &["endpoint", "test", "acme"],
        &["endpoint", "attempts", "acme"],
        &["channel", "show", "cm", "--json"],
        &["dlq", "list"],
        &["dlq", "show", &dead_id, "--json"],
        &["status"],
    ] {
        let (_, out, err) = d.cli(args);
        assert_clean(&format!("courier {args:?}"), &format!("{out}{err}"));
    }
    assert_eq!(d.terminate(), Some(0));
    let data = d.data.to_str().unwrap().to_string();
    for args in [
        &["endpoint", "show", "acme", "--json", "--data-dir", &data][..],
        &["dlq", "show", &dead_id, "--json", "--data-dir", &data],
        &["channel", "list", "--json", "--data-dir", &data],
    ] {
        let (code, out, err) = d.cli(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert_clean(&format!("offline {args:?}"), &format!("{out}{err}"));
    }
    // Every log line of the run, at debug level.
    let log = d.log();
    assert!(
        log.lines().count() > 10,
        "the log is too short to mean much: {log}"
    );
    assert_clean("the daemon's log", &log);
    // Every data file: the journal, its segment files, anything else there (not the master
    // key file, which holds no secret but the key).
    let key_file = d.data.join("master.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut files = 0;
    for path in files_under(&d.data) {
        if path == key_file {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} holds the secret {s:?} in clear",
                path.display()
            );
        }
        files += 1;
    }
    assert!(files >= 2, "the journal and a segment file at least");
    // Nor is the master key itself in any log line of the run.
    let keys = std::fs::read_to_string(&key_file).unwrap();
    for key in keys
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(!log.contains(key), "the log shows the master key");
    }
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
