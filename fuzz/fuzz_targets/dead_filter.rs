//! `courier::core::dead_filter::{parse_rfc3339, Cursor::decode}` on arbitrary text: the
//! `since`/`until` and `cursor` of the dead-letter routes.
//!
//! Properties: never panics; a parsed time renders back (RFC 3339, UTC, milliseconds) to a
//! text that parses to the same instant; a decoded cursor encodes back to one that decodes to
//! itself, for the kind of walk it was accepted for only.
#![no_main]

use courier::core::dead_filter::{Cursor, parse_rfc3339};
use courier::core::timefmt::rfc3339;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(ms) = parse_rfc3339(text) {
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{text:?}");
    }
    for by_endpoint in [true, false] {
        if let Ok(c) = Cursor::decode(text, by_endpoint) {
            assert_eq!(Cursor::decode(&c.encode(), by_endpoint), Ok(c.clone()));
            assert!(Cursor::decode(&c.encode(), !by_endpoint).is_err());
        }
    }
});
