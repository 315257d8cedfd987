//! The retained log's side tables in redb (`done`, `reopened`; see `store/rules/log.rs`):
//! [`ReadLogTables`] for a write transaction's tables and for a read view (which may find
//! neither table in a journal of an older schema opened read-only: both read as empty), and
//! [`LogTables`] for the write side.

use redb::ReadableTable;

use super::tables::{BySeq, ReadView, WriteTables, lazy_opt, se};
use super::{DONE, REOPENED};
use crate::store::StoreError;
use crate::store::tables::{LogTables, ReadLogTables};

fn done_has(
    t: Option<&impl ReadableTable<BySeq, ()>>,
    ep: &str,
    seq: u64,
) -> Result<bool, StoreError> {
    match t {
        Some(t) => Ok(t.get((ep, seq)).map_err(se)?.is_some()),
        None => Ok(false),
    }
}

fn done_each(
    t: Option<&impl ReadableTable<BySeq, ()>>,
    ep: &str,
    from: u64,
    mut f: impl FnMut(u64) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(t) = t else { return Ok(()) };
    for row in t.range((ep, from)..=(ep, u64::MAX)).map_err(se)? {
        let (k, _) = row.map_err(se)?;
        if !f(k.value().1)? {
            break;
        }
    }
    Ok(())
}

fn done_all(
    t: Option<&impl ReadableTable<BySeq, ()>>,
    mut f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(t) = t else { return Ok(()) };
    for row in t.iter().map_err(se)? {
        let (k, _) = row.map_err(se)?;
        let (ep, seq) = k.value();
        if !f(ep, seq)? {
            break;
        }
    }
    Ok(())
}

fn reopened_get(
    t: Option<&impl ReadableTable<BySeq, u8>>,
    ep: &str,
    seq: u64,
) -> Result<Option<u8>, StoreError> {
    match t {
        Some(t) => Ok(t.get((ep, seq)).map_err(se)?.map(|v| v.value())),
        None => Ok(None),
    }
}

fn reopened_each(
    t: Option<&impl ReadableTable<BySeq, u8>>,
    ep: &str,
    from: u64,
    mut f: impl FnMut(u64, u8) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(t) = t else { return Ok(()) };
    for row in t.range((ep, from)..=(ep, u64::MAX)).map_err(se)? {
        let (k, v) = row.map_err(se)?;
        if !f(k.value().1, v.value())? {
            break;
        }
    }
    Ok(())
}

fn reopened_all(
    t: Option<&impl ReadableTable<BySeq, u8>>,
    mut f: impl FnMut(&str, u64, u8) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(t) = t else { return Ok(()) };
    for row in t.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let (ep, seq) = k.value();
        if !f(ep, seq, v.value())? {
            break;
        }
    }
    Ok(())
}

/// Implements [`ReadLogTables`] from one accessor per table (`$this` is `self`).
macro_rules! read_log_tables {
    ($ty:ty, $this:ident, done: $done:expr, reopened: $reopened:expr) => {
        impl ReadLogTables for $ty {
            fn done_has(&self, ep: &str, seq: u64) -> Result<bool, StoreError> {
                let $this = self;
                done_has($done, ep, seq)
            }
            fn done_each(
                &self,
                ep: &str,
                from: u64,
                f: impl FnMut(u64) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                done_each($done, ep, from, f)
            }
            fn done_all(
                &self,
                f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                done_all($done, f)
            }
            fn reopened_get(&self, ep: &str, seq: u64) -> Result<Option<u8>, StoreError> {
                let $this = self;
                reopened_get($reopened, ep, seq)
            }
            fn reopened_each(
                &self,
                ep: &str,
                from: u64,
                f: impl FnMut(u64, u8) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                reopened_each($reopened, ep, from, f)
            }
            fn reopened_all(
                &self,
                f: impl FnMut(&str, u64, u8) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let $this = self;
                reopened_all($reopened, f)
            }
        }
    };
}

read_log_tables!(WriteTables<'_>, this, done: Some(&this.done), reopened: Some(&this.reopened));
read_log_tables!(ReadView, this,
    done: lazy_opt(&this.done, || this.tx.open_table(DONE))?,
    reopened: lazy_opt(&this.reopened, || this.tx.open_table(REOPENED))?);

impl LogTables for WriteTables<'_> {
    fn done_put(&mut self, ep: &str, seq: u64) -> Result<(), StoreError> {
        self.done.insert((ep, seq), ()).map_err(se)?;
        Ok(())
    }
    fn done_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.done.remove((ep, seq)).map_err(se)?.is_some())
    }
    fn reopened_put(&mut self, ep: &str, seq: u64, flags: u8) -> Result<(), StoreError> {
        self.reopened.insert((ep, seq), flags).map_err(se)?;
        Ok(())
    }
    fn reopened_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.reopened.remove((ep, seq)).map_err(se)?.is_some())
    }
    fn log_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.done
            .retain_in((ep, 0)..=(ep, u64::MAX), |_, _| false)
            .map_err(se)?;
        self.reopened
            .retain_in((ep, 0)..=(ep, u64::MAX), |_, _| false)
            .map_err(se)
    }
}
