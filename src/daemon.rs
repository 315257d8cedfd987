//! `courier serve`: opens the journal, starts the writer, the scheduler and the API listeners,
//! and shuts them down in order on SIGTERM/SIGINT; the retention task is in [`retention`].
//!
//! Start-up order: check the configuration and the socket path (never replace anything but a
//! socket nobody answers on) → bind the TCP listeners → create the data dir and open the
//! journal → bind the socket → start the writer, the scheduler and the listeners. A failed
//! start removes what it created (a data dir it created, the socket it bound); at stop only
//! the socket this process bound is removed.
//!
//! Shutdown order: stop intake (new enqueues get 503 `SHUTTING_DOWN`, listeners stop
//! accepting, open connections finish their request) → the scheduler lets in-flight attempts
//! finish within `shutdown_grace` and journals their results → the retention task stops → the
//! writer makes everything durable → exit 0. An attempt cut off by the grace period is simply sent again next start.

mod master_key;
pub mod retention;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::auth::{AdminGate, Via};
use crate::api::{self, AppState};
use crate::config::Config;
use crate::destination::Destinations;
use crate::ingress::{Channels, IngressState};
use crate::intake::Intake;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::store::Journal;
use crate::store::redb::{self as redb_store, RedbJournal};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A setting is unusable (exit 64).
    #[error("config error: {0}")]
    Config(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Runtime(String),
}

/// How long open API connections get to finish their request at shutdown.
const CONNECTION_DRAIN: Duration = Duration::from_secs(5);

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config) -> Result<(), DaemonError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    run_until(cfg, stop_rx).await
}

