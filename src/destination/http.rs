//! HTTP(S) for destinations: the pooled hyper client with rustls (ring), one exchange under a
//! hard timeout over all of it (connect, TLS, request, response head, capped body), and naming
//! what went wrong. The timeout measures the attempt, not time the process was frozen
//! ([`super::deadline::within_timeout`]). What is sent, and what the answer means, is the
//! destination's business ([`super::webhook`]).

use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::time::Instant;

use crate::core::retry::{FailureKind, parse_retry_after};

/// Most response-body bytes read from a receiver after a delivery (the rest is discarded with
/// the connection); of those, the first [`ANSWER_SNIPPET_MAX`] are kept for the attempt log.
pub const RESPONSE_BODY_CAP: usize = 64 * 1024;

pub use crate::core::model::ANSWER_SNIPPET_MAX;

/// What an HTTP exchange came to, before a destination judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status, when one was received.
    pub status: Option<u16>,
    /// Why the exchange failed (`None` for a 2xx within the timeout).
    pub failure: Option<(FailureKind, String)>,
    /// A 429's `Retry-After`, when it had one.
    pub retry_after: Option<Duration>,
    /// The real time the exchange took, a freeze included.
    pub latency: Duration,
    /// The start of the answer body: at most the bytes the caller asked to keep.
    pub body: Bytes,
    /// The answer body was longer than what was kept.
    pub body_truncated: bool,
    /// The answer's `Content-Type`, when asked for ([`Client::call`]) and readable.
    pub content_type: Option<String>,
}

impl Answer {
    /// An exchange that never started (the request could not be built).
    pub fn unsent(kind: FailureKind, message: String) -> Self {
        Self {
            status: None,
            failure: Some((kind, message)),
            retry_after: None,
            latency: Duration::ZERO,
            body: Bytes::new(),
            body_truncated: false,
            content_type: None,
        }
    }
}

/// What of an answer a caller keeps.
#[derive(Debug, Clone, Copy)]
struct Keep {
    /// Body bytes kept.
    bytes: usize,
    /// Whether the `Content-Type` is kept.
    content_type: bool,
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientInitError {
    #[error("cannot read CA file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("CA file {0} holds no certificate")]
    CaFileEmpty(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// The pooled hyper 1 client over rustls with the ring provider, shared by every destination
/// (cloning it shares the pool).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    /// Trusts the Mozilla web roots plus every certificate in `ca_file`. Plain `http://` is
    /// spoken only when `allow_http` is set.
    pub fn new(ca_file: Option<&Path>, allow_http: bool) -> Result<Self, ClientInitError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let certs = load_pem_certs(path)?;
            for c in certs {
                roots.add(c).map_err(|e| ClientInitError::CaFile {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientInitError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let https = if allow_http {
            builder.https_or_http().enable_http1().wrap_connector(http)
        } else {
            builder.https_only().enable_http1().wrap_connector(http)
        };
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(50))
            // Many endpoints often share one host: keep enough idle connections that they do not
            // churn (64 made 100 endpoints on one host open ~8k connections per 50k deliveries).
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Self { inner })
    }

    /// Sends `request` and reads the answer, all within `timeout` of running time; keeps the
    /// first [`ANSWER_SNIPPET_MAX`] bytes of the answer body (of at most
    /// [`RESPONSE_BODY_CAP`] read).
    pub fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> impl Future<Output = Answer> + Send + 'static {
        let client = self.inner.clone();
        let keep = Keep {
            bytes: ANSWER_SNIPPET_MAX,
            content_type: false,
        };
        async move { send(client, request, timeout, keep).await }
    }

    /// [`Client::send`] for a caller that wants the answer: keeps up to `keep` body bytes
    /// (reading one more to tell whether it was cut) and the answer's `Content-Type`.
    pub fn call(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        keep: usize,
    ) -> impl Future<Output = Answer> + Send + 'static {
        let client = self.inner.clone();
        let keep = Keep {
            bytes: keep,
            content_type: true,
        };
        async move { send(client, request, timeout, keep).await }
    }
}

async fn send(
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Full<Bytes>>,
    timeout: Duration,
    keep: Keep,
) -> Answer {
    {
        let started = Instant::now();
        let exchange = exchange(client, request, keep);
        let r = match super::deadline::within_timeout(timeout, exchange).await {
            Some(r) => r,
            None => Exchanged::failed(
                None,
                (
                    FailureKind::Timeout,
                    format!(
                        "no complete answer within {}",
                        crate::core::duration::format(timeout)
                    ),
                ),
            ),
        };
        Answer {
            status: r.status,
            failure: r.failure,
            retry_after: r.retry_after,
            // The real time the attempt took, a freeze included.
            latency: started.elapsed(),
            body: r.body,
            body_truncated: r.truncated,
            content_type: r.content_type,
        }
    }
}

/// What the exchange came to, before its timing.
struct Exchanged {
    status: Option<u16>,
    failure: Option<(FailureKind, String)>,
    retry_after: Option<Duration>,
    body: Bytes,
    truncated: bool,
    content_type: Option<String>,
}

impl Exchanged {
    fn failed(status: Option<u16>, failure: (FailureKind, String)) -> Self {
        Self {
            status,
            failure: Some(failure),
            retry_after: None,
            body: Bytes::new(),
            truncated: false,
            content_type: None,
        }
    }
}

