//! The scheduler: one task that owns every endpoint partition's state machine, a timer heap and
//! the set of in-flight attempts. Idle and waiting partitions are plain data in a map — no task,
//! no timer beyond one heap entry — so thousands of endpoints cost memory, not CPU.
//!
//! An event of a partition moves through
//! `ready → in flight → delivered | waiting (backoff) → in flight … | dead`.
//! At most `max_in_flight` events of a partition are *started* (in flight or waiting for a
//! retry) at once; with 1, an event is not sent before every earlier one was delivered or
//! dead-lettered (strict order). A dead letter caused by an endpoint failure puts the partition
//! `down`: nothing is started until a probe (the oldest pending event, sent on a capped backoff)
//! answers 2xx, and what waited is returned to `ready` so it drains in order afterwards.
//!
//! At most [`BUFFER`] pending events of a partition — the head of its queue — are kept in
//! memory; the rest stay on disk and are read back in order as the buffer drains.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::core::retry::{self, RetryAction};
use crate::core::timefmt::now_ms;
use crate::delivery::{AttemptOutcome, AttemptRequest, Transport};
use crate::model::{AttemptRecord, EndpointRecord, ErrorInfo};
use crate::store::redb::DbHandle;
use crate::store::{Journal, Notice, ProgressOutcome, ProgressUpdate, QueuedEvent};

/// Pending events held in memory per partition.
pub const BUFFER: usize = 256;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            retry_after_cap: Duration::from_secs(300),
        }
    }
}

/// What an endpoint looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeView {
    pub id: String,
    /// `active`, `paused` or `down`.
    pub state: &'static str,
    /// Events accepted and neither delivered nor dead-lettered (in flight included).
    pub backlog: u64,
    pub in_flight: u32,
    pub last_error: Option<ErrorInfo>,
}

/// Messages to the scheduler.
#[derive(Debug)]
pub enum SchedMsg {
    Notice(Notice),
    Inspect {
        id: Option<String>,
        reply: oneshot::Sender<Vec<RuntimeView>>,
    },
    /// Stop starting attempts, let in-flight ones finish within `grace`, then answer.
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

/// A handle to the scheduler task.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<SchedMsg>,
}

impl SchedulerHandle {
    /// Forwards a writer notice.
    pub fn notify(&self, n: Notice) {
        let _ = self.tx.send(SchedMsg::Notice(n));
    }

