//! The endpoint setting flags shared by `courier endpoint add`, `set` and `connect`, and
//! the update body they make: only the settings given, so the daemon keeps every other one.

use std::path::PathBuf;

use super::super::Failure;
use super::super::input::{Credential, parse_retry_schedule, resolve_credential};
use crate::views::EndpointUpdate;

/// Endpoint settings given on the command line; each left out keeps its value.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SettingFlags {
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
    /// Most undelivered events the endpoint holds before intake answers 429 BACKLOG_FULL,
    /// 1-1000000000, or `default` for the daemon's --max-backlog [new endpoint: default].
    #[arg(long, value_name = "N|default")]
    pub max_backlog: Option<String>,
}

/// `--max-backlog`: a number, or `default` (sent as `null`: the daemon's `--max-backlog`).
pub(in crate::cli) fn max_backlog_arg(v: &str) -> Result<Option<u64>, Failure> {
    match v.trim() {
        "default" | "none" => Ok(None),
        n => n.parse::<u64>().map(Some).map_err(|_| {
            Failure::Input(format!(
                "--max-backlog {v:?}: give a whole number of events, or `default`"
            ))
        }),
    }
}

impl SettingFlags {
    /// Whether no setting was given at all.
    pub fn is_empty(&self) -> bool {
        self.secret.is_none()
            && self.secret_file.is_none()
            && !self.clear_secret
            && self.password.is_none()
            && self.password_file.is_none()
            && !self.clear_password
            && self.timeout.is_none()
            && self.retry_schedule.is_none()
            && self.max_in_flight.is_none()
            && self.max_backlog.is_none()
    }

    /// The update body: `url` when given, plus only the settings given (credentials read from
    /// their files).
    pub(in crate::cli) async fn into_update(
        self,
        url: Option<String>,
    ) -> Result<EndpointUpdate, Failure> {
        let secret = resolve_credential(self.secret, self.secret_file.as_deref(), "secret").await?;
        let password =
            resolve_credential(self.password, self.password_file.as_deref(), "password").await?;
        let retry_schedule = match self.retry_schedule {
            Some(list) => Some(parse_retry_schedule(&list).map_err(Failure::Input)?),
            None => None,
        };
        let max_backlog = self
            .max_backlog
            .as_deref()
            .map(max_backlog_arg)
            .transpose()?;
        let mut body = update_body(UpdateFields {
            url,
            secret: Credential::from_args(secret, self.clear_secret),
            password: Credential::from_args(password, self.clear_password),
            timeout: self.timeout,
            retry_schedule,
            max_in_flight: self.max_in_flight,
        });
        body.max_backlog = max_backlog;
        Ok(body)
    }
}

pub(super) struct UpdateFields {
    pub url: Option<String>,
    pub secret: Credential,
    pub password: Credential,
    pub timeout: Option<String>,
    pub retry_schedule: Option<Vec<String>>,
    pub max_in_flight: Option<u32>,
}

/// The endpoint update body: only the fields that were given.
pub(super) fn update_body(fields: UpdateFields) -> EndpointUpdate {
    EndpointUpdate {
        url: fields.url,
        secret: fields.secret.into_field(),
        password: fields.password.into_field(),
        timeout: fields.timeout,
        retry_schedule: fields.retry_schedule,
        max_in_flight: fields.max_in_flight,
        max_backlog: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn max_backlog_is_sent_as_given_and_default_as_null() {
        let flags = |v: &str| SettingFlags {
            max_backlog: Some(v.into()),
            ..Default::default()
        };
        assert!(!flags("3").is_empty());
        let body = flags("3").into_update(None).await.unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"max_backlog": 3})
        );
        let body = flags("default").into_update(None).await.unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"max_backlog": null})
        );
        let body = SettingFlags::default().into_update(None).await.unwrap();
        assert_eq!(serde_json::to_value(&body).unwrap(), serde_json::json!({}));
        assert!(matches!(
            flags("lots").into_update(None).await,
            Err(Failure::Input(m)) if m.contains("--max-backlog")
        ));
    }
}
