//! The race that reading spilled events asynchronously creates: an event is enqueued while a
//! read is out and the read did not see it. It must be delivered all the same.

use super::*;
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, DeadLetter, EndpointConfig, EndpointRecord,
};
use crate::core::record::EventMeta;
use crate::store::{EnqueueOk, EnqueueReq, JFuture, StoredRecord};

/// The real journal, except that the first `load_events` answers only when told to (after its
/// read is done, so that what is committed meanwhile is not in its answer).
struct HeldRead {
    inner: Arc<RedbJournal>,
    /// Told when the first read is done.
    read_done: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Awaited before the first read answers.
    release: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Journal for HeldRead {
    fn load_events(&self, endpoint: &str, from: u64, limit: usize) -> JFuture<'_, Loaded> {
        let endpoint = endpoint.to_string();
        Box::pin(async move {
            let r = self.inner.load_events(&endpoint, from, limit).await;
            let done = self.read_done.lock().unwrap().take();
            let release = self.release.lock().unwrap().take();
            if let (Some(done), Some(release)) = (done, release) {
                let _ = done.send(());
                let _ = release.await;
            }
            r
        })
    }

    fn enqueue(&self, req: EnqueueReq) -> JFuture<'_, EnqueueOk> {
        self.inner.enqueue(req)
    }
    fn enqueue_batch(&self, reqs: Vec<EnqueueReq>) -> JFuture<'_, Vec<EnqueueOk>> {
        self.inner.enqueue_batch(reqs)
    }
    fn put_endpoint(
        &self,
        id: String,
        config: EndpointConfig,
    ) -> JFuture<'_, (EndpointRecord, bool)> {
        self.inner.put_endpoint(id, config)
    }
    fn set_paused(&self, id: String, paused: bool) -> JFuture<'_, EndpointRecord> {
        self.inner.set_paused(id, paused)
    }
    fn delete_endpoint(&self, id: String, force: bool) -> JFuture<'_, ()> {
        self.inner.delete_endpoint(id, force)
    }
    fn replay(&self, event_id: String) -> JFuture<'_, (String, u64)> {
        self.inner.replay(event_id)
    }
    fn purge(&self, event_id: String) -> JFuture<'_, ()> {
        self.inner.purge(event_id)
    }
    fn put_channel(&self, id: String, config: ChannelConfig) -> JFuture<'_, (ChannelRecord, bool)> {
        self.inner.put_channel(id, config)
    }
    fn delete_channel(&self, id: String) -> JFuture<'_, ()> {
        self.inner.delete_channel(id)
    }
    fn sync(&self) -> JFuture<'_, ()> {
        self.inner.sync()
    }
    fn close(&self) -> JFuture<'_, ()> {
        self.inner.close()
    }
    fn log_attempt(&self, endpoint: String, attempt: AttemptRecord) -> JFuture<'_, ()> {
        self.inner.log_attempt(endpoint, attempt)
    }
    fn record_progress(&self, update: ProgressUpdate) {
        self.inner.record_progress(update)
    }
    fn quarantine(&self, endpoint: Arc<str>, seq: u64, why: String) {
        self.inner.quarantine(endpoint, seq, why)
    }
    fn endpoints(&self) -> JFuture<'_, Vec<EndpointRecord>> {
        self.inner.endpoints()
    }
    fn endpoint(&self, id: &str) -> JFuture<'_, Option<EndpointRecord>> {
        self.inner.endpoint(id)
    }
    fn channels(&self) -> JFuture<'_, Vec<ChannelRecord>> {
        self.inner.channels()
    }
    fn dead_letters(&self, endpoint: Option<&str>) -> JFuture<'_, Vec<DeadLetter>> {
        self.inner.dead_letters(endpoint)
    }
    fn dead_letter_page(
        &self,
        query: crate::store::DeadQuery,
    ) -> JFuture<'_, crate::store::DeadPage> {
        self.inner.dead_letter_page(query)
    }
    fn replay_matching(
        &self,
        filter: crate::core::dead_filter::DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, crate::store::BulkDone> {
        self.inner.replay_matching(filter, after, limit)
    }
    fn purge_matching(
        &self,
        filter: crate::core::dead_filter::DeadFilter,
        after: Option<u64>,
        limit: usize,
    ) -> JFuture<'_, crate::store::BulkDone> {
        self.inner.purge_matching(filter, after, limit)
    }
    fn dead_letter(&self, event_id: &str) -> JFuture<'_, Option<(DeadLetter, StoredRecord)>> {
        self.inner.dead_letter(event_id)
    }
    fn attempts(&self, endpoint: &str, limit: usize) -> JFuture<'_, Vec<AttemptRecord>> {
        self.inner.attempts(endpoint, limit)
    }
    fn backfill(&self, req: crate::store::BackfillReq) -> JFuture<'_, crate::store::BackfillDone> {
        self.inner.backfill(req)
    }
    fn sweep(&self) -> JFuture<'_, crate::store::SweepDone> {
        self.inner.sweep()
    }
}