    /// Runtime views of one endpoint or all.
    pub async fn inspect(&self, id: Option<String>) -> Vec<RuntimeView> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SchedMsg::Inspect { id, reply: tx }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Drains in-flight attempts (bounded by `grace`) and stops.
    pub async fn shutdown(&self, grace: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SchedMsg::Shutdown { grace, done: tx }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Delivery settings of a partition, prepared once per config change.
#[derive(Debug)]
struct Target {
    url: Uri,
    secret: Option<Vec<u8>>,
    authorization: Option<HeaderValue>,
    timeout: Duration,
    schedule: Vec<Duration>,
    max_in_flight: usize,
}

impl Target {
    fn from_record(rec: &EndpointRecord) -> Option<Self> {
        let c = &rec.config;
        let url: Uri = c.url.parse().ok()?;
        Some(Self {
            url,
            secret: c.secret.as_ref().map(|s| s.expose().as_bytes().to_vec()),
            authorization: c.password.as_ref().and_then(|p| {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", p.expose())).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
            timeout: Duration::from_millis(c.timeout_ms),
            schedule: c
                .retry_schedule_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            max_in_flight: (c.max_in_flight.max(1)) as usize,
        })
    }
}

#[derive(Debug)]
enum Phase {
    InFlight,
    Waiting(Instant),
}

#[derive(Debug)]
struct Slot {
    ev: QueuedEvent,
    phase: Phase,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    /// Probes that failed so far.
    probes: u32,
    next_at: Instant,
}

struct Partition {
    id: Arc<str>,
    target: Arc<Target>,
    paused: bool,
    down: Option<Down>,
    /// Loaded, not started, by seq.
    ready: BTreeMap<u64, QueuedEvent>,
    /// Started: in flight or waiting for a retry.
    active: BTreeMap<u64, Slot>,
    /// Pending events with `seq >=` this are on disk but not loaded.
    spilled: Option<u64>,
    /// Highest seq ever put into `ready` from a notice or the disk.
    loaded_upto: u64,
    backlog: u64,
    last_error: Option<ErrorInfo>,
    /// Earliest timer armed for this partition.
    timer_at: Option<Instant>,
}

impl Partition {
    fn new(rec: &EndpointRecord, target: Target) -> Self {
        let first_probe = retry::probe_delay(&target.schedule, 0);
        Self {
            id: Arc::from(rec.id.as_str()),
            target: Arc::new(target),
            paused: rec.paused,
            // A restart keeps holding a down endpoint's backlog; probing starts afresh.
            down: rec.down.then(|| Down {
                probes: 0,
                next_at: Instant::now() + first_probe,
            }),
            ready: BTreeMap::new(),
            active: BTreeMap::new(),
            spilled: (rec.pending > 0).then_some(0),
            loaded_upto: rec.next_seq.saturating_sub(1),
            backlog: rec.pending,
            last_error: None,
            timer_at: None,
        }
    }

    fn in_flight(&self) -> u32 {
        self.active
            .values()
            .filter(|s| matches!(s.phase, Phase::InFlight))
            .count() as u32
    }

    fn view(&self) -> RuntimeView {
        RuntimeView {
            id: self.id.to_string(),
            state: if self.paused {
                "paused"
            } else if self.down.is_some() {
                "down"
            } else {
                "active"
            },
            backlog: self.backlog,
            in_flight: self.in_flight(),
            last_error: self.last_error.clone(),
        }
    }
}

/// What an attempt task hands back.
struct Done {
    endpoint: Arc<str>,
    seq: u64,
    attempt: u32,
    started_ms: u64,
    probe: bool,
    outcome: AttemptOutcome,
}

/// The scheduler task's state.
pub struct Scheduler {
    cfg: SchedulerConfig,
    journal: Arc<dyn Journal>,
    /// Transitional: pending events are still read synchronously from here.
    db: DbHandle,
    transport: Arc<dyn Transport>,
    parts: HashMap<Arc<str>, Partition>,
    timers: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    inflight: JoinSet<Done>,
    stopping: bool,
}

impl Scheduler {
    /// Creates the channel; the writer's notices can be forwarded to the handle before the
    /// task runs.
    pub fn channel() -> (SchedulerHandle, mpsc::UnboundedReceiver<SchedMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SchedulerHandle { tx }, rx)
    }

    /// Loads every endpoint's state from the store.
    pub fn new(
        cfg: SchedulerConfig,
        journal: Arc<dyn Journal>,
        db: DbHandle,
        transport: Arc<dyn Transport>,
        endpoints: Vec<EndpointRecord>,
    ) -> Self {
        let mut s = Self {
            cfg,
            journal,
            db,
            transport,
            parts: HashMap::new(),
            timers: BinaryHeap::new(),
            inflight: JoinSet::new(),
            stopping: false,
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
            self.pump(&id);
        }
        loop {
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
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
                _ = sleep_until_opt(next_timer) => {
                    self.fire_timers();
                }
            }
        }
    }

    async fn drain(&mut self, grace: Duration) {
        self.stopping = true;
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
                let views = match id {
                    Some(id) => self
                        .parts
                        .get(id.as_str())
                        .map(|p| p.view())
                        .into_iter()
                        .collect(),
                    None => self.parts.values().map(Partition::view).collect(),
                };
                let _ = reply.send(views);
            }
            SchedMsg::Shutdown { .. } => {}
        }
    }

    fn upsert(&mut self, rec: &EndpointRecord) -> Option<Arc<str>> {
        let Some(target) = Target::from_record(rec) else {
            tracing::error!(endpoint = %rec.id, "stored endpoint URL does not parse; not delivering");
            return None;
        };
        match self.parts.get_mut(rec.id.as_str()) {
            Some(p) => {
                p.target = Arc::new(target);
                p.paused = rec.paused;
                Some(p.id.clone())
            }
            None => {
                let p = Partition::new(rec, target);
                let id = p.id.clone();
                self.parts.insert(id.clone(), p);
                Some(id)
            }
        }
    }

