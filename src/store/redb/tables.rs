//! The redb tables behind [`Tables`] / [`ReadTables`]: [`WriteTables`] are the tables of one
//! write transaction (opened once per group commit), [`ReadView`] a read transaction that opens
//! a table on its first use. Both read through the same helpers; the key layout (tuples of
//! endpoint and seq, `tomb:<endpoint>` in `meta`) is the on-disk format of `store.rs`.

use std::cell::OnceCell;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table, WriteTransaction};

use super::event_rows::{Bodies, EventRows};
use super::sealed::{self, CHANNELS_AD, ENDPOINTS_AD, RowSeal};
use super::segments::Segments;
use super::{
    ATTEMPTS, CHANNELS, DEAD, DEAD_INDEX, DEAD_RECORDS, DONE, ENDPOINTS, EVENTS, IDEMPOTENCY, META,
    PROGRESS, REOPENED, SEGMENTS,
};
use crate::store::StoreError;
use crate::store::tables::{ReadTables, Tables};

/// Which storage error a redb call produced.
pub(crate) fn se(e: impl Into<redb::Error>) -> StoreError {
    StoreError::from_redb(e)
}

pub(super) type ById = &'static str;
pub(super) type BySeq = (&'static str, u64);
type ByKey = (&'static str, &'static str);
type Bytes = &'static [u8];

/// The `meta` key of an endpoint id's tombstone.
fn tomb_key(endpoint: &str) -> String {
    format!("tomb:{endpoint}")
}
/// Where tombstone keys start and end in `meta` (`;` follows `:`).
const TOMB_FIRST: &str = "tomb:";
const TOMB_END: &str = "tomb;";

fn get_id<T>(
    t: &impl ReadableTable<ById, Bytes>,
    k: &str,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    Ok(t.get(k).map_err(se)?.map(|v| f(v.value())))
}

fn each_id(
    t: &impl ReadableTable<ById, Bytes>,
    mut f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        if !f(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}

fn get_seq<T>(
    t: &impl ReadableTable<BySeq, Bytes>,
    ep: &str,
    seq: u64,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    Ok(t.get((ep, seq)).map_err(se)?.map(|v| f(v.value())))
}

fn each_seq(
    t: &impl ReadableTable<BySeq, Bytes>,
    ep: &str,
    from: u64,
    rev: bool,
    f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let range = t.range((ep, from)..=(ep, u64::MAX)).map_err(se)?;
    if rev {
        visit_seq(range.rev(), f)
    } else {
        visit_seq(range, f)
    }
}

type SeqRow<'a> =
    Result<(redb::AccessGuard<'a, BySeq>, redb::AccessGuard<'a, Bytes>), redb::StorageError>;

fn visit_seq<'a>(
    rows: impl Iterator<Item = SeqRow<'a>>,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in rows {
        let (k, v) = row.map_err(se)?;
        if !f(k.value().1, v.value())? {
            break;
        }
    }
    Ok(())
}

fn all_seq(
    t: &impl ReadableTable<BySeq, Bytes>,
    mut f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let (ep, seq) = k.value();
        if !f(ep, seq, v.value())? {
            break;
        }
    }
    Ok(())
}