/// Runs the daemon until `stop` turns true.
pub async fn run_until(cfg: Config, mut stop: watch::Receiver<bool>) -> Result<(), DaemonError> {
    // Everything that can be checked is checked, and the TCP ports are bound, before anything
    // is created on disk. What this start creates afterwards is removed again if it fails: a
    // new data dir by `created`, the socket by `OwnSocket` itself.
    let destinations = Destinations::new(cfg.ca_file.as_deref(), cfg.allow_http)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    check_socket_path(&cfg.socket).await?;
    let tcp = bind_tcp(&cfg).await?;
    let mut created = Created::default();
    let db_path = cfg.data_dir.join(redb_store::DB_FILE);
    created.dirs = create_private_dir(&cfg.data_dir)?;
    if !created.dirs.is_empty() {
        created.journal = Some(db_path.clone());
    }
    let keys = master_key::load(&cfg, &mut created)?;
    let (sched_handle, sched_rx) = Scheduler::channel();
    let notify_handle = sched_handle.clone();
    // Before the journal and the scheduler take their metric handles.
    let metrics = install_metrics();
    let journal = RedbJournal::open_with_limits(
        &db_path,
        cfg.cache_bytes,
        cfg.segment_bytes,
        keys.ring.clone(),
        Box::new(move |n| notify_handle.notify(n)),
        cfg.limits(),
    )
    .map_err(|e| {
        // Refused before anything was sealed under it: a key made now is of no use.
        if let Some(made) = &keys.created
            && e.to_string().contains(redb_store::KEY_MISMATCH)
        {
            let _ = std::fs::remove_file(made);
        }
        DaemonError::Runtime(format!("cannot open the journal: {e}"))
    })?;
    let journal: Arc<dyn Journal> = Arc::new(journal);
    let endpoints = journal
        .endpoints()
        .await
        .map_err(|e| DaemonError::Runtime(format!("cannot read endpoints: {e}")))?;
    let channels = journal
        .channels()
        .await
        .map_err(|e| DaemonError::Runtime(format!("cannot read channels: {e}")))?;
    // Dropped on a failed start, it removes its socket file.
    let unix = bind_unix(&cfg.socket).await?;
    // Nothing below fails: the start has succeeded and keeps what it created.
    created.keep();

    let backlog: u64 = endpoints.iter().map(|e| e.pending).sum();
    metrics::gauge!(crate::telemetry::BACKLOG).set(backlog as f64);
    let activity = Arc::new(crate::telemetry::Activity::default());
    let (operator, operator_rx) = match &cfg.operator_endpoint {
        Some(id) => {
            let (tx, rx) = crate::operator::channel(id);
            (Some(tx), Some((rx, id.clone())))
        }
        None => (None, None),
    };
    let scheduler = Scheduler::new(
        SchedulerConfig {
            retry_after_cap: cfg.retry_after_max,
            activity: activity.clone(),
            operator,
        },
        journal.clone(),
        Arc::new(destinations),
        endpoints,
    );
    let sched_task = tokio::spawn(scheduler.run(sched_rx));

    // One intake and one channel table, shared by the admin API and the ingress; each listener
    // gets only its own state.
    let intake = Arc::new(Intake::new(journal.clone()));
    if let Some((rx, id)) = operator_rx {
        tracing::info!(operator_endpoint = %id, "operator events go to this endpoint");
        tokio::spawn(crate::operator::run(rx, intake.clone(), id));
    }
    let sampled = activity.clone();
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::telemetry::RATE_SAMPLE);
        loop {
            tick.tick().await;
            sampled.sample();
        }
    });
    let (retention_stop, retention_rx) = watch::channel(false);
    let retention = retention::spawn(journal.clone(), cfg.retention, retention_rx);
    let channels = Arc::new(Channels::load(channels));
    let state = Arc::new(AppState {
        journal: journal.clone(),
        intake: intake.clone(),
        sched: sched_handle.clone(),
        max_body_bytes: cfg.max_body_bytes,
        allow_http: cfg.allow_http,
        metrics,
        channels: channels.clone(),
        gate: AdminGate::new(&cfg.admin_tokens, cfg.listen_insecure),
        activity: Some(activity),
        metrics_max_endpoints: cfg.metrics_max_endpoints,
        journal_file: Some(db_path.clone()),
        limits: cfg.limits(),
    });
    let ingress = Arc::new(IngressState {
        intake: intake.clone(),
        channels,
        max_body_bytes: cfg.max_body_bytes,
    });
    let served = |role| match role {
        Role::Admin => Served::Admin(state.clone(), Via::Tcp),
        Role::Ingress => Served::Ingress(ingress.clone()),
    };

    let mut listeners = JoinSet::new();
    listeners.spawn(accept_loop(
        Listener::Unix(unix),
        Served::Admin(state.clone(), Via::Socket),
        stop.clone(),
    ));
    tracing::info!(socket = %cfg.socket.display(), "API listening on the Unix socket");
    for (tcp, role, what) in tcp {
        match tcp.local_addr() {
            Ok(local) => tracing::info!(addr = %local, "{what}"),
            Err(e) => tracing::info!(error = %e, "{what}"),
        }
        if let Role::Admin = role {
            warn_about_tcp_admin(&cfg, &state.gate);
        }
        listeners.spawn(accept_loop(Listener::Tcp(tcp), served(role), stop.clone()));
    }
    tracing::info!(data_dir = %cfg.data_dir.display(), backlog, "courier started");

    until_stopped(&mut stop).await;
    tracing::info!("shutting down: intake stopped");
    intake.stop();
    // The Unix listener removes its socket file as it stops accepting (`OwnSocket`).
    while listeners.join_next().await.is_some() {}

    sched_handle.shutdown(cfg.shutdown_grace).await;
    let _ = sched_task.await;
    sampler.abort();
    // Between passes: none runs into the close.
    let _ = retention_stop.send(true);
    let _ = retention.await;
    // The final durable commit; the journal takes no writes after it.
    let synced = journal.close().await;
    drop(state);
    drop(ingress);
    drop(sched_handle);
    match synced {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Err(e) => Err(DaemonError::Runtime(format!("final commit failed: {e}"))),
    }
}

/// The start-up lines about who can use the TCP admin API: a warning when it binds a
/// non-loopback address and when it takes requests without a token; a note when no token is
/// configured (it then refuses every `/v1/…` request).
fn warn_about_tcp_admin(cfg: &Config, gate: &AdminGate) {
    let Some(addr) = cfg.listen else { return };
    if !addr.ip().is_loopback() {
        tracing::warn!(addr = %addr, "the admin API listens on a non-loopback address: anyone who can reach it and holds a token administers Courier; prefer 127.0.0.1 or the Unix socket");
    }
    if cfg.listen_insecure {
        tracing::warn!(addr = %addr, "--listen-insecure: the TCP admin API takes every request without a token (local development only)");
    } else if !gate.has_tokens() {
        tracing::info!(addr = %addr, "no admin token configured: the TCP admin API answers 401 to /v1 requests (set --admin-token-file or COURIER_ADMIN_TOKEN); the Unix socket needs none");
    }
}

