//! Tests of the HTTP client: error classification, refused and disallowed connections, CA files.

use super::*;
use std::path::Path;

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

#[test]
fn classifies_io_errors() {
    use std::io::{Error, ErrorKind};
    let cases = [
        (ErrorKind::ConnectionRefused, FailureKind::ConnectionRefused),
        (ErrorKind::ConnectionReset, FailureKind::ConnectionReset),
        (ErrorKind::UnexpectedEof, FailureKind::ConnectionReset),
        (ErrorKind::TimedOut, FailureKind::Timeout),
    ];
    for (k, want) in cases {
        let e = Error::new(k, "boom");
        assert_eq!(classify(&e).0, want, "{k:?}");
    }
    let tls = Error::new(
        ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
    );
    assert_eq!(classify(&tls).0, FailureKind::Tls);
    // As hyper-rustls reports it: an io::Error inside an io::Error.
    let nested = Error::other(Error::new(
        ErrorKind::InvalidData,
        rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
    ));
    assert_eq!(classify(&nested).0, FailureKind::Tls);
    let nested_refused = Error::other(Error::new(ErrorKind::ConnectionRefused, "x"));
    assert_eq!(classify(&nested_refused).0, FailureKind::ConnectionRefused);
}

#[tokio::test]
async fn refused_connection_is_econnrefused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let c = Client::new(None, true).unwrap();
    let out = c
        .send(
            get(&format!("http://127.0.0.1:{port}/x")),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(out.status, None);
    assert_eq!(out.failure.unwrap().0, FailureKind::ConnectionRefused);
}

#[tokio::test]
async fn http_is_refused_without_allow_http() {
    let c = Client::new(None, false).unwrap();
    let out = c
        .send(get("http://127.0.0.1:9/x"), Duration::from_secs(5))
        .await;
    assert!(out.failure.is_some());
}

#[test]
fn missing_ca_file_is_a_clear_error() {
    let e = Client::new(Some(Path::new("/nonexistent/ca.pem")), false)
        .err()
        .unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn the_start_of_an_answer_is_kept_within_its_bound() {
    let mut k = Kept::default();
    assert_eq!(k.len(), 0);
    k.push(Bytes::from_static(b"hello "), 8);
    assert!(matches!(k, Kept::One(_)), "one frame is not copied");
    k.push(Bytes::from_static(b"world"), 8);
    k.push(Bytes::from_static(b"more"), 8);
    assert_eq!(&k.into_bytes()[..], b"hello wo");
    let mut k = Kept::default();
    k.push(Bytes::from_static(b"abc"), 0);
    assert!(k.into_bytes().is_empty());
}
