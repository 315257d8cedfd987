//! Human durations as written in config and the API: `250ms`, `5s`, `1m`, `2h`.

use std::time::Duration;

/// Why a duration string was refused. Each message says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration (write e.g. \"5s\", \"200ms\", \"1m\")")]
    Empty,
    #[error("duration {0:?} is negative; durations are 0 or more (write e.g. \"1s\")")]
    Negative(String),
    #[error("duration {input:?} has a fraction; write whole numbers of a smaller unit{}",
        suggestion.as_ref().map(|s| format!(", e.g. \"{s}\"")).unwrap_or_default())]
    Fraction {
        input: String,
        suggestion: Option<String>,
    },
    #[error("duration {0:?} has a space between number and unit; write it without (e.g. \"5s\")")]
    Space(String),
    #[error("duration {0:?} has no number (write e.g. \"5s\", \"200ms\", \"1m\")")]
    NoNumber(String),
    #[error("duration {0:?} has no unit (write e.g. \"5s\" or \"500ms\")")]
    NoUnit(String),
    #[error("duration {0:?} has an unknown unit (use ms, s, m or h)")]
    BadUnit(String),
    #[error("duration {0:?} is too large (at most 365 days)")]
    TooLarge(String),
}

/// Milliseconds per unit, for the units we accept.
fn unit_ms(unit: &str) -> Option<u64> {
    match unit {
        "ms" => Some(1),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        _ => None,
    }
}

/// Longest duration accepted anywhere.
const MAX_MS: u64 = 1_000 * 3600 * 24 * 365;

/// Parses `<digits><unit>` with unit `ms`, `s`, `m` or `h` (surrounding white space is
/// ignored; nothing else is).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if t.starts_with('-') {
        return Err(DurationError::Negative(s.to_string()));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, rest) = t.split_at(split);
    if num.is_empty() {
        return Err(DurationError::NoNumber(s.to_string()));
    }
    if let Some(frac) = rest.strip_prefix('.') {
        return Err(fraction(s, num, frac));
    }
    if rest.is_empty() {
        return Err(DurationError::NoUnit(s.to_string()));
    }
    if rest.starts_with(char::is_whitespace) {
        return Err(DurationError::Space(s.to_string()));
    }
    let ms_per = unit_ms(rest).ok_or_else(|| DurationError::BadUnit(s.to_string()))?;
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::TooLarge(s.to_string()))?;
    let ms = n
        .checked_mul(ms_per)
        .filter(|ms| *ms <= MAX_MS)
        .ok_or_else(|| DurationError::TooLarge(s.to_string()))?;
    Ok(Duration::from_millis(ms))
}

/// The error for `1.5s`, with `1500ms` as the suggestion where it is exact.
fn fraction(input: &str, whole: &str, rest: &str) -> DurationError {
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (frac, unit) = rest.split_at(digits);
    let suggestion = (|| {
        let per = unit_ms(unit.trim())?;
        if frac.is_empty() || frac.len() > 9 || whole.len() > 12 {
            return None;
        }
        let scale = 10u64.pow(frac.len() as u32);
        let total = whole.parse::<u64>().ok()?.checked_mul(scale)? + frac.parse::<u64>().ok()?;
        let ms = total.checked_mul(per)?;
        (ms % scale == 0 && ms / scale <= MAX_MS).then(|| format(Duration::from_millis(ms / scale)))
    })();
    DurationError::Fraction {
        input: input.to_string(),
        suggestion,
    }
}

/// Formats with the largest unit that represents the value exactly.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        "0s".to_string()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
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
    fn messages_say_what_is_wrong() {
        // Regression: "1.5s" was called an unknown unit, "-1s" said it had no number, and
        // "5 s" was silently accepted.
        let msg = |s: &str| parse(s).unwrap_err().to_string();
        assert!(msg("1.5s").contains("fraction"), "{}", msg("1.5s"));
        assert!(msg("1.5s").contains("\"1500ms\""), "{}", msg("1.5s"));
        assert!(msg("0.25m").contains("\"15s\""), "{}", msg("0.25m"));
        assert!(msg("1.5").contains("fraction"), "{}", msg("1.5"));
        assert!(msg("-1s").contains("negative"), "{}", msg("-1s"));
        assert!(msg("-5s").contains("negative"), "{}", msg("-5s"));
        assert!(matches!(parse("5 s"), Err(DurationError::Space(_))));
        assert!(msg("5 s").contains("space"), "{}", msg("5 s"));
        assert!(matches!(parse("5\ts"), Err(DurationError::Space(_))));
        assert!(msg("5").contains("no unit"), "{}", msg("5"));
        assert!(msg("5d").contains("unknown unit"), "{}", msg("5d"));
        assert!(msg("").contains("empty"));
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("s"), Err(DurationError::NoNumber(_))));
        assert!(matches!(parse("5"), Err(DurationError::NoUnit(_))));
        assert!(matches!(parse("5d"), Err(DurationError::BadUnit(_))));
        assert!(matches!(parse("-5s"), Err(DurationError::Negative(_))));
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
