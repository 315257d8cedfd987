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

/// Most response-body bytes read from a receiver (the rest is discarded with the connection).
pub const RESPONSE_BODY_CAP: usize = 64 * 1024;

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
}

impl Answer {
    /// An exchange that never started (the request could not be built).
    pub fn unsent(kind: FailureKind, message: String) -> Self {
        Self {
            status: None,
            failure: Some((kind, message)),
            retry_after: None,
            latency: Duration::ZERO,
        }
    }
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

    /// Sends `request` and reads the answer, all within `timeout` of running time.
    pub fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> impl Future<Output = Answer> + Send + 'static {
        let client = self.inner.clone();
        async move { send(client, request, timeout).await }
    }
}

async fn send(
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Answer {
    {
        let started = Instant::now();
        let exchange = exchange(client, request);
        let (status, failure, retry_after) =
            match super::deadline::within_timeout(timeout, exchange).await {
                Some(r) => r,
                None => (
                    None,
                    Some((
                        FailureKind::Timeout,
                        format!(
                            "no complete answer within {}",
                            crate::core::duration::format(timeout)
                        ),
                    )),
                    None,
                ),
            };
        Answer {
            status,
            failure,
            retry_after,
            // The real time the attempt took, a freeze included.
            latency: started.elapsed(),
        }
    }
}

/// The exchange without its deadline: request, response head, capped body.
async fn exchange(
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> ExchangeResult {
    {
        let resp = match client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                let (kind, msg) = classify(&e);
                return (None, Some((kind, msg)), None);
            }
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
        // Read (and discard) the body up to the cap, so the connection can be reused; a body
        // error after a 2xx head still fails the attempt, as the exchange did not complete.
        let mut body = resp.into_body();
        let mut read = 0usize;
        while read < RESPONSE_BODY_CAP {
            match body.frame().await {
                None => break,
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        read += d.len();
                    }
                }
                Some(Err(e)) => {
                    let (kind, msg) = classify(&e);
                    return (Some(status.as_u16()), Some((kind, msg)), retry_after);
                }
            }
        }
        let code = status.as_u16();
        if status.is_success() {
            (Some(code), None, None)
        } else {
            let reason = status.canonical_reason().unwrap_or("");
            (
                Some(code),
                Some((
                    FailureKind::Http(code),
                    format!("HTTP {code} {reason}").trim_end().to_string(),
                )),
                retry_after,
            )
        }
    }
}

type ExchangeResult = (Option<u16>, Option<(FailureKind, String)>, Option<Duration>);

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
