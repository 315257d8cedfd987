//! A frozen daemon (SIGSTOP … SIGCONT) does not turn an attempt the receiver already answered
//! into a timeout and a duplicate: the time the process was not running is not the attempt's.

use testkit::{daemon, receiver};

use std::process::Command;
use std::time::{Duration, Instant};

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::{Value, json};

const FREEZE: Duration = Duration::from_secs(5);

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill {sig} {pid}: {st}");
}

/// Continues the daemon even when an assertion fails while it is stopped.
struct Continue(u32);
impl Drop for Continue {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

async fn attempts(d: &Daemon, id: &str) -> Vec<Value> {
    let a = d
        .req(
            "GET",
            &format!("/v1/endpoints/{id}/attempts?limit=10"),
            None,
        )
        .await;
    a.json["attempts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn answer_received_while_frozen_is_one_delivery_not_a_timeout() {
    // The receiver answers 200 one second after it has the request — well within the 2 s
    // timeout of the attempt, but while the daemon is stopped.
    let r = Receiver::start(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Sleep {
            ms: 1_000,
            then: 200,
        })),
    )
    .await
    .expect("receiver");
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint(
        "frozen",
        json!({"url": r.url("/hook"), "timeout": "2s", "retry_schedule": ["300ms", "300ms"]}),
    )
    .await;
    let pid = d.child.as_ref().expect("daemon running").id();
    let (id, _) = d.send("frozen", "{}").await;

    assert!(
        r.wait_for(|ds| !ds.is_empty(), Duration::from_secs(20))
            .await,
        "the attempt never reached the receiver"
    );
    let guard = Continue(pid);
    signal(pid, "-STOP");
    let stopped = Instant::now();
    tokio::time::sleep(FREEZE).await;
    signal(pid, "-CONT");
    let frozen_for = stopped.elapsed();
    drop(guard);
    // The receiver answered while the daemon was stopped (its own clock keeps running).
    assert!(
        r.deliveries()[0].answered == Some(200),
        "the receiver had not answered during the freeze: {:?}",
        r.deliveries()[0]
    );

    // The attempt's result: one 200, no ETIMEDOUT.
    let deadline = Instant::now() + Duration::from_secs(20);
    let list = loop {
        let list = attempts(&d, "frozen").await;
        if !list.is_empty() {
            break list;
        }
        assert!(Instant::now() < deadline, "no attempt was recorded");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(list.len(), 1, "attempts: {list:?}");
    let a = &list[0];
    assert!(a["error"].is_null(), "the answered attempt failed: {a}");
    assert_eq!(a["status"], 200, "{a}");
    assert_eq!(a["event_id"], id.as_str());
    // The recorded latency is the real time the attempt took, freeze included.
    let ms = a["latency_ms"].as_u64().unwrap_or(0);
    assert!(
        ms + 500 >= frozen_for.as_millis() as u64,
        "latency {ms} ms, frozen for {frozen_for:?}"
    );
    d.wait_for_endpoint("frozen", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;

    // Longer than both retry delays plus an attempt: nothing is sent again.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let ds = r.deliveries();
    assert_eq!(ds.len(), 1, "the receiver saw the event again: {ds:?}");
    assert_eq!(ds[0].event_id.as_deref(), Some(id.as_str()));
    assert_eq!(attempts(&d, "frozen").await.len(), 1);
    assert!(d.dead_letters().await.is_empty());
}
