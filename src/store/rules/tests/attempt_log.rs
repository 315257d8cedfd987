//! The attempt log's ring (slots, newest first across the wrap) and the compaction of repeated
//! identical probe failures, over the in-memory tables (fixture in the parent).

use super::*;
use crate::core::model::AttemptKind;
use crate::store::rules::attempt_log;

/// Attempt `n` of event `seq`: a probe failing with `status` (or a delivery when `kind` says).
fn probe(seq: u64, n: u32, status: Option<u16>, started_ms: u64) -> ProgressUpdate {
    let mut u = update("a", seq, ProgressOutcome::Pending, Some(true));
    u.attempt.attempt = n;
    u.attempt.kind = AttemptKind::Probe;
    u.attempt.status = status;
    u.attempt.error = Some(
        if status.is_some() {
            "HTTP_5XX"
        } else {
            "ECONNREFUSED"
        }
        .into(),
    );
    u.attempt.started_ms = started_ms;
    u.progress.attempts = n;
    u
}

impl Fx {
    fn apply(&mut self, u: ProgressUpdate) {
        self.tx(|r, t, now, ch| r.progress(t, u, now, ch).map(Ok))
            .unwrap();
    }

    fn log(&self, limit: usize) -> Vec<AttemptRecord> {
        read::attempts(&self.t, "a", limit).unwrap()
    }
}

#[test]
fn attempt_n_goes_to_slot_n_mod_keep_and_reads_walk_back_across_the_wrap() {
    assert_eq!(attempt_log::slot(0), 0);
    assert_eq!(attempt_log::slot(999), 999);
    assert_eq!(attempt_log::slot(1000), 0);
    assert_eq!(attempt_log::slot(2_345), 345);
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    let numbers = |log: &[AttemptRecord]| log.iter().map(|a| a.attempt).collect::<Vec<_>>();
    assert!(fx.log(10).is_empty());
    for n in 0..2_345u32 {
        let mut u = update("a", 1, ProgressOutcome::Pending, None);
        u.attempt.attempt = n;
        fx.apply(u);
        let next = u64::from(n) + 1;
        if [1, 2, 999, 1000, 1001, 1999, 2000, 2345].contains(&next) {
            let log = fx.log(usize::MAX);
            let kept = next.min(ATTEMPT_LOG_KEEP) as u32;
            let want: Vec<u32> = (n + 1 - kept..=n).rev().collect();
            assert_eq!(numbers(&log), want, "after {next} attempts");
            assert_eq!(numbers(&fx.log(3)), want[..want.len().min(3)], "limit 3");
        }
    }
    let mut keys = Vec::new();
    fx.t.attempts_each_rev("a", |k, _| {
        keys.push(k);
        Ok(true)
    })
    .unwrap();
    assert_eq!(keys, (0..ATTEMPT_LOG_KEEP).rev().collect::<Vec<_>>());
    // Newest first, 344 slots down to 0, then from 999 down: the wrap inside one page.
    let page = fx.log(400);
    assert_eq!(page[344].attempt, 2_000);
    assert_eq!(page[345].attempt, 1_999);
    assert_eq!(fx.log(0), []);
}

#[test]
fn repeated_identical_probe_failures_are_one_row_with_a_count_and_the_last_time() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    fx.send("a", "y", None).unwrap();
    fx.apply(probe(1, 1, None, 10_000));
    for n in 2..=50 {
        fx.apply(probe(1, n, None, 10_000 + 400 * u64::from(n)));
    }
    let rec = fx.record("a");
    assert_eq!(rec.next_attempt_log, 1, "the ring does not move");
    let log = fx.log(10);
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].attempt,
            log[0].started_ms,
            log[0].repeats,
            log[0].last_ms
        ),
        (1, 10_000, 49, 30_000),
        "the first probe's row, 49 repeats, the last one's start"
    );
    // The event's progress is still written per probe: its attempt count survives a restart.
    let l = read::load_events(&fx.t, "a", 1, 1).unwrap();
    assert_eq!(l.events[0].progress.attempts, 50);

    // Another status, another seq, another kind or a success is a new row.
    fx.apply(probe(1, 51, Some(503), 31_000));
    fx.apply(probe(1, 52, Some(503), 31_400));
    fx.apply(probe(1, 53, Some(502), 31_800));
    fx.apply(probe(2, 1, Some(502), 32_200));
    let mut delivery = probe(2, 2, Some(502), 32_600);
    delivery.attempt.kind = AttemptKind::Delivery;
    fx.apply(delivery.clone());
    fx.apply(delivery); // deliveries are never compacted
    let mut ok = probe(2, 3, Some(200), 33_000);
    ok.attempt.error = None;
    fx.apply(ok.clone());
    fx.apply(ok); // nor successes
    let log = fx.log(20);
    let got: Vec<_> = log
        .iter()
        .map(|a| (a.seq, a.attempt, a.status, a.kind, a.repeats))
        .collect();
    use AttemptKind::{Delivery, Probe};
    assert_eq!(
        got,
        [
            (2, 3, Some(200), Probe, 0),
            (2, 3, Some(200), Probe, 0),
            (2, 2, Some(502), Delivery, 0),
            (2, 2, Some(502), Delivery, 0),
            (2, 1, Some(502), Probe, 0),
            (1, 53, Some(502), Probe, 0),
            (1, 51, Some(503), Probe, 1),
            (1, 1, None, Probe, 49),
        ]
    );
    assert_eq!(fx.record("a").next_attempt_log, 8);
}

#[test]
fn a_repeat_at_the_ring_s_last_slot_stays_there() {
    let mut fx = Fx::new();
    fx.put("a");
    fx.send("a", "x", None).unwrap();
    for n in 0..ATTEMPT_LOG_KEEP as u32 {
        let mut u = update("a", 1, ProgressOutcome::Pending, None);
        u.attempt.attempt = n;
        fx.apply(u);
    }
    fx.apply(probe(1, 1000, None, 1));
    fx.apply(probe(1, 1001, None, 2));
    fx.apply(probe(1, 1002, None, 3));
    assert_eq!(fx.record("a").next_attempt_log, ATTEMPT_LOG_KEEP + 1);
    let log = fx.log(2);
    assert_eq!(
        (log[0].attempt, log[0].repeats, log[0].last_ms),
        (1000, 2, 3)
    );
    assert_eq!(log[1].attempt, 999);
    assert!(fx.t.attempt_get("a", 0, |_| ()).unwrap().is_some());
}
