//! The HTTP side of the admin API's handlers: JSON and text responses, method-not-allowed,
//! query parsing, the id checks of path segments, the fixed body limits of settings routes, and
//! base64 (for bodies that are not UTF-8). Reading a body lives in [`crate::body`], shared with
//! the ingress.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::core::endpoint::{ID_RULE, valid_endpoint_id};
use crate::core::ids::looks_like_event_id;
use crate::error::ApiError;

/// A response of the admin API.
pub type Resp = Response<ApiBody>;

/// The body of an admin API answer: whole (nearly every route), or chunks handed over by a
/// task as it produces them (the NDJSON export), so a long answer is never held in memory.
#[derive(Debug)]
pub enum ApiBody {
    Whole(Full<Bytes>),
    Chunks(tokio::sync::mpsc::Receiver<Bytes>),
}

impl From<Full<Bytes>> for ApiBody {
    fn from(b: Full<Bytes>) -> Self {
        ApiBody::Whole(b)
    }
}

impl hyper::body::Body for ApiBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ApiBody::Whole(b) => std::pin::Pin::new(b).poll_frame(cx),
            ApiBody::Chunks(rx) => rx
                .poll_recv(cx)
                .map(|c| c.map(|b| Ok(hyper::body::Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ApiBody::Whole(b) => b.is_end_stream(),
            ApiBody::Chunks(_) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ApiBody::Whole(b) => b.size_hint(),
            ApiBody::Chunks(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// Largest body of `PUT /v1/endpoints/{id}` and `PUT /v1/channels/{id}`.
pub const ADMIN_BODY_MAX: usize = 64 * 1024;

pub fn error_response(e: &ApiError) -> Resp {
    json_response(e.status, e.body().into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)).into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON answer of one of the [`crate::views`] types.
pub fn json_ok<T: Serialize>(status: StatusCode, v: &T) -> Result<Resp, ApiError> {
    let body = serde_json::to_vec(v).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "the answer could not be encoded",
        )
    })?;
    Ok(json_response(status, body))
}

pub fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).into());
    *r.status_mut() = status;
    r
}

pub fn no_content() -> Result<Resp, ApiError> {
    let mut r = Response::new(Full::new(Bytes::new()).into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

pub fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("this route accepts {allowed}"),
    )
}

/// `a=1&b=2` into a map (no percent-decoding needed for our ids and numbers, but `%2E` etc.
/// are decoded).
pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `Ok` when `valid`, else a 400 `code` saying why `id` is not one.
fn check_shape(
    valid: bool,
    code: &'static str,
    what: &str,
    rule: &str,
    id: &str,
) -> Result<(), ApiError> {
    if valid {
        return Ok(());
    }
    Err(ApiError::bad_request(
        code,
        format!("{} is not {what}: ids are {rule}", shown(id)),
    ))
}

pub fn check_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        valid_endpoint_id(id),
        "INVALID_ENDPOINT_ID",
        "an endpoint id",
        ID_RULE,
        id,
    )
}

pub fn check_channel_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        valid_endpoint_id(id),
        "INVALID_CHANNEL_ID",
        "a channel id",
        ID_RULE,
        id,
    )
}

pub fn check_event_id(id: &str) -> Result<(), ApiError> {
    check_shape(
        looks_like_event_id(id),
        "INVALID_EVENT_ID",
        "an event id",
        "evt_ followed by 26 characters",
        id,
    )
}

/// An id from a request, quoted for a message: escaped, and cut after 80 characters.
fn shown(id: &str) -> String {
    match id.char_indices().nth(80) {
        Some((i, _)) => format!("{:?}…", &id[..i]),
        None => format!("{id:?}"),
    }
}

/// A 413 of a route whose limit is fixed (not `max_body_bytes`): the hint says so.
pub fn fixed_limit(e: ApiError, what: &str) -> ApiError {
    if e.code == "PAYLOAD_TOO_LARGE" {
        e.advise(format!(
            "{what}; this limit is fixed (max_body_bytes does not change it)"
        ))
    } else {
        e
    }
}

/// Standard base64 with padding.
pub fn to_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Standard alphabet, padding optional (it is cut before decoding), unused trailing bits
/// ignored: what the batch's `body_base64` has always accepted.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes standard base64 (padding optional, any number of trailing `=`); `None` on any
/// invalid character or length.
pub fn from_base64(s: &str) -> Option<Vec<u8>> {
    LENIENT.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0, 255, 254, 1, 2]] {
            assert_eq!(from_base64(&to_base64(data)).unwrap(), data);
        }
        assert_eq!(from_base64("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(from_base64("Zm9"), Some(b"fo".to_vec()));
        assert_eq!(from_base64("Z"), None);
        assert_eq!(from_base64("Zm9v!"), None);
    }

    /// The decoder kept the hand-written one's leniency: extra padding and unused trailing bits
    /// are accepted, padding inside is not.
    #[test]
    fn base64_decoding_is_as_lenient_as_before() {
        assert_eq!(from_base64("Zm8"), Some(b"fo".to_vec()));
        assert_eq!(from_base64("Zm8=="), Some(b"fo".to_vec()));
        assert_eq!(from_base64("Zg"), Some(b"f".to_vec()));
        assert_eq!(from_base64("Zh=="), Some(b"f".to_vec()));
        assert_eq!(from_base64("===="), Some(Vec::new()));
        assert_eq!(from_base64("Zg==Zg=="), None);
        assert_eq!(from_base64("Zm 9v"), None);
        assert_eq!(from_base64("Zm9v-_"), None);
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(to_base64(b""), "");
        assert_eq!(to_base64(b"f"), "Zg==");
        assert_eq!(to_base64(b"fo"), "Zm8=");
        assert_eq!(to_base64(b"foo"), "Zm9v");
        assert_eq!(to_base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn query_parsing() {
        let q = parse_query("endpoint=acme&limit=5&x=a%2Eb");
        assert_eq!(q["endpoint"], "acme");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "a.b");
    }
}
