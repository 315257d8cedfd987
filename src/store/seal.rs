//! Sealing of journal rows at rest: a [`KeyRing`] of master keys and the AEAD that seals and
//! opens one row (XChaCha20-Poly1305, a random 24-byte nonce per seal). Pure: no file, no
//! clock; the key's sources (flag, environment, the data dir's `master.key`) are [`key_file`].
//!
//! A sealed row is
//!
//! | bytes | what |
//! |-------|------|
//! | 1     | [`SEALED_V1`], the format's version |
//! | 8     | the key id: the first 8 bytes of SHA-256 of the key that sealed it |
//! | 24    | the nonce |
//! | n+16  | the row's plain bytes, encrypted, then the 16-byte tag |
//!
//! The associated data is the table's name and the row's key, so a sealed row moved to another
//! key or table fails to open, as does a row with any byte changed: one AEAD is both the
//! secrecy of the secrets inside and the row's checksum. The ring's first key seals; every key
//! of the ring opens (rotation: rows under a later key are resealed under the first at open).

pub mod key_file;

use base64::Engine;
use chacha20poly1305::aead::{AeadCore, AeadInPlace, KeyInit, OsRng};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The first byte of a sealed row (format version 1).
pub const SEALED_V1: u8 = 0xA1;
/// Bytes of a master key.
pub const KEY_LEN: usize = 32;
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a sealed row adds to its plain bytes.
pub const OVERHEAD: usize = 1 + ID_LEN + NONCE_LEN + TAG_LEN;

/// A key's id: the first 8 bytes of SHA-256 of the key (shown as 16 hex digits). It names the
/// key a row needs without telling anything about the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; ID_LEN]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// One master key, ready to seal and open.
struct MasterKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

/// The master keys, in order: the first seals, all open. `Debug` shows the key ids only.
pub struct KeyRing {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("ids", &self.ids()).finish()
    }
}

/// Why a text is not a key ring (it never shows the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("it holds no key (one base64 key of 32 bytes per line)")]
    Empty,
    #[error("line {line} is not base64")]
    NotBase64 { line: usize },
    #[error("line {line} is {len} bytes once decoded, not 32")]
    WrongLength { line: usize, len: usize },
    #[error("line {line} repeats the key of line {first}")]
    Repeated { line: usize, first: usize },
}

/// Why a sealed row does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short, or not of a format this build knows.
    #[error("it is not a sealed row")]
    NotSealed,
    /// Sealed under a key the ring does not hold.
    #[error("it is sealed under master key {0}, which the key ring does not hold")]
    UnknownKey(KeyId),
    /// The tag does not match: a changed byte, or a row moved to another key or table.
    #[error("it fails its authentication check (changed on disk, or moved)")]
    Forged,
}

/// A row opened: its plain bytes, and whether it was sealed under a key other than the
/// sealing one (it should be resealed).
#[derive(Debug)]
pub struct Opened {
    pub plain: Vec<u8>,
    pub stale: bool,
}

/// The id of a key.
pub fn key_id(key: &[u8; KEY_LEN]) -> KeyId {
    let digest = Sha256::digest(key);
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&digest[..ID_LEN]);
    KeyId(id)
}

/// The id of the key a sealed row names, if it is one.
pub fn sealed_by(row: &[u8]) -> Option<KeyId> {
    if row.len() < OVERHEAD || row[0] != SEALED_V1 {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&row[1..1 + ID_LEN]);
    Some(KeyId(id))
}

/// The associated data of a row: the table's name, a zero byte, the row's key.
fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(table.len() + 1 + key.len());
    a.extend_from_slice(table.as_bytes());
    a.push(0);
    a.extend_from_slice(key);
    a
}

/// A new random master key, base64 (a line of a key file).
pub fn generate_key() -> String {
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    base64::engine::general_purpose::STANDARD.encode(key.as_slice())
}

impl KeyRing {
    /// A ring of `keys`, the first sealing; `None` when empty.
    pub fn new(keys: &[[u8; KEY_LEN]]) -> Option<KeyRing> {
        if keys.is_empty() {
            return None;
        }
        let keys = keys
            .iter()
            .map(|k| MasterKey {
                id: key_id(k),
                cipher: XChaCha20Poly1305::new(Key::from_slice(k)),
            })
            .collect();
        Some(KeyRing { keys })
    }

    /// Parses a key file's text (or `COURIER_MASTER_KEY`): one base64 key of 32 bytes per line,
    /// blank lines and `#` comments ignored, the first key sealing.
    pub fn parse(text: &str) -> Result<KeyRing, KeyParseError> {
        let mut keys: Vec<([u8; KEY_LEN], usize)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|_| KeyParseError::NotBase64 { line: line_no })?;
            let key: [u8; KEY_LEN] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyParseError::WrongLength {
                        line: line_no,
                        len: bytes.len(),
                    })?;
            if let Some((_, first)) = keys.iter().find(|(k, _)| *k == key) {
                return Err(KeyParseError::Repeated {
                    line: line_no,
                    first: *first,
                });
            }
            keys.push((key, line_no));
        }
        let keys: Vec<[u8; KEY_LEN]> = keys.into_iter().map(|(k, _)| k).collect();
        KeyRing::new(&keys).ok_or(KeyParseError::Empty)
    }

    /// A ring of one fixed key that anybody can read here: for tests and benchmarks only (the
    /// daemon never uses it; its keys come from [`key_file`]).
    #[doc(hidden)]
    pub fn test_ring() -> std::sync::Arc<KeyRing> {
        let ring = KeyRing::new(&[[0x5e; KEY_LEN]]);
        std::sync::Arc::new(ring.unwrap_or_else(|| unreachable!("one key")))
    }

    /// The ids of the ring's keys, the sealing one first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// The id of the key that seals.
    pub fn sealing_id(&self) -> KeyId {
        self.keys[0].id
    }

    /// Seals the plain bytes of the row at `key` of `table` under the first key.
    pub fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Vec<u8> {
        let k = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.push(SEALED_V1);
        out.extend_from_slice(&k.id.0);
        out.extend_from_slice(nonce.as_slice());
        let head = out.len();
        out.extend_from_slice(plain);
        // Fails only past ChaCha20's 256 GiB per message: no row is near that.
        match k
            .cipher
            .encrypt_in_place_detached(&nonce, &aad(table, key), &mut out[head..])
        {
            Ok(tag) => out.extend_from_slice(tag.as_slice()),
            Err(_) => unreachable!("a row longer than 256 GiB"),
        }
        out
    }

    /// Opens the sealed row at `key` of `table`.
    pub fn open(&self, table: &str, key: &[u8], row: &[u8]) -> Result<Opened, OpenError> {
        let id = sealed_by(row).ok_or(OpenError::NotSealed)?;
        let (pos, k) = self
            .keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.id == id)
            .ok_or(OpenError::UnknownKey(id))?;
        let nonce = XNonce::from_slice(&row[1 + ID_LEN..1 + ID_LEN + NONCE_LEN]);
        let body = &row[1 + ID_LEN + NONCE_LEN..];
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let mut plain = ciphertext.to_vec();
        k.cipher
            .decrypt_in_place_detached(nonce, &aad(table, key), &mut plain, Tag::from_slice(tag))
            .map_err(|_| OpenError::Forged)?;
        Ok(Opened {
            plain,
            stale: pos != 0,
        })
    }
}

#[cfg(test)]
mod tests;
