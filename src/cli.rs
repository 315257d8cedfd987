//! Client side of the `courier` command line: the `endpoint`, `send`, `channel` and `dlq`
//! subcommands, which talk to a running daemon over its Unix socket (HTTP/1.1) and render its
//! answers as tables, `key: value` lines or (`--json`) pretty JSON. It owns argument definitions
//! for those commands, the socket client, output rendering and the mapping of failures to exit
//! codes: 0 success, 1 the daemon refused or answered badly, 2 bad local input, 69 daemon
//! unreachable.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};

/// Exit code for a refusal or a malformed answer from the daemon.
const EXIT_API: i32 = 1;
/// Exit code for bad local input (unreadable file, bad argument value).
const EXIT_USAGE: i32 = 2;
/// Exit code when the daemon cannot be reached (sysexits `EX_UNAVAILABLE`).
const EXIT_UNAVAILABLE: i32 = 69;

/// How long one request (after connecting) may take before the CLI gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest excerpt of an unexpected answer body shown in an error message.
const EXCERPT_CHARS: usize = 200;
/// Longest error text shown inside a table cell (full text is in `show` and `--json`).
const TABLE_ERROR_CHARS: usize = 60;

const HINT_UNREACHABLE: &str =
    "is 'courier serve' running? pass --socket PATH or set COURIER_SOCKET";
const HINT_RETRY_READ: &str = "the daemon may be stopping or overloaded; try again";
const HINT_UNKNOWN_OUTCOME: &str =
    "the request may or may not have taken effect; check before retrying";
const HINT_UNKNOWN_SEND: &str = "the event may or may not have been accepted; retry with the \
     same --idempotency-key to avoid a duplicate";

/// Options shared by all client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOpts {
    /// Daemon's Unix socket.
    #[arg(
        long,
        global = true,
        env = "COURIER_SOCKET",
        default_value = "./courier.sock"
    )]
    pub socket: PathBuf,
    /// Print the daemon's JSON answers instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Manage delivery endpoints (destinations).
#[derive(clap::Subcommand, Debug)]
pub enum EndpointCmd {
    /// Create or update an endpoint.
    ///
    /// On update every option left out keeps its current value (the defaults below apply only
    /// to a new endpoint); a secret or password is removed only by --clear-secret /
    /// --clear-password.
    Add {
        /// Endpoint id: 1-64 characters of A-Z a-z 0-9 _ . - (not . or ..)
        id: String,
        /// Destination URL (https://; http:// only if the daemon runs with --allow-http).
        url: String,
        /// HMAC-SHA256 key deliveries are signed with, sent as X-HAPP-Signature (visible in
        /// `ps`; prefer --secret-file).
        #[arg(long, value_name = "S", conflicts_with = "secret_file")]
        secret: Option<String>,
        /// Read the signing key from a file (trailing newline trimmed).
        #[arg(long, value_name = "PATH")]
        secret_file: Option<PathBuf>,
        /// Remove the signing key: deliveries are no longer signed.
        #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
        clear_secret: bool,
        /// Password sent to the receiver as Authorization: Bearer (visible in `ps`; prefer
        /// --password-file).
        #[arg(long, value_name = "P", conflicts_with = "password_file")]
        password: Option<String>,
        /// Read the bearer password from a file (trailing newline trimmed).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
        /// Remove the password: deliveries no longer carry an Authorization header.
        #[arg(long, conflicts_with_all = ["password", "password_file"])]
        clear_password: bool,
        /// Time limit of one delivery attempt, from connecting to the end of the answer, at
        /// most 10m; e.g. 5s, 500ms, 1m [new endpoint: 5s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
        /// Comma-separated waits before each retry, 100ms-24h each, at most 32 ("" for no
        /// retries) [new endpoint: 5s,15s,60s].
        #[arg(long, value_name = "LIST")]
        retry_schedule: Option<String>,
        /// Events delivered concurrently, 1-1000 (1 keeps strict order) [new endpoint: 1].
        #[arg(long, value_name = "N")]
        max_in_flight: Option<u32>,
    },
    /// List endpoints with their state and backlog.
    List,
    /// Show one endpoint.
    Show {
        /// Endpoint id.
        id: String,
    },
    /// Stop delivering to an endpoint (events are still accepted and held in order).
    ///
    /// No new attempt is started; one already under way finishes.
    Pause {
        /// Endpoint id.
        id: String,
    },
    /// Resume delivery; held events drain in order.
    Resume {
        /// Endpoint id.
        id: String,
    },
    /// Delete an endpoint with its attempt log (refused while events are waiting, unless
    /// --force).
    Remove {
        /// Endpoint id.
        id: String,
        /// Delete even if events are still waiting: they become dead letters with reason
        /// ENDPOINT_DELETED, which can be replayed once an endpoint with the same id is
        /// created again.
        #[arg(long)]
        force: bool,
    },
    /// Show an endpoint's newest delivery attempts.
    Attempts {
        /// Endpoint id.
        id: String,
        /// How many attempts to show, newest first (1-1000; the newest 1000 are kept).
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
    },
}

/// Inspect, replay and purge dead letters.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCmd {
    /// List dead letters, oldest event first.
    List {
        /// Only dead letters of this endpoint.
        #[arg(long, value_name = "ID")]
        endpoint: Option<String>,
    },
    /// Show one dead letter with its attempt history and payload.
    Show {
        /// Event id (evt_...).
        event_id: String,
    },
    /// Put a dead letter back in its endpoint's queue at its original place.
    ///
    /// It keeps its event id, its attempt numbers continue and its retry schedule starts
    /// afresh. The endpoint must exist: re-create a deleted one with the same id first.
    Replay {
        /// Event id (evt_...).
        event_id: String,
    },
    /// Delete a dead letter for good.
    Purge {
        /// Event id (evt_...).
        event_id: String,
    },
}

/// Enqueue one event for an endpoint.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// Endpoint id.
    pub endpoint: String,
    /// File holding the payload, sent byte for byte; "-" or absent reads stdin (absent only
    /// when stdin is not a terminal).
    pub file: Option<PathBuf>,
    /// Event type, delivered as X-HAPP-Event.
    #[arg(long, value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Content-Type of the payload.
    #[arg(long, value_name = "MIME", default_value = "application/json")]
    pub content_type: String,
    /// Key making retries of this send safe: the same key to the same endpoint within 24 h is
    /// not enqueued again (the original event is answered); with a different payload, event
    /// type or content type it is refused (IDEMPOTENCY_MISMATCH).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// Manage inbound webhook channels (the ingress).
