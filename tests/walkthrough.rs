//! The README's "A first delivery", run as written against the real binaries: the bundled
//! example receiver (HTTPS with a throwaway CA it writes to a file, checking signatures), the
//! daemon trusting that CA with `--ca-file`, and the CLI and curl-style requests of the README.
//! Nothing leaves 127.0.0.1.

use testkit::daemon;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use daemon::{BIN, Daemon};
use serde_json::Value;

/// The example receiver, built by `cargo test` (or `cargo build --examples`) beside the binary.
fn receiver_bin() -> PathBuf {
    let bin = BIN.path();
    let path = bin
        .parent()
        .expect("target directory")
        .join("examples")
        .join(format!("receiver{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "no example receiver at {}: run `cargo build --examples` (plain `cargo test` builds it)",
        path.display()
    );
    path
}

struct Receiver {
    child: Child,
    url: String,
    record: PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_receiver(dir: &Path) -> Receiver {
    let record = dir.join("deliveries.jsonl");
    let mut child = Command::new(receiver_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "s3cret",
            "--tls-ca-out",
        ])
        .arg(dir.join("receiver-ca.pem"))
        .arg("--record")
        .arg(&record)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example receiver");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("receiver stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("receiver URL");
    let url = line.trim().trim_end_matches('/').to_string();
    assert!(url.starts_with("https://localhost:"), "{url}");
    Receiver { child, url, record }
}

/// The receiver's record: one JSON object per request.
fn wait_deliveries(r: &Receiver, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&r.record).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "receiver got {lines:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test]
async fn the_first_delivery_of_the_readme_works_offline() {
    let dir = tempfile::tempdir().unwrap();
    let rx = start_receiver(dir.path());
    let ca = dir.path().join("receiver-ca.pem");
    let d = Daemon::start(&["--ca-file", ca.to_str().unwrap()]).await;
    let url = format!("{}/happ/chat", rx.url);

    let (code, out, err) = d.cli(&["endpoint", "connect", "acme", &url, "--secret", "s3cret"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Connected"), "{out}");
    let ping = wait_deliveries(&rx, 1);
    assert_eq!(
        (&ping[0]["event_type"], &ping[0]["signature_valid"]),
        (&Value::from("webhook.ping"), &Value::from(true))
    );
    let mut send = Command::new(BIN)
        .args([
            "send",
            "acme",
            "--event-type",
            "message.received",
            "--socket",
        ])
        .arg(&d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    send.stdin
        .take()
        .unwrap()
        .write_all(br#"{"event":"message.received","chat_id":42,"text":"Hello!"}"#)
        .unwrap();
    let out = send.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let got = wait_deliveries(&rx, 2);
    assert_eq!(got[1]["path"], "/happ/chat");
    assert_eq!(got[1]["signature_valid"], true, "{got:?}");
    assert_eq!(got[1]["event_type"], "message.received");
    assert_eq!(got[1]["content_type"], "application/json");

    for args in [
        &["endpoint", "show", "acme"][..],
        &["endpoint", "attempts", "acme"],
        &["dlq", "list"],
    ] {
        let (code, out, err) = d.cli(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }

    // The curl lines: JSON declared as JSON reaches the receiver as JSON.
    let a = d
        .try_request(
            "POST",
            "/v1/endpoints/acme/events",
            Some(Bytes::from_static(
                br#"{"callId":"call_8f3a","duration":252}"#,
            )),
            &[
                ("content-type", "application/json"),
                ("x-event-type", "call.completed"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 202, "{a:?}");
    let got = wait_deliveries(&rx, 3);
    assert_eq!(
        (
            &got[2]["event_type"],
            &got[2]["content_type"],
            &got[2]["signature_valid"]
        ),
        (
            &Value::from("call.completed"),
            &Value::from("application/json"),
            &Value::from(true)
        )
    );
}
