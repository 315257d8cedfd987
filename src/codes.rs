//! The catalogue of every stable code Courier produces — API and ingress refusals, attempt
//! failures, dead-letter reasons and the CLI's own — each with its HTTP status (where one
//! applies), what it means and how to fix it. An API error without a more specific hint gets
//! its code's `fix` as the hint, so no refusal goes out without one.

/// Where a code shows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An answer of the admin/producer API.
    Api,
    /// An answer of the inbound webhook ingress.
    Ingress,
    /// Why a delivery attempt failed (`last_error.code`, the attempt log).
    Attempt,
    /// Why an event became a dead letter (`reason`).
    DeadLetter,
    /// Printed by the command-line client itself.
    Client,
    /// Why the daemon (or offline inspection) refused to start: printed on stderr.
    Start,
}

impl Kind {
    /// The kind as the API and `courier explain` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Ingress => "ingress",
            Kind::Attempt => "attempt",
            Kind::DeadLetter => "dead_letter",
            Kind::Client => "client",
            Kind::Start => "start",
        }
    }

    /// Every kind, in the catalogue's order.
    pub const ALL: [Kind; 6] = [
        Kind::Api,
        Kind::Ingress,
        Kind::Attempt,
        Kind::DeadLetter,
        Kind::Client,
        Kind::Start,
    ];
}

/// One code of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: &'static str,
    pub kind: Kind,
    /// The HTTP status of the answer, for API and ingress codes.
    pub http_status: Option<u16>,
    pub meaning: &'static str,
    pub fix: &'static str,
}

const fn entry(
    code: &'static str,
    kind: Kind,
    http_status: Option<u16>,
    meaning: &'static str,
    fix: &'static str,
) -> CodeInfo {
    CodeInfo {
        code,
        kind,
        http_status,
        meaning,
        fix,
    }
}

const fn api(
    code: &'static str,
    status: u16,
    meaning: &'static str,
    fix: &'static str,
) -> CodeInfo {
    entry(code, Kind::Api, Some(status), meaning, fix)
}

const fn ingress(
    code: &'static str,
    status: u16,
    meaning: &'static str,
    fix: &'static str,
) -> CodeInfo {
    entry(code, Kind::Ingress, Some(status), meaning, fix)
}

const fn other(
    code: &'static str,
    kind: Kind,
    meaning: &'static str,
    fix: &'static str,
) -> CodeInfo {
    entry(code, kind, None, meaning, fix)
}

