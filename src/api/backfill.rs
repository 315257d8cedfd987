//! `POST /v1/endpoints/{id}/replay`: back-fill from the retained log. The window (`since`
//! inclusive, `until` exclusive, RFC 3339 acceptance times) is checked here; the journal
//! reopens the delivered events of the window in chunks of [`BACKFILL_CHUNK`], one durable
//! commit each ([`crate::store::Journal::backfill`]), and they go out again in their original
//! order with their original ids and `X-HAPP-Replay: 1`, ahead of every event not yet started.
//!
//! Without `limit` the whole window is handled before the 202 (the contract's answer). With
//! `limit` (1-1000) one call handles at most that many and answers `next_cursor`, so a client
//! drives the chunks itself and can show progress (`courier replay` does).

use http::{Request, StatusCode};

use super::AppState;
use super::http::{ADMIN_BODY_MAX, Resp, check_id, fixed_limit, json_ok};
use crate::body::{Body, read_body};
use crate::core::dead_filter::{Cursor, parse_rfc3339};
use crate::core::timefmt::{now_ms, rfc3339};
use crate::error::ApiError;
use crate::store::BackfillReq;
use crate::views::{BackfillRequest, Backfilled};

/// Events one journal call of a back-fill handles (one durable commit each): as many as a bulk
/// dead-letter replay moves back ([`super::dead_letters::BULK_CHUNK`]); the journal also ends
/// a chunk early at [`crate::store::REPLAY_CHUNK_BYTES`] of records.
pub const BACKFILL_CHUNK: usize = super::dead_letters::BULK_CHUNK;
/// Most events a call with `limit` handles.
pub const MAX_LIMIT: u32 = 1000;

/// The example body of the refusals' hints.
const EXAMPLE: &str = r#"send e.g. {"since": "2026-11-21T06:00:00Z", "until": "2026-11-21T07:00:00Z"} (until is optional)"#;

/// A checked window: unix ms, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_ms: u64,
    pub until_ms: u64,
}

/// Checks the request's window at `now_ms`: `since` is required; both are RFC 3339; `until`
/// (exclusive) absent or in the future means up to now; the window must not be empty.
pub fn window_of(req: &BackfillRequest, now_ms: u64) -> Result<Window, ApiError> {
    let Some(since) = req.since.as_deref() else {
        return Err(ApiError::bad_request(
            "SINCE_REQUIRED",
            "name the start of the back-fill window: since (RFC 3339)",
        ));
    };
    let time = |name: &str, s: &str| {
        parse_rfc3339(s).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_TIME",
                format!("{name} is not an RFC 3339 timestamp such as 2026-11-21T06:49:06Z"),
            )
        })
    };
    let since_ms = time("since", since)?;
    let until_ms = match req.until.as_deref() {
        None => now_ms,
        // Exclusive: the last millisecond of the window is the one before it.
        Some(u) => time("until", u)?.saturating_sub(1).min(now_ms),
    };
    if since_ms > now_ms {
        return Err(ApiError::bad_request(
            "INVALID_TIME",
            format!(
                "since is in the future (now is {}): nothing was accepted in that window yet",
                rfc3339(now_ms)
            ),
        ));
    }
    if since_ms > until_ms {
        return Err(ApiError::bad_request(
            "INVALID_TIME",
            "since must be before until (since is inclusive, until exclusive)",
        ));
    }
    Ok(Window { since_ms, until_ms })
}

fn limit_of(limit: Option<u32>) -> Result<Option<usize>, ApiError> {
    match limit {
        None => Ok(None),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n as usize)),
        Some(_) => Err(ApiError::bad_request(
            "INVALID_LIMIT",
            "limit must be a whole number from 1 to 1000",
        )),
    }
}

fn cursor_of(text: Option<&str>) -> Result<Option<u64>, ApiError> {
    match text.map(|t| Cursor::decode(t, true)) {
        None => Ok(None),
        Some(Ok(Cursor::Seq(s))) => Ok(Some(s)),
        Some(Ok(Cursor::Id(_))) => Err(bad_cursor("the cursor is not one this daemon handed out")),
        Some(Err(e)) => Err(bad_cursor(&e.to_string())),
    }
}

fn bad_cursor(why: &str) -> ApiError {
    ApiError::bad_request("INVALID_CURSOR", why.to_string()).advise(
        "pass the next_cursor of the previous back-fill call unchanged, with the same window",
    )
}

