//! The per-endpoint delivery policy as a pure state machine: a [`Partition`] takes
//! `(now, input)` and pushes [`Effect`]s for its executor (the scheduler) to carry out. No
//! clock, no I/O, no tokio: `now` is an argument ([`Time`], a monotonic offset the executor
//! chooses), and what the partition wants done — start an attempt, journal a result, arm a
//! timer, read pending events from the journal, set a corrupt record aside — is data.
//!
//! An event of a partition moves through
//! `ready → in flight → delivered | waiting (backoff) → in flight … | dead`.
//!
//! * **Start**: at most `max_in_flight` events are *started* (in flight or waiting for a retry)
//!   at once; with 1, an event is not sent before every earlier one was delivered or
//!   dead-lettered (strict order). Ready events start in sequence order.
//! * **Retry**: a failure uses up the next entry of the schedule ([`retry::on_failure`]); a
//!   destination may instead ask to wait a given time without using one ([`Next::After`], a
//!   429's `Retry-After`, capped), to pause the endpoint ([`Next::Pause`]) or to dead-letter at
//!   once ([`Next::DeadLetter`]). A used-up schedule dead-letters with
//!   [`MAX_RETRIES_EXCEEDED`].
//! * **Down**: a dead letter caused by a failure that blames the endpoint puts the partition
//!   `down`: nothing is started until a probe (the oldest pending event, sent on a capped
//!   backoff, [`retry::probe_delay`]) is answered; what waited for a retry goes back to `ready`
//!   so it drains in order afterwards. A 2xx, or a failure that does not blame the endpoint,
//!   ends `down`.
//! * **Replay**: a replayed dead letter comes back at its original sequence number, ahead of
//!   every newer event not yet started.
//! * **Pause**: nothing new starts; attempts under way finish and are handled as usual.
//! * **Buffer**: at most [`BUFFER`] pending events — the head of the queue — are held in
//!   memory; the rest stay in the journal and are asked for ([`Effect::Load`]) in order as the
//!   buffer drains. Replayed events, which go ahead of the held ones, push the newest held
//!   events back to the journal (only their seqs are kept), so a bulk replay of any size holds
//!   no more than the buffer. One read is out at a time; an event enqueued while it is out is never
//!   forgotten (the read may not have seen it: the partition asks again).
//! * **Quarantine**: a record the journal could not read back is set aside
//!   ([`Effect::Quarantine`]) and the partition goes on with the next event.
//! * **Retry now** ([`Input::RetryNow`]): an operator skips the wait. A `down` endpoint is
//!   probed at once; events waiting for a retry are attempted at once (the retry they use is
//!   the one they would have used). What it did is answered first ([`Effect::RetriedNow`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::core::retry::{self, RetryAction};

mod protocol;
mod results;

pub use protocol::{
    Effect, Finish, Input, Next, NothingWaiting, Pending, Policy, RetryNow, Verdict,
};

/// Pending events held in memory per partition.
pub const BUFFER: usize = 256;

/// A read of the journal is asked for when fewer than this many events are ready.
pub const REFILL_BELOW: usize = BUFFER / 4;

/// How long a failed read of the journal waits before it is tried again.
pub const LOAD_RETRY: Duration = Duration::from_secs(1);

/// The dead-letter reason of an event whose retry schedule is used up.
pub const MAX_RETRIES_EXCEEDED: &str = "MAX_RETRIES_EXCEEDED";

/// A point in monotonic time, as an offset from an origin the executor chose.
pub type Time = Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    InFlight,
    Waiting(Time),
}

#[derive(Debug)]
struct Slot<E> {
    ev: E,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Down {
    /// Probes that failed so far.
    probes: u32,
    next_at: Time,
}

/// One endpoint's queue and policy state.
#[derive(Debug)]
pub struct Partition<E> {
    policy: Policy,
    paused: bool,
    stopping: bool,
    down: Option<Down>,
    /// Loaded, not started, by seq.
    ready: BTreeMap<u64, E>,
    /// Started: in flight or waiting for a retry.
    active: BTreeMap<u64, Slot<E>>,
    /// Pending events with `seq >=` this are in the journal but not loaded.
    spilled: Option<u64>,
    /// Highest seq ever put into `ready` from a notice or the journal.
    loaded_upto: u64,
    /// Highest seq enqueued while spilled (in the journal, perhaps not seen by a read out now).
    spilled_upto: u64,
    /// Pending events in the journal, not held, below `spilled`: the newest of a full buffer
    /// that a replayed (older) event pushed out. Each is above every held event, and read back
    /// (before anything of `spilled`) as the buffer drains. Only their seqs are kept.
    unheld: BTreeSet<u64>,
    /// The read out now: its `from`.
    loading: Option<u64>,
    /// Whether the read out now is of `unheld` events.
    loading_unheld: bool,
    /// Replayed events that belong in the journal, noticed while a read was out (it may not
    /// have seen them): `unheld` once it is answered.
    late: BTreeSet<u64>,
    /// A failed read is not asked for again before this.
    load_after: Option<Time>,
    backlog: u64,
    /// Earliest timer armed.
    timer_at: Option<Time>,
}

impl<E: Pending> Partition<E> {
    /// A partition as the journal left it: `pending` events waiting from seq 0 on, `next_seq`
    /// the next seq to be given, `down` as persisted (probing starts afresh).
    pub fn new(
        now: Time,
        policy: Policy,
        paused: bool,
        down: bool,
        pending: u64,
        next_seq: u64,
    ) -> Self {
        let first_probe = retry::probe_delay(&policy.schedule, 0);
        Self {
            down: down.then(|| Down {
                probes: 0,
                next_at: now + first_probe,
            }),
            policy,
            paused,
            stopping: false,
            ready: BTreeMap::new(),
            active: BTreeMap::new(),
            spilled: (pending > 0).then_some(0),
            loaded_upto: next_seq.saturating_sub(1),
            spilled_upto: 0,
            unheld: BTreeSet::new(),
            loading: None,
            loading_unheld: false,
            late: BTreeSet::new(),
            load_after: None,
            backlog: pending,
            timer_at: None,
        }
    }

