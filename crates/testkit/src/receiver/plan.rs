//! What the receiver answers (behaviours, per-path rules, plans) and what it records of
//! each delivery, with the signature check.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::header::HeaderMap;
use sha2::Sha256;

// ---------------------------------------------------------------------------------------------
// Behaviour and plan
// ---------------------------------------------------------------------------------------------

/// What the receiver does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Answer this status with an empty body.
    Status(u16),
    /// Answer `status` with `Retry-After: secs`.
    RetryAfter { status: u16, secs: u64 },
    /// Sleep `ms` milliseconds, then answer `then`.
    Sleep { ms: u64, then: u16 },
    /// Read the request, never answer (until the client closes the connection).
    Hang,
    /// Close the TCP connection abruptly (SO_LINGER 0, so an RST) without answering.
    Reset,
    /// Answer `status` with a streamed body of `bytes` bytes (Content-Length set).
    HugeBody { status: u16, bytes: usize },
    /// Answer `status` with this body and `Content-Type` (a tool webhook's JSON answer).
    Answer {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl Behavior {
    /// Parses the control JSON: `{"behavior":"status","status":503}`,
    /// `{"behavior":"retry_after","status":429,"secs":2}`, `{"behavior":"sleep","ms":6000,"then":200}`,
    /// `{"behavior":"hang"}`, `{"behavior":"reset"}`, `{"behavior":"huge_body","status":200,"bytes":10000000}`,
    /// `{"behavior":"answer","status":200,"content_type":"application/json","body":"{}"}`.
    pub fn from_json(v: &serde_json::Value) -> Result<Behavior, String> {
        let kind = v
            .get("behavior")
            .and_then(|b| b.as_str())
            .ok_or_else(|| "missing string field \"behavior\"".to_string())?;
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match v.get(name) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(x) => x
                    .as_u64()
                    .ok_or_else(|| format!("field {name:?} must be a non-negative integer")),
            }
        };
        let status = |name: &str, default: u64| -> Result<u16, String> {
            let s = num(name, default)?;
            if (100..=999).contains(&s) {
                Ok(s as u16)
            } else {
                Err(format!("field {name:?} must be an HTTP status (100..=999)"))
            }
        };
        Ok(match kind {
            "status" => Behavior::Status(status("status", 200)?),
            "retry_after" => Behavior::RetryAfter {
                status: status("status", 429)?,
                secs: num("secs", 1)?,
            },
            "sleep" => Behavior::Sleep {
                ms: num("ms", 1000)?,
                then: status("then", 200)?,
            },
            "hang" => Behavior::Hang,
            "reset" => Behavior::Reset,
            "huge_body" => Behavior::HugeBody {
                status: status("status", 200)?,
                bytes: usize::try_from(num("bytes", 10_000_000)?).map_err(|e| e.to_string())?,
            },
            "answer" => Behavior::Answer {
                status: status("status", 200)?,
                content_type: v
                    .get("content_type")
                    .and_then(|c| c.as_str())
                    .unwrap_or("application/json")
                    .to_string(),
                body: v
                    .get("body")
                    .and_then(|b| b.as_str())
                    .unwrap_or("")
                    .to_string(),
            },
            other => return Err(format!("unknown behavior {other:?}")),
        })
    }
}

/// A schedule: the first `n1` matching requests get `b1`, the next `n2` get `b2`, ..., then `then`.
/// Requests are counted per path (default) or over all paths ([`Rule::counted_globally`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub steps: Vec<(u64, Behavior)>,
    pub then: Behavior,
    pub global: bool,
}

impl Rule {
    pub fn always(b: Behavior) -> Rule {
        Rule {
            steps: Vec::new(),
            then: b,
            global: false,
        }
    }

    pub fn sequence(steps: Vec<(u64, Behavior)>, then: Behavior) -> Rule {
        Rule {
            steps,
            then,
            global: false,
        }
    }

    /// Count requests over all paths instead of per path.
    pub fn counted_globally(mut self) -> Rule {
        self.global = true;
        self
    }

    /// The behaviour for the `n`-th (0-based) counted request.
    pub fn pick(&self, mut n: u64) -> &Behavior {
        for (count, b) in &self.steps {
            if n < *count {
                return b;
            }
            n -= count;
        }
        &self.then
    }
}

