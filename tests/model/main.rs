//! Model test: proptest drives random sequences of enqueue / receiver outcome / pause / resume /
//! replay (one, or every dead letter of an endpoint in bulk) / back-fill of a time window (as
//! `POST /v1/endpoints/{id}/replay` does it: the route's window, in chunks) / retention pass /
//! time passing / restart against the real journal and scheduler (paused tokio time, which is
//! also the journal's clock; retention 2 s; scripted receiver), and checks them against a model
//! of the contract (`model.rs`: what each accepted event still owes the receiver):
//!
//! * conservation: every accepted event is exactly one of delivered, dead-lettered or pending,
//!   and the endpoint's backlog equals the model's pending count (back-filled copies not yet
//!   sent included); the journal's invariants hold after every step;
//! * only an event that owes a delivery is attempted: no event is delivered twice, except as a
//!   back-filled copy (or once more after it died and was put back from the dead letters);
//! * the replay flag (`X-HAPP-Replay: 1`) is on exactly the attempts of back-filled copies: of
//!   events delivered before, in a window the test back-filled; each copy is delivered once
//!   (or dead-lettered);
//! * back-fill answers what the model predicts, summed over its chunks: the delivered events
//!   of the window still retained are reopened, those pending are counted and sent once, a
//!   window retention cut is said to be, and one that ends before every row the endpoint still
//!   holds, after retention removed events from it, is `WindowGone` (`RETENTION_EXCEEDED`);
//! * retention removes exactly the delivered events accepted before now − retention below the
//!   endpoint's cursor, and nothing else (pending events and copies stay);
//! * strict order: with `max_in_flight` 1, first deliveries (without the replay flag) of
//!   events never put back from the dead letters follow their sequence numbers; after a
//!   back-fill, its copies and the events not yet started are first attempted in seq order
//!   (so the copies go ahead of every newer event waiting);
//! * a paused endpoint gets no attempt;
//! * a dead letter has used up the whole schedule (3 attempts);
//! * an endpoint that lost an event to endpoint failures is `down`: the next endpoint-caused dead
//!   letter needs a 2xx or a 4xx answer in between (held events are not dead-lettered one after
//!   another);
//! * after the receiver recovers and time passes, nothing is left pending.

mod model;
mod scripted;
mod system;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::api::backfill::window_of;
use courier::core::model::EndpointConfig;
use courier::core::record::EventMeta;
use courier::core::timefmt::rfc3339;
use courier::store::{BackfillReq, EnqueueReq, Journal, StoreError};
use courier::views::BackfillRequest;
use proptest::prelude::*;

use model::{Model, Stats};
use system::{EPS, Mode, RETENTION_MS, Shared, System, T0, Time, call, quiesce, settle, sync};

/// Where a back-fill window starts.
#[derive(Debug, Clone, Copy)]
enum Since {
    /// When the case began: before every event.
    Origin,
    /// When the endpoint's event (index modulo its count) was accepted, give or take a ms.
    Event(usize, i8),
    /// This long ago.
    Ago(u64),
}

/// Where a back-fill window ends (exclusive).
#[derive(Debug, Clone, Copy)]
enum Until {
    /// No `until`: up to now.
    Now,
    /// When the endpoint's event was accepted, or a ms after (so it is in the window).
    Event(usize, u8),
    /// Now − retention: the window holds nothing retention would keep.
    Cutoff,
    /// This long after `since`.
    Span(u64),
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
    /// A back-fill in chunks of `limit` events.
    Backfill {
        ep: usize,
        since: Since,
        until: Until,
        limit: usize,
    },
    /// Retention passes until one says there is no more.
    Sweep,
    Advance(u64),
    Restart,
}

fn since() -> impl Strategy<Value = Since> {
    prop_oneof![
        Just(Since::Origin),
        (0..8usize, -1..=1i8).prop_map(|(i, d)| Since::Event(i, d)),
        (0..6_000u64).prop_map(Since::Ago),
    ]
}

fn until() -> impl Strategy<Value = Until> {
    prop_oneof![
        Just(Until::Now),
        (0..8usize, 0..=1u8).prop_map(|(i, d)| Until::Event(i, d)),
        Just(Until::Cutoff),
        (1..4_000u64).prop_map(Until::Span),
    ]
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
        3 => (ep.clone(), since(), until(), prop_oneof![Just(1usize), Just(2), Just(1000)])
            .prop_map(|(ep, since, until, limit)| Action::Backfill { ep, since, until, limit }),
        1 => Just(Action::Sweep),
        4 => (1..3_000u64).prop_map(Action::Advance),
        1 => Just(Action::Restart),
    ]
}

fn fail(e: String) -> TestCaseError {
    TestCaseError::fail(e)
}