#[derive(clap::Subcommand, Debug)]
pub enum ChannelCmd {
    /// Create or update a channel: incoming webhooks on /webhook/ID go to ENDPOINT.
    ///
    /// On update every option left out keeps its current value (the defaults below apply only
    /// to a new channel); the secret is removed only by --clear-secret.
    Add {
        /// Channel id: 1-64 characters of A-Z a-z 0-9 _ . - (not . or ..)
        id: String,
        /// The endpoint accepted messages are enqueued to (it must exist).
        endpoint: String,
        /// HMAC-SHA256 key incoming requests must be signed with, as X-HAPP-Signature
        /// (visible in `ps`; prefer --secret-file).
        #[arg(long, value_name = "S", conflicts_with = "secret_file")]
        secret: Option<String>,
        /// Read the secret from a file (trailing newline trimmed).
        #[arg(long, value_name = "PATH")]
        secret_file: Option<PathBuf>,
        /// Remove the secret: incoming requests are no longer checked for a signature.
        #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
        clear_secret: bool,
        /// Requests a second, 1-100000 [new channel: 100].
        #[arg(long, value_name = "N")]
        rate_limit: Option<u32>,
        /// Requests accepted in a burst, 1-100000 [new channel: the rate].
        #[arg(long, value_name = "N")]
        burst: Option<u32>,
    },
    /// List channels.
    List,
    /// Show one channel.
    Show {
        /// Channel id.
        id: String,
    },
    /// Delete a channel.
    Remove {
        /// Channel id.
        id: String,
    },
}

/// Runs a `channel` subcommand; returns the process exit code.
pub async fn channel(opts: &ClientOpts, cmd: ChannelCmd) -> i32 {
    finish(run_channel(opts, cmd).await)
}

async fn run_channel(opts: &ClientOpts, cmd: ChannelCmd) -> Result<(), Failure> {
    let path = |id: &str| format!("/v1/channels/{}", encode_segment(id));
    match cmd {
        ChannelCmd::Add {
            id,
            endpoint,
            secret,
            secret_file,
            clear_secret,
            rate_limit,
            burst,
        } => {
            let secret = resolve_credential(secret, secret_file.as_deref(), "secret").await?;
            let body = channel_body(ChannelFields {
                endpoint,
                secret: Credential::from_args(secret, clear_secret),
                rate_limit,
                burst,
            });
            let body = serde_json::to_vec(&body)
                .map_err(|e| Failure::Input(format!("cannot encode request: {e}")))?;
            let call = Call::new(Method::PUT, path(&id))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
            let answer = request(opts, call).await?;
            let verb = if answer.status == StatusCode::CREATED {
                "created"
            } else {
                "updated"
            };
            output(opts, &answer, |v| {
                Ok(format!("{verb} channel {id}\n{}", render_channel(v)))
            })
        }
        ChannelCmd::List => {
            let answer = request(opts, Call::new(Method::GET, "/v1/channels".into())).await?;
            output(opts, &answer, |v| {
                let rows: Vec<Vec<String>> = list_field(v, "channels")?
                    .iter()
                    .map(|c| {
                        vec![
                            field(c, "id"),
                            field(c, "endpoint"),
                            field(c, "rate_limit"),
                            field(c, "burst"),
                            if c["secret_set"] == Value::Bool(true) {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                            field(c, "webhook_path"),
                        ]
                    })
                    .collect();
                Ok(render_table(
                    &[
                        "ID",
                        "ENDPOINT",
                        "RATE_LIMIT",
                        "BURST",
                        "SIGNED",
                        "WEBHOOK_PATH",
                    ],
                    &rows,
                ))
            })
        }
        ChannelCmd::Show { id } => {
            let answer = request(opts, Call::new(Method::GET, path(&id))).await?;
            output(opts, &answer, |v| Ok(render_channel(v)))
        }
        ChannelCmd::Remove { id } => {
            let answer = request(opts, Call::new(Method::DELETE, path(&id))).await?;
            output(opts, &answer, |_| Ok(format!("removed channel {id}\n")))
        }
    }
}

fn render_channel(v: &Value) -> String {
    let mut out = String::new();
    for key in [
        "id",
        "endpoint",
        "rate_limit",
        "burst",
        "webhook_path",
        "created_at",
        "updated_at",
    ] {
        out.push_str(&format!("{key}: {}\n", field(v, key)));
    }
    let signed = if v["secret_set"] == Value::Bool(true) {
        "set"
    } else {
        "not set"
    };
    out.push_str(&format!("secret: {signed}\n"));
    out
}

/// Runs an `endpoint` subcommand; returns the process exit code.
pub async fn endpoint(opts: &ClientOpts, cmd: EndpointCmd) -> i32 {
    finish(run_endpoint(opts, cmd).await)
}

/// Runs a `dlq` subcommand; returns the process exit code.
pub async fn dlq(opts: &ClientOpts, cmd: DlqCmd) -> i32 {
    finish(run_dlq(opts, cmd).await)
}

/// Runs `send`; returns the process exit code.
pub async fn send(opts: &ClientOpts, args: SendArgs) -> i32 {
    finish(run_send(opts, args).await)
}

// ---------------------------------------------------------------------------------------------
// Commands

async fn run_endpoint(opts: &ClientOpts, cmd: EndpointCmd) -> Result<(), Failure> {
    match cmd {
        EndpointCmd::Add {
            id,
            url,
            secret,
            secret_file,
            clear_secret,
            password,
            password_file,
            clear_password,
            timeout,
            retry_schedule,
            max_in_flight,
        } => {
            let secret = resolve_credential(secret, secret_file.as_deref(), "secret").await?;
            let password =
                resolve_credential(password, password_file.as_deref(), "password").await?;
            let retry_schedule = match retry_schedule {
                Some(list) => Some(parse_retry_schedule(&list).map_err(Failure::Input)?),
                None => None,
            };
            let body = add_body(AddFields {
                url,
                secret: Credential::from_args(secret, clear_secret),
                password: Credential::from_args(password, clear_password),
                timeout,
                retry_schedule,
                max_in_flight,
            });
            let body = serde_json::to_vec(&body)
                .map_err(|e| Failure::Input(format!("cannot encode request: {e}")))?;
            let call = Call::new(Method::PUT, endpoint_path(&id))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
            let answer = request(opts, call).await?;
            output(opts, &answer, |v| {
                let verb = if answer.status == StatusCode::CREATED {
                    "created"
                } else {
                    "updated"
                };
                Ok(format!("{verb} endpoint {id}\n{}", render_endpoint(v)))
            })
        }
        EndpointCmd::List => {
            let answer = request(opts, Call::new(Method::GET, "/v1/endpoints".into())).await?;
            output(opts, &answer, |v| {
                Ok(render_endpoint_table(list_field(v, "endpoints")?))
            })
        }
        EndpointCmd::Show { id } => {
            let answer = request(opts, Call::new(Method::GET, endpoint_path(&id))).await?;
            output(opts, &answer, |v| Ok(render_endpoint(v)))
        }
        EndpointCmd::Pause { id } => {
            let path = format!("{}/pause", endpoint_path(&id));
            let answer = request(opts, Call::new(Method::POST, path)).await?;
            output(opts, &answer, |v| Ok(state_line("paused", &id, v)))
        }
        EndpointCmd::Resume { id } => {
            let path = format!("{}/resume", endpoint_path(&id));
            let answer = request(opts, Call::new(Method::POST, path)).await?;
            output(opts, &answer, |v| Ok(state_line("resumed", &id, v)))
        }
        EndpointCmd::Remove { id, force } => {
            let answer = request(opts, Call::new(Method::DELETE, remove_path(&id, force))).await?;
            output(opts, &answer, |_| Ok(format!("removed endpoint {id}\n")))
        }
        EndpointCmd::Attempts { id, limit } => {
            let answer = request(opts, Call::new(Method::GET, attempts_path(&id, limit))).await?;
            output(opts, &answer, |v| {
                Ok(render_attempt_table(list_field(v, "attempts")?, true))
            })
        }
    }
}

async fn run_dlq(opts: &ClientOpts, cmd: DlqCmd) -> Result<(), Failure> {
    match cmd {
        DlqCmd::List { endpoint } => {
            let path = dead_letters_path(endpoint.as_deref());
            let answer = request(opts, Call::new(Method::GET, path)).await?;
            output(opts, &answer, |v| {
                Ok(render_dead_letter_table(list_field(v, "dead_letters")?))
            })
        }
        DlqCmd::Show { event_id } => {
            let answer = request(opts, Call::new(Method::GET, dead_letter_path(&event_id))).await?;
            output(opts, &answer, |v| Ok(render_dead_letter(v)))
        }
        DlqCmd::Replay { event_id } => {
            let path = format!("{}/replay", dead_letter_path(&event_id));
            let answer = request(opts, Call::new(Method::POST, path)).await?;
            output(opts, &answer, |v| Ok(replay_line(&event_id, v)))
        }
        DlqCmd::Purge { event_id } => {
            let path = dead_letter_path(&event_id);
            let answer = request(opts, Call::new(Method::DELETE, path)).await?;
            output(opts, &answer, |_| {
                Ok(format!("purged dead letter {event_id}\n"))
            })
        }
    }
}

async fn run_send(opts: &ClientOpts, args: SendArgs) -> Result<(), Failure> {
    let content_type = header_value("--content-type", &args.content_type)?;
    let event_type = match &args.event_type {
        Some(t) => Some(header_value("--event-type", t)?),
        None => None,
    };
    let idempotency_key = match &args.idempotency_key {
        Some(k) => Some(header_value("--idempotency-key", k)?),
        None => None,
    };
    let payload = read_payload(args.file.as_deref()).await?;

    let mut call = Call::new(
        Method::POST,
        format!("{}/events", endpoint_path(&args.endpoint)),
    )
    .header(CONTENT_TYPE, content_type)
    .body(payload);
    if let Some(v) = event_type {
        call = call.header(HeaderName::from_static("x-event-type"), v);
    }
    if let Some(v) = idempotency_key {
        call = call.header(HeaderName::from_static("idempotency-key"), v);
    }
    let answer = request(opts, call).await?;
    output(opts, &answer, |v| Ok(accepted_line(v)))
}

// ---------------------------------------------------------------------------------------------
// Local input

async fn resolve_credential(
    inline: Option<String>,
    file: Option<&Path>,
    what: &str,
) -> Result<Option<String>, Failure> {
    let Some(path) = file else {
        return Ok(inline);
    };
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| Failure::Input(format!("cannot read {what} file {}: {e}", path.display())))?;
    let value = trim_trailing_newlines(&text);
    if value.is_empty() {
        return Err(Failure::Input(format!(
            "{what} file {} is empty",
            path.display()
        )));
    }
    Ok(Some(value.to_owned()))
}

