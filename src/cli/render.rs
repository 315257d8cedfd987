//! The CLI's human output: tables, `key: value` lines, confirmation lines and error text, as
//! pure functions of the views (no I/O).

use std::fmt::Write as _;

mod status;
pub use status::render_status;

use crate::client::ApiError;
use crate::views::{
    Accepted, AttemptView, CallResult, ChannelView, DeadLetterDetail, DeadLetterView, EndpointView,
    ErrorView, Replayed, TestResult,
};

/// Longest excerpt of an unexpected answer body shown in an error message.
const EXCERPT_CHARS: usize = 200;
/// Longest error text shown inside a table cell (full text is in `show` and `--json`).
const TABLE_ERROR_CHARS: usize = 60;
/// Longest answer snippet shown inside a table cell (256 bytes are in `--json`).
const TABLE_ANSWER_CHARS: usize = 40;

/// Replaces control characters (newlines included) so a value stays on one line.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An optional value as display text, `-` when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// An optional string on one line, `-` when absent.
fn opt_str(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_owned(), one_line)
}

/// A list as `a, b, c`; `(none)` when empty.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items
            .iter()
            .map(|i| one_line(i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn set(flag: bool) -> &'static str {
    if flag { "set" } else { "not set" }
}

/// `CODE (status) message`; `-` when there is none.
pub fn format_last_error(e: Option<&ErrorView>) -> String {
    let Some(e) = e else {
        return "-".to_owned();
    };
    let mut parts = vec![one_line(&e.code)];
    if let Some(status) = e.status {
        parts.push(format!("({status})"));
    }
    if !e.message.is_empty() {
        parts.push(one_line(&e.message));
    }
    parts.join(" ")
}

/// An attempt's `error` code and `message` as `CODE message`; `-` when neither is set.
pub fn format_attempt_error(a: &AttemptView) -> String {
    let code = a.error.as_deref().filter(|s| !s.is_empty());
    let msg = a.message.as_deref().filter(|s| !s.is_empty());
    match (code, msg) {
        (Some(c), Some(m)) => format!("{} {}", one_line(c), one_line(m)),
        (Some(c), None) => one_line(c),
        (None, Some(m)) => one_line(m),
        (None, None) => "-".to_owned(),
    }
}

/// What an attempt-log entry of repeated probe failures adds to its error: ` (repeated N
/// times, last at T)`; empty for any other entry.
pub fn repeat_note(a: &AttemptView) -> String {
    match (a.repeats, a.last_at.as_deref()) {
        (0, _) => String::new(),
        (1, last) => format!(" (repeated once, last at {})", opt_str(last)),
        (n, last) => format!(" (repeated {n} times, last at {})", opt_str(last)),
    }
}

/// Left-aligned columns separated by two spaces; no trailing spaces.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render_endpoint_table(endpoints: &[EndpointView]) -> String {
    let rows: Vec<Vec<String>> = endpoints
        .iter()
        .map(|e| {
            vec![
                one_line(&e.id),
                one_line(&e.state),
                e.backlog.to_string(),
                e.in_flight.to_string(),
                one_line(&e.url),
                format_last_error(e.last_error.as_ref()),
            ]
        })
        .collect();
    render_table(
        &["ID", "STATE", "BACKLOG", "IN_FLIGHT", "URL", "LAST_ERROR"],
        &rows,
    )
}

pub fn render_dead_letter_table(items: &[DeadLetterView]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            vec![
                one_line(&d.id),
                one_line(&d.endpoint),
                d.seq.to_string(),
                one_line(&d.reason),
                d.attempts.to_string(),
                clip(&format_last_error(d.last_error.as_ref()), TABLE_ERROR_CHARS),
                one_line(&d.dead_at),
            ]
        })
        .collect();
    render_table(
        &[
            "EVENT_ID",
            "ENDPOINT",
            "SEQ",
            "REASON",
            "ATTEMPTS",
            "LAST_ERROR",
            "DEAD_AT",
        ],
        &rows,
    )
}

