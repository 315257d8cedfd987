//! Tests of the webhook destination: the contract's headers and signature, the signed ping,
//! and what each answer means for the retry policy.

use super::*;
use crate::core::model::EndpointConfig;
use crate::core::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(url: &str) -> EndpointConfig {
    EndpointConfig {
        url: url.into(),
        secret: Some(Secret::new("k")),
        password: Some(Secret::new("pw")),
        timeout_ms: 5_000,
        retry_schedule_ms: vec![1_000],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    }
}

fn spec(c: &EndpointConfig) -> EndpointSpec {
    EndpointSpec::from_config(c).unwrap()
}

fn webhook(url: &str) -> Webhook {
    Webhook::new(Client::new(None, true).unwrap(), &spec(&config(url)))
}

fn meta() -> EventMeta {
    EventMeta {
        id: "evt_X".into(),
        enqueued_at_ms: 0,
        content_type: "application/json".into(),
        event_type: Some("call.completed".into()),
    }
}

#[test]
fn request_carries_contract_headers() {
    let w = webhook("https://example.com/hook");
    let r = w
        .target
        .request(&meta(), Bytes::from_static(b"{}"), 2, false)
        .unwrap();
    let h = r.headers();
    assert_eq!(h["x-happ-event-id"], "evt_X");
    assert_eq!(h["x-happ-attempt"], "2");
    assert_eq!(h["x-happ-event"], "call.completed");
    assert_eq!(h["authorization"], "Bearer pw");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["content-type"], "application/json");
    assert!(h["user-agent"].to_str().unwrap().starts_with("courier/"));
    assert_eq!(
        h["x-happ-signature"],
        crate::core::signing::sign(b"k", b"{}").as_str()
    );
    assert_eq!(r.uri(), "https://example.com/hook");
}

#[test]
fn no_secret_no_password_no_type_means_no_such_headers() {
    let mut c = config("https://example.com/hook");
    c.secret = None;
    c.password = None;
    let w = Webhook::new(Client::new(None, false).unwrap(), &spec(&c));
    let mut m = meta();
    m.event_type = None;
    let r = w
        .target
        .request(&m, Bytes::from_static(b"{}"), 1, false)
        .unwrap();
    for h in ["x-happ-signature", "authorization", "x-happ-event"] {
        assert!(!r.headers().contains_key(h), "{h}");
    }
}

#[test]
fn an_unparsable_url_builds_no_destination() {
    // The stored settings are typed before a destination is built; this URL stops there.
    let e = EndpointSpec::from_config(&config("not a url")).unwrap_err();
    assert_eq!(e.code(), "INVALID_URL");
}

fn answer(status: Option<u16>, kind: Option<FailureKind>, retry_after: Option<u64>) -> Answer {
    Answer {
        status,
        failure: kind.map(|k| (k, "m".to_string())),
        retry_after: retry_after.map(Duration::from_secs),
        latency: Duration::from_millis(3),
        body: bytes::Bytes::new(),
        body_truncated: false,
        content_type: None,
    }
}

#[test]
fn answers_mean_what_the_v1_contract_says() {
    let ok = outcome(answer(Some(204), None, None));
    assert!(ok.is_success());
    assert_eq!(ok.verdict(), crate::core::partition::Verdict::Delivered);
    let cases = [
        (
            Some(429),
            FailureKind::Http(429),
            Some(7),
            "HTTP_429",
            true,
            Next::After(Duration::from_secs(7)),
        ),
        (
            Some(429),
            FailureKind::Http(429),
            None,
            "HTTP_429",
            true,
            Next::Schedule,
        ),
        (
            Some(503),
            FailureKind::Http(503),
            Some(7),
            "HTTP_5XX",
            true,
            Next::Schedule,
        ),
        (
            Some(404),
            FailureKind::Http(404),
            None,
            "HTTP_404",
            false,
            Next::Schedule,
        ),
        (
            Some(400),
            FailureKind::Http(400),
            None,
            "HTTP_4XX",
            false,
            Next::Schedule,
        ),
        (
            Some(301),
            FailureKind::Http(301),
            None,
            "HTTP_3XX",
            false,
            Next::Schedule,
        ),
        (
            None,
            FailureKind::Timeout,
            None,
            "ETIMEDOUT",
            true,
            Next::Schedule,
        ),
        (
            None,
            FailureKind::Tls,
            None,
            "TLS_ERROR",
            true,
            Next::Schedule,
        ),
    ];
    for (status, kind, ra, code, blames, next) in cases {
        let o = outcome(answer(status, Some(kind.clone()), ra));
        let f = o.failure.clone().unwrap();
        assert_eq!(
            (f.code, f.blames_endpoint, f.next),
            (code, blames, next),
            "{kind:?}"
        );
        assert_eq!(o.status, status);
        assert_eq!(o.latency, Duration::from_millis(3));
    }
}

