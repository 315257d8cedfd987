//! Client side of the `courier` command line: the `endpoint`, `send`, `channel`, `dlq`,
//! `replay` (back-fill) and `status` subcommands (and `explain`, which needs no daemon), which talk to a running daemon
//! over its Unix socket (or its TCP admin API, `--url` with a token) through [`crate::client`]
//! — or, given `--data-dir` while the daemon is stopped, to the read-only API of
//! [`crate::offline`] — and render its answers as tables, `key: value` lines ([`render`]) or
//! (`--json`) pretty JSON. This module owns the shared options, the choice of transport, the
//! dispatch, and the mapping
//! of failures to exit codes: 0 success, 1 the daemon refused or answered badly, 2 bad local
//! input, 69 daemon unreachable. Each command group has a file of its own.

mod channel;
mod dlq;
mod endpoint;
pub mod explain;
mod input;
pub mod master_key;
pub mod render;
mod replay;
mod send;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Method;
use serde::Serialize;

use crate::api::auth::parse_tokens;
use crate::client::{self, ApiError, Client, Target, TransportKind};
use crate::config::ADMIN_TOKEN_ENV;
use crate::core::secret::Secret;
use crate::store::redb::ReadOnlyError;

pub use channel::ChannelCmd;
pub use dlq::DlqCmd;
pub use endpoint::EndpointCmd;
pub use explain::ExplainArgs;
pub use master_key::MasterKeyCmd;
pub use replay::ReplayArgs;
pub use send::SendArgs;

/// Exit code for a refusal or a malformed answer from the daemon.
const EXIT_API: i32 = 1;
/// Exit code for bad local input (unreadable file, bad argument value).
const EXIT_USAGE: i32 = 2;
/// Exit code when the daemon cannot be reached (sysexits `EX_UNAVAILABLE`).
const EXIT_UNAVAILABLE: i32 = 69;

/// How long one request (after connecting) may take before the CLI gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const HINT_UNREACHABLE: &str =
    "is 'courier serve' running? pass --socket PATH or set COURIER_SOCKET";
const HINT_UNREACHABLE_TCP: &str =
    "is 'courier serve' running with --listen on that address? check --url or COURIER_URL";
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
    /// The daemon's TCP admin API, `http://HOST:PORT`, instead of the socket (needs an admin
    /// token: --token-file or COURIER_ADMIN_TOKEN).
    #[arg(
        long = "url",
        id = "daemon_url",
        global = true,
        env = "COURIER_URL",
        value_name = "URL"
    )]
    pub daemon_url: Option<String>,
    /// File holding the admin token for --url (its first token line); else
    /// COURIER_ADMIN_TOKEN.
    #[arg(long, id = "client_token_file", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Inspect the journal in DIR read-only while the daemon is stopped (list and show
    /// commands; while it runs, the daemon is asked instead).
    #[arg(long, id = "offline_data_dir", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: the master key file that opens the journal's endpoints and channels
    /// (else COURIER_MASTER_KEY, else DIR/master.key).
    #[arg(
        long,
        id = "offline_master_key_file",
        global = true,
        env = "COURIER_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
    /// Print the daemon's JSON answers instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where requests go, once [`ClientOpts::resolve`] chose (the socket when it did not).
    #[arg(skip)]
    target: Option<Target>,
    /// The admin token sent over TCP.
    #[arg(skip)]
    token: Option<Secret>,
}

impl ClientOpts {
    /// Chooses the transport: the offline journal of `--data-dir` when no daemon has it open
    /// (when one does, says so and asks the daemon), else `--url` over TCP with the admin
    /// token, else the socket.
    async fn resolve(&self) -> Result<ClientOpts, Failure> {
        let mut opts = self.clone();
        let daemon = match &self.daemon_url {
            Some(url) => {
                let addr = tcp_address(url).map_err(Failure::Input)?;
                opts.token = self.admin_token()?;
                if let Some(t) = &opts.token {
                    Client::tcp(addr.clone())
                        .with_token(t)
                        .map_err(|e| Failure::Input(e.to_string()))?;
                }
                Target::Tcp(addr)
            }
            None => Target::Unix(self.socket.clone()),
        };
        opts.target = Some(daemon);
        if let Some(dir) = &self.data_dir {
            if !dir.is_dir() {
                return Err(Failure::Input(format!(
                    "--data-dir {}: no such directory",
                    dir.display()
                )));
            }
            match crate::offline::open(dir, self.master_key_file.as_deref()).await {
                Ok(local) => {
                    opts.target = Some(Target::Local(local));
                    opts.token = None;
                }
                Err(ReadOnlyError::InUse(_)) => {
                    let over = match &self.daemon_url {
                        Some(url) => url.as_str(),
                        None => "the socket",
                    };
                    note(&format!("daemon is running; asking it over {over}\n"));
                }
                Err(e) => return Err(Failure::Input(format!("--data-dir: {e}"))),
            }
        }
        Ok(opts)
    }