/// Implements [`ReadTables`] for a type from one accessor per table (`$this` is `self`).
macro_rules! read_tables {
    ($ty:ty, $this:ident, meta: $meta:expr, endpoints: $endpoints:expr, events: $events:expr,
     bodies: $bodies:expr,
     progress: $progress:expr, dead: $dead:expr, dead_records: $dead_records:expr,
     dead_index: $dead_index:expr,
     attempts: $attempts:expr, idempotency: $idempotency:expr, channels: $channels:expr,
     seal: $seal:expr) => {
        impl ReadTables for $ty {
            fn endpoint_get<T>(
                &self,
                id: &str,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                sealed::get($endpoints, ENDPOINTS_AD, $seal, id, f)
            }
            fn endpoints_each(
                &self,
                f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                sealed::each($endpoints, ENDPOINTS_AD, $seal, f)
            }
            fn event_get<T>(
                &self,
                ep: &str,
                seq: u64,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                super::event_rows::get($events, $bodies, ep, seq, f)
            }
            fn event_head(
                &self,
                ep: &str,
                seq: u64,
            ) -> Result<Option<(u64, Option<u64>)>, StoreError> {
                let $this = self;
                super::event_rows::head_of($events, ep, seq)
            }
            fn events_each_head(
                &self,
                ep: &str,
                from: u64,
                f: impl FnMut(u64, u64, Option<u64>) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                super::event_rows::heads($events, ep, from, f)
            }
            fn events_each(
                &self,
                ep: &str,
                from: u64,
                f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                super::event_rows::each($events, $bodies, ep, from, f)
            }
            fn events_all(
                &self,
                f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                super::event_rows::all($events, $bodies, f)
            }
            fn progress_get<T>(
                &self,
                ep: &str,
                seq: u64,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                get_seq($progress, ep, seq, f)
            }
            fn progress_all(
                &self,
                f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                all_seq($progress, f)
            }
            fn dead_get<T>(
                &self,
                id: &str,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                get_id($dead, id, f)
            }
            fn dead_each(
                &self,
                f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                each_id($dead, f)
            }
            fn dead_record_get<T>(
                &self,
                id: &str,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                get_id($dead_records, id, f)
            }
            fn dead_each_after(
                &self,
                after: Option<&str>,
                mut f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                let rows = match after {
                    Some(a) => $dead
                        .range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
                    None => $dead.range::<&str>(..),
                };
                for row in rows.map_err(se)? {
                    let (k, v) = row.map_err(se)?;
                    if !f(k.value(), v.value())? {
                        break;
                    }
                }
                Ok(())
            }
            fn dead_index_each(
                &self,
                ep: &str,
                from: u64,
                mut f: impl FnMut(u64, &str) -> Result<bool, StoreError>,
            ) -> Result<bool, StoreError> {
                let $this = self;
                let Some(index) = $dead_index else {
                    return Ok(false);
                };
                each_seq(index, ep, from, false, |seq, id| {
                    f(seq, std::str::from_utf8(id).unwrap_or_default())
                })?;
                Ok(true)
            }
            fn dead_index_all(
                &self,
                mut f: impl FnMut(&str, u64, &str) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                let Some(index) = $dead_index else {
                    return Ok(());
                };
                all_seq(index, |ep, seq, id| {
                    f(ep, seq, std::str::from_utf8(id).unwrap_or_default())
                })
            }
            fn dead_records_each(
                &self,
                f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                each_id($dead_records, f)
            }
            fn attempt_get<T>(
                &self,
                ep: &str,
                n: u64,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                get_seq($attempts, ep, n, f)
            }
            fn attempts_each_rev_in(
                &self,
                ep: &str,
                from: u64,
                to: u64,
                f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                if from > to {
                    return Ok(());
                }
                let range = $attempts.range((ep, from)..=(ep, to)).map_err(se)?;
                visit_seq(range.rev(), f)
            }
            fn attempts_all(
                &self,
                f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                all_seq($attempts, f)
            }
            fn idempotency_get<T>(
                &self,
                ep: &str,
                key: &str,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                Ok($idempotency
                    .get((ep, key))
                    .map_err(se)?
                    .map(|v| f(v.value())))
            }
            fn idempotency_all(
                &self,
                mut f: impl FnMut(&str, &str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                for row in $idempotency.iter().map_err(se)? {
                    let (k, v) = row.map_err(se)?;
                    let (ep, key) = k.value();
                    if !f(ep, key, v.value())? {
                        break;
                    }
                }
                Ok(())
            }
            fn channel_get<T>(
                &self,
                id: &str,
                f: impl FnOnce(&[u8]) -> T,
            ) -> Result<Option<T>, StoreError> {
                let $this = self;
                sealed::get($channels, CHANNELS_AD, $seal, id, f)
            }
            fn channels_each(
                &self,
                f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                sealed::each($channels, CHANNELS_AD, $seal, f)
            }
            fn tombstones_each(
                &self,
                mut f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                for row in $meta.range(TOMB_FIRST..TOMB_END).map_err(se)? {
                    let (k, v) = row.map_err(se)?;
                    let ep = k.value().strip_prefix(TOMB_FIRST).unwrap_or_default();
                    if !f(ep, v.value())? {
                        break;
                    }
                }
                Ok(())
            }
        }
    };
}

/// The tables of one write transaction.
pub(crate) struct WriteTables<'t> {
    pub(super) meta: Table<'t, ById, u64>,
    endpoints: Table<'t, ById, Bytes>,
    pub(super) events: EventRows<'t>,
    pub(super) segments: Table<'t, u64, (u64, u64)>,
    progress: Table<'t, BySeq, Bytes>,
    dead: Table<'t, ById, Bytes>,
    dead_records: Table<'t, ById, Bytes>,
    dead_index: Table<'t, BySeq, Bytes>,
    attempts: Table<'t, BySeq, Bytes>,
    idempotency: Table<'t, ByKey, Bytes>,
    channels: Table<'t, ById, Bytes>,
    pub(super) done: Table<'t, BySeq, ()>,
    pub(super) reopened: Table<'t, BySeq, u8>,
    seal: &'t RowSeal,
}