#[test]
fn only_a_back_filled_event_carries_the_replay_header() {
    let w = webhook("https://example.com/hook");
    let body = || Bytes::from_static(b"{}");
    let replayed = w.target.request(&meta(), body(), 3, true).unwrap();
    assert_eq!(replayed.headers()["x-happ-replay"], "1");
    assert_eq!(
        replayed.headers().get_all("x-happ-replay").iter().count(),
        1
    );
    // Everything else of the contract is as on any attempt.
    assert_eq!(replayed.headers()["x-happ-event-id"], "evt_X");
    assert_eq!(replayed.headers()["x-happ-attempt"], "3");
    let plain = w.target.request(&meta(), body(), 3, false).unwrap();
    assert!(plain.headers().get("x-happ-replay").is_none());
    assert_eq!(
        replayed.headers()["x-happ-signature"],
        plain.headers()["x-happ-signature"],
        "the signature covers the body only"
    );
}

#[tokio::test]
async fn a_back_filled_delivery_sends_the_replay_header_and_a_test_does_not() {
    let (url, rx) = one_shot_receiver(200).await;
    let out = webhook(&url)
        .deliver(Delivery {
            meta: Arc::new(meta()),
            body: Bytes::from_static(b"{}"),
            attempt: 1,
            replay: true,
        })
        .await;
    assert!(out.is_success(), "{out:?}");
    let (head, _) = rx.await.unwrap();
    assert!(
        head.lines().any(|l| l.trim_end() == "x-happ-replay: 1"),
        "{head}"
    );

    let (url, rx) = one_shot_receiver(200).await;
    let out = webhook(&url)
        .deliver(Delivery {
            meta: Arc::new(meta()),
            body: Bytes::from_static(b"{}"),
            attempt: 1,
            replay: false,
        })
        .await;
    assert!(out.is_success(), "{out:?}");
    let (head, _) = rx.await.unwrap();
    assert!(!head.contains("x-happ-replay"), "{head}");

    let (url, rx) = one_shot_receiver(200).await;
    let out = webhook(&url)
        .test(Ping {
            id: "evt_1".into(),
            at_ms: 0,
        })
        .await;
    assert!(out.is_success(), "{out:?}");
    let (head, _) = rx.await.unwrap();
    assert!(!head.contains("x-happ-replay"), "{head}");
}

#[tokio::test]
async fn refused_connection_is_econnrefused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let w = webhook(&format!("http://127.0.0.1:{port}/x"));
    let out = w
        .deliver(Delivery {
            meta: Arc::new(meta()),
            body: Bytes::from_static(b"{}"),
            attempt: 1,
            replay: false,
        })
        .await;
    assert_eq!(out.status, None);
    let f = out.failure.unwrap();
    assert_eq!((f.code, f.blames_endpoint), ("ECONNREFUSED", true));
}

/// Accepts one request, answers `status`, and hands back the request's head and body.
async fn one_shot_receiver(status: u16) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body) = loop {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec())
                    .unwrap()
                    .to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                break (head, buf[end + 4..end + 4 + len].to_vec());
            }
        };
        let reply =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        s.write_all(reply.as_bytes()).await.unwrap();
        (head, body)
    });
    (url, task)
}

#[tokio::test]
async fn test_sends_a_signed_webhook_ping() {
    let (url, rx) = one_shot_receiver(200).await;
    let w = webhook(&url);
    let ping = Ping {
        id: "evt_01PING".into(),
        at_ms: 1_795_240_146_123,
    };
    let out = w.test(ping).await;
    assert!(out.is_success(), "{out:?}");
    assert_eq!(out.status, Some(200));
    let (head, body) = rx.await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "webhook.ping");
    assert_eq!(v["id"], "evt_01PING");
    assert_eq!(v["created_at"], "2026-11-21T05:49:06.123Z");
    assert!(head.contains("x-happ-event: webhook.ping"), "{head}");
    assert!(head.contains("x-happ-event-id: evt_01ping"), "{head}");
    assert!(head.contains("x-happ-attempt: 1"), "{head}");
    assert!(head.contains("authorization: bearer pw"), "{head}");
    let sig = head
        .lines()
        .find_map(|l| l.strip_prefix("x-happ-signature: "))
        .unwrap();
    assert!(crate::core::signing::verify(b"k", &body, sig), "{sig}");
}

#[tokio::test]
async fn a_failed_test_names_the_failure() {
    let (url, rx) = one_shot_receiver(503).await;
    let out = webhook(&url)
        .test(Ping {
            id: "evt_1".into(),
            at_ms: 0,
        })
        .await;
    let _ = rx.await;
    assert_eq!(out.status, Some(503));
    assert_eq!(out.failure.unwrap().code, "HTTP_5XX");
}
