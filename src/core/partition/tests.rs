//! Exhaustive tests of the partition state machine: each rule, each transition, the edges.

use super::*;

mod buffer;
mod replay_bound;
mod retry_now;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn s(v: u64) -> Duration {
    Duration::from_secs(v)
}

#[derive(Debug, PartialEq, Eq)]
struct Ev {
    seq: u64,
    attempts: u32,
    failures: u32,
}

fn ev(seq: u64) -> Ev {
    Ev {
        seq,
        attempts: 0,
        failures: 0,
    }
}

impl Pending for Ev {
    type Snapshot = (u32, u32);
    type Attempt = &'static str;
    fn seq(&self) -> u64 {
        self.seq
    }
    fn failures(&self) -> u32 {
        self.failures
    }
    fn begin_attempt(&mut self) -> u32 {
        self.attempts += 1;
        self.attempts
    }
    fn count_failure(&mut self) {
        self.failures += 1;
    }
    fn snapshot(&self) -> (u32, u32) {
        (self.attempts, self.failures)
    }
}

type P = Partition<Ev>;
type Out = Vec<Effect<Ev>>;

fn policy(schedule_ms: &[u64], max_in_flight: usize) -> Policy {
    Policy {
        schedule: schedule_ms.iter().map(|m| ms(*m)).collect(),
        max_in_flight,
        retry_after_cap: s(300),
    }
}

fn fresh(schedule_ms: &[u64], max_in_flight: usize) -> P {
    Partition::new(
        Duration::ZERO,
        policy(schedule_ms, max_in_flight),
        false,
        false,
        0,
        1,
    )
}

fn step(p: &mut P, now: Duration, input: Input<Ev>) -> Out {
    let mut out = Vec::new();
    p.step(now, input, &mut out);
    out
}

/// The `(seq, attempt, probe)` of every start, in order.
fn starts(out: &Out) -> Vec<(u64, u32, bool)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Start {
                seq,
                attempt,
                probe,
            } => Some((*seq, *attempt, *probe)),
            _ => None,
        })
        .collect()
}

fn arms(out: &Out) -> Vec<Duration> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Arm(t) => Some(*t),
            _ => None,
        })
        .collect()
}

fn loads(out: &Out) -> Vec<(u64, usize)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Load { from, limit } => Some((*from, *limit)),
            _ => None,
        })
        .collect()
}

/// `(seq, finish, down)` of every finished event.
fn finished(out: &Out) -> Vec<(u64, Finish, Option<bool>)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Finished {
                event,
                finish,
                down,
                ..
            } => Some((event.seq, *finish, *down)),
            _ => None,
        })
        .collect()
}

/// `(seq, (attempts, failures), down)` of every progress journaled.
fn progress(out: &Out) -> Vec<(u64, (u32, u32), Option<bool>)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Progress {
                seq,
                progress,
                down,
                ..
            } => Some((*seq, *progress, *down)),
            _ => None,
        })
        .collect()
}

fn ok(seq: u64) -> Input<Ev> {
    Input::Done {
        seq,
        probe: false,
        verdict: Verdict::Delivered,
        attempt: "a",
    }
}

fn fail(seq: u64, blames_endpoint: bool, next: Next) -> Input<Ev> {
    Input::Done {
        seq,
        probe: false,
        verdict: Verdict::Failed {
            blames_endpoint,
            next,
        },
        attempt: "a",
    }
}

fn probe_result(seq: u64, verdict: Verdict) -> Input<Ev> {
    Input::Done {
        seq,
        probe: true,
        verdict,
        attempt: "a",
    }
}

const E5XX: Verdict = Verdict::Failed {
    blames_endpoint: true,
    next: Next::Schedule,
};

const DEAD: Finish = Finish::Dead {
    reason: MAX_RETRIES_EXCEEDED,
};

#[test]
fn starts_in_order_up_to_max_in_flight() {
    let mut p = fresh(&[1_000], 2);
    assert_eq!(
        starts(&step(&mut p, ms(0), Input::Enqueued(ev(1)))),
        [(1, 1, false)]
    );
    assert_eq!(
        starts(&step(&mut p, ms(0), Input::Enqueued(ev(2)))),
        [(2, 1, false)]
    );
    assert!(starts(&step(&mut p, ms(0), Input::Enqueued(ev(3)))).is_empty());
    assert_eq!((p.backlog(), p.in_flight(), p.ready_len()), (3, 2, 1));
    let out = step(&mut p, ms(5), ok(2));
    assert_eq!(finished(&out), [(2, Finish::Delivered, None)]);
    assert_eq!(starts(&out), [(3, 1, false)]);
    assert_eq!(p.backlog(), 2);
}

