//! Retry policy as data: how a failed attempt is named, whether it blames the endpoint, and what
//! happens next. Pure functions of the schedule, counts and durations; no clock, no I/O.

use std::time::Duration;

/// Why an attempt failed. Each has a stable code shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The attempt did not complete within the endpoint's timeout.
    Timeout,
    /// Nothing listens on the port.
    ConnectionRefused,
    /// The peer closed or reset the connection mid-exchange.
    ConnectionReset,
    /// The host name did not resolve.
    Dns,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// Any other failure to connect.
    Connect,
    /// The peer answered something that is not HTTP/1.1 we can read.
    Protocol,
    /// The receiver answered with a non-2xx status.
    Http(u16),
}

impl FailureKind {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::Timeout => "ETIMEDOUT",
            FailureKind::ConnectionRefused => "ECONNREFUSED",
            FailureKind::ConnectionReset => "ECONNRESET",
            FailureKind::Dns => "DNS_ERROR",
            FailureKind::Tls => "TLS_ERROR",
            FailureKind::Connect => "CONNECT_ERROR",
            FailureKind::Protocol => "PROTOCOL_ERROR",
            FailureKind::Http(401) => "HTTP_401",
            FailureKind::Http(403) => "HTTP_403",
            FailureKind::Http(404) => "HTTP_404",
            FailureKind::Http(429) => "HTTP_429",
            FailureKind::Http(s) if (300..400).contains(s) => "HTTP_3XX",
            FailureKind::Http(s) if (400..500).contains(s) => "HTTP_4XX",
            FailureKind::Http(_) => "HTTP_5XX",
        }
    }

    /// Whether this failure says the endpoint itself is unhealthy (timeouts, connection and TLS
    /// errors, 5xx, 429), as opposed to the receiver rejecting this one event (other 4xx, 3xx).
    /// A dead letter caused by such a failure puts the endpoint `down`.
    pub fn blames_endpoint(&self) -> bool {
        match self {
            FailureKind::Http(s) => *s == 429 || *s >= 500,
            _ => true,
        }
    }
}

/// The shortest wait after a failed attempt before the same event is sent again. Schedule
/// entries below it are refused when an endpoint is configured, and clamped here for anything
/// stored before that rule existed, so no schedule can make Courier hammer a failing receiver.
pub const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The shortest wait before probing a `down` endpoint again, and before re-sending after a 429
/// (whatever its `Retry-After` says, `0` included): at most one such attempt a second per event.
pub const MIN_BACKOFF_DELAY: Duration = Duration::from_secs(1);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Attempt again after `after`. `counted` says whether this failure used up an entry of the
    /// retry schedule (a 429 with `Retry-After` does not).
    Retry { after: Duration, counted: bool },
    /// The schedule is used up: dead-letter with `MAX_RETRIES_EXCEEDED`.
    Dead,
}

/// Decides the next step after a failure.
///
/// `failures_before` is how many earlier failures of this event used up schedule entries.
/// `retry_after` is the receiver's `Retry-After` on a 429, honoured up to `retry_after_cap`.
pub fn on_failure(
    schedule: &[Duration],
    failures_before: u32,
    retry_after: Option<Duration>,
    retry_after_cap: Duration,
) -> RetryAction {
    if let Some(ra) = retry_after {
        return RetryAction::Retry {
            after: ra.min(retry_after_cap).max(MIN_BACKOFF_DELAY),
            counted: false,
        };
    }
    match schedule.get(failures_before as usize) {
        Some(after) => RetryAction::Retry {
            after: (*after).max(MIN_RETRY_DELAY),
            counted: true,
        },
        None => RetryAction::Dead,
    }
}