/// `POST /v1/endpoints/{id}/replay` with a [`BackfillRequest`]: 202 [`Backfilled`] once every
/// event of the window (or, with `limit`, of this chunk) is pending again.
pub async fn backfill(
    state: &AppState,
    id: &str,
    req: &mut Request<Body>,
) -> Result<Resp, ApiError> {
    check_id(id)?;
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "a back-fill window is at most 64 KiB"))?;
    let wanted: BackfillRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "INVALID_JSON",
            format!("the back-fill window is not valid: {e}"),
        )
        .advise(EXAMPLE)
    })?;
    let window = window_of(&wanted, now_ms())?;
    let limit = limit_of(wanted.limit)?;
    let mut after = cursor_of(wanted.cursor.as_deref())?;
    let mut out = Backfilled {
        replayed: 0,
        pending: 0,
        retained_since: None,
        cut: false,
        next_cursor: None,
        left_at_most: None,
    };
    loop {
        let done = state
            .journal
            .backfill(BackfillReq {
                endpoint: id.to_string(),
                since_ms: window.since_ms,
                until_ms: Some(window.until_ms),
                after,
                limit: limit.unwrap_or(BACKFILL_CHUNK),
            })
            .await?;
        out.replayed += done.done;
        out.pending += done.pending;
        out.cut |= done.cut;
        out.retained_since = done.retained_since_ms.map(rfc3339);
        after = done.next;
        if after.is_none() || limit.is_some() {
            break;
        }
    }
    if let Some(seq) = after {
        out.next_cursor = Some(Cursor::Seq(seq).encode());
        // The seqs after the cursor up to the newest accepted: no more events than that.
        let owned = id.to_string();
        out.left_at_most = state
            .journal
            .endpoint(&owned)
            .await?
            .map(|r| r.next_seq.saturating_sub(seq.saturating_add(1)));
    }
    json_ok(StatusCode::ACCEPTED, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_240_160_000;

    fn req(since: Option<&str>, until: Option<&str>) -> BackfillRequest {
        BackfillRequest {
            since: since.map(str::to_string),
            until: until.map(str::to_string),
            ..Default::default()
        }
    }

    fn code(r: Result<Window, ApiError>) -> &'static str {
        r.unwrap_err().code
    }

    #[test]
    fn a_window_is_since_inclusive_until_exclusive_and_ends_now_at_the_latest() {
        let since = rfc3339(NOW - 3_600_000);
        let w = window_of(&req(Some(&since), None), NOW).unwrap();
        assert_eq!((w.since_ms, w.until_ms), (NOW - 3_600_000, NOW));
        let until = rfc3339(NOW - 60_000);
        let w = window_of(&req(Some(&since), Some(&until)), NOW).unwrap();
        assert_eq!(w.until_ms, NOW - 60_001, "until is exclusive");
        let future = rfc3339(NOW + 86_400_000);
        let w = window_of(&req(Some(&since), Some(&future)), NOW).unwrap();
        assert_eq!(w.until_ms, NOW, "an until in the future is now");
        let w = window_of(&req(Some(&rfc3339(NOW)), None), NOW).unwrap();
        assert_eq!(
            (w.since_ms, w.until_ms),
            (NOW, NOW),
            "since = now is one ms"
        );
    }

    #[test]
    fn bad_windows_have_their_codes() {
        assert_eq!(code(window_of(&req(None, None), NOW)), "SINCE_REQUIRED");
        let until = rfc3339(NOW - 1000);
        assert_eq!(
            code(window_of(&req(None, Some(&until)), NOW)),
            "SINCE_REQUIRED"
        );
        assert_eq!(
            code(window_of(&req(Some("yesterday"), None), NOW)),
            "INVALID_TIME"
        );
        assert_eq!(
            code(window_of(&req(Some(&until), Some("soon")), NOW)),
            "INVALID_TIME"
        );
        let later = rfc3339(NOW - 500);
        for (s, u) in [(&later, &until), (&until, &until)] {
            let e = window_of(&req(Some(s), Some(u)), NOW).unwrap_err();
            assert_eq!(e.code, "INVALID_TIME");
            assert!(e.message.contains("before until"), "{}", e.message);
        }
        let e = window_of(&req(Some(&rfc3339(NOW + 1)), None), NOW).unwrap_err();
        assert_eq!(e.code, "INVALID_TIME");
        assert!(e.message.contains("future"), "{}", e.message);
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(limit_of(None).unwrap(), None);
        assert_eq!(limit_of(Some(1000)).unwrap(), Some(1000));
        for bad in [0, 1001] {
            assert_eq!(limit_of(Some(bad)).unwrap_err().code, "INVALID_LIMIT");
        }
        let c = Cursor::Seq(41).encode();
        assert_eq!(cursor_of(Some(&c)).unwrap(), Some(41));
        assert_eq!(cursor_of(None).unwrap(), None);
        assert_eq!(cursor_of(Some("nope")).unwrap_err().code, "INVALID_CURSOR");
        let by_id = Cursor::Id("evt_01KAXYZ0000000000000000000".into()).encode();
        assert_eq!(cursor_of(Some(&by_id)).unwrap_err().code, "INVALID_CURSOR");
    }
}
