//! Black-box tests of admin access: the TCP admin API needs a bearer token (from
//! `--admin-token-file` or `COURIER_ADMIN_TOKEN`) unless `--listen-insecure`, the socket needs
//! none, probes and metrics are open; the CLI talks TCP with `--url` and a token; the data
//! files are owner-only; no token shows up in any answer or log line.

use testkit::daemon;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{Answer, BIN, Daemon, free_port, tcp_request};
use serde_json::json;

const TOKEN: &str = "tok-9f2c1d7e5a3b4c6d";
const OTHER: &str = "tok-second-0a1b2c3d";

async fn get(addr: &str, path: &str, token: Option<&str>) -> (Answer, hyper::HeaderMap) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    tcp_request(addr, "GET", path, None, &headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn assert_unauthorized(a: &Answer, headers: &hyper::HeaderMap) {
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.json["error"]["code"], "UNAUTHORIZED", "{a:?}");
    let hint = a.json["error"]["hint"].as_str().unwrap_or("");
    assert!(
        hint.contains("--admin-token-file") && hint.contains("--listen-insecure"),
        "{a:?}"
    );
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..]),
        "{headers:?}"
    );
}

async fn start_tcp(extra: &[&str], env: &[(&str, &str)]) -> (Daemon, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--listen", addr.as_str()];
    args.extend_from_slice(extra);
    (Daemon::start_env(&args, env).await, addr)
}

#[tokio::test]
async fn tcp_admin_needs_the_token_from_the_environment() {
    let (d, addr) = start_tcp(&[], &[("COURIER_ADMIN_TOKEN", TOKEN)]).await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;

    let (a, h) = get(&addr, "/v1/endpoints/acme", None).await;
    assert_unauthorized(&a, &h);
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Authorization")),
        "{a:?}"
    );
    let (a, h) = get(&addr, "/v1/endpoints/acme", Some("wrong-token")).await;
    assert_unauthorized(&a, &h);
    let (a, h) = get(&addr, "/v1/endpoints/acme", Some(&TOKEN[..TOKEN.len() - 1])).await;
    assert_unauthorized(&a, &h);
    let (a, _) = get(&addr, "/v1/endpoints/acme", Some(TOKEN)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["id"], "acme");

    // A write on TCP with the token works too; one without it changes nothing.
    let auth = format!("Bearer {TOKEN}");
    let (a, _) = tcp_request(
        &addr,
        "POST",
        "/v1/endpoints/acme/pause",
        None,
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let (a, _) = tcp_request(&addr, "POST", "/v1/endpoints/acme/resume", None, &[])
        .await
        .unwrap();
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(d.endpoint("acme").await["state"], "paused");

    // Probes and metrics need no token; the socket needs none either.
    for path in ["/livez", "/readyz", "/metrics"] {
        let (a, _) = get(&addr, path, None).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
    }
    let a = d.req("GET", "/v1/endpoints/acme", None).await;
    assert_eq!(a.status, 200, "socket: {a:?}");
}

#[tokio::test]
async fn tokens_from_a_file_each_open_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("# admin tokens\n\n{TOKEN}\n  {OTHER}  \n")).unwrap();
    let file_arg = file.to_str().unwrap();
    let (d, addr) = start_tcp(&["--admin-token-file", file_arg], &[]).await;
    for t in [TOKEN, OTHER] {
        let (a, _) = get(&addr, "/v1/endpoints", Some(t)).await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    let (a, h) = get(&addr, "/v1/endpoints", Some("# admin tokens")).await;
    assert_unauthorized(&a, &h);
    let (a, h) = get(&addr, "/v1/endpoints", None).await;
    assert_unauthorized(&a, &h);
    drop(d);
}

#[tokio::test]
async fn no_token_configured_closes_tcp_unless_insecure() {
    let (mut d, addr) = start_tcp(&[], &[]).await;
    let (a, h) = get(&addr, "/v1/endpoints", Some("anything")).await;
    assert_unauthorized(&a, &h);
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no admin token")),
        "{a:?}"
    );
    let (a, _) = get(&addr, "/readyz", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(d.req("GET", "/v1/endpoints", None).await.status, 200);
    assert!(d.log().contains("no admin token configured"), "{}", d.log());
    d.terminate();

    let (d, addr) = start_tcp(&["--listen-insecure"], &[]).await;
    let (a, _) = get(&addr, "/v1/endpoints", None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(d.log().contains("--listen-insecure"), "{}", d.log());
}

#[tokio::test]
async fn a_non_loopback_admin_address_is_warned_about() {
    let addr = format!("0.0.0.0:{}", free_port());
    let d = Daemon::start_env(&["--listen", &addr], &[("COURIER_ADMIN_TOKEN", TOKEN)]).await;
    let log = d.log();
    assert!(
        log.contains("WARN") && log.contains("non-loopback"),
        "{log}"
    );
    let local = format!("127.0.0.1:{}", addr.rsplit(':').next().unwrap());
    let (a, h) = get(&local, "/v1/endpoints", None).await;
    assert_unauthorized(&a, &h);
}

#[test]
fn an_empty_or_unreadable_token_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "# no token yet\n\n").unwrap();
    let missing = dir.path().join("missing");
    for (file, says) in [(&empty, "holds no token"), (&missing, "cannot read")] {
        let out = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--socket")
            .arg(dir.path().join("c.sock"))
            .arg("--admin-token-file")
            .arg(file)
            .env_remove("COURIER_ADMIN_TOKEN")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(
            err.contains("admin_token_file") && err.contains(says),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            !dir.path().join("data").exists(),
            "a refused start created the data dir"
        );
    }
}

