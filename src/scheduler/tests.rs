//! Tests of the scheduler executing the partitions under paused tokio time, with a scripted
//! destination and a real journal in a temporary directory.

use std::sync::Mutex;

use super::*;
use crate::core::model::EndpointConfig;
use crate::core::record::EventMeta;
use crate::core::retry::FailureKind;
use crate::destination::http::Answer as HttpAnswer;
use crate::destination::{BuildError, DFuture, Destination, Ping};
use crate::store::redb::RedbJournal;
use crate::store::{EnqueueReq, StoreError};

mod race;
mod retry_now;

/// What the scripted receiver saw: (event id, attempt number, virtual ms since start).
type Log = Arc<Mutex<Vec<(String, u32, u64)>>>;

/// A scripted answer: status (or failure), how long it takes, and a `Retry-After` in seconds.
type Answer = (Result<u16, FailureKind>, Duration, Option<u64>);
type Script = Box<dyn Fn(&str, u32, u32) -> Answer + Send + Sync>;

/// Answers attempts from a script: `f(event_id, attempt, call_index) -> (status or failure, delay)`.
struct Scripted {
    t0: Instant,
    log: Log,
    calls: Mutex<u32>,
    f: Script,
}

impl Destination for Scripted {
    fn deliver(&self, d: Delivery) -> DFuture {
        let n = {
            let mut c = self.calls.lock().unwrap();
            *c += 1;
            *c
        };
        let at = self.t0.elapsed().as_millis() as u64;
        self.log
            .lock()
            .unwrap()
            .push((d.meta.id.clone(), d.attempt, at));
        let (res, delay, retry_after) = (self.f)(&d.meta.id, d.attempt, n);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let (status, failure) = match res {
                Ok(s) if (200..300).contains(&s) => (Some(s), None),
                Ok(s) => (Some(s), Some((FailureKind::Http(s), format!("HTTP {s}")))),
                Err(k) => (None, Some((k, "scripted".to_string()))),
            };
            crate::destination::webhook::outcome(HttpAnswer {
                status,
                failure,
                retry_after: retry_after.map(Duration::from_secs),
                latency: delay,
                body: bytes::Bytes::from_static(b"scripted answer"),
                body_truncated: false,
                content_type: None,
            })
        })
    }

    fn test(&self, _: Ping) -> DFuture {
        unreachable!("the scheduler never tests a destination")
    }
}

/// Gives every endpoint the one scripted destination.
struct ScriptedFactory(Arc<Scripted>);

