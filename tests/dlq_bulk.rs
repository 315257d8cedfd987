//! Black-box tests of dead letters in bulk: the real binary, a real receiver on 127.0.0.1 that
//! answers 400 on `/fail` (with an empty retry schedule each event dies at its first attempt)
//! and 200 elsewhere, and forced deletes for `ENDPOINT_DELETED`. Paging, filters, replay and
//! purge by filter, the NDJSON export, the CLI's confirmation, and the codes of bad values.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::daemon::Daemon;
use testkit::receiver::{Behavior, Plan, Receiver, ReceiverConfig};

async fn receiver() -> Receiver {
    let plan = Plan::always(Behavior::Status(200)).with_path("/fail", Behavior::Status(400));
    Receiver::start(ReceiverConfig::plain().with_plan(plan))
        .await
        .expect("receiver")
}

/// Creates `ep` pointing at `/fail` with no retries.
async fn failing(d: &Daemon, r: &Receiver, ep: &str) {
    d.put_endpoint(ep, json!({"url": r.url("/fail"), "retry_schedule": []}))
        .await;
}

/// Sends `n` events to `ep` in one batch; answers their ids in order.
async fn send_batch(d: &Daemon, ep: &str, n: usize, tag: &str) -> Vec<String> {
    let lines: Vec<String> = (0..n)
        .map(|i| json!({"endpoint": ep, "body": {"tag": tag, "n": i}}).to_string())
        .collect();
    let a = d
        .req("POST", "/v1/events/batch", Some(&lines.join("\n")))
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    a.json["events"]
        .as_array()
        .or_else(|| a.json["accepted"].as_array())
        .expect("batch answer")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn count(d: &Daemon, query: &str) -> u64 {
    let a = d
        .req("GET", &format!("/v1/dead-letters/count?{query}"), None)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json["count"].as_u64().unwrap()
}

/// Waits until `query` selects `n` dead letters.
async fn wait_count(d: &Daemon, query: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = count(d, query).await;
        if c >= n {
            assert_eq!(c, n, "{query}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{query}: {c} of {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every page of `query`, `limit` a page; `between` runs after each page but the last.
async fn walk(
    d: &Daemon,
    query: &str,
    limit: u32,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let mut path = format!("/v1/dead-letters?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let a = d.req("GET", &path, None).await;
        assert_eq!(a.status, 200, "{a:?}");
        let items = a.json["dead_letters"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match a.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert!(a.json["next_cursor"].is_null());
                break;
            }
        }
        between(page).await;
    }
    out
}

fn ids(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

/// Four failing endpoints with 60-90 dead letters each (MAX_RETRIES_EXCEEDED), and `gone`,
/// force-deleted with a held backlog of 40 (ENDPOINT_DELETED): 340 in all.
async fn populated(d: &Daemon, r: &Receiver) {
    for (i, ep) in ["e0", "e1", "e2", "e3"].iter().enumerate() {
        failing(d, r, ep).await;
        send_batch(d, ep, 60 + 10 * i, "first").await;
    }
    d.put_endpoint("gone", json!({"url": r.url("/ok")})).await;
    let a = d.req("POST", "/v1/endpoints/gone/pause", None).await;
    assert_eq!(a.status, 200, "{a:?}");
    send_batch(d, "gone", 40, "held").await;
    for (i, ep) in ["e0", "e1", "e2", "e3"].iter().enumerate() {
        wait_count(d, &format!("endpoint={ep}"), 60 + 10 * i as u64).await;
    }
    let a = d.req("DELETE", "/v1/endpoints/gone?force=true", None).await;
    assert!(a.status == 200 || a.status == 204, "{a:?}");
    wait_count(d, "endpoint=gone", 40).await;
}

#[tokio::test]
async fn paging_walks_the_whole_list_exactly_once_with_inserts_between_pages() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    populated(&d, &r).await;
    let before = ids(&d.dead_letters().await);
    assert_eq!(before.len(), 340);

    // Without a filter, by event id, while new dead letters arrive between pages.
    let mut added = 0;
    let got = walk(&d, "", 37, async |page| {
        if page % 3 == 0 {
            send_batch(&d, "e0", 5, "late").await;
            added += 5;
        }
    })
    .await;
    let got = ids(&got);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a dead letter came twice");
    for id in &before {
        assert!(unique.contains(id), "{id} was never listed");
    }
    assert!(got.len() <= before.len() + added);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "oldest (event id) first");

    // With an endpoint, in its order (seq), equal to the whole filtered list.
    let seqs: Vec<u64> = walk(&d, "endpoint=e1", 7, async |_| {})
        .await
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=70).collect::<Vec<u64>>());

    // The default page is 100; the v1 list without a filter still starts at the oldest.
    let a = d.req("GET", "/v1/dead-letters", None).await;
    assert_eq!(a.json["dead_letters"].as_array().unwrap().len(), 100);
    assert_eq!(
        ids(a.json["dead_letters"].as_array().unwrap())[..],
        before[..100]
    );
}

