//! Black-box tests of the inbound webhook ingress: channels, HMAC verification, payload
//! validation, the per-channel rate limit, and delivery of accepted messages.

use testkit::{daemon, receiver};

use std::time::Duration;

use daemon::{Daemon, free_port};
use receiver::{Receiver, ReceiverConfig};
use serde_json::{Value, json};

/// POSTs to the ingress over TCP; returns (status, Retry-After, JSON).
async fn post(
    addr: &str,
    path: &str,
    body: &'static [u8],
    headers: &[(&str, String)],
) -> (u16, Option<String>, Value) {
    daemon::post_tcp(addr, path, body, headers).await
}

fn sign(secret: &str, body: &[u8]) -> String {
    courier::core::signing::sign(secret.as_bytes(), body)
}

const MSG: &[u8] = br#"{"sender_id":"user_42","text":"Hello!","sender_name":"Dmytro","metadata":{"source":"website"}}"#;

#[tokio::test]
async fn signed_messages_are_accepted_and_delivered_verbatim() {
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&["--allow-http", "--ingress-listen", &addr]).await;
    d.put_endpoint("happ", json!({"url": r.url("/in")})).await;
    let a = d
        .req(
            "PUT",
            "/v1/channels/cm_abc123",
            Some(r#"{"endpoint":"happ","secret":"chan-secret"}"#),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.json["secret_set"], true);
    assert!(!String::from_utf8_lossy(&a.raw).contains("chan-secret"));

    let ct = ("content-type", "application/json".to_string());
    let (st, _, v) = post(
        &addr,
        "/webhook/cm_abc123",
        MSG,
        &[ct.clone(), ("x-happ-signature", sign("chan-secret", MSG))],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(
        r.wait_for(|ds| !ds.is_empty(), Duration::from_secs(10))
            .await
    );
    let del = &r.deliveries()[0];
    assert_eq!(del.event_id.as_deref(), Some(id.as_str()));
    assert_eq!(&del.body[..], MSG);
    assert_eq!(del.event_type.as_deref(), Some("message.received"));

    // Wrong signature, missing signature: 401 HMAC_MISMATCH; nothing enqueued.
    let (st, _, v) = post(
        &addr,
        "/webhook/cm_abc123",
        MSG,
        &[ct.clone(), ("x-happ-signature", sign("other", MSG))],
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("HMAC_MISMATCH"))
    );
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("raw request body")
    );
    let (st, _, _) = post(&addr, "/webhook/cm_abc123", MSG, std::slice::from_ref(&ct)).await;
    assert_eq!(st, 401);

    // Invalid payloads: 422 INVALID_PAYLOAD naming the problem.
    let bad: &[u8] = br#"{"text":"Hello"}"#;
    let (st, _, v) = post(
        &addr,
        "/webhook/cm_abc123",
        bad,
        &[ct.clone(), ("x-happ-signature", sign("chan-secret", bad))],
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("INVALID_PAYLOAD"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sender_id")
    );
    let (st, _, v) = post(
        &addr,
        "/webhook/cm_abc123",
        MSG,
        &[("content-type", "text/plain".into())],
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("INVALID_PAYLOAD"))
    );

    // Unknown channel; the admin API is not served on the ingress listener.
    let (st, _, v) = post(&addr, "/webhook/nope", MSG, std::slice::from_ref(&ct)).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("CHANNEL_NOT_FOUND"))
    );
    let (st, _, _) = post(&addr, "/v1/endpoints/happ/events", MSG, &[ct]).await;
    assert_eq!(st, 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.deliveries().len(), 1, "refused requests were delivered");
    assert_eq!(
        d.req("GET", "/v1/channels", None).await.json["channels"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn rate_limit_per_channel_answers_429_with_retry_after() {
    let addr = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&["--ingress-listen", &addr]).await;
    d.put_endpoint("happ", json!({"url": "https://api.acme.io/in"}))
        .await;
    d.req("POST", "/v1/endpoints/happ/pause", None).await;
    for ch in ["one", "two"] {
        let a = d
            .req(
                "PUT",
                &format!("/v1/channels/{ch}"),
                Some(r#"{"endpoint":"happ","rate_limit":20}"#),
            )
            .await;
        assert_eq!(a.status, 201);
    }
    let ct = ("content-type", "application/json".to_string());
    // 300 concurrent requests on one channel: the burst of 20 (plus what refills meanwhile)
    // passes, the rest is refused with RATE_LIMITED and a Retry-After.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (addr, ct) = (addr.clone(), ct.clone());
        set.spawn(async move { post(&addr, "/webhook/one", MSG, &[ct]).await });
    }
    let mut accepted = 0;
    let mut limited = 0;
    while let Some(r) = set.join_next().await {
        let (st, ra, v) = r.unwrap();
        match st {
            202 => accepted += 1,
            429 => {
                limited += 1;
                assert_eq!(v["error"]["code"], "RATE_LIMITED");
                assert_eq!(ra.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(limited > 0, "nothing was rate limited");
    assert!((20..300).contains(&accepted), "accepted {accepted}");
    // Another channel has its own bucket.
    let (st, _, _) = post(&addr, "/webhook/two", MSG, std::slice::from_ref(&ct)).await;
    assert_eq!(st, 202);
    // A second later the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, _, _) = post(&addr, "/webhook/one", MSG, &[ct]).await;
    assert_eq!(st, 202);
    assert_eq!(d.endpoint("happ").await["backlog"], accepted + 2);
}

#[tokio::test]
async fn channels_need_an_existing_endpoint_and_survive_restarts() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start(&["--ingress-listen", &addr]).await;
    let a = d
        .req("PUT", "/v1/channels/c1", Some(r#"{"endpoint":"missing"}"#))
        .await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    d.put_endpoint("happ", json!({"url": "https://api.acme.io/in"}))
        .await;
    let a = d
        .req(
            "PUT",
            "/v1/channels/c1",
            Some(r#"{"endpoint":"happ","rate_limit":5}"#),
        )
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(d.terminate(), Some(0));
    d.spawn().await;
    let a = d.req("GET", "/v1/channels/c1", None).await;
    assert_eq!(a.json["rate_limit"], 5);
    let (code, out, _) = d.cli(&["channel", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("c1") && out.contains("happ"), "{out}");
    let (code, out, err) = d.cli(&[
        "channel",
        "add",
        "c2",
        "happ",
        "--secret",
        "zzz-secret",
        "--rate-limit",
        "7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rate_limit: 7") && !out.contains("zzz-secret"),
        "{out}"
    );
    let (code, _, _) = d.cli(&["channel", "remove", "c2"]);
    assert_eq!(code, 0);
    let a = d.req("DELETE", "/v1/channels/c1", None).await;
    assert_eq!(a.status, 204);
    let a = d.req("GET", "/v1/channels/c1", None).await;
    assert_eq!(a.json["error"]["code"], "CHANNEL_NOT_FOUND");
}