/// Strips the line ending(s) an editor or `echo` leaves at the end of a one-line file.
fn trim_trailing_newlines(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

/// `"5s, 15s,60s"` -> `["5s","15s","60s"]`; `""` -> `[]` (no retries).
fn parse_retry_schedule(list: &str) -> Result<Vec<String>, String> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|item| {
            let item = item.trim();
            if item.is_empty() {
                Err(format!(
                    "invalid --retry-schedule {list:?}: empty entry (expected e.g. 5s,15s,60s)"
                ))
            } else {
                Ok(item.to_owned())
            }
        })
        .collect()
}

/// What an `add` does to a secret or password. The daemon merges updates: a field left out of
/// the body keeps its value, and only an explicit `null` removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    /// Not sent: a new endpoint or channel has none, an existing one keeps its own.
    Keep,
    /// Sent as the new value.
    Set(String),
    /// Sent as `null`: removed.
    Clear,
}

impl Credential {
    /// From a resolved `--secret`/`--secret-file` value and its `--clear-…` flag (which clap
    /// keeps from being given together).
    fn from_args(value: Option<String>, clear: bool) -> Self {
        match (value, clear) {
            (_, true) => Credential::Clear,
            (Some(v), false) => Credential::Set(v),
            (None, false) => Credential::Keep,
        }
    }

    fn insert_into(self, body: &mut Map<String, Value>, key: &str) {
        match self {
            Credential::Keep => {}
            Credential::Set(v) => {
                body.insert(key.into(), Value::String(v));
            }
            Credential::Clear => {
                body.insert(key.into(), Value::Null);
            }
        }
    }
}

struct AddFields {
    url: String,
    secret: Credential,
    password: Credential,
    timeout: Option<String>,
    retry_schedule: Option<Vec<String>>,
    max_in_flight: Option<u32>,
}

