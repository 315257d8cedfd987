//! The request of a routed request, for both listeners (admin API and ingress): its body — read
//! within a limit, or drained when refused or left unread (a client that writes its whole
//! request before it reads, like Python's `http.client` and most HTTP libraries, would
//! otherwise see the connection reset instead of the answer) — and its header values.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use crate::error::ApiError;

/// Longest accepted `Content-Type`, `X-Event-Type` or `Idempotency-Key`.
pub const HEADER_VALUE_MAX: usize = 256;

/// Most bytes of a refused body that are read and thrown away before the answer.
const DRAIN_MAX_BYTES: u64 = 64 << 20;
/// Longest time spent reading and throwing away a refused body before the answer.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// The body of a request being routed. A handler takes it to read it ([`read_body`]); one
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

/// Reads the request body, of at most `max` bytes; it is taken out of the request, which must
/// not be read twice.
///
/// An over-limit body is answered 413 `PAYLOAD_TOO_LARGE`, but only after the rest of it was
/// read and discarded (see [`drain`]): a client that writes its whole request before it
/// reads (Python's `http.client`, most HTTP libraries) would otherwise see the connection reset
/// instead of the answer. Bodies declared longer than the drain bound, and requests that wait
/// for `100 Continue` before they send their body, are answered at once ([`may_drain`]).
pub async fn read_body(req: &mut Request<Body>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than the limit of {max} bytes"),
        )
        .advise("send smaller events, or raise max_body_bytes")
    };
    let read_failed =
        || ApiError::bad_request("BODY_READ_FAILED", "the request body could not be read");
    if declared_length(req.headers()).is_some_and(|len| len > max as u64) {
        // Left in the request, unread: it is drained, or not, like any body a route refused
        // without reading it (`finish`).
        return Err(too_large());
    }
    let Some(mut body) = req.body_mut().take() else {
        return Err(read_failed());
    };
    match Limited::new(&mut body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            // Reading has begun (any `100 Continue` was sent): read the rest whatever it is.
            drain(&mut body).await;
            Err(too_large())
        }
        Err(_) => Err(read_failed()),
    }
}

/// A header's value, trimmed; `None` when absent or blank. A value that is not visible ASCII or
/// longer than [`HEADER_VALUE_MAX`] is refused (400 `INVALID_HEADER`), never silently dropped
/// (for an `Idempotency-Key`, that would turn a retry into a duplicate).
pub fn header_str(h: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| {
        ApiError::bad_request("INVALID_HEADER", format!("{name} must be visible ASCII"))
    })?;
    if s.len() > HEADER_VALUE_MAX {
        return Err(ApiError::bad_request(
            "INVALID_HEADER",
            format!("{name} is longer than {HEADER_VALUE_MAX} bytes"),
        ));
    }
    Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
}
