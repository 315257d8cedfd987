//! Records (and the scheduler's runtime view) into the types of [`crate::views`], the admin
//! API's JSON shapes. Never a secret: only whether one is set.

use std::time::Duration;

use crate::core::duration;
use crate::core::model::{AttemptRecord, ChannelRecord, DeadLetter, EndpointRecord, ErrorInfo};
use crate::core::timefmt::rfc3339;
use crate::scheduler::RuntimeView;
use crate::store::{EnqueueOk, StoredRecord};
use crate::views::{
    Accepted, AttemptView, ChannelView, DeadLetterDetail, DeadLetterView, EndpointView, ErrorView,
};

/// A failure with its hint, the catalogue's fix for its code.
pub fn error_view(e: &ErrorInfo) -> ErrorView {
    ErrorView {
        code: e.code.clone(),
        message: e.message.clone(),
        status: e.status,
        at: rfc3339(e.at_ms),
        hint: hint(&e.code),
    }
}

/// The catalogue's fix for a code.
pub fn hint(code: &str) -> Option<String> {
    crate::codes::lookup(code).map(|c| c.fix.to_string())
}

/// The endpoint view: configuration (never secrets) plus runtime state (`rt`, when the
/// scheduler knows the endpoint; else from the record). `stored_oldest` is when the oldest
/// waiting event was accepted, as the journal says, for an endpoint the scheduler does not
/// know (offline inspection). `default_backlog` is the daemon's `--max-backlog`, the limit of
/// an endpoint without one of its own.
pub fn endpoint_view(
    rec: &EndpointRecord,
    rt: Option<&RuntimeView>,
    stored_oldest: Option<u64>,
    default_backlog: u64,
) -> EndpointView {
    let now = crate::core::timefmt::now_ms();
    endpoint_view_at(rec, rt, stored_oldest, default_backlog, now)
}

/// [`endpoint_view`] as seen at `now_ms` (the oldest waiting event's age is counted to it).
pub fn endpoint_view_at(
    rec: &EndpointRecord,
    rt: Option<&RuntimeView>,
    stored_oldest: Option<u64>,
    default_backlog: u64,
    now_ms: u64,
) -> EndpointView {
    let oldest = match rt {
        Some(v) => v.oldest_event_ms,
        None => stored_oldest,
    };
    let c = &rec.config;
    let state = match rt {
        Some(v) => v.state,
        None if rec.paused => "paused",
        // A down endpoint stays down across restarts (and offline, with no scheduler).
        None if rec.down => "down",
        None => "active",
    };
    EndpointView {
        id: rec.id.clone(),
        url: c.url.clone(),
        secret_set: c.secret.is_some(),
        password_set: c.password.is_some(),
        timeout: duration::format(Duration::from_millis(c.timeout_ms)),
        retry_schedule: c
            .retry_schedule_ms
            .iter()
            .map(|ms| duration::format(Duration::from_millis(*ms)))
            .collect(),
        max_in_flight: c.max_in_flight,
        state: state.to_string(),
        backlog: rt.map(|v| v.backlog).unwrap_or(rec.pending),
        in_flight: rt.map(|v| v.in_flight).unwrap_or(0),
        // The scheduler's is the newest; the record's survives a restart.
        last_error: rt
            .and_then(|v| v.last_error.as_ref())
            .or(rec.last_error.as_ref())
            .map(error_view),
        created_at: rfc3339(rec.created_ms),
        updated_at: rfc3339(rec.updated_ms),
        connected_at: rec.connected_at_ms.map(rfc3339),
        state_since: rec.state_since_ms.map(rfc3339),
        next_attempt_at: rt.and_then(|v| v.next_attempt_ms).map(rfc3339),
        oldest_event_at: oldest.map(rfc3339),
        oldest_event_age_secs: oldest.map(|ms| now_ms.saturating_sub(ms) / 1000),
        max_backlog: Some(c.max_backlog.unwrap_or(default_backlog)),
        max_backlog_own: c.max_backlog.is_some(),
        extra: Default::default(),
    }
}

pub fn attempt_view(a: &AttemptRecord) -> AttemptView {
    AttemptView {
        event_id: a.event_id.clone(),
        seq: a.seq,
        attempt: a.attempt,
        started_at: rfc3339(a.started_ms),
        status: a.status,
        latency_ms: a.latency_ms,
        error: a.error.clone(),
        message: a.message.clone(),
        kind: a.kind.as_str().to_string(),
        answer: a.answer.clone(),
        repeats: a.repeats,
        last_at: (a.repeats > 0).then(|| rfc3339(a.last_ms)),
    }
}

pub fn dead_letter_view(d: &DeadLetter) -> DeadLetterView {
    DeadLetterView {
        id: d.event_id.clone(),
        endpoint: d.endpoint.clone(),
        seq: d.seq,
        reason: d.reason.clone(),
        attempts: d.progress.attempts,
        last_error: d.progress.last_error.as_ref().map(error_view),
        dead_at: rfc3339(d.dead_at_ms),
    }
}

/// A dead letter with its event and history. A body that is not UTF-8 is shown in base64; a
/// record that failed its check is shown raw (header, metadata, body), trusting nothing of it.
pub fn dead_letter_detail(d: &DeadLetter, rec: &StoredRecord) -> DeadLetterDetail {
    let summary = dead_letter_view(d);
    let history = d.progress.history.iter().map(attempt_view).collect();
    match rec {
        StoredRecord::Intact(rec) => {
            let (payload, payload_base64) = match std::str::from_utf8(&rec.body) {
                Ok(s) => (Some(s.to_string()), None),
                Err(_) => (None, Some(super::http::to_base64(&rec.body))),
            };
            DeadLetterDetail {
                summary,
                content_type: Some(rec.meta.content_type.clone()),
                event_type: rec.meta.event_type.clone(),
                enqueued_at: Some(rfc3339(rec.meta.enqueued_at_ms)),
                payload,
                payload_base64,
                record_error: None,
                history,
                extra: Default::default(),
            }
        }
        StoredRecord::Corrupt { raw, why } => DeadLetterDetail {
            summary,
            content_type: None,
            event_type: None,
            enqueued_at: None,
            payload: None,
            payload_base64: Some(super::http::to_base64(raw)),
            record_error: Some(why.clone()),
            history,
            extra: Default::default(),
        },
    }
}

/// The channel view (never the secret).
pub fn channel_view(r: &ChannelRecord) -> ChannelView {
    ChannelView {
        id: r.id.clone(),
        endpoint: r.config.endpoint.clone(),
        secret_set: r.config.secret.is_some(),
        rate_limit: r.config.rate_limit,
        burst: r.config.burst,
        webhook_path: format!("/webhook/{}", r.id),
        created_at: rfc3339(r.created_ms),
        updated_at: rfc3339(r.updated_ms),
    }
}

/// An accepted event of `endpoint`; with `hint` for a duplicate answered alone (the batch's
/// items carry no hint).
pub fn accepted(ok: EnqueueOk, endpoint: String, hint: Option<&str>) -> Accepted {
    Accepted {
        hint: hint.filter(|_| ok.duplicate).map(str::to_string),
        id: ok.id,
        seq: ok.seq,
        endpoint,
        duplicate: ok.duplicate,
    }
}

#[cfg(test)]
mod tests;