/// Binds the TCP listeners (API and ingress) that are configured.
async fn bind_tcp(cfg: &Config) -> Result<Vec<(TcpListener, Role, &'static str)>, DaemonError> {
    let wanted = [
        (cfg.listen, Role::Admin, "API listening on TCP"),
        (
            cfg.ingress_listen,
            Role::Ingress,
            "inbound webhook ingress listening on TCP",
        ),
    ];
    let mut bound = Vec::new();
    for (addr, role, what) in wanted {
        let Some(addr) = addr else { continue };
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| DaemonError::Runtime(format!("cannot listen on {addr}: {e}")))?;
        bound.push((tcp, role, what));
    }
    Ok(bound)
}

/// The data dir a start created; removed again when this is dropped before [`Created::keep`],
/// i.e. when the start fails. (The socket removes itself: `OwnSocket`.)
#[derive(Default)]
struct Created {
    /// Directories this start created for the data dir, the deepest first.
    dirs: Vec<PathBuf>,
    /// The journal file, when it lies in a data dir this start created.
    journal: Option<PathBuf>,
    /// The master key file, when it lies in a data dir this start created.
    key: Option<PathBuf>,
}

impl Created {
    /// The start succeeded: keeps everything.
    fn keep(&mut self) {
        self.dirs.clear();
        self.journal = None;
        self.key = None;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if let Some(journal) = self.journal.take() {
            // The segment directory beside it was made by this start too (it holds at most
            // the empty active segment: nothing was accepted).
            if let Some(dir) = journal.parent() {
                let _ = std::fs::remove_dir_all(dir.join(redb_store::segments::SEGMENT_DIR));
            }
            let _ = std::fs::remove_file(journal);
        }
        if let Some(key) = self.key.take() {
            let _ = std::fs::remove_file(key);
        }
        // Only empty directories are removed: anything else found there is left alone.
        for dir in self.dirs.drain(..) {
            if let Err(e) = std::fs::remove_dir(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the data directory this start created");
                break;
            }
        }
    }
}

/// Creates the data dir (mode 0700) unless it exists; returns the directories it created, the
/// deepest first.
fn create_private_dir(dir: &Path) -> Result<Vec<PathBuf>, DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| {
                !a.as_os_str().is_empty()
                    && matches!(a.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
            .map(Path::to_path_buf)
            .collect();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                DaemonError::Config(format!("data_dir: cannot create {}: {e}", dir.display()))
            })?;
        return Ok(missing);
    }
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(data_dir = %dir.display(), "data directory is readable by others; it holds endpoint secrets");
    }
    Ok(Vec::new())
}

/// A socket file's identity: device and inode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct SocketId(u64, u64);

/// How long a daemon on an existing socket gets to accept a test connection.
const SOCKET_PROBE: Duration = Duration::from_secs(2);

/// What is at the socket path.
enum SocketPath {
    /// Nothing.
    Free,
    /// A socket nobody answers on, left by a daemon that did not stop cleanly.
    Stale,
}

/// Checks the socket path without changing anything. Refuses a path that exists and is not a
/// socket (a configuration error: replacing it would destroy someone's file) and a socket a
/// daemon answers on.
async fn check_socket_path(path: &Path) -> Result<SocketPath, DaemonError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SocketPath::Free),
        Err(e) => {
            return Err(DaemonError::Runtime(format!(
                "cannot inspect socket path {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(DaemonError::Config(format!(
            "socket: {} exists and is not a socket; it is left untouched (point --socket at a new path)",
            path.display()
        )));
    }
    let in_use = || {
        DaemonError::Runtime(format!(
            "socket {} is in use by a running daemon",
            path.display()
        ))
    };
    match tokio::time::timeout(SOCKET_PROBE, tokio::net::UnixStream::connect(path)).await {
        // It accepts connections, or would if it were not busy.
        Ok(Ok(_)) | Err(_) => Err(in_use()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(SocketPath::Stale),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(SocketPath::Free),
        Ok(Err(e)) => Err(DaemonError::Runtime(format!(
            "cannot tell whether socket {} is in use: {e}",
            path.display()
        ))),
    }
}

