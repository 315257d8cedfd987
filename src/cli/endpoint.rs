//! `courier endpoint …`: the clap definitions of the endpoint commands and how each one talks
//! to the daemon through [`crate::client`].

use std::path::PathBuf;

use super::input::{Credential, parse_retry_schedule, resolve_credential};
use super::{ClientOpts, Failure, render};
use crate::views::EndpointUpdate;

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

pub(super) async fn run(opts: &ClientOpts, cmd: EndpointCmd) -> Result<(), Failure> {
    let mut client = opts.client();
    let fail = |e| opts.failure(e);
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
            let saved = client.put_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&saved.view, |v| {
                render::saved_endpoint(&id, saved.created, v)
            })
        }
        EndpointCmd::List => {
            let list = client.endpoints().await.map_err(fail)?;
            opts.output(&list, |l| render::render_endpoint_table(&l.endpoints))
        }
        EndpointCmd::Show { id } => {
            let view = client.endpoint(&id).await.map_err(fail)?;
            opts.output(&view, render::render_endpoint)
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
