//! Black-box tests of the limits. Refused bodies: a client that writes its whole request
//! before it reads (as Python's `http.client` does) gets the answer — a 413 for an over-limit
//! body, and any refusal made before the body was read — and draining a refused body is
//! bounded in bytes and in time. Backlog limits: an endpoint's own `max_backlog` answers 429
//! `BACKLOG_FULL` past it while another endpoint keeps accepting and delivering, and a small
//! `--max-journal-bytes` answers 507 `STORAGE_FULL` to the endpoint holding the bytes while
//! the other goes on.

use testkit::daemon;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use daemon::{Daemon, free_port};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;
/// Far more than loopback and Unix socket buffers absorb (a few MiB).
const HUGE: usize = 24 * MIB;
const CHUNK: usize = 64 * 1024;

/// How the request body is framed.
#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// An answer read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    json: Value,
}

/// Writes the head and then `len` body bytes with blocking writes, and reads the answer only
/// after that, like a client that sends its whole request before reading.
fn send_whole_then_read(
    s: &mut (impl Read + Write),
    path: &str,
    extra_headers: &str,
    framing: Framing,
    len: usize,
) -> Result<Raw, String> {
    let framing_header = match framing {
        Framing::Length => format!("Content-Length: {len}\r\n"),
        Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_string(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {extra_headers}{framing_header}\r\n"
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("writing the head: {e}"))?;
    let chunk = vec![b'x'; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK);
        let written = match framing {
            Framing::Length => s.write_all(&chunk[..n]),
            Framing::Chunked => s
                .write_all(format!("{n:x}\r\n").as_bytes())
                .and_then(|()| s.write_all(&chunk[..n]))
                .and_then(|()| s.write_all(b"\r\n")),
        };
        written.map_err(|e| format!("writing the body, {} bytes in: {e}", len - left))?;
        left -= n;
    }
    if let Framing::Chunked = framing {
        s.write_all(b"0\r\n\r\n")
            .map_err(|e| format!("writing the last chunk: {e}"))?;
    }
    s.flush().map_err(|e| e.to_string())?;
    read_answer(s)
}

/// Reads one HTTP/1.1 answer with a Content-Length body.
fn read_answer(s: &mut impl Read) -> Result<Raw, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => return Err(format!("connection closed after {} bytes", buf.len())),
            Ok(_) => buf.push(byte[0]),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("reading the answer's body: {e}"))?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Raw { status, head, json })
}

