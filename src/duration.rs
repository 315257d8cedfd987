//! Human durations as written in config and the API: `250ms`, `5s`, `1m`, `2h`.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?} has no number (write e.g. \"5s\", \"200ms\", \"1m\")")]
    NoNumber(String),
    #[error("duration {0:?} has an unknown unit (use ms, s, m or h)")]
    BadUnit(String),
    #[error("duration {0:?} is too large")]
    TooLarge(String),
}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m` or `h`.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(DurationError::NoNumber(s.to_string()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::TooLarge(s.to_string()))?;
    let ms_per = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::BadUnit(s.to_string())),
    };
    let ms = n
        .checked_mul(ms_per)
        .filter(|ms| *ms <= 1_000 * 3600 * 24 * 365)
        .ok_or_else(|| DurationError::TooLarge(s.to_string()))?;
    Ok(Duration::from_millis(ms))
}

/// Formats with the largest unit that represents the value exactly.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        "0s".to_string()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse(" 1m "), Ok(Duration::from_secs(60)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("s"), Err(DurationError::NoNumber(_))));
        assert!(matches!(parse("5"), Err(DurationError::BadUnit(_))));
        assert!(matches!(parse("5d"), Err(DurationError::BadUnit(_))));
        assert!(matches!(parse("-5s"), Err(DurationError::NoNumber(_))));
        assert!(matches!(
            parse("99999999999999999999999s"),
            Err(DurationError::TooLarge(_))
        ));
        assert!(matches!(parse("9999999h"), Err(DurationError::TooLarge(_))));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "5s", "1m", "2h", "1500ms", "90s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