impl<'t> WriteTables<'t> {
    /// The tables of `tx`, the sealed ones under `seal`; new records go to `segs` when the
    /// journal has a segment log.
    pub(crate) fn open(
        tx: &'t WriteTransaction,
        segs: Option<&'t Segments>,
        seal: &'t RowSeal,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            meta: tx.open_table(META).map_err(se)?,
            endpoints: tx.open_table(ENDPOINTS).map_err(se)?,
            events: EventRows {
                table: tx.open_table(EVENTS).map_err(se)?,
                segs,
                txn: segs.map(Segments::begin),
            },
            segments: tx.open_table(SEGMENTS).map_err(se)?,
            progress: tx.open_table(PROGRESS).map_err(se)?,
            dead: tx.open_table(DEAD).map_err(se)?,
            dead_records: tx.open_table(DEAD_RECORDS).map_err(se)?,
            dead_index: tx.open_table(DEAD_INDEX).map_err(se)?,
            attempts: tx.open_table(ATTEMPTS).map_err(se)?,
            idempotency: tx.open_table(IDEMPOTENCY).map_err(se)?,
            channels: tx.open_table(CHANNELS).map_err(se)?,
            done: tx.open_table(DONE).map_err(se)?,
            reopened: tx.open_table(REOPENED).map_err(se)?,
            seal,
        })
    }
}

read_tables!(WriteTables<'_>, this,
    meta: &this.meta, endpoints: &this.endpoints, events: &this.events.table,
    bodies: this.events.bodies(),
    progress: &this.progress, dead: &this.dead, dead_records: &this.dead_records,
    dead_index: Some(&this.dead_index),
    attempts: &this.attempts, idempotency: &this.idempotency, channels: &this.channels,
    seal: this.seal);

fn clear_seq(t: &mut Table<'_, BySeq, Bytes>, ep: &str) -> Result<(), StoreError> {
    t.retain_in((ep, 0)..=(ep, u64::MAX), |_, _| false)
        .map_err(se)
}

impl Tables for WriteTables<'_> {
    fn endpoint_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        sealed::put(&mut self.endpoints, ENDPOINTS_AD, self.seal, id, value)
    }
    fn endpoint_remove(&mut self, id: &str) -> Result<(), StoreError> {
        self.endpoints.remove(id).map_err(se)?;
        Ok(())
    }

    fn event_put(&mut self, ep: &str, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.events.put(ep, seq, record)
    }
    fn event_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.events.remove(ep, seq, false)?.is_some())
    }
    fn event_take(&mut self, ep: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.events.remove(ep, seq, true)
    }
    fn events_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.events.clear(ep)
    }

    fn progress_put(&mut self, ep: &str, seq: u64, value: &[u8]) -> Result<(), StoreError> {
        self.progress.insert((ep, seq), value).map_err(se)?;
        Ok(())
    }
    fn progress_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.progress.remove((ep, seq)).map_err(se)?.is_some())
    }
    fn progress_take(&mut self, ep: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.progress.remove((ep, seq)).map_err(se)?;
        Ok(v.map(|v| v.value().to_vec()))
    }
    fn progress_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        clear_seq(&mut self.progress, ep)
    }

    fn dead_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.dead.insert(id, value).map_err(se)?;
        Ok(())
    }
    fn dead_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.dead.remove(id).map_err(se)?.is_some())
    }
    fn dead_record_put(&mut self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.dead_records.insert(id, record).map_err(se)?;
        Ok(())
    }
    fn dead_record_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.dead_records.remove(id).map_err(se)?.is_some())
    }
    fn dead_index_put(&mut self, ep: &str, seq: u64, id: &str) -> Result<(), StoreError> {
        self.dead_index
            .insert((ep, seq), id.as_bytes())
            .map_err(se)?;
        Ok(())
    }
    fn dead_index_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.dead_index.remove((ep, seq)).map_err(se)?.is_some())
    }

    fn attempt_put(&mut self, ep: &str, n: u64, value: &[u8]) -> Result<(), StoreError> {
        self.attempts.insert((ep, n), value).map_err(se)?;
        Ok(())
    }
    fn attempts_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        clear_seq(&mut self.attempts, ep)
    }

    fn idempotency_put(&mut self, ep: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.idempotency.insert((ep, key), value).map_err(se)?;
        Ok(())
    }
    fn idempotency_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.idempotency.retain(|k, _| k.0 != ep).map_err(se)
    }
    fn idempotency_retain(
        &mut self,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.idempotency.retain(|_, v| keep(v)).map_err(se)
    }

    fn channel_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        sealed::put(&mut self.channels, CHANNELS_AD, self.seal, id, value)
    }
    fn channel_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.channels.remove(id).map_err(se)?.is_some())
    }

    fn tombstone_put(&mut self, ep: &str, next_seq: u64) -> Result<(), StoreError> {
        self.meta
            .insert(tomb_key(ep).as_str(), next_seq)
            .map_err(se)?;
        Ok(())
    }
    fn tombstone_take(&mut self, ep: &str) -> Result<Option<u64>, StoreError> {
        let v = self.meta.remove(tomb_key(ep).as_str()).map_err(se)?;
        Ok(v.map(|v| v.value()))
    }
}

