//! `/v1/dead-letters…`: one by one (show with the event and its history, replay into the
//! original place, purge) and in bulk by filter (endpoint, reason, a `dead_at` window): paged
//! list with an opaque cursor, count, replay, purge, and the NDJSON export streamed page by
//! page.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};

use super::AppState;
use super::http::{
    ADMIN_BODY_MAX, ApiBody, Resp, check_event_id, check_id, fixed_limit, json_ok, no_content,
};
use super::views::{dead_letter_detail, dead_letter_view};
use crate::body::{Body, read_body};
use crate::core::dead_filter::{Cursor, DeadFilter, parse_rfc3339};
use crate::error::ApiError;
use crate::store::{DeadQuery, Journal, StoreError};
use crate::views::{
    BulkReplayed, DeadLetterCount, DeadLetterFilter, DeadLetterList, Purged, Replayed,
};

/// Dead letters a page holds when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most dead letters a page (or a replay call with `limit`) holds.
pub const MAX_LIMIT: usize = 1000;
/// Dead letters one journal call of a bulk replay or purge handles (one durable commit each).
pub const BULK_CHUNK: usize = 1000;
/// Dead letters (with their payloads) one page of the export reads.
pub const EXPORT_PAGE: usize = 100;

/// `GET /v1/dead-letters[?endpoint&reason&since&until&limit&cursor]`: one page, oldest first.
pub async fn list(state: &AppState, query: &HashMap<String, String>) -> Result<Resp, ApiError> {
    let filter = filter_of(&query_filter(query))?;
    let limit = limit_of(query.get("limit").map(String::as_str))?;
    let after = cursor_of(query.get("cursor").map(String::as_str), &filter)?;
    let page = state
        .journal
        .dead_letter_page(DeadQuery {
            filter,
            after,
            limit,
            records: false,
        })
        .await?;
    let dead_letters = page
        .entries
        .iter()
        .map(|e| dead_letter_view(&e.letter))
        .collect();
    json_ok(
        StatusCode::OK,
        &DeadLetterList {
            dead_letters,
            next_cursor: page.next.as_ref().map(Cursor::encode),
        },
    )
}

/// `GET /v1/dead-letters/count[?endpoint&reason&since&until]`.
pub async fn count(state: &AppState, query: &HashMap<String, String>) -> Result<Resp, ApiError> {
    let filter = filter_of(&query_filter(query))?;
    let count = count_matching(state.journal.as_ref(), &filter).await?;
    json_ok(StatusCode::OK, &DeadLetterCount { count })
}

/// How many dead letters `filter` selects, counted page by page (memory stays bounded).
pub async fn count_matching(journal: &dyn Journal, filter: &DeadFilter) -> Result<u64, ApiError> {
    let mut after = None;
    let mut count = 0u64;
    loop {
        let page = journal
            .dead_letter_page(DeadQuery {
                filter: filter.clone(),
                after,
                limit: MAX_LIMIT,
                records: false,
            })
            .await?;
        count += page.entries.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(count),
        }
    }
}

pub async fn get(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let owned = id.to_string();
    let (dl, rec) = state
        .journal
        .dead_letter(&owned)
        .await?
        .ok_or_else(|| ApiError::dead_letter_not_found(id))?;
    json_ok(StatusCode::OK, &dead_letter_detail(&dl, &rec))
}

fn replay_error(e: StoreError) -> ApiError {
    match e {
        StoreError::EndpointNotFound(ep) => ApiError::endpoint_not_found(&ep)
            .advise("the endpoint was deleted; create it again with the same id, then replay"),
        other => other.into(),
    }
}

/// `POST /v1/dead-letters/{id}/replay`: 202 with the endpoint and the original seq.
pub async fn replay(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    let (endpoint, seq) = state
        .journal
        .replay(id.to_string())
        .await
        .map_err(replay_error)?;
    json_ok(
        StatusCode::ACCEPTED,
        &Replayed {
            id: id.to_string(),
            endpoint,
            seq,
        },
    )
}

/// `POST /v1/dead-letters/replay` with a [`DeadLetterFilter`] (endpoint required): every
/// match goes back to its place, oldest first, in chunks of [`BULK_CHUNK`] (each durable
/// before the next); with `limit`, at most that many and the cursor to go on with. 202 once
/// they are all pending again.
pub async fn replay_matching(state: &AppState, req: &mut Request<Body>) -> Result<Resp, ApiError> {
    let body = read_body(req, ADMIN_BODY_MAX)
        .await
        .map_err(|e| fixed_limit(e, "a replay filter is at most 64 KiB"))?;
    let wanted: DeadLetterFilter = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("INVALID_JSON", format!("the replay filter is not valid: {e}")).advise(
            r#"send e.g. {"endpoint": "acme", "reason": "MAX_RETRIES_EXCEEDED", "since": "2026-11-21T00:00:00Z"}"#,
        )
    })?;
    let filter = required_endpoint(filter_of(&wanted)?)?;
    let limit = match wanted.limit {
        None => None,
        Some(n) => Some(limit_of(Some(&n.to_string()))?),
    };
    let mut after = match cursor_of(wanted.cursor.as_deref(), &filter)? {
        Some(Cursor::Seq(s)) => Some(s),
        _ => None,
    };
    let mut out = BulkReplayed {
        replayed: 0,
        skipped: 0,
        next_cursor: None,
    };
    loop {
        let done = state
            .journal
            .replay_matching(filter.clone(), after, limit.unwrap_or(BULK_CHUNK))
            .await
            .map_err(replay_error)?;
        out.replayed += done.done;
        out.skipped += done.skipped;
        after = done.next;
        if after.is_none() || limit.is_some() {
            break;
        }
    }
    out.next_cursor = after.map(|s| Cursor::Seq(s).encode());
    json_ok(StatusCode::ACCEPTED, &out)
}

