//! Model test: proptest drives random sequences of enqueue / receiver outcome / pause / resume /
//! replay (one, or every dead letter of an endpoint in bulk) / time passing / restart against the real journal and scheduler (paused tokio time,
//! scripted receiver), and checks them against a model of the contract:
//!
//! * conservation: every accepted event is exactly one of delivered, dead-lettered or pending,
//!   and the endpoint's backlog equals the model's pending count;
//! * no event is delivered twice (restarts here are graceful, so no redelivery is allowed);
//! * strict order: with `max_in_flight` 1, first deliveries of never-replayed events follow
//!   their sequence numbers;
//! * a paused endpoint gets no attempt;
//! * a dead letter has used up the whole schedule (3 attempts);
//! * an endpoint that lost an event to endpoint failures is `down`: the next endpoint-caused dead
//!   letter needs a 2xx or a 4xx answer in between (held events are not dead-lettered one after
//!   another);
//! * after the receiver recovers and time passes, nothing is left pending.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::core::endpoint::EndpointSpec;
use courier::core::model::EndpointConfig;
use courier::core::record::EventMeta;
use courier::core::retry::FailureKind;
use courier::destination::http::Answer;
use courier::destination::{BuildError, DFuture, Delivery, Destination, Factory, Ping};
use courier::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use courier::store::redb::{DEFAULT_CACHE_BYTES, RedbJournal};
use courier::store::{EnqueueReq, Journal};
use proptest::prelude::*;

const EPS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Unavailable, // 503: blames the endpoint
    Rejected,    // 400: blames the event
    Refused,     // connection refused: blames the endpoint
}

#[derive(Debug, Clone)]
enum Action {
    Enqueue(usize),
    SetMode(usize, Mode),
    Pause(usize),
    Resume(usize),
    Replay(usize, usize),
    /// Every dead letter of the endpoint, in bulk.
    ReplayAll(usize),
    Advance(u64),
    Restart,
}

fn action() -> impl Strategy<Value = Action> {
    let ep = 0..EPS;
    prop_oneof![
        6 => ep.clone().prop_map(Action::Enqueue),
        2 => (ep.clone(), prop_oneof![Just(Mode::Ok), Just(Mode::Unavailable), Just(Mode::Rejected), Just(Mode::Refused)])
            .prop_map(|(e, m)| Action::SetMode(e, m)),
        1 => ep.clone().prop_map(Action::Pause),
        1 => ep.clone().prop_map(Action::Resume),
        1 => (ep.clone(), 0..4usize).prop_map(|(e, i)| Action::Replay(e, i)),
        1 => ep.clone().prop_map(Action::ReplayAll),
        4 => (1..3_000u64).prop_map(Action::Advance),
        1 => Just(Action::Restart),
    ]
}

/// One attempt as the scripted receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    ep: usize,
    event_id: String,
    answer: Mode,
}

