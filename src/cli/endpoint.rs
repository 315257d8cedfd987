//! `courier endpoint …`: the clap definitions of the endpoint commands (settings, connect and
//! test, call, retry now, the operator's `show`) and how each one talks to the daemon through
//! [`crate::client`].

mod settings;

use super::input::read_payload;
use super::{ClientOpts, Failure, render};
use crate::client::ApiError;
use crate::views::{AttemptError, ErrorDetail, TestResult};

pub use settings::SettingFlags;

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
        settings: SettingFlags,
    },
    /// Change settings of an existing endpoint; every option left out keeps its value.
    ///
    /// Unlike `add`, it never creates an endpoint (an unknown id is ENDPOINT_NOT_FOUND) and
    /// needs no URL: `courier endpoint set acme --timeout 3s`.
    Set {
        /// Endpoint id.
        id: String,
        /// New destination URL.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        #[command(flatten)]
        settings: SettingFlags,
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
        settings: SettingFlags,
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

/// How many attempts `endpoint show` lists.
const RECENT_ATTEMPTS: u32 = 5;

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
            let body = settings.into_update(Some(url)).await?;
            let saved = client.put_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&saved.view, |v| {
                render::saved_endpoint(&id, saved.created, v)
            })
        }
        EndpointCmd::Set {
            id,
            endpoint_url,
            settings,
        } => {
            if endpoint_url.is_none() && settings.is_empty() {
                return Err(Failure::Input(
                    "nothing to change: give --endpoint-url or a setting such as --timeout 3s"
                        .into(),
                ));
            }
            let body = settings.into_update(endpoint_url).await?;
            let view = client.patch_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&view, |v| render::saved_endpoint(&id, false, v))
        }
        EndpointCmd::Connect { id, url, settings } => {
            let body = settings.into_update(Some(url)).await?;
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

#[cfg(test)]
mod tests {
    use super::super::input::Credential;
    use super::settings::{UpdateFields, update_body};
    use serde_json::{Value, json};

    fn add_body(fields: UpdateFields) -> Value {
        serde_json::to_value(update_body(fields)).unwrap()
    }

    #[test]
    fn add_body_has_only_given_fields() {
        let minimal = add_body(UpdateFields {
            url: Some("https://x.io/h".into()),
            secret: Credential::Keep,
            password: Credential::Keep,
            timeout: None,
            retry_schedule: None,
            max_in_flight: None,
        });
        assert_eq!(minimal, json!({"url": "https://x.io/h"}));
        let full = add_body(UpdateFields {
            url: Some("https://x.io/h".into()),
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
            add_body(UpdateFields {
                url: Some("https://x.io/h".into()),
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
