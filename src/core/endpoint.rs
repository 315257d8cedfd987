//! Endpoint settings with one home: the id rules, the `PUT /v1/endpoints/{id}` body, its
//! validation (URL with the HTTPS rule, timeout and retry schedule as `Duration`s within their
//! bounds, `max_in_flight`, `max_backlog`, secret and password as [`Secret`]s), the merge of an
//! update over the current settings, and the conversion to and from the stored
//! [`EndpointConfig`]. Shared by the admin API, the CLI and the fuzz targets.
//!
//! Validation runs in a fixed order (JSON, url, secret, password, timeout, retry schedule,
//! `max_in_flight`, `max_backlog`); the first rule broken is the answer. Every refusal is a [`SpecError`] with
//! the stable code and the message of the API contract.

use std::time::Duration;

use serde::Deserialize;

use crate::core::duration;
use crate::core::model::{
    DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT, EndpointConfig, EndpointSecurity,
};
use crate::core::retry::MIN_RETRY_DELAY;
use crate::core::secret::Secret;

/// Longest attempt timeout.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Most entries of a retry schedule.
pub const RETRY_ENTRIES_MAX: usize = 32;
/// Longest wait of a retry schedule entry (the shortest is [`MIN_RETRY_DELAY`]).
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(24 * 3600);
/// Largest `max_in_flight`.
pub const MAX_IN_FLIGHT_MAX: u32 = 1000;
/// `max_in_flight` of a new endpoint that does not set it (strict order).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1;
/// Largest `max_backlog` an endpoint may set (the smallest is 1).
pub const MAX_BACKLOG_MAX: u64 = 1_000_000_000;
/// Longest secret or password, in bytes.
pub const SECRET_MAX: usize = 1024;

/// The rule of endpoint and channel ids, as said in refusals.
pub const ID_RULE: &str = "1-64 characters of A-Z a-z 0-9 _ . - (not . or ..)";

/// The example body of the endpoint refusals' hint.
const BODY_HINT: &str = r#"send {"url": "https://…", "secret": "…", "timeout": "5s", "retry_schedule": ["5s","15s","60s"], "max_in_flight": 1}; on update only the fields to change"#;
/// The hint of a refused URL.
const URL_HINT: &str = "give an absolute URL such as https://api.acme.io/happ/chat";
/// The hint of `HTTPS_REQUIRED`.
const HTTPS_HINT: &str = "install a TLS certificate (or put nginx/Caddy in front); start courier with --allow-http only for local development";

/// Endpoint (and channel) ids: 1-64 chars of `[A-Za-z0-9_.-]`, except `.` and `..`, which no
/// HTTP client can address (they are dot-segments of a path, removed before the request is sent).
pub fn valid_endpoint_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Why settings (of an endpoint or a channel) were refused. Never holds a secret: messages name
/// the rule, not the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The body is not the expected JSON object (400 `INVALID_JSON`), with an example body.
    Malformed { message: String, hint: &'static str },
    /// A value breaks its rule (422 with `code`); `hint` when the code's catalogued fix is not
    /// specific enough.
    Invalid {
        code: &'static str,
        message: String,
        hint: Option<&'static str>,
    },
    /// A channel names an endpoint id that no endpoint can have (404 `ENDPOINT_NOT_FOUND`).
    UnknownEndpoint(String),
}

impl SpecError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "INVALID_JSON",
            Self::Invalid { code, .. } => code,
            Self::UnknownEndpoint(_) => "ENDPOINT_NOT_FOUND",
        }
    }

    /// The sentence of the refusal (for `UnknownEndpoint`, the API's `ENDPOINT_NOT_FOUND` one).
    pub fn message(&self) -> String {
        match self {
            Self::Malformed { message, .. } | Self::Invalid { message, .. } => message.clone(),
            Self::UnknownEndpoint(id) => format!("endpoint {id:?} does not exist"),
        }
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

/// Distinguishes a missing field (`None`) from an explicit `null` (`Some(None)`).
pub fn explicit<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?))
}

