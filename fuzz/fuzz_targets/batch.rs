//! `courier::api::parse_batch` on arbitrary NDJSON batches (`POST /v1/events/batch`), with a
//! 1024-byte body limit.
//!
//! Properties: never panics; when Ok: at least one and at most `BATCH_MAX_EVENTS` requests, one
//! per non-blank line; every body is at most 1024 bytes; every endpoint id is valid; every
//! event id is well formed and unique; every request's encoded record decodes to its own
//! metadata and body.
#![no_main]

use std::collections::HashSet;

use courier::api::{BATCH_MAX_EVENTS, parse_batch, valid_endpoint_id};
use courier::core::ids::{IdGen, looks_like_event_id};
use courier::core::record::decode;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(reqs) = parse_batch(data, MAX_BODY, &IdGen::new(), 0) else {
        return;
    };
    assert!(!reqs.is_empty(), "an accepted batch is empty");
    assert!(reqs.len() <= BATCH_MAX_EVENTS);
    let lines = data
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    assert_eq!(reqs.len(), lines, "events != non-blank lines");
    let mut ids = HashSet::new();
    for r in &reqs {
        assert!(
            r.body.len() <= MAX_BODY,
            "body of {} bytes accepted",
            r.body.len()
        );
        assert!(valid_endpoint_id(&r.endpoint), "endpoint {:?}", r.endpoint);
        assert!(looks_like_event_id(&r.meta.id), "event id {:?}", r.meta.id);
        assert!(
            ids.insert(r.meta.id.clone()),
            "duplicate event id {}",
            r.meta.id
        );
        assert_eq!(r.meta.enqueued_at_ms, 0);
        let rec = decode(&r.record).expect("the request's record decodes");
        assert_eq!(&rec.meta, &*r.meta);
        assert_eq!(rec.body, r.body);
    }
});
