//! `courier endpoint …`: the clap definitions of the endpoint commands (settings, connect and
//! test, call, retry now, the operator's `show`) and how each one talks to the daemon through
//! [`crate::client`].

use std::path::PathBuf;

use super::input::{Credential, parse_retry_schedule, read_payload, resolve_credential};
use super::{ClientOpts, Failure, render};
use crate::client::ApiError;
use crate::views::{AttemptError, EndpointUpdate, ErrorDetail, TestResult};

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
        #[command(flatten)]
        settings: Settings,
    },
    /// Create or update an endpoint, then test it: "Connected" only on a 2xx within its
    /// timeout; otherwise the error's code, message and hint, and exit code 1.
    ///
    /// Options as for `endpoint add`.
    Connect {
        /// Endpoint id: 1-64 characters of A-Z a-z 0-9 _ . - (not . or ..)
        id: String,
        /// Destination URL (https://; http:// only if the daemon runs with --allow-http).
        url: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Send one signed webhook.ping to an endpoint now, outside its queue, and print whether
    /// it is connected (exit code 1 when not, with the error's code and hint).
    Test {
        /// Endpoint id.
        id: String,
    },
    /// Send a body to an endpoint now (signed, outside its queue) and print the receiver's
    /// answer (exit code 1 when it is not a 2xx).
    Call {
        /// Endpoint id.
        id: String,
        /// The body: inline text, @FILE to read a file, or - to read stdin [default: empty].
        #[arg(long, short = 'd', value_name = "DATA")]
        data: Option<String>,
        /// Content-Type of the body.
        #[arg(long, value_name = "MIME", default_value = "application/json")]
        content_type: String,
    },
    /// Attempt now what waits: probe a down endpoint at once, or send the events waiting for
    /// a retry at once (the retry they use is the one they would have used).
    Retry {
        /// Endpoint id.
        id: String,
    },
    /// List endpoints with their state and backlog.
    List,
    /// Show one endpoint: state and since when, backlog, the next attempt or probe due, the
    /// last error with its hint, and the newest attempts with the receiver's answers.
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

/// An endpoint's settings as `endpoint add` and `endpoint connect` take them.
#[derive(clap::Args, Debug)]
pub struct Settings {
    /// HMAC-SHA256 key deliveries are signed with, sent as X-HAPP-Signature (visible in
    /// `ps`; prefer --secret-file).
    #[arg(long, value_name = "S", conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// Read the signing key from a file (trailing newline trimmed).
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Remove the signing key: deliveries are no longer signed.
    #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
    pub clear_secret: bool,
    /// Password sent to the receiver as Authorization: Bearer (visible in `ps`; prefer
    /// --password-file).
    #[arg(long, value_name = "P", conflicts_with = "password_file")]
    pub password: Option<String>,
    /// Read the bearer password from a file (trailing newline trimmed).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Remove the password: deliveries no longer carry an Authorization header.
    #[arg(long, conflicts_with_all = ["password", "password_file"])]
    pub clear_password: bool,
    /// Time limit of one delivery attempt, from connecting to the end of the answer, at
    /// most 10m; e.g. 5s, 500ms, 1m [new endpoint: 5s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Comma-separated waits before each retry, 100ms-24h each, at most 32 ("" for no
    /// retries) [new endpoint: 5s,15s,60s].
    #[arg(long, value_name = "LIST")]
    pub retry_schedule: Option<String>,
    /// Events delivered concurrently, 1-1000 (1 keeps strict order) [new endpoint: 1].
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<u32>,
}

/// How many attempts `endpoint show` lists.
const RECENT_ATTEMPTS: u32 = 5;

/// The PUT body of `add`/`connect`, credentials read from their files.
async fn settings_body(url: String, s: Settings) -> Result<EndpointUpdate, Failure> {
    let secret = resolve_credential(s.secret, s.secret_file.as_deref(), "secret").await?;
    let password = resolve_credential(s.password, s.password_file.as_deref(), "password").await?;
    let retry_schedule = match s.retry_schedule {
        Some(list) => Some(parse_retry_schedule(&list).map_err(Failure::Input)?),
        None => None,
    };
    Ok(add_body(AddFields {
        url,
        secret: Credential::from_args(secret, s.clear_secret),
        password: Credential::from_args(password, s.clear_password),
        timeout: s.timeout,
        retry_schedule,
        max_in_flight: s.max_in_flight,
    }))
}

/// A failed test or call as the CLI reports it: `error: CODE: message` and its hint on stderr,
/// exit code 1.
fn attempt_failure(e: &AttemptError) -> Failure {
    Failure::Api(ApiError {
        status: hyper::StatusCode::OK,
        error: Some(ErrorDetail {
            code: e.code.clone(),
            message: e.message.clone(),
            hint: e.hint.clone(),
        }),
        body: Default::default(),
    })
}

/// Connected, or the test's error (exit code 1).
fn test_verdict(r: &TestResult) -> Result<(), Failure> {
    match &r.error {
        None if r.connected => Ok(()),
        Some(e) => Err(attempt_failure(e)),
        None => Err(Failure::BadAnswer(
            "the test answered neither connected nor an error".into(),
        )),
    }
}

/// The body of `endpoint call`: inline, `@FILE`, `-` for stdin, or empty.
async fn call_body(data: Option<String>) -> Result<Vec<u8>, Failure> {
    match data.as_deref() {
        None => Ok(Vec::new()),
        Some("-") => read_payload(Some(std::path::Path::new("-"))).await,
        Some(d) => match d.strip_prefix('@') {
            Some(path) => read_payload(Some(std::path::Path::new(path))).await,
            None => Ok(d.as_bytes().to_vec()),
        },
    }
}

pub(super) async fn run(opts: &ClientOpts, cmd: EndpointCmd) -> Result<(), Failure> {
    let mut client = opts.client();
    let fail = |e| opts.failure(e);
    match cmd {
        EndpointCmd::Add { id, url, settings } => {
            let body = settings_body(url, settings).await?;
            let saved = client.put_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&saved.view, |v| {
                render::saved_endpoint(&id, saved.created, v)
            })
        }
        EndpointCmd::Connect { id, url, settings } => {
            let body = settings_body(url, settings).await?;
            client.put_endpoint(&id, &body).await.map_err(fail)?;
            let result = client.test_endpoint(&id).await.map_err(fail)?;
            opts.output(&result, |r| render::test_result(&id, r))?;
            test_verdict(&result)
        }
        EndpointCmd::Test { id } => {
            let result = client.test_endpoint(&id).await.map_err(fail)?;
            opts.output(&result, |r| render::test_result(&id, r))?;
            test_verdict(&result)
        }
        EndpointCmd::Call {
            id,
            data,
            content_type,
        } => {
            let body = call_body(data).await?;
            let result = client
                .call_endpoint(&id, body.into(), Some(&content_type))
                .await
                .map_err(fail)?;
            opts.output(&result, render::call_result)?;
            match &result.error {
                None => Ok(()),
                Some(e) => Err(attempt_failure(e)),
            }
        }
        EndpointCmd::Retry { id } => {
            let result = client.retry_endpoint(&id).await.map_err(fail)?;
            opts.output(&result, |r| format!("{}\n", render::one_line(&r.message)))
        }
        EndpointCmd::List => {
            let list = client.endpoints().await.map_err(fail)?;
            opts.output(&list, |l| render::render_endpoint_table(&l.endpoints))
        }
        EndpointCmd::Show { id } => {
            let view = client.endpoint(&id).await.map_err(fail)?;
            let recent = client
                .attempts(&id, RECENT_ATTEMPTS)
                .await
                .map_err(fail)?
                .attempts;
            // `--json`: the view, plus its newest attempts.
            let mut json = serde_json::to_value(&view)
                .map_err(|e| Failure::BadAnswer(format!("cannot print answer: {e}")))?;
            json["recent_attempts"] = serde_json::to_value(&recent)
                .map_err(|e| Failure::BadAnswer(format!("cannot print answer: {e}")))?;
            opts.output(&json, |_| render::endpoint_screen(&view, &recent))
        }
        EndpointCmd::Pause { id } => {
            let view = client.pause_endpoint(&id).await.map_err(fail)?;
            opts.output(&view, |v| render::state_line("paused", &id, v))
        }
        EndpointCmd::Resume { id } => {
            let view = client.resume_endpoint(&id).await.map_err(fail)?;
            opts.output(&view, |v| render::state_line("resumed", &id, v))
        }
        EndpointCmd::Remove { id, force } => {
            client.delete_endpoint(&id, force).await.map_err(fail)?;
            opts.done(&format!("removed endpoint {id}\n"))
        }
        EndpointCmd::Attempts { id, limit } => {
            let list = client.attempts(&id, limit).await.map_err(fail)?;
            opts.output(&list, |l| render::render_attempt_table(&l.attempts, true))
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
fn add_body(fields: AddFields) -> EndpointUpdate {
    EndpointUpdate {
        url: Some(fields.url),
        secret: fields.secret.into_field(),
        password: fields.password.into_field(),
        timeout: fields.timeout,
        retry_schedule: fields.retry_schedule,
        max_in_flight: fields.max_in_flight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn add_body(fields: AddFields) -> Value {
        serde_json::to_value(super::add_body(fields)).unwrap()
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
}