async fn run(actions: Vec<Action>) -> Result<Stats, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.redb");
    let shared = Arc::new(Mutex::new(Shared::default()));
    let time = Time::start();
    let mut sys = system::start(&path, &shared, time);
    for e in 0..EPS {
        let config = EndpointConfig {
            url: format!("https://receiver.test/ep{e}"),
            secret: None,
            password: None,
            timeout_ms: 1_000,
            retry_schedule_ms: vec![100, 200],
            max_in_flight: 1,
            max_backlog: None,
            security: Default::default(),
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
                let at = time.now_ms();
                let meta = EventMeta {
                    id: format!("evt_{n:026}"),
                    enqueued_at_ms: at,
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
                model.accept(e, ok.seq, ok.id, at);
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
                observe(&sys, &mut model, &shared).await?;
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
                    model.replayed(&event_id).map_err(fail)?;
                }
            }
            Action::ReplayAll(e) => {
                observe(&sys, &mut model, &shared).await?;
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
                for d in dl {
                    model.replayed(&d.event_id).map_err(fail)?;
                }
            }
            Action::Backfill {
                ep,
                since,
                until,
                limit,
            } => backfill(&sys, &mut model, &shared, time, (ep, since, until, limit)).await?,
            Action::Sweep => sweep(&sys, &mut model, &shared, time).await?,
            Action::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Action::Restart => {
                system::stop(sys).await;
                sys = system::start(&path, &shared, time);
            }
        }
        settle().await;
        observe(&sys, &mut model, &shared).await?;
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
    observe(&sys, &mut model, &shared).await?;
    let views = sys.sched.inspect(None).await;
    for v in &views {
        prop_assert_eq!(v.backlog, 0, "{} still has a backlog: {:?}", &v.id, v);
    }
    sync(&sys).await;
    let dead = sys.journal.db().dead_letters(None).unwrap();
    system::stop(sys).await;
    let s = shared.lock().unwrap();
    prop_assert!(s.violations.is_empty(), "{:?}", s.violations);
    model.check_final(&s.log, &dead).map_err(fail)?;
    Ok(model.stats)
}

/// Brings the model up to date (attempts answered, dead letters) and checks that the
/// scheduler's backlog is what the model says is pending and that the journal's invariants
/// hold.
async fn observe(
    sys: &System,
    model: &mut Model,
    shared: &Arc<Mutex<Shared>>,
) -> Result<(), TestCaseError> {
    quiesce(sys).await;
    let dead: HashSet<String> = sys
        .journal
        .db()
        .dead_letters(None)
        .unwrap()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    {
        let s = shared.lock().unwrap();
        prop_assert!(s.violations.is_empty(), "{:?}", s.violations);
        if let Err(e) = model.observe(&s.log, &dead) {
            return Err(fail(format!("{e}\n{}", dump(model, &s.log))));
        }
    }
    let views = sys.sched.inspect(None).await;
    for e in 0..EPS {
        let v = views.iter().find(|v| v.id == format!("ep{e}")).unwrap();
        // An attempt whose success is not yet journaled counts as pending on one side only
        // for an instant; quiesce() waited it out, so they must agree.
        if v.backlog != model.pending(e) {
            let s = shared.lock().unwrap();
            return Err(fail(format!(
                "ep{e} backlog {} vs model {}; view {v:?}\n{}",
                v.backlog,
                model.pending(e),
                dump(model, &s.log)
            )));
        }
    }
    let broken = sys.journal.db().check_invariants().unwrap();
    prop_assert!(broken.is_empty(), "journal invariants: {broken:?}");
    Ok(())
}

/// The model's events and the receiver's log, short, for a failure's message.
fn dump(model: &Model, log: &[system::Seen]) -> String {
    let tail = |id: &str| id[id.len() - 3..].to_string();
    let events: Vec<String> = model
        .events
        .iter()
        .map(|e| {
            format!(
                "ep{}/{}={}@{}:{:?}",
                e.ep,
                e.seq,
                tail(&e.id),
                e.at - T0,
                e.st
            )
        })
        .collect();
    let seen: Vec<String> = log
        .iter()
        .map(|x| {
            format!(
                "ep{}:{}:{:?}{}{}",
                x.ep,
                tail(&x.event_id),
                x.answer,
                if x.replay { "+replay" } else { "" },
                if x.done { "" } else { "(under way)" }
            )
        })
        .collect();
    format!("events {events:?}\nlog {seen:?}")
}

