//! The system under test of the model test: the real redb journal (its clock the test's paused
//! tokio time, its retention short) and the real scheduler, with a scripted receiver in place
//! of the network; starting and stopping them, and waiting without letting time run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::core::endpoint::EndpointSpec;
use courier::core::retry::FailureKind;
use courier::destination::http::Answer;
use courier::destination::{BuildError, DFuture, Delivery, Destination, Factory, Ping};
use courier::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use courier::store::redb::{DEFAULT_CACHE_BYTES, DbHandle, RedbJournal};
use courier::store::{Clock, Journal, Limits, StoreError};

/// Endpoints of the model (`ep0`, `ep1`).
pub const EPS: usize = 2;
/// The journal's `--retention`: short, so that the time the actions let pass outlives it.
pub const RETENTION_MS: u64 = 2_000;
/// Unix ms at the start of a case: the journal's clock and the events' acceptance times are
/// this plus the paused tokio time since.
pub const T0: u64 = 1_700_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Unavailable, // 503: blames the endpoint
    Rejected,    // 400: blames the event
    Refused,     // connection refused: blames the endpoint
}

/// One attempt as the scripted receiver saw it (logged when it starts; its answer is decided
/// then).
#[derive(Debug, Clone)]
pub struct Seen {
    pub ep: usize,
    pub event_id: String,
    pub answer: Mode,
    /// The attempt carried `X-HAPP-Replay: 1` (`Delivery::replay`).
    pub replay: bool,
    /// The attempt has answered (the scheduler may not have handled the answer yet).
    pub done: bool,
}

#[derive(Default)]
pub struct Shared {
    pub modes: [Option<Mode>; EPS],
    pub paused: [bool; EPS],
    pub log: Vec<Seen>,
    pub violations: Vec<String>,
}

/// One endpoint's side of the scripted receiver.
struct ScriptedReceiver {
    ep: usize,
    shared: Arc<Mutex<Shared>>,
}

/// Builds each endpoint's scripted receiver (the endpoint is told by its URL, `/ep<n>`).
struct Receivers(Arc<Mutex<Shared>>);

impl Factory for Receivers {
    fn build(&self, _: &str, spec: &EndpointSpec) -> Result<Arc<dyn Destination>, BuildError> {
        let ep: usize = spec
            .url
            .uri()
            .path()
            .trim_start_matches("/ep")
            .parse()
            .unwrap();
        Ok(Arc::new(ScriptedReceiver {
            ep,
            shared: self.0.clone(),
        }))
    }
}

impl Destination for ScriptedReceiver {
    fn deliver(&self, d: Delivery) -> DFuture {
        let ep = self.ep;
        let mut s = self.shared.lock().unwrap();
        if s.paused[ep] {
            s.violations.push(format!(
                "attempt of {} on paused endpoint ep{ep}",
                d.meta.id
            ));
        }
        let mode = s.modes[ep].unwrap_or(Mode::Ok);
        let at = s.log.len();
        s.log.push(Seen {
            ep,
            event_id: d.meta.id.clone(),
            answer: mode,
            replay: d.replay,
            done: false,
        });
        let (status, failure) = match mode {
            Mode::Ok => (Some(200), None),
            Mode::Unavailable => (Some(503), Some((FailureKind::Http(503), "HTTP 503".into()))),
            Mode::Rejected => (Some(400), Some((FailureKind::Http(400), "HTTP 400".into()))),
            Mode::Refused => (
                None,
                Some((FailureKind::ConnectionRefused, "refused".into())),
            ),
        };
        let shared = self.shared.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            shared.lock().unwrap().log[at].done = true;
            courier::destination::webhook::outcome(Answer {
                status,
                failure,
                retry_after: None,
                latency: Duration::from_millis(3),
                body: bytes::Bytes::new(),
                body_truncated: false,
                content_type: None,
            })
        })
    }

    fn test(&self, _: Ping) -> DFuture {
        unreachable!("the scheduler never tests a destination")
    }
}

/// The case's time: [`T0`] plus the paused tokio time since `origin`.
#[derive(Clone, Copy)]
pub struct Time {
    origin: tokio::time::Instant,
}

impl Time {
    pub fn start() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        T0 + self.origin.elapsed().as_millis() as u64
    }

    /// The journal's clock: the same time, read from the writer's thread (which enters the
    /// test's runtime to read its paused clock).
    pub fn clock(&self) -> Clock {
        let rt = tokio::runtime::Handle::current();
        let t = *self;
        Arc::new(move || {
            let _in = rt.enter();
            t.now_ms()
        })
    }
}

pub struct System {
    pub journal: Arc<RedbJournal>,
    pub sched: SchedulerHandle,
    sched_task: tokio::task::JoinHandle<()>,
}

pub fn start(path: &std::path::Path, shared: &Arc<Mutex<Shared>>, time: Time) -> System {
    let (sched, rx) = Scheduler::channel();
    let h = sched.clone();
    let db = DbHandle::open_with_cache(
        path,
        DEFAULT_CACHE_BYTES,
        courier::store::seal::KeyRing::test_ring(),
    )
    .unwrap();
    let limits = Limits {
        retention_ms: RETENTION_MS,
        ..Limits::default()
    };
    let journal = Arc::new(
        RedbJournal::start_with(db, Box::new(move |n| h.notify(n)), time.clock(), limits).unwrap(),
    );
    let endpoints = journal.db().endpoints().unwrap();
    let s = Scheduler::new(
        SchedulerConfig::default(),
        journal.clone(),
        Arc::new(Receivers(shared.clone())),
        endpoints,
    );
    let sched_task = tokio::spawn(s.run(rx));
    System {
        journal,
        sched,
        sched_task,
    }
}

pub async fn stop(sys: System) {
    sys.sched.shutdown(Duration::from_secs(60)).await;
    let _ = sys.sched_task.await;
    let j = sys.journal.clone();
    call(async move { j.close().await }).await.unwrap();
    drop(sys.sched);
    drop(sys.journal);
}

/// Runs a journal call and waits for its answer without letting paused time advance: the
/// runtime never idles (it yields), so timers cannot fire while the writer thread works.
pub async fn call<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let task = tokio::spawn(f);
    while !task.is_finished() {
        tokio::task::yield_now().await;
    }
    task.await.expect("the journal call panicked")
}

/// A durable barrier: every journal op sent before (the scheduler's progress included) is
/// applied when it answers.
pub async fn sync(sys: &System) {
    let j = sys.journal.clone();
    call(async move { j.sync().await }).await.unwrap();
}

/// Lets the scheduler react to what just happened.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Lets attempts under way finish (a few virtual ms) so that the scheduler, the journal and
/// the receiver agree on their outcome, then makes the journal apply what it was sent.
pub async fn quiesce(sys: &System) {
    for _ in 0..1000 {
        if sys
            .sched
            .inspect(None)
            .await
            .iter()
            .all(|v| v.in_flight == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sync(sys).await;
}