#[derive(Default)]
struct Shared {
    modes: [Option<Mode>; EPS],
    paused: [bool; EPS],
    log: Vec<Seen>,
    violations: Vec<String>,
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
        s.log.push(Seen {
            ep,
            event_id: d.meta.id.clone(),
            answer: mode,
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
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
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

struct System {
    journal: Arc<RedbJournal>,
    sched: SchedulerHandle,
    sched_task: tokio::task::JoinHandle<()>,
}

fn start(path: &std::path::Path, shared: &Arc<Mutex<Shared>>) -> System {
    let (sched, rx) = Scheduler::channel();
    let h = sched.clone();
    let journal = Arc::new(
        RedbJournal::open(path, DEFAULT_CACHE_BYTES, Box::new(move |n| h.notify(n))).unwrap(),
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

async fn stop(sys: System) {
    sys.sched.shutdown(Duration::from_secs(60)).await;
    let _ = sys.sched_task.await;
    let j = sys.journal.clone();
    call(async move { j.close().await }).await.unwrap();
    drop(sys.sched);
    drop(sys.journal);
}

/// Runs a journal call and waits for its answer without letting paused time advance: the
/// runtime never idles (it yields), so timers cannot fire while the writer thread works.
async fn call<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, courier::store::StoreError>> + Send + 'static,
) -> Result<T, courier::store::StoreError> {
    let task = tokio::spawn(f);
    while !task.is_finished() {
        tokio::task::yield_now().await;
    }
    task.await.expect("the journal call panicked")
}

/// Lets the scheduler react to what just happened.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[derive(Default)]
struct Model {
    accepted: Vec<(usize, u64, String)>,
    replayed: HashSet<String>,
}

async fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.redb");
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut sys = start(&path, &shared);
    for e in 0..EPS {
        let config = EndpointConfig {
            url: format!("https://receiver.test/ep{e}"),
            secret: None,
            password: None,
            timeout_ms: 1_000,
            retry_schedule_ms: vec![100, 200],
            max_in_flight: 1,
            max_backlog: None,
        };
        call({
            let j = sys.journal.clone();
            async move { j.put_endpoint(format!("ep{e}"), config).await }
        })
        .await
        .unwrap();
    }
    let mut model = Model::default();
    let mut n = 0u64;
    for a in actions {
        match a {
            Action::Enqueue(e) => {
                n += 1;
                let meta = EventMeta {
                    id: format!("evt_{n:026}"),
                    enqueued_at_ms: 0,
                    content_type: "application/json".into(),
                    event_type: None,
                };
                let req = EnqueueReq::new(format!("ep{e}"), meta, "{}".into(), None).unwrap();
                let ok = call({
                    let j = sys.journal.clone();
                    async move { j.enqueue(req).await }
                })
                .await
                .unwrap();
                model.accepted.push((e, ok.seq, ok.id));
            }
            Action::SetMode(e, m) => shared.lock().unwrap().modes[e] = Some(m),
            Action::Pause(e) | Action::Resume(e) => {
                let paused = matches!(a, Action::Pause(_));
                if !paused {
                    // The scheduler may start an attempt as soon as it sees the resume.
                    shared.lock().unwrap().paused[e] = false;
                }
                call({
                    let j = sys.journal.clone();
                    async move { j.set_paused(format!("ep{e}"), paused).await }
                })
                .await
                .unwrap();
                if paused {
                    // An attempt already under way may finish; new ones must not start.
                    settle().await;
                    shared.lock().unwrap().paused[e] = true;
                }
            }
            Action::Replay(e, i) => {
                call({
                    let j = sys.journal.clone();
                    async move { j.sync().await }
                })
                .await
                .unwrap();
                let dl = sys
                    .journal
                    .db()
                    .dead_letters(Some(&format!("ep{e}")))
                    .unwrap();
                if let Some(d) = dl.get(i.min(dl.len().saturating_sub(1))) {
                    let event_id = d.event_id.clone();
                    let r = call({
                        let j = sys.journal.clone();
                        let event_id = event_id.clone();
                        async move { j.replay(event_id).await }
                    })
                    .await;
                    prop_assert!(r.is_ok(), "replay failed: {r:?}");
                    model.replayed.insert(event_id);
                }
            }
            Action::ReplayAll(e) => {
                call({
                    let j = sys.journal.clone();
                    async move { j.sync().await }
                })
                .await
                .unwrap();
                let dl = sys
                    .journal
                    .db()
                    .dead_letters(Some(&format!("ep{e}")))
                    .unwrap();
                let r = call({
                    let j = sys.journal.clone();
                    let filter = courier::core::dead_filter::DeadFilter::endpoint(format!("ep{e}"));
                    async move { j.replay_matching(filter, None, 1000).await }
                })
                .await;
                prop_assert!(r.is_ok(), "bulk replay failed: {r:?}");
                let done = r.unwrap();
                prop_assert_eq!(
                    (done.done, done.skipped, done.next),
                    (dl.len() as u64, 0, None)
                );
                model.replayed.extend(dl.into_iter().map(|d| d.event_id));
            }
            Action::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Action::Restart => {
                stop(sys).await;
                sys = start(&path, &shared);
            }
        }
        settle().await;
        check_backlog(&sys, &model, &shared).await?;
    }
    // The receiver recovers, every endpoint resumes, time passes: nothing stays pending.
    {
        let mut s = shared.lock().unwrap();
        s.modes = [Some(Mode::Ok); EPS];
        s.paused = [false; EPS];
    }
    for e in 0..EPS {
        call({
            let j = sys.journal.clone();
            async move { j.set_paused(format!("ep{e}"), false).await }
        })
        .await
        .unwrap();
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    check_backlog(&sys, &model, &shared).await?;
    let views = sys.sched.inspect(None).await;
    for v in &views {
        prop_assert_eq!(v.backlog, 0, "{} still has a backlog: {:?}", &v.id, v);
    }
    call({
        let j = sys.journal.clone();
        async move { j.sync().await }
    })
    .await
    .unwrap();
    let dead = sys.journal.db().dead_letters(None).unwrap();
    stop(sys).await;
    check_final(&model, &shared.lock().unwrap(), &dead)
}

/// The scheduler's backlog equals what the model says is pending.
async fn check_backlog(
    sys: &System,
    model: &Model,
    shared: &Arc<Mutex<Shared>>,
) -> Result<(), TestCaseError> {
    // Quiesce: let attempts under way finish (a few virtual ms) so both sides know their outcome.
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
    call({
        let j = sys.journal.clone();
        async move { j.sync().await }
    })
    .await
    .unwrap();
    let dead: HashSet<String> = sys
        .journal
        .db()
        .dead_letters(None)
        .unwrap()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    let delivered: HashSet<String> = shared
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|s| s.answer == Mode::Ok)
        .map(|s| s.event_id.clone())
        .collect();
    let views = sys.sched.inspect(None).await;
    for e in 0..EPS {
        let pending = model
            .accepted
            .iter()
            .filter(|(ep, _, id)| *ep == e && !dead.contains(id) && !delivered.contains(id))
            .count() as u64;
        let v = views.iter().find(|v| v.id == format!("ep{e}")).unwrap();
        // An attempt whose success is not yet journaled counts as pending on one side only
        // for an instant; settle() waited it out, so they must agree.
        if v.backlog != pending {
            let s = shared.lock().unwrap();
            let log: Vec<String> = s
                .log
                .iter()
                .filter(|x| x.ep == e)
                .map(|x| format!("{}:{:?}", &x.event_id[x.event_id.len() - 3..], x.answer))
                .collect();
            let acc: Vec<String> = model
                .accepted
                .iter()
                .filter(|(ep, _, _)| *ep == e)
                .map(|(_, q, id)| format!("seq{q}={}", &id[id.len() - 3..]))
                .collect();
            prop_assert_eq!(
                v.backlog,
                pending,
                "ep{} backlog {} vs model {}; view {:?}; accepted {:?}; dead {:?}; log {:?}",
                e,
                v.backlog,
                pending,
                v,
                acc,
                dead,
                log
            );
        }
    }
    let s = shared.lock().unwrap();
    prop_assert!(s.violations.is_empty(), "{:?}", s.violations);
    Ok(())
}

fn check_final(
    model: &Model,
    s: &Shared,
    dead: &[courier::core::model::DeadLetter],
) -> Result<(), TestCaseError> {
    prop_assert!(s.violations.is_empty(), "{:?}", s.violations);
    let seq_of: HashMap<&str, (usize, u64)> = model
        .accepted
        .iter()
        .map(|(e, q, id)| (id.as_str(), (*e, *q)))
        .collect();
    let dead_ids: HashSet<&str> = dead.iter().map(|d| d.event_id.as_str()).collect();
    // No double delivery; delivered and dead are disjoint; together they are everything.
    let mut delivered = HashSet::new();
    for x in s.log.iter().filter(|x| x.answer == Mode::Ok) {
        prop_assert!(
            delivered.insert(x.event_id.as_str()),
            "{} delivered twice",
            x.event_id
        );
        prop_assert!(
            !dead_ids.contains(x.event_id.as_str()),
            "{} delivered and dead",
            x.event_id
        );
    }
    for (_, _, id) in &model.accepted {
        prop_assert!(
            delivered.contains(id.as_str()) || dead_ids.contains(id.as_str()),
            "{} neither delivered nor dead-lettered",
            id
        );
    }
    for d in dead {
        prop_assert!(
            seq_of.contains_key(d.event_id.as_str()),
            "unknown dead letter"
        );
        prop_assert!(
            d.progress.attempts >= 3,
            "{} dead after {} attempts",
            d.event_id,
            d.progress.attempts
        );
    }
    // Strict order of first deliveries, for events never replayed.
    let mut last = [0u64; EPS];
    for x in s.log.iter().filter(|x| x.answer == Mode::Ok) {
        if model.replayed.contains(&x.event_id) {
            continue;
        }
        let (e, q) = seq_of[x.event_id.as_str()];
        prop_assert!(q > last[e], "ep{} delivered seq {} after {}", e, q, last[e]);
        last[e] = q;
    }
    // Down rule: between two endpoint-caused dead letters of an endpoint, the receiver answered
    // 2xx or 4xx at least once.
    for e in 0..EPS {
        let mut last_answer_ok = true;
        let mut log_pos: HashMap<&str, usize> = HashMap::new();
        for (i, x) in s.log.iter().enumerate().filter(|(_, x)| x.ep == e) {
            log_pos.insert(x.event_id.as_str(), i);
        }
        let mut deaths: Vec<(usize, &courier::core::model::DeadLetter)> = dead
            .iter()
            .filter(|d| d.endpoint == format!("ep{e}"))
            .filter_map(|d| log_pos.get(d.event_id.as_str()).map(|p| (*p, d)))
            .collect();
        deaths.sort_by_key(|(p, _)| *p);
        let mut prev: Option<usize> = None;
        for (p, d) in deaths {
            let blames = d
                .progress
                .last_error
                .as_ref()
                .is_some_and(|le| le.code == "HTTP_5XX" || le.code == "ECONNREFUSED");
            if !blames {
                continue;
            }
            if let Some(q) = prev {
                last_answer_ok = s.log[q + 1..p]
                    .iter()
                    .any(|x| x.ep == e && matches!(x.answer, Mode::Ok | Mode::Rejected));
            }
            prop_assert!(
                last_answer_ok,
                "ep{} dead-lettered {} while down (held events must not be dead-lettered one after another)",
                e,
                d.event_id
            );
            prev = Some(p);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("COURIER_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/model.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_and_scheduler_follow_the_contract(actions in proptest::collection::vec(action(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(run(actions))?;
    }
}
