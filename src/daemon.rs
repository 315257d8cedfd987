//! `courier serve`: opens the journal, starts the writer, the scheduler and the API listeners,
//! and shuts them down in order on SIGTERM/SIGINT.
//!
//! Shutdown order: stop intake (new enqueues get 503 `SHUTTING_DOWN`, listeners stop
//! accepting, open connections finish their request) → the scheduler lets in-flight attempts
//! finish within `shutdown_grace` and journals their results → the writer makes everything
//! durable → exit 0. An attempt cut off by the grace period is simply sent again next start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::delivery::HttpTransport;
use crate::ids::IdGen;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::store::{self, DbHandle, Op, Writer};

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
    // Everything that can fail on configuration is checked before anything is bound.
    let transport = HttpTransport::new(cfg.ca_file.as_deref(), cfg.allow_http)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    create_private_dir(&cfg.data_dir)?;
    let db = DbHandle::open_with_cache(&cfg.data_dir.join(store::DB_FILE), cfg.cache_bytes)
        .map_err(|e| DaemonError::Runtime(format!("cannot open the journal: {e}")))?;
    let metrics = install_metrics();

    let (sched_handle, sched_rx) = Scheduler::channel();
    let notify_handle = sched_handle.clone();
    let endpoints = db
        .endpoints()
        .map_err(|e| DaemonError::Runtime(format!("cannot read endpoints: {e}")))?;
    let backlog: u64 = endpoints.iter().map(|e| e.pending).sum();
    metrics::gauge!("courier_backlog").set(backlog as f64);
    let (writer, writer_thread) =
        Writer::spawn(db.clone(), Box::new(move |n| notify_handle.notify(n)))
            .map_err(|e| DaemonError::Runtime(e.to_string()))?;
    let scheduler = Scheduler::new(
        SchedulerConfig {
            retry_after_cap: cfg.retry_after_max,
        },
        db.clone(),
        writer.clone(),
        Arc::new(transport),
        endpoints,
    );
    let sched_task = tokio::spawn(scheduler.run(sched_rx));

    let state = Arc::new(AppState {
        db: db.clone(),
        writer: writer.clone(),
        sched: sched_handle.clone(),
        ids: IdGen::new(),
        max_body_bytes: cfg.max_body_bytes,
        allow_http: cfg.allow_http,
        stopping: AtomicBool::new(false),
        metrics,
        channels: crate::ingress::Channels::load(
            db.channels()
                .map_err(|e| DaemonError::Runtime(format!("cannot read channels: {e}")))?,
        ),
    });

    let unix = bind_unix(&cfg.socket)?;
    let mut listeners = JoinSet::new();
    listeners.spawn(accept_loop(
        Listener::Unix(unix),
        Role::Admin,
        state.clone(),
        stop.clone(),
    ));
    tracing::info!(socket = %cfg.socket.display(), "API listening on the Unix socket");
    let tcp = [
        (cfg.listen, Role::Admin, "API listening on TCP"),
        (
            cfg.ingress_listen,
            Role::Ingress,
            "inbound webhook ingress listening on TCP",
        ),
    ];
    for (addr, role, what) in tcp {
        let Some(addr) = addr else { continue };
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| DaemonError::Runtime(format!("cannot listen on {addr}: {e}")))?;
        let local = tcp
            .local_addr()
            .map_err(|e| DaemonError::Runtime(e.to_string()))?;
        tracing::info!(addr = %local, "{what}");
        listeners.spawn(accept_loop(
            Listener::Tcp(tcp),
            role,
            state.clone(),
            stop.clone(),
        ));
    }
    tracing::info!(data_dir = %cfg.data_dir.display(), backlog, "courier started");

    until_stopped(&mut stop).await;
    tracing::info!("shutting down: intake stopped");
    state.stopping.store(true, Ordering::SeqCst);
    while listeners.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&cfg.socket);

    sched_handle.shutdown(cfg.shutdown_grace).await;
    let _ = sched_task.await;
    let synced = writer.call(Op::Sync).await;
    drop(state);
    drop(writer);
    drop(sched_handle);
    // The writer thread ends once every handle is gone; it makes pending work durable first.
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    match synced {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Err(e) => Err(DaemonError::Runtime(format!("final commit failed: {e}"))),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                DaemonError::Config(format!("data_dir: cannot create {}: {e}", dir.display()))
            })?;
    } else if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(data_dir = %dir.display(), "data directory is readable by others; it holds endpoint secrets");
    }
    Ok(())
}

/// Binds the socket, replacing a stale file but never a live daemon's socket.
fn bind_unix(path: &Path) -> Result<UnixListener, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Runtime(format!(
                "socket {} is in use by a running daemon",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| {
            DaemonError::Runtime(format!(
                "cannot remove stale socket {}: {e}",
                path.display()
            ))
        })?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| DaemonError::Runtime(format!("cannot bind socket {}: {e}", path.display())))?;
    // The socket is the admin API: owner only.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(l)
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Which routes a listener serves.
#[derive(Clone, Copy)]
enum Role {
    /// The producer/admin API.
    Admin,
    /// Only `/webhook/{channel}` (and `/livez`).
    Ingress,
}

async fn accept_loop(l: Listener, role: Role, state: Arc<AppState>, stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut stopped = stop.clone();
    loop {
        tokio::select! {
            _ = until_stopped(&mut stopped) => break,
            r = accept(&l) => match r {
                Ok(Accepted::Tcp(s)) => {
                    let _ = s.set_nodelay(true);
                    conns.spawn(serve_conn(s, role, state.clone(), stop.clone()));
                }
                Ok(Accepted::Unix(s)) => {
                    conns.spawn(serve_conn(s, role, state.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
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
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
    }
}

async fn serve_conn<S>(stream: S, role: Role, state: Arc<AppState>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move {
            match role {
                Role::Admin => api::handle(state, req).await,
                Role::Ingress => crate::ingress::handle(state, req).await,
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
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    describe_metrics();
    Some(handle)
}

/// Every metric Courier exports, declared in one place.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "courier_events_accepted_total",
        "Events made durable and acknowledged"
    );
    describe_counter!("courier_deliveries_total", "Events delivered (2xx)");
    describe_counter!("courier_attempts_total", "Delivery attempts by result");
    describe_counter!(
        "courier_dead_letters_total",
        "Events dead-lettered by reason"
    );
    describe_counter!(
        "courier_writer_commit_failures_total",
        "Journal commits that failed"
    );
    describe_gauge!(
        "courier_backlog",
        "Events accepted and not yet delivered or dead-lettered"
    );
    describe_gauge!("courier_in_flight", "Delivery attempts in flight");
    describe_histogram!(
        "courier_writer_batch_ops",
        "Operations per journal commit (group commit size)"
    );
    describe_histogram!("courier_writer_commit_seconds", "Journal commit latency");
    describe_histogram!("courier_attempt_seconds", "Delivery attempt latency");
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
