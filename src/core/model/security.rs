//! The security settings of endpoints and channels as stored: the signature scheme, a secret
//! being rotated out with its expiry, the client certificate of mTLS, the inbound timestamp
//! tolerance. Stored as trailing fields of [`super::EndpointRecord`] and
//! [`super::ChannelRecord`] (their fourth and second shapes), so older rows decode with the
//! defaults.

use serde::{Deserialize, Serialize};

use crate::core::secret::Secret;

/// How an endpoint's deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureMode {
    /// `X-HAPP-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (the v1 contract).
    #[default]
    Happ,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`
    /// over `"{id}.{timestamp}.{body}"`, with a `whsec_<base64 key>` secret.
    Standard,
}

impl SignatureMode {
    /// The name used in settings and views (`"happ"`, `"standard"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMode::Happ => "happ",
            SignatureMode::Standard => "standard",
        }
    }
}

/// A secret being rotated out: deliveries also carry its signature, and inbound verification
/// also accepts it, until `expires_ms` (unix ms); then it is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: Secret,
    pub expires_ms: u64,
}

impl PreviousSecret {
    /// The previous secret while its grace lasts at `now_ms`.
    pub fn live(&self, now_ms: u64) -> Option<&Secret> {
        (now_ms < self.expires_ms).then_some(&self.secret)
    }
}

/// An endpoint's security settings (the trailing field of the fourth endpoint shape).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndpointSecurity {
    /// The signature scheme of deliveries.
    pub signature: SignatureMode,
    /// The secret that signed before the last rotation, during its grace.
    pub previous_secret: Option<PreviousSecret>,
    /// PEM certificate chain presented to the receiver (mTLS), as the operator gave its path.
    pub client_cert_file: Option<String>,
    /// PEM private key of that certificate.
    pub client_key_file: Option<String>,
}

/// A channel's security settings (the trailing field of the second channel shape).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelSecurity {
    /// The inbound secret before the last rotation, accepted during its grace.
    pub previous_secret: Option<PreviousSecret>,
    /// Signed inbound requests that carry a timestamp further than this from now (ms) are
    /// refused with `STALE_SIGNATURE`; `None`: timestamps are not checked.
    pub timestamp_tolerance_ms: Option<u64>,
}
