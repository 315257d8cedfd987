//! The in-memory tables: ordered maps of the same keys and bytes as the redb tables, each with
//! an undo log, so that a transaction that fails is taken back whole.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::store::StoreError;
use crate::store::tables::{ReadTables, Tables};

/// One ordered table and the old values of the keys the open transaction changed.
#[derive(Debug)]
struct Tab<K: Ord + Clone, V: Clone> {
    map: BTreeMap<K, V>,
    undo: Vec<(K, Option<V>)>,
}

impl<K: Ord + Clone, V: Clone> Default for Tab<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            undo: Vec::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Tab<K, V> {
    fn put(&mut self, k: K, v: V) {
        let old = self.map.insert(k.clone(), v);
        self.undo.push((k, old));
    }

    fn take(&mut self, k: &K) -> Option<V> {
        let old = self.map.remove(k);
        if let Some(v) = &old {
            self.undo.push((k.clone(), Some(v.clone())));
        }
        old
    }

    /// Removes the keys `drop` selects.
    fn remove_where(&mut self, mut drop: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> = self
            .map
            .iter()
            .filter(|(k, v)| drop(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.take(&k);
        }
    }

    fn commit(&mut self) {
        self.undo.clear();
    }

    fn rollback(&mut self) {
        while let Some((k, old)) = self.undo.pop() {
            match old {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
    }
}

type Bytes = Vec<u8>;
type SeqKey = (String, u64);

/// Every table of the journal, in memory.
#[derive(Debug, Default)]
pub struct MemTables {
    tombstones: Tab<String, u64>,
    endpoints: Tab<String, Bytes>,
    events: Tab<SeqKey, Bytes>,
    progress: Tab<SeqKey, Bytes>,
    dead: Tab<String, Bytes>,
    dead_records: Tab<String, Bytes>,
    /// `(endpoint, seq)` → event id of each dead letter.
    dead_index: Tab<SeqKey, String>,
    attempts: Tab<SeqKey, Bytes>,
    idempotency: Tab<(String, String), Bytes>,
    channels: Tab<String, Bytes>,
    /// The retained log's side tables (`log_tables.rs`).
    done: Tab<SeqKey, ()>,
    reopened: Tab<SeqKey, u8>,
}

macro_rules! each_table {
    ($self:ident, $method:ident) => {
        $self.tombstones.$method();
        $self.endpoints.$method();
        $self.events.$method();
        $self.progress.$method();
        $self.dead.$method();
        $self.dead_records.$method();
        $self.dead_index.$method();
        $self.attempts.$method();
        $self.idempotency.$method();
        $self.channels.$method();
        $self.done.$method();
        $self.reopened.$method();
    };
}

impl MemTables {
    /// Makes the open transaction's changes final.
    pub fn commit(&mut self) {
        each_table!(self, commit);
    }

    /// Takes back every change of the open transaction.
    pub fn rollback(&mut self) {
        each_table!(self, rollback);
    }
}

mod log_tables;

fn seq_key(ep: &str, seq: u64) -> SeqKey {
    (ep.to_string(), seq)
}

fn get<K: Ord, T>(m: &BTreeMap<K, Bytes>, k: &K, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    m.get(k).map(|v| f(v))
}

fn each_id(
    m: &BTreeMap<String, Bytes>,
    mut f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for (k, v) in m {
        if !f(k, v)? {
            break;
        }
    }
    Ok(())
}

fn all_seq(
    m: &BTreeMap<SeqKey, Bytes>,
    mut f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for ((ep, seq), v) in m {
        if !f(ep, *seq, v)? {
            break;
        }
    }
    Ok(())
}

fn range_of(ep: &str, from: u64) -> (Bound<SeqKey>, Bound<SeqKey>) {
    (
        Bound::Included(seq_key(ep, from)),
        Bound::Included(seq_key(ep, u64::MAX)),
    )
}

impl ReadTables for MemTables {
    fn endpoint_get<T>(
        &self,
        id: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(&self.endpoints.map, &id.to_string(), f))
    }
    fn endpoints_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        each_id(&self.endpoints.map, f)
    }
    fn event_get<T>(
        &self,
        ep: &str,
        seq: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(&self.events.map, &seq_key(ep, seq), f))
    }
    fn events_each(
        &self,
        ep: &str,
        from: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((_, seq), v) in self.events.map.range(range_of(ep, from)) {
            if !f(*seq, v)? {
                break;
            }
        }
        Ok(())
    }
    fn events_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        all_seq(&self.events.map, f)
    }
    fn progress_get<T>(
        &self,
        ep: &str,
        seq: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(&self.progress.map, &seq_key(ep, seq), f))
    }
    fn progress_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        all_seq(&self.progress.map, f)
    }
    fn dead_get<T>(&self, id: &str, f: impl FnOnce(&[u8]) -> T) -> Result<Option<T>, StoreError> {
        Ok(get(&self.dead.map, &id.to_string(), f))
    }
    fn dead_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        each_id(&self.dead.map, f)
    }
    fn dead_record_get<T>(
        &self,
        id: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(&self.dead_records.map, &id.to_string(), f))
    }
    fn dead_each_after(
        &self,
        after: Option<&str>,
        mut f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let start = match after {
            Some(a) => Bound::Excluded(a.to_string()),
            None => Bound::Unbounded,
        };
        for (k, v) in self.dead.map.range((start, Bound::Unbounded)) {
            if !f(k, v)? {
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
        for ((_, seq), id) in self.dead_index.map.range(range_of(ep, from)) {
            if !f(*seq, id)? {
                break;
            }
        }
        Ok(true)
    }
    fn dead_index_all(
        &self,
        mut f: impl FnMut(&str, u64, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((ep, seq), id) in &self.dead_index.map {
            if !f(ep, *seq, id)? {
                break;
            }
        }
        Ok(())
    }
    fn dead_records_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        each_id(&self.dead_records.map, f)
    }
    fn attempt_get<T>(
        &self,
        ep: &str,
        n: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(&self.attempts.map, &seq_key(ep, n), f))
    }
    fn attempts_each_rev_in(
        &self,
        ep: &str,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if from > to {
            return Ok(());
        }
        let range = seq_key(ep, from)..=seq_key(ep, to);
        for ((_, n), v) in self.attempts.map.range(range).rev() {
            if !f(*n, v)? {
                break;
            }
        }
        Ok(())
    }
    fn attempts_all(
        &self,
        f: impl FnMut(&str, u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        all_seq(&self.attempts.map, f)
    }
    fn idempotency_get<T>(
        &self,
        ep: &str,
        key: &str,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        Ok(get(
            &self.idempotency.map,
            &(ep.to_string(), key.to_string()),
            f,
        ))
    }
    fn idempotency_all(
        &self,
        mut f: impl FnMut(&str, &str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for ((ep, key), v) in &self.idempotency.map {
            if !f(ep, key, v)? {
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
        Ok(get(&self.channels.map, &id.to_string(), f))
    }
    fn channels_each(
        &self,
        f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        each_id(&self.channels.map, f)
    }
    fn tombstones_each(
        &self,
        mut f: impl FnMut(&str, u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for (k, v) in &self.tombstones.map {
            if !f(k, *v)? {
                break;
            }
        }
        Ok(())
    }
}

impl Tables for MemTables {
    fn endpoint_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.endpoints.put(id.to_string(), value.to_vec());
        Ok(())
    }
    fn endpoint_remove(&mut self, id: &str) -> Result<(), StoreError> {
        self.endpoints.take(&id.to_string());
        Ok(())
    }

    fn event_put(&mut self, ep: &str, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.events.put(seq_key(ep, seq), record.to_vec());
        Ok(())
    }
    fn event_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.events.take(&seq_key(ep, seq)).is_some())
    }
    fn event_take(&mut self, ep: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.events.take(&seq_key(ep, seq)))
    }
    fn events_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.events.remove_where(|(e, _), _| e == ep);
        Ok(())
    }

    fn progress_put(&mut self, ep: &str, seq: u64, value: &[u8]) -> Result<(), StoreError> {
        self.progress.put(seq_key(ep, seq), value.to_vec());
        Ok(())
    }
    fn progress_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.progress.take(&seq_key(ep, seq)).is_some())
    }
    fn progress_take(&mut self, ep: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.progress.take(&seq_key(ep, seq)))
    }
    fn progress_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.progress.remove_where(|(e, _), _| e == ep);
        Ok(())
    }

    fn dead_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.dead.put(id.to_string(), value.to_vec());
        Ok(())
    }
    fn dead_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.dead.take(&id.to_string()).is_some())
    }
    fn dead_record_put(&mut self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.dead_records.put(id.to_string(), record.to_vec());
        Ok(())
    }
    fn dead_record_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.dead_records.take(&id.to_string()).is_some())
    }
    fn dead_index_put(&mut self, ep: &str, seq: u64, id: &str) -> Result<(), StoreError> {
        self.dead_index.put(seq_key(ep, seq), id.to_string());
        Ok(())
    }
    fn dead_index_remove(&mut self, ep: &str, seq: u64) -> Result<bool, StoreError> {
        Ok(self.dead_index.take(&seq_key(ep, seq)).is_some())
    }

    fn attempt_put(&mut self, ep: &str, n: u64, value: &[u8]) -> Result<(), StoreError> {
        self.attempts.put(seq_key(ep, n), value.to_vec());
        Ok(())
    }
    fn attempts_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.attempts.remove_where(|(e, _), _| e == ep);
        Ok(())
    }

    fn idempotency_put(&mut self, ep: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.idempotency
            .put((ep.to_string(), key.to_string()), value.to_vec());
        Ok(())
    }
    fn idempotency_clear(&mut self, ep: &str) -> Result<(), StoreError> {
        self.idempotency.remove_where(|(e, _), _| e == ep);
        Ok(())
    }
    fn idempotency_retain(
        &mut self,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.idempotency.remove_where(|_, v| !keep(v));
        Ok(())
    }

    fn channel_put(&mut self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.channels.put(id.to_string(), value.to_vec());
        Ok(())
    }
    fn channel_remove(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.channels.take(&id.to_string()).is_some())
    }

    fn tombstone_put(&mut self, ep: &str, next_seq: u64) -> Result<(), StoreError> {
        self.tombstones.put(ep.to_string(), next_seq);
        Ok(())
    }
    fn tombstone_take(&mut self, ep: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.tombstones.take(&ep.to_string()))
    }
}
