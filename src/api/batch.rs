//! The NDJSON of `POST /v1/events/batch`: one event per line, parsed into the intake's requests
//! (all or nothing: the first bad line refuses the whole batch, and says which line it was).

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use super::http::from_base64;
use crate::body::HEADER_VALUE_MAX;
use crate::core::endpoint::{redact_serde, valid_endpoint_id};
use crate::core::ids::IdGen;
use crate::error::ApiError;
use crate::intake::{DEFAULT_CONTENT_TYPE, NewEvent, new_request};
use crate::store::EnqueueReq;

/// Most events in one batch.
pub const BATCH_MAX_EVENTS: usize = 10_000;
/// Largest batch request.
pub const BATCH_MAX_BYTES: usize = 32 << 20;

/// One NDJSON line of `POST /v1/events/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine<'a> {
    endpoint: String,
    /// Delivered exactly as written in the line (any JSON value).
    #[serde(borrow, default)]
    body: Option<&'a serde_json::value::RawValue>,
    /// Or arbitrary bytes, base64 (standard alphabet).
    body_base64: Option<String>,
    content_type: Option<String>,
    event_type: Option<String>,
    idempotency_key: Option<String>,
}

/// Parses a batch into enqueue requests (ids from `ids`, enqueued at `now`); the whole batch is
/// refused on the first bad line.
pub fn parse_batch(
    text: &[u8],
    max_body: usize,
    ids: &IdGen,
    now: u64,
) -> Result<Vec<EnqueueReq>, ApiError> {
    let bad = |n: usize, m: String| {
        ApiError::bad_request("INVALID_BATCH", format!("line {n}: {m}"))
            .advise(r#"one JSON object per line: {"endpoint": "acme", "body": {...}, "event_type": "..."}; nothing of this batch was accepted"#)
    };
    let mut out = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if out.len() >= BATCH_MAX_EVENTS {
            return Err(bad(
                n,
                format!("a batch holds at most {BATCH_MAX_EVENTS} events"),
            ));
        }
        let l: BatchLine<'_> =
            serde_json::from_slice(line).map_err(|e| bad(n, redact_serde(&e)))?;
        if !valid_endpoint_id(&l.endpoint) {
            return Err(unknown_endpoint_on_line(n, &l.endpoint));
        }
        let body = match (l.body, &l.body_base64) {
            (Some(raw), None) => Bytes::copy_from_slice(raw.get().as_bytes()),
            (None, Some(b64)) => Bytes::from(
                from_base64(b64).ok_or_else(|| bad(n, "body_base64 is not valid base64".into()))?,
            ),
            _ => return Err(bad(n, "give exactly one of body or body_base64".into())),
        };
        if body.len() > max_body {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("line {n}: the body is larger than the limit of {max_body} bytes"),
            ));
        }
        for (name, v) in [
            ("content_type", &l.content_type),
            ("event_type", &l.event_type),
            ("idempotency_key", &l.idempotency_key),
        ] {
            if let Some(v) = v
                && (v.len() > HEADER_VALUE_MAX || !v.bytes().all(|c| (0x20..0x7f).contains(&c)))
            {
                return Err(bad(
                    n,
                    format!("{name} must be at most {HEADER_VALUE_MAX} printable ASCII characters"),
                ));
            }
        }
        let ev = NewEvent {
            endpoint: l.endpoint,
            content_type: l
                .content_type
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into()),
            event_type: l.event_type,
            idempotency_key: l.idempotency_key,
            body,
        };
        let req = new_request(ids, now, ev).map_err(|e| bad(n, e.to_string()))?;
        out.push(req);
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BATCH",
            "the batch holds no event (it is empty or only blank lines)",
        ));
    }
    Ok(out)
}

/// A batch line naming an endpoint that does not exist: 404, with the line.
pub fn unknown_endpoint_on_line(line: usize, endpoint: &str) -> ApiError {
    let e = ApiError::endpoint_not_found(endpoint);
    ApiError {
        message: format!(
            "line {line}: {}; nothing of this batch was accepted",
            e.message
        ),
        ..e
    }
}

/// The 1-based line number of the `index`-th event of a batch (blank lines are not events).
pub fn batch_line_of(text: &[u8], index: Option<usize>) -> usize {
    let Some(index) = index else { return 0 };
    text.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .nth(index)
        .map_or(0, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_keep_bodies_verbatim() {
        let ids = IdGen::new();
        let text = b"{\"endpoint\":\"a\",\"body\":{\"x\": 1,  \"y\":[1,2]},\"event_type\":\"t\"}\n\n{\"endpoint\":\"b\",\"body_base64\":\"AP8=\",\"content_type\":\"application/octet-stream\"}\r\n";
        let reqs = parse_batch(text, 1024, &ids, 0).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(&reqs[0].body[..], b"{\"x\": 1,  \"y\":[1,2]}");
        assert_eq!(reqs[0].meta.event_type.as_deref(), Some("t"));
        assert_eq!(&reqs[1].body[..], &[0u8, 255]);
        assert_eq!(reqs[1].meta.content_type, "application/octet-stream");
    }

    #[test]
    fn bad_batches_name_the_line() {
        let ids = IdGen::new();
        let e =
            parse_batch(b"{\"endpoint\":\"a\",\"body\":1}\n{nope}\n", 1024, &ids, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_BATCH");
        assert!(e.message.starts_with("line 2"), "{}", e.message);
        let e = parse_batch(b"{\"endpoint\":\"a\"}", 1024, &ids, 0).unwrap_err();
        assert!(e.message.contains("exactly one"), "{}", e.message);
        let e =
            parse_batch(b"{\"endpoint\":\"a\",\"body\":\"xxxxxxxxxx\"}", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "PAYLOAD_TOO_LARGE");
        let e = parse_batch(b"\n \n", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "INVALID_BATCH");
        let e = parse_batch(b"{\"endpoint\":\"a/b\",\"body\":1}", 4, &ids, 0).unwrap_err();
        assert_eq!(e.code, "ENDPOINT_NOT_FOUND");
        // Regression: the unknown endpoint's line was not named, and an empty batch said "line 0".
        let e = parse_batch(
            b"{\"endpoint\":\"a\",\"body\":1}\n\n{\"endpoint\":\"..\",\"body\":1}",
            4,
            &ids,
            0,
        )
        .unwrap_err();
        assert_eq!(e.code, "ENDPOINT_NOT_FOUND");
        assert!(e.message.starts_with("line 3:"), "{}", e.message);
        let e = parse_batch(b"\n \n", 4, &ids, 0).unwrap_err();
        assert!(!e.message.contains("line 0"), "{}", e.message);
        assert!(e.hint().is_some());
        assert_eq!(batch_line_of(b"a\n\n b\nc", Some(1)), 3);
        assert_eq!(batch_line_of(b"a\n\n b\nc", Some(2)), 4);
    }
}
