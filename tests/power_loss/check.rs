//! What a journal over the disk's durable image must hold after a cut: every acknowledged
//! event in a state the model allows, its record read back from its segment, the segment log's
//! counts and files as the rows say, and a journal that still takes and delivers events.

use super::*;

/// A journal's pending events (id → seq), dead letters (id → seq) and `events` rows.
pub(super) struct Live {
    pub(super) pending: HashMap<String, u64>,
    pub(super) dead: HashMap<String, u64>,
    pub(super) rows: HashSet<(String, u64)>,
}

pub(super) async fn read_live(j: &Arc<RedbJournal>) -> Result<Live, String> {
    let eps = j.endpoints().await.map_err(|e| e.to_string())?;
    let mut pending = HashMap::new();
    for rec in &eps {
        let loaded = (j.load_events(&rec.id, 0, usize::MAX).await).map_err(|e| e.to_string())?;
        if !loaded.corrupt.is_empty() {
            return Err(format!("{}: corrupt records {:?}", rec.id, loaded.corrupt));
        }
        for ev in loaded.events {
            pending.insert(ev.meta.id.to_string(), ev.seq);
        }
    }
    let dead = (j.dead_letters(None).await.map_err(|e| e.to_string())?)
        .into_iter()
        .map(|d| (d.event_id, d.seq))
        .collect();
    let db = j.db().get().map_err(|e| e.to_string())?;
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let table = tx.open_table(EVENTS).map_err(|e| e.to_string())?;
    let mut rows = HashSet::new();
    for row in table.iter().map_err(|e| e.to_string())? {
        let (k, _) = row.map_err(|e| e.to_string())?;
        let (ep, seq) = k.value();
        rows.insert((ep.to_string(), seq));
    }
    Ok(Live {
        pending,
        dead,
        rows,
    })
}

/// The segment log against the database: every `events` row's record reads back from the
/// segment it names (inside what that segment holds) and decodes; it is the event the model
/// has at that seq; each segment's live rows and bytes are what the `segments` table says; and
/// the segment files are exactly the ones listed there, with the active one.
pub(super) fn check_segments(r: &Round, j: &Arc<RedbJournal>) -> Result<(), String> {
    fn s(e: impl std::fmt::Display) -> String {
        e.to_string()
    }
    let segs = j.db().segments().ok_or("the journal has no segment log")?;
    let db = j.db().get().map_err(s)?;
    let tx = db.begin_read().map_err(s)?;
    let meta = tx.open_table(META).map_err(s)?;
    let end =
        |k: &str| -> Result<Option<u64>, String> { Ok(meta.get(k).map_err(s)?.map(|v| v.value())) };
    let (active, active_len) = (end("seg_active")?, end("seg_len")?);
    let tail = segs.tail();
    if (active, active_len) != (Some(tail.seg), Some(tail.len))
        && !(active.is_none() && tail.len == 0)
    {
        return Err(format!(
            "the log's end is {tail:?}, the database says {active:?}/{active_len:?}"
        ));
    }
    let mut listed = BTreeMap::new();
    for row in tx.open_table(SEGMENTS).map_err(s)?.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        listed.insert(k.value(), v.value());
    }
    let ids: HashMap<(&str, u64), &String> = (r.model.events.iter())
        .map(|(id, e)| ((e.endpoint.as_str(), e.seq), id))
        .collect();
    let files = r.disk.segment_files();
    let mut counted: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for row in tx.open_table(EVENTS).map_err(s)?.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let (ep, seq) = k.value();
        let Some(loc) = Loc::decode(v.value()) else {
            return Err(format!("{ep}/{seq}: a record in its row, not in the log"));
        };
        let c = counted.entry(loc.seg).or_default();
        c.0 += 1;
        c.1 += u64::from(loc.len);
        let Some(file) = files.get(&loc.seg) else {
            return Err(format!("{ep}/{seq} lies in segment {}, gone", loc.seg));
        };
        let mut held = file.current.len() as u64;
        if loc.seg == tail.seg {
            held = held.min(tail.len);
        }
        if loc.off + u64::from(loc.len) > held {
            return Err(format!("{ep}/{seq} at {loc:?} lies past {held} bytes"));
        }
        let bytes = segs.read(&loc, None).map_err(s)?;
        let rec = record::decode(&bytes).map_err(|e| format!("{ep}/{seq} at {loc:?}: {e}"))?;
        if let Some(id) = ids.get(&(ep, seq))
            && rec.meta.id != **id
        {
            return Err(format!(
                "{ep}/{seq} reads back as {}, not {id}",
                rec.meta.id
            ));
        }
    }
    for (seg, (rows, bytes)) in &listed {
        let have = counted.remove(seg).unwrap_or_default();
        if have != (*rows, *bytes) {
            return Err(format!(
                "segment {seg} is listed with {rows} rows of {bytes} bytes, the rows say {have:?}"
            ));
        }
        if !files.contains_key(seg) {
            return Err(format!("segment {seg} is listed and has no file"));
        }
    }
    if let Some((seg, have)) = counted.into_iter().next() {
        return Err(format!("segment {seg} holds rows {have:?}, not listed"));
    }
    for id in files.keys() {
        if *id != tail.seg && !listed.contains_key(id) {
            return Err(format!(
                "segment file {id} is left over (listed {:?}, active {})",
                listed.keys().collect::<Vec<_>>(),
                tail.seg
            ));
        }
    }
    Ok(())
}