impl Factory for ScriptedFactory {
    fn build(&self, _: &str, _: &EndpointSpec) -> Result<Arc<dyn Destination>, BuildError> {
        Ok(self.0.clone())
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    journal: Arc<RedbJournal>,
    handle: SchedulerHandle,
    log: Log,
    ids: Vec<String>,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Creates an endpoint, enqueues `n` events (ids in `rig.ids`), and starts the scheduler.
async fn rig(
    schedule_ms: &[u64],
    max_in_flight: u32,
    n: usize,
    f: impl Fn(&str, u32, u32) -> (Result<u16, FailureKind>, Duration, Option<u64>)
    + Send
    + Sync
    + 'static,
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (handle, rx) = Scheduler::channel();
    let h2 = handle.clone();
    let journal = Arc::new(
        RedbJournal::open(
            &dir.path().join("t.redb"),
            crate::store::redb::DEFAULT_CACHE_BYTES,
            crate::store::seal::KeyRing::test_ring(),
            Box::new(move |n| h2.notify(n)),
        )
        .unwrap(),
    );
    let config = EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: Some("k".into()),
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: schedule_ms.to_vec(),
        max_in_flight,
        max_backlog: None,
        security: Default::default(),
    };
    let (rec, _) = journal.put_endpoint("ep".into(), config).await.unwrap();
    let log: Log = Arc::default();
    let transport = Arc::new(Scripted {
        t0: Instant::now(),
        log: log.clone(),
        calls: Mutex::new(0),
        f: Box::new(f),
    });
    let sched = Scheduler::new(
        SchedulerConfig::default(),
        journal.clone(),
        Arc::new(ScriptedFactory(transport)),
        vec![rec],
    );
    let mut ids = Vec::new();
    for i in 0..n {
        let meta = EventMeta {
            id: format!("evt_{i:026}"),
            enqueued_at_ms: 0,
            content_type: "application/json".into(),
            event_type: None,
        };
        let req =
            EnqueueReq::new("ep".into(), meta, format!("{{\"n\":{i}}}").into(), None).unwrap();
        let ok = journal.enqueue(req).await.unwrap();
        ids.push(ok.id);
    }
    tokio::spawn(sched.run(rx));
    Rig {
        _dir: dir,
        journal,
        handle,
        log,
        ids,
    }
}

impl Rig {
    fn log(&self) -> Vec<(String, u32, u64)> {
        self.log.lock().unwrap().clone()
    }
    async fn view(&self) -> RuntimeView {
        self.handle.inspect(Some("ep".into())).await.remove(0)
    }
    async fn dead(&self) -> Vec<crate::core::model::DeadLetter> {
        self.journal.sync().await.unwrap();
        self.journal.db().dead_letters(None).unwrap()
    }
}

fn ok_always(_: &str, _: u32, _: u32) -> (Result<u16, FailureKind>, Duration, Option<u64>) {
    (Ok(200), ms(1), None)
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_schedule_then_dead_letter() {
    let r = rig(&[5_000, 15_000, 60_000], 1, 1, |_, _, _| {
        (Err(FailureKind::ConnectionRefused), ms(0), None)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    let times: Vec<u64> = r.log().iter().map(|(_, _, t)| *t).collect();
    assert_eq!(times.len(), 4, "four attempts in all: {times:?}");
    let expected = [0u64, 5_000, 20_000, 80_000];
    for (got, want) in times.iter().zip(expected) {
        assert!(
            got.abs_diff(want) <= 5,
            "attempt at {got} ms, want {want} ms ({times:?})"
        );
    }
    let attempts: Vec<u32> = r.log().iter().map(|(_, a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let dead = r.dead().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "MAX_RETRIES_EXCEEDED");
    assert_eq!(dead[0].progress.attempts, 4);
    assert_eq!(
        dead[0].progress.last_error.as_ref().unwrap().code,
        "ECONNREFUSED"
    );
    assert_eq!(r.view().await.backlog, 0);
}

#[tokio::test(start_paused = true)]
async fn strict_order_waits_for_the_head() {
    // Event 0 fails twice; events 1 and 2 must not be sent before it is delivered.
    let r = rig(&[1_000, 1_000, 1_000], 1, 3, |id, attempt, _| {
        if id.ends_with("0000") && attempt <= 2 {
            (Ok(500), ms(10), None)
        } else {
            (Ok(200), ms(10), None)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let seen: Vec<(String, u32)> = r.log().into_iter().map(|(i, a, _)| (i, a)).collect();
    let want = vec![
        (r.ids[0].clone(), 1),
        (r.ids[0].clone(), 2),
        (r.ids[0].clone(), 3),
        (r.ids[1].clone(), 1),
        (r.ids[2].clone(), 1),
    ];
    assert_eq!(seen, want);
    assert_eq!(r.view().await.backlog, 0);
}

#[tokio::test(start_paused = true)]
async fn endpoint_failure_dead_letter_puts_endpoint_down_and_probes() {
    // Calls 1-4 (event 0) fail; the first probe (call 5, event 1) fails; then all succeed.
    let r = rig(&[1_000, 2_000, 4_000], 1, 3, |_, _, call| {
        if call <= 5 {
            (Ok(503), ms(0), None)
        } else {
            (Ok(200), ms(0), None)
        }
    })
    .await;
    // Event 0: t=0, 1s, 3s, 7s -> dead at 7s; endpoint down.
    tokio::time::sleep(ms(7_500)).await;
    let v = r.view().await;
    assert_eq!(v.state, "down");
    assert_eq!(
        v.backlog, 2,
        "the events behind are held, not dead-lettered"
    );
    // Probes: first after 1s (at 8s, fails), next after 2s (at 10s, succeeds), then drain.
    tokio::time::sleep(ms(5_000)).await;
    let log = r.log();
    let times: Vec<u64> = log.iter().map(|(_, _, t)| *t).collect();
    assert!(times[4].abs_diff(8_000) <= 5, "{times:?}");
    assert!(times[5].abs_diff(10_000) <= 5, "{times:?}");
    let order: Vec<&str> = log.iter().skip(4).map(|(i, _, _)| i.as_str()).collect();
    assert_eq!(order, [&r.ids[1], &r.ids[1], &r.ids[2]]);
    let v = r.view().await;
    assert_eq!(v.state, "active");
    assert_eq!(v.backlog, 0);
    assert_eq!(
        r.dead().await.len(),
        1,
        "only the first event is a dead letter"
    );
}

#[tokio::test(start_paused = true)]
async fn client_error_dead_letter_does_not_take_the_endpoint_down() {
    let r = rig(&[], 1, 2, |id, _, _| {
        if id.ends_with("0000") {
            (Ok(404), ms(0), None)
        } else {
            (Ok(200), ms(0), None)
        }
    })
    .await;
    tokio::time::sleep(ms(100)).await;
    assert_eq!(r.log().len(), 2);
    let v = r.view().await;
    assert_eq!(v.state, "active");
    assert_eq!(v.backlog, 0);
    let dead = r.dead().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].progress.last_error.as_ref().unwrap().code,
        "HTTP_404"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_429_is_waited_out_without_using_a_retry() {
    // Three 429s with Retry-After: 2, then 500s: one schedule entry (1s) means one counted retry.
    let r = rig(&[1_000], 1, 1, |_, attempt, _| {
        if attempt <= 3 {
            (Ok(429), ms(0), Some(2))
        } else {
            (Ok(500), ms(0), None)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let times: Vec<u64> = r.log().iter().map(|(_, _, t)| *t).collect();
    assert_eq!(times.len(), 5, "{times:?}");
    for (got, want) in times.iter().zip([0u64, 2_000, 4_000, 6_000, 7_000]) {
        assert!(got.abs_diff(want) <= 5, "{times:?}");
    }
    assert_eq!(r.dead().await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_failures_are_retried() {
    let r = rig(&[500], 1, 1, |_, attempt, _| {
        if attempt == 1 {
            (Err(FailureKind::Timeout), ms(5_000), None)
        } else {
            (Ok(200), ms(0), None)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let times: Vec<u64> = r.log().iter().map(|(_, _, t)| *t).collect();
    assert_eq!(times.len(), 2);
    assert!(times[1].abs_diff(5_500) <= 5, "{times:?}");
    assert_eq!(r.view().await.backlog, 0);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_and_resume_drains_in_order() {
    let r = rig(&[1_000], 1, 0, ok_always).await;
    r.journal.set_paused("ep".into(), true).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let meta = EventMeta {
            id: format!("evt_p{i:025}"),
            enqueued_at_ms: 0,
            content_type: "application/json".into(),
            event_type: None,
        };
        let req = EnqueueReq::new("ep".into(), meta, "{}".into(), None).unwrap();
        ids.push(r.journal.enqueue(req).await.unwrap().id);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(r.log().is_empty(), "paused endpoint was sent to");
    let v = r.view().await;
    assert_eq!((v.state, v.backlog), ("paused", 5));
    r.journal.set_paused("ep".into(), false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen: Vec<String> = r.log().into_iter().map(|(i, _, _)| i).collect();
    assert_eq!(seen, ids);
}

#[tokio::test(start_paused = true)]
async fn max_in_flight_allows_concurrency() {
    let r = rig(&[1_000], 4, 8, |_, _, _| (Ok(200), ms(100), None)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let times: Vec<u64> = r.log().iter().map(|(_, _, t)| *t).collect();
    assert_eq!(times.len(), 8);
    // Two waves of four, 100 ms apart.
    assert_eq!(times.iter().filter(|t| **t < 50).count(), 4, "{times:?}");
    assert_eq!(r.view().await.backlog, 0);
}

#[tokio::test(start_paused = true)]
async fn large_backlog_is_read_back_from_disk_in_order() {
    let n = BUFFER * 3 + 17;
    let r = rig(&[1_000], 1, n, ok_always).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let seen: Vec<String> = r.log().into_iter().map(|(i, _, _)| i).collect();
    assert_eq!(seen, r.ids);
    assert_eq!(r.view().await.backlog, 0);
}

#[tokio::test]
async fn unknown_endpoint_is_refused_by_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = RedbJournal::open(
        &dir.path().join("t.redb"),
        crate::store::redb::DEFAULT_CACHE_BYTES,
        crate::store::seal::KeyRing::test_ring(),
        Box::new(|_| {}),
    )
    .unwrap();
    let meta = EventMeta {
        id: "evt_x".into(),
        enqueued_at_ms: 0,
        content_type: "a/b".into(),
        event_type: None,
    };
    let req = EnqueueReq::new("nope".into(), meta, "{}".into(), None).unwrap();
    let e = journal.enqueue(req).await.unwrap_err();
    assert_eq!(e, StoreError::EndpointNotFound("nope".into()));
}

#[tokio::test(start_paused = true)]
async fn thousands_of_waiting_endpoints_are_data_not_tasks() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let (handle, rx) = Scheduler::channel();
    let h2 = handle.clone();
    let journal = Arc::new(
        RedbJournal::open(
            &dir.path().join("t.redb"),
            crate::store::redb::DEFAULT_CACHE_BYTES,
            crate::store::seal::KeyRing::test_ring(),
            Box::new(move |n| h2.notify(n)),
        )
        .unwrap(),
    );
    let mut recs = Vec::new();
    for i in 0..N {
        let config = EndpointConfig {
            url: format!("https://receiver.test/ep{i}"),
            secret: None,
            password: None,
            timeout_ms: 5000,
            retry_schedule_ms: vec![10_000],
            max_in_flight: 1,
            max_backlog: None,
            security: Default::default(),
        };
        let (rec, _) = journal
            .put_endpoint(format!("ep{i}"), config)
            .await
            .unwrap();
        recs.push(rec);
    }
    let log: Log = Arc::default();
    // Every first attempt fails; the retry 10 s later succeeds.
    let transport = Arc::new(Scripted {
        t0: Instant::now(),
        log: log.clone(),
        calls: Mutex::new(0),
        f: Box::new(|_, attempt, _| {
            if attempt == 1 {
                (Ok(503), ms(1), None)
            } else {
                (Ok(200), ms(1), None)
            }
        }),
    });
    let sched = Scheduler::new(
        SchedulerConfig::default(),
        journal.clone(),
        Arc::new(ScriptedFactory(transport)),
        recs,
    );
    tokio::spawn(sched.run(rx));
    let mut reqs = Vec::new();
    for i in 0..N {
        let meta = EventMeta {
            id: format!("evt_{i:026}"),
            enqueued_at_ms: 0,
            content_type: "application/json".into(),
            event_type: None,
        };
        reqs.push(EnqueueReq::new(format!("ep{i}"), meta, "{}".into(), None).unwrap());
    }
    // Wait for the writer by yielding, not parking: a parked runtime with paused time would
    // auto-advance to the next timer (a 10 s retry) while the writer thread works.
    let j = journal.clone();
    let batch = tokio::spawn(async move { j.enqueue_batch(reqs).await });
    while !batch.is_finished() {
        tokio::task::yield_now().await;
    }
    batch.await.unwrap().unwrap();
    // All first attempts fail within a second; then every endpoint waits for its retry.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log.lock().unwrap().len(), N);
    let views = handle.inspect(None).await;
    assert_eq!(views.iter().map(|v| v.backlog).sum::<u64>(), N as u64);
    assert!(views.iter().all(|v| v.in_flight == 0));
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(tasks < 10, "{tasks} tasks alive for {N} waiting endpoints");
    // The retries all go out and succeed.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(log.lock().unwrap().len(), 2 * N);
    let views = handle.inspect(None).await;
    assert_eq!(views.iter().map(|v| v.backlog).sum::<u64>(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_zero_delay_schedule_cannot_make_a_tight_loop() {
    // Regression: a stored schedule starting with 0s (accepted before entries had a floor) made
    // the probes of a down endpoint wait 0 × 2^k = 0: ~20,000 attempts a second, all journaled.
    let r = rig(&[0, 2_000], 1, 2, |_, _, _| {
        (Err(FailureKind::ConnectionRefused), ms(1), None)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let times: Vec<u64> = r.log().iter().map(|(_, _, t)| *t).collect();
    // Event 0: t=0, then the floor (100 ms) instead of 0, then 2 s: dead, endpoint down. Then
    // probes 1 s, 2 s, 2 s … apart: about eight attempts in ten seconds.
    assert!(
        times.len() <= 10,
        "{} attempts in 10 s: {times:?}",
        times.len()
    );
    assert!(times.len() >= 5, "{times:?}");
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= crate::core::retry::MIN_RETRY_DELAY.as_millis() as u64,
            "{times:?}"
        );
    }
    for w in times[3..].windows(2) {
        assert!(
            w[1] - w[0] >= crate::core::retry::MIN_BACKOFF_DELAY.as_millis() as u64,
            "probes closer than the floor: {times:?}"
        );
    }
    assert_eq!(r.view().await.state, "down");
}
