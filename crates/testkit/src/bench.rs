//! Shared plumbing of the benchmark tools in `bench/`: an admin client that reconnects (over
//! [`courier::client`]), the `courier` release binary as a child process (with cleanup),
//! percentiles, and small argument and `/proc` helpers.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use courier::client::{Client, Error, Target};
use courier::views::EndpointUpdate;
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderValue};

/// The repository's root directory (where `target/` and `src/` are).
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs `$call` (an expression using the client `$c`) and, when its connection broke off, once
/// more on a new connection.
macro_rules! retried {
    ($api:ident, |$c:ident| $call:expr) => {{
        let $c = &mut $api.client;
        match $call.await {
            Err(Error::Transport(e)) if e.outcome_unknown() => {
                eprintln!("api: {e}; reconnecting");
                $api.client.disconnect();
                let $c = &mut $api.client;
                $call.await.map_err(io::Error::other)
            }
            r => r.map_err(io::Error::other),
        }
    }};
}

/// The admin calls of the benchmarks on one keep-alive connection; a call whose connection
/// broke off is retried once on a new one.
pub struct Api {
    client: Client,
}

impl Api {
    pub fn new(target: Target) -> Api {
        Api {
            client: Client::new(target),
        }
    }

    /// An API over a client made elsewhere (e.g. one carrying the admin token).
    pub fn from_client(client: Client) -> Api {
        Api { client }
    }

