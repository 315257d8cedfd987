//! The on-disk event record: a fixed 12-byte header written by our code, postcard metadata, and
//! the body exactly as received.
//!
//! | offset | size | field                                                        |
//! |--------|------|--------------------------------------------------------------|
//! | 0      | 1    | format version (1)                                           |
//! | 1      | 1    | flags (0; reserved)                                          |
//! | 2      | 2    | metadata length, little endian                               |
//! | 4      | 4    | body length, little endian                                   |
//! | 8      | 4    | CRC-32 (IEEE) of bytes 0..8, the metadata and the body, LE   |
//! | 12     | m    | [`EventMeta`], postcard                                      |
//! | 12 + m | b    | body                                                         |
//!
//! Decoding checks the version, that the lengths add up to the record's size exactly, and the
//! checksum, before it looks at the metadata. A corrupt record is an error, never a panic.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The only format version written today.
pub const VERSION: u8 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;

/// What we keep about an event besides its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// `evt_...`, the same on every attempt.
    pub id: String,
    /// When the event was made durable, unix ms.
    pub enqueued_at_ms: u64,
    /// Passed through to the receiver.
    pub content_type: String,
    /// `X-HAPP-Event` when the producer gave one.
    pub event_type: Option<String>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub meta: EventMeta,
    pub body: Bytes,
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {0} bytes, shorter than its header")]
    TooShort(usize),
    #[error("record format version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("record lengths do not add up: header says {expected} bytes, record has {actual}")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("record checksum mismatch")]
    Checksum,
    #[error("record metadata does not decode")]
    Meta,
    #[error("record metadata is too large ({0} bytes)")]
    MetaTooLarge(usize),
    #[error("record body is too large ({0} bytes)")]
    BodyTooLarge(usize),
}

/// Encodes a record.
pub fn encode(meta: &EventMeta, body: &[u8]) -> Result<Vec<u8>, RecordError> {
    let m = postcard::to_stdvec(meta).map_err(|_| RecordError::Meta)?;
    let mlen = u16::try_from(m.len()).map_err(|_| RecordError::MetaTooLarge(m.len()))?;
    let blen = u32::try_from(body.len()).map_err(|_| RecordError::BodyTooLarge(body.len()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + m.len() + body.len());
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&mlen.to_le_bytes());
    out.extend_from_slice(&blen.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..8]);
    h.update(&m);
    h.update(body);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&m);
    out.extend_from_slice(body);
    Ok(out)
}

/// Decodes and verifies a record.
pub fn decode(buf: &[u8]) -> Result<Record, RecordError> {
    let (meta, body) = split(buf)?;
    let meta: EventMeta = postcard::from_bytes(meta).map_err(|_| RecordError::Meta)?;
    Ok(Record {
        meta,
        body: Bytes::copy_from_slice(body),
    })
}

/// When the event of a record was accepted, read from its metadata without checking the
/// body's checksum (retention and back-fill look at many records and need only this; a record
/// whose header or metadata does not read answers `None`).
pub fn enqueued_at(buf: &[u8]) -> Option<u64> {
    if buf.len() < HEADER_LEN || buf[0] != VERSION {
        return None;
    }
    let mlen = u16::from_le_bytes([buf[2], buf[3]]) as usize;
    let meta = buf.get(HEADER_LEN..HEADER_LEN + mlen)?;
    postcard::from_bytes::<EventMeta>(meta)
        .ok()
        .map(|m| m.enqueued_at_ms)
}

/// Checks the header and checksum; returns the metadata and body slices.
fn split(buf: &[u8]) -> Result<(&[u8], &[u8]), RecordError> {
    if buf.len() < HEADER_LEN {
        return Err(RecordError::TooShort(buf.len()));
    }
    if buf[0] != VERSION {
        return Err(RecordError::UnsupportedVersion(buf[0]));
    }
    let mlen = u16::from_le_bytes([buf[2], buf[3]]) as usize;
    let blen = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let expected = HEADER_LEN + mlen + blen;
    if expected != buf.len() {
        return Err(RecordError::LengthMismatch {
            expected,
            actual: buf.len(),
        });
    }
    let stored = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..8]);
    h.update(&buf[HEADER_LEN..]);
    if h.finalize() != stored {
        return Err(RecordError::Checksum);
    }
    Ok((
        &buf[HEADER_LEN..HEADER_LEN + mlen],
        &buf[HEADER_LEN + mlen..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> EventMeta {
        EventMeta {
            id: "evt_01JD0000000000000000000000".into(),
            enqueued_at_ms: 1_795_240_146_123,
            content_type: "application/json".into(),
            event_type: Some("message.received".into()),
        }
    }

    #[test]
    fn round_trip() {
        let body = br#"{"sender_id":"user_42","text":"Hello!"}"#;
        let enc = encode(&meta(), body).unwrap();
        assert_eq!(enc[0], VERSION);
        let dec = decode(&enc).unwrap();
        assert_eq!(dec.meta, meta());
        assert_eq!(&dec.body[..], body);
    }

    #[test]
    fn round_trip_empty_and_binary_bodies() {
        for body in [&b""[..], &[0u8, 255, 10, 13][..]] {
            let enc = encode(&meta(), body).unwrap();
            assert_eq!(&decode(&enc).unwrap().body[..], body);
        }
    }

    #[test]
    fn rejects_every_single_bit_flip() {
        let enc = encode(&meta(), b"hello world").unwrap();
        for i in 0..enc.len() {
            for bit in 0..8 {
                let mut bad = enc.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "flip at byte {i} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn rejects_truncation_and_extension() {
        let enc = encode(&meta(), b"hello").unwrap();
        for n in 0..enc.len() {
            assert!(decode(&enc[..n]).is_err(), "truncated to {n} accepted");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer),
            Err(RecordError::LengthMismatch { .. })
        ));
        assert_eq!(decode(&[]), Err(RecordError::TooShort(0)));
    }

    #[test]
    fn rejects_unknown_version() {
        let mut enc = encode(&meta(), b"x").unwrap();
        enc[0] = 9;
        assert_eq!(decode(&enc), Err(RecordError::UnsupportedVersion(9)));
    }

    #[test]
    fn checksummed_garbage_metadata_is_an_error() {
        // A well-formed header over metadata bytes that are not postcard EventMeta.
        let m = [0xFFu8; 5];
        let mut out = vec![VERSION, 0, 5, 0, 0, 0, 0, 0];
        let mut h = crc32fast::Hasher::new();
        h.update(&out);
        h.update(&m);
        out.extend_from_slice(&h.finalize().to_le_bytes());
        out.extend_from_slice(&m);
        assert_eq!(decode(&out), Err(RecordError::Meta));
    }
}