/// A back-fill as the route runs it: the window checked by `window_of` (since inclusive,
/// until exclusive, at most now), then `Journal::backfill` in chunks of `limit` until `next`
/// is `None`; its answer against the model's, then its copies and order mark into the model.
async fn backfill(
    sys: &System,
    model: &mut Model,
    shared: &Arc<Mutex<Shared>>,
    time: Time,
    (ep, since, until, limit): (usize, Since, Until, usize),
) -> Result<(), TestCaseError> {
    observe(sys, model, shared).await?;
    let now = time.now_ms();
    let times = model.times(ep);
    let at = |i: usize| (!times.is_empty()).then(|| times[i % times.len()]);
    let since_ms = match since {
        Since::Origin => T0,
        Since::Event(i, d) => at(i).map_or(T0, |t| t.saturating_add_signed(d.into())),
        Since::Ago(ms) => now.saturating_sub(ms).max(T0),
    };
    let until_ms = match until {
        Until::Now => None,
        Until::Event(i, d) => Some(at(i).map_or(now, |t| t + u64::from(d))),
        Until::Cutoff => Some(now.saturating_sub(RETENTION_MS)),
        Until::Span(ms) => Some(since_ms + ms),
    };
    let req = BackfillRequest {
        since: Some(rfc3339(since_ms)),
        until: until_ms.map(rfc3339),
        ..Default::default()
    };
    let last = until_ms.map_or(now, |u| u.saturating_sub(1).min(now));
    let window = match window_of(&req, now) {
        Ok(w) => w,
        Err(e) => {
            prop_assert!(
                since_ms > last && e.code == "INVALID_TIME",
                "window {req:?} at {now} refused: {e:?}"
            );
            return Ok(());
        }
    };
    prop_assert_eq!((window.since_ms, window.until_ms), (since_ms, last));
    let expect = model.expect_backfill(ep, since_ms, last);
    let from = shared.lock().unwrap().log.len();
    let mut after = None;
    let (mut done, mut pending, mut cut) = (0u64, 0u64, false);
    let got = loop {
        let req = BackfillReq {
            endpoint: format!("ep{ep}"),
            since_ms,
            until_ms: Some(last),
            after,
            limit,
        };
        let j = sys.journal.clone();
        match call(async move { j.backfill(req).await }).await {
            Err(StoreError::WindowGone {
                retained_since_ms, ..
            }) if after.is_none() => break Err(retained_since_ms),
            Err(e) => return Err(fail(format!("back-fill failed: {e:?}"))),
            Ok(d) => {
                prop_assert!(d.done <= limit as u64, "a chunk over its limit: {d:?}");
                done += d.done;
                pending += d.pending;
                cut |= d.cut;
                after = d.next;
                if after.is_none() {
                    break Ok((done, pending, cut, d.retained_since_ms));
                }
            }
        }
    };
    // The journal answers counts; the model names the events (whose later attempts tell
    // which were reopened).
    if got != expect.answer() {
        let s = shared.lock().unwrap();
        return Err(fail(format!(
            "back-fill of ep{ep} [{}, {}] (limit {limit}) answered {got:?}, the model {expect:?}\n{}",
            since_ms - T0,
            last - T0,
            dump(model, &s.log)
        )));
    }
    // Once the scheduler has the back-fill's notices (they precede this in its queue), what
    // had started by then is known.
    sys.sched.inspect(None).await;
    let s = shared.lock().unwrap();
    model.backfilled(ep, &expect, &s.log, from);
    Ok(())
}

/// Retention passes (until one says there is no more): they remove what the model says.
async fn sweep(
    sys: &System,
    model: &mut Model,
    shared: &Arc<Mutex<Shared>>,
    time: Time,
) -> Result<(), TestCaseError> {
    observe(sys, model, shared).await?;
    let mut cursors = [0u64; EPS];
    for (e, c) in cursors.iter_mut().enumerate() {
        *c = sys
            .journal
            .db()
            .endpoint(&format!("ep{e}"))
            .unwrap()
            .unwrap()
            .log
            .cursor;
    }
    let expect = model.expect_sweep(time.now_ms().saturating_sub(RETENTION_MS), &cursors);
    let mut removed = 0;
    for _ in 0..10 {
        let j = sys.journal.clone();
        let d = call(async move { j.sweep().await }).await;
        prop_assert!(d.is_ok(), "sweep failed: {d:?}");
        let d = d.unwrap();
        removed += d.removed;
        if !d.more {
            break;
        }
    }
    if removed != expect.len() as u64 {
        let s = shared.lock().unwrap();
        return Err(fail(format!(
            "retention removed {removed}, the model {:?} (cursors {cursors:?})\n{}",
            expect
                .iter()
                .map(|&i| &model.events[i].id)
                .collect::<Vec<_>>(),
            dump(model, &s.log)
        )));
    }
    model.swept(&expect);
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
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
        runtime().block_on(run(actions))?;
    }
}
