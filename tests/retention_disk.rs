//! Black-box: under steady traffic with a short retention the journal stops growing. The real
//! daemon runs with `--retention 1s` and segments of 64 KiB; rounds of ~600 KiB of events are
//! delivered to a real receiver, and after each round (and the retention that follows it) the
//! journal's bytes on disk — the redb file and the segment files — are measured: from round 2
//! on they stay within a bound of round 2's, emptied segments are removed, and a last round,
//! back-filled, has what retention kept of it sent again, in order, read back intact.

use std::time::Duration;

use serde_json::json;
use testkit::daemon::Daemon;
use testkit::receiver::{Receiver, ReceiverConfig};

const ROUNDS: usize = 6;
const PER_ROUND: usize = 300;

fn segment_ids(d: &Daemon) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(d.data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn journal_bytes(d: &Daemon) -> u64 {
    let db = std::fs::metadata(d.data.join("courier.redb"))
        .unwrap()
        .len();
    let segs: u64 = std::fs::read_dir(d.data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    db + segs
}

#[tokio::test]
async fn the_journal_stops_growing_under_steady_traffic_with_retention() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let d = Daemon::start(&[
        "--allow-http",
        "--retention",
        "1s",
        "--segment-size",
        "64KiB",
    ])
    .await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    let filler = "x".repeat(2000);
    let mut sizes = Vec::new();
    let mut first_segments = Vec::new();
    for round in 0..ROUNDS {
        let lines: String = (0..PER_ROUND)
            .map(|n| {
                json!({"endpoint": "acme", "body": {"round": round, "n": n, "fill": filler}})
                    .to_string()
                    + "\n"
            })
            .collect();
        let a = d.req("POST", "/v1/events/batch", Some(&lines)).await;
        assert_eq!(a.status, 202, "{a:?}");
        let want = (round + 1) * PER_ROUND;
        assert!(
            r.wait_for(|ds| ds.len() >= want, Duration::from_secs(60))
                .await,
            "round {round}: only {} of {want} delivered",
            r.successful().len()
        );
        if round == 0 {
            first_segments = segment_ids(&d);
        }
        // Retention (1 s, swept every 100 ms) removes the round's events, then their segments.
        tokio::time::sleep(Duration::from_millis(1_800)).await;
        sizes.push(journal_bytes(&d));
    }
    eprintln!("journal bytes after each round: {sizes:?}");
    let payload = (PER_ROUND * filler.len()) as u64;
    for (n, s) in sizes.iter().enumerate().skip(2) {
        assert!(
            *s <= sizes[1] + payload,
            "round {}: {s} bytes, round 2 had {} (rounds: {sizes:?})",
            n + 1,
            sizes[1]
        );
    }
    let now = segment_ids(&d);
    assert!(
        first_segments.iter().all(|s| !now.contains(s)),
        "the first round's segments {first_segments:?} were removed ({now:?} now)"
    );
    // The log still reads after all that removal: a last round, back-filled at once.
    let since = courier::core::timefmt::rfc3339(courier::core::timefmt::now_ms());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let lines: String = (0..PER_ROUND)
        .map(|n| {
            json!({"endpoint": "acme", "body": {"last": n, "fill": filler}}).to_string() + "\n"
        })
        .collect();
    assert_eq!(
        d.req("POST", "/v1/events/batch", Some(&lines)).await.status,
        202
    );
    let sent = (ROUNDS + 1) * PER_ROUND;
    assert!(
        r.wait_for(|ds| ds.len() >= sent, Duration::from_secs(60))
            .await
    );
    let a = d
        .req(
            "POST",
            "/v1/endpoints/acme/replay",
            Some(&json!({"since": since}).to_string()),
        )
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    // Retention (1 s) may already have removed the round's oldest events: what it kept is
    // sent again, and that is the round's newest.
    let k = a.json["replayed"].as_u64().unwrap() as usize;
    assert!((1..=PER_ROUND).contains(&k), "{a:?}");
    assert!(
        r.wait_for(|ds| ds.len() >= sent + k, Duration::from_secs(60))
            .await,
        "the back-fill was sent"
    );
    let copies = r.successful();
    let copies = &copies[sent..];
    assert_eq!(copies.len(), k);
    for (i, c) in copies.iter().enumerate() {
        assert!(c.headers.get("x-happ-replay").is_some());
        let body: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(
            body["last"],
            PER_ROUND - k + i,
            "in order, from the round's end"
        );
        assert_eq!(body["fill"], filler.as_str(), "the body read back intact");
    }
    let m = d.req("GET", "/metrics", None).await;
    let text = String::from_utf8_lossy(&m.raw).to_string();
    let removed: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("courier_retention_removed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        removed >= ((ROUNDS - 1) * PER_ROUND) as f64,
        "retention removed {removed} events"
    );
}
