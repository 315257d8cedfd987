//! The CLI's local input: credentials given inline or in files, retry schedules, payloads from
//! a file or stdin.

use std::io::{IsTerminal, Read};
use std::path::Path;

use super::Failure;

/// The inline value, or the contents of `file` with its trailing newline(s) trimmed.
pub(super) async fn resolve_credential(
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
pub(super) fn trim_trailing_newlines(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

/// `"5s, 15s,60s"` -> `["5s","15s","60s"]`; `""` -> `[]` (no retries).
pub(super) fn parse_retry_schedule(list: &str) -> Result<Vec<String>, String> {
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
pub(super) enum Credential {
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
    pub(super) fn from_args(value: Option<String>, clear: bool) -> Self {
        match (value, clear) {
            (_, true) => Credential::Clear,
            (Some(v), false) => Credential::Set(v),
            (None, false) => Credential::Keep,
        }
    }

    /// The field of an update body: absent, a value, or `null`.
    pub(super) fn into_field(self) -> Option<Option<String>> {
        match self {
            Credential::Keep => None,
            Credential::Set(v) => Some(Some(v)),
            Credential::Clear => Some(None),
        }
    }
}

/// The payload of `send`: a file, or stdin for `-` or no file (unless stdin is a terminal).
pub(super) async fn read_payload(file: Option<&Path>) -> Result<Vec<u8>, Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn credential_from_args() {
        assert_eq!(Credential::from_args(None, false), Credential::Keep);
        assert_eq!(
            Credential::from_args(Some("k".into()), false),
            Credential::Set("k".into())
        );
        assert_eq!(Credential::from_args(None, true), Credential::Clear);
    }
}
