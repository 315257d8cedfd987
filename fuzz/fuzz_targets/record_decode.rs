//! `courier::core::record::decode` on arbitrary bytes (what a corrupt journal could hold).
//!
//! Properties:
//! 1. `decode(data)` never panics; when it succeeds, re-encoding the result decodes to the same.
//! 2. Round trip: an `EventMeta` + body derived from `data` survive `decode(encode(..))`.
//! 3. One single-byte mutation (position and XOR value chosen from `data`) of that valid
//!    encoding is rejected.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use courier::core::record::{EventMeta, Record, decode, encode};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    id: String,
    enqueued_at_ms: u64,
    content_type: String,
    event_type: Option<String>,
    body: Vec<u8>,
    /// Which byte of the encoded record to change.
    pos: usize,
    /// XORed into that byte; 0 is replaced by 1 so the byte always changes.
    xor: u8,
}

fuzz_target!(|data: &[u8]| {
    // 1. Raw bytes straight into the decoder.
    if let Ok(rec) = decode(data) {
        let again = encode(&rec.meta, &rec.body).expect("a decoded record re-encodes");
        assert_eq!(
            decode(&again).as_ref(),
            Ok(&rec),
            "re-encoding changed the record"
        );
    }

    // 2. The same bytes read as a structured record.
    let Ok(inp) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let meta = EventMeta {
        id: inp.id,
        enqueued_at_ms: inp.enqueued_at_ms,
        content_type: inp.content_type,
        event_type: inp.event_type,
    };
    // Only metadata over 64 KiB can fail to encode; the fuzzer's inputs never get there.
    let Ok(enc) = encode(&meta, &inp.body) else {
        return;
    };
    let dec = decode(&enc).expect("a freshly encoded record decodes");
    assert_eq!(
        dec,
        Record {
            meta,
            body: inp.body.into()
        },
        "round trip changed the record"
    );

    // 3. One single-byte mutation must be caught (version, length or CRC-32 check).
    let mut bad = enc;
    let i = inp.pos % bad.len();
    bad[i] ^= if inp.xor == 0 { 1 } else { inp.xor };
    assert!(
        decode(&bad).is_err(),
        "byte {i} of a valid record changed (xor {:#04x}) and it still decoded",
        if inp.xor == 0 { 1 } else { inp.xor }
    );
});
