//! Admin access: which listener a request came on ([`Via`]) and the gate the `before` step
//! asks ([`AdminGate`]). On the Unix socket file permissions are the access control (no
//! token); on TCP every route but `/livez`, `/readyz` and `/metrics` needs
//! `Authorization: Bearer <token>`, compared in constant time, unless the operator chose
//! `--listen-insecure`; offline (in-process, over a read-only journal) only reads are served.

use http::{Method, Request, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::core::secret::Secret;
use crate::error::ApiError;

/// How a request reached the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The Unix socket (mode 0600): no token.
    Socket,
    /// The TCP admin listener: a bearer token, unless insecure.
    Tcp,
    /// In-process, over a read-only journal (`courier … --data-dir`): reads only.
    Offline,
}

/// The admin tokens of the TCP listener. Only SHA-256 digests are kept (the tokens in clear
/// stay in the configuration as [`Secret`]s); comparing digests in constant time does not
/// reveal a token's length either.
pub struct AdminGate {
    digests: Vec<[u8; 32]>,
    insecure: bool,
}

impl std::fmt::Debug for AdminGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGate")
            .field("tokens", &self.digests.len())
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The routes every listener serves without a token: probes and metrics.
fn is_open(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics")
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AdminGate {
    /// A gate holding `tokens`; `insecure` lets TCP requests through without one.
    pub fn new(tokens: &[Secret], insecure: bool) -> AdminGate {
        AdminGate {
            digests: tokens
                .iter()
                .map(|t| digest(t.expose().as_bytes()))
                .collect(),
            insecure,
        }
    }

    /// A gate with no token (the socket and offline need none; TCP then refuses).
    pub fn closed() -> AdminGate {
        AdminGate::new(&[], false)
    }

    /// Whether any token is configured.
    pub fn has_tokens(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether a presented token is one of the configured ones. Every token is compared, so
    /// the time taken does not say which (or whether one) matched.
    fn accepts(&self, presented: &[u8]) -> bool {
        let d = digest(presented);
        let mut ok = subtle::Choice::from(0u8);
        for want in &self.digests {
            ok |= want.ct_eq(&d);
        }
        ok.into()
    }

    /// Whether a request may be routed: `Ok`, or the refusal (401 `UNAUTHORIZED`, 409
    /// `READ_ONLY`).
    pub fn check<B>(&self, via: Via, req: &Request<B>) -> Result<(), ApiError> {
        match via {
            Via::Socket => Ok(()),
            Via::Offline => {
                if matches!(*req.method(), Method::GET | Method::HEAD) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "READ_ONLY",
                        "the journal is open read-only (--data-dir, daemon stopped): only reads are served",
                    ))
                }
            }
            Via::Tcp if self.insecure || is_open(req.uri().path()) => Ok(()),
            Via::Tcp if self.digests.is_empty() => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "no admin token is configured, so the TCP admin API refuses every request",
            )),
            Via::Tcp => match bearer(req) {
                Some(t) if self.accepts(t) => Ok(()),
                Some(_) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "the bearer token is not one of the daemon's admin tokens",
                )),
                None => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "the TCP admin API needs an Authorization: Bearer <token> header",
                )),
            },
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer<B>(req: &Request<B>) -> Option<&[u8]> {
    let v = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Reads admin tokens from the text of a token file: one a line, surrounding blanks trimmed,
/// blank lines and `#` comments ignored. A token must be printable ASCII without spaces (it
/// travels in a header); the error names the line, never its content.
pub fn parse_tokens(text: &str) -> Result<Vec<Secret>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "line {} is not a token (printable ASCII without spaces)",
                n + 1
            ));
        }
        out.push(Secret::new(t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, auth: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    fn code(r: Result<(), ApiError>) -> Option<&'static str> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn tcp_needs_a_configured_token() {
        let g = AdminGate::new(&[Secret::new("tok-one"), Secret::new("tok-two")], false);
        let get = |a| g.check(Via::Tcp, &req(Method::GET, "/v1/endpoints", a));
        assert_eq!(code(get(None)), Some("UNAUTHORIZED"));
        assert_eq!(code(get(Some("Bearer nope"))), Some("UNAUTHORIZED"));
        assert_eq!(code(get(Some("Basic tok-one"))), Some("UNAUTHORIZED"));
        assert_eq!(code(get(Some("Bearer "))), Some("UNAUTHORIZED"));
        assert_eq!(code(get(Some("Bearer tok-on"))), Some("UNAUTHORIZED"));
        assert_eq!(code(get(Some("Bearer tok-one"))), None);
        assert_eq!(code(get(Some("bearer  tok-two "))), None);
        for open in ["/livez", "/readyz", "/metrics"] {
            assert_eq!(code(g.check(Via::Tcp, &req(Method::GET, open, None))), None);
        }
        let hint = g
            .check(Via::Tcp, &req(Method::GET, "/v1/x", None))
            .unwrap_err();
        assert_eq!(hint.status, StatusCode::UNAUTHORIZED);
        assert!(hint.hint().is_some_and(|h| h.contains("--listen-insecure")));
    }

    #[test]
    fn no_token_closes_tcp_unless_insecure() {
        let closed = AdminGate::closed();
        let r = req(Method::GET, "/v1/endpoints", Some("Bearer anything"));
        let e = closed.check(Via::Tcp, &r).unwrap_err();
        assert_eq!(e.code, "UNAUTHORIZED");
        assert!(e.message.contains("no admin token"), "{e:?}");
        assert!(AdminGate::new(&[], true).check(Via::Tcp, &r).is_ok());
        assert!(closed.check(Via::Socket, &r).is_ok());
    }

    #[test]
    fn offline_serves_reads_only() {
        let g = AdminGate::closed();
        assert!(
            g.check(Via::Offline, &req(Method::GET, "/v1/x", None))
                .is_ok()
        );
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let e = g.check(Via::Offline, &req(m, "/v1/x", None)).unwrap_err();
            assert_eq!(e.code, "READ_ONLY");
        }
    }

    #[test]
    fn token_files() {
        let t = parse_tokens("# admin tokens\n\n  abc123  \n#old\nxyz\n").unwrap();
        let shown: Vec<&str> = t.iter().map(Secret::expose).collect();
        assert_eq!(shown, ["abc123", "xyz"]);
        assert!(parse_tokens("\n# only comments\n").unwrap().is_empty());
        let e = parse_tokens("ok\nhas space\n").unwrap_err();
        assert!(e.contains("line 2") && !e.contains("has space"), "{e}");
    }

    #[test]
    fn debug_shows_no_token() {
        let g = AdminGate::new(&[Secret::new("s3cr3t-token")], false);
        let shown = format!("{g:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