    /// Feeds one input; the effects are pushed to `out` in the order they are to be carried out.
    pub fn step(&mut self, now: Time, input: Input<E>, out: &mut Vec<Effect<E>>) {
        match input {
            Input::Pump => {}
            Input::Enqueued(ev) => {
                self.backlog += 1;
                let seq = ev.seq();
                if seq <= self.loaded_upto {
                    return; // already read from the journal
                }
                if self.spilled.is_some() || !self.unheld.is_empty() {
                    // Behind events still in the journal: read from there in its turn.
                    self.spilled.get_or_insert(seq);
                    self.spilled_upto = self.spilled_upto.max(seq);
                    return;
                }
                if self.ready.len() >= BUFFER {
                    self.spilled = Some(seq);
                    self.spilled_upto = seq;
                    return;
                }
                self.loaded_upto = seq;
                self.ready.insert(seq, ev);
            }
            Input::Replayed(ev) => {
                self.backlog += 1;
                let seq = ev.seq();
                let in_journal = self.spilled.is_some_and(|from| seq >= from)
                    || self.unheld.first().is_some_and(|first| seq > *first);
                if self.active.contains_key(&seq) || self.ready.contains_key(&seq) {
                    // Held already.
                } else if in_journal && self.loading.is_some() {
                    // The read out now may not see it: read it once that one is answered.
                    self.late.insert(seq);
                } else if in_journal {
                    // Among events still in the journal: read back in its turn, in order
                    // (with the events of `spilled` when it is one of them).
                    if self.spilled.is_none_or(|from| seq < from) {
                        self.unheld.insert(seq);
                    }
                } else {
                    self.ready.insert(seq, ev);
                    self.settle();
                }
            }
            Input::Configured { policy, paused } => {
                self.policy = policy;
                self.paused = paused;
            }
            Input::Timer(t) => {
                if self.timer_at == Some(t) {
                    self.timer_at = None;
                }
            }
            Input::Loaded {
                from,
                limit,
                events,
                corrupt,
            } => {
                if self.loading != Some(from) {
                    return; // not the read out now
                }
                self.loading = None;
                if std::mem::take(&mut self.loading_unheld) {
                    self.on_loaded_unheld(limit, events, corrupt, out);
                } else {
                    self.on_loaded(from, limit, events, corrupt, out);
                }
                self.after_read();
            }
            Input::LoadFailed => {
                self.loading = None;
                self.loading_unheld = false;
                self.after_read();
                let at = now + LOAD_RETRY;
                self.load_after = Some(at);
                self.arm(now, at, out);
            }
            Input::Done {
                seq,
                probe,
                verdict,
                attempt,
            } => {
                if !self.on_done(now, seq, probe, verdict, attempt, out) {
                    return;
                }
            }
            Input::RetryNow => {
                let answer = self.retry_now(now);
                out.push(Effect::RetriedNow(answer));
            }
            Input::Stop => {
                self.stopping = true;
                return;
            }
        }
        self.pump(now, out);
    }

    /// Makes what waits due now (the pump that follows starts it).
    fn retry_now(&mut self, now: Time) -> RetryNow {
        if self.stopping {
            return RetryNow::Nothing(NothingWaiting::Stopping);
        }
        if self.paused {
            return RetryNow::Nothing(NothingWaiting::Paused);
        }
        if let Some(down) = self.down.as_mut() {
            if !self.active.is_empty() {
                return RetryNow::Nothing(NothingWaiting::InFlight); // the probe is out
            }
            if self.backlog == 0 {
                return RetryNow::Nothing(NothingWaiting::Empty);
            }
            down.next_at = down.next_at.min(now);
            return RetryNow::Probe;
        }
        let mut events = 0;
        for slot in self.active.values_mut() {
            if matches!(slot.phase, Phase::Waiting(t) if t > now) {
                slot.phase = Phase::Waiting(now);
                events += 1;
            }
        }
        if events > 0 {
            RetryNow::Retry { events }
        } else if self.active.is_empty() {
            RetryNow::Nothing(NothingWaiting::Empty)
        } else {
            RetryNow::Nothing(NothingWaiting::InFlight)
        }
    }

