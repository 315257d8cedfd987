//! The ingress channel table: every channel's settings and its token bucket, read by the
//! ingress on each request and updated by the admin API on `PUT`/`DELETE /v1/channels/{id}`
//! (the API imports this table; the ingress imports nothing of the API).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::time::Instant;

use crate::core::model::ChannelRecord;
use crate::core::ratelimit::TokenBucket;

/// Channels and their buckets, shared by the ingress and the admin API.
#[derive(Default)]
pub struct Channels {
    by_id: RwLock<HashMap<String, Arc<ChannelRecord>>>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl Channels {
    pub fn load(list: Vec<ChannelRecord>) -> Self {
        let c = Self::default();
        for r in list {
            c.set(r);
        }
        c
    }

    pub fn get(&self, id: &str) -> Option<Arc<ChannelRecord>> {
        self.by_id.read().ok()?.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<ChannelRecord>> {
        let mut v: Vec<_> = self
            .by_id
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Installs a (new) configuration; its bucket starts full.
    pub fn set(&self, rec: ChannelRecord) {
        if let Ok(mut b) = self.buckets.lock() {
            b.remove(&rec.id);
        }
        if let Ok(mut m) = self.by_id.write() {
            m.insert(rec.id.clone(), Arc::new(rec));
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut b) = self.buckets.lock() {
            b.remove(id);
        }
        if let Ok(mut m) = self.by_id.write() {
            m.remove(id);
        }
    }

    /// Takes a token of the channel's bucket, or says how long to wait.
    pub fn admit(&self, ch: &ChannelRecord, now: Instant) -> Result<(), std::time::Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        buckets
            .entry(ch.id.clone())
            .or_insert_with(|| TokenBucket::new(ch.config.rate_limit, ch.config.burst, now))
            .try_acquire(now)
    }
}
