//! The retention task: every [`period`] it asks the journal for retention passes
//! ([`crate::store::Journal::sweep`]) until one says nothing more is due, counts what they
//! removed (`courier_retention_removed_total`, `…_bytes_total`) and logs a line per pass that
//! removed something. It stops when told to, between passes, before the journal closes.
//!
//! The period is a tenth of the retention, at least [`MIN_PERIOD`] and at most [`MAX_PERIOD`]:
//! an event is removed at most ~10 % (or a minute) after it became due, an idle journal sees
//! one cheap pass a minute at the default 72 h, and steady traffic is kept up with because a
//! pass that stopped at its bound (`more`) is followed by the next one at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Journal, StoreError, SweepDone};

/// Shortest time between two rounds of passes.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);
/// Longest time between two rounds of passes.
pub const MAX_PERIOD: Duration = Duration::from_secs(60);
/// Most passes in one round: a journal that always answers `more` still leaves the task
/// responsive to its stop (the next round goes on where this one ended).
const PASSES_PER_ROUND: u32 = 10_000;

/// How often a retention of `retention` is swept.
pub fn period(retention: Duration) -> Duration {
    (retention / 10).clamp(MIN_PERIOD, MAX_PERIOD)
}

/// Starts the task over `journal`; it ends once `stop` turns true (or its sender is gone).
pub fn spawn(
    journal: Arc<dyn Journal>,
    retention: Duration,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(period(retention), stop, move || {
        let j = journal.clone();
        async move { j.sweep().await }
    }))
}

/// The loop, over any `sweep` (the journal's in the daemon, a counter in the tests).
pub async fn run<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, mut sweep: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<SweepDone, StoreError>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        for _ in 0..PASSES_PER_ROUND {
            if *stop.borrow() {
                return;
            }
            match sweep().await {
                Ok(done) => {
                    if done.removed > 0 || done.bytes > 0 {
                        metrics::counter!(crate::telemetry::RETENTION_REMOVED)
                            .increment(done.removed);
                        metrics::counter!(crate::telemetry::RETENTION_REMOVED_BYTES)
                            .increment(done.bytes);
                        tracing::debug!(
                            removed = done.removed,
                            bytes = done.bytes,
                            more = done.more,
                            "retention pass"
                        );
                    }
                    if !done.more {
                        break;
                    }
                }
                Err(StoreError::Stopped) => return,
                Err(e) => {
                    // The journal reports its own commit failures; try again next round.
                    tracing::debug!(error = %e, "retention pass failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_period_is_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(period(Duration::from_secs(72 * 3600)), MAX_PERIOD);
        assert_eq!(period(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(period(Duration::from_millis(100)), MIN_PERIOD);
        assert_eq!(period(Duration::from_secs(300)), Duration::from_secs(30));
    }

    /// A sweep that answers `more` for its first `more_for` calls, counting calls.
    fn counting(
        calls: Arc<AtomicU64>,
        more_for: u64,
    ) -> impl FnMut() -> std::future::Ready<Result<SweepDone, StoreError>> {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(SweepDone {
                moved: 0,
                removed: 1,
                bytes: 10,
                more: n < more_for,
            }))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn passes_run_every_period_and_at_once_while_more_is_due() {
        let calls = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(
            Duration::from_secs(1),
            stop,
            counting(calls.clone(), 3),
        ));
        // The first tick is at once: three passes said `more`, the fourth did not.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Nothing until the period is over, then one pass a period.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 8);
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 8, "no pass after the stop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_round_that_never_runs_out() {
        let calls = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let c = calls.clone();
        let tx = Arc::new(stop_tx);
        let stopper = tx.clone();
        let sweep = move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            if n == 5 {
                let _ = stopper.send(true);
            }
            std::future::ready(Ok(SweepDone {
                moved: 0,
                removed: 1,
                bytes: 1,
                more: true,
            }))
        };
        tokio::time::timeout(
            Duration::from_secs(1),
            run(Duration::from_secs(1), stop, sweep),
        )
        .await
        .expect("the loop stops");
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_pass_waits_for_the_next_round_and_a_stopped_journal_ends_it() {
        let calls = Arc::new(AtomicU64::new(0));
        let (_stop_tx, stop) = watch::channel(false);
        let c = calls.clone();
        let sweep = move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            std::future::ready(match n {
                0 => Err(StoreError::DiskFull),
                _ => Err(StoreError::Stopped),
            })
        };
        let task = tokio::spawn(run(Duration::from_secs(1), stop, sweep));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry within the round");
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("a stopped journal ends the task")
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
