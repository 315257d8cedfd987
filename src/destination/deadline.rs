//! The attempt timeout, measuring the attempt and not time the process was frozen: it is waited
//! out in ticks of at most [`TICK`], and a tick that ends [`FREEZE_THRESHOLD`] or more later
//! than asked means the process was not running (SIGSTOP, a stall, a paused VM whose clock ran
//! on); that overrun is not counted. The accounting is pure ([`AttemptClock`]); the wrapper
//! ([`within_timeout`]) runs one timer, re-armed each tick.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Longest single wait of an attempt's timeout: a freeze is noticed at most this long after it.
pub const TICK: Duration = Duration::from_millis(250);

/// A tick that ends this much later than asked was not scheduling jitter (milliseconds, tens
/// to a few hundred on a loaded machine) but the process not running.
pub const FREEZE_THRESHOLD: Duration = Duration::from_secs(1);

/// How much of an attempt's timeout is used up, not counting time the process was frozen.
/// Pure: fed the durations each tick was asked to take and really took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptClock {
    timeout: Duration,
    used: Duration,
    frozen: Duration,
}

impl AttemptClock {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            used: Duration::ZERO,
            frozen: Duration::ZERO,
        }
    }

    /// How long to wait next: the rest of the timeout, at most [`TICK`]; `None` once used up.
    pub fn next_tick(&self) -> Option<Duration> {
        let left = self.timeout.checked_sub(self.used)?;
        (!left.is_zero()).then(|| left.min(TICK))
    }

    /// Accounts a tick asked to take `asked` that took `observed`; returns the part of it not
    /// counted toward the timeout (zero unless it overran by [`FREEZE_THRESHOLD`] or more).
    ///
    /// After a freeze at least one tick (or the whole timeout, if shorter) is left, so that an
    /// answer that arrived meanwhile can be read: the connection's task has to run first.
    pub fn observe(&mut self, asked: Duration, observed: Duration) -> Duration {
        let over = observed.saturating_sub(asked);
        if over < FREEZE_THRESHOLD {
            self.used = self.used.saturating_add(observed);
            return Duration::ZERO;
        }
        self.frozen = self.frozen.saturating_add(over);
        self.used = self
            .used
            .saturating_add(asked)
            .min(self.timeout.saturating_sub(TICK));
        over
    }

    /// Time not counted so far.
    pub fn frozen(&self) -> Duration {
        self.frozen
    }
}

