//! Black-box durability tests: a graceful restart and a kill -9 right after a burst of 202s
//! lose nothing. Redelivery is allowed; loss is not.

use testkit::{daemon, receiver};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::json;

#[tokio::test]
async fn restart_between_enqueue_and_delivery_loses_nothing() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(d.send("acme", &format!("{{\"n\":{i}}}")).await.0);
    }
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    d.spawn().await;
    let v = d.endpoint("acme").await;
    assert_eq!(v["backlog"], 100, "{v}");
    assert_eq!(v["state"], "paused", "pause survives a restart");
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    assert!(
        r.wait_for(|ds| ds.len() >= 100, Duration::from_secs(30))
            .await
    );
    let got: Vec<String> = r
        .deliveries()
        .iter()
        .filter_map(|x| x.event_id.clone())
        .collect();
    assert_eq!(got, ids);
    // Sequence numbers continue after the restart.
    let (_, seq) = d.send("acme", "{}").await;
    assert_eq!(seq, 101);
}

#[tokio::test]
async fn kill_9_right_after_a_burst_of_202s_loses_nothing() {
    // A slow receiver keeps most of the burst undelivered when the daemon dies.
    let r = Receiver::start(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Sleep { ms: 20, then: 200 })),
    )
    .await
    .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/hook")})).await;
    let d = Arc::new(tokio::sync::Mutex::new(d));
    // 8 concurrent producers, 40 events each.
    let mut tasks = Vec::new();
    for p in 0..8 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let socket = d.lock().await.socket.clone();
            let mut acked = Vec::new();
            for i in 0..40 {
                let a = daemon::request(
                    &socket,
                    "POST",
                    "/v1/endpoints/acme/events",
                    Some(format!("{{\"p\":{p},\"i\":{i}}}").into()),
                    &[],
                )
                .await
                .unwrap();
                assert_eq!(a.status, 202);
                acked.push(a.json["id"].as_str().unwrap().to_string());
            }
            acked
        }));
    }
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let mut d = Arc::try_unwrap(d).ok().unwrap().into_inner();
    d.kill9();
    let before = r.deliveries().len();
    assert!(
        before < acked.len(),
        "the receiver was too fast for this test to mean anything"
    );
    d.spawn().await;
    assert!(
        r.wait_for(
            |ds| {
                let seen: HashSet<&str> = ds.iter().filter_map(|x| x.event_id.as_deref()).collect();
                acked.iter().all(|id| seen.contains(id.as_str()))
            },
            Duration::from_secs(60)
        )
        .await,
        "acknowledged events were lost"
    );
    // First deliveries of each producer's events keep the producer's order.
    let mut first_seen = Vec::new();
    let mut seen = HashSet::new();
    for x in r.deliveries() {
        if let Some(id) = x.event_id.clone()
            && seen.insert(id)
        {
            first_seen.push(serde_json::from_slice::<serde_json::Value>(&x.body).unwrap());
        }
    }
    for p in 0..8 {
        let is: Vec<u64> = first_seen
            .iter()
            .filter(|v| v["p"] == p)
            .map(|v| v["i"].as_u64().unwrap())
            .collect();
        assert_eq!(is, (0..40).collect::<Vec<_>>(), "producer {p} out of order");
    }
}
