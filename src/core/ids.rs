//! Event ids: `evt_` + 26 Crockford base32 chars of (48-bit unix ms, 80-bit counter), so ids
//! sort in creation order within a process and never repeat across restarts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Generates ids from any thread: 48-bit ms timestamp, 16 random bits fixed per process, and a
/// 64-bit counter that starts at a random value.
#[derive(Debug)]
pub struct IdGen {
    prefix: u16,
    counter: AtomicU64,
}

impl Default for IdGen {
    fn default() -> Self {
        Self::new()
    }
}

impl IdGen {
    /// Seeds from the process's random hasher keys.
    pub fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(crate::core::timefmt::now_ms());
        let r = h.finish();
        Self {
            prefix: (r >> 48) as u16,
            counter: AtomicU64::new(r & ((1 << 62) - 1)),
        }
    }

    /// The next event id for a timestamp.
    pub fn next(&self, now_ms: u64) -> String {
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        let v: u128 = (u128::from(now_ms & ((1 << 48) - 1)) << 80)
            | (u128::from(self.prefix) << 64)
            | u128::from(c);
        let mut out = String::with_capacity(30);
        out.push_str("evt_");
        for i in (0..26).rev() {
            let idx = ((v >> (i * 5)) & 31) as usize;
            out.push(ALPHABET[idx] as char);
        }
        out
    }
}

/// Whether `s` has the shape of an event id (used to reject junk before a lookup).
pub fn looks_like_event_id(s: &str) -> bool {
    s.len() == 30 && s.starts_with("evt_") && s.as_bytes()[4..].iter().all(|b| ALPHABET.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sorted_and_well_formed() {
        let g = IdGen::new();
        let a = g.next(1_000);
        let b = g.next(1_000);
        let c = g.next(2_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        for id in [&a, &b, &c] {
            assert!(looks_like_event_id(id), "{id}");
        }
        assert!(!looks_like_event_id("evt_x"));
        assert!(!looks_like_event_id("evt_0123456789ABCDEFGHJKMNPQRU"));
    }
}
