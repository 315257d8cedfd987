//! Runs the real `courier` binary for black-box tests and talks to it over its Unix socket
//! (and TCP, with the admin token when one is given) through [`courier::client`], one
//! connection per request. The daemon gets exactly the environment a test names: an admin
//! token or a master key of the developer's shell never leaks into a run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier::client::{Client, TransportKind};
use courier::config::ADMIN_TOKEN_ENV;
use courier::store::seal::key_file::KEY_ENV as MASTER_KEY_ENV;
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;

/// The `courier` binary of the build under test: `Command::new(BIN)`.
pub const BIN: Bin = Bin;

/// Where the `courier` binary is: `CARGO_BIN_EXE_courier` when set, else next to the test
/// executable's `deps/` directory (where cargo builds it before running integration tests).
#[derive(Debug, Clone, Copy)]
pub struct Bin;

impl Bin {
    pub fn path(&self) -> &'static Path {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(|| {
            if let Some(p) = std::env::var_os("CARGO_BIN_EXE_courier") {
                return PathBuf::from(p);
            }
            let exe = std::env::current_exe().expect("path of the test executable");
            let mut dir = exe.parent().expect("directory of the test executable");
            if dir.ends_with("deps") || dir.ends_with("examples") {
                dir = dir.parent().expect("target profile directory");
            }
            let bin = dir.join(format!("courier{}", std::env::consts::EXE_SUFFIX));
            assert!(bin.exists(), "no courier binary at {}", bin.display());
            bin
        })
    }
}

impl AsRef<OsStr> for Bin {
    fn as_ref(&self) -> &OsStr {
        self.path().as_os_str()
    }
}

impl AsRef<Path> for Bin {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// A running daemon in its own temporary directory.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub data: PathBuf,
    pub extra: Vec<String>,
    /// Environment variables of the daemon (kept across restarts).
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

/// An HTTP answer: status and parsed JSON body (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub raw: Bytes,
}

impl Daemon {
    /// Starts a daemon with no TCP listener (unless `extra` names `--listen`), plus `extra`
    /// flags.
    pub async fn start(extra: &[&str]) -> Daemon {
        Daemon::start_env(extra, &[]).await
    }

