//! Black-box tests of `courier endpoint add` and `courier channel add` on existing objects,
//! against the real binary: an update keeps every setting it does not name (secrets and
//! passwords included), and only `--clear-secret` / `--clear-password` remove them.

use testkit::daemon;

use std::process::Command;

use daemon::{BIN, Daemon};
use serde_json::{Value, json};

const URL: &str = "http://127.0.0.1:9/hook";

/// Runs the CLI, asserts exit 0 and that no secret value shows up; returns stdout.
fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = d.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    for secret in ["chan-secret-1", "ep-secret-1", "ep-password-1"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{args:?} printed a secret: {out}{err}"
        );
    }
    out
}

/// `<kind> show ID --json`, parsed.
fn show(d: &Daemon, kind: &str, id: &str) -> Value {
    let out = ok(d, &[kind, "show", id, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{kind} show {id}: {e}: {out}"))
}

#[tokio::test]
async fn channel_add_keeps_what_it_does_not_name() {
    let d = Daemon::start(&["--allow-http"]).await;
    ok(&d, &["endpoint", "add", "happ", URL]);
    let secret_file = d.dir.join("channel.secret");
    std::fs::write(&secret_file, "chan-secret-1\n").unwrap();
    let out = ok(
        &d,
        &[
            "channel",
            "add",
            "cm",
            "happ",
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--rate-limit",
            "10",
            "--burst",
            "30",
        ],
    );
    assert!(out.starts_with("created channel cm"), "{out}");
    let c = show(&d, "channel", "cm");
    assert_eq!(
        (&c["secret_set"], &c["rate_limit"], &c["burst"]),
        (&json!(true), &json!(10), &json!(30)),
        "{c}"
    );

    // Only a new rate: the secret (the channel's authentication) and the burst stay.
    let out = ok(&d, &["channel", "add", "cm", "happ", "--rate-limit", "50"]);
    assert!(out.starts_with("updated channel cm"), "{out}");
    assert!(out.contains("secret: set"), "{out}");
    let c = show(&d, "channel", "cm");
    assert_eq!(c["secret_set"], true, "{c}");
    assert_eq!(c["rate_limit"], 50, "{c}");
    assert_eq!(c["burst"], 30, "{c}");
    assert_eq!(c["endpoint"], "happ", "{c}");

    // --clear-secret removes the secret and nothing else.
    let out = ok(&d, &["channel", "add", "cm", "happ", "--clear-secret"]);
    assert!(out.contains("secret: not set"), "{out}");
    let c = show(&d, "channel", "cm");
    assert_eq!(c["secret_set"], false, "{c}");
    assert_eq!(
        (&c["rate_limit"], &c["burst"]),
        (&json!(50), &json!(30)),
        "{c}"
    );

    // A secret can be set again, and --clear-secret does not go with --secret.
    ok(
        &d,
        &["channel", "add", "cm", "happ", "--secret", "chan-secret-1"],
    );
    assert_eq!(show(&d, "channel", "cm")["secret_set"], true);
    let (code, _, err) = d.cli(&[
        "channel",
        "add",
        "cm",
        "happ",
        "--secret",
        "s",
        "--clear-secret",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(show(&d, "channel", "cm")["secret_set"], true);
}

#[tokio::test]
async fn endpoint_add_keeps_what_it_does_not_name() {
    let d = Daemon::start(&["--allow-http"]).await;
    let password_file = d.dir.join("endpoint.password");
    std::fs::write(&password_file, "ep-password-1\n").unwrap();
    ok(
        &d,
        &[
            "endpoint",
            "add",
            "acme",
            URL,
            "--secret",
            "ep-secret-1",
            "--password-file",
            password_file.to_str().unwrap(),
            "--timeout",
            "2s",
            "--retry-schedule",
            "1s,2s",
            "--max-in-flight",
            "2",
        ],
    );
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (&e["secret_set"], &e["password_set"]),
        (&json!(true), &json!(true)),
        "{e}"
    );

    // Only a new timeout: secret, password and every other setting stay.
    let out = ok(&d, &["endpoint", "add", "acme", URL, "--timeout", "3s"]);
    assert!(out.starts_with("updated endpoint acme"), "{out}");
    let e = show(&d, "endpoint", "acme");
    assert_eq!(e["timeout"], "3s", "{e}");
    assert_eq!(e["secret_set"], true, "{e}");
    assert_eq!(e["password_set"], true, "{e}");
    assert_eq!(e["retry_schedule"], json!(["1s", "2s"]), "{e}");
    assert_eq!(e["max_in_flight"], 2, "{e}");

    // --clear-secret removes the secret only.
    let out = ok(&d, &["endpoint", "add", "acme", URL, "--clear-secret"]);
    assert!(
        out.contains("secret: not set") && out.contains("password: set"),
        "{out}"
    );
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (&e["secret_set"], &e["password_set"]),
        (&json!(false), &json!(true)),
        "{e}"
    );
    assert_eq!(e["timeout"], "3s", "{e}");

    // --clear-password removes the password only.
    ok(
        &d,
        &[
            "endpoint",
            "add",
            "acme",
            URL,
            "--secret",
            "ep-secret-1",
            "--clear-password",
        ],
    );
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (&e["secret_set"], &e["password_set"]),
        (&json!(true), &json!(false)),
        "{e}"
    );
    ok(
        &d,
        &[
            "endpoint",
            "add",
            "acme",
            URL,
            "--clear-secret",
            "--clear-password",
        ],
    );
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (&e["secret_set"], &e["password_set"]),
        (&json!(false), &json!(false)),
        "{e}"
    );
    assert_eq!(
        (&e["timeout"], &e["retry_schedule"], &e["max_in_flight"]),
        (&json!("3s"), &json!(["1s", "2s"]), &json!(2)),
        "{e}"
    );

    // A --clear-… flag does not go with a new value: usage error, nothing sent.
    ok(
        &d,
        &[
            "endpoint",
            "add",
            "acme",
            URL,
            "--password",
            "ep-password-1",
        ],
    );
    for conflicting in [
        &["--clear-secret", "--secret", "s"][..],
        &["--clear-password", "--password-file", "/nonexistent"],
    ] {
        let args: Vec<&str> = ["endpoint", "add", "acme", URL]
            .iter()
            .chain(conflicting)
            .copied()
            .collect();
        let (code, _, err) = d.cli(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    assert_eq!(show(&d, "endpoint", "acme")["password_set"], true);
}

/// What `endpoint remove --help` promises: waiting events are dead-lettered with reason
/// ENDPOINT_DELETED and replay into a re-created endpoint of the same id.
#[tokio::test]
async fn endpoint_remove_force_dead_letters_the_backlog() {
    let help = Command::new(BIN)
        .args(["endpoint", "remove", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("ENDPOINT_DELETED") && !help.contains("dropped"),
        "{help}"
    );

    let d = Daemon::start(&["--allow-http"]).await;
    ok(&d, &["endpoint", "add", "acme", URL]);
    ok(&d, &["endpoint", "pause", "acme"]);
    let (id, _) = d.send("acme", r#"{"n":1}"#).await;
    let (code, _, err) = d.cli(&["endpoint", "remove", "acme"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ENDPOINT_NOT_EMPTY"), "{err}");

    ok(&d, &["endpoint", "remove", "acme", "--force"]);
    let list: Value = serde_json::from_str(&ok(&d, &["dlq", "list", "--json"])).unwrap();
    let dead = list["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{list}");
    assert_eq!(
        (&dead[0]["id"], &dead[0]["reason"]),
        (&json!(id), &json!("ENDPOINT_DELETED")),
        "{list}"
    );

    ok(&d, &["endpoint", "add", "acme", URL]);
    ok(&d, &["endpoint", "pause", "acme"]);
    let out = ok(&d, &["dlq", "replay", &id]);
    assert!(out.contains(&format!("replayed {id}")), "{out}");
    assert_eq!(d.endpoint("acme").await["backlog"], 1);
}

#[tokio::test]
async fn endpoint_set_changes_one_setting_and_never_creates() {
    let d = Daemon::start(&["--allow-http"]).await;
    let secret_file = d.dir.join("ep.secret");
    std::fs::write(&secret_file, "ep-secret-1\n").unwrap();
    ok(
        &d,
        &[
            "endpoint",
            "add",
            "acme",
            URL,
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--retry-schedule",
            "1s,2s",
        ],
    );
    let out = ok(&d, &["endpoint", "set", "acme", "--timeout", "3s"]);
    assert!(out.starts_with("updated endpoint acme"), "{out}");
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (
            &e["url"],
            &e["timeout"],
            &e["retry_schedule"],
            &e["secret_set"]
        ),
        (
            &json!(URL),
            &json!("3s"),
            &json!(["1s", "2s"]),
            &json!(true)
        ),
        "{e}"
    );
    ok(
        &d,
        &[
            "endpoint",
            "set",
            "acme",
            "--endpoint-url",
            "http://127.0.0.1:9/other",
        ],
    );
    let e = show(&d, "endpoint", "acme");
    assert_eq!(
        (&e["url"], &e["timeout"]),
        (&json!("http://127.0.0.1:9/other"), &json!("3s"))
    );

    // An unknown id is not created.
    let (code, out, err) = d.cli(&["endpoint", "set", "nope", "--timeout", "3s"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("ENDPOINT_NOT_FOUND"), "{err}");
    let a = d.req("GET", "/v1/endpoints/nope", None).await;
    assert_eq!(a.status, 404);
    let a = d
        .req("PATCH", "/v1/endpoints/nope", Some(r#"{"timeout":"3s"}"#))
        .await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );

    // Nothing to change is a usage error; a bad value is the daemon's refusal.
    let (code, _, err) = d.cli(&["endpoint", "set", "acme"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = d.cli(&["endpoint", "set", "acme", "--timeout", "0s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("INVALID_TIMEOUT"), "{err}");
}
