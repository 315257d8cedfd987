//! The one way events enter Courier, whichever surface they come through (`POST
//! /v1/endpoints/{id}/events`, the NDJSON batch, the inbound webhook ingress): the stopping
//! check, the event id and [`EventMeta`], the record encoding, the idempotency key and its
//! fingerprint ([`EnqueueReq::new`]), the journal call, and the accepted/duplicate answer.
//!
//! The surfaces only read their HTTP request into a [`NewEvent`] and render the answer in their
//! own shape. Features that create events from other events go here too, so that they have one
//! home and every surface gets them: fan-out (one request enqueued to the endpoints subscribed
//! to its event type) and back-fill (events re-created for an endpoint from a time range).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::StatusCode;

use crate::core::ids::IdGen;
use crate::core::record::{EventMeta, RecordError};
use crate::core::timefmt::now_ms;
use crate::error::ApiError;
use crate::store::{EnqueueOk, EnqueueReq, Journal, StoreError};

/// The `Content-Type` of an event that names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";
/// The hint of the answer to a repeated `Idempotency-Key` (admin API).
pub const DUPLICATE_HINT: &str = "this Idempotency-Key was used before; this is the original event";

/// An event as a surface read it, before it has an id.
#[derive(Debug)]
pub struct NewEvent {
    pub endpoint: String,
    pub content_type: String,
    pub event_type: Option<String>,
    pub idempotency_key: Option<String>,
    /// The body, delivered byte for byte.
    pub body: Bytes,
}

/// Why an event was not accepted.
#[derive(Debug)]
pub enum IntakeError {
    /// The event cannot be encoded as a record (each surface says so in its own words).
    Record(RecordError),
    /// The journal refused it.
    Store(StoreError),
}

/// The intake: the journal, the id generator and the stopping flag, shared by the admin API
/// and the ingress.
pub struct Intake {
    journal: Arc<dyn Journal>,
    ids: IdGen,
    /// Set at shutdown: intake answers 503 `SHUTTING_DOWN`.
    stopping: AtomicBool,
}

impl Intake {
    pub fn new(journal: Arc<dyn Journal>) -> Self {
        Self {
            journal,
            ids: IdGen::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// Stops taking events (at shutdown); what is in flight still completes.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The stopping check, made before a surface reads the request's body.
    pub fn check_open(&self) -> Result<(), ApiError> {
        if self.is_stopping() {
            return Err(ApiError::shutting_down());
        }
        Ok(())
    }

    /// The id generator (for surfaces that build several requests, like the batch).
    pub fn ids(&self) -> &IdGen {
        &self.ids
    }

    /// Accepts one event; durable when this resolves.
    pub async fn enqueue(&self, ev: NewEvent) -> Result<EnqueueOk, IntakeError> {
        let req = new_request(&self.ids, now_ms(), ev).map_err(IntakeError::Record)?;
        self.journal.enqueue(req).await.map_err(IntakeError::Store)
    }

    /// Accepts every event of a batch (made by [`new_request`]), or none, in one commit.
    pub async fn enqueue_batch(&self, reqs: Vec<EnqueueReq>) -> Result<Vec<EnqueueOk>, StoreError> {
        self.journal.enqueue_batch(reqs).await
    }
}

/// Gives an event its id and metadata (enqueued at `now`) and encodes its record and, when it
/// has an `Idempotency-Key`, its fingerprint.
pub fn new_request(ids: &IdGen, now: u64, ev: NewEvent) -> Result<EnqueueReq, RecordError> {
    let meta = EventMeta {
        id: ids.next(now),
        enqueued_at_ms: now,
        content_type: ev.content_type,
        event_type: ev.event_type,
    };
    EnqueueReq::new(ev.endpoint, meta, ev.body, ev.idempotency_key)
}

/// The status of an accepted event, on every surface: `202 Accepted`, or `200 OK` for a
/// repeated `Idempotency-Key` with the same request (the answer names the original event).
/// The same key with another request is refused by the journal (409 `IDEMPOTENCY_MISMATCH`).
pub fn status_of(ok: &EnqueueOk) -> StatusCode {
    if ok.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_get_ids_metadata_and_fingerprints() {
        let ids = IdGen::new();
        let ev = |key: Option<&str>| NewEvent {
            endpoint: "acme".into(),
            content_type: DEFAULT_CONTENT_TYPE.into(),
            event_type: Some("t".into()),
            idempotency_key: key.map(str::to_string),
            body: Bytes::from_static(b"{}"),
        };
        let a = new_request(&ids, 7, ev(None)).unwrap();
        let b = new_request(&ids, 7, ev(Some("k"))).unwrap();
        assert!(a.meta.id < b.meta.id);
        assert_eq!(a.meta.enqueued_at_ms, 7);
        assert_eq!(a.fingerprint, None);
        assert!(b.fingerprint.is_some());
        let rec = crate::core::record::decode(&b.record).unwrap();
        assert_eq!(&rec.meta, &*b.meta);
        assert_eq!(&rec.body[..], b"{}");
    }

    #[test]
    fn duplicates_are_200_and_new_events_202() {
        let ok = |duplicate| EnqueueOk {
            id: "evt".into(),
            seq: 1,
            duplicate,
        };
        assert_eq!(status_of(&ok(false)), StatusCode::ACCEPTED);
        assert_eq!(status_of(&ok(true)), StatusCode::OK);
    }
}