#[test]
fn retries_follow_the_schedule_then_dead_letter() {
    let mut p = fresh(&[5_000, 15_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    let out = step(&mut p, ms(10), fail(1, true, Next::Schedule));
    assert_eq!(progress(&out), [(1, (1, 1), None)]);
    assert_eq!(arms(&out), [ms(5_010)]);
    assert_eq!(p.in_flight(), 0);
    assert!(starts(&step(&mut p, ms(5_009), Input::Timer(ms(5_010)))).is_empty());
    assert_eq!(
        starts(&step(&mut p, ms(5_010), Input::Timer(ms(5_010)))),
        [(1, 2, false)]
    );
    let out = step(&mut p, ms(5_020), fail(1, false, Next::Schedule));
    assert_eq!(progress(&out), [(1, (2, 2), None)]);
    assert_eq!(arms(&out), [ms(20_020)]);
    step(&mut p, ms(20_020), Input::Timer(ms(20_020)));
    let out = step(&mut p, ms(20_030), fail(1, false, Next::Schedule));
    assert_eq!(finished(&out), [(1, DEAD, None)]);
    assert_eq!(p.backlog(), 0);
    assert!(!p.is_down(), "a 4xx does not blame the endpoint");
}

#[test]
fn strict_order_holds_later_events_while_the_head_waits() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(&mut p, ms(1), fail(1, true, Next::Schedule));
    assert!(starts(&out).is_empty(), "2 must wait for 1: {out:?}");
    let out = step(&mut p, ms(1_001), Input::Timer(ms(1_001)));
    assert_eq!(starts(&out), [(1, 2, false)]);
    assert_eq!(starts(&step(&mut p, ms(1_002), ok(1))), [(2, 1, false)]);
}

#[test]
fn empty_schedule_dead_letters_at_the_first_failure() {
    let mut p = fresh(&[], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(&mut p, ms(1), fail(1, false, Next::Schedule));
    assert_eq!(finished(&out), [(1, DEAD, None)]);
    assert_eq!(starts(&out), [(2, 1, false)]);
}

#[test]
fn a_wait_asked_for_uses_no_retry_and_is_capped_and_floored() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    let out = step(&mut p, ms(0), fail(1, true, Next::After(s(2))));
    assert_eq!(progress(&out), [(1, (1, 0), None)], "no retry used");
    assert_eq!(arms(&out), [s(2)]);
    step(&mut p, s(2), Input::Timer(s(2)));
    let out = step(&mut p, s(2), fail(1, true, Next::After(s(3_600))));
    assert_eq!(arms(&out), [s(302)], "capped at retry_after_cap");
    step(&mut p, s(302), Input::Timer(s(302)));
    let out = step(&mut p, s(302), fail(1, true, Next::After(Duration::ZERO)));
    assert_eq!(arms(&out), [s(303)], "at least MIN_BACKOFF_DELAY");
    step(&mut p, s(303), Input::Timer(s(303)));
    // The schedule is still whole: one counted retry, then dead.
    let out = step(&mut p, s(303), fail(1, true, Next::Schedule));
    assert_eq!(progress(&out), [(1, (4, 1), None)]);
    step(&mut p, s(304), Input::Timer(s(304)));
    let out = step(&mut p, s(304), fail(1, true, Next::Schedule));
    assert_eq!(finished(&out), [(1, DEAD, Some(true))]);
}

#[test]
fn a_destination_can_dead_letter_at_once() {
    let mut p = fresh(&[1_000, 2_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(
        &mut p,
        ms(1),
        fail(1, false, Next::DeadLetter("RECORD_CORRUPT")),
    );
    assert_eq!(
        finished(&out),
        [(
            1,
            Finish::Dead {
                reason: "RECORD_CORRUPT"
            },
            None
        )]
    );
    assert_eq!(starts(&out), [(2, 1, false)]);
}

#[test]
fn a_destination_can_pause_the_endpoint_without_using_a_retry() {
    let mut p = fresh(&[1_000], 2);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(&mut p, ms(1), fail(1, false, Next::Pause));
    assert_eq!(progress(&out), [(1, (1, 0), None)]);
    assert!(matches!(out.last(), Some(Effect::Pause)), "{out:?}");
    assert!(p.is_paused());
    assert_eq!((p.backlog(), p.ready_len()), (2, 1), "1 keeps its place");
    // Event 2, in flight meanwhile, finishes as usual; nothing new starts.
    let out = step(&mut p, ms(2), ok(2));
    assert_eq!(finished(&out), [(2, Finish::Delivered, None)]);
    assert!(starts(&out).is_empty());
    let out = step(
        &mut p,
        ms(3),
        Input::Configured {
            policy: policy(&[1_000], 2),
            paused: false,
        },
    );
    assert_eq!(starts(&out), [(1, 2, false)]);
}

#[test]
fn endpoint_dead_letter_puts_it_down_and_probes_on_a_capped_backoff() {
    let mut p = fresh(&[1_000, 2_000, 4_000], 2);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    step(&mut p, ms(0), Input::Enqueued(ev(3)));
    // 2 is told to wait long (no retry used); 1 uses up its schedule.
    step(&mut p, ms(0), fail(2, true, Next::After(s(100))));
    let mut t = 0;
    for wait in [1_000, 2_000, 4_000] {
        step(&mut p, ms(t), fail(1, true, Next::Schedule));
        t += wait;
        step(&mut p, ms(t), Input::Timer(ms(t)));
    }
    assert_eq!(t, 7_000);
    let out = step(&mut p, ms(t), fail(1, true, Next::Schedule));
    assert_eq!(finished(&out), [(1, DEAD, Some(true))]);
    assert!(p.is_down());
    assert!(starts(&out).is_empty(), "nothing starts while down");
    assert_eq!(
        arms(&out),
        [ms(8_000)],
        "first probe after the first retry delay"
    );
    assert_eq!((p.backlog(), p.in_flight(), p.ready_len()), (2, 0, 2));
    // The probe is the oldest pending event: 2, back in line from its retry wait.
    let out = step(&mut p, ms(8_000), Input::Timer(ms(8_000)));
    assert_eq!(starts(&out), [(2, 2, true)]);
    // It fails: back in line, the next probe waits twice as long.
    let out = step(&mut p, ms(8_010), probe_result(2, E5XX));
    assert_eq!(
        progress(&out),
        [(2, (2, 0), None)],
        "no retry used while down"
    );
    assert_eq!(arms(&out), [ms(10_010)]);
    step(&mut p, ms(10_010), Input::Timer(ms(10_010)));
    let out = step(&mut p, ms(10_020), probe_result(2, E5XX));
    assert_eq!(arms(&out), [ms(14_020)]);
    step(&mut p, ms(14_020), Input::Timer(ms(14_020)));
    let out = step(&mut p, ms(14_030), probe_result(2, E5XX));
    assert_eq!(
        arms(&out),
        [ms(18_030)],
        "capped at the longest retry delay"
    );
    step(&mut p, ms(18_030), Input::Timer(ms(18_030)));
    // A 2xx ends down: the backlog drains in order, max_in_flight at a time.
    let out = step(&mut p, ms(18_040), probe_result(2, Verdict::Delivered));
    assert_eq!(finished(&out), [(2, Finish::Delivered, Some(false))]);
    assert_eq!(starts(&out), [(3, 1, false)]);
    assert!(!p.is_down());
}

#[test]
fn a_probe_answered_with_a_client_error_ends_down() {
    let mut p = Partition::new(ms(0), policy(&[1_000], 1), false, true, 0, 1);
    let out = step(&mut p, ms(0), Input::Enqueued(ev(1)));
    assert!(starts(&out).is_empty());
    assert_eq!(arms(&out), [ms(1_000)], "a restart starts probing afresh");
    let out = step(&mut p, ms(1_000), Input::Timer(ms(1_000)));
    assert_eq!(starts(&out), [(1, 1, true)]);
    // The endpoint answers (404): no longer down; the event's own failure counts as usual.
    let out = step(&mut p, ms(1_001), fail(1, false, Next::Schedule));
    assert_eq!(progress(&out), [(1, (1, 1), Some(false))]);
    assert!(!p.is_down());
}

#[test]
fn a_non_probe_failure_while_down_keeps_the_probe_delay() {
    // Down is entered with an attempt of another event still in flight.
    let mut p = fresh(&[], 2);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(&mut p, ms(1), fail(1, true, Next::Schedule));
    assert_eq!(finished(&out), [(1, DEAD, Some(true))]);
    assert!(arms(&out).is_empty(), "2 is out; its result decides");
    let out = step(&mut p, ms(2), fail(2, true, Next::Schedule));
    assert!(finished(&out).is_empty(), "held, not dead-lettered");
    assert_eq!(progress(&out), [(2, (1, 0), None)]);
    assert_eq!(
        arms(&out),
        [ms(5_001)],
        "the first probe's delay is unchanged"
    );
}

#[test]
fn a_delivery_in_flight_when_down_began_brings_it_back() {
    let mut p = fresh(&[], 2);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    step(&mut p, ms(0), Input::Enqueued(ev(3)));
    step(&mut p, ms(1), fail(1, true, Next::Schedule));
    assert!(p.is_down());
    let out = step(&mut p, ms(2), ok(2));
    assert_eq!(finished(&out), [(2, Finish::Delivered, Some(false))]);
    assert_eq!(starts(&out), [(3, 1, false)]);
}

#[test]
fn a_replay_goes_ahead_of_waiting_events() {
    let mut p = fresh(&[1_000], 1);
    for q in 5..=7 {
        step(&mut p, ms(0), Input::Enqueued(ev(q)));
    }
    // 5 is in flight; 6, 7 wait. Seq 2 is replayed: it goes before 6.
    let replayed = Ev {
        seq: 2,
        attempts: 4,
        failures: 3,
    };
    assert!(starts(&step(&mut p, ms(1), Input::Replayed(replayed))).is_empty());
    assert_eq!(p.backlog(), 4);
    let out = step(&mut p, ms(2), ok(5));
    assert_eq!(starts(&out), [(2, 5, false)], "numbering goes on");
    assert_eq!(starts(&step(&mut p, ms(3), ok(2))), [(6, 1, false)]);
}

#[test]
fn a_replay_of_a_started_event_is_counted_not_duplicated() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Replayed(ev(1)));
    assert_eq!((p.ready_len(), p.in_flight()), (0, 1));
}

#[test]
fn pause_during_in_flight_lets_it_finish_and_starts_nothing() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let paused = Input::Configured {
        policy: policy(&[1_000], 1),
        paused: true,
    };
    assert!(step(&mut p, ms(1), paused).is_empty());
    let out = step(&mut p, ms(2), fail(1, true, Next::Schedule));
    assert_eq!(progress(&out), [(1, (1, 1), None)]);
    assert!(arms(&out).is_empty() && starts(&out).is_empty());
    assert!(step(&mut p, ms(5_000), Input::Timer(ms(1_002))).is_empty());
    assert!(step(&mut p, ms(5_000), Input::Enqueued(ev(3))).is_empty());
    let out = step(
        &mut p,
        ms(6_000),
        Input::Configured {
            policy: policy(&[1_000], 1),
            paused: false,
        },
    );
    assert_eq!(starts(&out), [(1, 2, false)], "the due retry goes first");
}