/// A read transaction whose tables are opened on first use (most reads need one or two).
pub(crate) struct ReadView {
    pub(super) tx: ReadTransaction,
    segs: Option<std::sync::Arc<Segments>>,
    seal: RowSeal,
    meta: OnceCell<ReadOnlyTable<ById, u64>>,
    endpoints: OnceCell<ReadOnlyTable<ById, Bytes>>,
    events: OnceCell<ReadOnlyTable<BySeq, Bytes>>,
    progress: OnceCell<ReadOnlyTable<BySeq, Bytes>>,
    dead: OnceCell<ReadOnlyTable<ById, Bytes>>,
    dead_records: OnceCell<ReadOnlyTable<ById, Bytes>>,
    /// `None` inside when the file has no index (first schema, opened read-only).
    dead_index: OnceCell<Option<ReadOnlyTable<BySeq, Bytes>>>,
    attempts: OnceCell<ReadOnlyTable<BySeq, Bytes>>,
    idempotency: OnceCell<ReadOnlyTable<ByKey, Bytes>>,
    channels: OnceCell<ReadOnlyTable<ById, Bytes>>,
    /// `None` inside when the file has no such table (an older schema, opened read-only).
    pub(super) done: OnceCell<Option<ReadOnlyTable<BySeq, ()>>>,
    pub(super) reopened: OnceCell<Option<ReadOnlyTable<BySeq, u8>>>,
}

/// The table in `cell`, opened by `open` the first time.
fn lazy<T>(
    cell: &OnceCell<T>,
    open: impl FnOnce() -> Result<T, redb::TableError>,
) -> Result<&T, StoreError> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let t = open().map_err(se)?;
    Ok(cell.get_or_init(|| t))
}

/// [`lazy`] for a table a journal of an older schema may not have: `None` then.
pub(super) fn lazy_opt<T>(
    cell: &OnceCell<Option<T>>,
    open: impl FnOnce() -> Result<T, redb::TableError>,
) -> Result<Option<&T>, StoreError> {
    if let Some(t) = cell.get() {
        return Ok(t.as_ref());
    }
    let t = match open() {
        Ok(t) => Some(t),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(se(e)),
    };
    Ok(cell.get_or_init(|| t).as_ref())
}

impl ReadView {
    pub(crate) fn new(
        tx: ReadTransaction,
        segs: Option<std::sync::Arc<Segments>>,
        seal: RowSeal,
    ) -> Self {
        Self {
            tx,
            segs,
            seal,
            meta: OnceCell::new(),
            endpoints: OnceCell::new(),
            events: OnceCell::new(),
            progress: OnceCell::new(),
            dead: OnceCell::new(),
            dead_records: OnceCell::new(),
            dead_index: OnceCell::new(),
            attempts: OnceCell::new(),
            idempotency: OnceCell::new(),
            channels: OnceCell::new(),
            done: OnceCell::new(),
            reopened: OnceCell::new(),
        }
    }
}

read_tables!(ReadView, this,
    meta: lazy(&this.meta, || this.tx.open_table(META))?,
    endpoints: lazy(&this.endpoints, || this.tx.open_table(ENDPOINTS))?,
    events: lazy(&this.events, || this.tx.open_table(EVENTS))?,
    bodies: Bodies { segs: this.segs.as_deref(), txn: None },
    progress: lazy(&this.progress, || this.tx.open_table(PROGRESS))?,
    dead: lazy(&this.dead, || this.tx.open_table(DEAD))?,
    dead_records: lazy(&this.dead_records, || this.tx.open_table(DEAD_RECORDS))?,
    dead_index: lazy_opt(&this.dead_index, || this.tx.open_table(DEAD_INDEX))?,
    attempts: lazy(&this.attempts, || this.tx.open_table(ATTEMPTS))?,
    idempotency: lazy(&this.idempotency, || this.tx.open_table(IDEMPOTENCY))?,
    channels: lazy(&this.channels, || this.tx.open_table(CHANNELS))?,
    seal: &this.seal);