/// Wait before the `probe`-th probe (0-based) of a `down` endpoint: the first retry delay,
/// doubling, capped at the longest retry delay (5 s when the schedule is empty), and never less
/// than [`MIN_BACKOFF_DELAY`] (a `0s` first entry must not turn probing into a tight loop).
pub fn probe_delay(schedule: &[Duration], probe: u32) -> Duration {
    let first = schedule
        .first()
        .copied()
        .unwrap_or(Duration::from_secs(5))
        .max(MIN_BACKOFF_DELAY);
    let cap = schedule.iter().copied().max().unwrap_or(first).max(first);
    let factor = 1u32.checked_shl(probe.min(20)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(cap)
}

/// Parses a `Retry-After` value in delay-seconds form. HTTP-dates are not honoured (the attempt
/// then counts as an ordinary failure).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn default_schedule_gives_four_attempts() {
        let sched = [s(5), s(15), s(60)];
        let cap = s(300);
        assert_eq!(
            on_failure(&sched, 0, None, cap),
            RetryAction::Retry {
                after: s(5),
                counted: true
            }
        );
        assert_eq!(
            on_failure(&sched, 1, None, cap),
            RetryAction::Retry {
                after: s(15),
                counted: true
            }
        );
        assert_eq!(
            on_failure(&sched, 2, None, cap),
            RetryAction::Retry {
                after: s(60),
                counted: true
            }
        );
        assert_eq!(on_failure(&sched, 3, None, cap), RetryAction::Dead);
    }

    #[test]
    fn empty_schedule_dead_letters_at_first_failure() {
        assert_eq!(on_failure(&[], 0, None, s(1)), RetryAction::Dead);
    }

    #[test]
    fn retry_after_is_free_and_capped() {
        let sched = [s(5)];
        assert_eq!(
            on_failure(&sched, 1, Some(s(2)), s(300)),
            RetryAction::Retry {
                after: s(2),
                counted: false
            }
        );
        assert_eq!(
            on_failure(&sched, 0, Some(s(3600)), s(300)),
            RetryAction::Retry {
                after: s(300),
                counted: false
            }
        );
    }

    #[test]
    fn probe_backoff_doubles_to_the_cap() {
        let sched = [s(5), s(15), s(60)];
        let got: Vec<u64> = (0..8).map(|k| probe_delay(&sched, k).as_secs()).collect();
        assert_eq!(got, [5, 10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(probe_delay(&[], 0), s(5));
        assert_eq!(probe_delay(&sched, u32::MAX), s(60));
    }

    #[test]
    fn no_schedule_makes_a_tight_loop() {
        // Regression: a schedule starting with 0s made probes of a down endpoint wait
        // 0 × 2^k = 0 and the daemon sent ~20,000 attempts a second.
        let zero = [Duration::ZERO, s(2)];
        for k in 0..40 {
            assert!(probe_delay(&zero, k) >= MIN_BACKOFF_DELAY, "probe {k}");
        }
        assert_eq!(probe_delay(&zero, 0), MIN_BACKOFF_DELAY);
        assert_eq!(probe_delay(&zero, 1), s(2));
        assert_eq!(probe_delay(&[Duration::ZERO], 7), MIN_BACKOFF_DELAY);
        assert_eq!(
            probe_delay(&[Duration::from_millis(1)], 3),
            MIN_BACKOFF_DELAY
        );
        // Retries: a stored entry below the floor waits the floor.
        for (i, entry) in [Duration::ZERO, Duration::from_millis(1)]
            .iter()
            .enumerate()
        {
            assert_eq!(
                on_failure(&[*entry], 0, None, s(300)),
                RetryAction::Retry {
                    after: MIN_RETRY_DELAY,
                    counted: true
                },
                "entry {i}"
            );
        }
        // A 429 with Retry-After: 0 (or a 0 cap) still waits a second, without using a retry.
        for cap in [s(300), Duration::ZERO] {
            assert_eq!(
                on_failure(&[], 0, Some(Duration::ZERO), cap),
                RetryAction::Retry {
                    after: MIN_BACKOFF_DELAY,
                    counted: false
                }
            );
        }
    }

    #[test]
    fn codes_and_blame() {
        assert_eq!(FailureKind::Timeout.code(), "ETIMEDOUT");
        assert_eq!(FailureKind::Http(503).code(), "HTTP_5XX");
        // The seeds' "common errors": 401 wrong password, 404 URL not found, each its own code.
        assert_eq!(FailureKind::Http(401).code(), "HTTP_401");
        assert_eq!(FailureKind::Http(403).code(), "HTTP_403");
        assert_eq!(FailureKind::Http(404).code(), "HTTP_404");
        assert_eq!(FailureKind::Http(400).code(), "HTTP_4XX");
        assert_eq!(FailureKind::Http(410).code(), "HTTP_4XX");
        assert_eq!(FailureKind::Http(429).code(), "HTTP_429");
        assert_eq!(FailureKind::Http(302).code(), "HTTP_3XX");
        for k in [
            FailureKind::Timeout,
            FailureKind::ConnectionRefused,
            FailureKind::ConnectionReset,
            FailureKind::Tls,
            FailureKind::Dns,
            FailureKind::Http(500),
            FailureKind::Http(429),
        ] {
            assert!(k.blames_endpoint(), "{k:?}");
        }
        for k in [
            FailureKind::Http(400),
            FailureKind::Http(401),
            FailureKind::Http(404),
            FailureKind::Http(301),
        ] {
            assert!(!k.blames_endpoint(), "{k:?}");
        }
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("2"), Some(s(2)));
        assert_eq!(parse_retry_after(" 120 "), Some(s(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("99999999999999999"), None);
        assert_eq!(parse_retry_after(""), None);
    }
}
