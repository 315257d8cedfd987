//! redb only: the sealed rows. Endpoint and channel rows are sealed on disk (no clear postcard,
//! no secret or URL in the file); a changed byte refuses the open naming the row; a journal
//! sealed under another key is refused naming the key it needs; a journal of schema 4 (clear
//! rows) is read in clear offline and sealed (and compacted) by the next open; a key prepended
//! to the ring reseals every row at open, after which the old key alone no longer opens them.

use std::sync::Arc;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use courier::core::model::{ChannelConfig, EndpointConfig, EndpointRecord};
use courier::core::secret::Secret;
use courier::store::redb::{DB_FILE, DEFAULT_CACHE_BYTES, ReadOnlyError, RedbJournal};
use courier::store::seal::{KeyRing, key_id, sealed_by};
use courier::store::{Journal, SCHEMA_VERSION};

use super::keys;

const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SECRET: &str = "sealed-signing-secret-31c7";
const PASSWORD: &str = "sealed-bearer-password-80aa";
const CHANNEL_SECRET: &str = "sealed-channel-secret-6d02";
const URL: &str = "https://receiver.test:8443/sealed-hook";

fn ring(k: u8) -> Arc<KeyRing> {
    Arc::new(KeyRing::new(&[[k; 32]]).unwrap())
}

fn config() -> EndpointConfig {
    EndpointConfig {
        url: URL.into(),
        secret: Some(Secret::new(SECRET)),
        password: Some(Secret::new(PASSWORD)),
        ..super::config()
    }
}

/// A journal in `dir` with endpoint `acme` and channel `inbox`, sealed under `keys`, closed.
async fn filled(dir: &std::path::Path, keys: Arc<KeyRing>) -> EndpointRecord {
    let j = RedbJournal::open(
        &dir.join(DB_FILE),
        DEFAULT_CACHE_BYTES,
        keys,
        Box::new(|_| {}),
    )
    .unwrap();
    let (rec, _) = j.put_endpoint("acme".into(), config()).await.unwrap();
    let channel = ChannelConfig {
        endpoint: "acme".into(),
        secret: Some(Secret::new(CHANNEL_SECRET)),
        rate_limit: 10,
        burst: 10,
        security: Default::default(),
    };
    j.put_channel("inbox".into(), channel).await.unwrap();
    j.close().await.unwrap();
    rec
}

