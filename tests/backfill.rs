//! Black-box tests of back-fill from the retained log: the real binary, a real receiver on
//! 127.0.0.1. `POST /v1/endpoints/{id}/replay` sends exactly the window again, in order, with
//! the original ids and `X-HAPP-Replay: 1`, ahead of newer events not yet started; events of
//! the window still pending are left in line; a window retention removed answers 422
//! `RETENTION_EXCEEDED` naming how far back the endpoint can go; the window's refusals have
//! their codes; `courier replay` over the socket and `--url`.

use std::time::Duration;

use courier::core::timefmt::{now_ms, rfc3339};
use serde_json::{Value, json};
use testkit::daemon::{Daemon, free_port};
use testkit::receiver::{Delivery, Receiver, ReceiverConfig};

const WAIT: Duration = Duration::from_secs(30);

async fn receiver() -> Receiver {
    Receiver::start(ReceiverConfig::plain())
        .await
        .expect("receiver")
}

async fn daemon(extra: &[&str]) -> Daemon {
    let mut flags = vec!["--allow-http"];
    flags.extend_from_slice(extra);
    Daemon::start(&flags).await
}

/// Sends `n` events tagged `tag` to `ep`, one by one; answers their ids in order.
async fn send_n(d: &Daemon, ep: &str, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(d.send(ep, &json!({"tag": tag, "n": i}).to_string()).await.0);
    }
    ids
}

/// Waits until the receiver has `n` successful deliveries; answers them in arrival order.
async fn delivered(r: &Receiver, n: usize) -> Vec<Delivery> {
    assert!(
        r.wait_for(|d| d.iter().filter(|x| x.is_success()).count() >= n, WAIT)
            .await,
        "only {} of {n} delivered",
        r.successful().len()
    );
    r.successful()
}

fn replay_header(d: &Delivery) -> Option<&str> {
    d.headers.get("x-happ-replay").and_then(|v| v.to_str().ok())
}

fn ids(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| d.event_id.clone().unwrap_or_default())
        .collect()
}

/// The time now, as the window's edge, with a margin on both sides of it so no event sent
/// before or after falls on the same millisecond.
async fn edge() -> String {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = rfc3339(now_ms());
    tokio::time::sleep(Duration::from_millis(30)).await;
    t
}