/// Every code, grouped by kind. A code appears once.
pub const CATALOG: &[CodeInfo] = &[
    // ---- the admin/producer API ----
    api(
        "ENDPOINT_NOT_FOUND",
        404,
        "no endpoint has this id",
        "create it with PUT /v1/endpoints/{id} (courier endpoint add ID URL); list them with courier endpoint list",
    ),
    api(
        "UNKNOWN_ERROR_CODE",
        404,
        "the error catalogue has no such code",
        "list every code with GET /v1/errors (courier explain)",
    ),
    api(
        "DEAD_LETTER_NOT_FOUND",
        404,
        "no dead letter has this event id (it may have been replayed or purged)",
        "list dead letters with GET /v1/dead-letters (courier dlq list)",
    ),
    api(
        "CHANNEL_NOT_FOUND",
        404,
        "no ingress channel has this id",
        "create it with PUT /v1/channels/{id} (courier channel add ID ENDPOINT)",
    ),
    api(
        "ROUTE_NOT_FOUND",
        404,
        "no route has this path",
        "see the API summary in the README",
    ),
    api(
        "METHOD_NOT_ALLOWED",
        405,
        "the route exists but not with this method",
        "use one of the methods the message names",
    ),
    api(
        "INVALID_ENDPOINT_ID",
        400,
        "an endpoint id must be 1-64 characters of A-Z a-z 0-9 _ . - (and not . or ..)",
        "choose an id such as acme-chat",
    ),
    api(
        "INVALID_CHANNEL_ID",
        400,
        "a channel id must be 1-64 characters of A-Z a-z 0-9 _ . - (and not . or ..)",
        "choose an id such as cm_abc123",
    ),
    api(
        "INVALID_EVENT_ID",
        400,
        "event ids look like evt_ followed by 26 characters",
        "copy the id from the 202 answer or from GET /v1/dead-letters",
    ),
    api(
        "INVALID_JSON",
        400,
        "the request body is not the JSON this route takes",
        "fix the field the message names; the README's API table lists every field",
    ),
    api(
        "INVALID_BATCH",
        400,
        "a line of the NDJSON batch is malformed; nothing of the batch was accepted",
        r#"send one JSON object per line: {"endpoint": "acme", "body": {...}, "event_type": "..."}"#,
    ),
    api(
        "INVALID_HEADER",
        400,
        "Content-Type, X-Event-Type or Idempotency-Key is not printable ASCII or is too long",
        "send at most 256 printable ASCII characters",
    ),
    api(
        "INVALID_LIMIT",
        400,
        "limit is not a whole number from 1 to 1000",
        "pass ?limit=N with 1 <= N <= 1000",
    ),
    api(
        "INVALID_EVENT",
        400,
        "the event's metadata cannot be stored (too large)",
        "shorten Content-Type, X-Event-Type and Idempotency-Key",
    ),
    api(
        "BODY_READ_FAILED",
        400,
        "the request body could not be read (the client stopped sending)",
        "send the whole body, with a correct Content-Length",
    ),
    api(
        "HTTPS_REQUIRED",
        422,
        "endpoint URLs must use https://",
        "install a TLS certificate (or put nginx/Caddy in front); start courier with --allow-http only for local development",
    ),
    api(
        "INVALID_URL",
        422,
        "the URL is not an absolute https URL with a host",
        "give an absolute URL such as https://api.acme.io/happ/chat",
    ),
    api(
        "INVALID_TIMEOUT",
        422,
        "timeout is not a duration from 1ms to 10m",
        r#"write e.g. "5s" or "500ms""#,
    ),
    api(
        "INVALID_RETRY_SCHEDULE",
        422,
        "retry_schedule is not a list of at most 32 durations from 100ms to 24h",
        r#"write e.g. ["5s", "15s", "60s"], or [] for no retries"#,
    ),
    api(
        "INVALID_MAX_IN_FLIGHT",
        422,
        "max_in_flight is not 1-1000",
        "use 1 for strict order, more to deliver concurrently",
    ),
    api(
        "INVALID_SECRET",
        422,
        "the secret is empty or longer than 1024 bytes",
        "give 1-1024 bytes, or null to remove the secret",
    ),
    api(
        "INVALID_PASSWORD",
        422,
        "the password is empty, longer than 1024 bytes, or not printable ASCII",
        "give 1-1024 printable ASCII characters, or null to remove the password",
    ),
    api(
        "INVALID_RATE_LIMIT",
        422,
        "rate_limit or burst is outside 1-100000",
        "give requests a second from 1 to 100000",
    ),
    api(
        "PAYLOAD_TOO_LARGE",
        413,
        "the request body is larger than this route accepts",
        "send a smaller body; the message names the limit and the setting that controls it, if any",
    ),
    api(
        "ENDPOINT_NOT_EMPTY",
        409,
        "the endpoint still has undelivered events",
        "wait for the backlog to drain, or DELETE with ?force=true to dead-letter them (reason ENDPOINT_DELETED)",
    ),
    api(
        "IDEMPOTENCY_MISMATCH",
        409,
        "this Idempotency-Key was used within 24 h for a different request (body, Content-Type or X-Event-Type)",
        "use a new key for a new event; repeat a key only to retry exactly the same request",
    ),
    api(
        "NOT_REPLAYABLE",
        409,
        "this dead letter's stored record is corrupt, so it cannot be sent again",
        "inspect its raw bytes with GET /v1/dead-letters/{id} (payload_base64), re-send the event yourself if you can, then purge it",
    ),
    api(
        "STORAGE_FULL",
        507,
        "the data directory's disk is full, or the journal holds --max-journal-bytes of events and this endpoint holds more than its share; nothing of the request was applied",
        "free disk space (Courier recovers by itself; acknowledged events are safe), or let the endpoints named in the message drain (courier status), or raise --max-journal-bytes",
    ),
    api(
        "STORAGE_UNAVAILABLE",
        503,
        "the journal is reopening after an I/O error; nothing of the request was applied",
        "retry shortly; if it persists check the data directory and the daemon's log",
    ),
    api(
        "STORAGE_ERROR",
        503,
        "a journal commit failed; nothing of the request was applied",
        "retry shortly; if it persists check the data directory and the daemon's log",
    ),
    api(
        "STORAGE_CORRUPT",
        500,
        "a stored row (not an event record) failed its check",
        "report this with the daemon's log; the row is left in place for inspection",
    ),
    api(
        "SHUTTING_DOWN",
        503,
        "the daemon is stopping and accepts no new work",
        "retry against the restarted daemon; nothing acknowledged is lost",
    ),
    api(
        "INTERNAL",
        500,
        "a storage read failed unexpectedly",
        "retry; if it persists report it with the daemon's log",
    ),
    api(
        "UNAUTHORIZED",
        401,
        "a request on the TCP admin API came without a valid admin token (Authorization: Bearer), or no token is configured",
        "send Authorization: Bearer <token> with a token of the daemon's --admin-token-file or COURIER_ADMIN_TOKEN (courier --url URL --token-file FILE); if none is configured, configure one, or pass --listen-insecure for local development; the Unix socket needs no token",
    ),
    api(
        "READ_ONLY",
        409,
        "the journal is open read-only for offline inspection (--data-dir with the daemon stopped): only reads are served",
        "start the daemon (courier serve --data-dir DIR) and run the command without --data-dir",
    ),
    api(
        "ENDPOINT_NOT_DELIVERING",
        409,
        "the daemon does not deliver to this endpoint: its stored settings are unusable (the daemon's log says why)",
        "set the endpoint's URL and settings again with PUT /v1/endpoints/{id} (courier endpoint connect ID URL)",
    ),
    api(
        "INVALID_CURSOR",
        400,
        "cursor is not a next_cursor this daemon handed out for a walk of this kind (with or without an endpoint filter)",
        "pass the next_cursor of the previous page unchanged, with the same endpoint filter; leave it out to start from the oldest",
    ),
    api(
        "INVALID_TIME",
        400,
        "since or until is not an RFC 3339 timestamp (or since is not before until)",
        "write e.g. 2026-11-21T06:49:06Z or 2026-11-21T07:49:06.123+01:00; since is inclusive, until exclusive",
    ),
    api(
        "INVALID_REASON",
        400,
        "reason is not a dead-letter reason code (1-64 characters of A-Z 0-9 _)",
        "use a reason such as MAX_RETRIES_EXCEEDED, ENDPOINT_DELETED or RECORD_CORRUPT",
    ),
    api(
        "ENDPOINT_REQUIRED",
        400,
        "bulk replay and purge of dead letters act on one endpoint at a time, so the endpoint filter is required",
        "name the endpoint: ?endpoint=ID (purge) or {\"endpoint\": \"ID\"} (replay); courier dlq replay|purge --endpoint ID",
    ),
    api(
        "BACKLOG_FULL",
        429,
        "the endpoint holds as many undelivered events as its backlog limit allows (--max-backlog); nothing was accepted or dropped",
        "let the endpoint drain (courier endpoint show ID: is it down or paused?), or raise its max_backlog (courier endpoint set ID --max-backlog N) or --max-backlog; send the event again later",
    ),
    api(
        "RETENTION_EXCEEDED",
        422,
        "the back-fill window is older than every event the endpoint still retains: retention (--retention) removed those events",
        "back-fill from the time the message names (the oldest retained event) or later; keep events longer with --retention",
    ),
    api(
        "INVALID_MAX_BACKLOG",
        422,
        "max_backlog is not a whole number of events from 1 to 1,000,000,000",
        "give the endpoint's own limit, e.g. {\"max_backlog\": 10000}, or null to use the daemon's --max-backlog (courier endpoint set ID --max-backlog N|default)",
    ),
    api(
        "SINCE_REQUIRED",
        400,
        "a back-fill needs the start of its window: since is missing",
        "send {\"since\": \"2026-11-21T06:00:00Z\"} (and \"until\" to end the window before now); courier replay ID --since 2h",
    ),
    // ---- the ingress ----
    ingress(
        "RATE_LIMITED",
        429,
        "the channel's token bucket is empty",
        "queue on your side and send at an even pace; retry after the Retry-After seconds",
    ),
    ingress(
        "INVALID_PAYLOAD",
        422,
        "the incoming message is not the JSON the ingress takes",
        "send a JSON object with the required string fields sender_id and text (optional: sender_name, metadata object, attachments [{type, url}]) and Content-Type: application/json",
    ),
    ingress(
        "HMAC_MISMATCH",
        401,
        "X-HAPP-Signature is missing or does not match the body",
        "compute HMAC-SHA256 of the raw request body (not the URL) with the channel's secret and send it as X-HAPP-Signature: sha256=<hex>",
    ),
    ingress(
        "CHANNEL_TARGET_MISSING",
        503,
        "the channel points at an endpoint that no longer exists",
        "the operator must re-create the endpoint or re-point the channel",
    ),
    // ---- attempt failures ----
    other(
        "ETIMEDOUT",
        Kind::Attempt,
        "slow response: no complete answer within the endpoint's timeout (counted as a failure)",
        "reply 2xx at once and do the work afterwards, or raise the endpoint's timeout",
    ),
    other(
        "ECONNREFUSED",
        Kind::Attempt,
        "unreachable: nothing listens on the URL's port (connection refused)",
        "start the receiver, or fix the URL's host and port",
    ),
    other(
        "ECONNRESET",
        Kind::Attempt,
        "the connection was closed or reset mid-exchange",
        "check the receiver's and any proxy's logs and limits (body size, idle timeouts)",
    ),
    other(
        "DNS_ERROR",
        Kind::Attempt,
        "the URL's host name did not resolve",
        "fix the host name, or the resolver of the machine Courier runs on",
    ),
    other(
        "TLS_ERROR",
        Kind::Attempt,
        "the TLS handshake or certificate verification failed",
        "serve a certificate valid for the URL's host from a public CA, or pass its CA with --ca-file",
    ),
    other(
        "CONNECT_ERROR",
        Kind::Attempt,
        "the connection failed for another reason",
        "check that the host is reachable from Courier's machine",
    ),
    other(
        "PROTOCOL_ERROR",
        Kind::Attempt,
        "the answer is not HTTP/1.1 that Courier can read",
        "check that the URL points at an HTTP server",
    ),
    other(
        "HTTP_5XX",
        Kind::Attempt,
        "service down: the receiver answered 500-599",
        "check your service's logs; Courier is already retrying in the background and holds the backlog meanwhile",
    ),
    other(
        "HTTP_429",
        Kind::Attempt,
        "the receiver answered 429 Too Many Requests",
        "send Retry-After: <seconds> so Courier waits without using a retry, or raise the receiver's limit",
    ),
    other(
        "HTTP_4XX",
        Kind::Attempt,
        "the receiver rejected this event (400-499 other than 401, 403, 404 and 429)",
        "fix what the receiver refused (signature, schema, auth), then replay the dead letter",
    ),
    other(
        "HTTP_3XX",
        Kind::Attempt,
        "the receiver answered a redirect, which Courier does not follow",
        "point the endpoint at the final URL",
    ),
    other(
        "HTTP_401",
        Kind::Attempt,
        "wrong password: the receiver answered 401 Unauthorized (the password Courier sends as Authorization: Bearer does not match the one your service expects)",
        "give the endpoint the password your service expects (courier endpoint connect ID URL --password ...), then test it: courier endpoint test ID",
    ),
    other(
        "HTTP_403",
        Kind::Attempt,
        "forbidden: the receiver answered 403 (the password or token is not allowed, or the service refuses Courier's address)",
        "check the password on the endpoint and the receiver's access rules, then test it: courier endpoint test ID",
    ),
    other(
        "HTTP_404",
        Kind::Attempt,
        "URL not found: the receiver answered 404 (a wrong path, or the service is not deployed)",
        "check that the URL is right and the service deployed (open it in a browser), then test it: courier endpoint test ID",
    ),
    other(
        "CALL_NOT_SUPPORTED",
        Kind::Attempt,
        "this endpoint's destination kind cannot answer a synchronous call",
        "use POST /v1/endpoints/{id}/events to deliver through the queue instead",
    ),
    // ---- dead-letter reasons ----
    other(
        "MAX_RETRIES_EXCEEDED",
        Kind::DeadLetter,
        "every attempt of the retry schedule failed; last_error says why",
        "fix the cause named by last_error, then replay: courier dlq replay EVENT_ID",
    ),
    other(
        "ENDPOINT_DELETED",
        Kind::DeadLetter,
        "the endpoint was deleted with ?force=true while the event waited",
        "create the endpoint again with the same id, then replay",
    ),
    other(
        "RECORD_CORRUPT",
        Kind::DeadLetter,
        "the event's stored record failed its checksum; it was set aside so the endpoint could go on",
        "inspect the raw bytes (courier dlq show), re-send the event from its source if you can, then purge it; check the disk",
    ),
    // ---- the command-line client ----
    other(
        "DAEMON_CONNECTION_LOST",
        Kind::Client,
        "the connection to the daemon broke before its answer",
        "the request may or may not have taken effect; check before retrying",
    ),
    other(
        "DAEMON_TIMEOUT",
        Kind::Client,
        "the daemon did not answer within 60 s",
        "the daemon may be stopping or overloaded; check its log, then try again",
    ),
    // ---- refusals at start: the master key and the sealed rows ----
    other(
        "MASTER_KEY_MISSING",
        Kind::Start,
        "no master key where one was looked for (--master-key-file, COURIER_MASTER_KEY, the data dir's master.key), or it cannot be read; the journal's endpoints and channels are sealed under it",
        "point --master-key-file (or COURIER_MASTER_KEY) at the key, or restore master.key into the data dir from its backup; a lost key cannot be recovered",
    ),
    other(
        "MASTER_KEY_PERMISSIONS",
        Kind::Start,
        "the master key file is readable or writable by group or others",
        "make it owner-only: chmod 600 FILE (and check who could read it meanwhile)",
    ),
    other(
        "MASTER_KEY_INVALID",
        Kind::Start,
        "the master key file (or COURIER_MASTER_KEY) is not one base64 key of 32 bytes per line",
        "fix the named line; make a key with courier master-key generate",
    ),
    other(
        "MASTER_KEY_MISMATCH",
        Kind::Start,
        "a row of the journal is sealed under a master key not among those given (the message names the key id it needs)",
        "give the key the journal was sealed with (restore master.key from its backup; courier master-key ids FILE shows a file's key ids); without it the endpoints and channels cannot be read",
    ),
    other(
        "JOURNAL_ROW_CORRUPT",
        Kind::Start,
        "a stored endpoint or channel row failed its authentication check (a byte changed on disk, or the row was moved); it is never used",
        "restore the data dir from a backup, or delete the named endpoint or channel and create it again; check the disk",
    ),
];