/// The stored bytes of a row.
fn raw(dir: &std::path::Path, table: TableDefinition<&str, &[u8]>, key: &str) -> Vec<u8> {
    let db = Database::create(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(table).unwrap();
    t.get(key).unwrap().unwrap().value().to_vec()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn open_err(dir: &std::path::Path, keys: Arc<KeyRing>) -> String {
    match RedbJournal::open(
        &dir.join(DB_FILE),
        DEFAULT_CACHE_BYTES,
        keys,
        Box::new(|_| {}),
    ) {
        Ok(_) => panic!("the journal opened"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn endpoint_and_channel_rows_are_sealed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let rec = filled(dir.path(), keys()).await;
    let row = raw(dir.path(), ENDPOINTS, "acme");
    assert_eq!(sealed_by(&row), Some(keys().sealing_id()));
    assert_eq!(
        EndpointRecord::decode(&row),
        None,
        "the row is not clear postcard"
    );
    assert_eq!(
        sealed_by(&raw(dir.path(), CHANNELS, "inbox")),
        Some(keys().sealing_id())
    );
    let file = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    for s in [SECRET, PASSWORD, CHANNEL_SECRET, URL] {
        assert!(!contains(&file, s), "{s} is in the journal file in clear");
    }
    // Read back through the journal: the very record that was put.
    let j = RedbJournal::open(
        &dir.path().join(DB_FILE),
        DEFAULT_CACHE_BYTES,
        keys(),
        Box::new(|_| {}),
    )
    .unwrap();
    assert_eq!(j.endpoint("acme").await.unwrap(), Some(rec));
    let channels = j.channels().await.unwrap();
    assert_eq!(
        channels[0].config.secret.as_ref().map(Secret::expose),
        Some(CHANNEL_SECRET)
    );
    assert!(j.db().check_invariants().unwrap().is_empty());
    j.close().await.unwrap();
}

#[tokio::test]
async fn another_key_is_refused_naming_the_key_the_journal_needs() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), keys()).await;
    let e = open_err(dir.path(), ring(9));
    assert!(e.contains("MASTER_KEY_MISMATCH"), "{e}");
    assert!(e.contains(&keys().sealing_id().to_string()), "{e}");
    // Offline: without any key, and with the wrong one.
    let path = dir.path().join(DB_FILE);
    match RedbJournal::open_read_only(&path, DEFAULT_CACHE_BYTES, None) {
        Err(ReadOnlyError::Key(m)) => assert!(m.starts_with("MASTER_KEY_MISSING"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    match RedbJournal::open_read_only(&path, DEFAULT_CACHE_BYTES, Some(ring(9))) {
        Err(ReadOnlyError::Key(m)) => assert!(m.starts_with("MASTER_KEY_MISMATCH"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    let ro = RedbJournal::open_read_only(&path, DEFAULT_CACHE_BYTES, Some(keys())).unwrap();
    assert_eq!(ro.endpoint("acme").await.unwrap().unwrap().config.url, URL);
}

#[tokio::test]
async fn a_changed_byte_in_a_row_refuses_the_open_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), keys()).await;
    let row = raw(dir.path(), ENDPOINTS, "acme");
    for at in [row.len() / 2, row.len() - 1] {
        let mut bad = row.clone();
        bad[at] ^= 0x04;
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(ENDPOINTS)
                .unwrap()
                .insert("acme", bad.as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let e = open_err(dir.path(), keys());
        assert!(e.contains("JOURNAL_ROW_CORRUPT"), "{e}");
        assert!(e.contains("endpoints row \"acme\""), "{e}");
    }
    // A row moved to another key does not open either.
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(ENDPOINTS).unwrap();
            t.remove("acme").unwrap();
            t.insert("acme2", row.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let e = open_err(dir.path(), keys());
    assert!(
        e.contains("JOURNAL_ROW_CORRUPT") && e.contains("acme2"),
        "{e}"
    );
}

#[tokio::test]
async fn a_schema_4_journal_reads_in_clear_offline_and_is_sealed_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let rec = filled(dir.path(), keys()).await;
    // As a build of schema 4 left it: the same rows, in clear.
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        for (table, name) in [(ENDPOINTS, "endpoints"), (CHANNELS, "channels")] {
            let mut t = tx.open_table(table).unwrap();
            let rows: Vec<(String, Vec<u8>)> = t
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value().to_string(), v.value().to_vec())
                })
                .collect();
            for (k, v) in rows {
                let plain = keys().open(name, k.as_bytes(), &v).unwrap().plain;
                t.insert(k.as_str(), plain.as_slice()).unwrap();
            }
        }
        tx.open_table(META).unwrap().insert("schema", 4).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(
        EndpointRecord::decode(&raw(dir.path(), ENDPOINTS, "acme")).as_ref(),
        Some(&rec)
    );
    let path = dir.path().join(DB_FILE);
    {
        let ro = RedbJournal::open_read_only(&path, DEFAULT_CACHE_BYTES, None).unwrap();
        assert_eq!(ro.endpoint("acme").await.unwrap().as_ref(), Some(&rec));
    }
    let fresh = ring(3);
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, fresh.clone(), Box::new(|_| {})).unwrap();
    assert_eq!(j.endpoint("acme").await.unwrap().as_ref(), Some(&rec));
    assert_eq!(j.channels().await.unwrap().len(), 1);
    j.close().await.unwrap();
    drop(j);
    for (table, key) in [(ENDPOINTS, "acme"), (CHANNELS, "inbox")] {
        assert_eq!(
            sealed_by(&raw(dir.path(), table, key)),
            Some(fresh.sealing_id())
        );
    }
    // The upgrade compacted the file: the pages that held the clear rows are gone.
    let file = std::fs::read(&path).unwrap();
    for s in [SECRET, PASSWORD, CHANNEL_SECRET, URL] {
        assert!(
            !contains(&file, s),
            "{s} is still in the file after the upgrade"
        );
    }
    let db = Database::create(&path).unwrap();
    let schema = db
        .begin_read()
        .unwrap()
        .open_table(META)
        .unwrap()
        .get("schema")
        .unwrap();
    assert_eq!(schema.map(|v| v.value()), Some(SCHEMA_VERSION));
}

#[tokio::test]
async fn a_prepended_key_reseals_every_row_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let rec = filled(dir.path(), ring(1)).await;
    let rotated = Arc::new(KeyRing::new(&[[2; 32], [1; 32]]).unwrap());
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, rotated, Box::new(|_| {})).unwrap();
    assert_eq!(j.endpoint("acme").await.unwrap().as_ref(), Some(&rec));
    j.close().await.unwrap();
    drop(j);
    for (table, key) in [(ENDPOINTS, "acme"), (CHANNELS, "inbox")] {
        assert_eq!(
            sealed_by(&raw(dir.path(), table, key)),
            Some(key_id(&[2; 32]))
        );
    }
    // The old key alone no longer opens them; the new one alone does.
    let e = open_err(dir.path(), ring(1));
    assert!(e.contains("MASTER_KEY_MISMATCH"), "{e}");
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, ring(2), Box::new(|_| {})).unwrap();
    assert_eq!(j.endpoint("acme").await.unwrap().as_ref(), Some(&rec));
    j.close().await.unwrap();
}