pub async fn purge(state: &AppState, id: &str) -> Result<Resp, ApiError> {
    check_event_id(id)?;
    state.journal.purge(id.to_string()).await?;
    no_content()
}

/// `DELETE /v1/dead-letters?endpoint=…[&reason&since&until]`: every match, in chunks of
/// [`BULK_CHUNK`] (each durable before the next). The endpoint is required, so no request
/// purges everything by accident; it need not exist any more.
pub async fn purge_matching(
    state: &AppState,
    query: &HashMap<String, String>,
) -> Result<Resp, ApiError> {
    let filter = required_endpoint(filter_of(&query_filter(query))?)?;
    let mut after = None;
    let mut purged = 0;
    loop {
        let done = state
            .journal
            .purge_matching(filter.clone(), after, BULK_CHUNK)
            .await?;
        purged += done.done;
        after = done.next;
        if after.is_none() {
            break;
        }
    }
    json_ok(StatusCode::OK, &Purged { purged })
}

/// `GET /v1/dead-letters/export[?endpoint&reason&since&until]`: NDJSON, one dead letter with
/// its payload a line (the shape of `GET /v1/dead-letters/{id}`), oldest first. Read and sent
/// [`EXPORT_PAGE`] at a time by a task of its own, which stops when the client goes away; a
/// storage failure after the first page ends the stream with an `{"error": …}` line.
pub async fn export(state: &AppState, query: &HashMap<String, String>) -> Result<Resp, ApiError> {
    let filter = filter_of(&query_filter(query))?;
    let journal = Arc::clone(&state.journal);
    let query = DeadQuery {
        filter,
        after: None,
        limit: EXPORT_PAGE,
        records: true,
    };
    // The first page is read before answering, so a failure still gets its status.
    let first = journal.dead_letter_page(query.clone()).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let mut page = first;
        loop {
            let mut chunk = Vec::new();
            for e in &page.entries {
                if let Some(rec) = &e.record
                    && serde_json::to_writer(&mut chunk, &dead_letter_detail(&e.letter, rec))
                        .is_ok()
                {
                    chunk.push(b'\n');
                }
            }
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return; // the client went away
            }
            let Some(next) = page.next else {
                return;
            };
            page = match read_page(&*journal, &query, next).await {
                Ok(p) => p,
                Err(e) => {
                    let line = format!("{}\n", ApiError::from(e).body());
                    let _ = tx.send(Bytes::from(line)).await;
                    return;
                }
            };
        }
    });
    let mut r = Response::new(ApiBody::Chunks(rx));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(r)
}

async fn read_page(
    journal: &dyn Journal,
    query: &DeadQuery,
    after: Cursor,
) -> Result<crate::store::DeadPage, StoreError> {
    let mut q = query.clone();
    q.after = Some(after);
    journal.dead_letter_page(q).await
}

/// The filter fields of a query string.
fn query_filter(q: &HashMap<String, String>) -> DeadLetterFilter {
    DeadLetterFilter {
        endpoint: q.get("endpoint").cloned(),
        reason: q.get("reason").cloned(),
        since: q.get("since").cloned(),
        until: q.get("until").cloned(),
        limit: None,
        cursor: None,
    }
}

/// Checks a filter's fields: the endpoint id's shape, the reason's, the two timestamps.
fn filter_of(f: &DeadLetterFilter) -> Result<DeadFilter, ApiError> {
    if let Some(ep) = &f.endpoint {
        check_id(ep)?;
    }
    if let Some(r) = &f.reason
        && !(1..=64).contains(&r.len())
    {
        return Err(bad_reason());
    }
    if let Some(r) = &f.reason
        && !r
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad_reason());
    }
    let time = |name: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
        match v {
            None => Ok(None),
            Some(s) => parse_rfc3339(s).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_TIME",
                    format!("{name} is not an RFC 3339 timestamp such as 2026-11-21T06:49:06Z (in a query string, write + as %2B)"),
                )
            }),
        }
    };
    let since_ms = time("since", &f.since)?;
    let until_ms = time("until", &f.until)?;
    if let (Some(s), Some(u)) = (since_ms, until_ms)
        && s >= u
    {
        return Err(ApiError::bad_request(
            "INVALID_TIME",
            "since must be before until (since is inclusive, until exclusive)",
        ));
    }
    Ok(DeadFilter {
        endpoint: f.endpoint.clone(),
        reason: f.reason.clone(),
        since_ms,
        until_ms,
    })
}

fn bad_reason() -> ApiError {
    ApiError::bad_request(
        "INVALID_REASON",
        "reason must be 1-64 characters of A-Z 0-9 _",
    )
}

fn required_endpoint(f: DeadFilter) -> Result<DeadFilter, ApiError> {
    if f.endpoint.is_none() {
        return Err(ApiError::bad_request(
            "ENDPOINT_REQUIRED",
            "name the endpoint whose dead letters to act on",
        ));
    }
    Ok(f)
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn limit_of(v: Option<&str>) -> Result<usize, ApiError> {
    match v {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_LIMIT",
                    "limit must be a whole number from 1 to 1000",
                )
            }),
    }
}

fn cursor_of(v: Option<&str>, filter: &DeadFilter) -> Result<Option<Cursor>, ApiError> {
    match v {
        None => Ok(None),
        Some(text) => Cursor::decode(text, filter.endpoint.is_some())
            .map(Some)
            .map_err(|e| ApiError::bad_request("INVALID_CURSOR", e.to_string())),
    }
}