/// Binds the socket, replacing a stale socket but never a live daemon's socket nor anything
/// that is not a socket.
async fn bind_unix(path: &Path) -> Result<OwnSocket, DaemonError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if let SocketPath::Stale = check_socket_path(path).await? {
        std::fs::remove_file(path).map_err(|e| {
            DaemonError::Runtime(format!(
                "cannot remove stale socket {}: {e}",
                path.display()
            ))
        })?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| DaemonError::Runtime(format!("cannot bind socket {}: {e}", path.display())))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        // Just bound: it is ours, but it cannot be told apart from a newer one at stop.
        let _ = std::fs::remove_file(path);
        DaemonError::Runtime(format!("cannot inspect socket {}: {e}", path.display()))
    })?;
    let id = SocketId(meta.dev(), meta.ino());
    // The socket is the admin API: owner only.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(OwnSocket {
        listener: l,
        path: path.to_path_buf(),
        id,
    })
}

/// The Unix listener this process bound, with the identity of its socket file, which it
/// removes when dropped (at stop, or when the start fails).
struct OwnSocket {
    listener: UnixListener,
    path: PathBuf,
    id: SocketId,
}

impl Drop for OwnSocket {
    /// Removes the socket file, but only if it is still the one this process bound: another
    /// daemon may own the path now. The listener is still open here (fields are dropped after
    /// this), which keeps the file's inode in use, so a newer socket at the path cannot carry
    /// the same identity.
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if SocketId(m.dev(), m.ino()) == self.id => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove the socket");
                }
            }
            Ok(_) => {
                tracing::info!(socket = %self.path.display(), "the socket path belongs to another process now; left in place");
            }
            Err(_) => {}
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(OwnSocket),
}

/// Which routes a listener serves.
#[derive(Clone, Copy)]
enum Role {
    /// The producer/admin API.
    Admin,
    /// Only `/webhook/{channel}` (and `/livez`).
    Ingress,
}

/// What a listener serves: the admin API with its state (and which listener it is, for admin
/// access), or the ingress with its own.
#[derive(Clone)]
enum Served {
    Admin(Arc<AppState>, Via),
    Ingress(Arc<IngressState>),
}

async fn accept_loop(l: Listener, served: Served, stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut stopped = stop.clone();
    loop {
        tokio::select! {
            _ = until_stopped(&mut stopped) => break,
            r = accept(&l) => match r {
                Ok(Accepted::Tcp(s)) => {
                    let _ = s.set_nodelay(true);
                    conns.spawn(serve_conn(s, served.clone(), stop.clone()));
                }
                Ok(Accepted::Unix(s)) => {
                    conns.spawn(serve_conn(s, served.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Dropping the Unix listener removes its socket file: new clients find no socket rather
    // than one nobody answers on, and a daemon starting meanwhile finds the path free.
    drop(l);
    let drained = tokio::time::timeout(CONNECTION_DRAIN, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(l: &Listener) -> std::io::Result<Accepted> {
    match l {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
        Listener::Unix(l) => l.listener.accept().await.map(|(s, _)| Accepted::Unix(s)),
    }
}

async fn serve_conn<S>(stream: S, served: Served, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let served = served.clone();
        async move {
            match served {
                Served::Admin(state, via) => api::handle(state, via, req).await,
                Served::Ingress(state) => crate::ingress::handle(state, req)
                    .await
                    .map(|r| r.map(Into::into)),
            }
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = until_stopped(&mut stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let recorder = crate::telemetry::exporter().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    crate::telemetry::describe();
    // Present at 0 from the start (besides those the writer and the scheduler register): the
    // dead-letter reasons Courier itself gives, the accepted ingress requests, the operator
    // queue's drops, what retention removed. Failure codes appear with their first attempt.
    for reason in [
        crate::core::partition::MAX_RETRIES_EXCEEDED,
        crate::store::ENDPOINT_DELETED,
        crate::store::RECORD_CORRUPT,
    ] {
        metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => reason)
            .increment(0);
    }
    metrics::counter!(crate::telemetry::INGRESS_REQUESTS, crate::telemetry::CODE => crate::telemetry::OK).increment(0);
    metrics::counter!(crate::telemetry::OPERATOR_DROPPED).increment(0);
    metrics::counter!(crate::telemetry::RETENTION_REMOVED).increment(0);
    metrics::counter!(crate::telemetry::RETENTION_REMOVED_BYTES).increment(0);
    Some(handle)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
