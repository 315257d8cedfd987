//! `courier endpoint …`: the clap definitions of the endpoint commands and how each one talks
//! to the daemon through [`crate::client`].

mod settings;

use super::{ClientOpts, Failure, render};

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
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        settings: SettingFlags,
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
        EndpointCmd::Add { id, url, settings } => {
            let body = settings.into_update(Some(url)).await?;
            let saved = client.put_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&saved.view, |v| {
                render::saved_endpoint(&id, saved.created, v)
            })
        }
        EndpointCmd::Set { id, url, settings } => {
            if url.is_none() && settings.is_empty() {
                return Err(Failure::Input(
                    "nothing to change: give --url or a setting such as --timeout 3s".into(),
                ));
            }
            let body = settings.into_update(url).await?;
            let view = client.patch_endpoint(&id, &body).await.map_err(fail)?;
            opts.output(&view, |v| render::saved_endpoint(&id, false, v))
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