    /// When the next attempt is due by itself: the probe of a `down` endpoint, or the earliest
    /// retry waiting; `None` when nothing waits for a time (idle, paused, or attempts out).
    pub fn next_due(&self) -> Option<Time> {
        if self.paused || self.stopping {
            return None;
        }
        if let Some(down) = self.down {
            return (self.active.is_empty() && self.backlog > 0).then_some(down.next_at);
        }
        self.active
            .values()
            .filter_map(|s| match s.phase {
                Phase::Waiting(t) => Some(t),
                Phase::InFlight => None,
            })
            .min()
    }

    /// Starts whatever may start now, asks for a read when the buffer runs low, and arms the
    /// next timer.
    fn pump(&mut self, now: Time, out: &mut Vec<Effect<E>>) {
        if self.stopping || self.paused {
            return;
        }
        if let Some(down) = self.down {
            if !self.active.is_empty() {
                return; // an attempt is out; its result decides
            }
            if now < down.next_at {
                self.arm(now, down.next_at, out);
                return;
            }
            self.refill(now, out);
            if let Some((seq, ev)) = self.ready.pop_first() {
                self.start(seq, ev, true, out);
            }
            return;
        }
        // Retries whose wait is over.
        for (seq, slot) in self.active.iter_mut() {
            if matches!(slot.phase, Phase::Waiting(t) if t <= now) {
                slot.phase = Phase::InFlight;
                let attempt = slot.ev.begin_attempt();
                out.push(Effect::Start {
                    seq: *seq,
                    attempt,
                    probe: false,
                });
            }
        }
        // New events, up to max_in_flight started.
        while self.active.len() < self.policy.max_in_flight.max(1) {
            let Some((seq, ev)) = self.ready.pop_first() else {
                break;
            };
            self.start(seq, ev, false, out);
        }
        self.refill(now, out);
        let next = self
            .active
            .values()
            .filter_map(|s| match s.phase {
                Phase::Waiting(t) => Some(t),
                Phase::InFlight => None,
            })
            .min();
        if let Some(t) = next {
            self.arm(now, t, out);
        }
    }

    fn start(&mut self, seq: u64, mut ev: E, probe: bool, out: &mut Vec<Effect<E>>) {
        let attempt = ev.begin_attempt();
        self.active.insert(
            seq,
            Slot {
                ev,
                phase: Phase::InFlight,
            },
        );
        out.push(Effect::Start {
            seq,
            attempt,
            probe,
        });
    }

    /// Asks for the next events from the journal when few are ready and more wait there.
    fn refill(&mut self, now: Time, out: &mut Vec<Effect<E>>) {
        if self.loading.is_some()
            || self.ready.len() >= REFILL_BELOW
            || self.load_after.is_some_and(|t| now < t)
        {
            return;
        }
        // What a replay pushed out comes first: it is older than anything of `spilled`.
        let (from, unheld) = match (self.unheld.first(), self.spilled) {
            (Some(first), _) => (*first, true),
            (None, Some(from)) => (from, false),
            (None, None) => return,
        };
        self.load_after = None;
        self.loading = Some(from);
        self.loading_unheld = unheld;
        out.push(Effect::Load {
            from,
            limit: BUFFER - self.ready.len(),
        });
    }

    fn arm(&mut self, now: Time, at: Time, out: &mut Vec<Effect<E>>) {
        if self.timer_at.is_some_and(|t| t <= at && t > now) {
            return; // an earlier timer will pump anyway
        }
        self.timer_at = Some(at);
        out.push(Effect::Arm(at));
    }

    /// A started event (in flight or waiting for a retry).
    pub fn started(&self, seq: u64) -> Option<&E> {
        self.active.get(&seq).map(|s| &s.ev)
    }

    /// A started event, to note what an attempt did in its history.
    pub fn started_mut(&mut self, seq: u64) -> Option<&mut E> {
        self.active.get_mut(&seq).map(|s| &mut s.ev)
    }

    /// Events accepted and neither delivered nor dead-lettered (in flight included).
    pub fn backlog(&self) -> u64 {
        self.backlog
    }

    /// Attempts in flight now.
    pub fn in_flight(&self) -> u32 {
        self.active
            .values()
            .filter(|s| matches!(s.phase, Phase::InFlight))
            .count() as u32
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// The oldest pending event (by seq, so by acceptance), when it is held in memory; `None`
    /// when none is, or when older ones may still be in the journal, unread.
    pub fn oldest(&self) -> Option<&E> {
        let active = self.active.first_key_value().map(|(k, s)| (*k, &s.ev));
        let ready = self.ready.first_key_value().map(|(k, e)| (*k, e));
        let (seq, ev) = match (active, ready) {
            (Some(a), Some(r)) => {
                if a.0 <= r.0 {
                    a
                } else {
                    r
                }
            }
            (a, r) => a.or(r)?,
        };
        if self.spilled.is_some_and(|from| from < seq) {
            return None;
        }
        Some(ev)
    }

    /// Events held in memory, not started.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

#[cfg(test)]
mod tests;