impl From<Behavior> for Rule {
    fn from(b: Behavior) -> Rule {
        Rule::always(b)
    }
}

/// Maps a delivery to a behaviour: a default rule plus per-path overrides (exact path match,
/// query string ignored). Counters restart whenever a plan is installed ([`Receiver::set_plan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub default: Rule,
    pub paths: HashMap<String, Rule>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::always(Behavior::Status(200))
    }
}

impl From<Behavior> for Plan {
    fn from(b: Behavior) -> Plan {
        Plan::always(b)
    }
}

impl Plan {
    /// Every request gets `b`.
    pub fn always(b: Behavior) -> Plan {
        Plan {
            default: Rule::always(b),
            paths: HashMap::new(),
        }
    }

    /// `Plan::sequence(vec![(2, Status(503))], Status(200))`: the first 2 requests of each path
    /// get 503, later ones 200. Use [`Plan::global`] to count over all paths.
    pub fn sequence(steps: Vec<(u64, Behavior)>, then: Behavior) -> Plan {
        Plan {
            default: Rule::sequence(steps, then),
            paths: HashMap::new(),
        }
    }

    /// Like [`Plan::sequence`] but counted over all paths together.
    pub fn sequence_global(steps: Vec<(u64, Behavior)>, then: Behavior) -> Plan {
        Plan {
            default: Rule::sequence(steps, then).counted_globally(),
            paths: HashMap::new(),
        }
    }

    /// Makes the default rule count over all paths.
    pub fn global(mut self) -> Plan {
        self.default.global = true;
        self
    }

    /// Per-path override: `plan.with_path("/down", Behavior::Status(503))` or
    /// `plan.with_path("/flaky", Rule::sequence(vec![(1, Behavior::Reset)], Behavior::Status(200)))`.
    pub fn with_path(mut self, path: &str, rule: impl Into<Rule>) -> Plan {
        self.paths.insert(path.to_string(), rule.into());
        self
    }

    /// The rule that applies to `path`.
    pub fn rule_for(&self, path: &str) -> &Rule {
        self.paths.get(path).unwrap_or(&self.default)
    }
}

// ---------------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------------

/// One request the receiver got (control endpoints excluded).
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Arrival number since start (0-based, never reused, survives [`Receiver::clear`]).
    pub seq: u64,
    /// Connection number since start (requests on one keep-alive connection share it).
    pub conn: u64,
    pub method: String,
    /// URI path without the query string.
    pub path: String,
    pub query: Option<String>,
    pub event_id: Option<String>,
    pub attempt: Option<u32>,
    pub event_type: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub signature: Option<String>,
    /// `None` when no secret is configured or no `X-HAPP-Signature` header was sent.
    pub signature_valid: Option<bool>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the full request (headers and body) had been read.
    pub at: Instant,
    /// Same moment, unix milliseconds.
    pub at_unix_ms: u64,
    /// The behaviour chosen for this request.
    pub behavior: Behavior,
    /// Status answered; `None` for Hang/Reset, while a Sleep is pending, or when the client
    /// went away before the answer.
    pub answered: Option<u16>,
}

impl Delivery {
    pub fn is_success(&self) -> bool {
        matches!(self.answered, Some(s) if (200..300).contains(&s))
    }

    /// JSON view used by `GET /_deliveries` (body as lossy UTF-8).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "conn": self.conn,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "event_type": self.event_type,
            "content_type": self.content_type,
            "authorization": self.authorization,
            "signature": self.signature,
            "signature_valid": self.signature_valid,
            "at_ms": self.at_unix_ms,
            "behavior": format!("{:?}", self.behavior),
            "status": self.answered,
            "body_len": self.body.len(),
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

/// `"sha256=<lowercase hex HMAC-SHA256(secret, body)>"`, as Courier sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + tag.len() * 2);
    out.push_str("sha256=");
    for b in tag {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Strict check of an `X-HAPP-Signature` value: `sha256=` + 64 lowercase hex digits, compared in
/// constant time (`Mac::verify_slice`).
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(raw) = decode_lower_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&raw).is_ok()
}

fn decode_lower_hex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| Some((nib(p[0])? << 4) | nib(p[1])?))
        .collect()
}