    /// The admin token for TCP: the first token of `--token-file`, else `COURIER_ADMIN_TOKEN`.
    fn admin_token(&self) -> Result<Option<Secret>, Failure> {
        if let Some(p) = &self.token_file {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::Input(format!("--token-file: cannot read {}: {e}", p.display()))
            })?;
            let first = parse_tokens(&text)
                .map_err(|e| Failure::Input(format!("--token-file {}: {e}", p.display())))?
                .into_iter()
                .next();
            return match first {
                Some(t) => Ok(Some(t)),
                None => Err(Failure::Input(format!(
                    "--token-file {}: holds no token",
                    p.display()
                ))),
            };
        }
        Ok(std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(Secret::new))
    }

    /// A client of the chosen transport, one request at a time bounded by the CLI's timeout.
    fn client(&self) -> Client {
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| Target::Unix(self.socket.clone()));
        let client = Client::new(target.clone()).with_timeout(REQUEST_TIMEOUT);
        match &self.token {
            // `resolve` refused a token that is no header value; without one the daemon
            // answers 401 with its hint.
            Some(t) => client
                .with_token(t)
                .unwrap_or_else(|_| Client::new(target).with_timeout(REQUEST_TIMEOUT)),
            None => client,
        }
    }

    /// What a message calls the daemon's address, and what to try when it is unreachable.
    fn shown_target(&self) -> (String, &'static str) {
        match &self.target {
            Some(Target::Tcp(_)) => (
                self.daemon_url.clone().unwrap_or_default(),
                HINT_UNREACHABLE_TCP,
            ),
            Some(t @ Target::Local(_)) => (t.to_string(), HINT_UNREACHABLE),
            _ => (self.socket.display().to_string(), HINT_UNREACHABLE),
        }
    }

    /// The CLI's view of a failed call.
    fn failure(&self, e: client::Error) -> Failure {
        let (target, unreachable_hint) = self.shown_target();
        match e {
            client::Error::Transport(t) => {
                let hint = lost_hint(&t.method, &t.path);
                match t.kind {
                    TransportKind::Unreachable(error) => Failure::Unreachable {
                        target,
                        error,
                        hint: unreachable_hint,
                    },
                    TransportKind::Lost(error) => Failure::Lost {
                        code: "DAEMON_CONNECTION_LOST",
                        target,
                        error,
                        hint,
                    },
                    TransportKind::TimedOut(after) => Failure::Lost {
                        code: "DAEMON_TIMEOUT",
                        target,
                        error: format!("no answer within {}s", after.as_secs()),
                        hint,
                    },
                    TransportKind::BadRequest(e) => {
                        Failure::Input(format!("cannot build request for {}: {e}", t.path))
                    }
                }
            }
            client::Error::Api(e) => Failure::Api(e),
            client::Error::BadAnswer {
                status,
                error,
                body,
            } => {
                let what = if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                    "not the JSON the API promises"
                } else {
                    "not JSON"
                };
                Failure::BadAnswer(format!(
                    "daemon answered {status} with a body that is {what} ({error}): {}",
                    render::excerpt(&body)
                ))
            }
            client::Error::Invalid(msg) => Failure::Input(msg),
        }
    }

    /// Prints an answer: pretty JSON with `--json`, else `human(answer)`.
    fn output<T: Serialize>(
        &self,
        answer: &T,
        human: impl FnOnce(&T) -> String,
    ) -> Result<(), Failure> {
        if self.json {
            // Through `Value`, so keys print in the same order as the daemon's own JSON.
            let text = serde_json::to_value(answer)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .map_err(|e| Failure::BadAnswer(format!("cannot print answer: {e}")))?;
            emit(&format!("{text}\n"));
        } else {
            emit(&human(answer));
        }
        Ok(())
    }

    /// Prints the confirmation of a call whose answer has no body (nothing with `--json`).
    fn done(&self, line: &str) -> Result<(), Failure> {
        if !self.json {
            emit(line);
        }
        Ok(())
    }
}