/// serde's message without any quoted input (which might be a secret). serde renders an
/// offending string as `string "<raw text>"` — raw, so it may itself hold quotes — followed by
/// `, expected …` or ` at line …`; everything between is cut.
pub fn redact_serde(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let Some(start) = s.find("string \"") else {
        return s;
    };
    let open = start + "string \"".len();
    let tail = s[open..]
        .rfind("\", expected")
        .or_else(|| s[open..].rfind("\" at line"))
        .map(|i| &s[open + i + 1..])
        .unwrap_or("");
    format!("{}…\"{tail}", &s[..open])
}

/// What kind of destination an endpoint delivers to. The stored configuration has no such field
/// yet: every stored endpoint is a `Webhook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DestinationKind {
    /// Signed HTTPS POSTs to the endpoint's URL.
    #[default]
    Webhook,
}

/// An endpoint's URL: the text as stored and shown (scheme in lowercase), and its parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    text: String,
    uri: http::Uri,
}

impl EndpointUrl {
    /// A URL given by the operator: checked by [`validate_url`]; the scheme (case-insensitive,
    /// RFC 3986) is kept in its canonical lowercase form.
    pub fn parse(url: &str, allow_http: bool) -> Result<Self, SpecError> {
        let uri = validate_url(url, allow_http)?;
        let text = match url.split_once("://") {
            Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
            None => url.to_string(),
        };
        Ok(Self { text, uri })
    }

