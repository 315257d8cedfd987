//! API errors: an HTTP status, a stable UPPER_SNAKE code and a sentence, rendered as
//! `{"error": {"code", "message", "hint"}}`. The hint is always the code's `fix` from the
//! catalogue ([`crate::codes`]), so `GET /v1/errors/{code}` and `courier explain` say the same;
//! what is particular to one refusal goes into the message ([`ApiError::advise`]). Messages
//! never contain secrets or payloads.

use http::StatusCode;
use serde_json::json;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// Adds advice particular to this refusal to the message (the hint stays the catalogue's
    /// fix for the code).
    pub fn advise(mut self, advice: impl AsRef<str>) -> Self {
        let advice = advice.as_ref();
        if !advice.is_empty() && self.hint() != Some(advice) {
            self.message = format!("{}; {advice}", self.message.trim_end_matches('.'));
        }
        self
    }

    /// The hint sent with the answer: the catalogue's fix for the code.
    pub fn hint(&self) -> Option<&'static str> {
        crate::codes::lookup(self.code).map(|c| c.fix)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn endpoint_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("endpoint {id:?} does not exist"),
        )
    }

    pub fn dead_letter_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "DEAD_LETTER_NOT_FOUND",
            format!("no dead letter with event id {id:?}"),
        )
    }

    pub fn channel_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "CHANNEL_NOT_FOUND",
            format!("channel {id:?} does not exist"),
        )
    }

    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the daemon is shutting down and accepts no new work",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(h) = self.hint() {
            e["hint"] = json!(h);
        }
        json!({ "error": e }).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<crate::core::endpoint::SpecError> for ApiError {
    /// Refused endpoint or channel settings: 400 for a body that is not the expected JSON, 422
    /// for a value out of its rules, 404 for a channel naming an impossible endpoint id.
    fn from(e: crate::core::endpoint::SpecError) -> Self {
        use crate::core::endpoint::SpecError as E;
        match e {
            E::Malformed { message, hint } => {
                ApiError::bad_request("INVALID_JSON", message).advise(hint)
            }
            E::Invalid {
                code,
                message,
                hint,
            } => ApiError::unprocessable(code, message).advise(hint.unwrap_or("")),
            E::UnknownEndpoint(id) => ApiError::endpoint_not_found(&id),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match e {
            E::EndpointNotFound(id) => ApiError::endpoint_not_found(&id),
            E::DeadLetterNotFound(id) => ApiError::dead_letter_not_found(&id),
            E::ChannelNotFound(id) => ApiError::channel_not_found(&id),
            E::EndpointNotEmpty { id, backlog } => ApiError::new(
                StatusCode::CONFLICT,
                "ENDPOINT_NOT_EMPTY",
                format!("endpoint {id:?} still has {backlog} undelivered events"),
            ),
            E::BacklogFull { id, limit } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "BACKLOG_FULL",
                format!(
                    "endpoint {id:?} holds {limit} undelivered events, its limit; nothing was accepted"
                ),
            ),
            E::JournalFull {
                id,
                held,
                limit,
                endpoint_bytes,
            } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_FULL",
                format!(
                    "the journal holds {held} bytes of events, at its limit of {limit} (--max-journal-bytes); endpoint {id:?} holds {endpoint_bytes} of them; the event was not accepted"
                ),
            ),
            E::WindowGone {
                id,
                retained_since_ms,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "RETENTION_EXCEEDED",
                match retained_since_ms {
                    Some(ms) => format!(
                        "endpoint {id:?} retains events accepted since {} only; retention removed that window",
                        crate::core::timefmt::rfc3339(ms)
                    ),
                    None => {
                        format!("endpoint {id:?} retains no events; retention removed that window")
                    }
                },
            ),
            E::DiskFull => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "STORAGE_FULL",
                "the data directory's disk is full; the event was not accepted",
            ),
            E::Unavailable(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_UNAVAILABLE",
                format!("storage is unavailable: {why}"),
            ),
            E::Storage(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_ERROR",
                format!("storage error: {why}; the request was not applied"),
            ),
            E::Corrupt(why) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "STORAGE_CORRUPT",
                format!("a stored record is corrupt: {why}"),
            ),
            E::NotReplayable { event_id, why } => ApiError::new(
                StatusCode::CONFLICT,
                "NOT_REPLAYABLE",
                format!(
                    "dead letter {event_id} cannot be replayed: its stored record is corrupt ({why})"
                ),
            ),
            E::IdempotencyMismatch { event_id, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_MISMATCH",
                format!(
                    "this Idempotency-Key was used within 24 h for a different request (event {event_id}); nothing was enqueued"
                ),
            ),
            E::Stopped => ApiError::shutting_down(),
            E::Internal => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "a storage read failed unexpectedly",
            ),
        }
    }
}
