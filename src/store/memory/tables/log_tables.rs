//! The retained log's side tables in memory (`done`, `reopened`; see `store/rules/log.rs`).

use super::{MemTables, range_of, seq_key};
use crate::store::StoreError;
use crate::store::tables::{LogTables, ReadLogTables};

impl ReadLogTables for MemTables {
    fn done_has(&self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.done.map.contains_key(&seq_key(ep, seq)))
    }
    fn done_each(
        &self,
        ep: &str,
        from: u64,
        mut f: impl FnMut(u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((_, seq), _) in self.done.map.range(range_of(ep, from)) {
            if !f(*seq)? {
                break;
            }
        }
        Ok(())
    }
    fn done_all(
        &self,
        mut f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for (ep, seq) in self.done.map.keys() {
            if !f(ep, *seq)? {
                break;
            }
        }
        Ok(())
    }
    fn reopened_get(&self, ep: &str, seq: u64) -> Result<Option<u8>, StoreError> {
        Ok(self.reopened.map.get(&seq_key(ep, seq)).copied())
    }
    fn reopened_each(
        &self,
        ep: &str,
        from: u64,
        mut f: impl FnMut(u64, u8) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((_, seq), flags) in self.reopened.map.range(range_of(ep, from)) {
            if !f(*seq, *flags)? {
                break;
            }
        }
        Ok(())
    }
    fn reopened_all(
        &self,
        mut f: impl FnMut(&str, u64, u8) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((ep, seq), flags) in &self.reopened.map {
            if !f(ep, *seq, *flags)? {
                break;
            }
        }
        Ok(())
    }
}

impl LogTables for MemTables {
    fn done_put(&mut self, ep: &str, seq: u64) -> Result<(), StoreError> {
        self.done.put(seq_key(ep, seq), ());
        Ok(())
    }
    fn done_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.done.take(&seq_key(ep, seq)).is_some())
    }
    fn reopened_put(&mut self, ep: &str, seq: u64, flags: u8) -> Result<(), StoreError> {
        self.reopened.put(seq_key(ep, seq), flags);
        Ok(())
    }
    fn reopened_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.reopened.take(&seq_key(ep, seq)).is_some())
    }
    fn log_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.done.remove_where(|(e, _), _| e == ep);
        self.reopened.remove_where(|(e, _), _| e == ep);
        Ok(())
    }
}