    /// [`Daemon::start`] with environment variables, e.g. `COURIER_ADMIN_TOKEN`.
    pub async fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut d = Daemon {
            socket: dir.join("courier.sock"),
            data: dir.join("data"),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            _tmp: Some(tmp),
        };
        d.spawn().await;
        d
    }

    /// The admin token the daemon was given in its environment, if any.
    pub fn admin_token(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == ADMIN_TOKEN_ENV)
            .map(|(_, v)| v.as_str())
    }

    /// (Re)starts the process on the same data dir and socket.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .expect("log file");
        let listen: &[&str] = if self.extra.iter().any(|a| a == "--listen") {
            &[]
        } else {
            &["--listen", "off"]
        };
        let data: Vec<&std::ffi::OsStr> = if self.extra.iter().any(|a| a == "--data-dir") {
            vec![]
        } else {
            vec!["--data-dir".as_ref(), self.data.as_os_str()]
        };
        let child = Command::new(BIN)
            .arg("serve")
            .args(&data)
            .arg("--socket")
            .arg(&self.socket)
            .args(listen)
            .args(&self.extra)
            .env_remove(ADMIN_TOKEN_ENV)
            .env_remove(MASTER_KEY_ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("COURIER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn courier");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(a) = self.try_request("GET", "/readyz", None, &[]).await
                && a.status == 200
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("courier exited at start with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not become ready: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("daemon did not stop after SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        request(&self.socket, method, path, body, headers).await
    }

    pub async fn req(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.try_request(method, path, body.map(|b| Bytes::from(b.to_string())), &[])
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    /// PUT an endpoint; panics unless 200/201.
    pub async fn put_endpoint(&self, id: &str, body: Value) -> Value {
        let a = self
            .req(
                "PUT",
                &format!("/v1/endpoints/{id}"),
                Some(&body.to_string()),
            )
            .await;
        assert!(a.status == 201 || a.status == 200, "PUT endpoint: {a:?}");
        a.json
    }

    /// Enqueue; panics unless 202. Returns (id, seq).
    pub async fn send(&self, endpoint: &str, body: &str) -> (String, u64) {
        let a = self
            .try_request(
                "POST",
                &format!("/v1/endpoints/{endpoint}/events"),
                Some(Bytes::from(body.to_string())),
                &[("content-type", "application/json")],
            )
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        assert_eq!(a.status, 202, "enqueue: {a:?}");
        (
            a.json["id"].as_str().expect("id").to_string(),
            a.json["seq"].as_u64().expect("seq"),
        )
    }

    pub async fn endpoint(&self, id: &str) -> Value {
        self.req("GET", &format!("/v1/endpoints/{id}"), None)
            .await
            .json
    }

    /// Polls `f` until it returns true or `timeout` passes.
    pub async fn wait_for_endpoint(
        &self,
        id: &str,
        timeout: Duration,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.endpoint(id).await;
            if f(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "endpoint never matched: {v}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every dead letter, oldest first (walking the pages).
    pub async fn dead_letters(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut path = "/v1/dead-letters?limit=1000".to_string();
        loop {
            let a = self.req("GET", &path, None).await;
            all.extend(
                a.json["dead_letters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match a.json["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/dead-letters?limit=1000&cursor={c}"),
                None => return all,
            }
        }
    }

    /// Waits until there are at least `n` dead letters; returns them.
    pub async fn wait_dead_letters(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let dl = self.dead_letters().await;
            if dl.len() >= n {
                return dl;
            }
            assert!(
                Instant::now() < deadline,
                "only {} dead letters: {dl:?}",
                dl.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs the CLI against this daemon; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_env(args, &[])
    }

    /// [`Daemon::cli`] with environment variables (none of the test's own `COURIER_*` admin
    /// settings leak in).
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .env_remove(ADMIN_TOKEN_ENV)
            .env_remove(MASTER_KEY_ENV)
            .env_remove("COURIER_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run cli");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One HTTP/1.1 request over a Unix socket, on a connection of its own.
pub async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut named = Vec::with_capacity(headers.len());
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        named.push((name, value));
    }
    let answer = Client::unix(socket)
        .call(method, path, &named, body.unwrap_or_default())
        .await
        .map_err(|e| match e.kind {
            TransportKind::Unreachable(why) => format!("connect {}: {why}", socket.display()),
            TransportKind::Lost(why) | TransportKind::BadRequest(why) => why,
            TransportKind::TimedOut(_) => e.to_string(),
        })?;
    let raw = answer.body;
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(Answer {
        status: answer.status.as_u16(),
        json,
        raw,
    })
}

/// One request over TCP on a connection of its own (the TCP admin API), with `headers`;
/// returns the answer and its headers.
pub async fn tcp_request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> Result<(Answer, hyper::HeaderMap), String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut named = Vec::with_capacity(headers.len());
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        named.push((name, value));
    }
    let answer = Client::tcp(addr)
        .call(method, path, &named, body.unwrap_or_default())
        .await
        .map_err(|e| e.to_string())?;
    let raw = answer.body;
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok((
        Answer {
            status: answer.status.as_u16(),
            json,
            raw,
        },
        answer.headers,
    ))
}

/// A free TCP port on 127.0.0.1 (for `--listen` / `--ingress-listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// POSTs over TCP (the ingress, or the TCP admin API); returns (status, Retry-After, JSON).
pub async fn post_tcp(
    addr: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Option<String>, Value) {
    let named: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            )
        })
        .collect();
    let mut client = Client::tcp(addr);
    client.connect().await.expect("connect");
    let answer = client
        .call(Method::POST, path, &named, Bytes::copy_from_slice(body))
        .await
        .expect("answer");
    let retry_after = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        answer.status.as_u16(),
        retry_after,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    )
}
