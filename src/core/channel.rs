//! Ingress channel settings with one home: the `PUT /v1/channels/{id}` body, its validation
//! (endpoint id, secret as a [`Secret`], rate and burst within their bounds), the merge of an
//! update over the current settings, and the conversion to and from the stored
//! [`ChannelConfig`]. Shared by the admin API, the CLI and the fuzz targets. Channel ids follow
//! the endpoint id rules ([`valid_endpoint_id`]).

use serde::Deserialize;

use crate::core::endpoint::{SpecError, check_secret, explicit, redact_serde, valid_endpoint_id};
use crate::core::model::{ChannelConfig, ChannelSecurity, DEFAULT_CHANNEL_RATE};
use crate::core::secret::Secret;

/// Largest accepted channel rate (and burst).
pub const RATE_MAX: u32 = 100_000;

/// The example body of the channel refusals' hint.
const BODY_HINT: &str = r#"send {"endpoint": "acme", "secret": "…", "rate_limit": 100}; on update only the fields to change"#;

/// `PUT /v1/channels/{id}` body. On update every omitted field keeps its current value;
/// `"secret": null` removes the secret (nothing else does).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    pub endpoint: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    pub secret: Option<Option<Secret>>,
    pub rate_limit: Option<u32>,
    pub burst: Option<u32>,
}

impl ChannelBody {
    /// Reads the JSON body; serde's message is redacted of any quoted input.
    pub fn parse(body: &[u8]) -> Result<Self, SpecError> {
        serde_json::from_slice(body).map_err(|e| SpecError::Malformed {
            message: format!("channel body: {}", redact_serde(&e)),
            hint: BODY_HINT,
        })
    }
}

/// A channel's settings, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The endpoint accepted messages are enqueued to (a valid id; whether it exists is the
    /// journal's check).
    pub endpoint: String,
    pub secret: Option<Secret>,
    /// Requests a second.
    pub rate_limit: u32,
    /// Requests accepted in a burst (defaults to the rate).
    pub burst: u32,
    /// Inbound secret in rotation, timestamp tolerance.
    pub security: ChannelSecurity,
}

impl ChannelSpec {
    /// Validates `body` merged over `current` (the stored settings on update; `None` creates).
    pub fn merge(body: ChannelBody, current: Option<&ChannelConfig>) -> Result<Self, SpecError> {
        let endpoint = match (body.endpoint, current) {
            (Some(e), _) => e,
            (None, Some(c)) => c.endpoint.clone(),
            (None, None) => {
                return Err(SpecError::Malformed {
                    message: "channel body: \"endpoint\" is required to create a channel".into(),
                    hint: BODY_HINT,
                });
            }
        };
        if !valid_endpoint_id(&endpoint) {
            return Err(SpecError::UnknownEndpoint(endpoint));
        }
        let secret = match body.secret {
            None => current.and_then(|c| c.secret.clone()),
            Some(v) => v,
        };
        if let Some(s) = &secret {
            check_secret(s)?;
        }
        let rate_limit = body
            .rate_limit
            .or(current.map(|c| c.rate_limit))
            .unwrap_or(DEFAULT_CHANNEL_RATE);
        let burst = body
            .burst
            .or(current.map(|c| c.burst))
            .unwrap_or(rate_limit);
        if !(1..=RATE_MAX).contains(&rate_limit) || !(1..=RATE_MAX).contains(&burst) {
            return Err(SpecError::invalid(
                "INVALID_RATE_LIMIT",
                format!("rate_limit and burst must be 1-{RATE_MAX}"),
            ));
        }
        let security = current.map(|c| c.security.clone()).unwrap_or_default();
        Ok(Self {
            endpoint,
            secret,
            rate_limit,
            burst,
            security,
        })
    }

    /// The typed view of stored settings.
    pub fn from_config(c: &ChannelConfig) -> Self {
        Self {
            endpoint: c.endpoint.clone(),
            secret: c.secret.clone(),
            rate_limit: c.rate_limit,
            burst: c.burst,
            security: c.security.clone(),
        }
    }

    /// The stored shape.
    pub fn into_config(self) -> ChannelConfig {
        ChannelConfig {
            endpoint: self.endpoint,
            secret: self.secret,
            rate_limit: self.rate_limit,
            burst: self.burst,
            security: self.security,
        }
    }
}

/// Validates a `PUT /v1/channels/{id}` body merged over `current` into the stored shape.
pub fn channel_config(
    body: &[u8],
    current: Option<&ChannelConfig>,
) -> Result<ChannelConfig, SpecError> {
    ChannelSpec::merge(ChannelBody::parse(body)?, current).map(ChannelSpec::into_config)
}

#[cfg(test)]
mod tests;
