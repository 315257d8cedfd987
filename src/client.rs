//! A typed async client of the admin API (v1), used by the CLI, the tests and the benchmarks:
//! HTTP/1.1 over the Unix socket, TCP (with the admin bearer token, when given) or an
//! in-process connection ([`Local`]: offline inspection) on one keep-alive connection, a raw
//! call, typed methods
//! per route ([`routes`]) returning the shapes of [`crate::views`], and errors that keep apart
//! "could not connect" (nothing happened), "the exchange broke off" (outcome unknown) and "the
//! daemon answered non-2xx" (with its parsed [`ErrorBody`]).

pub mod paths;
pub mod routes;

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::core::secret::Secret;
use crate::views::{ErrorBody, ErrorDetail};

pub use routes::{EventOptions, Saved};

/// Where the daemon's API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The Unix socket (no token needed).
    Unix(PathBuf),
    /// TCP `host:port`.
    Tcp(String),
    /// An API served in this process (offline inspection of a data dir).
    Local(Local),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp://{a}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Local(l) => write!(f, "offline:{}", l.label),
        }
    }
}

/// Opens in-process connections: each call answers one end of a fresh in-memory stream
/// whose other end is being served.
type Connect = dyn Fn() -> std::io::Result<tokio::io::DuplexStream> + Send + Sync;

/// An API served in this process, and what to call it in messages (e.g. the data dir).
#[derive(Clone)]
pub struct Local {
    connect: Arc<Connect>,
    label: String,
}

impl Local {
    pub fn new(
        label: impl Into<String>,
        connect: impl Fn() -> std::io::Result<tokio::io::DuplexStream> + Send + Sync + 'static,
    ) -> Local {
        Local {
            connect: Arc::new(connect),
            label: label.into(),
        }
    }
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Local({:?})", self.label)
    }
}

impl PartialEq for Local {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.connect, &other.connect)
    }
}

impl Eq for Local {}

/// A whole answer: status, headers and body bytes.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why an exchange did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection could not be opened: the request was not sent.
    Unreachable(String),
    /// Connected, but the exchange broke off: the request may or may not have taken effect.
    Lost(String),
    /// No whole answer within the client's timeout: outcome unknown too.
    TimedOut(Duration),
    /// The request could not be built (bad method, path or header); nothing was sent.
    BadRequest(String),
}

/// A failed exchange, with the request it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub method: Method,
    pub path: String,
    pub kind: TransportKind,
}

impl TransportError {
    /// Whether the request may have reached the daemon (and taken effect).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self.kind,
            TransportKind::Lost(_) | TransportKind::TimedOut(_)
        )
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TransportKind::Unreachable(e) => write!(f, "cannot connect: {e}"),
            TransportKind::Lost(e) => write!(f, "{} {}: {e}", self.method, self.path),
            TransportKind::TimedOut(d) => write!(
                f,
                "{} {}: no answer within {}s",
                self.method,
                self.path,
                d.as_secs()
            ),
            TransportKind::BadRequest(e) => {
                write!(f, "cannot build request for {}: {e}", self.path)
            }
        }
    }
}

impl StdError for TransportError {}

/// A non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The contract's error shape, when the body has it.
    pub error: Option<ErrorDetail>,
    pub body: Bytes,
}

impl ApiError {
    /// From a non-2xx status and its body.
    pub fn new(status: StatusCode, body: Bytes) -> ApiError {
        let error = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        ApiError {
            status,
            error,
            body,
        }
    }

    /// The stable error code, when the body has one.
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.code.as_str())
    }
}

/// A failed typed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No answer (see [`TransportError::outcome_unknown`]).
    Transport(TransportError),
    /// The daemon answered non-2xx.
    Api(ApiError),
    /// A 2xx answer that is not the shape the contract promises.
    BadAnswer {
        status: StatusCode,
        error: String,
        body: Bytes,
    },
    /// A caller-given value cannot be sent (e.g. a header value with a line break).
    Invalid(String),
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => e.fmt(f),
            Error::Api(e) => match &e.error {
                Some(d) => write!(f, "HTTP {}: {}: {}", e.status, d.code, d.message),
                None => write!(f, "HTTP {}: {}", e.status, String::from_utf8_lossy(&e.body)),
            },
            Error::BadAnswer { status, error, .. } => {
                write!(f, "unexpected answer to HTTP {status}: {error}")
            }
            Error::Invalid(e) => f.write_str(e),
        }
    }
}

impl StdError for Error {}

/// One keep-alive connection to the daemon, opened on first use and again after it closed.
pub struct Client {
    target: Target,
    conn: Option<SendRequest<Full<Bytes>>>,
    timeout: Option<Duration>,
    /// `Authorization: Bearer <token>` sent with every request (marked sensitive).
    auth: Option<HeaderValue>,
}

const LOCALHOST: HeaderValue = HeaderValue::from_static("localhost");

impl Client {
    pub fn new(target: Target) -> Client {
        Client {
            target,
            conn: None,
            timeout: None,
            auth: None,
        }
    }