async fn backfill(d: &Daemon, ep: &str, body: Value) -> testkit::daemon::Answer {
    d.req(
        "POST",
        &format!("/v1/endpoints/{ep}/replay"),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_back_fill_sends_exactly_the_window_in_order_with_the_replay_header_before_newer_events()
{
    let r = receiver().await;
    let d = daemon(&[]).await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    let before = send_n(&d, "acme", "before", 3).await;
    let since = edge().await;
    let window = send_n(&d, "acme", "window", 5).await;
    let until = edge().await;
    let after = send_n(&d, "acme", "after", 2).await;
    let first = delivered(&r, 10).await;
    assert!(
        first.iter().all(|x| replay_header(x).is_none()),
        "no first delivery carries the replay header"
    );
    assert_eq!(ids(&first), [&before[..], &window[..], &after[..]].concat());

    // Newer events wait behind a pause; the back-fill goes ahead of them.
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let newer = send_n(&d, "acme", "newer", 3).await;
    let a = backfill(&d, "acme", json!({"since": since, "until": until})).await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json["replayed"], 5, "{a:?}");
    assert_eq!(a.json["pending"], 0, "{a:?}");
    assert_eq!(a.json["cut"], false, "{a:?}");
    assert!(a.json["retained_since"].is_string(), "{a:?}");
    d.req("POST", "/v1/endpoints/acme/resume", None).await;

    let all = delivered(&r, 18).await;
    let again = &all[10..];
    assert_eq!(ids(&again[..5]), window, "the window, in its order, first");
    assert!(
        again[..5].iter().all(|x| replay_header(x) == Some("1")),
        "every back-filled attempt carries X-HAPP-Replay: 1"
    );
    assert!(
        again[..5]
            .iter()
            .zip(&first[3..8])
            .all(|(b, a)| b.body == a.body),
        "the same bodies"
    );
    assert_eq!(ids(&again[5..]), newer, "then the newer events");
    assert!(again[5..].iter().all(|x| replay_header(x).is_none()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.successful().len(), 18, "nothing outside the window again");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_the_window_still_pending_are_left_in_line_and_sent_once() {
    let r = receiver().await;
    let d = daemon(&[]).await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;
    let since = edge().await;
    let held = send_n(&d, "acme", "held", 3).await;
    let a = backfill(&d, "acme", json!({"since": since})).await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(
        (&a.json["replayed"], &a.json["pending"]),
        (&json!(0), &json!(3))
    );
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    let got = delivered(&r, 3).await;
    assert_eq!(ids(&got), held);
    assert!(got.iter().all(|x| replay_header(x).is_none()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.successful().len(), 3, "each once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_retention_removed_answers_422_naming_the_oldest_retained_time() {
    let r = receiver().await;
    let d = daemon(&["--retention", "2s"]).await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    let since = edge().await;
    send_n(&d, "acme", "old", 2).await;
    delivered(&r, 2).await;
    let until = edge().await;
    // Retention (2s, swept every 200ms) removes them.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let metrics = d.req("GET", "/metrics", None).await;
    let text = String::from_utf8_lossy(&metrics.raw).to_string();
    let removed: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("courier_retention_removed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no retention counter in {text}"));
    assert!(
        removed >= 2.0,
        "retention counted what it removed: {removed}"
    );
    let sent_at = now_ms();
    let kept = send_n(&d, "acme", "kept", 1).await;
    delivered(&r, 3).await;

    let a = backfill(&d, "acme", json!({"since": since, "until": until})).await;
    assert_eq!(a.status, 422, "{a:?}");
    assert_eq!(a.json["error"]["code"], "RETENTION_EXCEEDED", "{a:?}");
    let msg = a.json["error"]["message"].as_str().unwrap();
    let named = msg
        .split("retains events accepted since ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no time in {msg:?}"));
    let named_ms = courier::core::dead_filter::parse_rfc3339(named).unwrap();
    assert!(
        (sent_at..=now_ms()).contains(&named_ms),
        "{named} is when the oldest retained event was accepted"
    );
    assert!(
        a.json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--retention")
    );

    // A window reaching into what is retained sends that part, and says it was cut.
    let a = backfill(&d, "acme", json!({"since": since})).await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json["replayed"], 1, "{a:?}");
    assert_eq!(a.json["cut"], true, "{a:?}");
    let got = delivered(&r, 4).await;
    assert_eq!(got[3].event_id.as_deref(), Some(kept[0].as_str()));
    assert_eq!(replay_header(&got[3]), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_window_is_refused_with_its_code() {
    let d = daemon(&[]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    let now = now_ms();
    let cases = [
        (json!({}), 400, "SINCE_REQUIRED"),
        (json!({"until": rfc3339(now)}), 400, "SINCE_REQUIRED"),
        (json!({"since": "yesterday"}), 400, "INVALID_TIME"),
        (
            json!({"since": rfc3339(now - 1000), "until": rfc3339(now - 2000)}),
            400,
            "INVALID_TIME",
        ),
        (
            json!({"since": rfc3339(now - 1000), "until": rfc3339(now - 1000)}),
            400,
            "INVALID_TIME",
        ),
        (
            json!({"since": rfc3339(now + 3_600_000)}),
            400,
            "INVALID_TIME",
        ),
        (
            json!({"since": rfc3339(now), "bogus": 1}),
            400,
            "INVALID_JSON",
        ),
        (
            json!({"since": rfc3339(now), "limit": 0}),
            400,
            "INVALID_LIMIT",
        ),
        (
            json!({"since": rfc3339(now), "cursor": "x"}),
            400,
            "INVALID_CURSOR",
        ),
    ];
    for (body, status, code) in cases {
        let a = backfill(&d, "acme", body.clone()).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {a:?}"
        );
        assert!(a.json["error"]["hint"].is_string(), "{a:?}");
    }
    // An until in the future is now.
    let a = backfill(
        &d,
        "acme",
        json!({"since": rfc3339(now - 1000), "until": rfc3339(now + 3_600_000)}),
    )
    .await;
    assert_eq!(a.status, 202, "{a:?}");
    let a = backfill(&d, "nope", json!({"since": rfc3339(now - 1000)})).await;
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.json["error"]["code"], "ENDPOINT_NOT_FOUND");
    let a = d.req("GET", "/v1/endpoints/acme/replay", None).await;
    assert_eq!(a.status, 405, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_pages_a_back_fill_with_limit_and_cursor() {
    let r = receiver().await;
    let d = daemon(&[]).await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    let since = edge().await;
    let window = send_n(&d, "acme", "w", 5).await;
    delivered(&r, 5).await;
    let mut body = json!({"since": since, "limit": 2});
    let mut replayed = 0;
    let mut calls = 0;
    loop {
        let a = backfill(&d, "acme", body.clone()).await;
        assert_eq!(a.status, 202, "{a:?}");
        calls += 1;
        replayed += a.json["replayed"].as_u64().unwrap();
        assert!(a.json["replayed"].as_u64().unwrap() <= 2, "{a:?}");
        match a.json["next_cursor"].as_str() {
            Some(c) => {
                assert!(a.json["left_at_most"].as_u64().is_some(), "{a:?}");
                body["cursor"] = json!(c);
            }
            None => break,
        }
        assert!(calls < 10, "the cursor moves on");
    }
    assert_eq!(replayed, 5);
    assert!(calls >= 3, "{calls} calls of at most 2");
    let all = delivered(&r, 10).await;
    assert_eq!(ids(&all[5..]), window, "in order across the pages");
}

#[tokio::test(flavor = "multi_thread")]
async fn courier_replay_back_fills_and_says_what_it_did() {
    let r = receiver().await;
    let token = "tok-backfill-0123456789";
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start_env(
        &["--allow-http", "--listen", &addr],
        &[("COURIER_ADMIN_TOKEN", token)],
    )
    .await;
    d.put_endpoint("acme", json!({"url": r.url("/acme")})).await;
    let window = send_n(&d, "acme", "w", 3).await;
    delivered(&r, 3).await;

    let (code, out, err) = d.cli(&["replay", "acme", "--since", "1h"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "Back-filled 3 events of acme (0 still pending were left in line)\n"
    );
    let all = delivered(&r, 6).await;
    assert_eq!(ids(&all[3..]), window);

    // Over TCP with --url and a token, as JSON.
    let url = format!("http://{addr}");
    let (code, out, err) = d.cli_env(
        &[
            "replay",
            "acme",
            "--since",
            &rfc3339(now_ms() - 3_600_000),
            "--json",
        ],
        &[("COURIER_URL", &url), ("COURIER_ADMIN_TOKEN", token)],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replayed"], 3, "{v}");
    assert_eq!(v["pending"], 0, "{v}");
    delivered(&r, 9).await;

    // Refusals: exit 1 with the code and its hint.
    let (code, out, err) = d.cli(&["replay", "nope", "--since", "1h"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with("error: ENDPOINT_NOT_FOUND: ") && err.contains("\nhint: "),
        "{err}"
    );
    let (code, _, err) = d.cli(&["replay", "acme", "--since", "yesterday"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: INVALID_TIME: "), "{err}");
    let (code, _, err) = d.cli(&["replay", "acme"]);
    assert_eq!(code, 2, "--since is required: {err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.successful().len(), 9, "a refused back-fill sends nothing");
}
