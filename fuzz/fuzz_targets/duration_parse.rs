//! `courier::core::duration::parse` on arbitrary text (config values and API fields).
//!
//! Properties: never panics; when `parse(s) == Ok(d)`, then `parse(&format(d)) == Ok(d)`;
//! an accepted duration is at most 365 days (the parser's documented ceiling).
#![no_main]

use std::time::Duration;

use courier::core::duration::{format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse(s) {
        assert!(
            d <= Duration::from_secs(365 * 24 * 3600),
            "{s:?} parsed to {d:?}, above the 365 day ceiling"
        );
        let f = format(d);
        assert_eq!(
            parse(&f),
            Ok(d),
            "{s:?} -> {d:?} -> {f:?} does not round-trip"
        );
    }
});
