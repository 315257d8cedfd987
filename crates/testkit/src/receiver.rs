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
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::crypto::ring as ring_provider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// A certificate chain plus its PKCS#8 private key.
#[derive(Clone)]
struct CertKey {
    cert_pem: String,
    key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl CertKey {
    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            ring_provider::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key_der())
        .map_err(io::Error::other)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Self-signed leaf (not trusted by anybody) for `localhost` and 127.0.0.1.
    fn self_signed_localhost() -> CertKey {
        let mut params = leaf_params(&["localhost", "127.0.0.1"]);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Untrusted self-signed");
        let key = rcgen::KeyPair::generate().expect("generate key");
        let cert = params.self_signed(&key).expect("self-sign leaf");
        CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    }
}

fn leaf_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone()).expect("leaf params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A throwaway certificate authority, generated in memory, with a leaf for
/// `localhost` + `127.0.0.1` and a leaf for a wrong host name, both signed by it.
#[derive(Clone)]
pub struct TestCa {
    /// The CA certificate, PEM (what `courier serve --ca-file` wants).
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
    leaf: CertKey,
    wrong_name: CertKey,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Generates a fresh CA and its leaves. Panics if generation fails (test setup).
    pub fn new() -> TestCa {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Courier Test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().expect("generate CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let sign = |names: &[&str]| -> CertKey {
            let key = rcgen::KeyPair::generate().expect("generate leaf key");
            let cert = leaf_params(names)
                .signed_by(&key, &issuer)
                .expect("sign leaf");
            CertKey {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                chain: vec![cert.der().clone()],
                key_pkcs8: key.serialize_der(),
            }
        };
        let leaf = sign(&["localhost", "127.0.0.1"]);
        let wrong_name = sign(&["wrong-host.invalid"]);
        TestCa {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf,
            wrong_name,
        }
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.ca_pem.as_bytes())
    }

    /// PEM of the `localhost`/`127.0.0.1` leaf certificate signed by this CA.
    pub fn leaf_cert_pem(&self) -> &str {
        &self.leaf.cert_pem
    }

    /// PEM (PKCS#8) of the leaf's private key.
    pub fn leaf_key_pem(&self) -> &str {
        &self.leaf.key_pem
    }

    /// Writes the good leaf certificate and key (PEM) to the given paths.
    pub fn write_leaf_pem(&self, cert_path: &Path, key_path: &Path) -> io::Result<()> {
        std::fs::write(cert_path, self.leaf.cert_pem.as_bytes())?;
        std::fs::write(key_path, self.leaf.key_pem.as_bytes())
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("add test CA to root store");
        roots
    }

    /// A rustls client config (ring provider) trusting only this CA, ALPN http/1.1.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            ring_provider::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(self.root_store())
        .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        cfg
    }

    /// A rustls server config (ring provider) presenting the good leaf.
    pub fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        self.leaf.server_config()
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviour and plan
// ---------------------------------------------------------------------------------------------

/// What the receiver does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Answer this status with an empty body.
    Status(u16),
    /// Answer `status` with `Retry-After: secs`.
    RetryAfter { status: u16, secs: u64 },
    /// Sleep `ms` milliseconds, then answer `then`.
    Sleep { ms: u64, then: u16 },
    /// Read the request, never answer (until the client closes the connection).
    Hang,
    /// Close the TCP connection abruptly (SO_LINGER 0, so an RST) without answering.
    Reset,
    /// Answer `status` with a streamed body of `bytes` bytes (Content-Length set).
    HugeBody { status: u16, bytes: usize },
}

impl Behavior {
    /// Parses the control JSON: `{"behavior":"status","status":503}`,
    /// `{"behavior":"retry_after","status":429,"secs":2}`, `{"behavior":"sleep","ms":6000,"then":200}`,
    /// `{"behavior":"hang"}`, `{"behavior":"reset"}`, `{"behavior":"huge_body","status":200,"bytes":10000000}`.
    pub fn from_json(v: &serde_json::Value) -> Result<Behavior, String> {
        let kind = v
            .get("behavior")
            .and_then(|b| b.as_str())
            .ok_or_else(|| "missing string field \"behavior\"".to_string())?;
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match v.get(name) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(x) => x
                    .as_u64()
                    .ok_or_else(|| format!("field {name:?} must be a non-negative integer")),
            }
        };
        let status = |name: &str, default: u64| -> Result<u16, String> {
            let s = num(name, default)?;
            if (100..=999).contains(&s) {
                Ok(s as u16)
            } else {
                Err(format!("field {name:?} must be an HTTP status (100..=999)"))
            }
        };
        Ok(match kind {
            "status" => Behavior::Status(status("status", 200)?),
            "retry_after" => Behavior::RetryAfter {
                status: status("status", 429)?,
                secs: num("secs", 1)?,
            },
            "sleep" => Behavior::Sleep {
                ms: num("ms", 1000)?,
                then: status("then", 200)?,
            },
            "hang" => Behavior::Hang,
            "reset" => Behavior::Reset,
            "huge_body" => Behavior::HugeBody {
                status: status("status", 200)?,
                bytes: usize::try_from(num("bytes", 10_000_000)?).map_err(|e| e.to_string())?,
            },
            other => return Err(format!("unknown behavior {other:?}")),
        })
    }
}

