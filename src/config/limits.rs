//! The limits group of `courier serve`'s configuration: `--max-backlog` (events per endpoint),
//! `--max-journal-bytes` (bytes of events the journal holds: `512MiB`, `2GiB`, plain bytes)
//! and `--retention` (how long delivered events are kept for back-fill), each resolved flag >
//! env > file > default and checked, into the journal's [`Limits`].

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, FileConfig, ServeArgs, number};
use crate::core::duration;
use crate::store::{DEFAULT_MAX_BACKLOG, DEFAULT_RETENTION_MS, Limits};

/// Shortest `--retention`: the retention task's shortest period.
pub const RETENTION_MIN: Duration = Duration::from_millis(100);
/// Longest `--retention` (ten years).
pub const RETENTION_MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A size in the config file: a whole number of bytes, or text with a unit (`"512MiB"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

/// Bytes of a size given as text: a whole number, optionally followed by a unit — `B`, `KiB`,
/// `MiB`, `GiB`, `TiB` (powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000), case
/// ignored, a space between allowed.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512MiB, 2GiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Smallest and largest `--segment-size`.
pub const SEGMENT_MIN: u64 = 64 << 10;
pub const SEGMENT_MAX: u64 = 1 << 30;

/// `--segment-size`, resolved (flag > env > file > default) and checked.
pub(super) fn segment_size(args: &ServeArgs, file: &FileConfig) -> Result<u64, ConfigError> {
    let text = match (&args.segment_size, &file.segment_size) {
        (Some(t), _) => t.clone(),
        (None, Some(ByteSize::Bytes(n))) => n.to_string(),
        (None, Some(ByteSize::Text(t))) => t.clone(),
        (None, None) => return Ok(crate::store::redb::segments::DEFAULT_SEGMENT_BYTES),
    };
    let n = parse_bytes(&text).map_err(|e| ConfigError(format!("segment_size: {e}")))?;
    if !(SEGMENT_MIN..=SEGMENT_MAX).contains(&n) {
        return Err(ConfigError(format!(
            "segment_size: {n} bytes is outside 64KiB..=1GiB"
        )));
    }
    Ok(n)
}

/// The three limits, resolved and checked: `(max_backlog, max_journal_bytes, retention)`.
pub(super) fn resolve(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<(u64, Option<u64>, Duration), ConfigError> {
    let max_backlog = number("max_backlog", args.max_backlog.as_deref())?
        .map(|n| n as u64)
        .or(file.max_backlog)
        .unwrap_or(DEFAULT_MAX_BACKLOG);
    if max_backlog == 0 {
        return Err(ConfigError("max_backlog: must be at least 1".into()));
    }
    let journal = match (&args.max_journal_bytes, &file.max_journal_bytes) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(ByteSize::Bytes(n))) => Some(n.to_string()),
        (None, Some(ByteSize::Text(t))) => Some(t.clone()),
        (None, None) => None,
    };
    let max_journal_bytes = match journal.as_deref().map(str::trim) {
        None | Some("off" | "none" | "") => None,
        Some(t) => {
            let n = parse_bytes(t).map_err(|e| ConfigError(format!("max_journal_bytes: {e}")))?;
            if n == 0 {
                return Err(ConfigError(
                    "max_journal_bytes: must be at least 1 byte (or \"none\" for no limit)".into(),
                ));
            }
            Some(n)
        }
    };
    let retention = match args.retention.clone().or(file.retention.clone()) {
        None => Duration::from_millis(DEFAULT_RETENTION_MS),
        Some(s) => duration::parse(&s).map_err(|e| ConfigError(format!("retention: {e}")))?,
    };
    if !(RETENTION_MIN..=RETENTION_MAX).contains(&retention) {
        return Err(ConfigError(format!(
            "retention: {} is outside {}..={}",
            duration::format(retention),
            duration::format(RETENTION_MIN),
            duration::format(RETENTION_MAX)
        )));
    }
    Ok((max_backlog, max_journal_bytes, retention))
}

impl super::Config {
    /// The limits the journal's rules enforce.
    pub fn limits(&self) -> Limits {
        Limits {
            max_backlog: self.max_backlog,
            max_journal_bytes: self.max_journal_bytes,
            retention_ms: u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, parse_file};
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("2 gib"), Ok(2 << 30));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("3GB"), Ok(3_000_000_000));
        assert_eq!(parse_bytes("10B"), Ok(10));
        for bad in ["", "MiB", "1.5GiB", "-1", "12 parsecs", "99999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_resolve_flag_over_file_over_default() {
        let merge = |args: ServeArgs, file: &str| Config::merge(&args, parse_file(file).unwrap());
        let c = merge(ServeArgs::default(), "").unwrap();
        assert_eq!(c.limits(), Limits::default());
        assert_eq!(
            c.retention,
            Duration::from_secs(72 * 3600),
            "the contract's 72h"
        );
        assert_eq!(c.max_journal_bytes, None);
        let c = merge(
            ServeArgs::default(),
            "retention = \"2h\"\nmax_journal_bytes = \"512MiB\"\n",
        )
        .unwrap();
        assert_eq!(c.retention, Duration::from_secs(7200));
        assert_eq!(c.max_journal_bytes, Some(512 << 20));
        assert_eq!(c.segment_bytes, 64 << 20, "the default segment size");
        let c = merge(ServeArgs::default(), "segment_size = \"1MiB\"\n").unwrap();
        assert_eq!(c.segment_bytes, 1 << 20);
        let bad = merge(ServeArgs::default(), "segment_size = 4096\n").unwrap_err();
        assert!(bad.0.contains("segment_size"), "{bad:?}");
        let c = merge(ServeArgs::default(), "max_journal_bytes = 4096\n").unwrap();
        assert_eq!(c.max_journal_bytes, Some(4096), "plain bytes in the file");
        let c = merge(
            ServeArgs {
                retention: Some("2s".into()),
                max_journal_bytes: Some("1GiB".into()),
                ..Default::default()
            },
            "retention = \"2h\"\nmax_journal_bytes = 4096\n",
        )
        .unwrap();
        assert_eq!(
            c.limits(),
            Limits {
                max_backlog: DEFAULT_MAX_BACKLOG,
                max_journal_bytes: Some(1 << 30),
                retention_ms: 2_000,
            },
            "the flags win"
        );
        let c = merge(
            ServeArgs {
                max_journal_bytes: Some("none".into()),
                ..Default::default()
            },
            "max_journal_bytes = 4096\n",
        )
        .unwrap();
        assert_eq!(
            c.max_journal_bytes, None,
            "a flag can lift the file's limit"
        );
    }

    #[test]
    fn bad_limits_are_named() {
        let merge = |args: ServeArgs| Config::merge(&args, FileConfig::default());
        for (args, name) in [
            (
                ServeArgs {
                    retention: Some("forever".into()),
                    ..Default::default()
                },
                "retention",
            ),
            (
                ServeArgs {
                    retention: Some("10ms".into()),
                    ..Default::default()
                },
                "retention",
            ),
            (
                ServeArgs {
                    max_journal_bytes: Some("0".into()),
                    ..Default::default()
                },
                "max_journal_bytes",
            ),
            (
                ServeArgs {
                    max_journal_bytes: Some("lots".into()),
                    ..Default::default()
                },
                "max_journal_bytes",
            ),
        ] {
            let e = merge(args).unwrap_err();
            assert!(e.0.contains(name), "{e}");
        }
    }
}