#[tokio::test]
async fn filters_by_endpoint_reason_and_time() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    populated(&d, &r).await;
    let all = d.dead_letters().await;
    let deleted = walk(&d, "reason=ENDPOINT_DELETED", 1000, async |_| {}).await;
    assert_eq!(deleted.len(), 40);
    assert!(deleted.iter().all(|v| v["endpoint"] == "gone"));
    assert_eq!(
        count(&d, "endpoint=e2&reason=MAX_RETRIES_EXCEEDED").await,
        80
    );
    assert_eq!(count(&d, "endpoint=e2&reason=ENDPOINT_DELETED").await, 0);
    assert_eq!(count(&d, "endpoint=nobody").await, 0);

    // since is inclusive, until exclusive, on dead_at.
    let mut times: Vec<String> = all
        .iter()
        .map(|v| v["dead_at"].as_str().unwrap().to_string())
        .collect();
    times.sort();
    let (since, until) = (times[50].clone(), times[250].clone());
    let want: Vec<String> = {
        let mut w: Vec<&Value> = all
            .iter()
            .filter(|v| {
                let t = v["dead_at"].as_str().unwrap();
                t >= since.as_str() && t < until.as_str()
            })
            .collect();
        w.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
        w.iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let got = walk(
        &d,
        &format!("since={since}&until={until}"),
        33,
        async |_| {},
    )
    .await;
    assert_eq!(ids(&got), want);
    assert!(
        got.iter().any(|v| v["dead_at"] == since.as_str()),
        "since is inclusive"
    );
    assert!(
        got.iter().all(|v| v["dead_at"] != until.as_str()),
        "until is exclusive"
    );
}

#[tokio::test]
async fn bulk_replay_of_a_filtered_set_is_delivered_in_order_before_newer_events() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    failing(&d, &r, "acme").await;
    let early = send_batch(&d, "acme", 30, "early").await;
    wait_count(&d, "endpoint=acme", 30).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = d
        .dead_letters()
        .await
        .iter()
        .filter_map(|v| courier::core::dead_filter::parse_rfc3339(v["dead_at"].as_str()?))
        .max()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = send_batch(&d, "acme", 120, "late").await;
    wait_count(&d, "endpoint=acme", 150).await;

    // Now it would succeed; paused, newer events wait behind the replay.
    d.put_endpoint("acme", json!({"url": r.url("/ok"), "retry_schedule": []}))
        .await;
    assert_eq!(
        d.req("POST", "/v1/endpoints/acme/pause", None).await.status,
        200
    );
    let newer = send_batch(&d, "acme", 5, "newer").await;
    r.clear();
    // Only those dead-lettered after the early ones.
    let since = courier::core::timefmt::rfc3339(cut + 1);
    let body = json!({"endpoint": "acme", "reason": "MAX_RETRIES_EXCEEDED", "since": since});
    let a = d
        .req("POST", "/v1/dead-letters/replay", Some(&body.to_string()))
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json["replayed"], 120);
    assert_eq!(a.json["skipped"], 0);
    assert!(a.json["next_cursor"].is_null());
    assert_eq!(count(&d, "endpoint=acme").await, 30, "the early ones stay");
    assert_eq!(
        d.req("POST", "/v1/endpoints/acme/resume", None)
            .await
            .status,
        200
    );
    assert!(
        r.wait_for(|ds| ds.len() >= 125, Duration::from_secs(60))
            .await,
        "only {} delivered",
        r.deliveries().len()
    );
    let got: Vec<String> = r
        .deliveries()
        .iter()
        .filter_map(|x| x.event_id.clone())
        .collect();
    let want: Vec<String> = late.iter().chain(newer.iter()).cloned().collect();
    assert_eq!(
        got, want,
        "replayed in original order, ahead of the newer events"
    );
    let early_left: HashSet<String> = ids(&d.dead_letters().await).into_iter().collect();
    assert_eq!(early_left, early.into_iter().collect());
}