/// The start of an answer body, as it is read.
#[derive(Default)]
enum Kept {
    #[default]
    Nothing,
    /// One frame, sliced (shares the frame's buffer).
    One(Bytes),
    /// Several frames, copied.
    Copied(bytes::BytesMut),
}

impl Kept {
    fn len(&self) -> usize {
        match self {
            Kept::Nothing => 0,
            Kept::One(b) => b.len(),
            Kept::Copied(b) => b.len(),
        }
    }

    /// Keeps what of `d` fits under `max` bytes in all.
    fn push(&mut self, d: Bytes, max: usize) {
        let room = max.saturating_sub(self.len());
        if room == 0 || d.is_empty() {
            return;
        }
        let d = d.slice(..d.len().min(room));
        *self = match std::mem::take(self) {
            Kept::Nothing => Kept::One(d),
            Kept::One(first) => {
                let mut b = bytes::BytesMut::with_capacity(first.len() + d.len());
                b.extend_from_slice(&first);
                b.extend_from_slice(&d);
                Kept::Copied(b)
            }
            Kept::Copied(mut b) => {
                b.extend_from_slice(&d);
                Kept::Copied(b)
            }
        };
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Kept::Nothing => Bytes::new(),
            Kept::One(b) => b,
            Kept::Copied(b) => b.freeze(),
        }
    }
}

/// The exchange without its deadline: request, response head, capped body (its start kept).
async fn exchange(
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Full<Bytes>>,
    keep: Keep,
) -> Exchanged {
    {
        let resp = match client.request(request).await {
            Ok(r) => r,
            Err(e) => return Exchanged::failed(None, classify(&e)),
        };
        let status = resp.status();
        let retry_after = if status.as_u16() == 429 {
            resp.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        } else {
            None
        };
        let content_type = keep
            .content_type
            .then(|| resp.headers().get(header::CONTENT_TYPE))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Read the body up to the cap (one byte past what is kept, to know whether it was
        // cut), keeping its start and discarding the rest, so the connection can be reused; a
        // body error after a 2xx head still fails the attempt, as the exchange did not complete.
        let cap = RESPONSE_BODY_CAP.max(keep.bytes.saturating_add(1));
        let mut body = resp.into_body();
        let mut read = 0usize;
        // The first data frame is kept as it came (no copy); only a body in several frames is
        // copied, up to what is kept.
        let mut kept = Kept::default();
        while read < cap {
            match body.frame().await {
                None => break,
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        read += d.len();
                        kept.push(d, keep.bytes);
                    }
                }
                Some(Err(e)) => {
                    let mut r = Exchanged::failed(Some(status.as_u16()), classify(&e));
                    r.retry_after = retry_after;
                    return r;
                }
            }
        }
        let truncated = read > keep.bytes;
        let code = status.as_u16();
        let failure = (!status.is_success()).then(|| {
            let reason = status.canonical_reason().unwrap_or("");
            (
                FailureKind::Http(code),
                format!("HTTP {code} {reason}").trim_end().to_string(),
            )
        });
        Exchanged {
            status: Some(code),
            retry_after: if failure.is_some() { retry_after } else { None },
            failure,
            body: kept.into_bytes(),
            truncated,
            content_type,
        }
    }
}

/// Names a client error by walking its source chain.
pub fn classify(err: &(dyn StdError + 'static)) -> (FailureKind, String) {
    let mut msg = err.to_string();
    let mut kind = None;
    let mut src: Option<&(dyn StdError + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = src {
        if depth > 0 {
            let s = e.to_string();
            if !msg.contains(&s) {
                msg.push_str(": ");
                msg.push_str(&s);
            }
        }
        if kind.is_none() {
            kind = kind_of(e);
        }
        src = e.source();
        depth += 1;
        if depth > 16 {
            break;
        }
    }
    let kind = kind.unwrap_or_else(|| {
        if msg.contains("dns error") || msg.contains("failed to lookup address") {
            FailureKind::Dns
        } else if msg.contains("tcp connect error") || msg.contains("client error (Connect)") {
            FailureKind::Connect
        } else {
            FailureKind::Protocol
        }
    });
    (kind, msg)
}

fn kind_of(e: &(dyn StdError + 'static)) -> Option<FailureKind> {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return Some(FailureKind::Tls);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        // io::Error::source() skips its own payload, and connectors nest io::Errors
        // (Other(InvalidData(rustls::Error))): look through the payloads.
        if let Some(inner) = io.get_ref() {
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(
                k @ (FailureKind::Tls
                | FailureKind::ConnectionRefused
                | FailureKind::ConnectionReset
                | FailureKind::Timeout),
            ) = kind_of(inner)
            {
                return Some(k);
            }
        }
        use std::io::ErrorKind as K;
        return match io.kind() {
            K::ConnectionRefused => Some(FailureKind::ConnectionRefused),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                Some(FailureKind::ConnectionReset)
            }
            K::TimedOut => Some(FailureKind::Timeout),
            _ => None,
        };
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return Some(FailureKind::ConnectionReset);
        }
        if h.is_parse() || h.is_parse_status() {
            return Some(FailureKind::Protocol);
        }
    }
    None
}

fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientInitError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| ClientInitError::CaFile {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let mut out = Vec::new();
    for c in iter {
        out.push(c.map_err(|e| ClientInitError::CaFile {
            path: path.display().to_string(),
            why: e.to_string(),
        })?);
    }
    if out.is_empty() {
        return Err(ClientInitError::CaFileEmpty(path.display().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