/// Where an event was found after the power came back.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    Pending,
    Retained,
    Dead,
    Missing,
}

/// Checks the reopened journal against the model; the first violation found.
pub(super) async fn check(r: &Round, j: &Arc<RedbJournal>) -> Result<(), String> {
    let bad = j.db().check_invariants().map_err(|e| e.to_string())?;
    if !bad.is_empty() {
        return Err(format!("invariants broken: {bad:#?}"));
    }
    check_segments(r, j)?;
    let Live {
        pending,
        dead,
        rows,
    } = read_live(j).await?;
    let eps = j.endpoints().await.map_err(|e| e.to_string())?;
    for (id, e) in &r.model.events {
        let row = rows.contains(&(e.endpoint.clone(), e.seq));
        let found = match (pending.get(id), dead.get(id)) {
            (Some(_), Some(_)) => return Err(format!("{id} is pending and a dead letter")),
            (Some(&seq), None) if seq == e.seq => Found::Pending,
            (None, Some(&seq)) if seq == e.seq => Found::Dead,
            (None, None) if row => Found::Retained,
            (None, None) => Found::Missing,
            _ => return Err(format!("{id} is back at another seq than {}", e.seq)),
        };
        let ok = e.allowed.iter().any(|st| match st {
            St::Pending => found == Found::Pending,
            St::Dead => found == Found::Dead,
            St::Delivered => found == Found::Retained,
            St::Swept => found == Found::Missing,
        });
        if !ok {
            return Err(format!(
                "acknowledged event {id} ({}/{}) found {found:?}, allowed {:?}",
                e.endpoint, e.seq, e.allowed
            ));
        }
    }
    for ep in &r.model.endpoints {
        let Some(rec) = eps.iter().find(|e| &e.id == ep) else {
            return Err(format!("the acknowledged endpoint {ep} is gone"));
        };
        let top = (r.model.events.values().filter(|e| &e.endpoint == ep))
            .map(|e| e.seq)
            .max();
        if top.is_some_and(|top| rec.next_seq <= top) {
            return Err(format!("{ep}: next_seq {} reuses a seq", rec.next_seq));
        }
    }
    Ok(())
}

/// After the check: the journal takes new events and delivers them.
pub(super) async fn still_works(r: &mut Round, j: &Arc<RedbJournal>) -> Result<(), String> {
    for ep in r.model.endpoints.clone() {
        let req = r.req(&ep);
        let ok = j
            .enqueue(req)
            .await
            .map_err(|e| format!("enqueue after: {e}"))?;
        let e = Ev {
            endpoint: ep.clone(),
            seq: ok.seq,
            enqueued_ms: 0,
            attempts: 1,
            latest: St::Pending,
            allowed: vec![],
        };
        j.record_progress(update(&e, &ok.id, ProgressOutcome::Delivered, None));
        j.sync().await.map_err(|e| format!("sync after: {e}"))?;
        let left = j
            .load_events(&ep, ok.seq, 1)
            .await
            .map_err(|e| e.to_string())?;
        if left.events.iter().any(|q| q.seq == ok.seq) {
            return Err(format!("{ep}: a new event was not delivered"));
        }
    }
    Ok(())
}
