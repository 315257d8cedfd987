//! Client side of the `courier` command line: the `endpoint`, `send`, `channel`, `dlq` and
//! `status` subcommands, which talk to a running daemon over its Unix socket through
//! [`crate::client`] and render its answers as tables, `key: value` lines ([`render`]) or
//! (`--json`) pretty JSON. This module owns the shared options, the dispatch, and the mapping
//! of failures to exit codes: 0 success, 1 the daemon refused or answered badly, 2 bad local
//! input, 69 daemon unreachable. Each command group has a file of its own.

mod channel;
mod dlq;
mod endpoint;
mod input;
pub mod render;
mod send;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Method;
use serde::Serialize;

use crate::client::{self, ApiError, Client, TransportKind};

pub use channel::ChannelCmd;
pub use dlq::DlqCmd;
pub use endpoint::EndpointCmd;
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

impl ClientOpts {
    /// A client of the daemon's socket, one request at a time bounded by the CLI's timeout.
    fn client(&self) -> Client {
        Client::unix(&self.socket).with_timeout(REQUEST_TIMEOUT)
    }

    /// The CLI's view of a failed call.
    fn failure(&self, e: client::Error) -> Failure {
        let socket = self.socket.clone();
        match e {
            client::Error::Transport(t) => {
                let hint = lost_hint(&t.method, &t.path);
                match t.kind {
                    TransportKind::Unreachable(error) => Failure::Unreachable { socket, error },
                    TransportKind::Lost(error) => Failure::Lost {
                        code: "DAEMON_CONNECTION_LOST",
                        socket,
                        error,
                        hint,
                    },
                    TransportKind::TimedOut(after) => Failure::Lost {
                        code: "DAEMON_TIMEOUT",
                        socket,
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
    finish(channel::run(opts, cmd).await)
}

/// Runs an `endpoint` subcommand; returns the process exit code.
pub async fn endpoint(opts: &ClientOpts, cmd: EndpointCmd) -> i32 {
    finish(endpoint::run(opts, cmd).await)
}

/// Runs a `dlq` subcommand; returns the process exit code.
pub async fn dlq(opts: &ClientOpts, cmd: DlqCmd) -> i32 {
    finish(dlq::run(opts, cmd).await)
}

/// Runs `status`; returns the process exit code.
pub async fn status(opts: &ClientOpts) -> i32 {
    finish(status::run(opts).await)
}

/// Runs `send`; returns the process exit code.
pub async fn send(opts: &ClientOpts, args: SendArgs) -> i32 {
    finish(send::run(opts, args).await)
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

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests;
