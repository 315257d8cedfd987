//! A checker of the store's invariants (listed in words in [`crate::store`]) over any backend's
//! tables: it reads everything and names each violation. For tests and tools; it is a full scan.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::tables::ReadTables;
use super::{ATTEMPT_LOG_KEEP, StoreError, decode};
use crate::core::model::{
    AttemptKind, AttemptRecord, DeadLetter, EndpointRecord, EventProgress, IdempotentHit,
};
use crate::core::record;

/// Every violation of the invariants in `t`, in words; empty when they all hold.
pub fn check(t: &impl ReadTables) -> Result<Vec<String>, StoreError> {
    let mut bad = Vec::new();

    let mut endpoints: BTreeMap<String, EndpointRecord> = BTreeMap::new();
    t.endpoints_each(|id, v| {
        match EndpointRecord::decode(v) {
            Some(r) if r.id == id => {
                endpoints.insert(id.to_string(), r);
            }
            Some(r) => bad.push(format!(
                "endpoint row {id:?} holds the record of {:?}",
                r.id
            )),
            None => bad.push(format!("endpoint row {id:?} does not decode")),
        }
        Ok(true)
    })?;
    let mut tombs: HashMap<String, u64> = HashMap::new();
    t.tombstones_each(|id, next| {
        if endpoints.contains_key(id) {
            bad.push(format!("endpoint {id:?} exists and has a tombstone"));
        }
        tombs.insert(id.to_string(), next);
        Ok(true)
    })?;
    // The seq no event of an endpoint id may reach: its next_seq, or its tombstone's.
    let bound = |id: &str| {
        endpoints
            .get(id)
            .map(|r| r.next_seq)
            .or_else(|| tombs.get(id).copied())
    };

    // The retained log's side tables.
    let mut done: HashSet<(String, u64)> = HashSet::new();
    t.done_all(|ep, seq| {
        done.insert((ep.to_string(), seq));
        Ok(true)
    })?;
    let mut reopened: HashSet<(String, u64)> = HashSet::new();
    t.reopened_all(|ep, seq, _| {
        reopened.insert((ep.to_string(), seq));
        Ok(true)
    })?;

    // Per endpoint: pending rows, their bytes, every row's bytes.
    let mut pending: HashMap<String, (u64, u64, u64)> = HashMap::new();
    let mut pending_keys: HashSet<(String, u64)> = HashSet::new();
    let mut row_ids: HashSet<String> = HashSet::new();
    let mut event_keys: HashSet<(String, u64)> = HashSet::new();
    t.events_all(|ep, seq, v| {
        let key = (ep.to_string(), seq);
        let rec = endpoints.get(ep);
        match rec {
            None => bad.push(format!("event {ep}/{seq} belongs to no endpoint")),
            Some(r) if seq < r.log.retained_from => bad.push(format!(
                "event {ep}/{seq} is below retained_from {}",
                r.log.retained_from
            )),
            Some(_) => {}
        }
        if bound(ep).is_some_and(|b| seq >= b) {
            bad.push(format!("event {ep}/{seq} is not below next_seq"));
        }
        let cursor = rec.map_or(0, |r| r.log.cursor);
        let is_pending = reopened.contains(&key) || (seq >= cursor && !done.contains(&key));
        let e = pending.entry(ep.to_string()).or_default();
        e.2 += v.len() as u64;
        if is_pending {
            e.0 += 1;
            e.1 += v.len() as u64;
            pending_keys.insert(key.clone());
        }
        event_keys.insert(key);
        if let Ok(r) = record::decode(v) {
            row_ids.insert(r.meta.id);
        }
        Ok(true)
    })?;
    for (ep, seq) in &done {
        if !event_keys.contains(&(ep.clone(), *seq)) {
            bad.push(format!("done row {ep}/{seq} has no event row"));
        }
        if endpoints.get(ep).is_some_and(|r| *seq < r.log.cursor) {
            bad.push(format!("done row {ep}/{seq} is below the cursor"));
        }
    }
    for (ep, seq) in &reopened {
        let key = (ep.clone(), *seq);
        if !event_keys.contains(&key) {
            bad.push(format!("reopened row {ep}/{seq} has no event row"));
        }
        if endpoints.get(ep).is_some_and(|r| *seq >= r.log.cursor) && !done.contains(&key) {
            bad.push(format!(
                "reopened row {ep}/{seq} is at or above the cursor without a done row"
            ));
        }
    }
    for (id, r) in &endpoints {
        let (rows, bytes, all) = pending.get(id).copied().unwrap_or_default();
        if r.pending != rows {
            bad.push(format!(
                "endpoint {id:?} counts {} pending but has {rows} pending rows",
                r.pending
            ));
        }
        if (r.log.pending_bytes, r.log.log_bytes) != (bytes, all) {
            bad.push(format!(
                "endpoint {id:?} counts {}/{} pending/log bytes but holds {bytes}/{all}",
                r.log.pending_bytes, r.log.log_bytes
            ));
        }
        let d = done.iter().filter(|(e, _)| e == id).count() as u64;
        let o = reopened.iter().filter(|(e, _)| e == id).count() as u64;
        if (r.log.done, r.log.reopened) != (d, o) {
            bad.push(format!(
                "endpoint {id:?} counts {}/{} done/reopened rows but has {d}/{o}",
                r.log.done, r.log.reopened
            ));
        }
    }

    t.progress_all(|ep, seq, v| {
        if !pending_keys.contains(&(ep.to_string(), seq)) {
            bad.push(format!("progress {ep}/{seq} has no pending event row"));
        }
        if decode::<EventProgress>("progress", v).is_err() {
            bad.push(format!("progress {ep}/{seq} does not decode"));
        }
        Ok(true)
    })?;

    let mut dead_ids: HashSet<String> = HashSet::new();
    // The dead-letter index: (endpoint, seq) → event id, one row per dead letter.
    let mut index: HashMap<(String, u64), String> = HashMap::new();
    t.dead_index_all(|ep, seq, id| {
        index.insert((ep.to_string(), seq), id.to_string());
        Ok(true)
    })?;
    let indexed = !index.is_empty() || t.dead_index_each("", 0, |_, _| Ok(false))?;
    let mut undecodable: HashSet<String> = HashSet::new();
    t.dead_each(|id, v| {
        dead_ids.insert(id.to_string());
        let Ok(dl) = decode::<DeadLetter>("dead letter", v) else {
            bad.push(format!("dead letter {id} does not decode"));
            undecodable.insert(id.to_string());
            return Ok(true);
        };
        if indexed {
            match index.remove(&(dl.endpoint.clone(), dl.seq)) {
                Some(at) if at == id => {}
                Some(other) => bad.push(format!(
                    "the index row of {}/{} names {other}, not dead letter {id}",
                    dl.endpoint, dl.seq
                )),
                None => bad.push(format!(
                    "dead letter {id} ({}/{}) has no index row",
                    dl.endpoint, dl.seq
                )),
            }
        }
        if dl.event_id != id {
            bad.push(format!("dead letter row {id} holds {}", dl.event_id));
        }
        if row_ids.contains(id) {
            bad.push(format!("event {id} is both in the log and a dead letter"));
        }
        if event_keys.contains(&(dl.endpoint.clone(), dl.seq)) {
            bad.push(format!(
                "dead letter {id} has the place {}/{} of an event in the log",
                dl.endpoint, dl.seq
            ));
        }
        match bound(&dl.endpoint) {
            Some(b) if dl.seq >= b => bad.push(format!(
                "dead letter {id} ({}/{}) is not below next_seq {b}",
                dl.endpoint, dl.seq
            )),
            Some(_) => {}
            None => bad.push(format!(
                "dead letter {id} belongs to {:?}, which neither exists nor has a tombstone",
                dl.endpoint
            )),
        }
        if t.dead_record_get(id, |_| ())?.is_none() {
            bad.push(format!("dead letter {id} has no record"));
        }
        Ok(true)
    })?;
    for ((ep, seq), id) in index {
        if !undecodable.contains(&id) {
            bad.push(format!(
                "index row {ep}/{seq} names {id}, which is no dead letter there"
            ));
        }
    }
    t.dead_records_each(|id, _| {
        if !dead_ids.contains(id) {
            bad.push(format!("dead record {id} has no dead letter"));
        }
        Ok(true)
    })?;

    // The attempt log is a ring: attempt n at slot n % ATTEMPT_LOG_KEEP, so every key is a
    // slot below ATTEMPT_LOG_KEEP (at most that many rows) and, before the ring has wrapped,
    // below `next_attempt_log`; only a failed probe counts repeats.
    t.attempts_all(|ep, n, v| {
        match endpoints.get(ep) {
            None => bad.push(format!("attempt {ep}/{n} belongs to no endpoint")),
            Some(_) if n >= ATTEMPT_LOG_KEEP => {
                bad.push(format!("attempt {ep}/{n} is not a slot of the ring"))
            }
            Some(r) if n >= r.next_attempt_log => {
                bad.push(format!("attempt {ep}/{n} is not below next_attempt_log"))
            }
            Some(_) => {}
        }
        match AttemptRecord::decode_logged(v) {
            None => bad.push(format!("attempt {ep}/{n} does not decode")),
            Some(a) if a.repeats > 0 && (a.kind != AttemptKind::Probe || a.error.is_none()) => bad
                .push(format!(
                    "attempt {ep}/{n} counts repeats but is no failed probe"
                )),
            Some(_) => {}
        }
        Ok(true)
    })?;

    t.idempotency_all(|ep, key, v| {
        if !endpoints.contains_key(ep) {
            bad.push(format!(
                "idempotency key {ep}/{key:?} belongs to no endpoint"
            ));
        } else if let Some(hit) = IdempotentHit::decode(v)
            && bound(ep).is_some_and(|b| hit.seq >= b)
        {
            bad.push(format!(
                "idempotency key {ep}/{key:?} names a seq not yet used"
            ));
        }
        Ok(true)
    })?;
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode;
    use crate::store::memory::MemTables;
    use crate::store::tables::Tables;

    #[test]
    fn broken_tables_are_named() {
        let mut t = MemTables::default();
        assert_eq!(check(&t).unwrap(), Vec::<String>::new());
        let rec = EndpointRecord {
            id: "a".into(),
            config: crate::core::model::EndpointConfig {
                url: "https://r.test/".into(),
                secret: None,
                password: None,
                timeout_ms: 1,
                retry_schedule_ms: vec![],
                max_in_flight: 1,
                max_backlog: None,
                security: Default::default(),
            },
            paused: false,
            created_ms: 0,
            updated_ms: 0,
            next_seq: 2,
            pending: 1,
            next_attempt_log: 0,
            down: false,
            connected_at_ms: None,
            state_since_ms: None,
            last_error: None,
            max_backlog: None,
            log: Default::default(),
            security: Default::default(),
        };
        t.endpoint_put("a", &encode(&rec)).unwrap();
        t.event_put("a", 1, b"r").unwrap();
        t.event_put("a", 7, b"r").unwrap();
        t.progress_put("b", 9, b"").unwrap();
        t.tombstone_put("a", 3).unwrap();
        t.dead_record_put("evt_x", b"r").unwrap();
        t.commit();
        let bad = check(&t).unwrap();
        for want in [
            "counts 1 pending but has 2",
            "event a/7 is not below next_seq",
            "progress b/9 has no pending event row",
            "exists and has a tombstone",
            "dead record evt_x has no dead letter",
        ] {
            assert!(
                bad.iter().any(|b| b.contains(want)),
                "{want:?} not in {bad:#?}"
            );
        }
    }
}