/// The endpoint PUT body: `url` plus only the fields that were given.
fn add_body(fields: AddFields) -> Value {
    let mut body = Map::new();
    body.insert("url".into(), Value::String(fields.url));
    fields.secret.insert_into(&mut body, "secret");
    fields.password.insert_into(&mut body, "password");
    if let Some(t) = fields.timeout {
        body.insert("timeout".into(), Value::String(t));
    }
    if let Some(list) = fields.retry_schedule {
        body.insert(
            "retry_schedule".into(),
            Value::Array(list.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(n) = fields.max_in_flight {
        body.insert("max_in_flight".into(), Value::from(n));
    }
    Value::Object(body)
}

struct ChannelFields {
    endpoint: String,
    secret: Credential,
    rate_limit: Option<u32>,
    burst: Option<u32>,
}

/// The channel PUT body: `endpoint` plus only the fields that were given.
fn channel_body(fields: ChannelFields) -> Value {
    let mut body = Map::new();
    body.insert("endpoint".into(), Value::String(fields.endpoint));
    fields.secret.insert_into(&mut body, "secret");
    if let Some(r) = fields.rate_limit {
        body.insert("rate_limit".into(), Value::from(r));
    }
    if let Some(b) = fields.burst {
        body.insert("burst".into(), Value::from(b));
    }
    Value::Object(body)
}

fn header_value(flag: &str, value: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(value).map_err(|_| {
        Failure::Input(format!(
            "invalid {flag} {value:?}: must be visible ASCII without line breaks"
        ))
    })
}

async fn read_payload(file: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match file {
        Some(path) if path != Path::new("-") => tokio::fs::read(path)
            .await
            .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display()))),
        _ => {
            if file.is_none() && std::io::stdin().is_terminal() {
                return Err(Failure::Input(
                    "no payload: pass FILE, or pipe the payload into stdin (use '-' to type it)"
                        .into(),
                ));
            }
            let read = tokio::task::spawn_blocking(|| {
                let mut buf = Vec::new();
                std::io::stdin().lock().read_to_end(&mut buf).map(|_| buf)
            })
            .await;
            match read {
                Ok(Ok(buf)) => Ok(buf),
                Ok(Err(e)) => Err(Failure::Input(format!("cannot read stdin: {e}"))),
                Err(e) => Err(Failure::Input(format!("cannot read stdin: {e}"))),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Percent-encodes everything but `[A-Za-z0-9_.~-]` so an odd id cannot change the route;
/// valid ids pass through unchanged and the daemon judges the rest.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn endpoint_path(id: &str) -> String {
    format!("/v1/endpoints/{}", encode_segment(id))
}

fn remove_path(id: &str, force: bool) -> String {
    let path = endpoint_path(id);
    if force {
        format!("{path}?force=true")
    } else {
        path
    }
}

fn attempts_path(id: &str, limit: u32) -> String {
    format!("{}/attempts?limit={limit}", endpoint_path(id))
}

fn dead_letters_path(endpoint: Option<&str>) -> String {
    match endpoint {
        Some(id) => format!("/v1/dead-letters?endpoint={}", encode_segment(id)),
        None => "/v1/dead-letters".to_owned(),
    }
}

fn dead_letter_path(event_id: &str) -> String {
    format!("/v1/dead-letters/{}", encode_segment(event_id))
}

// ---------------------------------------------------------------------------------------------
// Transport

struct Call {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Call {
    fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Bytes::from(body);
        self
    }
}

struct Answer {
    status: StatusCode,
    body: Bytes,
}

/// Sends one request; any non-2xx answer becomes `Failure::Api`.
async fn request(opts: &ClientOpts, call: Call) -> Result<Answer, Failure> {
    let answer = exchange(&opts.socket, call).await?;
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(Failure::Api {
            status: answer.status,
            body: answer.body,
        })
    }
}

async fn exchange(socket: &Path, call: Call) -> Result<Answer, Failure> {
    let hint = lost_hint(&call.method, &call.path);
    let mut builder = Request::builder()
        .method(call.method)
        .uri(call.path.as_str())
        .header(HOST, "localhost");
    for (name, value) in call.headers {
        builder = builder.header(name, value);
    }
    let req = builder
        .body(Full::new(call.body))
        .map_err(|e| Failure::Input(format!("cannot build request for {}: {e}", call.path)))?;

    let stream =
        tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| Failure::Unreachable {
                socket: socket.to_path_buf(),
                error: e.to_string(),
            })?;
    let lost = |e: &dyn StdError| Failure::Lost {
        code: "DAEMON_CONNECTION_LOST",
        socket: socket.to_path_buf(),
        error: error_chain(e),
        hint,
    };
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| lost(&e))?;
        let driver = tokio::spawn(async move {
            // Errors surface through `send_request` below.
            let _ = conn.await;
        });
        let response = sender.send_request(req).await.map_err(|e| lost(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| lost(&e))?
            .to_bytes();
        drop(sender);
        driver.abort();
        Ok(Answer { status, body })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Lost {
            code: "DAEMON_TIMEOUT",
            socket: socket.to_path_buf(),
            error: format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
            hint,
        }),
    }
}

/// What to tell the user when an exchange broke off: reads are safe to repeat, writes may have
/// happened.
fn lost_hint(method: &Method, path: &str) -> &'static str {
    if method == Method::GET {
        HINT_RETRY_READ
    } else if method == Method::POST && path.ends_with("/events") {
        HINT_UNKNOWN_SEND
    } else {
        HINT_UNKNOWN_OUTCOME
    }
}

fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Output and failures

#[derive(Debug)]
enum Failure {
    /// Bad local input; exit 2.
    Input(String),
    /// The socket could not be connected; exit 69.
    Unreachable { socket: PathBuf, error: String },
    /// Connected, but the exchange broke off or timed out; exit 69.
    Lost {
        code: &'static str,
        socket: PathBuf,
        error: String,
        hint: &'static str,
    },
    /// The daemon answered non-2xx; exit 1.
    Api { status: StatusCode, body: Bytes },
    /// A 2xx answer that is not what the API promises; exit 1.
    BadAnswer(String),
}

impl Failure {
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Input(_) => EXIT_USAGE,
            Failure::Unreachable { .. } | Failure::Lost { .. } => EXIT_UNAVAILABLE,
            Failure::Api { .. } | Failure::BadAnswer(_) => EXIT_API,
        }
    }

    /// The stderr text, one or two lines each ending in a newline.
    fn render(&self) -> String {
        match self {
            Failure::Input(msg) => format!("error: {msg}\n"),
            Failure::Unreachable { socket, error } => format!(
                "error: DAEMON_UNREACHABLE: cannot connect to {}: {error}\nhint: {HINT_UNREACHABLE}\n",
                socket.display()
            ),
            Failure::Lost {
                code,
                socket,
                error,
                hint,
            } => format!(
                "error: {code}: {}: {error}\nhint: {hint}\n",
                socket.display()
            ),
            Failure::Api { status, body } => render_api_error(*status, body),
            Failure::BadAnswer(msg) => format!("error: BAD_ANSWER: {msg}\n"),
        }
    }
}

/// `error: CODE: message` (+ `hint: ...`) for the API's error shape, else a body excerpt.
fn render_api_error(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => {
            let mut out = format!("error: {}: {}\n", one_line(code), one_line(message));
            let hint = error
                .and_then(|e| e.get("hint"))
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty());
            if let Some(hint) = hint {
                let _ = writeln!(out, "hint: {}", one_line(hint));
            }
            out
        }
        _ => format!("error: HTTP {status}: {}\n", excerpt(body)),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = one_line(text.trim());
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        clip(&text, EXCERPT_CHARS)
    }
}

