//! A token bucket: `rate` tokens a second, holding at most `burst`. Pure: the caller passes the
//! current instant (tokio's, so tests run on paused time).

use std::time::Duration;

use tokio::time::Instant;

/// One bucket (one ingress channel).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let rate = f64::from(rate_per_sec.max(1));
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let mut b = TokenBucket::new(100, 100, Instant::now());
        for _ in 0..100 {
            assert!(b.try_acquire(Instant::now()).is_ok());
        }
        let wait = b.try_acquire(Instant::now()).unwrap_err();
        assert!(
            wait <= Duration::from_millis(10) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // One second later, 100 more, not 101.
        tokio::time::advance(Duration::from_secs(1)).await;
        let ok = (0..200)
            .filter(|_| b.try_acquire(Instant::now()).is_ok())
            .count();
        assert_eq!(ok, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_rate_is_the_configured_rate() {
        let mut b = TokenBucket::new(100, 100, Instant::now());
        let mut ok = 0;
        // 10 s of one request every millisecond: the burst plus 100 per second.
        for _ in 0..10_000 {
            if b.try_acquire(Instant::now()).is_ok() {
                ok += 1;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!((1_099..=1_101).contains(&ok), "{ok}");
    }

    #[tokio::test(start_paused = true)]
    async fn refill_is_capped_at_burst() {
        let mut b = TokenBucket::new(10, 5, Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        let ok = (0..50)
            .filter(|_| b.try_acquire(Instant::now()).is_ok())
            .count();
        assert_eq!(ok, 5);
    }
}