#[test]
fn config_change_of_max_in_flight_and_schedule_applies_at_once() {
    let mut p = fresh(&[1_000], 1);
    for q in 1..=4 {
        step(&mut p, ms(0), Input::Enqueued(ev(q)));
    }
    assert_eq!(p.in_flight(), 1);
    let out = step(
        &mut p,
        ms(1),
        Input::Configured {
            policy: policy(&[9_000], 3),
            paused: false,
        },
    );
    assert_eq!(starts(&out), [(2, 1, false), (3, 1, false)]);
    let out = step(&mut p, ms(2), fail(1, true, Next::Schedule));
    assert_eq!(arms(&out), [ms(9_002)], "the new schedule");
    // Lowered: nothing new starts until fewer than 1 are started.
    step(
        &mut p,
        ms(3),
        Input::Configured {
            policy: policy(&[9_000], 1),
            paused: false,
        },
    );
    assert!(starts(&step(&mut p, ms(4), ok(2))).is_empty());
    assert!(starts(&step(&mut p, ms(5), ok(3))).is_empty());
    step(&mut p, ms(9_002), Input::Timer(ms(9_002)));
    assert_eq!(starts(&step(&mut p, ms(9_003), ok(1))), [(4, 1, false)]);
}

#[test]
fn timers_are_not_armed_twice() {
    let mut p = fresh(&[1_000], 2);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    assert_eq!(
        arms(&step(&mut p, ms(0), fail(1, true, Next::Schedule))),
        [ms(1_000)]
    );
    // 2 fails later: its retry is later than the armed timer, which will pump anyway.
    assert!(arms(&step(&mut p, ms(10), fail(2, true, Next::Schedule))).is_empty());
    let out = step(&mut p, ms(1_000), Input::Timer(ms(1_000)));
    assert_eq!(starts(&out), [(1, 2, false)]);
    assert_eq!(arms(&out), [ms(1_010)]);
}

#[test]
fn nothing_starts_after_stop_but_results_are_journaled() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    assert!(step(&mut p, ms(1), Input::Stop).is_empty());
    let out = step(&mut p, ms(2), ok(1));
    assert_eq!(finished(&out), [(1, Finish::Delivered, None)]);
    assert!(starts(&out).is_empty());
}

#[test]
fn an_unknown_result_changes_nothing() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    assert!(step(&mut p, ms(1), ok(9)).is_empty());
    assert_eq!((p.backlog(), p.in_flight()), (1, 1));
}