/// Attempts table; `with_event` adds EVENT_ID and SEQ (left out for one event's history).
pub fn render_attempt_table(attempts: &[AttemptView], with_event: bool) -> String {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            let mut row = Vec::with_capacity(7);
            if with_event {
                row.push(one_line(&a.event_id));
                row.push(a.seq.to_string());
            }
            row.push(a.attempt.to_string());
            row.push(one_line(&a.started_at));
            row.push(opt(a.status));
            row.push(a.latency_ms.to_string());
            row.push(format_attempt_error(a) + &repeat_note(a));
            row
        })
        .collect();
    let mut headers = Vec::with_capacity(7);
    if with_event {
        headers.extend(["EVENT_ID", "SEQ"]);
    }
    headers.extend(["ATTEMPT", "STARTED_AT", "STATUS", "LATENCY_MS", "ERROR"]);
    render_table(&headers, &rows)
}

pub fn render_channel_table(channels: &[ChannelView]) -> String {
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            vec![
                one_line(&c.id),
                one_line(&c.endpoint),
                c.rate_limit.to_string(),
                c.burst.to_string(),
                if c.secret_set { "yes" } else { "no" }.to_owned(),
                one_line(&c.webhook_path),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "ENDPOINT",
            "RATE_LIMIT",
            "BURST",
            "SIGNED",
            "WEBHOOK_PATH",
        ],
        &rows,
    )
}

/// `last_error: CODE (status) message at TIME`, or `-`.
fn last_error_line(out: &mut String, e: Option<&ErrorView>) {
    let mut text = format_last_error(e);
    if let Some(e) = e {
        let _ = write!(text, " at {}", e.at);
    }
    let _ = writeln!(out, "last_error: {text}");
}

/// One endpoint view as `key: value` lines.
pub fn render_endpoint(v: &EndpointView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "id: {}", one_line(&v.id));
    let _ = writeln!(out, "url: {}", one_line(&v.url));
    let _ = writeln!(out, "state: {}", one_line(&v.state));
    let _ = writeln!(out, "backlog: {}", v.backlog);
    let _ = writeln!(out, "in_flight: {}", v.in_flight);
    let _ = writeln!(out, "max_in_flight: {}", v.max_in_flight);
    if let Some(line) = max_backlog(v) {
        let _ = writeln!(out, "max_backlog: {line}");
    }
    let _ = writeln!(out, "timeout: {}", one_line(&v.timeout));
    let _ = writeln!(out, "retry_schedule: {}", list(&v.retry_schedule));
    let _ = writeln!(out, "secret: {}", set(v.secret_set));
    let _ = writeln!(out, "password: {}", set(v.password_set));
    last_error_line(&mut out, v.last_error.as_ref());
    let _ = writeln!(out, "created_at: {}", one_line(&v.created_at));
    let _ = writeln!(out, "updated_at: {}", one_line(&v.updated_at));
    extra_lines(&mut out, &v.extra);
    out
}

/// `3 (its own)` or `1000000 (the daemon's --max-backlog)`; `None` from a daemon before
/// backlog limits.
fn max_backlog(v: &EndpointView) -> Option<String> {
    let n = v.max_backlog?;
    let whose = if v.max_backlog_own {
        "its own"
    } else {
        "the daemon's --max-backlog"
    };
    Some(format!("{n} ({whose})"))
}

/// Fields of a newer daemon that this build does not know, after the known ones, by name.
fn extra_lines(out: &mut String, extra: &std::collections::BTreeMap<String, serde_json::Value>) {
    for (key, v) in extra {
        let _ = writeln!(out, "{}: {}", one_line(key), scalar(v));
    }
}

/// A JSON value on one line: `-` for null, lists of scalars joined with `, `.
fn scalar(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => one_line(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            if items.is_empty() {
                "(none)".to_owned()
            } else {
                items.iter().map(scalar).collect::<Vec<_>>().join(", ")
            }
        }
        other => one_line(&other.to_string()),
    }
}

/// One channel view as `key: value` lines.
pub fn render_channel(v: &ChannelView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "id: {}", one_line(&v.id));
    let _ = writeln!(out, "endpoint: {}", one_line(&v.endpoint));
    let _ = writeln!(out, "rate_limit: {}", v.rate_limit);
    let _ = writeln!(out, "burst: {}", v.burst);
    let _ = writeln!(out, "webhook_path: {}", one_line(&v.webhook_path));
    let _ = writeln!(out, "created_at: {}", one_line(&v.created_at));
    let _ = writeln!(out, "updated_at: {}", one_line(&v.updated_at));
    let _ = writeln!(out, "secret: {}", set(v.secret_set));
    out
}