/// Runs a `channel` subcommand; returns the process exit code.
pub async fn channel(opts: &ClientOpts, cmd: ChannelCmd) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(channel::run(&opts, cmd).await),
        Err(f) => finish(Err(f)),
    }
}

/// Runs an `endpoint` subcommand; returns the process exit code.
pub async fn endpoint(opts: &ClientOpts, cmd: EndpointCmd) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(endpoint::run(&opts, cmd).await),
        Err(f) => finish(Err(f)),
    }
}

/// Runs a `dlq` subcommand; returns the process exit code.
pub async fn dlq(opts: &ClientOpts, cmd: DlqCmd) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(dlq::run(&opts, cmd).await),
        Err(f) => finish(Err(f)),
    }
}

/// Runs `replay` (back-fill); returns the process exit code.
pub async fn replay(opts: &ClientOpts, args: ReplayArgs) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(replay::run(&opts, args).await),
        Err(f) => finish(Err(f)),
    }
}

/// Runs `status`; returns the process exit code.
pub async fn status(opts: &ClientOpts) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(status::run(&opts).await),
        Err(f) => finish(Err(f)),
    }
}

/// Runs `send`; returns the process exit code.
pub async fn send(opts: &ClientOpts, args: SendArgs) -> i32 {
    match opts.resolve().await {
        Ok(opts) => finish(send::run(&opts, args).await),
        Err(f) => finish(Err(f)),
    }
}

/// `host:port` of `--url http://HOST:PORT` (a trailing `/` is allowed; `http://` may be left
/// out). The admin API speaks plain HTTP: keep it on loopback, or use the socket.
fn tcp_address(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.starts_with("https://") {
        return Err(format!(
            "--url {url}: the admin API speaks plain HTTP; give http://HOST:PORT"
        ));
    }
    let addr = rest.strip_suffix('/').unwrap_or(rest);
    let valid = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        && !addr.contains(['/', '?', '#', '@']);
    if valid {
        Ok(addr.to_string())
    } else {
        Err(format!("--url {url}: give http://HOST:PORT"))
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

#[derive(Debug)]
enum Failure {
    /// Bad local input; exit 2.
    Input(String),
    /// The daemon could not be connected; exit 69.
    Unreachable {
        target: String,
        error: String,
        hint: &'static str,
    },
    /// Connected, but the exchange broke off or timed out; exit 69.
    Lost {
        code: &'static str,
        target: String,
        error: String,
        hint: &'static str,
    },
    /// The daemon answered non-2xx; exit 1.
    Api(ApiError),
    /// A 2xx answer that is not what the API promises; exit 1.
    BadAnswer(String),
}

impl Failure {
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Input(_) => EXIT_USAGE,
            Failure::Unreachable { .. } | Failure::Lost { .. } => EXIT_UNAVAILABLE,
            Failure::Api(_) | Failure::BadAnswer(_) => EXIT_API,
        }
    }

    /// The stderr text, one or two lines each ending in a newline.
    fn render(&self) -> String {
        match self {
            Failure::Input(msg) => format!("error: {msg}\n"),
            Failure::Unreachable {
                target,
                error,
                hint,
            } => format!(
                "error: DAEMON_UNREACHABLE: cannot connect to {target}: {error}\nhint: {hint}\n"
            ),
            Failure::Lost {
                code,
                target,
                error,
                hint,
            } => format!("error: {code}: {target}: {error}\nhint: {hint}\n"),
            Failure::Api(e) => render::render_api_error(e),
            Failure::BadAnswer(msg) => format!("error: BAD_ANSWER: {msg}\n"),
        }
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

/// Writes a note to stderr (it never mixes with the answer on stdout).
fn note(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests;
