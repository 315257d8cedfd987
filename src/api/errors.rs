//! `/v1/errors…`: the error catalogue of [`crate::codes`] over the API — every stable code with
//! its meaning and fix (the fix is what every error answer carries as its `hint`).

use http::StatusCode;

use super::http::{Resp, json_ok};
use crate::codes::{self, CATALOG};
use crate::error::ApiError;
use crate::views::{ErrorCatalogue, ErrorCodeView};

/// `GET /v1/errors`: the whole catalogue, grouped by kind.
pub fn list() -> Result<Resp, ApiError> {
    let errors = CATALOG.iter().map(ErrorCodeView::from).collect();
    json_ok(StatusCode::OK, &ErrorCatalogue { errors })
}

/// `GET /v1/errors/{code}`: one code (exact, any case).
pub fn get(code: &str) -> Result<Resp, ApiError> {
    let entry = codes::lookup(&code.to_ascii_uppercase()).ok_or_else(|| {
        let shown: String = code.chars().take(64).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNKNOWN_ERROR_CODE",
            format!("{shown:?} is not a code Courier produces"),
        )
    })?;
    json_ok(StatusCode::OK, &ErrorCodeView::from(entry))
}