fn req(i: usize) -> EnqueueReq {
    let meta = EventMeta {
        id: format!("evt_{i:026}"),
        enqueued_at_ms: 0,
        content_type: "application/json".into(),
        event_type: None,
    };
    EnqueueReq::new("ep".into(), meta, "{}".into(), None).unwrap()
}

/// Waits for a journal call by yielding (paused time must not run ahead of the writer thread).
async fn call<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let task = tokio::spawn(f);
    while !task.is_finished() {
        tokio::task::yield_now().await;
    }
    task.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_event_enqueued_while_a_read_is_out_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, rx) = Scheduler::channel();
    // Notices reach the scheduler only once it has read the endpoint (as in the daemon).
    let to_sched: Arc<Mutex<Option<SchedulerHandle>>> = Arc::default();
    let sink = to_sched.clone();
    let inner = Arc::new(
        RedbJournal::open(
            &dir.path().join("t.redb"),
            crate::store::redb::DEFAULT_CACHE_BYTES,
            crate::store::seal::KeyRing::test_ring(),
            Box::new(move |n| {
                if let Some(h) = sink.lock().unwrap().as_ref() {
                    h.notify(n);
                }
            }),
        )
        .unwrap(),
    );
    let config = EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![1_000],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    };
    inner.put_endpoint("ep".into(), config).await.unwrap();
    // Three events wait in the journal when the scheduler starts: it reads them.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(inner.enqueue(req(i)).await.unwrap().id);
    }
    let rec = inner.endpoint("ep").await.unwrap().unwrap();
    assert_eq!(rec.pending, 3);
    *to_sched.lock().unwrap() = Some(handle.clone());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel();
    let journal = Arc::new(HeldRead {
        inner: inner.clone(),
        read_done: Mutex::new(Some(done_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let log: Log = Arc::default();
    let dest = Arc::new(Scripted {
        t0: Instant::now(),
        log: log.clone(),
        calls: Mutex::new(0),
        f: Box::new(ok_always),
    });
    let sched = Scheduler::new(
        SchedulerConfig::default(),
        journal,
        Arc::new(ScriptedFactory(dest)),
        vec![rec],
    );
    tokio::spawn(sched.run(rx));
    // The read is done but not answered; the fourth event is committed and noticed meanwhile.
    done_rx.await.unwrap();
    let j = inner.clone();
    ids.push(
        call(async move { j.enqueue(req(3)).await })
            .await
            .unwrap()
            .id,
    );
    let v = handle.inspect(Some("ep".into())).await.remove(0);
    assert_eq!(
        (v.backlog, v.in_flight),
        (4, 0),
        "the notice was seen first"
    );
    release_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _, _)| i.clone())
        .collect();
    assert_eq!(seen, ids, "every event delivered, in order");
    let v = handle.inspect(Some("ep".into())).await.remove(0);
    assert_eq!(v.backlog, 0);
}