/// Runs `fut` until it finishes (`Some`) or `timeout` of running time has passed (`None`);
/// time the process was seen frozen does not count. One timer, re-armed each [`TICK`].
pub async fn within_timeout<F: Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut clock = AttemptClock::new(timeout);
    let mut asked = clock.next_tick().unwrap_or(Duration::ZERO);
    let mut tick_start = Instant::now();
    let mut tick = std::pin::pin!(tokio::time::sleep_until(tick_start + asked));
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return Some(out),
            () = &mut tick => {}
        }
        let now = Instant::now();
        let frozen = clock.observe(asked, now.saturating_duration_since(tick_start));
        if !frozen.is_zero() {
            tracing::debug!(
                frozen_ms = frozen.as_millis() as u64,
                "process was not running; not counted toward the attempt's timeout"
            );
        }
        asked = clock.next_tick()?;
        tick_start = now;
        tick.as_mut().reset(now + asked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn jitter_is_counted_a_freeze_is_not() {
        let mut c = AttemptClock::new(Duration::from_secs(5));
        assert_eq!(c.observe(TICK, ms(300)), Duration::ZERO);
        assert_eq!(
            c.observe(TICK, TICK + FREEZE_THRESHOLD - ms(1)),
            Duration::ZERO
        );
        assert_eq!(c.frozen(), Duration::ZERO);
        // 300 + 1249 ms of the 5 s used.
        assert_eq!(c.next_tick(), Some(TICK));
        assert_eq!(c.observe(TICK, TICK + FREEZE_THRESHOLD), FREEZE_THRESHOLD);
        assert_eq!(c.observe(TICK, ms(5_250)), ms(5_000));
        assert_eq!(c.frozen(), ms(6_000));
        // Only the ticks' asked time counted: 300 + 1249 + 250 + 250 ms.
        let mut rest = Duration::ZERO;
        while let Some(t) = c.next_tick() {
            rest += t;
            c.observe(t, t);
        }
        assert_eq!(rest, ms(5_000 - 2_049));
    }

    #[test]
    fn clock_runs_out_at_the_timeout() {
        let mut c = AttemptClock::new(ms(600));
        let mut ticks = Vec::new();
        while let Some(t) = c.next_tick() {
            ticks.push(t);
            c.observe(t, t);
        }
        assert_eq!(ticks, [TICK, TICK, ms(100)]);
        // A late tick (jitter) uses up more, never less.
        let mut c = AttemptClock::new(ms(600));
        c.observe(TICK, ms(700));
        assert_eq!(c.next_tick(), None);
        assert_eq!(AttemptClock::new(Duration::ZERO).next_tick(), None);
    }

    #[test]
    fn a_freeze_near_the_end_leaves_one_tick() {
        let mut c = AttemptClock::new(Duration::from_secs(2));
        c.observe(ms(1_900), ms(1_900));
        assert_eq!(c.next_tick(), Some(ms(100)));
        assert_eq!(c.observe(ms(100), ms(5_100)), ms(5_000));
        assert_eq!(c.next_tick(), Some(TICK));
        // Shorter than a tick: the whole timeout again.
        let mut c = AttemptClock::new(ms(100));
        c.observe(ms(100), ms(3_000));
        assert_eq!(c.next_tick(), Some(ms(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_bounds_a_hanging_exchange() {
        let started = Instant::now();
        let r = within_timeout(Duration::from_secs(5), std::future::pending::<()>()).await;
        assert!(r.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let r = within_timeout(ms(1), std::future::pending::<()>()).await;
        assert!(r.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_exchange_is_returned_when_it_finishes() {
        let started = Instant::now();
        let r = within_timeout(Duration::from_secs(2), async {
            tokio::time::sleep(ms(1_300)).await;
            200
        })
        .await;
        assert_eq!(r, Some(200));
        assert_eq!(started.elapsed(), ms(1_300));
        // Ready at once, even with no time at all.
        assert_eq!(within_timeout(Duration::ZERO, async { 1 }).await, Some(1));
    }

    /// With paused time a freeze is a jump of the clock: nothing runs during `len`.
    async fn freeze(at: Duration, len: Duration) {
        tokio::time::sleep(at).await;
        tokio::time::advance(len).await;
    }

    /// The answer arrived while the process was frozen; it is read 10 ms after it runs again
    /// (as hyper's connection task reads it from the socket before the attempt sees it).
    fn answered_during_freeze() -> tokio::sync::oneshot::Receiver<u16> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            freeze(ms(300), Duration::from_secs(5)).await;
            tokio::time::sleep(ms(10)).await;
            let _ = tx.send(200);
        });
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_received_while_frozen_is_not_a_timeout() {
        // What a plain timeout did: the frozen time counted, and the answer was lost.
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(2), answered_during_freeze()).await;
        assert!(r.is_err());
        assert_eq!(started.elapsed(), ms(5_300));

        let started = Instant::now();
        let r = within_timeout(Duration::from_secs(2), answered_during_freeze()).await;
        assert_eq!(r.and_then(Result::ok), Some(200));
        assert_eq!(started.elapsed(), ms(5_310));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_exchange_times_out_after_the_timeout_of_running_time() {
        let started = Instant::now();
        tokio::spawn(freeze(ms(300), Duration::from_secs(5)));
        let r = within_timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        assert!(r.is_none());
        // Frozen during the second tick (started at 250 ms): 4.8 s of its 5.05 s not counted.
        assert_eq!(started.elapsed(), ms(2_000 + 4_800));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_below_the_threshold_counts() {
        let started = Instant::now();
        tokio::spawn(freeze(ms(300), ms(800)));
        let r = within_timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        assert!(r.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
