//! Tests of [`Input::RetryNow`]: a down endpoint is probed at once, a waiting retry starts at
//! once with the attempt number and retry count it would have had, and otherwise nothing
//! happens and the answer says why; [`Partition::next_due`] names what waits.

use super::*;

fn answer(out: &Out) -> Option<RetryNow> {
    out.iter().find_map(|e| match e {
        Effect::RetriedNow(a) => Some(*a),
        _ => None,
    })
}

#[test]
fn a_down_endpoint_is_probed_at_once() {
    let mut p = Partition::new(ms(0), policy(&[10_000], 1), false, true, 0, 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    assert_eq!(
        p.next_due(),
        Some(ms(10_000)),
        "the first probe is due later"
    );
    let out = step(&mut p, ms(300), Input::RetryNow);
    assert_eq!(answer(&out), Some(RetryNow::Probe));
    assert!(
        matches!(out.first(), Some(Effect::RetriedNow(_))),
        "answered first"
    );
    assert_eq!(
        starts(&out),
        [(1, 1, true)],
        "the oldest event is the probe"
    );
    assert_eq!(p.next_due(), None, "the probe is out");
    // Asked again while the probe is out: nothing more starts.
    let out = step(&mut p, ms(301), Input::RetryNow);
    assert_eq!(
        answer(&out),
        Some(RetryNow::Nothing(NothingWaiting::InFlight))
    );
    assert!(starts(&out).is_empty());
    // The probe fails: the backoff goes on from there (now + the second probe delay); the
    // timer of the skipped wait fires first, starts nothing and arms the new one.
    step(&mut p, ms(400), probe_result(1, E5XX));
    assert_eq!(p.next_due(), Some(ms(10_400)));
    assert!(p.is_down());
    let out = step(&mut p, ms(10_000), Input::Timer(ms(10_000)));
    assert!(starts(&out).is_empty());
    assert_eq!(arms(&out), [ms(10_400)]);
}

#[test]
fn a_down_endpoint_without_backlog_has_nothing_to_probe() {
    let mut p = Partition::new(ms(0), policy(&[10_000], 1), false, true, 0, 1);
    let out = step(&mut p, ms(5), Input::RetryNow);
    assert_eq!(answer(&out), Some(RetryNow::Nothing(NothingWaiting::Empty)));
    assert!(starts(&out).is_empty());
    assert_eq!(p.next_due(), None);
}

#[test]
fn a_waiting_retry_starts_at_once_counting_as_it_would() {
    let mut p = fresh(&[60_000, 60_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), Input::Enqueued(ev(2)));
    let out = step(&mut p, ms(10), fail(1, true, Next::Schedule));
    assert_eq!(progress(&out), [(1, (1, 1), None)]);
    assert_eq!(p.next_due(), Some(ms(60_010)));
    let out = step(&mut p, ms(20), Input::RetryNow);
    assert_eq!(answer(&out), Some(RetryNow::Retry { events: 1 }));
    assert_eq!(starts(&out), [(1, 2, false)], "attempt 2, not a new event");
    assert_eq!(p.next_due(), None);
    // Its failure uses the second schedule entry, as it would have without the skip.
    let out = step(&mut p, ms(30), fail(1, true, Next::Schedule));
    assert_eq!(progress(&out), [(1, (2, 2), None)]);
    assert_eq!(p.next_due(), Some(ms(60_030)));
    // The timer of the skipped wait fires first: it starts nothing and arms the new wait.
    let out = step(&mut p, ms(60_010), Input::Timer(ms(60_010)));
    assert!(starts(&out).is_empty());
    assert_eq!(arms(&out), [ms(60_030)]);
}

#[test]
fn a_429_wait_is_skipped_too() {
    let mut p = fresh(&[1_000], 1);
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    step(&mut p, ms(0), fail(1, true, Next::After(s(120))));
    let out = step(&mut p, ms(5), Input::RetryNow);
    assert_eq!(answer(&out), Some(RetryNow::Retry { events: 1 }));
    assert_eq!(starts(&out), [(1, 2, false)]);
}

#[test]
fn nothing_waiting_is_said_and_changes_nothing() {
    let mut p = fresh(&[1_000], 1);
    let out = step(&mut p, ms(0), Input::RetryNow);
    assert_eq!(answer(&out), Some(RetryNow::Nothing(NothingWaiting::Empty)));
    step(&mut p, ms(0), Input::Enqueued(ev(1)));
    let out = step(&mut p, ms(1), Input::RetryNow);
    assert_eq!(
        answer(&out),
        Some(RetryNow::Nothing(NothingWaiting::InFlight))
    );
    assert!(starts(&out).is_empty(), "the attempt out is not doubled");
    step(
        &mut p,
        ms(2),
        Input::Configured {
            policy: policy(&[1_000], 1),
            paused: true,
        },
    );
    let out = step(&mut p, ms(3), Input::RetryNow);
    assert_eq!(
        answer(&out),
        Some(RetryNow::Nothing(NothingWaiting::Paused))
    );
    step(&mut p, ms(4), Input::Stop);
    let out = step(&mut p, ms(5), Input::RetryNow);
    assert_eq!(
        answer(&out),
        Some(RetryNow::Nothing(NothingWaiting::Stopping))
    );
}