/// The catalogue entry of a code.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CATALOG.iter().find(|c| c.code == code)
}

/// The entries a person may mean by `query`: the code itself (any case), else every code with
/// that HTTP status (`404`) together with the attempt code a receiver's answer with that status
/// gets, else every code containing the query.
pub fn search(query: &str) -> Vec<&'static CodeInfo> {
    let q = query.trim().to_ascii_uppercase();
    if let Some(c) = lookup(&q) {
        return vec![c];
    }
    if let Ok(status) = q.parse::<u16>() {
        let mut found: Vec<_> = CATALOG
            .iter()
            .filter(|c| c.http_status == Some(status))
            .collect();
        if (300..600).contains(&status) {
            let attempt = crate::core::retry::FailureKind::Http(status).code();
            found.extend(lookup(attempt));
        }
        return found;
    }
    if q.is_empty() {
        return Vec::new();
    }
    CATALOG.iter().filter(|c| c.code.contains(&q)).collect()
}

/// The catalogue as Markdown tables, one per kind: what the README shows (a test holds the two
/// equal; `courier explain --markdown` prints it).
pub fn markdown() -> String {
    let mut out = String::new();
    for kind in Kind::ALL {
        let title = match kind {
            Kind::Api => "Answers of the admin and producer API",
            Kind::Ingress => "Answers of the inbound webhook ingress",
            Kind::Attempt => "Why a delivery attempt failed (`last_error.code`, the attempt log)",
            Kind::DeadLetter => "Why an event became a dead letter (`reason`)",
            Kind::Client => "Printed by the command line itself",
            Kind::Start => "Why the daemon or offline inspection refused to start",
        };
        out.push_str(&format!("\n**{title}**\n\n"));
        let status = kind == Kind::Api || kind == Kind::Ingress;
        out.push_str(if status {
            "| code | status | meaning | fix |\n|---|---|---|---|\n"
        } else {
            "| code | meaning | fix |\n|---|---|---|\n"
        });
        for c in CATALOG.iter().filter(|c| c.kind == kind) {
            let cell = |t: &str| t.replace('|', "\\|");
            let status = c.http_status.map(|s| format!(" {s} |")).unwrap_or_default();
            out.push_str(&format!(
                "| `{}` |{status} {} | {} |\n",
                c.code,
                cell(c.meaning),
                cell(c.fix)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
