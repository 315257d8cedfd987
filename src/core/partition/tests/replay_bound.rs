//! Tests of the buffer's bound under bulk replays: however many replayed events arrive, at
//! most [`BUFFER`] are held, and every pending event still starts once, in seq order.

use std::collections::{BTreeSet, VecDeque};

use super::*;

/// Runs the partition against a journal holding `journal` (pending seqs) until nothing is
/// left to do, answering reads from it and every attempt with a 2xx; `replays` arrive as
/// notices at the given step (while reads may be out). Answers the seqs in start order and
/// the most events the partition ever held ready.
fn drive(
    p: &mut P,
    journal: &mut BTreeSet<u64>,
    mut replays: VecDeque<(usize, u64)>,
    first: Out,
) -> (Vec<u64>, usize) {
    let mut started = Vec::new();
    let mut most = p.ready_len();
    let mut effects: VecDeque<Effect<Ev>> = first.into();
    let mut inputs: VecDeque<Input<Ev>> = VecDeque::new();
    for n in 0.. {
        while let Some((at, seq)) = replays.front().copied() {
            if at > n {
                break;
            }
            replays.pop_front();
            journal.insert(seq);
            inputs.push_back(Input::Replayed(ev(seq)));
        }
        while let Some(e) = effects.pop_front() {
            match e {
                Effect::Start { seq, .. } => {
                    started.push(seq);
                    inputs.push_back(ok(seq));
                }
                Effect::Load { from, limit } => {
                    let events: Vec<Ev> =
                        journal.range(from..).take(limit).map(|s| ev(*s)).collect();
                    inputs.push_back(Input::Loaded {
                        from,
                        limit,
                        events,
                        corrupt: vec![],
                    });
                }
                Effect::Finished { event, .. } => {
                    journal.remove(&event.seq);
                }
                _ => {}
            }
        }
        let Some(input) = inputs.pop_front() else {
            if replays.is_empty() {
                break;
            }
            continue;
        };
        effects.extend(step(p, ms(n as u64), input));
        most = most.max(p.ready_len());
    }
    (started, most)
}

#[test]
fn a_bulk_replay_into_a_full_buffer_holds_at_most_the_buffer_and_keeps_the_order() {
    let mut p = fresh(&[1_000], 1);
    let mut journal = BTreeSet::new();
    // A long backlog of newer events: the buffer is full, the rest spilled.
    let newer = 5_001..=5_000 + 3 * BUFFER as u64;
    let mut first = Vec::new();
    for q in newer.clone() {
        journal.insert(q);
        first.extend(step(&mut p, ms(0), Input::Enqueued(ev(q))));
    }
    // Four buffers' worth of old dead letters come back, a few at a time, while the
    // partition delivers and reads.
    let old: Vec<u64> = (1..=4 * BUFFER as u64).collect();
    let replays: VecDeque<(usize, u64)> =
        old.iter().enumerate().map(|(i, s)| (i / 8, *s)).collect();
    let (started, most) = drive(&mut p, &mut journal, replays, first);
    assert!(most <= BUFFER + 8, "held {most} events");
    // 5001 was started before any replay arrived; every other event starts once, in order.
    let mut want: Vec<u64> = vec![5_001];
    want.extend(old.iter().copied());
    want.extend(newer.clone().skip(1));
    let got_sorted: BTreeSet<u64> = started.iter().copied().collect();
    assert_eq!(got_sorted.len(), started.len(), "an event started twice");
    assert_eq!(started.len(), want.len(), "an event was lost");
    let replayed_order: Vec<u64> = started.iter().copied().filter(|s| *s < 5_000).collect();
    assert_eq!(replayed_order, old, "the replayed events in their order");
    assert!(journal.is_empty(), "{journal:?}");
    assert_eq!(p.backlog(), 0);
}

#[test]
fn replayed_events_go_ahead_of_the_newer_ones_not_yet_started() {
    let mut p = fresh(&[1_000], 1);
    let mut journal = BTreeSet::new();
    let mut first = Vec::new();
    for q in 1_001..=1_000 + BUFFER as u64 {
        journal.insert(q);
        first.extend(step(&mut p, ms(0), Input::Enqueued(ev(q))));
    }
    // All at once, before anything more is delivered: older than every waiting event.
    let replays: VecDeque<(usize, u64)> = (1..=2 * BUFFER as u64).map(|s| (0, s)).collect();
    let (started, most) = drive(&mut p, &mut journal, replays, first);
    assert!(most <= BUFFER, "held {most} events");
    let mut want = vec![1_001];
    want.extend(1..=2 * BUFFER as u64);
    want.extend(1_002..=1_000 + BUFFER as u64);
    assert_eq!(started, want);
    assert!(journal.is_empty());
}
