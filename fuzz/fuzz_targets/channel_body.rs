//! `courier::core::channel::channel_config` on arbitrary `PUT /v1/channels/{id}` bodies.
//!
//! Properties: never panics; an accepted config has a valid endpoint id, a secret of 1-1024
//! bytes if any, and a rate and burst within 1..=RATE_MAX; an error never quotes a `secret`
//! string of 8 bytes or more from the input (counted only when the secret's text occurs once in
//! the input: an unknown field name containing it is echoed, and that is not a leak).
#![no_main]

use courier::core::channel::{RATE_MAX, channel_config};
use courier::core::endpoint::{SECRET_MAX, valid_endpoint_id};
use courier::error::ApiError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match channel_config(data, None) {
        Ok(c) => {
            assert!(valid_endpoint_id(&c.endpoint));
            if let Some(s) = &c.secret {
                assert!((1..=SECRET_MAX).contains(&s.len()));
            }
            assert!((1..=RATE_MAX).contains(&c.rate_limit));
            assert!((1..=RATE_MAX).contains(&c.burst));
        }
        Err(e) => {
            let e = ApiError::from(e);
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(data)
                && let Some(Value::String(secret)) = o.get("secret")
                && secret.len() >= 8
                && occurrences(data, secret.as_bytes()) == 1
                && !["endpoint", "INVALID_JSON"].iter().any(|w| w.contains(secret.as_str()))
            {
                let text = format!("{}\n{}", e.message, e.hint().unwrap_or(""));
                assert!(!text.contains(secret.as_str()), "secret quoted in {text:?}");
            }
        }
    }
});

fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}
