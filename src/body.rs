//! The request body while a request is routed, and the draining of a body that was refused or
//! left unread: a client that writes its whole request before it reads (Python's
//! `http.client`, most HTTP libraries) would otherwise see the connection reset instead of the
//! answer.

use std::time::Duration;

use http::{HeaderMap, Request, header};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

/// Most bytes of a refused body that are read and thrown away before the answer.
const DRAIN_MAX_BYTES: u64 = 64 << 20;
/// Longest time spent reading and throwing away a refused body before the answer.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// The body of a request being routed. A handler takes it to read it (`api::read_body`); one
/// that no handler took is drained by `finish` before the answer is sent.
pub struct Body(Option<Incoming>);

impl Body {
    pub fn new(body: Incoming) -> Self {
        Self(Some(body))
    }

    /// The body, for the one handler that reads it; `None` if it was taken before.
    pub fn take(&mut self) -> Option<Incoming> {
        self.0.take()
    }
}

/// Ends a routed request: a body the handler did not take is drained (unless `may_drain` says
/// it is not to be waited for). Costs nothing when the body was read or there is none.
pub async fn finish(req: Request<Body>) {
    let (parts, Body(body)) = req.into_parts();
    if let Some(mut body) = body
        && !body.is_end_stream()
        && may_drain(&parts.headers)
    {
        drain(&mut body).await;
    }
}

/// The declared `Content-Length`, if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether a body not yet read is to be drained before the answer. Not when it is declared
/// longer than `DRAIN_MAX_BYTES`, nor when the client waits for `100 Continue` before it sends
/// its body (reading would invite the upload; such a client reads the answer without one):
/// those are answered at once and the connection is closed after the answer.
pub fn may_drain(headers: &HeaderMap) -> bool {
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    !waits_for_continue && declared_length(headers).is_none_or(|len| len <= DRAIN_MAX_BYTES)
}

/// Reads and discards the rest of a refused body, at most `DRAIN_MAX_BYTES` and for at most
/// `DRAIN_MAX_TIME`, so that the client can read the answer. When either bound is reached
/// (or the body fails), the rest stays unread and the connection is closed after the answer.
pub async fn drain(body: &mut Incoming) {
    let discard = async {
        let mut left = DRAIN_MAX_BYTES;
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(n) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, discard).await;
}