#[tokio::test]
async fn purge_by_filter_removes_exactly_the_matches() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    populated(&d, &r).await;
    let before = d.dead_letters().await;
    let a = d
        .req(
            "DELETE",
            "/v1/dead-letters?endpoint=e1&reason=MAX_RETRIES_EXCEEDED",
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["purged"], 70);
    let a = d
        .req(
            "DELETE",
            "/v1/dead-letters?endpoint=gone&reason=MAX_RETRIES_EXCEEDED",
            None,
        )
        .await;
    assert_eq!(a.json["purged"], 0, "no such reason there");
    let a = d
        .req("DELETE", "/v1/dead-letters?endpoint=gone", None)
        .await;
    assert_eq!(
        a.json["purged"], 40,
        "a deleted endpoint's dead letters can be purged"
    );
    let after = ids(&d.dead_letters().await);
    let want: Vec<String> = before
        .iter()
        .filter(|v| v["endpoint"] != "e1" && v["endpoint"] != "gone")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, want);
    let a = d.req("DELETE", "/v1/dead-letters", None).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json["error"]["code"], "ENDPOINT_REQUIRED");
    assert_eq!(
        ids(&d.dead_letters().await).len(),
        after.len(),
        "no accidental purge-all"
    );
}

#[tokio::test]
async fn export_lines_equal_the_single_show_answers() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    failing(&d, &r, "e2").await;
    failing(&d, &r, "other").await;
    send_batch(&d, "e2", 250, "x").await;
    send_batch(&d, "other", 5, "y").await;
    wait_count(&d, "endpoint=e2", 250).await;
    wait_count(&d, "endpoint=other", 5).await;
    let a = d
        .req("GET", "/v1/dead-letters/export?endpoint=e2", None)
        .await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8(a.raw.to_vec()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 250);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1, "in the endpoint's order");
        let id = line["id"].as_str().unwrap();
        let one = d.req("GET", &format!("/v1/dead-letters/{id}"), None).await;
        assert_eq!(line, &one.json);
    }
    assert_eq!(lines[7]["payload"], json!({"tag": "x", "n": 7}).to_string());

    // The CLI writes the same lines to a file.
    let file = d.dir.join("export.ndjson");
    let (code, _, err) = d.cli(&[
        "dlq",
        "export",
        "--endpoint",
        "e2",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Without a filter: every dead letter.
    let a = d.req("GET", "/v1/dead-letters/export", None).await;
    assert_eq!(String::from_utf8_lossy(&a.raw).lines().count(), 255);
}

#[tokio::test]
async fn cli_asks_before_a_bulk_purge_and_shows_replay_progress() {
    let r = receiver().await;
    let d = Daemon::start(&["--allow-http"]).await;
    failing(&d, &r, "acme").await;
    send_batch(&d, "acme", 1234, "x").await;
    wait_count(&d, "endpoint=acme", 1234).await;

    // No terminal, no --yes: refused, nothing purged.
    let (code, out, err) = d.cli(&["dlq", "purge", "--endpoint", "acme"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(err.contains("1,234"), "{err}");
    assert_eq!(count(&d, "endpoint=acme").await, 1234);

    let (code, out, err) = d.cli(&["dlq", "list", "--endpoint", "acme", "--limit", "10"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--cursor"), "{err}");
    assert_eq!(out.lines().filter(|l| l.contains("evt_")).count(), 10);
    let (code, out, _) = d.cli(&["dlq", "list", "--endpoint", "acme", "--all", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 1234);
    assert!(v["next_cursor"].is_null());

    // Replay of a few (reason filter) with plain progress lines on stderr (no terminal).
    d.put_endpoint("acme", json!({"url": r.url("/ok")})).await;
    assert_eq!(
        d.req("POST", "/v1/endpoints/acme/pause", None).await.status,
        200
    );
    let (code, out, err) = d.cli(&["dlq", "replay", "--endpoint", "acme"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 1,234 dead letters of acme"), "{out}");
    assert!(err.contains("replaying 1,000/1,234"), "{err}");
    assert!(err.contains("replaying 1,234/1,234"), "{err}");
    assert_eq!(count(&d, "endpoint=acme").await, 0);
    assert_eq!(d.endpoint("acme").await["backlog"], 1234);

    // --yes purges without asking.
    failing(&d, &r, "b").await;
    send_batch(&d, "b", 12, "x").await;
    wait_count(&d, "endpoint=b", 12).await;
    let (code, out, err) = d.cli(&["dlq", "purge", "--endpoint", "b", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged 12 dead letters of b"), "{out}");
    assert_eq!(count(&d, "endpoint=b").await, 0);
    // The v1 single replay still works.
    send_batch(&d, "b", 1, "x").await;
    wait_count(&d, "endpoint=b", 1).await;
    let id = ids(&d.dead_letters().await)[0].clone();
    let (code, _, err) = d.cli(&["dlq", "replay", &id]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn bad_cursor_limit_time_and_filters_get_their_codes_and_hints() {
    let d = Daemon::start(&["--allow-http"]).await;
    let cases = [
        ("GET", "/v1/dead-letters?limit=0", None, "INVALID_LIMIT"),
        ("GET", "/v1/dead-letters?limit=1001", None, "INVALID_LIMIT"),
        ("GET", "/v1/dead-letters?limit=ten", None, "INVALID_LIMIT"),
        (
            "GET",
            "/v1/dead-letters?cursor=bogus",
            None,
            "INVALID_CURSOR",
        ),
        ("GET", "/v1/dead-letters?cursor=", None, "INVALID_CURSOR"),
        (
            "GET",
            "/v1/dead-letters?since=yesterday",
            None,
            "INVALID_TIME",
        ),
        (
            "GET",
            "/v1/dead-letters?until=2026-02-30T00:00:00Z",
            None,
            "INVALID_TIME",
        ),
        (
            "GET",
            "/v1/dead-letters?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            None,
            "INVALID_TIME",
        ),
        (
            "GET",
            "/v1/dead-letters?reason=lower",
            None,
            "INVALID_REASON",
        ),
        (
            "GET",
            "/v1/dead-letters?endpoint=a%2Fb",
            None,
            "INVALID_ENDPOINT_ID",
        ),
        (
            "GET",
            "/v1/dead-letters/count?since=x",
            None,
            "INVALID_TIME",
        ),
        (
            "GET",
            "/v1/dead-letters/export?until=x",
            None,
            "INVALID_TIME",
        ),
        (
            "DELETE",
            "/v1/dead-letters?reason=MAX_RETRIES_EXCEEDED",
            None,
            "ENDPOINT_REQUIRED",
        ),
        (
            "POST",
            "/v1/dead-letters/replay",
            Some("{}"),
            "ENDPOINT_REQUIRED",
        ),
        (
            "POST",
            "/v1/dead-letters/replay",
            Some("not json"),
            "INVALID_JSON",
        ),
        (
            "POST",
            "/v1/dead-letters/replay",
            Some(r#"{"endpiont":"a"}"#),
            "INVALID_JSON",
        ),
        (
            "POST",
            "/v1/dead-letters/replay",
            Some(r#"{"endpoint":"a","limit":0}"#),
            "INVALID_LIMIT",
        ),
        (
            "POST",
            "/v1/dead-letters/replay",
            Some(r#"{"endpoint":"nope"}"#),
            "ENDPOINT_NOT_FOUND",
        ),
    ];
    for (method, path, body, code) in cases {
        let a = d.req(method, path, body).await;
        assert_eq!(a.json["error"]["code"], code, "{method} {path}: {a:?}");
        let info = courier::codes::lookup(code).unwrap();
        assert_eq!(Some(a.status), info.http_status, "{method} {path}");
        let hint = a.json["error"]["hint"].as_str().unwrap_or_default();
        assert!(!hint.is_empty(), "{method} {path}: no hint");
    }
    // A cursor of a walk by endpoint is not one of a walk without.
    let r = receiver().await;
    failing(&d, &r, "a").await;
    send_batch(&d, "a", 3, "x").await;
    wait_count(&d, "endpoint=a", 3).await;
    let a = d
        .req("GET", "/v1/dead-letters?endpoint=a&limit=1", None)
        .await;
    let c = a.json["next_cursor"].as_str().unwrap().to_string();
    let a = d
        .req("GET", &format!("/v1/dead-letters?limit=1&cursor={c}"), None)
        .await;
    assert_eq!(a.json["error"]["code"], "INVALID_CURSOR", "{a:?}");
    let a = d
        .req(
            "GET",
            &format!("/v1/dead-letters?endpoint=a&limit=1&cursor={c}"),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["dead_letters"][0]["seq"], 2);
}
