//! Retry now, executed by the scheduler under paused time: a waiting retry and a down
//! endpoint's probe go out at once, with the attempt numbers they would have had; the view
//! names what is due next and when.

use super::*;

#[tokio::test(start_paused = true)]
async fn retry_now_skips_the_wait_then_probes_the_down_endpoint() {
    // Two 503s, then 200s: one minute before the retry, a minute before the probe.
    let r = rig(&[60_000], 1, 2, |_, _, n| {
        if n <= 2 {
            (Ok(503), ms(5), None)
        } else {
            (Ok(200), ms(5), None)
        }
    })
    .await;
    tokio::time::sleep(ms(100)).await;
    assert_eq!(r.log().len(), 1);
    let v = r.view().await;
    let due = v.next_attempt_ms.expect("a retry is due");
    let wait = due.saturating_sub(now_ms());
    assert!((59_000..=60_000).contains(&wait), "retry due in {wait} ms");
    let answer = r.handle.retry_now("ep".into()).await;
    assert_eq!(answer, Some(RetryNow::Retry { events: 1 }));
    tokio::time::sleep(ms(100)).await;
    let log = r.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[1].0.as_str(), log[1].1), (r.ids[0].as_str(), 2));
    assert!(
        log[1].2 < 1_000,
        "sent at once, not after a minute: {log:?}"
    );
    // The schedule is used up: dead letter, down, the probe a minute away.
    let v = r.view().await;
    assert_eq!((v.state, v.backlog), ("down", 1));
    assert!(v.next_attempt_ms.is_some());
    // (No journal read here: waiting on its thread would let paused time run to the probe.)
    assert_eq!(r.handle.retry_now("ep".into()).await, Some(RetryNow::Probe));
    tokio::time::sleep(ms(100)).await;
    let log = r.log();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!((log[2].0.as_str(), log[2].1), (r.ids[1].as_str(), 1));
    let v = r.view().await;
    assert_eq!((v.state, v.backlog, v.next_attempt_ms), ("active", 0, None));
    assert_eq!(
        r.handle.retry_now("ep".into()).await,
        Some(RetryNow::Nothing(
            crate::core::partition::NothingWaiting::Empty
        ))
    );
    assert_eq!(r.handle.retry_now("nope".into()).await, None);
    assert_eq!(r.dead().await.len(), 1);
}
