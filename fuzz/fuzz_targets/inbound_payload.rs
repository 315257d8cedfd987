//! `courier::ingress::payload::validate_payload` on arbitrary incoming webhook bodies (from the internet).
//!
//! Properties: never panics; an accepted body is a JSON object whose `sender_id` is a string of
//! 1-256 bytes and whose `text` is a string; every attachment has type image/file/audio and an
//! http(s) URL.
#![no_main]

use courier::ingress::payload::validate_payload;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if validate_payload(data).is_err() {
        return;
    }
    let v: Value = serde_json::from_slice(data).expect("accepted body must be JSON");
    let sid = v["sender_id"].as_str().expect("sender_id is a string");
    assert!((1..=256).contains(&sid.len()));
    assert!(v["text"].is_string());
    if let Some(list) = v.get("attachments") {
        for a in list.as_array().expect("attachments is an array") {
            assert!(matches!(a["type"].as_str(), Some("image" | "file" | "audio")));
            let url = a["url"].as_str().expect("url is a string");
            assert!(url.starts_with("https://") || url.starts_with("http://"));
        }
    }
});