    fn on_notice(&mut self, n: Notice) {
        match n {
            Notice::Enqueued { endpoint, event } => {
                let Some(p) = self.parts.get_mut(&endpoint) else {
                    return;
                };
                p.backlog += 1;
                metrics::gauge!(crate::telemetry::BACKLOG).increment(1.0);
                if event.seq <= p.loaded_upto || p.spilled.is_some() {
                    // Already read from disk, or behind events still on disk.
                    return;
                }
                if p.ready.len() >= BUFFER {
                    p.spilled = Some(event.seq);
                    return;
                }
                p.loaded_upto = event.seq;
                p.ready.insert(event.seq, event);
                let id = p.id.clone();
                self.pump(&id);
            }
            Notice::Replayed { endpoint, event } => {
                let Some(p) = self.parts.get_mut(&endpoint) else {
                    return;
                };
                p.backlog += 1;
                metrics::gauge!(crate::telemetry::BACKLOG).increment(1.0);
                if !p.active.contains_key(&event.seq) {
                    p.ready.insert(event.seq, event);
                }
                let id = p.id.clone();
                self.pump(&id);
            }
            Notice::EndpointUpserted(rec) => {
                if let Some(id) = self.upsert(&rec) {
                    self.pump(&id);
                }
            }
            Notice::EndpointDeleted(id) => {
                if let Some(p) = self.parts.remove(id.as_str()) {
                    metrics::gauge!(crate::telemetry::BACKLOG).decrement(p.backlog as f64);
                }
            }
        }
    }

