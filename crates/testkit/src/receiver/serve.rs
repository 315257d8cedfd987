//! The receiver's connections: accepting, TLS, answering by plan, the control endpoints.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{Behavior, Delivery, Rule, Shared, verify_signature};

// ---------------------------------------------------------------------------------------------
// Server internals
// ---------------------------------------------------------------------------------------------

pub(super) async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
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
        Behavior::Answer {
            status,
            content_type,
            body,
        } => {
            let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
            *r.status_mut() = status_code(status);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
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
