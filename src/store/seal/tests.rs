//! The seal's cases: a row round-trips; any changed byte, another table or another key fails;
//! the ring picks a row's key by id, opens rows of an older key and says they are stale;
//! malformed key lines are refused; the key file's sources, creation and modes.

use super::key_file::{self, MasterKeyError};
use super::*;
use crate::core::secret::Secret;
use std::os::unix::fs::PermissionsExt;

fn key(b: u8) -> [u8; KEY_LEN] {
    [b; KEY_LEN]
}

fn line(k: &[u8; KEY_LEN]) -> String {
    base64::engine::general_purpose::STANDARD.encode(k)
}

const ROW: &[u8] = b"\x05acme\x1ehttps://receiver.test:8443/hook\x01\x14endpoint-secret-value";

#[test]
fn a_sealed_row_opens_to_its_bytes_and_hides_them() {
    let ring = KeyRing::new(&[key(1)]).unwrap();
    let sealed = ring.seal("endpoints", b"acme", ROW);
    assert_eq!(sealed.len(), ROW.len() + OVERHEAD);
    assert_eq!(sealed[0], SEALED_V1);
    assert_eq!(sealed_by(&sealed), Some(key_id(&key(1))));
    assert!(
        !sealed.windows(8).any(|w| ROW.windows(8).any(|r| r == w)),
        "no 8 bytes of the row show in clear"
    );
    let opened = ring.open("endpoints", b"acme", &sealed).unwrap();
    assert_eq!(opened.plain, ROW);
    assert!(!opened.stale);
    // A fresh nonce each time: the same row never seals to the same bytes.
    assert_ne!(sealed, ring.seal("endpoints", b"acme", ROW));
    // An empty row seals and opens too.
    let empty = ring.seal("channels", b"c", b"");
    assert_eq!(ring.open("channels", b"c", &empty).unwrap().plain, b"");
}

#[test]
fn a_changed_byte_anywhere_fails_to_open() {
    let ring = KeyRing::new(&[key(1)]).unwrap();
    let sealed = ring.seal("endpoints", b"acme", ROW);
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= bit;
            let e = ring.open("endpoints", b"acme", &bad).unwrap_err();
            // The version byte or the key id: not a row of this ring; else: forged.
            match i {
                0 => assert_eq!(e, OpenError::NotSealed, "byte {i}"),
                1..=8 => assert!(matches!(e, OpenError::UnknownKey(_)), "byte {i}: {e:?}"),
                _ => assert_eq!(e, OpenError::Forged, "byte {i}"),
            }
        }
    }
    // Cut short, or cut to nothing.
    for len in [0, 1, OVERHEAD - 1, sealed.len() - 1] {
        assert!(
            ring.open("endpoints", b"acme", &sealed[..len]).is_err(),
            "{len}"
        );
    }
    // A clear postcard row is not a sealed one.
    assert_eq!(
        ring.open("endpoints", b"acme", ROW).unwrap_err(),
        OpenError::NotSealed
    );
}

#[test]
fn a_row_moved_to_another_key_or_table_fails_to_open() {
    let ring = KeyRing::new(&[key(1)]).unwrap();
    let sealed = ring.seal("endpoints", b"acme", ROW);
    assert_eq!(
        ring.open("endpoints", b"acme2", &sealed).unwrap_err(),
        OpenError::Forged
    );
    assert_eq!(
        ring.open("channels", b"acme", &sealed).unwrap_err(),
        OpenError::Forged
    );
    // The table name and the key are not merely concatenated.
    let a = ring.seal("endpoints", b"xy", ROW);
    assert!(ring.open("endpointsx", b"y", &a).is_err());
}

#[test]
fn the_ring_picks_the_key_by_id_and_marks_rows_of_an_older_key_stale() {
    let old = KeyRing::new(&[key(1)]).unwrap();
    let rotated = KeyRing::new(&[key(2), key(1)]).unwrap();
    assert_eq!(rotated.sealing_id(), key_id(&key(2)));
    assert_eq!(rotated.ids(), [key_id(&key(2)), key_id(&key(1))]);
    let under_old = old.seal("endpoints", b"acme", ROW);
    let opened = rotated.open("endpoints", b"acme", &under_old).unwrap();
    assert_eq!(opened.plain, ROW);
    assert!(opened.stale, "sealed under the second key: to be resealed");
    // Resealed: under the new key, which the old ring alone cannot open.
    let resealed = rotated.seal("endpoints", b"acme", &opened.plain);
    assert_eq!(sealed_by(&resealed), Some(key_id(&key(2))));
    assert!(!rotated.open("endpoints", b"acme", &resealed).unwrap().stale);
    assert_eq!(
        old.open("endpoints", b"acme", &resealed).unwrap_err(),
        OpenError::UnknownKey(key_id(&key(2)))
    );
    // A ring without the key names the one it needs.
    let other = KeyRing::new(&[key(3)]).unwrap();
    let e = other.open("endpoints", b"acme", &under_old).unwrap_err();
    assert_eq!(e, OpenError::UnknownKey(key_id(&key(1))));
    assert!(e.to_string().contains(&key_id(&key(1)).to_string()));
}