#[tokio::test]
async fn the_cli_talks_tcp_with_url_and_token() {
    let (d, addr) = start_tcp(&[], &[("COURIER_ADMIN_TOKEN", TOKEN)]).await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("# mine\n{TOKEN}\n")).unwrap();
    let url = format!("http://{addr}");
    let socket = d.cli(&["endpoint", "list"]);
    assert_eq!(socket.0, 0, "{socket:?}");

    let by_file = d.cli(&[
        "endpoint",
        "list",
        "--url",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(by_file, socket);
    let by_env = d.cli_env(
        &["endpoint", "show", "acme", "--json"],
        &[("COURIER_URL", &url), ("COURIER_ADMIN_TOKEN", TOKEN)],
    );
    assert_eq!(by_env, d.cli(&["endpoint", "show", "acme", "--json"]));

    let (code, out, err) = d.cli(&["endpoint", "list", "--url", &url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: UNAUTHORIZED: ") && err.contains("\nhint: "),
        "{err}"
    );
    let (code, _, err) = d.cli_env(
        &["endpoint", "list", "--url", &url],
        &[("COURIER_ADMIN_TOKEN", "not-the-token")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("UNAUTHORIZED"), "{err}");

    let (code, _, err) = d.cli(&["endpoint", "list", "--url", "https://127.0.0.1:1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = d.cli_env(
        &["endpoint", "list", "--url", "http://127.0.0.1:1"],
        &[("COURIER_ADMIN_TOKEN", TOKEN)],
    );
    assert_eq!(code, 69, "{err}");
    assert!(
        err.contains("DAEMON_UNREACHABLE") && err.contains("--url"),
        "{err}"
    );
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn data_files_are_owner_only() {
    let mut d = Daemon::start(&[]).await;
    let journal = d.data.join("courier.redb");
    assert_eq!(mode(&d.data), 0o700);
    assert_eq!(mode(&journal), 0o600);
    // Event bodies: the segment directory and its files are the owner's only too.
    let segments = d.data.join("segments");
    assert_eq!(mode(&segments), 0o700);
    let files: Vec<_> = std::fs::read_dir(&segments).unwrap().collect();
    assert!(
        !files.is_empty(),
        "the active segment exists from the start"
    );
    for f in files {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    assert_eq!(mode(&d.socket), 0o600);
    d.terminate();

    // A journal found readable by others is tightened on open.
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
    d.spawn().await;
    assert_eq!(mode(&journal), 0o600);
    assert!(d.log().contains("tightened"), "{}", d.log());
}

#[tokio::test]
async fn no_token_in_any_answer_or_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("{OTHER}\n")).unwrap();
    let (mut d, addr) = start_tcp(
        &[
            "--admin-token-file",
            file.to_str().unwrap(),
            "--log",
            "debug",
        ],
        &[("COURIER_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let mut seen = Vec::new();
    for t in [None, Some(TOKEN), Some(OTHER), Some("tok-wrong-guess")] {
        for path in ["/v1/endpoints", "/v1/nope", "/metrics", "/readyz"] {
            let (a, h) = get(&addr, path, t).await;
            seen.push(String::from_utf8_lossy(&a.raw).into_owned());
            seen.push(format!("{h:?}"));
        }
    }
    let url = format!("http://{addr}");
    let cli = d.cli_env(
        &["endpoint", "list", "--url", &url],
        &[("COURIER_ADMIN_TOKEN", TOKEN)],
    );
    seen.push(format!("{cli:?}"));
    let bad = d.cli_env(
        &["endpoint", "list", "--url", &url],
        &[("COURIER_ADMIN_TOKEN", "tok-wrong-guess")],
    );
    seen.push(format!("{bad:?}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.log().contains("api") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.terminate();
    seen.push(d.log());
    for text in &seen {
        for secret in [TOKEN, OTHER, "tok-wrong-guess"] {
            assert!(!text.contains(secret), "{secret} shown in: {text}");
        }
    }
}
