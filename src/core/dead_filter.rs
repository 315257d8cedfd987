//! Which dead letters a bulk operation selects (endpoint, reason, a `dead_at` window) and where
//! a page of them starts (the opaque cursor), with the RFC 3339 parser the window needs. Pure:
//! the store walks, this decides.
//!
//! Order: with an endpoint, a walk follows the endpoint's own order (`seq`, the order events
//! were accepted in, which is also the order a replay delivers them in); without one, it
//! follows the event id (acceptance time, to the millisecond). A cursor names the last position
//! a page looked at, so a page never depends on an index that moves under concurrent inserts and
//! deletes: every dead letter present for the whole walk is seen exactly once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::core::ids::looks_like_event_id;
use crate::core::model::DeadLetter;

/// What a list, replay, purge or export selects. `since` is inclusive, `until` exclusive, both
/// on `dead_at` (unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    pub endpoint: Option<String>,
    pub reason: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl DeadFilter {
    /// Every dead letter of one endpoint.
    pub fn endpoint(id: impl Into<String>) -> Self {
        Self {
            endpoint: Some(id.into()),
            ..Self::default()
        }
    }

    /// Whether `dl` is selected.
    pub fn matches(&self, dl: &DeadLetter) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == dl.endpoint)
            && self.reason.as_deref().is_none_or(|r| r == dl.reason)
            && self.since_ms.is_none_or(|s| dl.dead_at_ms >= s)
            && self.until_ms.is_none_or(|u| dl.dead_at_ms < u)
    }

    /// Whether only the endpoint is filtered on (every row of its walk matches).
    pub fn endpoint_only(&self) -> bool {
        self.reason.is_none() && self.since_ms.is_none() && self.until_ms.is_none()
    }
}

/// Where a walk goes on: after this position of its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// After this seq of the filtered endpoint.
    Seq(u64),
    /// After this event id (walks without an endpoint).
    Id(String),
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this daemon handed out")]
    Malformed,
    #[error("the cursor belongs to a walk {0}")]
    OtherWalk(&'static str),
}

impl Cursor {
    /// The opaque text handed out as `next_cursor`.
    pub fn encode(&self) -> String {
        let plain = match self {
            Cursor::Seq(s) => format!("1s{s}"),
            Cursor::Id(id) => format!("1i{id}"),
        };
        URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads a cursor back, checking it fits a walk with (`by_endpoint`) or without an endpoint.
    pub fn decode(text: &str, by_endpoint: bool) -> Result<Cursor, CursorError> {
        let raw = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let plain = std::str::from_utf8(&raw).map_err(|_| CursorError::Malformed)?;
        let cursor = if let Some(seq) = plain.strip_prefix("1s") {
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CursorError::Malformed);
            }
            Cursor::Seq(seq.parse().map_err(|_| CursorError::Malformed)?)
        } else if let Some(id) = plain.strip_prefix("1i") {
            if !looks_like_event_id(id) {
                return Err(CursorError::Malformed);
            }
            Cursor::Id(id.to_string())
        } else {
            return Err(CursorError::Malformed);
        };
        match (&cursor, by_endpoint) {
            (Cursor::Seq(_), false) => Err(CursorError::OtherWalk("filtered by endpoint")),
            (Cursor::Id(_), true) => Err(CursorError::OtherWalk("without an endpoint filter")),
            _ => Ok(cursor),
        }
    }
}

/// Unix milliseconds of an RFC 3339 timestamp: `2026-11-21T06:49:06Z`,
/// `2026-11-21T06:49:06.123+01:00` (fractions past milliseconds are cut; `t`/`z` and a space
/// for `T` accepted). `None` when it is not one, or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            ms *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    let total = secs.checked_mul(1000)?.checked_add(ms)?;
    u64::try_from(total).ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::timefmt::rfc3339;

    #[test]
    fn timestamps_round_trip_and_offsets_apply() {
        for ms in [0, 951_782_400_000, 1_795_240_146_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-21T06:49:06.123+01:00"),
            Some(1_795_240_146_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T05:49:06Z"),
            Some(1_795_240_146_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21t05:49:06.1234567z"),
            Some(1_795_240_146_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T05:19:06-00:30"),
            Some(1_795_240_146_000)
        );
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-11-21",
            "2026-11-21T05:49:06",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T05:49:06.Z",
            "2026-11-21T05:49:06Zjunk",
            "2026-11-21T05:49:06+0100",
            "1969-12-31T23:59:59Z",
            "2026-11-21T05:49:06\u{e9}",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let id = "evt_0123456789ABCDEFGHJKMNPQRS".to_string();
        for (c, by_ep) in [(Cursor::Seq(0), true), (Cursor::Seq(u64::MAX), true)] {
            assert_eq!(Cursor::decode(&c.encode(), by_ep), Ok(c));
        }
        let c = Cursor::Id(id.clone());
        assert_eq!(Cursor::decode(&c.encode(), false), Ok(c.clone()));
        assert!(matches!(
            Cursor::decode(&c.encode(), true),
            Err(CursorError::OtherWalk(_))
        ));
        assert!(matches!(
            Cursor::decode(&Cursor::Seq(3).encode(), false),
            Err(CursorError::OtherWalk(_))
        ));
        for bad in ["", "!!", "MXM", "abc", &URL_SAFE_NO_PAD.encode("1iev_x")] {
            assert_eq!(
                Cursor::decode(bad, true).and(Cursor::decode(bad, false)),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn filters_select_on_every_field() {
        let dl = DeadLetter {
            event_id: "evt_0123456789ABCDEFGHJKMNPQRS".into(),
            endpoint: "a".into(),
            seq: 1,
            reason: "MAX_RETRIES_EXCEEDED".into(),
            progress: Default::default(),
            dead_at_ms: 1000,
        };
        assert!(DeadFilter::default().matches(&dl));
        assert!(DeadFilter::endpoint("a").matches(&dl));
        assert!(!DeadFilter::endpoint("b").matches(&dl));
        let f = |since, until| DeadFilter {
            since_ms: since,
            until_ms: until,
            ..DeadFilter::default()
        };
        assert!(f(Some(1000), Some(1001)).matches(&dl), "since inclusive");
        assert!(!f(None, Some(1000)).matches(&dl), "until exclusive");
        assert!(!f(Some(1001), None).matches(&dl));
        let r = DeadFilter {
            reason: Some("ENDPOINT_DELETED".into()),
            ..DeadFilter::default()
        };
        assert!(!r.matches(&dl));
    }
}