#[test]
fn key_lines_parse_and_malformed_ones_are_refused() {
    let text = format!("# a comment\n\n  {}  \n{}\n", line(&key(7)), line(&key(8)));
    let ring = KeyRing::parse(&text).unwrap();
    assert_eq!(ring.ids(), [key_id(&key(7)), key_id(&key(8))]);
    assert_eq!(KeyRing::parse("").unwrap_err(), KeyParseError::Empty);
    assert_eq!(
        KeyRing::parse("# only a comment\n").unwrap_err(),
        KeyParseError::Empty
    );
    assert_eq!(
        KeyRing::parse("not base64!\n").unwrap_err(),
        KeyParseError::NotBase64 { line: 1 }
    );
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
    assert_eq!(
        KeyRing::parse(&format!("{}\n{short}", line(&key(1)))).unwrap_err(),
        KeyParseError::WrongLength { line: 2, len: 16 }
    );
    assert_eq!(
        KeyRing::parse(&format!("{}\n{}", line(&key(1)), line(&key(1)))).unwrap_err(),
        KeyParseError::Repeated { line: 2, first: 1 }
    );
    // A generated key is one line the parser takes, and new each time.
    let (a, b) = (generate_key(), generate_key());
    assert_ne!(a, b);
    assert!(KeyRing::parse(&a).is_ok());
}

#[test]
fn debug_and_errors_never_show_a_key() {
    let k = line(&key(9));
    let ring = KeyRing::parse(&k).unwrap();
    let shown = format!("{ring:?}");
    assert!(shown.contains(&key_id(&key(9)).to_string()), "{shown}");
    assert!(!shown.contains(&k[..12]), "{shown}");
    let e = KeyRing::parse(&format!("{k}\n{}x", &k[..20])).unwrap_err();
    assert!(!e.to_string().contains(&k[..12]), "{e}");
}

#[test]
fn the_key_file_is_created_owner_only_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let first = key_file::load(None, None, dir.path(), true).unwrap();
    let path = dir.path().join(key_file::KEY_FILE);
    assert_eq!(first.created.as_deref(), Some(path.as_path()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file is left");
    // A temporary file left by a crash is no obstacle.
    let crashed = tempfile::tempdir().unwrap();
    std::fs::write(crashed.path().join("master.key.tmp"), "half a k").unwrap();
    let made = key_file::load(None, None, crashed.path(), true).unwrap();
    assert!(made.created.is_some());
    assert!(!crashed.path().join("master.key.tmp").exists());
    let again = key_file::load(None, None, dir.path(), true).unwrap();
    assert_eq!(again.created, None);
    assert_eq!(again.ring.ids(), first.ring.ids());
    // Without `create` (offline inspection) an absent file is refused, not made.
    let empty = tempfile::tempdir().unwrap();
    let e = key_file::load(None, None, empty.path(), false).unwrap_err();
    assert_eq!(e.code(), "MASTER_KEY_MISSING");
    assert!(!empty.path().join(key_file::KEY_FILE).exists());
}

#[test]
fn sources_go_flag_then_environment_then_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, line(&key(1))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = Secret::new(line(&key(2)));
    let from_flag = key_file::load(Some(&file), Some(&env), dir.path(), true).unwrap();
    assert_eq!(from_flag.ring.sealing_id(), key_id(&key(1)));
    let from_env = key_file::load(None, Some(&env), dir.path(), true).unwrap();
    assert_eq!(from_env.ring.sealing_id(), key_id(&key(2)));
    assert!(!dir.path().join(key_file::KEY_FILE).exists());
    // A flag naming no file is refused (never created there).
    let e = key_file::load(Some(&dir.path().join("nope")), None, dir.path(), true).unwrap_err();
    assert_eq!(e.code(), "MASTER_KEY_MISSING");
    let bad_env = Secret::new("zz");
    let e = key_file::load(None, Some(&bad_env), dir.path(), true).unwrap_err();
    assert_eq!(e.code(), "MASTER_KEY_INVALID");
    assert!(!e.to_string().contains("zz"), "{e}");
}

#[test]
fn a_key_file_open_to_others_or_malformed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, line(&key(1))).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = key_file::load(Some(&file), None, dir.path(), true).unwrap_err();
        assert_eq!(
            e,
            MasterKeyError::Permissions {
                path: file.display().to_string(),
                mode
            }
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(key_file::load(Some(&file), None, dir.path(), true).is_ok());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, "c2hvcnQ=\n").unwrap();
    let e = key_file::load(Some(&file), None, dir.path(), true).unwrap_err();
    assert_eq!(e.code(), "MASTER_KEY_INVALID");
    assert!(e.to_string().contains("line 1"), "{e}");
}
