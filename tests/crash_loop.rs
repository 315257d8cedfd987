//! Crash loop: the real binary under concurrent load is killed with SIGKILL at random moments
//! and restarted, repeatedly. Afterwards every acknowledged event must have been delivered, the
//! first deliveries of each endpoint must be in sequence order, and every duplicate delivery must
//! straddle a crash: its first copy reached the receiver before a restart and the second after
//! it (an event delivered before a kill whose delivery was not yet durable). The first copy may
//! be read by the receiver just after the kill, from the socket buffer, hence "before a restart".
//!
//! The retained log is in the loop too: retention runs (`--retention 3s`, so its passes land
//! between kills) and every round back-fills an endpoint's last second while the kill may cut
//! it. A back-filled copy (`X-HAPP-Replay: 1`) is no duplicate to explain, but it must be of an
//! event that reached the receiver before; after the loop a last back-fill must send exactly
//! its window, in order, and retention must have removed what it kept past its time.
//!
//! `COURIER_CRASH_KILLS` sets the number of kills (default 5); `scripts/crash-loop.sh` runs 50.

use testkit::{daemon, receiver};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::json;
use tokio::sync::Mutex;

const ENDPOINTS: usize = 3;
const PRODUCERS: usize = 6;

/// xorshift64*, seeded from the clock (the seed is printed so a failure can be replayed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[derive(Debug, Clone)]
struct Ack {
    endpoint: String,
    seq: u64,
}

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_and_keeps_order() {
    let kills: usize = std::env::var("COURIER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed = std::env::var("COURIER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash loop: {kills} kills, COURIER_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    // A slightly slow receiver keeps a backlog, so kills land mid-delivery too.
    let r = Receiver::start(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Sleep { ms: 2, then: 200 })),
    )
    .await
    .unwrap();
    let mut d = Daemon::start(&["--allow-http", "--retention", "3s"]).await;
    for e in 0..ENDPOINTS {
        d.put_endpoint(&format!("e{e}"), json!({"url": r.url(&format!("/e{e}"))}))
            .await;
    }
    let socket = d.socket.clone();
    let acks: Arc<Mutex<HashMap<String, Ack>>> = Arc::default();
    let mut restart_times: Vec<Instant> = Vec::new();
    let mut counter = 0u64;

    for round in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let (stop, acks, socket) = (stop.clone(), acks.clone(), socket.clone());
            let base = counter + (p as u64) * 1_000_000;
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let ep = format!("e{}", (base + i) % ENDPOINTS as u64);
                    let body = format!("{{\"round\":{round},\"p\":{p},\"i\":{i}}}");
                    i += 1;
                    // Requests cut off by the kill simply have no ack.
                    if let Ok(a) = daemon::request(
                        &socket,
                        "POST",
                        &format!("/v1/endpoints/{ep}/events"),
                        Some(body.into()),
                        &[],
                    )
                    .await
                        && a.status == 202
                    {
                        let id = a.json["id"].as_str().unwrap().to_string();
                        let seq = a.json["seq"].as_u64().unwrap();
                        acks.lock().await.insert(id, Ack { endpoint: ep, seq });
                    }
                }
            }));
        }
        counter += 10_000_000;
        let wait = 150 + rng.next() % 500;
        // A back-fill of one endpoint's last second, at a random moment of the round (the
        // kill may cut it: what it committed goes out, the rest was never answered).
        let backfill = {
            let socket = socket.clone();
            let ep = format!("e{}", rng.next() % ENDPOINTS as u64);
            let at = rng.next() % wait;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(at)).await;
                let since = courier::core::timefmt::rfc3339(
                    courier::core::timefmt::now_ms().saturating_sub(1000),
                );
                let body = json!({ "since": since }).to_string();
                let _ = daemon::request(
                    &socket,
                    "POST",
                    &format!("/v1/endpoints/{ep}/replay"),
                    Some(body.into()),
                    &[],
                )
                .await;
            })
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        d.kill9();
        // Stop the producers first: against a dead socket they fail without yielding.
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let _ = backfill.await;
        restart_times.push(Instant::now());
        d.spawn().await;
    }

    let acks = acks.lock().await.clone();
    eprintln!("acknowledged {} events over {kills} kills", acks.len());
    assert!(acks.len() > 100, "too little load to mean anything");
    // Wait as long as deliveries keep coming (a long release-mode run acknowledges far more
    // than the receiver drains in a fixed time); a loss shows as a stall with ids missing.
    let mut last_len = 0;
    let mut last_progress = Instant::now();
    let all_seen = loop {
        let ds = r.deliveries();
        let seen: HashSet<&str> = ds.iter().filter_map(|x| x.event_id.as_deref()).collect();
        if acks.keys().all(|id| seen.contains(id.as_str())) {
            break true;
        }
        if ds.len() > last_len {
            last_len = ds.len();
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(15) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deliveries = r.deliveries();
    let seen: HashSet<&str> = deliveries
        .iter()
        .filter_map(|x| x.event_id.as_deref())
        .collect();
    let lost: Vec<&String> = acks
        .keys()
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    assert!(
        all_seen && lost.is_empty(),
        "lost {} acknowledged events: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // A back-filled copy is of an event the receiver had before.
    let is_replay = |x: &receiver::Delivery| x.headers.get("x-happ-replay").is_some();
    let mut had: HashSet<&str> = HashSet::new();
    let mut backfilled = 0;
    for x in &deliveries {
        let Some(id) = x.event_id.as_deref() else {
            continue;
        };
        if is_replay(x) {
            backfilled += 1;
            assert!(
                had.contains(id),
                "back-filled {id} before it was ever delivered (seed {seed})"
            );
        } else {
            had.insert(id);
        }
    }
    let deliveries: Vec<_> = deliveries.into_iter().filter(|x| !is_replay(x)).collect();

    // First deliveries per endpoint, in arrival order, must follow the sequence numbers.
    let mut first: HashMap<String, Instant> = HashMap::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for x in &deliveries {
        let Some(id) = x.event_id.clone() else {
            continue;
        };
        if first.contains_key(&id) {
            continue;
        }
        first.insert(id.clone(), x.at);
        if let Some(ack) = acks.get(&id) {
            let prev = last_seq.insert(ack.endpoint.clone(), ack.seq);
            assert!(
                prev.is_none_or(|p| p < ack.seq),
                "endpoint {} delivered seq {} after seq {:?} (seed {seed})",
                ack.endpoint,
                ack.seq,
                prev
            );
        }
    }
    // Every duplicate straddles a kill.
    let mut dups = 0;
    for x in &deliveries {
        let Some(id) = &x.event_id else { continue };
        let f = first[id];
        if x.at > f {
            dups += 1;
            assert!(
                restart_times.iter().any(|k| f <= *k && *k <= x.at),
                "event {id} delivered twice without a restart in between (seed {seed}): \
                 first at {:?}, again at {:?}, restarts at {:?} (relative to the first)",
                Duration::ZERO,
                x.at - f,
                restart_times
                    .iter()
                    .map(|k| k
                        .checked_duration_since(f)
                        .map(|d| format!("+{d:?}"))
                        .unwrap_or_else(|| format!("-{:?}", f - *k)))
                    .collect::<Vec<_>>()
            );
        }
    }
    eprintln!(
        "deliveries {}, unique {}, duplicates {dups} (all across a crash), back-filled copies {backfilled}",
        deliveries.len(),
        first.len()
    );

    // After the loop: a back-fill sends exactly its window, in order; and retention removed
    // the events delivered before its time.
    let since = courier::core::timefmt::now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut window = Vec::new();
    for i in 0..5 {
        let a = d
            .req(
                "POST",
                "/v1/endpoints/e0/events",
                Some(&format!("{{\"last\":{i}}}")),
            )
            .await;
        assert_eq!(a.status, 202, "{a:?}");
        window.push(a.json["id"].as_str().unwrap().to_string());
    }
    let wait_for = |n: usize| {
        let r = &r;
        let window = window.clone();
        async move {
            for _ in 0..300 {
                let got: Vec<String> = r
                    .deliveries()
                    .iter()
                    .filter(|x| {
                        x.event_id
                            .as_deref()
                            .is_some_and(|id| window.iter().any(|w| w == id))
                    })
                    .filter_map(|x| x.event_id.clone())
                    .collect();
                if got.len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the last events were not delivered {n} times (seed {seed})");
        }
    };
    wait_for(5).await;
    // The receiver has them; wait until Courier has their answers too (the backlog is empty).
    for _ in 0..300 {
        let v = d.req("GET", "/v1/endpoints/e0", None).await;
        if v.json["backlog"] == json!(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = json!({ "since": courier::core::timefmt::rfc3339(since) }).to_string();
    let a = d.req("POST", "/v1/endpoints/e0/replay", Some(&body)).await;
    assert_eq!((a.status, &a.json["replayed"]), (202, &json!(5)), "{a:?}");
    wait_for(10).await;
    let copies: Vec<String> = r
        .deliveries()
        .iter()
        .filter(|x| is_replay(x))
        .filter_map(|x| x.event_id.clone())
        .filter(|id| window.contains(id))
        .collect();
    assert_eq!(copies, window, "exactly the window, in order (seed {seed})");
    // Retention (3 s) has run on this daemon since its last start.
    let mut removed = 0.0;
    for _ in 0..100 {
        let m = d.req("GET", "/metrics", None).await;
        removed = String::from_utf8_lossy(&m.raw)
            .lines()
            .find(|l| l.starts_with("courier_retention_removed_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if removed > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        removed > 0.0,
        "retention removed nothing in 10 s (seed {seed})"
    );
    let _ = d.terminate();
}