fn finish(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(failure) => {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(failure.render().as_bytes());
            let _ = stderr.flush();
            failure.exit_code()
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Prints a 2xx answer: pretty JSON with `--json`, else `human(parsed body)`.
/// An empty body (204) prints nothing in JSON mode and is passed as `null` to `human`.
fn output(
    opts: &ClientOpts,
    answer: &Answer,
    human: impl FnOnce(&Value) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let value = if answer.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(serde_json::from_slice::<Value>(&answer.body).map_err(|e| {
            Failure::BadAnswer(format!(
                "daemon answered {} with a body that is not JSON ({e}): {}",
                answer.status,
                excerpt(&answer.body)
            ))
        })?)
    };
    if opts.json {
        if let Some(v) = value {
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| Failure::BadAnswer(format!("cannot print answer: {e}")))?;
            emit(&format!("{text}\n"));
        }
        return Ok(());
    }
    let text = human(value.as_ref().unwrap_or(&Value::Null))?;
    emit(&text);
    Ok(())
}

fn list_field<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], Failure> {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| Failure::BadAnswer(format!("answer has no \"{key}\" list")))
}

// ---------------------------------------------------------------------------------------------
// Rendering (pure)

/// Replaces control characters (newlines included) so a value stays on one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A JSON value as display text: strings bare, null as `-`, scalar arrays comma-joined.
fn scalar(v: &Value) -> String {
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

fn field(v: &Value, key: &str) -> String {
    scalar(v.get(key).unwrap_or(&Value::Null))
}

/// `CODE (status) message`; `-` when null.
fn format_last_error(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::Object(m) => {
            let mut parts = Vec::new();
            match m.get("code").and_then(Value::as_str) {
                Some(code) => parts.push(one_line(code)),
                None => parts.push("ERROR".to_owned()),
            }
            if let Some(status) = m.get("status").filter(|s| !s.is_null()) {
                parts.push(format!("({})", scalar(status)));
            }
            let msg = m
                .get("message")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            if let Some(msg) = msg {
                parts.push(one_line(msg));
            }
            parts.join(" ")
        }
        other => scalar(other),
    }
}

/// An attempt's `error` code and `message` as `CODE message`; `-` when neither is set.
fn format_attempt_error(a: &Value) -> String {
    let code = a
        .get("error")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let msg = a
        .get("message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (code, msg) {
        (Some(c), Some(m)) => format!("{} {}", one_line(c), one_line(m)),
        (Some(c), None) => one_line(c),
        (None, Some(m)) => one_line(m),
        (None, None) => "-".to_owned(),
    }
}

/// Left-aligned columns separated by two spaces; no trailing spaces.
fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
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

fn render_endpoint_table(endpoints: &[Value]) -> String {
    let rows: Vec<Vec<String>> = endpoints
        .iter()
        .map(|e| {
            vec![
                field(e, "id"),
                field(e, "state"),
                field(e, "backlog"),
                field(e, "in_flight"),
                field(e, "url"),
                format_last_error(e.get("last_error").unwrap_or(&Value::Null)),
            ]
        })
        .collect();
    render_table(
        &["ID", "STATE", "BACKLOG", "IN_FLIGHT", "URL", "LAST_ERROR"],
        &rows,
    )
}