/// One dead letter as `key: value` lines, its history as a table, the payload last.
pub fn render_dead_letter(v: &DeadLetterDetail) -> String {
    let s = &v.summary;
    let mut out = String::new();
    let _ = writeln!(out, "id: {}", one_line(&s.id));
    let _ = writeln!(out, "endpoint: {}", one_line(&s.endpoint));
    let _ = writeln!(out, "seq: {}", s.seq);
    let _ = writeln!(out, "reason: {}", one_line(&s.reason));
    let _ = writeln!(out, "attempts: {}", s.attempts);
    last_error_line(&mut out, s.last_error.as_ref());
    let _ = writeln!(out, "dead_at: {}", one_line(&s.dead_at));
    let _ = writeln!(out, "content_type: {}", opt_str(v.content_type.as_deref()));
    let _ = writeln!(out, "event_type: {}", opt_str(v.event_type.as_deref()));
    let _ = writeln!(out, "enqueued_at: {}", opt_str(v.enqueued_at.as_deref()));
    if let Some(why) = &v.record_error {
        let _ = writeln!(out, "record_error: {}", one_line(why));
    }
    extra_lines(&mut out, &v.extra);
    if v.history.is_empty() {
        out.push_str("history: (none)\n");
    } else {
        out.push_str("history:\n");
        for line in render_attempt_table(&v.history, false).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(payload) = &v.payload {
        out.push_str("payload:\n");
        out.push_str(&printable_payload(payload));
        if !payload.ends_with('\n') {
            out.push('\n');
        }
    } else if let Some(b64) = &v.payload_base64 {
        out.push_str("payload_base64:\n");
        out.push_str(&one_line(b64));
        out.push('\n');
    } else {
        out.push_str("payload: -\n");
    }
    out
}

/// `endpoint show`: one screen for an operator — state and since when, whether it is
/// connected, backlog, what is due next, the last error with its hint, the settings, and the
/// newest attempts with the receiver's answers.
pub fn endpoint_screen(v: &EndpointView, recent: &[AttemptView]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "id: {}", one_line(&v.id));
    let _ = writeln!(out, "url: {}", one_line(&v.url));
    let since = v
        .state_since
        .as_deref()
        .map_or_else(String::new, |t| format!(" since {}", one_line(t)));
    let _ = writeln!(out, "state: {}{since}", one_line(&v.state));
    let _ = writeln!(
        out,
        "connected: {}",
        v.connected_at.as_deref().map_or_else(
            || "never since the URL was set (courier endpoint test ID)".to_owned(),
            |t| format!("yes, last 2xx at {}", one_line(t))
        )
    );
    let oldest = match (v.oldest_event_age_secs, v.oldest_event_at.as_deref()) {
        (Some(age), Some(at)) => format!(
            ", the oldest accepted {} ago ({})",
            status::human_secs(age),
            one_line(at)
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "backlog: {} waiting ({} in flight){oldest}",
        v.backlog, v.in_flight
    );
    let next = match (v.next_attempt_at.as_deref(), v.state.as_str()) {
        (None, _) => "-".to_owned(),
        (Some(t), "down") => format!("probe at {}", one_line(t)),
        (Some(t), _) => format!("retry at {}", one_line(t)),
    };
    let _ = writeln!(out, "next_attempt: {next}");
    last_error_line(&mut out, v.last_error.as_ref());
    if let Some(hint) = v.last_error.as_ref().and_then(|e| e.hint.as_deref()) {
        let _ = writeln!(out, "hint: {}", one_line(hint));
    }
    let _ = writeln!(
        out,
        "settings: timeout {}, retry_schedule {}, max_in_flight {}, secret {}, password {}",
        one_line(&v.timeout),
        list(&v.retry_schedule),
        v.max_in_flight,
        set(v.secret_set),
        set(v.password_set)
    );
    if let Some(line) = max_backlog(v) {
        let _ = writeln!(out, "max_backlog: {line}");
    }
    let _ = writeln!(out, "created_at: {}", one_line(&v.created_at));
    let _ = writeln!(out, "updated_at: {}", one_line(&v.updated_at));
    extra_lines(&mut out, &v.extra);
    if recent.is_empty() {
        out.push_str("recent attempts: (none)\n");
    } else {
        out.push_str("recent attempts:\n");
        for line in recent_attempt_table(recent).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// The newest attempts of an endpoint with their kind and the start of the receiver's answer.
pub fn recent_attempt_table(attempts: &[AttemptView]) -> String {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            vec![
                one_line(&a.kind),
                one_line(&a.started_at),
                one_line(&a.event_id),
                a.attempt.to_string(),
                opt(a.status),
                a.latency_ms.to_string(),
                clip(&format_attempt_error(a), TABLE_ERROR_CHARS) + &repeat_note(a),
                a.answer.as_deref().map_or_else(
                    || "-".to_owned(),
                    |t| clip(&one_line(t), TABLE_ANSWER_CHARS),
                ),
            ]
        })
        .collect();
    render_table(
        &[
            "KIND",
            "STARTED_AT",
            "EVENT_ID",
            "ATTEMPT",
            "STATUS",
            "LATENCY_MS",
            "ERROR",
            "ANSWER",
        ],
        &rows,
    )
}

/// `endpoint test` / `connect`: `Connected` with the latency, or what failed (its code and
/// hint go to stderr with the exit code).
pub fn test_result(id: &str, r: &TestResult) -> String {
    let status = r.status.map_or_else(String::new, |s| format!(", HTTP {s}"));
    if r.connected {
        format!(
            "Connected: endpoint {} answered in {} ms{status}\n",
            one_line(id),
            r.latency_ms
        )
    } else {
        format!(
            "Not connected: endpoint {} after {} ms{status}\n",
            one_line(id),
            r.latency_ms
        )
    }
}

/// `endpoint call`: the status line, then the answer (JSON pretty-printed, text as it is).
pub fn call_result(r: &CallResult) -> String {
    let mut out = format!(
        "{} in {} ms",
        r.status
            .map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}")),
        r.latency_ms
    );
    if let Some(ct) = &r.content_type {
        let _ = write!(out, " ({})", one_line(ct));
    }
    if r.truncated {
        out.push_str(", answer cut at 1 MiB");
    }
    out.push('\n');
    let body = match (&r.body, r.body_encoding.as_str()) {
        (serde_json::Value::Null, _) => String::new(),
        (serde_json::Value::String(s), "base64") => format!("base64: {}", one_line(s)),
        (serde_json::Value::String(s), _) => printable_payload(s),
        (v, _) => serde_json::to_string_pretty(v).unwrap_or_default(),
    };
    if !body.is_empty() {
        out.push_str(&body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Keeps line structure but neutralizes terminal control sequences in a payload.
fn printable_payload(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `created endpoint ID` / `updated endpoint ID`, then the view.
pub fn saved_endpoint(id: &str, created: bool, v: &EndpointView) -> String {
    format!("{} endpoint {id}\n{}", verb(created), render_endpoint(v))
}

/// `created channel ID` / `updated channel ID`, then the view.
pub fn saved_channel(id: &str, created: bool, v: &ChannelView) -> String {
    format!("{} channel {id}\n{}", verb(created), render_channel(v))
}

fn verb(created: bool) -> &'static str {
    if created { "created" } else { "updated" }
}

pub fn state_line(verb: &str, id: &str, v: &EndpointView) -> String {
    format!(
        "{verb} endpoint {id} (state {}, backlog {})\n",
        one_line(&v.state),
        v.backlog
    )
}

pub fn accepted_line(v: &Accepted) -> String {
    let mut line = format!("accepted {} seq {}", one_line(&v.id), v.seq);
    if v.duplicate {
        line.push_str(" (duplicate: this Idempotency-Key was already accepted)");
    }
    line.push('\n');
    line
}

pub fn replay_line(v: &Replayed) -> String {
    format!(
        "replayed {} (endpoint {}, seq {})\n",
        one_line(&v.id),
        one_line(&v.endpoint),
        v.seq
    )
}

/// `error: CODE: message` (+ `hint: ...`) for the API's error shape, else a body excerpt.
pub fn render_api_error(e: &ApiError) -> String {
    match &e.error {
        Some(d) => {
            let mut out = format!("error: {}: {}\n", one_line(&d.code), one_line(&d.message));
            if let Some(hint) = d.hint.as_deref().filter(|h| !h.is_empty()) {
                let _ = writeln!(out, "hint: {}", one_line(hint));
            }
            out
        }
        None => format!("error: HTTP {}: {}\n", e.status, excerpt(&e.body)),
    }
}

/// A body as one clipped line, `(empty body)` when blank.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = one_line(text.trim());
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        clip(&text, EXCERPT_CHARS)
    }
}

#[cfg(test)]
mod tests;
