//! `courier::core::signing::verify` with an arbitrary secret, body and header value.
//!
//! Input layout (so seeds can be written by hand): `secret \n body \n header \n other_body`,
//! split at the first three newlines; missing parts are empty; a header that is not UTF-8 is
//! converted lossily.
//!
//! Properties: `verify` never panics; it accepts the fuzzed header only if that header is the
//! correct signature; `verify(s, b, &sign(s, b))` is true (also with surrounding whitespace and
//! with upper-case hex, both accepted by design); the same signature never verifies a different
//! body.
#![no_main]

use courier::core::signing::{sign, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let secret = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let other_body = parts.next().unwrap_or_default();

    // The fuzzed header: no panic, and accepted only if it is the right signature.
    let good = sign(secret, body);
    if verify(secret, body, &header) {
        assert_eq!(
            header.trim().to_ascii_lowercase(),
            good,
            "verify accepted a header that is not the signature"
        );
    }

    // Our own signature always verifies...
    assert!(
        good.starts_with("sha256=") && good.len() == 7 + 64,
        "{good:?}"
    );
    assert!(verify(secret, body, &good), "own signature rejected");
    assert!(
        verify(secret, body, &format!(" {good}\t")),
        "padded signature rejected"
    );
    let upper = format!("sha256={}", good["sha256=".len()..].to_ascii_uppercase());
    assert!(verify(secret, body, &upper), "upper-case hex rejected");

    // ... and never verifies another body, nor the body under another secret.
    let mut other = other_body.to_vec();
    if other == body {
        other.push(0);
    }
    assert!(
        !verify(secret, &other, &good),
        "signature verified a different body"
    );
    let mut other_secret = secret.to_vec();
    other_secret.push(b'x');
    // HMAC pads short keys with zeros, so `k` and `k\0` are the same key; appending a non-zero
    // byte always changes a key of at most 63 bytes. Longer keys are hashed first.
    assert!(
        !verify(&other_secret, body, &good),
        "signature verified under a different secret"
    );
});