/// A schedule: the first `n1` matching requests get `b1`, the next `n2` get `b2`, ..., then `then`.
/// Requests are counted per path (default) or over all paths ([`Rule::counted_globally`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub steps: Vec<(u64, Behavior)>,
    pub then: Behavior,
    pub global: bool,
}

impl Rule {
    pub fn always(b: Behavior) -> Rule {
        Rule {
            steps: Vec::new(),
            then: b,
            global: false,
        }
    }

    pub fn sequence(steps: Vec<(u64, Behavior)>, then: Behavior) -> Rule {
        Rule {
            steps,
            then,
            global: false,
        }
    }

    /// Count requests over all paths instead of per path.
    pub fn counted_globally(mut self) -> Rule {
        self.global = true;
        self
    }

    /// The behaviour for the `n`-th (0-based) counted request.
    pub fn pick(&self, mut n: u64) -> &Behavior {
        for (count, b) in &self.steps {
            if n < *count {
                return b;
            }
            n -= count;
        }
        &self.then
    }
}

impl From<Behavior> for Rule {
    fn from(b: Behavior) -> Rule {
        Rule::always(b)
    }
}

/// Maps a delivery to a behaviour: a default rule plus per-path overrides (exact path match,
/// query string ignored). Counters restart whenever a plan is installed ([`Receiver::set_plan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub default: Rule,
    pub paths: HashMap<String, Rule>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::always(Behavior::Status(200))
    }
}

impl From<Behavior> for Plan {
    fn from(b: Behavior) -> Plan {
        Plan::always(b)
    }
}

impl Plan {
    /// Every request gets `b`.
    pub fn always(b: Behavior) -> Plan {
        Plan {
            default: Rule::always(b),
            paths: HashMap::new(),
        }
    }

    /// `Plan::sequence(vec![(2, Status(503))], Status(200))`: the first 2 requests of each path
    /// get 503, later ones 200. Use [`Plan::global`] to count over all paths.
    pub fn sequence(steps: Vec<(u64, Behavior)>, then: Behavior) -> Plan {
        Plan {
            default: Rule::sequence(steps, then),
            paths: HashMap::new(),
        }
    }

    /// Like [`Plan::sequence`] but counted over all paths together.
    pub fn sequence_global(steps: Vec<(u64, Behavior)>, then: Behavior) -> Plan {
        Plan {
            default: Rule::sequence(steps, then).counted_globally(),
            paths: HashMap::new(),
        }
    }

    /// Makes the default rule count over all paths.
    pub fn global(mut self) -> Plan {
        self.default.global = true;
        self
    }

    /// Per-path override: `plan.with_path("/down", Behavior::Status(503))` or
    /// `plan.with_path("/flaky", Rule::sequence(vec![(1, Behavior::Reset)], Behavior::Status(200)))`.
    pub fn with_path(mut self, path: &str, rule: impl Into<Rule>) -> Plan {
        self.paths.insert(path.to_string(), rule.into());
        self
    }

    /// The rule that applies to `path`.
    pub fn rule_for(&self, path: &str) -> &Rule {
        self.paths.get(path).unwrap_or(&self.default)
    }
}

// ---------------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------------

/// One request the receiver got (control endpoints excluded).
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Arrival number since start (0-based, never reused, survives [`Receiver::clear`]).
    pub seq: u64,
    /// Connection number since start (requests on one keep-alive connection share it).
    pub conn: u64,
    pub method: String,
    /// URI path without the query string.
    pub path: String,
    pub query: Option<String>,
    pub event_id: Option<String>,
    pub attempt: Option<u32>,
    pub event_type: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub signature: Option<String>,
    /// `None` when no secret is configured or no `X-HAPP-Signature` header was sent.
    pub signature_valid: Option<bool>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the full request (headers and body) had been read.
    pub at: Instant,
    /// Same moment, unix milliseconds.
    pub at_unix_ms: u64,
    /// The behaviour chosen for this request.
    pub behavior: Behavior,
    /// Status answered; `None` for Hang/Reset, while a Sleep is pending, or when the client
    /// went away before the answer.
    pub answered: Option<u16>,
}

