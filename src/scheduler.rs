//! The scheduler: one task that executes every endpoint partition's state machine
//! ([`crate::core::partition`], where the delivery policy lives). It feeds each partition its
//! inputs — the journal's notices, attempt results, timers, reads — and carries out the effects
//! it answers: attempts go to the endpoint's [`Destination`] (one `JoinSet` entry each),
//! results to the [`Journal`] (not awaited), timers to one heap, reads of spilled events to
//! [`Journal::load_events`] (asynchronous: the scheduler never blocks on the store). Idle and
//! waiting partitions are plain data in a map — no task, no timer beyond one heap entry — so
//! thousands of endpoints cost memory, not CPU. Metrics are emitted here, via
//! [`crate::telemetry`] (handles taken once, see [`Meters`]), and so are the operator events
//! (down, recovered, dead-lettered, backlog full: [`crate::operator`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::core::endpoint::EndpointSpec;
use crate::core::model::{AttemptKind, AttemptRecord, EndpointRecord, ErrorInfo};
use crate::core::partition::{Effect, Finish, Input, Partition, Policy, RetryNow};
use crate::core::timefmt::now_ms;
use crate::destination::{Delivery, Factory, Outcome};
use crate::operator::OperatorEvent;
use crate::store::{
    Journal, Loaded, Notice, ProgressOutcome, ProgressUpdate, QueuedEvent, StoreError,
};

pub use crate::core::partition::BUFFER;
pub use handle::{RuntimeView, SchedMsg, SchedulerConfig, SchedulerHandle};

mod handle;
mod part;
mod report;

use part::Part;
use report::{Meters, fill_oldest, log_health, quarantine};

/// What an attempt task hands back.
struct Done {
    endpoint: Arc<str>,
    seq: u64,
    attempt: u32,
    started_ms: u64,
    probe: bool,
    outcome: Outcome,
}

/// What a read of spilled events hands back.
struct LoadDone {
    endpoint: Arc<str>,
    epoch: u64,
    from: u64,
    limit: usize,
    result: Result<Loaded, StoreError>,
}

/// The scheduler task's state.
pub struct Scheduler {
    cfg: SchedulerConfig,
    journal: Arc<dyn Journal>,
    destinations: Arc<dyn Factory>,
    parts: HashMap<Arc<str>, Part>,
    /// Partition time is measured from here.
    origin: Instant,
    timers: BinaryHeap<Reverse<(Duration, Arc<str>)>>,
    inflight: JoinSet<Done>,
    loads: JoinSet<LoadDone>,
    /// Reused for every step's effects.
    effects: Vec<Effect<QueuedEvent>>,
    epochs: u64,
    /// The answer of the last [`Input::RetryNow`] stepped.
    retried: Option<RetryNow>,
    meters: Meters,
}

