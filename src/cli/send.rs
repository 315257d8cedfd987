//! `courier send`: its clap definition, the checks of its header values and the one call it
//! makes through [`crate::client`].

use std::path::PathBuf;

use hyper::header::HeaderValue;

use super::input::read_payload;
use super::{ClientOpts, Failure, render};
use crate::client::EventOptions;

/// Enqueue one event for an endpoint.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// Endpoint id.
    pub endpoint: String,
    /// File holding the payload, sent byte for byte; "-" or absent reads stdin (absent only
    /// when stdin is not a terminal).
    pub file: Option<PathBuf>,
    /// Event type, delivered as X-HAPP-Event.
    #[arg(long, value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Content-Type of the payload.
    #[arg(long, value_name = "MIME", default_value = "application/json")]
    pub content_type: String,
    /// Key making retries of this send safe: the same key to the same endpoint within 24 h is
    /// not enqueued again (the original event is answered); with a different payload, event
    /// type or content type it is refused (IDEMPOTENCY_MISMATCH).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

pub(super) async fn run(opts: &ClientOpts, args: SendArgs) -> Result<(), Failure> {
    check_header("--content-type", &args.content_type)?;
    if let Some(t) = &args.event_type {
        check_header("--event-type", t)?;
    }
    if let Some(k) = &args.idempotency_key {
        check_header("--idempotency-key", k)?;
    }
    let payload = read_payload(args.file.as_deref()).await?;
    let event = EventOptions {
        content_type: Some(&args.content_type),
        event_type: args.event_type.as_deref(),
        idempotency_key: args.idempotency_key.as_deref(),
    };
    let accepted = opts
        .client()
        .send_event(&args.endpoint, payload.into(), event)
        .await
        .map_err(|e| opts.failure(e))?;
    opts.output(&accepted, render::accepted_line)
}

fn check_header(flag: &str, value: &str) -> Result<(), Failure> {
    HeaderValue::from_str(value).map(drop).map_err(|_| {
        Failure::Input(format!(
            "invalid {flag} {value:?}: must be visible ASCII without line breaks"
        ))
    })
}
