//! Fault-injecting webhook receiver for Courier's tests, benchmarks and `examples/receiver.rs`
//! (`use testkit::receiver::…`).
//!
//! ```ignore
//! let ca = TestCa::new();
//! let rx = Receiver::start(
//!     ReceiverConfig::tls(&ca)
//!         .with_secret("s3cret")
//!         .with_plan(Plan::sequence(vec![(2, Behavior::Status(503))], Behavior::Status(200))),
//! )
//! .await?;
//! // point Courier at rx.url("/hook"), trusting ca.ca_pem (ca.write_ca_pem(path))
//! assert!(rx.wait_for(|d| d.iter().any(|d| d.answered == Some(200)), Duration::from_secs(5)).await);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

mod plan;
mod serve;
mod tls;

pub use plan::{Behavior, Delivery, Plan, Rule, sign, verify_signature};
pub use tls::TestCa;

use serve::accept_loop;
use tls::CertKey;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// TLS flavour of the receiver.
#[derive(Clone, Debug)]
pub enum TlsMode {
    /// Presents the CA-signed leaf for `localhost` / 127.0.0.1.
    Trusted(TestCa),
    /// Presents a self-signed `localhost` certificate nobody trusts.
    BadCert,
    /// Presents a leaf signed by the CA but for `wrong-host.invalid` (name mismatch).
    WrongName(TestCa),
}

impl TlsMode {
    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        match self {
            TlsMode::Trusted(ca) => ca.leaf.server_config(),
            TlsMode::BadCert => CertKey::self_signed_localhost().server_config(),
            TlsMode::WrongName(ca) => ca.wrong_name.server_config(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReceiverConfig {
    pub tls: Option<TlsMode>,
    /// When set, `signature_valid` is computed for requests carrying `X-HAPP-Signature`.
    pub secret: Option<String>,
    pub plan: Plan,
}

impl ReceiverConfig {
    /// Plain HTTP, no secret, always 200.
    pub fn plain() -> ReceiverConfig {
        ReceiverConfig::default()
    }

    /// HTTPS with the CA-signed `localhost` leaf, no secret, always 200.
    pub fn tls(ca: &TestCa) -> ReceiverConfig {
        ReceiverConfig {
            tls: Some(TlsMode::Trusted(ca.clone())),
            ..ReceiverConfig::default()
        }
    }

    pub fn with_tls(mut self, mode: TlsMode) -> ReceiverConfig {
        self.tls = Some(mode);
        self
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> ReceiverConfig {
        self.secret = Some(secret.into());
        self
    }

    pub fn with_plan(mut self, plan: impl Into<Plan>) -> ReceiverConfig {
        self.plan = plan.into();
        self
    }
}

/// Called once per delivery when its outcome is known (answered, hung, reset, or abandoned by
/// the client). Runs synchronously on the connection task: keep it short.
pub type DeliveryHook = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Less common knobs, for [`Receiver::start_with`].
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Address to bind; default 127.0.0.1:0.
    pub listen: Option<SocketAddr>,
    /// Serve `POST /_control` (JSON behaviour change), `GET /_deliveries` (JSON record) and
    /// `DELETE /_deliveries` (clear). Those requests are neither recorded nor counted.
    pub control_endpoints: bool,
    pub on_delivery: Option<DeliveryHook>,
}

// ---------------------------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------------------------

struct State {
    plan: Plan,
    global_count: u64,
    path_counts: HashMap<String, u64>,
    next_seq: u64,
    deliveries: Vec<Delivery>,
}

impl State {
    fn next_behavior(&mut self, path: &str) -> Behavior {
        let global_n = self.global_count;
        self.global_count += 1;
        let counter = self.path_counts.entry(path.to_string()).or_insert(0);
        let path_n = *counter;
        *counter += 1;
        let rule = self.plan.rule_for(path);
        rule.pick(if rule.global { global_n } else { path_n })
            .clone()
    }

    fn install(&mut self, plan: Plan) {
        self.plan = plan;
        self.global_count = 0;
        self.path_counts.clear();
    }
}

struct Shared {
    secret: Option<String>,
    control: bool,
    on_delivery: Option<DeliveryHook>,
    state: Mutex<State>,
    connections: AtomicU64,
    open: AtomicU64,
    tls_failures: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running receiver. Dropping it (or [`Receiver::shutdown`]) stops the listener and every
/// connection.
pub struct Receiver {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Binds 127.0.0.1:0 and serves in a background task of the current tokio runtime.
    pub async fn start(cfg: ReceiverConfig) -> io::Result<Receiver> {
        Self::start_with(cfg, ServeOptions::default()).await
    }

    pub async fn start_with(cfg: ReceiverConfig, opts: ServeOptions) -> io::Result<Receiver> {
        let acceptor = match &cfg.tls {
            Some(mode) => Some(TlsAcceptor::from(Arc::new(mode.server_config()?))),
            None => None,
        };
        let listen = opts
            .listen
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret: cfg.secret,
            control: opts.control_endpoints,
            on_delivery: opts.on_delivery,
            state: Mutex::new(State {
                plan: cfg.plan,
                global_count: 0,
                path_counts: HashMap::new(),
                next_seq: 0,
                deliveries: Vec::new(),
            }),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        Ok(Receiver {
            addr,
            tls: cfg.tls.is_some(),
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `https://localhost:PORT/path` with TLS, `http://127.0.0.1:PORT/path` without.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        if self.tls {
            format!("https://localhost:{}{sep}{path}", self.addr.port())
        } else {
            let mut a = self.addr;
            if a.ip().is_unspecified() {
                a.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
            format!("http://{a}{sep}{path}")
        }
    }

    /// Replaces the plan; the per-path and global counters restart from zero.
    pub fn set_plan(&self, plan: impl Into<Plan>) {
        self.shared.lock().install(plan.into());
    }

    pub fn plan(&self) -> Plan {
        self.shared.lock().plan.clone()
    }

    /// Every request received, in arrival order, including failed, hung and reset ones.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Requests answered 2xx.
    pub fn successful(&self) -> Vec<Delivery> {
        self.shared
            .lock()
            .deliveries
            .iter()
            .filter(|d| d.is_success())
            .cloned()
            .collect()
    }

    /// Forgets the recorded deliveries (plan and counters unchanged).
    pub fn clear(&self) {
        self.shared.lock().deliveries.clear();
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Connections currently open on the server side (TLS handshake included). Drops to 0 once
    /// the client closed its connections (a hung request ends when its client goes away).
    pub fn open_connections(&self) -> u64 {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed (or timed out after 10 s).
    pub fn tls_failures(&self) -> u64 {
        self.shared.tls_failures.load(Ordering::Relaxed)
    }

    /// Polls `pred` over (a snapshot of) the deliveries every 10 ms until it holds (true) or
    /// `timeout` passes (false).
    pub async fn wait_for(&self, pred: impl Fn(&[Delivery]) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Snapshot first: `pred` may itself call methods of this receiver.
            let snapshot = self.deliveries();
            if pred(&snapshot) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops accepting and aborts every connection (same as dropping).
    pub fn shutdown(self) {}

    /// Like `shutdown`, but returns once the listening socket is closed, so the port can be
    /// bound again (e.g. to bring an endpoint "back up" with `ServeOptions::listen`).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