fn render_dead_letter_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            vec![
                field(d, "id"),
                field(d, "endpoint"),
                field(d, "seq"),
                field(d, "reason"),
                field(d, "attempts"),
                clip(
                    &format_last_error(d.get("last_error").unwrap_or(&Value::Null)),
                    TABLE_ERROR_CHARS,
                ),
                field(d, "dead_at"),
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
fn render_attempt_table(attempts: &[Value], with_event: bool) -> String {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            let mut row = Vec::with_capacity(7);
            if with_event {
                row.push(field(a, "event_id"));
                row.push(field(a, "seq"));
            }
            row.push(field(a, "attempt"));
            row.push(field(a, "started_at"));
            row.push(field(a, "status"));
            row.push(field(a, "latency_ms"));
            row.push(format_attempt_error(a));
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

/// Writes `key: value` for `keys` present in `obj`, then any key not in `keys` or `skip`.
fn key_lines(out: &mut String, obj: &Value, keys: &[&str], skip: &[&str]) {
    let Some(map) = obj.as_object() else {
        let _ = writeln!(out, "{}", scalar(obj));
        return;
    };
    for key in keys {
        if let Some(v) = map.get(*key) {
            write_key_line(out, key, v);
        }
    }
    for (key, v) in map {
        if !keys.contains(&key.as_str()) && !skip.contains(&key.as_str()) {
            write_key_line(out, key, v);
        }
    }
}

fn write_key_line(out: &mut String, key: &str, v: &Value) {
    let text = match key {
        "last_error" => {
            let mut text = format_last_error(v);
            if let Some(at) = v.get("at").and_then(Value::as_str) {
                let _ = write!(text, " at {at}");
            }
            text
        }
        "secret_set" | "password_set" => {
            let label = key.trim_end_matches("_set");
            let set = if v.as_bool() == Some(true) {
                "set"
            } else {
                "not set"
            };
            let _ = writeln!(out, "{label}: {set}");
            return;
        }
        _ => scalar(v),
    };
    let _ = writeln!(out, "{key}: {text}");
}

/// One endpoint view as `key: value` lines.
fn render_endpoint(v: &Value) -> String {
    let mut out = String::new();
    key_lines(
        &mut out,
        v,
        &[
            "id",
            "url",
            "state",
            "backlog",
            "in_flight",
            "max_in_flight",
            "timeout",
            "retry_schedule",
            "secret_set",
            "password_set",
            "last_error",
            "created_at",
            "updated_at",
        ],
        &[],
    );
    out
}

/// One dead letter as `key: value` lines, its history as a table, the payload last.
fn render_dead_letter(v: &Value) -> String {
    let mut out = String::new();
    key_lines(
        &mut out,
        v,
        &[
            "id",
            "endpoint",
            "seq",
            "reason",
            "attempts",
            "last_error",
            "dead_at",
            "content_type",
            "event_type",
        ],
        &["history", "payload", "payload_base64"],
    );
    match v.get("history").and_then(Value::as_array) {
        Some(history) if !history.is_empty() => {
            out.push_str("history:\n");
            for line in render_attempt_table(history, false).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        _ => out.push_str("history: (none)\n"),
    }
    if let Some(payload) = v.get("payload").and_then(Value::as_str) {
        out.push_str("payload:\n");
        out.push_str(&printable_payload(payload));
        if !payload.ends_with('\n') {
            out.push('\n');
        }
    } else if let Some(b64) = v.get("payload_base64").and_then(Value::as_str) {
        out.push_str("payload_base64:\n");
        out.push_str(&one_line(b64));
        out.push('\n');
    } else {
        out.push_str("payload: -\n");
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

fn state_line(verb: &str, id: &str, v: &Value) -> String {
    format!(
        "{verb} endpoint {id} (state {}, backlog {})\n",
        field(v, "state"),
        field(v, "backlog")
    )
}

fn accepted_line(v: &Value) -> String {
    let mut line = format!("accepted {} seq {}", field(v, "id"), field(v, "seq"));
    if v.get("duplicate").and_then(Value::as_bool) == Some(true) {
        line.push_str(" (duplicate: this Idempotency-Key was already accepted)");
    }
    line.push('\n');
    line
}

fn replay_line(event_id: &str, v: &Value) -> String {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| one_line(event_id), one_line);
    format!(
        "replayed {id} (endpoint {}, seq {})\n",
        field(v, "endpoint"),
        field(v, "seq")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(endpoint_path("acme"), "/v1/endpoints/acme");
        assert_eq!(endpoint_path("a.b_c-9"), "/v1/endpoints/a.b_c-9");
        assert_eq!(endpoint_path("a/b?c"), "/v1/endpoints/a%2Fb%3Fc");
        assert_eq!(remove_path("acme", false), "/v1/endpoints/acme");
        assert_eq!(remove_path("acme", true), "/v1/endpoints/acme?force=true");
        assert_eq!(
            attempts_path("acme", 20),
            "/v1/endpoints/acme/attempts?limit=20"
        );
        assert_eq!(dead_letters_path(None), "/v1/dead-letters");
        assert_eq!(
            dead_letters_path(Some("acme")),
            "/v1/dead-letters?endpoint=acme"
        );
        assert_eq!(dead_letter_path("evt_1"), "/v1/dead-letters/evt_1");
        assert_eq!(encode_segment("é "), "%C3%A9%20");
    }

    #[test]
    fn retry_schedule_parsing() {
        assert_eq!(
            parse_retry_schedule("5s,15s, 60s").unwrap(),
            vec!["5s", "15s", "60s"]
        );
        assert!(parse_retry_schedule("").unwrap().is_empty());
        assert!(parse_retry_schedule("5s,,1m").is_err());
    }

    #[test]
    fn trims_only_trailing_newlines() {
        assert_eq!(trim_trailing_newlines("s3cret\n"), "s3cret");
        assert_eq!(trim_trailing_newlines("s3cret\r\n\n"), "s3cret");
        assert_eq!(trim_trailing_newlines(" s3 cret "), " s3 cret ");
    }

    #[test]
    fn add_body_has_only_given_fields() {
        let minimal = add_body(AddFields {
            url: "https://x.io/h".into(),
            secret: Credential::Keep,
            password: Credential::Keep,
            timeout: None,
            retry_schedule: None,
            max_in_flight: None,
        });
        assert_eq!(minimal, json!({"url": "https://x.io/h"}));
        let full = add_body(AddFields {
            url: "https://x.io/h".into(),
            secret: Credential::Set("k".into()),
            password: Credential::Set("p".into()),
            timeout: Some("2s".into()),
            retry_schedule: Some(vec!["1s".into(), "2s".into()]),
            max_in_flight: Some(4),
        });
        assert_eq!(
            full,
            json!({"url": "https://x.io/h", "secret": "k", "password": "p", "timeout": "2s",
                   "retry_schedule": ["1s", "2s"], "max_in_flight": 4})
        );
    }

    /// The daemon merges updates: a field left out keeps its value, only `null` removes it.
    #[test]
    fn add_body_clears_only_on_request() {
        let update = |secret, password| {
            add_body(AddFields {
                url: "https://x.io/h".into(),
                secret,
                password,
                timeout: Some("3s".into()),
                retry_schedule: None,
                max_in_flight: None,
            })
        };
        assert_eq!(
            update(Credential::Keep, Credential::Keep),
            json!({"url": "https://x.io/h", "timeout": "3s"})
        );
        assert_eq!(
            update(Credential::Clear, Credential::Keep),
            json!({"url": "https://x.io/h", "secret": null, "timeout": "3s"})
        );
        assert_eq!(
            update(Credential::Keep, Credential::Clear),
            json!({"url": "https://x.io/h", "password": null, "timeout": "3s"})
        );
        assert_eq!(
            update(Credential::Set("k".into()), Credential::Clear),
            json!({"url": "https://x.io/h", "secret": "k", "password": null, "timeout": "3s"})
        );
    }

    #[test]
    fn channel_body_has_only_given_fields() {
        let body = |secret, rate_limit, burst| {
            channel_body(ChannelFields {
                endpoint: "happ".into(),
                secret,
                rate_limit,
                burst,
            })
        };
        assert_eq!(
            body(Credential::Keep, None, None),
            json!({"endpoint": "happ"})
        );
        assert_eq!(
            body(Credential::Keep, Some(50), None),
            json!({"endpoint": "happ", "rate_limit": 50}),
            "a rate-only update leaves secret and burst to the daemon's merge"
        );
        assert_eq!(
            body(Credential::Set("k".into()), Some(10), Some(30)),
            json!({"endpoint": "happ", "secret": "k", "rate_limit": 10, "burst": 30})
        );
        assert_eq!(
            body(Credential::Clear, None, None),
            json!({"endpoint": "happ", "secret": null})
        );
    }

    #[test]
    fn credential_from_args() {
        assert_eq!(Credential::from_args(None, false), Credential::Keep);
        assert_eq!(
            Credential::from_args(Some("k".into()), false),
            Credential::Set("k".into())
        );
        assert_eq!(Credential::from_args(None, true), Credential::Clear);
    }

    #[test]
    fn last_error_formats() {
        assert_eq!(format_last_error(&Value::Null), "-");
        assert_eq!(
            format_last_error(
                &json!({"code": "HTTP_5XX", "message": "HTTP 503 Service Unavailable",
                                      "status": 503, "at": "2026-11-21T06:49:06.123Z"})
            ),
            "HTTP_5XX (503) HTTP 503 Service Unavailable"
        );
        assert_eq!(
            format_last_error(
                &json!({"code": "TIMEOUT", "message": "no answer\nwithin 5s",
                                      "status": null})
            ),
            "TIMEOUT no answer within 5s"
        );
    }

    #[test]
    fn table_alignment() {
        let rows = vec![
            vec!["a".to_string(), "long value".to_string(), "x".to_string()],
            vec!["bbbb".to_string(), "v".to_string(), String::new()],
        ];
        assert_eq!(
            render_table(&["K", "VALUE", "LAST"], &rows),
            "K     VALUE       LAST\n\
             a     long value  x\n\
             bbbb  v\n"
        );
        assert_eq!(render_table(&["A", "B"], &[]), "A  B\n");
    }

    #[test]
    fn endpoint_table() {
        let list = json!({"endpoints": [
            {"id": "acme", "url": "https://api.acme.io/happ/chat", "state": "active", "backlog": 0,
             "in_flight": 0, "last_error": null},
            {"id": "b", "url": "https://b.io/h", "state": "down", "backlog": 12, "in_flight": 1,
             "last_error": {"code": "HTTP_5XX", "message": "HTTP 503 Service Unavailable",
                            "status": 503, "at": "2026-11-21T06:49:06.123Z"}}
        ]});
        let text = render_endpoint_table(list["endpoints"].as_array().unwrap());
        assert_eq!(
            text,
            "ID    STATE   BACKLOG  IN_FLIGHT  URL                            LAST_ERROR\n\
             acme  active  0        0          https://api.acme.io/happ/chat  -\n\
             b     down    12       1          https://b.io/h                 HTTP_5XX (503) HTTP 503 Service Unavailable\n"
        );
    }

    #[test]
    fn dead_letter_table() {
        let items = json!([{"id": "evt_1", "endpoint": "acme", "seq": 3,
            "reason": "MAX_RETRIES_EXCEEDED", "attempts": 4,
            "last_error": {"code": "HTTP_4XX", "message": "HTTP 400 Bad Request", "status": 400},
            "dead_at": "2026-11-21T06:49:06.123Z"}]);
        assert_eq!(
            render_dead_letter_table(items.as_array().unwrap()),
            "EVENT_ID  ENDPOINT  SEQ  REASON                ATTEMPTS  LAST_ERROR                           DEAD_AT\n\
             evt_1     acme      3    MAX_RETRIES_EXCEEDED  4         HTTP_4XX (400) HTTP 400 Bad Request  2026-11-21T06:49:06.123Z\n"
        );
    }

    #[test]
    fn attempt_table() {
        let items = json!([
            {"event_id": "evt_2", "seq": 2, "attempt": 1, "started_at": "T2", "status": 200,
             "latency_ms": 12, "error": null, "message": null},
            {"event_id": "evt_1", "seq": 1, "attempt": 4, "started_at": "T1", "status": null,
             "latency_ms": 5000, "error": "TIMEOUT", "message": "timed out after 5s"}
        ]);
        assert_eq!(
            render_attempt_table(items.as_array().unwrap(), true),
            "EVENT_ID  SEQ  ATTEMPT  STARTED_AT  STATUS  LATENCY_MS  ERROR\n\
             evt_2     2    1        T2          200     12          -\n\
             evt_1     1    4        T1          -       5000        TIMEOUT timed out after 5s\n"
        );
    }

    #[test]
    fn endpoint_view() {
        let v = json!({"id": "acme", "url": "https://a.io/h", "secret_set": true,
            "password_set": false, "timeout": "5s", "retry_schedule": ["5s", "15s", "60s"],
            "max_in_flight": 1, "state": "active", "backlog": 0, "in_flight": 0,
            "last_error": {"code": "CONNECT", "message": "refused", "status": null, "at": "T0"},
            "created_at": "T1", "updated_at": "T2", "zz_new_field": 7});
        assert_eq!(
            render_endpoint(&v),
            "id: acme\nurl: https://a.io/h\nstate: active\nbacklog: 0\nin_flight: 0\n\
             max_in_flight: 1\ntimeout: 5s\nretry_schedule: 5s, 15s, 60s\nsecret: set\n\
             password: not set\nlast_error: CONNECT refused at T0\ncreated_at: T1\n\
             updated_at: T2\nzz_new_field: 7\n"
        );
    }

    #[test]
    fn dead_letter_view() {
        let v = json!({"id": "evt_1", "endpoint": "acme", "seq": 3,
        "reason": "MAX_RETRIES_EXCEEDED", "attempts": 2, "last_error": null, "dead_at": "T9",
        "content_type": "application/json", "event_type": null,
        "payload": "{\"a\":1}\u{1b}[2J",
        "history": [
            {"event_id": "evt_1", "seq": 3, "attempt": 1, "started_at": "T1", "status": 503,
             "latency_ms": 7, "error": "HTTP_5XX", "message": "HTTP 503"},
            {"event_id": "evt_1", "seq": 3, "attempt": 2, "started_at": "T2", "status": 503,
             "latency_ms": 8, "error": "HTTP_5XX", "message": "HTTP 503"}
        ]});
        assert_eq!(
            render_dead_letter(&v),
            "id: evt_1\nendpoint: acme\nseq: 3\nreason: MAX_RETRIES_EXCEEDED\nattempts: 2\n\
             last_error: -\ndead_at: T9\ncontent_type: application/json\nevent_type: -\n\
             history:\n\
             \x20 ATTEMPT  STARTED_AT  STATUS  LATENCY_MS  ERROR\n\
             \x20 1        T1          503     7           HTTP_5XX HTTP 503\n\
             \x20 2        T2          503     8           HTTP_5XX HTTP 503\n\
             payload:\n{\"a\":1}\u{FFFD}[2J\n"
        );
        let binary = json!({"id": "evt_2", "payload": null, "payload_base64": "AAE=",
                            "history": []});
        assert_eq!(
            render_dead_letter(&binary),
            "id: evt_2\nhistory: (none)\npayload_base64:\nAAE=\n"
        );
    }

    #[test]
    fn api_errors() {
        let body = br#"{"error":{"code":"ENDPOINT_NOT_FOUND","message":"no endpoint \"x\"","hint":"list them with `courier endpoint list`"}}"#;
        assert_eq!(
            render_api_error(StatusCode::NOT_FOUND, body),
            "error: ENDPOINT_NOT_FOUND: no endpoint \"x\"\nhint: list them with `courier endpoint list`\n"
        );
        let no_hint = br#"{"error":{"code":"ENDPOINT_NOT_EMPTY","message":"backlog is 3"}}"#;
        assert_eq!(
            render_api_error(StatusCode::CONFLICT, no_hint),
            "error: ENDPOINT_NOT_EMPTY: backlog is 3\n"
        );
        assert_eq!(
            render_api_error(StatusCode::BAD_GATEWAY, b"<html>\nbad</html>"),
            "error: HTTP 502 Bad Gateway: <html> bad</html>\n"
        );
        assert_eq!(
            render_api_error(StatusCode::INTERNAL_SERVER_ERROR, b""),
            "error: HTTP 500 Internal Server Error: (empty body)\n"
        );
        let long = "x".repeat(500);
        let text = render_api_error(StatusCode::BAD_REQUEST, long.as_bytes());
        assert_eq!(
            text.chars().count(),
            "error: HTTP 400 Bad Request: ".len() + 200 + 1
        );
    }

    #[test]
    fn failure_rendering_and_codes() {
        let f = Failure::Unreachable {
            socket: PathBuf::from("/tmp/c.sock"),
            error: "No such file or directory (os error 2)".into(),
        };
        assert_eq!(f.exit_code(), 69);
        assert_eq!(
            f.render(),
            "error: DAEMON_UNREACHABLE: cannot connect to /tmp/c.sock: No such file or directory (os error 2)\n\
             hint: is 'courier serve' running? pass --socket PATH or set COURIER_SOCKET\n"
        );
        let lost = Failure::Lost {
            code: "DAEMON_TIMEOUT",
            socket: PathBuf::from("c.sock"),
            error: "no answer within 60s".into(),
            hint: lost_hint(&Method::POST, "/v1/endpoints/acme/events"),
        };
        assert_eq!(lost.exit_code(), 69);
        assert_eq!(
            lost.render(),
            format!(
                "error: DAEMON_TIMEOUT: c.sock: no answer within 60s\nhint: {HINT_UNKNOWN_SEND}\n"
            )
        );
        assert_eq!(lost_hint(&Method::GET, "/v1/endpoints"), HINT_RETRY_READ);
        assert_eq!(
            lost_hint(&Method::DELETE, "/v1/endpoints/a"),
            HINT_UNKNOWN_OUTCOME
        );
        assert_eq!(Failure::Input("bad".into()).exit_code(), 2);
        assert_eq!(Failure::Input("bad".into()).render(), "error: bad\n");
        let api = Failure::Api {
            status: StatusCode::NOT_FOUND,
            body: Bytes::new(),
        };
        assert_eq!(api.exit_code(), 1);
    }

    #[test]
    fn confirmation_lines() {
        assert_eq!(
            accepted_line(&json!({"id": "evt_9", "seq": 42, "endpoint": "acme"})),
            "accepted evt_9 seq 42\n"
        );
        assert!(
            accepted_line(&json!({"id": "evt_9", "seq": 42, "duplicate": true}))
                .starts_with("accepted evt_9 seq 42 (duplicate")
        );
        assert_eq!(
            replay_line(
                "evt_3",
                &json!({"id": "evt_3", "endpoint": "acme", "seq": 3})
            ),
            "replayed evt_3 (endpoint acme, seq 3)\n"
        );
        assert_eq!(
            state_line("paused", "acme", &json!({"state": "paused", "backlog": 3})),
            "paused endpoint acme (state paused, backlog 3)\n"
        );
    }

    /// The argument definitions hold together inside a parser like the binary's.
    #[test]
    fn clap_definitions() {
        use clap::{CommandFactory, Parser, Subcommand};

        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            client: ClientOpts,
            #[command(subcommand)]
            cmd: Cmd,
        }
        #[derive(Subcommand, Debug)]
        enum Cmd {
            #[command(subcommand)]
            Endpoint(EndpointCmd),
            #[command(subcommand)]
            Dlq(DlqCmd),
            Send(SendArgs),
            #[command(subcommand)]
            Channel(ChannelCmd),
        }
        Cli::command().debug_assert();

        let cli = Cli::try_parse_from([
            "courier",
            "endpoint",
            "add",
            "acme",
            "https://a.io/h",
            "--secret-file",
            "/s",
            "--retry-schedule",
            "1s,2s",
            "--json",
            "--socket",
            "/x.sock",
        ])
        .unwrap();
        assert!(cli.client.json);
        assert_eq!(cli.client.socket, PathBuf::from("/x.sock"));
        match cli.cmd {
            Cmd::Endpoint(EndpointCmd::Add {
                secret_file,
                retry_schedule,
                ..
            }) => {
                assert_eq!(secret_file, Some(PathBuf::from("/s")));
                assert_eq!(retry_schedule.as_deref(), Some("1s,2s"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "courier",
                "endpoint",
                "add",
                "a",
                "u",
                "--secret",
                "s",
                "--secret-file",
                "f"
            ])
            .is_err()
        );
        let parses =
            |args: &[&str]| Cli::try_parse_from(["courier"].iter().chain(args)).map(|cli| cli.cmd);
        match parses(&[
            "endpoint",
            "add",
            "a",
            "u",
            "--clear-secret",
            "--clear-password",
        ]) {
            Ok(Cmd::Endpoint(EndpointCmd::Add {
                clear_secret: true,
                clear_password: true,
                secret: None,
                password: None,
                ..
            })) => {}
            other => panic!("unexpected {other:?}"),
        }
        match parses(&["channel", "add", "c", "happ", "--clear-secret"]) {
            Ok(Cmd::Channel(ChannelCmd::Add {
                clear_secret: true,
                secret: None,
                rate_limit: None,
                ..
            })) => {}
            other => panic!("unexpected {other:?}"),
        }
        match parses(&["channel", "add", "c", "happ", "--rate-limit", "50"]) {
            Ok(Cmd::Channel(ChannelCmd::Add {
                clear_secret: false,
                secret: None,
                secret_file: None,
                rate_limit: Some(50),
                burst: None,
                ..
            })) => {}
            other => panic!("unexpected {other:?}"),
        }
        for conflicting in [
            &[
                "endpoint",
                "add",
                "a",
                "u",
                "--clear-secret",
                "--secret",
                "s",
            ][..],
            &[
                "endpoint",
                "add",
                "a",
                "u",
                "--clear-secret",
                "--secret-file",
                "f",
            ],
            &[
                "endpoint",
                "add",
                "a",
                "u",
                "--clear-password",
                "--password",
                "p",
            ],
            &[
                "endpoint",
                "add",
                "a",
                "u",
                "--clear-password",
                "--password-file",
                "f",
            ],
            &[
                "channel",
                "add",
                "c",
                "e",
                "--clear-secret",
                "--secret",
                "s",
            ],
            &[
                "channel",
                "add",
                "c",
                "e",
                "--clear-secret",
                "--secret-file",
                "f",
            ],
            &[
                "channel",
                "add",
                "c",
                "e",
                "--secret",
                "s",
                "--secret-file",
                "f",
            ],
        ] {
            assert!(parses(conflicting).is_err(), "{conflicting:?}");
        }
        let cli = Cli::try_parse_from(["courier", "send", "acme"]).unwrap();
        match cli.cmd {
            Cmd::Send(args) => {
                assert_eq!(args.content_type, "application/json");
                assert!(args.file.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from(["courier", "endpoint", "attempts", "acme"]).unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Endpoint(EndpointCmd::Attempts { limit: 20, .. })
        ));
    }
}