fn unix(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn assert_too_large(a: &Raw, limit: usize) {
    assert_eq!(a.status, 413, "{a:?}");
    assert_eq!(a.json["error"]["code"], "PAYLOAD_TOO_LARGE", "{a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&limit.to_string())),
        "{a:?}"
    );
}

/// The connection is still usable: the refused body was read to its end.
fn assert_kept_alive(s: &mut (impl Read + Write)) {
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("second request");
    let a = read_answer(s).expect("second answer");
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_limit_body_with_content_length_is_read_and_answered_413() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        let a = send_whole_then_read(
            &mut s,
            "/v1/endpoints/acme/events",
            "",
            Framing::Length,
            HUGE,
        )
        .expect("the client sees the answer");
        assert_too_large(&a, 1024);
        assert_kept_alive(&mut s);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_limit_chunked_body_is_read_and_answered_413() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        let a = send_whole_then_read(
            &mut s,
            "/v1/endpoints/acme/events",
            "",
            Framing::Chunked,
            HUGE,
        )
        .expect("the client sees the answer");
        assert_too_large(&a, 1024);
        assert_kept_alive(&mut s);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_limit_ingress_body_over_tcp_is_read_and_answered_413() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(&[
        "--max-body-bytes",
        "2048",
        "--ingress-listen",
        &addr,
        "--allow-http",
    ])
    .await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let a = d
        .req(
            "PUT",
            "/v1/channels/cm_1",
            Some(&json!({"endpoint": "acme"}).to_string()),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    tokio::task::spawn_blocking(move || {
        for framing in [Framing::Length, Framing::Chunked] {
            let mut s = std::net::TcpStream::connect(&addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
            let a = send_whole_then_read(&mut s, "/webhook/cm_1", "", framing, HUGE)
                .expect("the client sees the answer");
            assert_too_large(&a, 2048);
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_declared_beyond_the_drain_bound_is_answered_at_once() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        // 1 GiB is declared, nothing of it is sent: the answer comes without waiting for it.
        s.write_all(
            b"POST /v1/endpoints/acme/events HTTP/1.1\r\nHost: localhost\r\n\
              Content-Length: 1073741824\r\n\r\n",
        )
        .unwrap();
        let a = read_answer(&mut s).expect("answered without the body");
        assert_too_large(&a, 1024);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_waiting_for_100_continue_gets_the_413_instead() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        s.write_all(
            b"POST /v1/endpoints/acme/events HTTP/1.1\r\nHost: localhost\r\n\
              Expect: 100-continue\r\nContent-Length: 4096\r\n\r\n",
        )
        .unwrap();
        let a = read_answer(&mut s).expect("answered without the body");
        assert!(!a.head.contains("100 Continue"), "{a:?}");
        assert_too_large(&a, 1024);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_over_limit_body_is_given_up_after_the_drain_time() {
    let d = Daemon::start(&["--max-body-bytes", "1024"]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        s.write_all(
            b"POST /v1/endpoints/acme/events HTTP/1.1\r\nHost: localhost\r\n\
              Content-Length: 8388608\r\n\r\n",
        )
        .unwrap();
        // A part of the body, then the client stalls: the server stops waiting for the rest.
        s.write_all(&vec![b'x'; CHUNK]).unwrap();
        let a = read_answer(&mut s).expect("answered after the drain time");
        let waited = started.elapsed();
        assert_too_large(&a, 1024);
        assert!(
            waited >= Duration::from_secs(4),
            "answered before the drain time: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(30),
            "the drain is not bounded in time: {waited:?}"
        );
        // The rest of the body was never read: the server closes the connection.
        let mut rest = [0u8; 1];
        assert_eq!(s.read(&mut rest).map_err(|e| e.kind()), Ok(0));
    })
    .await
    .unwrap();
}

/// The admin socket of a daemon, and its ingress listener (with channel `cm_1`, allowing one
/// request a second, for endpoint `acme`) at the returned address.
async fn with_ingress() -> (Daemon, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(&["--ingress-listen", &addr, "--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let a = d
        .req(
            "PUT",
            "/v1/channels/cm_1",
            Some(&json!({"endpoint": "acme", "rate_limit": 1, "burst": 1}).to_string()),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    (d, addr)
}

fn tcp(addr: &str) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn assert_refused(a: &Raw, status: u16, code: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.json["error"]["code"], code, "{a:?}");
}

/// A request refused before its body is read, with a huge body in either framing: the client
/// sees the answer, and the connection stays usable (the body was read to its end).
fn refused_after_the_whole_body(s: &mut (impl Read + Write), path: &str, status: u16, code: &str) {
    for framing in [Framing::Length, Framing::Chunked] {
        let a = send_whole_then_read(s, path, "", framing, HUGE)
            .unwrap_or_else(|e| panic!("the client does not see the {code} answer: {e}"));
        assert_refused(&a, status, code);
        assert_kept_alive(s);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_endpoint_id_is_answered_to_a_client_writing_a_huge_body() {
    let d = Daemon::start(&[]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        refused_after_the_whole_body(
            &mut s,
            "/v1/endpoints/bad!id/events",
            400,
            "INVALID_ENDPOINT_ID",
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_route_is_answered_to_a_client_writing_a_huge_body() {
    let d = Daemon::start(&[]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        refused_after_the_whole_body(&mut s, "/v1/nowhere", 404, "ROUTE_NOT_FOUND");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_channel_is_answered_to_a_client_writing_a_huge_body() {
    let (_d, addr) = with_ingress().await;
    tokio::task::spawn_blocking(move || {
        refused_after_the_whole_body(&mut tcp(&addr), "/webhook/nope", 404, "CHANNEL_NOT_FOUND");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_request_is_answered_to_a_client_writing_a_huge_body() {
    let (_d, addr) = with_ingress().await;
    tokio::task::spawn_blocking(move || {
        let mut s = tcp(&addr);
        // A small request takes the channel's one token; the next, right after it, is refused
        // (the bucket refills in a second).
        let a = send_whole_then_read(&mut s, "/webhook/cm_1", "", Framing::Length, 2)
            .expect("the small request is answered");
        assert_refused(&a, 422, "INVALID_PAYLOAD");
        let a = send_whole_then_read(&mut s, "/webhook/cm_1", "", Framing::Length, HUGE)
            .expect("the client sees the RATE_LIMITED answer");
        assert_refused(&a, 429, "RATE_LIMITED");
        assert!(
            a.head.to_ascii_lowercase().contains("\r\nretry-after:"),
            "{a:?}"
        );
        assert_kept_alive(&mut s);
    })
    .await
    .unwrap();
}

/// The hard limits hold for every refusal: a body declared beyond the drain bound, or one the
/// client sends only after `100 Continue`, is not waited for.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_does_not_wait_for_a_huge_or_expected_body() {
    let d = Daemon::start(&[]).await;
    let mut s = unix(&d);
    tokio::task::spawn_blocking(move || {
        s.write_all(
            b"POST /v1/nowhere HTTP/1.1\r\nHost: localhost\r\n\
              Content-Length: 1073741824\r\n\r\n",
        )
        .unwrap();
        let a = read_answer(&mut s).expect("answered without the body");
        assert_refused(&a, 404, "ROUTE_NOT_FOUND");
        let mut s = unix(&d);
        s.write_all(
            b"POST /v1/endpoints/bad!id/events HTTP/1.1\r\nHost: localhost\r\n\
              Expect: 100-continue\r\nContent-Length: 4096\r\n\r\n",
        )
        .unwrap();
        let a = read_answer(&mut s).expect("answered without the body");
        assert!(!a.head.contains("100 Continue"), "{a:?}");
        assert_refused(&a, 400, "INVALID_ENDPOINT_ID");
    })
    .await
    .unwrap();
}

// ---- backlog limits ----

/// A receiver answering 200, for the endpoints that keep delivering.
async fn ok_receiver() -> testkit::receiver::Receiver {
    testkit::receiver::Receiver::start(testkit::receiver::ReceiverConfig::plain())
        .await
        .expect("receiver")
}

async fn post_event(d: &Daemon, ep: &str, body: &str) -> daemon::Answer {
    d.try_request(
        "POST",
        &format!("/v1/endpoints/{ep}/events"),
        Some(bytes::Bytes::from(body.to_string())),
        &[("content-type", "application/json")],
    )
    .await
    .expect("answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_past_its_own_max_backlog_is_refused_while_another_keeps_going() {
    let r = ok_receiver().await;
    let d = Daemon::start(&["--allow-http", "--max-backlog", "1000"]).await;
    let held = d
        .put_endpoint("held", json!({"url": r.url("/held"), "max_backlog": 3}))
        .await;
    assert_eq!(
        (&held["max_backlog"], &held["max_backlog_own"]),
        (&json!(3), &json!(true))
    );
    let free = d.put_endpoint("free", json!({"url": r.url("/free")})).await;
    assert_eq!(
        (&free["max_backlog"], &free["max_backlog_own"]),
        (&json!(1000), &json!(false)),
        "the daemon's --max-backlog"
    );
    d.req("POST", "/v1/endpoints/held/pause", None).await;
    for i in 0..3 {
        let a = post_event(&d, "held", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    for _ in 0..2 {
        let a = post_event(&d, "held", "{}").await;
        assert_eq!(a.status, 429, "{a:?}");
        assert_eq!(a.json["error"]["code"], "BACKLOG_FULL", "{a:?}");
        assert!(
            a.json["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("max_backlog")
        );
    }
    // The other endpoint accepts and delivers all the while.
    for i in 0..20 {
        let a = post_event(&d, "free", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    assert!(
        r.wait_for(
            |ds| ds
                .iter()
                .filter(|x| x.path == "/free" && x.is_success())
                .count()
                == 20,
            Duration::from_secs(30)
        )
        .await,
        "the other endpoint delivered everything"
    );
    assert_eq!(d.endpoint("held").await["backlog"], 3, "nothing dropped");

    // Raising it by PATCH accepts more; null gives the daemon's default back.
    let a = d
        .req("PATCH", "/v1/endpoints/held", Some(r#"{"max_backlog": 0}"#))
        .await;
    assert_eq!(a.status, 422, "{a:?}");
    assert_eq!(a.json["error"]["code"], "INVALID_MAX_BACKLOG");
    let (code, out, err) = d.cli(&["endpoint", "set", "held", "--max-backlog", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("max_backlog: 4 (its own)"), "{out}");
    assert_eq!(post_event(&d, "held", "{}").await.status, 202);
    assert_eq!(post_event(&d, "held", "{}").await.status, 429);
    let a = d
        .req(
            "PATCH",
            "/v1/endpoints/held",
            Some(r#"{"max_backlog": null}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (&a.json["max_backlog"], &a.json["max_backlog_own"]),
        (&json!(1000), &json!(false))
    );
    assert_eq!(post_event(&d, "held", "{}").await.status, 202);

    // Kept across a restart.
    d.req("PATCH", "/v1/endpoints/held", Some(r#"{"max_backlog": 6}"#))
        .await;
    let mut d = d;
    assert_eq!(d.terminate(), Some(0));
    d.spawn().await;
    let v = d.endpoint("held").await;
    assert_eq!(
        (&v["max_backlog"], &v["backlog"]),
        (&json!(6), &json!(5)),
        "{v}"
    );
    assert_eq!(post_event(&d, "held", "{}").await.status, 202);
    assert_eq!(post_event(&d, "held", "{}").await.status, 429);
    d.req("POST", "/v1/endpoints/held/resume", None).await;
    assert!(
        r.wait_for(
            |ds| ds
                .iter()
                .filter(|x| x.path == "/held" && x.is_success())
                .count()
                == 6,
            Duration::from_secs(30)
        )
        .await,
        "every accepted event is delivered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_journal_bytes_the_endpoint_holding_them_is_refused_and_the_other_goes_on() {
    let r = ok_receiver().await;
    let d = Daemon::start(&["--allow-http", "--max-journal-bytes", "256KiB"]).await;
    d.put_endpoint("hog", json!({"url": r.url("/hog")})).await;
    d.put_endpoint("lean", json!({"url": r.url("/lean")})).await;
    d.req("POST", "/v1/endpoints/hog/pause", None).await;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(8 * 1024));
    let mut accepted = 0;
    let refused = loop {
        let a = post_event(&d, "hog", &body).await;
        match a.status {
            202 => accepted += 1,
            _ => break a,
        }
        assert!(
            accepted < 100,
            "256 KiB hold fewer than 100 events of 8 KiB"
        );
    };
    assert_eq!(refused.status, 507, "{refused:?}");
    assert_eq!(refused.json["error"]["code"], "STORAGE_FULL", "{refused:?}");
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hog"),
        "{refused:?}"
    );
    assert!(accepted >= 20, "only {accepted} accepted");
    // The other endpoint goes on.
    for i in 0..10 {
        let a = post_event(&d, "lean", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    assert!(
        r.wait_for(
            |ds| ds
                .iter()
                .filter(|x| x.path == "/lean" && x.is_success())
                .count()
                == 10,
            Duration::from_secs(30)
        )
        .await,
        "the other endpoint delivered"
    );
    assert_eq!(
        d.endpoint("hog").await["backlog"],
        accepted,
        "nothing dropped"
    );
    let (code, out, err) = d.cli(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" of 256.0 KiB ("), "{out}");
    assert!(out.contains("retention:     72h"), "{out}");
    // Draining gives room again.
    d.req("POST", "/v1/endpoints/hog/resume", None).await;
    assert!(
        r.wait_for(
            |ds| ds
                .iter()
                .filter(|x| x.path == "/hog" && x.is_success())
                .count()
                == accepted as usize,
            Duration::from_secs(30)
        )
        .await,
        "the held events are delivered"
    );
}
