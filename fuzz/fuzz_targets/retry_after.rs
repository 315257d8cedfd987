//! `courier::core::retry::parse_retry_after` on arbitrary header values (from receivers' 429s).
//!
//! Properties: never panics; `Some(d)` only for 1-12 ASCII digits (after trimming), with `d`
//! exactly that many seconds; and `on_failure` caps it at the configured maximum.
#![no_main]

use std::time::Duration;

use courier::core::retry::{RetryAction, on_failure, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Some(d) = parse_retry_after(s) else {
        return;
    };
    let t = s.trim();
    assert!(
        (1..=12).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()),
        "{s:?} accepted as a delay"
    );
    assert_eq!(d.as_secs(), t.parse::<u64>().unwrap(), "{s:?} -> {d:?}");
    assert_eq!(d.subsec_nanos(), 0);
    assert_eq!(parse_retry_after(&d.as_secs().to_string()), Some(d));
    let cap = Duration::from_secs(300);
    match on_failure(&[], 0, Some(d), cap) {
        RetryAction::Retry { after, counted } => {
            assert!(after <= cap && after == d.min(cap) && !counted)
        }
        RetryAction::Dead => panic!("a Retry-After led to a dead letter"),
    }
});
