//! redb only: a journal of schema 2 (attempt-log rows at the plain attempt number) is read
//! as it is by a read-only open, and moved into the ring of schema 3 when opened for writing.

use ::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use courier::core::model::{AttemptKind, EndpointRecord, ErrorInfo};
use courier::store::ATTEMPT_LOG_KEEP;

use super::*;

const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
const ATTEMPTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("attempts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The endpoint record as a build of schema 2 wrote it (its second shape).
#[derive(serde::Serialize)]
struct V2Endpoint<'a> {
    id: &'a str,
    config: &'a EndpointConfig,
    paused: bool,
    created_ms: u64,
    updated_ms: u64,
    next_seq: u64,
    pending: u64,
    next_attempt_log: u64,
    down: bool,
    connected_at_ms: Option<u64>,
    state_since_ms: Option<u64>,
    last_error: Option<ErrorInfo>,
}

/// An attempt-log row of schema 2: the first shape, then kind and answer.
fn v2_row(event_id: &str, n: u64) -> Vec<u8> {
    let a = (
        event_id,
        1u64,
        n as u32,
        n,
        Some(503u16),
        4u32,
        Some("HTTP_5XX"),
        None::<&str>,
    );
    let mut row = postcard::to_stdvec(&a).unwrap();
    row.extend(postcard::to_stdvec(&(AttemptKind::Probe, Some("busy"))).unwrap());
    row
}

/// The attempt numbers of an endpoint's log, newest first.
async fn numbers(j: &RedbJournal, ep: &str) -> Vec<u32> {
    let log = j.attempts(ep, usize::MAX).await.unwrap();
    log.iter().map(|a| a.attempt).collect()
}

#[tokio::test]
async fn redb_a_schema_2_attempt_log_is_read_in_place_and_moved_into_its_ring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let ids = IdGen::new();
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, super::keys(), Box::new(|_| {})).unwrap();
    let mut event = std::collections::HashMap::new();
    for ep in ["a", "b", "c"] {
        j.put_endpoint(ep.into(), config()).await.unwrap();
        let meta = EventMeta {
            id: ids.next(1),
            enqueued_at_ms: 1,
            content_type: "text/plain".into(),
            event_type: None,
        };
        let req = EnqueueReq::new(ep.into(), meta, Bytes::from_static(b"x"), None).unwrap();
        event.insert(ep, j.enqueue(req).await.unwrap().id);
    }
    j.close().await.unwrap();
    drop(j);
    // As a build of schema 2 left it: `a` made 2,345 attempts (rows 1,218..=2,344 kept, as
    // its prune every 128 rows left them), `b` 1,500 (rows 373..=1,499), `c` 700.
    let logs = [("a", 2_345u64, 1_218u64), ("b", 1_500, 373), ("c", 700, 0)];
    {
        let db = ::redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut endpoints = tx.open_table(ENDPOINTS).unwrap();
            let mut attempts = tx.open_table(ATTEMPTS).unwrap();
            for (ep, next, first) in logs {
                let old = V2Endpoint {
                    id: ep,
                    config: &config(),
                    paused: false,
                    created_ms: 1,
                    updated_ms: 1,
                    next_seq: 2,
                    pending: 1,
                    next_attempt_log: next,
                    down: true,
                    connected_at_ms: None,
                    state_since_ms: Some(1),
                    last_error: None,
                };
                let bytes = postcard::to_stdvec(&old).unwrap();
                endpoints.insert(ep, bytes.as_slice()).unwrap();
                attempts
                    .retain_in((ep, 0)..=(ep, u64::MAX), |_, _| false)
                    .unwrap();
                for n in first..next {
                    attempts
                        .insert((ep, n), v2_row(&event[ep], n).as_slice())
                        .unwrap();
                }
            }
            tx.open_table(META).unwrap().insert("schema", 2).unwrap();
        }
        tx.commit().unwrap();
    }
    // Offline inspection reads the rows where they are, newest first.
    {
        let ro =
            RedbJournal::open_read_only(&path, DEFAULT_CACHE_BYTES, Some(super::keys())).unwrap();
        for (ep, next, first) in logs {
            let want: Vec<u32> = (first..next).rev().map(|n| n as u32).collect();
            assert_eq!(numbers(&ro, ep).await, want, "{ep} read-only, schema 2");
        }
        let top = ro.attempts("a", 2).await.unwrap();
        assert_eq!(
            (
                top[0].attempt,
                top[0].kind,
                top[0].answer.as_deref(),
                top[0].repeats
            ),
            (2_344, AttemptKind::Probe, Some("busy"), 0)
        );
    }
    // Opened for writing: the newest 1,000 of each go to their slots, the rest are removed.
    let j = RedbJournal::open(&path, DEFAULT_CACHE_BYTES, super::keys(), Box::new(|_| {})).unwrap();
    for (ep, next, first) in logs {
        let kept = first.max(next.saturating_sub(ATTEMPT_LOG_KEEP));
        let want: Vec<u32> = (kept..next).rev().map(|n| n as u32).collect();
        assert_eq!(numbers(&j, ep).await, want, "{ep} after the upgrade");
    }
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    // It goes on around the ring: attempt 2,345 of `a` takes slot 345 (that of 1,345).
    j.record_progress(update("a", &event["a"], 1, 2_345, ProgressOutcome::Pending));
    j.sync().await.unwrap();
    let want: Vec<u32> = (1_346..=2_345).rev().collect();
    assert_eq!(numbers(&j, "a").await, want);
    let rec: EndpointRecord = j.endpoint("a").await.unwrap().unwrap();
    assert_eq!(rec.next_attempt_log, 2_346);
    let bad = j.db().check_invariants().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
    j.close().await.unwrap();
    drop(j);
    let db = ::redb::Database::create(&path).unwrap();
    let r = db.begin_read().unwrap();
    let schema = r.open_table(META).unwrap().get("schema").unwrap().unwrap();
    assert_eq!(schema.value(), courier::store::SCHEMA_VERSION);
    let attempts = r.open_table(ATTEMPTS).unwrap();
    let mut rows = 0;
    for row in attempts.iter().unwrap() {
        let (k, _) = row.unwrap();
        assert!(k.value().1 < ATTEMPT_LOG_KEEP, "key {:?}", k.value());
        rows += 1;
    }
    assert_eq!(rows, 1_000 + 1_000 + 700);
}