    fn arm(&mut self, id: &Arc<str>, at: Instant) {
        let Some(p) = self.parts.get_mut(id) else {
            return;
        };
        if p.timer_at.is_some_and(|t| t <= at && t > Instant::now()) {
            return; // an earlier timer will pump anyway
        }
        p.timer_at = Some(at);
        self.timers.push(Reverse((at, id.clone())));
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((t, id))) = self.timers.pop() {
                if let Some(p) = self.parts.get_mut(&id)
                    && p.timer_at == Some(t)
                {
                    p.timer_at = None;
                }
                due.push(id);
            }
        }
        for id in due {
            self.pump(&id);
        }
    }

    /// Tops up `ready` from disk when it runs low and events wait there.
    fn fill(&mut self, id: &Arc<str>) {
        let Some(p) = self.parts.get_mut(id) else {
            return;
        };
        let Some(from) = p.spilled else {
            return;
        };
        if p.ready.len() >= BUFFER / 4 {
            return;
        }
        let want = BUFFER - p.ready.len();
        match self.db.load_events(id, from, want) {
            Ok(loaded) => {
                let got = loaded.events.len() + loaded.corrupt.len();
                let mut last = from;
                for ev in loaded.events {
                    last = last.max(ev.seq);
                    p.loaded_upto = p.loaded_upto.max(ev.seq);
                    if !p.active.contains_key(&ev.seq) {
                        p.ready.insert(ev.seq, ev);
                    }
                }
                for (seq, why) in loaded.corrupt {
                    last = last.max(seq);
                    p.loaded_upto = p.loaded_upto.max(seq);
                    quarantine(p, self.journal.as_ref(), seq, why);
                }
                p.spilled = if got < want { None } else { Some(last + 1) };
            }
            Err(e) => {
                tracing::warn!(endpoint = %id, error = %e, "cannot read pending events; retrying in 1s");
                let at = Instant::now() + Duration::from_secs(1);
                self.arm(id, at);
            }
        }
    }

    /// Starts whatever the partition may start now and arms its next timer.
    fn pump(&mut self, id: &Arc<str>) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        let Some(p) = self.parts.get(id) else {
            return;
        };
        if p.paused {
            return;
        }
        if let Some(down) = p.down {
            if !p.active.is_empty() {
                return; // an attempt is out; its result decides
            }
            if now < down.next_at {
                self.arm(id, down.next_at);
                return;
            }
            self.fill(id);
            let Some(p) = self.parts.get_mut(id) else {
                return;
            };
            if let Some((seq, ev)) = p.ready.pop_first() {
                p.active.insert(
                    seq,
                    Slot {
                        ev,
                        phase: Phase::InFlight,
                    },
                );
                self.start(id, seq, true);
            }
            return;
        }
        // Retries whose wait is over.
        let due: Vec<u64> = p
            .active
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::Waiting(t) if t <= now))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            self.start(id, seq, false);
        }
        // New events, up to max_in_flight started.
        loop {
            let Some(p) = self.parts.get(id) else {
                return;
            };
            if p.active.len() >= p.target.max_in_flight {
                break;
            }
            if p.ready.is_empty() {
                if p.spilled.is_none() {
                    break;
                }
                self.fill(id);
            }
            let Some(p) = self.parts.get_mut(id) else {
                return;
            };
            let Some((seq, ev)) = p.ready.pop_first() else {
                break;
            };
            p.active.insert(
                seq,
                Slot {
                    ev,
                    phase: Phase::InFlight,
                },
            );
            self.start(id, seq, false);
        }
        self.fill(id);
        if let Some(p) = self.parts.get(id) {
            let next = p
                .active
                .values()
                .filter_map(|s| match s.phase {
                    Phase::Waiting(t) => Some(t),
                    Phase::InFlight => None,
                })
                .min();
            if let Some(t) = next {
                self.arm(id, t);
            }
        }
    }

    /// Sends the attempt for an active slot.
    fn start(&mut self, id: &Arc<str>, seq: u64, probe: bool) {
        let Some(p) = self.parts.get_mut(id) else {
            return;
        };
        let target = p.target.clone();
        let Some(slot) = p.active.get_mut(&seq) else {
            return;
        };
        slot.phase = Phase::InFlight;
        slot.ev.progress.attempts += 1;
        let attempt = slot.ev.progress.attempts;
        let ev = &slot.ev;
        let req = AttemptRequest {
            url: target.url.clone(),
            body: ev.body.clone(),
            content_type: ev.meta.content_type.clone(),
            event_id: ev.meta.id.clone(),
            event_type: ev.meta.event_type.clone(),
            attempt,
            signature: target
                .secret
                .as_ref()
                .map(|s| crate::core::signing::sign(s, &ev.body)),
            authorization: target.authorization.clone(),
            timeout: target.timeout,
        };
        let fut = self.transport.attempt(req);
        let endpoint = id.clone();
        let started_ms = now_ms();
        metrics::gauge!(crate::telemetry::IN_FLIGHT).increment(1.0);
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

    fn on_done(&mut self, d: Done) {
        metrics::gauge!(crate::telemetry::IN_FLIGHT).decrement(1.0);
        metrics::histogram!(crate::telemetry::ATTEMPT_SECONDS)
            .record(d.outcome.latency.as_secs_f64());
        let now = Instant::now();
        let retry_after_cap = self.cfg.retry_after_cap;
        let Some(p) = self.parts.get_mut(&d.endpoint) else {
            return; // endpoint deleted meanwhile
        };
        let Some(slot) = p.active.get_mut(&d.seq) else {
            return;
        };
        let ev = &mut slot.ev;
        let (code, message) = match &d.outcome.failure {
            Some((k, m)) => (Some(k.code().to_string()), Some(m.clone())),
            None => (None, None),
        };
        let rec = AttemptRecord {
            event_id: ev.meta.id.clone(),
            seq: d.seq,
            attempt: d.attempt,
            started_ms: d.started_ms,
            status: d.outcome.status,
            latency_ms: d.outcome.latency.as_millis().min(u128::from(u32::MAX)) as u32,
            error: code.clone(),
            message: message.clone(),
        };
        ev.progress.push(rec.clone());
        let Some((kind, msg)) = d.outcome.failure.clone() else {
            metrics::counter!(crate::telemetry::ATTEMPTS, crate::telemetry::RESULT => "success")
                .increment(1);
            metrics::counter!(crate::telemetry::DELIVERIES).increment(1);
            metrics::gauge!(crate::telemetry::BACKLOG).decrement(1.0);
            let Some(slot) = p.active.remove(&d.seq) else {
                return;
            };
            p.backlog = p.backlog.saturating_sub(1);
            let back_up = p.down.take().is_some();
            if back_up {
                tracing::info!(endpoint = %p.id, "endpoint answered 2xx; active again");
            }
            self.journal(
                &d.endpoint,
                d.seq,
                rec,
                slot.ev,
                ProgressOutcome::Delivered,
                back_up.then_some(false),
            );
            self.pump(&d.endpoint);
            return;
        };
        metrics::counter!(crate::telemetry::ATTEMPTS, crate::telemetry::RESULT => "failure")
            .increment(1);
        let err = ErrorInfo {
            code: kind.code().to_string(),
            message: msg,
            status: d.outcome.status,
            at_ms: now_ms(),
        };
        ev.progress.last_error = Some(err.clone());
        p.last_error = Some(err);
        let schedule = p.target.schedule.clone();
        let mut health = None;

        if let Some(down) = p.down {
            if kind.blames_endpoint() {
                // Still down: the event goes back in line; the next probe waits longer.
                let Some(slot) = p.active.remove(&d.seq) else {
                    return;
                };
                let progress = slot.ev.progress.clone();
                p.ready.insert(d.seq, slot.ev);
                if d.probe {
                    let probes = down.probes + 1;
                    p.down = Some(Down {
                        probes,
                        next_at: now + retry::probe_delay(&schedule, probes),
                    });
                }
                self.journal_progress(&d.endpoint, d.seq, rec, progress, None);
                self.pump(&d.endpoint);
                return;
            }
            // The endpoint answers; this event's own failure is handled as usual.
            p.down = None;
            health = Some(false);
        }

        let Some(slot) = p.active.get_mut(&d.seq) else {
            return;
        };
        let retry_after = d
            .outcome
            .retry_after
            .filter(|_| d.outcome.status == Some(429));
        match retry::on_failure(
            &schedule,
            slot.ev.progress.failures,
            retry_after,
            retry_after_cap,
        ) {
            RetryAction::Retry { after, counted } => {
                if counted {
                    slot.ev.progress.failures += 1;
                }
                slot.phase = Phase::Waiting(now + after);
                let progress = slot.ev.progress.clone();
                self.journal_progress(&d.endpoint, d.seq, rec, progress, health);
            }
            RetryAction::Dead => {
                let Some(slot) = p.active.remove(&d.seq) else {
                    return;
                };
                p.backlog = p.backlog.saturating_sub(1);
                metrics::gauge!(crate::telemetry::BACKLOG).decrement(1.0);
                metrics::counter!(crate::telemetry::DEAD_LETTERS, crate::telemetry::REASON => "MAX_RETRIES_EXCEEDED")
                    .increment(1);
                tracing::warn!(endpoint = %p.id, seq = d.seq, event_id = %slot.ev.meta.id,
                    error = kind.code(), "dead-lettered: MAX_RETRIES_EXCEEDED");
                if kind.blames_endpoint() {
                    health = Some(true);
                    tracing::warn!(endpoint = %p.id, "endpoint down; holding its backlog and probing");
                    p.down = Some(Down {
                        probes: 0,
                        next_at: now + retry::probe_delay(&schedule, 0),
                    });
                    // Events waiting for a retry go back in line behind the probe.
                    let waiting: Vec<u64> = p
                        .active
                        .iter()
                        .filter(|(_, s)| matches!(s.phase, Phase::Waiting(_)))
                        .map(|(k, _)| *k)
                        .collect();
                    for seq in waiting {
                        if let Some(s) = p.active.remove(&seq) {
                            p.ready.insert(seq, s.ev);
                        }
                    }
                }
                self.journal(
                    &d.endpoint,
                    d.seq,
                    rec,
                    slot.ev,
                    ProgressOutcome::Dead {
                        reason: "MAX_RETRIES_EXCEEDED".into(),
                    },
                    health,
                );
            }
        }
        self.pump(&d.endpoint);
    }

    fn journal_progress(
        &self,
        endpoint: &Arc<str>,
        seq: u64,
        attempt: AttemptRecord,
        progress: crate::model::EventProgress,
        down: Option<bool>,
    ) {
        self.journal.record_progress(ProgressUpdate {
            endpoint: endpoint.clone(),
            seq,
            attempt,
            progress,
            outcome: ProgressOutcome::Pending,
            down,
        });
    }

    fn journal(
        &self,
        endpoint: &Arc<str>,
        seq: u64,
        attempt: AttemptRecord,
        ev: QueuedEvent,
        outcome: ProgressOutcome,
        down: Option<bool>,
    ) {
        self.journal.record_progress(ProgressUpdate {
            endpoint: endpoint.clone(),
            seq,
            attempt,
            progress: ev.progress,
            outcome,
            down,
        });
    }
}

/// A pending record failed its check: it is set aside as a dead letter (`RECORD_CORRUPT`) and
/// the partition goes on with the next event. Said once: in the log, the metrics and the
/// endpoint's `last_error` (the record is never read again).
fn quarantine(p: &mut Partition, journal: &dyn Journal, seq: u64, why: String) {
    use crate::store::RECORD_CORRUPT;
    tracing::error!(endpoint = %p.id, seq, error = %why,
        "corrupt event record set aside as a dead letter (RECORD_CORRUPT); delivery goes on with the next event");
    p.backlog = p.backlog.saturating_sub(1);
    metrics::gauge!(crate::telemetry::BACKLOG).decrement(1.0);
    p.last_error = Some(ErrorInfo {
        code: RECORD_CORRUPT.into(),
        message: format!(
            "the stored record of event seq {seq} is corrupt ({why}); it was set aside as a dead letter"
        ),
        status: None,
        at_ms: now_ms(),
    });
    journal.quarantine(p.id.clone(), seq, why);
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