    /// The underlying client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// One raw call (`Content-Type: application/json` when there is a body): `(status, body)`.
    pub async fn raw(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> io::Result<(u16, Bytes)> {
        let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let headers: &[_] = if body.is_empty() { &[] } else { &json };
        let a = retried!(self, |c| async {
            c.call(method.clone(), path, headers, body.clone())
                .await
                .map_err(Error::from)
        })?;
        Ok((a.status.as_u16(), a.body))
    }

    /// Creates (or updates) `id` pointing at `url` with max_in_flight 1.
    pub async fn put_endpoint(&mut self, id: &str, url: &str) -> io::Result<()> {
        let update = EndpointUpdate {
            url: Some(url.to_owned()),
            max_in_flight: Some(1),
            ..EndpointUpdate::default()
        };
        retried!(self, |c| c.put_endpoint(id, &update)).map(drop)
    }

    pub async fn set_paused(&mut self, id: &str, paused: bool) -> io::Result<()> {
        if paused {
            retried!(self, |c| c.pause_endpoint(id)).map(drop)
        } else {
            retried!(self, |c| c.resume_endpoint(id)).map(drop)
        }
    }

    pub async fn backlog(&mut self, id: &str) -> io::Result<u64> {
        retried!(self, |c| c.endpoint(id)).map(|v| v.backlog)
    }

    /// The writer's (`courier_writer_*`, `courier_commit_*`) and the attempts' lines of
    /// `/metrics` (buckets left out), for evidence in reports.
    pub async fn writer_metrics(&mut self) -> io::Result<String> {
        let text = retried!(self, |c| c.metrics())?;
        Ok(text
            .lines()
            .filter(|l| {
                [
                    "courier_writer",
                    "courier_commit_",
                    "courier_attempt_duration_seconds",
                ]
                .iter()
                .any(|p| l.starts_with(p))
                    && !l.contains("_bucket{")
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// Path of the release binary (`COURIER_BIN` overrides).
pub fn courier_bin() -> PathBuf {
    std::env::var_os("COURIER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target/release/courier"))
}

/// The real daemon as a child process in `dir` (data in `dir/data`, socket `dir/courier.sock`,
/// log `dir/daemon.log`). Dropping it stops it (SIGTERM, then SIGKILL after 5 s). When
/// `COURIER_BENCH_PIDDIR` is set, the pid is written there so a shell trap can clean up even if
/// this process is killed.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub data: PathBuf,
    pub listen: Option<String>,
    child: Option<Child>,
    pidfile: Option<PathBuf>,
}

impl Daemon {
    pub fn spawn(dir: &Path, listen: Option<&str>) -> io::Result<Daemon> {
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            socket: dir.join("courier.sock"),
            data: dir.join("data"),
            listen: listen.map(str::to_owned),
            child: None,
            pidfile: None,
        };
        d.start()?;
        Ok(d)
    }

    /// (Re)starts the process on the same data dir.
    pub fn start(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))?;
        let bin = courier_bin();
        let child = Command::new(&bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--listen")
            .arg(self.listen.as_deref().unwrap_or("off"))
            .arg("--allow-http")
            .env("COURIER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot start {}: {e}", bin.display())))?;
        if let Some(dir) = std::env::var_os("COURIER_BENCH_PIDDIR") {
            let p = PathBuf::from(dir).join(child.id().to_string());
            let _ = std::fs::write(&p, child.id().to_string());
            self.pidfile = Some(p);
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn api(&self) -> Api {
        Api::new(Target::Unix(self.socket.clone()))
    }

    /// Polls `/readyz` until 200; returns how long it took.
    pub async fn wait_ready(&mut self, timeout: Duration) -> io::Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Err(io::Error::other(format!(
                    "courier exited early ({st}); see {}",
                    self.dir.join("daemon.log").display()
                )));
            }
            if let Ok(true) = Client::unix(&self.socket).readyz().await {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(io::Error::other("courier did not become ready"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let pid = self.pid()?;
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines()
            .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// SIGTERM and wait (bounded); returns the time to exit.
    pub fn terminate(&mut self, timeout: Duration) -> io::Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                self.remove_pidfile();
                return Err(io::Error::other("courier did not stop on SIGTERM; killed"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.remove_pidfile();
        Ok(started.elapsed())
    }

    fn remove_pidfile(&mut self) {
        if let Some(p) = self.pidfile.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Size of the journal in bytes: the database file and the segment files.
    pub fn journal_bytes(&self) -> u64 {
        let mut n = std::fs::metadata(self.data.join("courier.redb")).map_or(0, |m| m.len());
        if let Ok(rd) = std::fs::read_dir(self.data.join("segments")) {
            for e in rd.flatten() {
                n += e.metadata().map_or(0, |m| m.len());
            }
        }
        n
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate(Duration::from_secs(5));
        }
    }
}

/// `p` in 0..=100 of sorted values (nearest rank).
pub fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Unix time in microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// A JSON event body of exactly `len` bytes (at least ~20): `{"n":N,"pad":"xxx…"}`. The
/// receiver side reads `n` back with [`body_n`].
pub fn event_body(n: u64, len: usize) -> String {
    let head = format!("{{\"n\":{n},\"pad\":\"");
    let pad = len.saturating_sub(head.len() + 2);
    let mut s = String::with_capacity(len);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// Reads `n` from a body made by [`event_body`].
pub fn body_n(body: &[u8]) -> Option<u64> {
    let rest = body.strip_prefix(b"{\"n\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// A machine-readable result line for scripts/bench.sh.
pub fn result_line(pairs: &[(&str, String)]) -> String {
    let mut s = String::from("RESULT");
    for (k, v) in pairs {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// The current commit of the work tree (for reports), `-dirty` when src/ has changes.
pub fn tree_version() -> String {
    let dir = ROOT;
    let head = Command::new("git")
        .args(["-C", dir, "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["-C", dir, "status", "--porcelain", "--", "src"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty { format!("{head}-dirty") } else { head }
}

/// CPU seconds (user + system) used so far by each thread of `pid`, summed by thread name.
pub fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ..." — comm may hold spaces; fields after ')' are fixed.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let (Some(u), Some(s)) = (f.get(11), f.get(12)) else {
            continue;
        };
        let secs = (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / tick;
        match by_name.iter_mut().find(|(n, _)| *n == comm) {
            Some((_, v)) => *v += secs,
            None => by_name.push((comm, secs)),
        }
    }
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    by_name
}

/// Scheduler accounting per thread name from `/proc/PID/task/*/schedstat`: seconds running on
/// a CPU and seconds runnable but waiting for one (CPU contention).
pub fn thread_sched(pid: u32) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim().to_string();
        let Ok(ss) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let v: Vec<f64> = ss
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (run, wait) = (
            v.first().copied().unwrap_or(0.0) / 1e9,
            v.get(1).copied().unwrap_or(0.0) / 1e9,
        );
        match out.iter_mut().find(|(n, _, _)| *n == comm) {
            Some(e) => {
                e.1 += run;
                e.2 += wait;
            }
            None => out.push((comm, run, wait)),
        }
    }
    out
}

/// Difference of two [`thread_sched`] samples: `name: running X s, waiting for a CPU Y s`.
pub fn sched_report(before: &[(String, f64, f64)], after: &[(String, f64, f64)]) -> String {
    after
        .iter()
        .map(|(n, r, w)| {
            let (br, bw) = before
                .iter()
                .find(|(m, _, _)| m == n)
                .map(|(_, r, w)| (*r, *w))
                .unwrap_or((0.0, 0.0));
            format!(
                "{n}: on CPU {:.2} s, runnable but waiting for a CPU {:.2} s",
                r - br,
                w - bw
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// CPU used between two [`thread_cpu`] samples, by thread name (threads that ended are lost).
pub fn cpu_delta(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, f64)> {
    after
        .iter()
        .map(|(n, a)| {
            let b = before
                .iter()
                .find(|(m, _)| m == n)
                .map(|(_, v)| *v)
                .unwrap_or(0.0);
            (n.clone(), (a - b).max(0.0))
        })
        .collect()
}

/// `name 1.23 s (45% of a core), …` and the total.
pub fn cpu_report(delta: &[(String, f64)], elapsed: f64) -> (String, f64) {
    let total: f64 = delta.iter().map(|(_, v)| v).sum();
    let parts: Vec<String> = delta
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(n, v)| format!("{n} {v:.2} s ({:.0}%)", v / elapsed * 100.0))
        .collect();
    (parts.join(", "), total)
}

/// CPU seconds (user + system) in a `/proc/.../stat` file (`/proc/self/stat` counts the
/// threads that already ended too; `/proc/thread-self/stat` is the calling thread).
pub fn stat_cpu(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / 100.0
}

/// Bytes a process made the kernel write to storage so far (`write_bytes` of `/proc/PID/io`;
/// `pid` None: this process).
pub fn write_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/io"),
        None => "/proc/self/io".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
