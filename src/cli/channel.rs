//! `courier channel …`: the clap definitions of the channel commands and how each one talks to
//! the daemon through [`crate::client`].

use std::path::PathBuf;

use super::input::{Credential, resolve_credential};
use super::{ClientOpts, Failure, render};
use crate::views::ChannelUpdate;

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

pub(super) async fn run(opts: &ClientOpts, cmd: ChannelCmd) -> Result<(), Failure> {
    let mut client = opts.client();
    let fail = |e| opts.failure(e);
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
            let saved = client.put_channel(&id, &body).await.map_err(fail)?;
            opts.output(&saved.view, |v| {
                render::saved_channel(&id, saved.created, v)
            })
        }
        ChannelCmd::List => {
            let list = client.channels().await.map_err(fail)?;
            opts.output(&list, |l| render::render_channel_table(&l.channels))
        }
        ChannelCmd::Show { id } => {
            let view = client.channel(&id).await.map_err(fail)?;
            opts.output(&view, render::render_channel)
        }
        ChannelCmd::Remove { id } => {
            client.delete_channel(&id).await.map_err(fail)?;
            opts.done(&format!("removed channel {id}\n"))
        }
    }
}

struct ChannelFields {
    endpoint: String,
    secret: Credential,
    rate_limit: Option<u32>,
    burst: Option<u32>,
}

/// The channel PUT body: `endpoint` plus only the fields that were given.
fn channel_body(fields: ChannelFields) -> ChannelUpdate {
    ChannelUpdate {
        endpoint: Some(fields.endpoint),
        secret: fields.secret.into_field(),
        rate_limit: fields.rate_limit,
        burst: fields.burst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn channel_body(fields: ChannelFields) -> Value {
        serde_json::to_value(super::channel_body(fields)).unwrap()
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
}
