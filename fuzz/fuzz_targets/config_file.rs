//! `courier::config::parse_file` on arbitrary text (the operator's TOML config file).
//!
//! Properties: `parse_file` never panics. When it succeeds, validating the file with default
//! flags (`Config::merge`, which only stats paths, never creates or writes anything) never
//! panics either, and an accepted config has the bounds `merge` promises.
#![no_main]

use courier::config::{Config, MAX_BODY_LIMIT, ServeArgs, parse_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = parse_file(text) else {
        return;
    };
    if let Ok(c) = Config::merge(&ServeArgs::default(), file) {
        assert!((1..=MAX_BODY_LIMIT).contains(&c.max_body_bytes));
        assert!(!c.socket.as_os_str().is_empty());
        assert!(!c.data_dir.as_os_str().is_empty());
    }
});
