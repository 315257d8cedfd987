//! One delivery attempt over HTTP(S): building the signed request, the pooled hyper client with
//! rustls (ring), the hard timeout over the whole exchange, and naming what went wrong.
//! The timeout measures the attempt, not time the process was frozen
//! ([`crate::deadline::within_timeout`]).

use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::time::Instant;

use crate::core::retry::{FailureKind, parse_retry_after};

/// Most response-body bytes read from a receiver (the rest is discarded with the connection).
pub const RESPONSE_BODY_CAP: usize = 64 * 1024;

/// Everything one attempt sends.
#[derive(Debug, Clone)]
pub struct AttemptRequest {
    pub url: Uri,
    pub body: Bytes,
    pub content_type: String,
    pub event_id: String,
    pub event_type: Option<String>,
    pub attempt: u32,
    /// `sha256=<hex>` when the endpoint has a secret.
    pub signature: Option<String>,
    /// `Bearer <password>` when the endpoint has a password.
    pub authorization: Option<HeaderValue>,
    pub timeout: Duration,
}

/// What an attempt came to. Data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The HTTP status, when one was received.
    pub status: Option<u16>,
    /// Why the attempt failed (`None` for a 2xx within the timeout).
    pub failure: Option<(FailureKind, String)>,
    /// A 429's `Retry-After`, when it had one.
    pub retry_after: Option<Duration>,
    pub latency: Duration,
}

impl AttemptOutcome {
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }
}

/// Performs attempts. The scheduler holds one; tests substitute scripted ones.
pub trait Transport: Send + Sync + 'static {
    fn attempt(&self, req: AttemptRequest) -> Pin<Box<dyn Future<Output = AttemptOutcome> + Send>>;
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

/// The real transport: a pooled hyper 1 client over rustls with the ring provider.
pub struct HttpTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpTransport {
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
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(50))
            // Many endpoints often share one host: keep enough idle connections that they do not
            // churn (64 made 100 endpoints on one host open ~8k connections per 50k deliveries).
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Self { client })
    }

    async fn send(&self, req: AttemptRequest) -> AttemptOutcome {
        let started = Instant::now();
        let timeout = req.timeout;
        let exchange = self.exchange(req);
        let (status, failure, retry_after) =
            match crate::deadline::within_timeout(timeout, exchange).await {
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
        AttemptOutcome {
            status,
            failure,
            retry_after,
            // The real time the attempt took, a freeze included.
            latency: started.elapsed(),
        }
    }

    /// The exchange without its deadline: request, response head, capped body.
    async fn exchange(&self, req: AttemptRequest) -> ExchangeResult {
        let request = match build_request(&req) {
            Ok(r) => r,
            Err(msg) => return (None, Some((FailureKind::Protocol, msg)), None),
        };
        let resp = match self.client.request(request).await {
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

impl Transport for HttpTransport {
    fn attempt(&self, req: AttemptRequest) -> Pin<Box<dyn Future<Output = AttemptOutcome> + Send>> {
        let this = HttpTransport {
            client: self.client.clone(),
        };
        Box::pin(async move { this.send(req).await })
    }
}

/// The POST with Courier's headers.
pub fn build_request(req: &AttemptRequest) -> Result<Request<Full<Bytes>>, String> {
    let mut b = Request::post(req.url.clone())
        .header(header::CONTENT_TYPE, req.content_type.as_str())
        .header(
            header::USER_AGENT,
            concat!("courier/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-happ-event-id", req.event_id.as_str())
        .header("x-happ-attempt", req.attempt.to_string());
    if let Some(t) = &req.event_type {
        b = b.header("x-happ-event", t.as_str());
    }
    if let Some(sig) = &req.signature {
        b = b.header(crate::core::signing::SIGNATURE_HEADER, sig.as_str());
    }
    if let Some(auth) = &req.authorization {
        b = b.header(header::AUTHORIZATION, auth.clone());
    }
    b.body(Full::new(req.body.clone()))
        .map_err(|e| format!("cannot build request: {e}"))
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
mod tests {
    use super::*;

    fn req(url: &str) -> AttemptRequest {
        AttemptRequest {
            url: url.parse().unwrap(),
            body: Bytes::from_static(b"{}"),
            content_type: "application/json".into(),
            event_id: "evt_X".into(),
            event_type: Some("call.completed".into()),
            attempt: 2,
            signature: Some(crate::core::signing::sign(b"k", b"{}")),
            authorization: Some(HeaderValue::from_static("Bearer pw")),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn request_carries_contract_headers() {
        let r = build_request(&req("https://example.com/hook")).unwrap();
        let h = r.headers();
        assert_eq!(h["x-happ-event-id"], "evt_X");
        assert_eq!(h["x-happ-attempt"], "2");
        assert_eq!(h["x-happ-event"], "call.completed");
        assert_eq!(h["authorization"], "Bearer pw");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(
            h["x-happ-signature"],
            crate::core::signing::sign(b"k", b"{}").as_str()
        );
    }

    #[test]
    fn classifies_io_errors() {
        use std::io::{Error, ErrorKind};
        let cases = [
            (ErrorKind::ConnectionRefused, FailureKind::ConnectionRefused),
            (ErrorKind::ConnectionReset, FailureKind::ConnectionReset),
            (ErrorKind::UnexpectedEof, FailureKind::ConnectionReset),
            (ErrorKind::TimedOut, FailureKind::Timeout),
        ];
        for (k, want) in cases {
            let e = Error::new(k, "boom");
            assert_eq!(classify(&e).0, want, "{k:?}");
        }
        let tls = Error::new(
            ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify(&tls).0, FailureKind::Tls);
        // As hyper-rustls reports it: an io::Error inside an io::Error.
        let nested = Error::other(Error::new(
            ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        ));
        assert_eq!(classify(&nested).0, FailureKind::Tls);
        let nested_refused = Error::other(Error::new(ErrorKind::ConnectionRefused, "x"));
        assert_eq!(classify(&nested_refused).0, FailureKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn refused_connection_is_econnrefused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = HttpTransport::new(None, true).unwrap();
        let out = t.attempt(req(&format!("http://127.0.0.1:{port}/x"))).await;
        assert_eq!(out.status, None);
        assert_eq!(out.failure.unwrap().0, FailureKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn http_is_refused_without_allow_http() {
        let t = HttpTransport::new(None, false).unwrap();
        let out = t.attempt(req("http://127.0.0.1:9/x")).await;
        assert!(out.failure.is_some());
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let e = HttpTransport::new(Some(Path::new("/nonexistent/ca.pem")), false)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