    /// A URL as stored (checked when it was set): parsed only, the rules of the day are not
    /// applied again (an update that leaves the URL alone keeps it).
    pub fn stored(url: &str) -> Result<Self, SpecError> {
        let uri = url.parse().map_err(|_| bad_url("url does not parse"))?;
        Ok(Self {
            text: url.to_string(),
            uri,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }
}

fn bad_url(message: &str) -> SpecError {
    SpecError::Invalid {
        code: "INVALID_URL",
        message: message.to_string(),
        hint: Some(URL_HINT),
    }
}

/// Checks an endpoint URL: absolute, https (http only with `--allow-http`), with a host and
/// without credentials; answers its parse.
pub fn validate_url(url: &str, allow_http: bool) -> Result<http::Uri, SpecError> {
    let uri: http::Uri = url.parse().map_err(|_| bad_url("url does not parse"))?;
    let Some(auth) = uri.authority() else {
        return Err(bad_url("url has no host"));
    };
    if auth.as_str().contains('@') {
        return Err(bad_url(
            "url must not carry credentials; use \"password\" instead",
        ));
    }
    if auth.host().is_empty() {
        return Err(bad_url("url has no host"));
    }
    // The http crate accepts any characters after the colon and hyper then falls back to the
    // default port, so `https://api:8443x/` would quietly go to 443: check the port here.
    let after_host = match auth.as_str().rfind(']') {
        Some(i) => &auth.as_str()[i + 1..],
        None => auth.as_str(),
    };
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(bad_url("url port must be a number from 1 to 65535"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if allow_http => Ok(uri),
        Some("http") => Err(SpecError::Invalid {
            code: "HTTPS_REQUIRED",
            message: "endpoint URLs must use https://".into(),
            hint: Some(HTTPS_HINT),
        }),
        _ => Err(bad_url("url scheme must be https")),
    }
}

/// An attempt timeout: a duration from 1ms to [`TIMEOUT_MAX`].
pub fn parse_timeout(text: &str) -> Result<Duration, SpecError> {
    let d = duration::parse(text)
        .map_err(|e| SpecError::invalid("INVALID_TIMEOUT", format!("timeout: {e}")))?;
    if d.is_zero() || d > TIMEOUT_MAX {
        return Err(SpecError::invalid(
            "INVALID_TIMEOUT",
            format!(
                "timeout must be between 1ms and {}",
                duration::format(TIMEOUT_MAX)
            ),
        ));
    }
    Ok(d)
}

/// A retry schedule: at most [`RETRY_ENTRIES_MAX`] durations, each from [`MIN_RETRY_DELAY`] to
/// [`RETRY_DELAY_MAX`]; empty means no retries. (The CLI splits its comma list, then calls this.)
pub fn parse_retry_schedule<S: AsRef<str>>(list: &[S]) -> Result<Vec<Duration>, SpecError> {
    if list.len() > RETRY_ENTRIES_MAX {
        return Err(SpecError::invalid(
            "INVALID_RETRY_SCHEDULE",
            format!("retry_schedule has at most {RETRY_ENTRIES_MAX} entries"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let s = s.as_ref();
        let d = duration::parse(s).map_err(|e| {
            SpecError::invalid("INVALID_RETRY_SCHEDULE", format!("retry_schedule: {e}"))
        })?;
        if d < MIN_RETRY_DELAY || d > RETRY_DELAY_MAX {
            return Err(SpecError::invalid(
                "INVALID_RETRY_SCHEDULE",
                format!(
                    "retry_schedule entries are from {} to {} (got {s:?})",
                    duration::format(MIN_RETRY_DELAY),
                    duration::format(RETRY_DELAY_MAX)
                ),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// A signing secret (of an endpoint or a channel): 1 to [`SECRET_MAX`] bytes.
pub fn check_secret(secret: &Secret) -> Result<(), SpecError> {
    if secret.is_empty() || secret.len() > SECRET_MAX {
        return Err(SpecError::invalid(
            "INVALID_SECRET",
            format!("secret must be 1-{SECRET_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A bearer password: 1 to [`SECRET_MAX`] printable ASCII characters (it goes in a header).
pub fn check_password(password: &Secret) -> Result<(), SpecError> {
    if password.is_empty()
        || password.len() > SECRET_MAX
        || !password.expose().bytes().all(|c| (0x20..0x7f).contains(&c))
    {
        return Err(SpecError::invalid(
            "INVALID_PASSWORD",
            format!("password must be 1-{SECRET_MAX} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// `max_in_flight`: 1 to [`MAX_IN_FLIGHT_MAX`].
pub fn check_max_in_flight(n: u32) -> Result<(), SpecError> {
    if !(1..=MAX_IN_FLIGHT_MAX).contains(&n) {
        return Err(SpecError::invalid(
            "INVALID_MAX_IN_FLIGHT",
            format!("max_in_flight must be 1-{MAX_IN_FLIGHT_MAX} (1 keeps strict order)"),
        ));
    }
    Ok(())
}

/// An endpoint's own `max_backlog`: 1 to [`MAX_BACKLOG_MAX`] events.
pub fn check_max_backlog(n: u64) -> Result<(), SpecError> {
    if !(1..=MAX_BACKLOG_MAX).contains(&n) {
        return Err(SpecError::invalid(
            "INVALID_MAX_BACKLOG",
            format!(
                "max_backlog must be 1-{MAX_BACKLOG_MAX} events (null: the daemon's --max-backlog)"
            ),
        ));
    }
    Ok(())
}

/// `PUT /v1/endpoints/{id}` body. Omitted fields keep their current value on update (defaults on
/// create; `url` is required then); `"secret": null` / `"password": null` remove them, and
/// `"max_backlog": null` goes back to the daemon's `--max-backlog`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    pub secret: Option<Option<Secret>>,
    #[serde(default, deserialize_with = "explicit")]
    pub password: Option<Option<Secret>>,
    pub timeout: Option<String>,
    pub retry_schedule: Option<Vec<String>>,
    pub max_in_flight: Option<u32>,
    #[serde(default, deserialize_with = "explicit")]
    pub max_backlog: Option<Option<u64>>,
}

impl EndpointBody {
    /// Reads the JSON body; serde's message is redacted of any quoted input.
    pub fn parse(body: &[u8]) -> Result<Self, SpecError> {
        serde_json::from_slice(body).map_err(|e| SpecError::Malformed {
            message: format!("endpoint body: {}", redact_serde(&e)),
            hint: BODY_HINT,
        })
    }
}

/// An endpoint's settings, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub destination: DestinationKind,
    pub url: EndpointUrl,
    pub secret: Option<Secret>,
    pub password: Option<Secret>,
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub max_in_flight: u32,
    /// Most pending events (`None`: the daemon's `--max-backlog`).
    pub max_backlog: Option<u64>,
    /// Signature scheme, secret in rotation, client certificate.
    pub security: EndpointSecurity,
}

/// Whole milliseconds of a duration (every bound here fits in `u64`).
fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl EndpointSpec {
    /// Validates `body` merged over `current` (the stored settings on update; `None` creates).
    pub fn merge(
        body: EndpointBody,
        current: Option<&EndpointConfig>,
        allow_http: bool,
    ) -> Result<Self, SpecError> {
        let url = match (body.url, current) {
            (Some(u), _) => EndpointUrl::parse(&u, allow_http)?,
            (None, Some(c)) => EndpointUrl::stored(&c.url)?,
            (None, None) => {
                return Err(SpecError::Malformed {
                    message: "endpoint body: \"url\" is required to create an endpoint".into(),
                    hint: BODY_HINT,
                });
            }
        };
        let secret = match body.secret {
            None => current.and_then(|c| c.secret.clone()),
            Some(v) => v,
        };
        if let Some(s) = &secret {
            check_secret(s)?;
        }
        let password = match body.password {
            None => current.and_then(|c| c.password.clone()),
            Some(v) => v,
        };
        if let Some(p) = &password {
            check_password(p)?;
        }
        let timeout = match &body.timeout {
            None => current.map_or(DEFAULT_TIMEOUT, |c| Duration::from_millis(c.timeout_ms)),
            Some(t) => parse_timeout(t)?,
        };
        let retry_schedule = match &body.retry_schedule {
            None => current.map_or_else(
                || DEFAULT_RETRY_SCHEDULE.to_vec(),
                |c| stored_schedule(&c.retry_schedule_ms),
            ),
            Some(list) => parse_retry_schedule(list)?,
        };
        let max_in_flight = body
            .max_in_flight
            .or(current.map(|c| c.max_in_flight))
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        check_max_in_flight(max_in_flight)?;
        let max_backlog = match body.max_backlog {
            None => current.and_then(|c| c.max_backlog),
            Some(v) => v,
        };
        if let Some(n) = max_backlog {
            check_max_backlog(n)?;
        }
        let security = current.map(|c| c.security.clone()).unwrap_or_default();
        Ok(Self {
            destination: DestinationKind::Webhook,
            url,
            secret,
            password,
            timeout,
            retry_schedule,
            max_in_flight,
            max_backlog,
            security,
        })
    }

    /// The typed view of stored settings (checked when they were set; only the URL is parsed
    /// again).
    pub fn from_config(c: &EndpointConfig) -> Result<Self, SpecError> {
        Ok(Self {
            destination: DestinationKind::Webhook,
            url: EndpointUrl::stored(&c.url)?,
            secret: c.secret.clone(),
            password: c.password.clone(),
            timeout: Duration::from_millis(c.timeout_ms),
            retry_schedule: stored_schedule(&c.retry_schedule_ms),
            max_in_flight: c.max_in_flight,
            max_backlog: c.max_backlog,
            security: c.security.clone(),
        })
    }

    /// The stored shape.
    pub fn into_config(self) -> EndpointConfig {
        EndpointConfig {
            url: self.url.text,
            secret: self.secret,
            password: self.password,
            timeout_ms: ms(self.timeout),
            retry_schedule_ms: self.retry_schedule.into_iter().map(ms).collect(),
            max_in_flight: self.max_in_flight,
            max_backlog: self.max_backlog,
            security: self.security,
        }
    }
}

fn stored_schedule(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|ms| Duration::from_millis(*ms)).collect()
}

/// Validates a `PUT /v1/endpoints/{id}` body merged over `current` into the stored shape.
pub fn endpoint_config(
    body: &[u8],
    current: Option<&EndpointConfig>,
    allow_http: bool,
) -> Result<EndpointConfig, SpecError> {
    EndpointSpec::merge(EndpointBody::parse(body)?, current, allow_http)
        .map(EndpointSpec::into_config)
}

#[cfg(test)]
mod tests;