impl Scheduler {
    /// Creates the channel; the writer's notices can be forwarded to the handle before the
    /// task runs.
    pub fn channel() -> (SchedulerHandle, mpsc::UnboundedReceiver<SchedMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SchedulerHandle { tx }, rx)
    }

    /// Takes every endpoint's state as the journal has it; `destinations` builds each one's
    /// destination.
    pub fn new(
        cfg: SchedulerConfig,
        journal: Arc<dyn Journal>,
        destinations: Arc<dyn Factory>,
        endpoints: Vec<EndpointRecord>,
    ) -> Self {
        let mut s = Self {
            cfg,
            journal,
            destinations,
            parts: HashMap::new(),
            origin: Instant::now(),
            timers: BinaryHeap::new(),
            inflight: JoinSet::new(),
            loads: JoinSet::new(),
            effects: Vec::new(),
            epochs: 0,
            retried: None,
            meters: Meters::new(),
        };
        for rec in endpoints {
            s.upsert(&rec);
        }
        s
    }

    /// Runs until shut down.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SchedMsg>) {
        let ids: Vec<Arc<str>> = self.parts.keys().cloned().collect();
        for id in ids {
            self.step(&id, Input::Pump);
        }
        loop {
            let next_timer = self.timers.peek().map(|Reverse((t, _))| self.origin + *t);
            tokio::select! {
                msg = rx.recv() => {
                    match msg {
                        None => return,
                        Some(SchedMsg::Shutdown { grace, done }) => {
                            self.drain(grace).await;
                            let _ = done.send(());
                            return;
                        }
                        Some(m) => self.on_msg(m),
                    }
                }
                Some(res) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    if let Ok(done) = res {
                        self.on_done(done);
                    }
                }
                Some(res) = self.loads.join_next(), if !self.loads.is_empty() => {
                    if let Ok(loaded) = res {
                        self.on_loaded(loaded);
                    }
                }
                _ = sleep_until_opt(next_timer) => {
                    self.fire_timers();
                }
            }
        }
    }

    async fn drain(&mut self, grace: Duration) {
        let ids: Vec<Arc<str>> = self.parts.keys().cloned().collect();
        for id in ids {
            self.step(&id, Input::Stop);
        }
        self.loads.abort_all();
        let deadline = Instant::now() + grace;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next()).await {
                Ok(Some(Ok(done))) => self.on_done(done),
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = self.inflight.len(),
                        "shutdown grace ran out; unfinished attempts will be redelivered"
                    );
                    self.inflight.abort_all();
                    break;
                }
            }
        }
    }

    fn on_msg(&mut self, m: SchedMsg) {
        match m {
            SchedMsg::Notice(n) => self.on_notice(n),
            SchedMsg::Inspect { id, reply } => {
                let (now, now_ms) = (self.now(), now_ms());
                let mut views: Vec<RuntimeView> = match id {
                    Some(id) => self
                        .parts
                        .get(id.as_str())
                        .map(|p| p.view(now, now_ms))
                        .into_iter()
                        .collect(),
                    None => self.parts.values().map(|p| p.view(now, now_ms)).collect(),
                };
                if views
                    .iter()
                    .any(|v| v.backlog > 0 && v.oldest_event_ms.is_none())
                {
                    // Their oldest events are not loaded: read the first pending row of each,
                    // off the scheduler task.
                    let journal = self.journal.clone();
                    tokio::spawn(async move {
                        fill_oldest(journal.as_ref(), &mut views).await;
                        let _ = reply.send(views);
                    });
                } else {
                    let _ = reply.send(views);
                }
            }
            SchedMsg::Destination { id, reply } => {
                let _ = reply.send(self.parts.get(id.as_str()).map(|p| p.dest.clone()));
            }
            SchedMsg::RetryNow { id, reply } => {
                let answer = self
                    .parts
                    .get_key_value(id.as_str())
                    .map(|(k, _)| k.clone());
                let answer = answer.and_then(|id| {
                    self.retried = None;
                    self.step(&id, Input::RetryNow);
                    self.retried.take()
                });
                let _ = reply.send(answer);
            }
            SchedMsg::Shutdown { .. } => {}
        }
    }

    fn policy(&self, spec: &EndpointSpec) -> Policy {
        Policy {
            schedule: spec.retry_schedule.clone(),
            max_in_flight: (spec.max_in_flight.max(1)) as usize,
            retry_after_cap: self.cfg.retry_after_cap,
        }
    }

    /// Creates or updates a partition; answers its id and whether it is new.
    fn upsert(&mut self, rec: &EndpointRecord) -> Option<(Arc<str>, bool)> {
        // The stored settings, typed once; the policy and the destination are built from them.
        let spec = match EndpointSpec::from_config(&rec.config) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(endpoint = %rec.id, error = %e, "stored endpoint URL does not parse; not delivering");
                return None;
            }
        };
        let dest = match self.destinations.build(&rec.id, &spec) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(endpoint = %rec.id, error = %e, "endpoint settings unusable; not delivering");
                return None;
            }
        };
        let policy = self.policy(&spec);
        if let Some(p) = self.parts.get_mut(rec.id.as_str()) {
            p.dest = dest;
            let id = p.id.clone();
            self.step(
                &id,
                Input::Configured {
                    policy,
                    paused: rec.paused,
                },
            );
            return Some((id, false));
        }
        let now = self.now();
        self.epochs += 1;
        let p = Part {
            id: Arc::from(rec.id.as_str()),
            core: Partition::new(now, policy, rec.paused, rec.down, rec.pending, rec.next_seq),
            dest,
            // Kept across restarts with the record (with `down`, its reason).
            last_error: rec.last_error.clone(),
            epoch: self.epochs,
        };
        let id = p.id.clone();
        self.parts.insert(id.clone(), p);
        Some((id, true))
    }

    fn on_notice(&mut self, n: Notice) {
        match n {
            Notice::Enqueued { endpoint, event } => {
                if self.parts.contains_key(&endpoint) {
                    self.meters.backlog.increment(1.0);
                    self.cfg.activity.accepted.fetch_add(1, Ordering::Relaxed);
                    self.step(&endpoint, Input::Enqueued(event));
                }
            }
            Notice::Replayed { endpoint, event } => {
                if self.parts.contains_key(&endpoint) {
                    self.meters.backlog.increment(1.0);
                    self.step(&endpoint, Input::Replayed(event));
                }
            }
            Notice::EndpointUpserted(rec) => {
                if let Some((id, true)) = self.upsert(&rec) {
                    self.step(&id, Input::Pump);
                }
            }
            Notice::EndpointDeleted(id) => {
                if let Some(p) = self.parts.remove(id.as_str()) {
                    self.meters.backlog.decrement(p.core.backlog() as f64);
                }
            }
            Notice::BacklogFull { endpoint, limit } => {
                tracing::warn!(endpoint = %endpoint, limit, "backlog limit reached; intake to the endpoint is refused (BACKLOG_FULL) until it drains");
                self.operator(OperatorEvent::BacklogFull {
                    endpoint,
                    at_ms: now_ms(),
                    limit,
                });
            }
        }
    }

    fn operator(&self, ev: OperatorEvent) {
        if let Some(op) = &self.cfg.operator {
            op.emit(ev);
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse(entry)) = self.timers.pop() {
                due.push(entry);
            }
        }
        for (t, id) in due {
            self.step(&id, Input::Timer(t));
        }
    }

    fn on_loaded(&mut self, l: LoadDone) {
        if self
            .parts
            .get(&l.endpoint)
            .is_none_or(|p| p.epoch != l.epoch)
        {
            return; // the endpoint was deleted (and perhaps made again) meanwhile
        }
        let input = match l.result {
            Ok(loaded) => Input::Loaded {
                from: l.from,
                limit: l.limit,
                events: loaded.events,
                corrupt: loaded.corrupt,
            },
            Err(e) => {
                tracing::warn!(endpoint = %l.endpoint, error = %e, "cannot read pending events; retrying in 1s");
                Input::LoadFailed
            }
        };
        self.step(&l.endpoint, input);
    }

    fn on_done(&mut self, mut d: Done) {
        self.meters.in_flight.decrement(1.0);
        self.meters
            .attempt_duration
            .record(d.outcome.latency.as_secs_f64());
        let Some(p) = self.parts.get_mut(&d.endpoint) else {
            return; // endpoint deleted meanwhile
        };
        let Some(ev) = p.core.started_mut(d.seq) else {
            return;
        };
        // The answer's start goes to the attempt log only, not into the event's history.
        let answer = d.outcome.answer.take();
        let o = &d.outcome;
        let verdict = o.verdict();
        let mut rec = AttemptRecord {
            event_id: ev.meta.id.clone(),
            seq: d.seq,
            attempt: d.attempt,
            started_ms: d.started_ms,
            status: o.status,
            latency_ms: o.latency.as_millis().min(u128::from(u32::MAX)) as u32,
            error: o.failure.as_ref().map(|f| f.code.to_string()),
            message: o.failure.as_ref().map(|f| f.message.clone()),
            kind: AttemptKind::queued(d.probe),
            answer: None,
            repeats: 0,
            last_ms: 0,
        };
        ev.progress.push(rec.clone());
        rec.answer = answer;
        match &o.failure {
            None => self.meters.attempts_ok.increment(1),
            Some(f) => {
                metrics::counter!(crate::telemetry::ATTEMPTS, crate::telemetry::CODE => f.code)
                    .increment(1);
                let err = ErrorInfo {
                    code: f.code.to_string(),
                    message: f.message.clone(),
                    status: o.status,
                    at_ms: now_ms(),
                };
                ev.progress.last_error = Some(err.clone());
                p.last_error = Some(err);
            }
        }
        let input = Input::Done {
            seq: d.seq,
            probe: d.probe,
            verdict,
            attempt: rec,
        };
        self.step(&d.endpoint, input);
    }

    /// Feeds one input to a partition and carries out the effects it answers.
    fn step(&mut self, id: &Arc<str>, input: Input<QueuedEvent>) {
        let now = self.now();
        let Some(p) = self.parts.get_mut(id) else {
            return;
        };
        p.core.step(now, input, &mut self.effects);
        let operator = self.cfg.operator.as_ref();
        for effect in self.effects.drain(..) {
            match effect {
                Effect::Start {
                    seq,
                    attempt,
                    probe,
                } => {
                    let Some(ev) = p.core.started(seq) else {
                        continue;
                    };
                    let fut = p.dest.deliver(Delivery {
                        meta: ev.meta.clone(),
                        body: ev.body.clone(),
                        attempt,
                        replay: ev.replay,
                    });
                    let endpoint = p.id.clone();
                    let started_ms = now_ms();
                    self.meters.in_flight.increment(1.0);
                    self.inflight.spawn(async move {
                        let outcome = fut.await;
                        Done {
                            endpoint,
                            seq,
                            attempt,
                            started_ms,
                            probe,
                            outcome,
                        }
                    });
                }
                Effect::Progress {
                    seq,
                    attempt,
                    progress,
                    down,
                } => {
                    log_health(p, down, operator);
                    self.journal.record_progress(ProgressUpdate {
                        endpoint: p.id.clone(),
                        seq,
                        attempt,
                        progress,
                        outcome: ProgressOutcome::Pending,
                        down,
                    });
                }
                Effect::Finished {
                    event,
                    attempt,
                    finish,
                    down,
                } => {
                    self.meters.backlog.decrement(1.0);
                    let outcome = match finish {
                        Finish::Delivered => {
                            self.meters.deliveries.increment(1);
                            self.cfg.activity.delivered.fetch_add(1, Ordering::Relaxed);
                            let waited = now_ms().saturating_sub(event.meta.enqueued_at_ms);
                            self.meters.delivery_latency.record(waited as f64 / 1000.0);
                            ProgressOutcome::Delivered
                        }
                        Finish::Dead { reason } => {
                            metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => reason)
                                .increment(1);
                            tracing::warn!(endpoint = %p.id, seq = event.seq, event_id = %event.meta.id,
                                error = attempt.error.as_deref().unwrap_or(""), reason, "dead-lettered");
                            if let Some(op) = operator {
                                op.emit(OperatorEvent::DeadLettered {
                                    endpoint: p.id.clone(),
                                    at_ms: now_ms(),
                                    event_id: event.meta.id.clone(),
                                    reason: reason.to_string(),
                                    last_error: p.last_error.clone(),
                                });
                            }
                            ProgressOutcome::Dead {
                                reason: reason.into(),
                            }
                        }
                    };
                    log_health(p, down, operator);
                    self.journal.record_progress(ProgressUpdate {
                        endpoint: p.id.clone(),
                        seq: event.seq,
                        attempt,
                        progress: event.progress,
                        outcome,
                        down,
                    });
                }
                Effect::Pause => {
                    tracing::warn!(endpoint = %p.id, "the destination asked to pause the endpoint; paused until resumed");
                    let journal = self.journal.clone();
                    let endpoint = p.id.to_string();
                    tokio::spawn(async move {
                        if let Err(e) = journal.set_paused(endpoint.clone(), true).await {
                            tracing::error!(endpoint = %endpoint, error = %e, "cannot pause the endpoint");
                        }
                    });
                }
                Effect::Quarantine { seq, why } => {
                    self.meters.backlog.decrement(1.0);
                    quarantine(p, self.journal.as_ref(), seq, why, operator)
                }
                Effect::Arm(at) => self.timers.push(Reverse((at, p.id.clone()))),
                Effect::RetriedNow(answer) => self.retried = Some(answer),
                Effect::Load { from, limit } => {
                    let journal = self.journal.clone();
                    let endpoint = p.id.clone();
                    let epoch = p.epoch;
                    self.loads.spawn(async move {
                        let result = journal.load_events(&endpoint, from, limit).await;
                        LoadDone {
                            endpoint,
                            epoch,
                            from,
                            limit,
                            result,
                        }
                    });
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
