//! What a [`super::Partition`] speaks: the [`Pending`] events it holds, the [`Policy`] it
//! delivers by, the [`Input`]s it takes and the [`Effect`]s it answers, and what a destination's
//! answer may ask of it ([`Next`], [`Verdict`]).

use std::time::Duration;

use super::Time;

/// A pending event as the partition sees it; the executor's event type implements it.
pub trait Pending {
    /// What the journal keeps of the event's progress (handed back in [`Effect::Progress`]).
    type Snapshot: std::fmt::Debug;
    /// The executor's record of one finished attempt: opaque here, handed back in the effect
    /// that journals it.
    type Attempt: std::fmt::Debug;
    fn seq(&self) -> u64;
    /// Failed attempts that used up an entry of the retry schedule.
    fn failures(&self) -> u32;
    /// Counts the attempt about to start; answers its number (1 for the first).
    fn begin_attempt(&mut self) -> u32;
    /// Counts a failure that used up an entry of the retry schedule.
    fn count_failure(&mut self);
    fn snapshot(&self) -> Self::Snapshot;
}

/// How a partition delivers: prepared from the endpoint's settings, replaced on a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Waits before retry 1, 2, …
    pub schedule: Vec<Duration>,
    /// Events started at once (at least 1).
    pub max_in_flight: usize,
    /// Longest wait a destination may ask for ([`Next::After`]).
    pub retry_after_cap: Duration,
}

/// What a failed attempt asks for next (decided by the destination that made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next entry of the retry schedule (dead letter when it is used up).
    Schedule,
    /// Wait this long (capped, at least [`retry::MIN_BACKOFF_DELAY`]) without using a retry.
    After(Duration),
    /// Pause the endpoint: nothing used up, the event keeps its place until it is resumed.
    Pause,
    /// Dead-letter the event now, with this reason.
    DeadLetter(&'static str),
}

/// What an attempt came to, as the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Failed {
        /// The endpoint itself looks unhealthy (as opposed to rejecting this one event).
        blames_endpoint: bool,
        next: Next,
    },
}

/// How an event left the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Delivered,
    Dead { reason: &'static str },
}

/// What the partition is told.
#[derive(Debug)]
pub enum Input<E: Pending> {
    /// Look at what may start (after creation, say).
    Pump,
    /// An event was accepted (its journal commit is done).
    Enqueued(E),
    /// A dead letter was put back at its place.
    Replayed(E),
    /// The endpoint's settings changed.
    Configured { policy: Policy, paused: bool },
    /// A timer armed at this time fired.
    Timer(Time),
    /// The answer to [`Effect::Load`]: events with `seq >= from` in order, and the records that
    /// failed their check; together at most `limit`.
    Loaded {
        from: u64,
        limit: usize,
        events: Vec<E>,
        corrupt: Vec<(u64, String)>,
    },
    /// The read asked for by [`Effect::Load`] failed.
    LoadFailed,
    /// An attempt finished. `attempt` is the executor's own record of it, handed back in the
    /// effect that journals it.
    Done {
        seq: u64,
        probe: bool,
        verdict: Verdict,
        attempt: E::Attempt,
    },
    /// An operator asks to attempt now what waits: the probe of a `down` endpoint, or the
    /// events waiting for their next retry.
    RetryNow,
    /// The executor stops: nothing more is started.
    Stop,
}

/// What [`Input::RetryNow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryNow {
    /// The endpoint is `down`: its probe starts now.
    Probe,
    /// This many events waiting for a retry start now.
    Retry { events: usize },
    /// Nothing was waiting; why.
    Nothing(NothingWaiting),
}

/// Why [`Input::RetryNow`] found nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingWaiting {
    /// The endpoint is paused (resuming it starts delivery).
    Paused,
    /// Attempts are under way and none waits.
    InFlight,
    /// No event waits (the backlog is empty, or it is being sent).
    Empty,
    /// The executor is stopping.
    Stopping,
}

/// What the partition wants done, in order.
#[derive(Debug)]
pub enum Effect<E: Pending> {
    /// Send attempt `attempt` of the started event `seq` (see [`Partition::started`]).
    Start { seq: u64, attempt: u32, probe: bool },
    /// Journal an attempt of an event that stays pending; `down` is `Some(true)` when it put
    /// the endpoint down, `Some(false)` when it brought it back.
    Progress {
        seq: u64,
        attempt: E::Attempt,
        progress: E::Snapshot,
        down: Option<bool>,
    },
    /// Journal an attempt that finished the event (delivered or dead-lettered).
    Finished {
        event: E,
        attempt: E::Attempt,
        finish: Finish,
        down: Option<bool>,
    },
    /// Pause the endpoint durably (a destination asked for it).
    Pause,
    /// Set aside the pending event `seq`, whose record is corrupt.
    Quarantine { seq: u64, why: String },
    /// Feed [`Input::Timer`] at `at`.
    Arm(Time),
    /// Read up to `limit` pending events with `seq >= from`; answer [`Input::Loaded`].
    Load { from: u64, limit: usize },
    /// The answer to [`Input::RetryNow`] (pushed before the starts it causes).
    RetriedNow(RetryNow),
}