impl Delivery {
    pub fn is_success(&self) -> bool {
        matches!(self.answered, Some(s) if (200..300).contains(&s))
    }

    /// JSON view used by `GET /_deliveries` (body as lossy UTF-8).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "conn": self.conn,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "event_type": self.event_type,
            "content_type": self.content_type,
            "authorization": self.authorization,
            "signature": self.signature,
            "signature_valid": self.signature_valid,
            "at_ms": self.at_unix_ms,
            "behavior": format!("{:?}", self.behavior),
            "status": self.answered,
            "body_len": self.body.len(),
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

/// `"sha256=<lowercase hex HMAC-SHA256(secret, body)>"`, as Courier sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + tag.len() * 2);
    out.push_str("sha256=");
    for b in tag {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Strict check of an `X-HAPP-Signature` value: `sha256=` + 64 lowercase hex digits, compared in
/// constant time (`Mac::verify_slice`).
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(raw) = decode_lower_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&raw).is_ok()
}

fn decode_lower_hex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| Some((nib(p[0])? << 4) | nib(p[1])?))
        .collect()
}

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

// ---------------------------------------------------------------------------------------------
// Server internals
// ---------------------------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    // Owned here: aborting this task drops the set, which aborts every connection task.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let conn_id = shared.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let acceptor = acceptor.clone();
                    let open = OpenGuard::new(shared.clone());
                    conns.spawn(async move {
                        let _open = open;
                        match acceptor {
                            None => serve_conn(stream, shared, conn_id).await,
                            Some(acceptor) => {
                                let hs = tokio::time::timeout(
                                    Duration::from_secs(10),
                                    acceptor.accept(stream),
                                )
                                .await;
                                match hs {
                                    Ok(Ok(tls)) => serve_conn(tls, shared, conn_id).await,
                                    _ => {
                                        shared.tls_failures.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                        }
                    });
                }
                // e.g. EMFILE: back off a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Counts an open connection until dropped (also when its task is aborted).
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> OpenGuard {
        shared.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Gives access to the TCP socket under a (possibly TLS) stream, to set SO_LINGER 0.
trait TcpSocket {
    fn tcp(&self) -> &TcpStream;
}

impl TcpSocket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl TcpSocket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

async fn serve_conn<S>(stream: S, shared: Arc<Shared>, conn_id: u64)
where
    S: AsyncRead + AsyncWrite + TcpSocket + Unpin + Send + 'static,
{
    let reset = Arc::new(Notify::new());
    let svc = {
        let reset = reset.clone();
        service_fn(move |req| handle(shared.clone(), conn_id, reset.clone(), req))
    };
    let mut conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        // Errors (client went away, malformed request) only end this connection.
        _ = &mut conn => {}
        () = reset.notified() => {
            let parts = conn.into_parts();
            let _ = parts.io.inner().tcp().set_zero_linger();
            drop(parts); // close with SO_LINGER 0: RST, no answer
        }
    }
}

type RespBody = BoxBody<Bytes, Infallible>;

fn empty(status: StatusCode) -> Response<RespBody> {
    let mut r = Response::new(Empty::<Bytes>::new().boxed());
    *r.status_mut() = status;
    r
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<RespBody> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn status_code(s: u16) -> StatusCode {
    StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Marks the delivery `seq` with its outcome and fires the hook, exactly once (also when the
/// connection is dropped while the request is pending).
struct Outcome {
    shared: Arc<Shared>,
    seq: u64,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, answered: Option<u16>) {
        if self.done {
            return;
        }
        self.done = true;
        let snapshot = {
            let mut st = self.shared.lock();
            let d = st.deliveries.iter_mut().rev().find(|d| d.seq == self.seq);
            match d {
                Some(d) => {
                    d.answered = answered;
                    Some(d.clone())
                }
                None => None,
            }
        };
        if let (Some(hook), Some(d)) = (&self.shared.on_delivery, snapshot) {
            hook(&d);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.finish(None);
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn handle(
    shared: Arc<Shared>,
    conn_id: u64,
    reset: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Ok(empty(StatusCode::BAD_REQUEST)),
    };
    let path = parts.uri.path().to_string();

    if shared.control && (path == "/_control" || path == "/_deliveries") {
        return Ok(control(&shared, &parts.method, &path, &body));
    }

    let now = Instant::now();
    let at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let h = &parts.headers;
    let signature = header(h, "x-happ-signature");
    let signature_valid = match (&shared.secret, &signature) {
        (Some(secret), Some(sig)) => Some(verify_signature(secret, &body, sig)),
        _ => None,
    };

    let (behavior, seq) = {
        let mut st = shared.lock();
        let behavior = st.next_behavior(&path);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.deliveries.push(Delivery {
            seq,
            conn: conn_id,
            method: parts.method.to_string(),
            path,
            query: parts.uri.query().map(str::to_owned),
            event_id: header(h, "x-happ-event-id"),
            attempt: header(h, "x-happ-attempt").and_then(|a| a.trim().parse().ok()),
            event_type: header(h, "x-happ-event"),
            content_type: header(h, "content-type"),
            authorization: header(h, "authorization"),
            signature,
            signature_valid,
            headers: parts.headers.clone(),
            body,
            at: now,
            at_unix_ms,
            behavior: behavior.clone(),
            answered: None,
        });
        (behavior, seq)
    };
    let mut outcome = Outcome {
        shared: shared.clone(),
        seq,
        done: false,
    };

    let response = match behavior {
        Behavior::Status(s) => empty(status_code(s)),
        Behavior::RetryAfter { status, secs } => {
            let mut r = empty(status_code(status));
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        Behavior::Sleep { ms, then } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            empty(status_code(then))
        }
        Behavior::Hang => {
            outcome.finish(None);
            std::future::pending().await
        }
        Behavior::Reset => {
            outcome.finish(None);
            reset.notify_one();
            std::future::pending().await
        }
        Behavior::HugeBody { status, bytes } => {
            let mut r = Response::new(RepeatBody::new(bytes).boxed());
            *r.status_mut() = status_code(status);
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
    };
    outcome.finish(Some(response.status().as_u16()));
    Ok(response)
}

fn control(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Response<RespBody> {
    let bad = |msg: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": msg }),
        )
    };
    match (method, path) {
        (&Method::GET, "/_deliveries") => {
            let list: Vec<serde_json::Value> = shared
                .lock()
                .deliveries
                .iter()
                .map(Delivery::to_json)
                .collect();
            json_response(StatusCode::OK, &serde_json::Value::Array(list))
        }
        (&Method::DELETE, "/_deliveries") => {
            shared.lock().deliveries.clear();
            json_response(StatusCode::OK, &serde_json::json!({ "ok": true }))
        }
        (&Method::POST, "/_control") => {
            let v: serde_json::Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad(format!("invalid JSON: {e}")),
            };
            let clear_paths = v.get("clear_paths").and_then(|c| c.as_bool()) == Some(true);
            let behavior = if v.get("behavior").is_some() {
                match Behavior::from_json(&v) {
                    Ok(b) => Some(b),
                    Err(e) => return bad(e),
                }
            } else if clear_paths {
                None
            } else {
                return bad("missing \"behavior\" (or \"clear_paths\": true)".to_string());
            };
            let count = match v.get("count") {
                None | Some(serde_json::Value::Null) => None,
                Some(c) => match c.as_u64() {
                    Some(c) => Some(c),
                    None => return bad("\"count\" must be a non-negative integer".to_string()),
                },
            };
            let path = v.get("path").and_then(|p| p.as_str()).map(str::to_owned);
            let mut st = shared.lock();
            let mut plan = st.plan.clone();
            if clear_paths {
                plan.paths.clear();
            }
            if let Some(b) = behavior {
                // With "count": the next `count` requests get `b`, then back to what the rule
                // ended with before.
                let previous_then = match &path {
                    Some(p) => plan.rule_for(p).then.clone(),
                    None => plan.default.then.clone(),
                };
                let rule = match count {
                    Some(n) => Rule::sequence(vec![(n, b)], previous_then),
                    None => Rule::always(b),
                };
                match path {
                    Some(p) => {
                        plan.paths.insert(p, rule);
                    }
                    None => plan.default = rule,
                }
            }
            st.install(plan);
            let plan_text = format!("{:?}", st.plan);
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "ok": true, "plan": plan_text }),
            )
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "control endpoints: POST /_control, GET|DELETE /_deliveries" }),
        ),
    }
}

/// A body of `remaining` bytes of `x`, produced in 64 KiB frames.
struct RepeatBody {
    remaining: usize,
    chunk: Bytes,
}

impl RepeatBody {
    fn new(len: usize) -> RepeatBody {
        RepeatBody {
            remaining: len,
            chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        }
    }
}

impl hyper::body::Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len());
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining as u64)
    }
}