    /// A client of the Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Client {
        Client::new(Target::Unix(path.into()))
    }

    /// A client of the TCP API at `host:port`.
    pub fn tcp(addr: impl Into<String>) -> Client {
        Client::new(Target::Tcp(addr.into()))
    }

    /// Bounds each exchange (after connecting): sending, waiting and reading the answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request (the TCP admin API's admin
    /// token). A token that cannot be a header value is refused, without showing it.
    pub fn with_token(mut self, token: &Secret) -> Result<Client, Error> {
        let mut v = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| Error::Invalid("the admin token is not a valid header value".into()))?;
        v.set_sensitive(true);
        self.auth = Some(v);
        Ok(self)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether a connection is open (it may still be closed by the daemon at any time).
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// Drops the connection; the next call opens a new one.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Opens the connection unless one is open.
    pub async fn connect(&mut self) -> Result<(), TransportError> {
        self.open(&Method::GET, "").await.map(drop)
    }

    async fn open(
        &mut self,
        method: &Method,
        path: &str,
    ) -> Result<&mut SendRequest<Full<Bytes>>, TransportError> {
        let fail = |kind| TransportError {
            method: method.clone(),
            path: path.to_owned(),
            kind,
        };
        if !self.is_connected() {
            self.conn = None;
            let unreachable = |e: std::io::Error| fail(TransportKind::Unreachable(e.to_string()));
            let sender = match &self.target {
                Target::Unix(p) => {
                    let s = tokio::net::UnixStream::connect(p)
                        .await
                        .map_err(unreachable)?;
                    handshake(s).await
                }
                Target::Tcp(a) => {
                    let s = tokio::net::TcpStream::connect(a.as_str())
                        .await
                        .map_err(unreachable)?;
                    s.set_nodelay(true).map_err(unreachable)?;
                    handshake(s).await
                }
                Target::Local(l) => handshake((l.connect)().map_err(unreachable)?).await,
            };
            self.conn = Some(sender.map_err(|e| fail(TransportKind::Lost(error_chain(&e))))?);
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(fail(TransportKind::Lost("connection closed".into()))),
        }
    }

    /// Sends one request and reads the whole answer, whatever its status.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<RawAnswer, TransportError> {
        let fail = |kind| TransportError {
            method: method.clone(),
            path: path.to_owned(),
            kind,
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, LOCALHOST);
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        for (name, value) in headers {
            builder = builder.header(name, value.clone());
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| fail(TransportKind::BadRequest(e.to_string())))?;
        let timeout = self.timeout;
        let conn = self.open(&method, path).await?;
        let exchange = async {
            conn.ready().await?;
            let response = conn.send_request(req).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(RawAnswer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let result = match timeout {
            None => exchange.await,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(r) => r,
                Err(_) => {
                    self.conn = None;
                    return Err(fail(TransportKind::TimedOut(limit)));
                }
            },
        };
        result.map_err(|e| {
            self.conn = None;
            fail(TransportKind::Lost(error_chain(&e)))
        })
    }
}

impl Client {
    /// Sends one request and hands a 2xx answer's body to `sink` frame by frame as it arrives
    /// (a long NDJSON export is never held whole); a non-2xx answer is read whole and returned
    /// as its [`RawAnswer`] instead. The client's timeout bounds the wait for the head and for
    /// each frame, not the whole stream. `sink` failing stops the exchange (the connection is
    /// dropped) and its message is returned as [`TransportKind::Lost`].
    pub async fn call_streaming(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        mut sink: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<Option<RawAnswer>, TransportError> {
        let fail = |kind| TransportError {
            method: method.clone(),
            path: path.to_owned(),
            kind,
        };
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, LOCALHOST)
            .body(Full::new(body))
            .map_err(|e| fail(TransportKind::BadRequest(e.to_string())))?;
        let timeout = self.timeout;
        let conn = self.open(&method, path).await?;
        let head = within(timeout, async {
            conn.ready().await?;
            conn.send_request(req).await
        })
        .await;
        let response = match head {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(fail(TransportKind::Lost(error_chain(&e))));
            }
            Err(limit) => {
                self.conn = None;
                return Err(fail(TransportKind::TimedOut(limit)));
            }
        };
        let (parts, mut body) = response.into_parts();
        if !parts.status.is_success() {
            let body = match within(timeout, body.collect()).await {
                Ok(Ok(c)) => c.to_bytes(),
                Ok(Err(e)) => {
                    self.conn = None;
                    return Err(fail(TransportKind::Lost(error_chain(&e))));
                }
                Err(limit) => {
                    self.conn = None;
                    return Err(fail(TransportKind::TimedOut(limit)));
                }
            };
            return Ok(Some(RawAnswer {
                status: parts.status,
                headers: parts.headers,
                body,
            }));
        }
        loop {
            let frame = match within(timeout, body.frame()).await {
                Ok(Some(Ok(f))) => f,
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    self.conn = None;
                    return Err(fail(TransportKind::Lost(error_chain(&e))));
                }
                Err(limit) => {
                    self.conn = None;
                    return Err(fail(TransportKind::TimedOut(limit)));
                }
            };
            if let Ok(data) = frame.into_data()
                && let Err(e) = sink(&data)
            {
                self.conn = None;
                return Err(fail(TransportKind::Lost(e)));
            }
        }
    }
}

/// `f`, bounded by `timeout` when there is one (`Err` with the limit when it ran out).
async fn within<F: std::future::Future>(
    timeout: Option<Duration>,
    f: F,
) -> Result<F::Output, Duration> {
    match timeout {
        None => Ok(f.await),
        Some(limit) => tokio::time::timeout(limit, f).await.map_err(|_| limit),
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Errors surface through `send_request`.
        let _ = conn.await;
    });
    Ok(sender)
}

/// An error and its sources, `: `-separated.
pub fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}
