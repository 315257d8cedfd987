//! One round's workload against the journal: intake, progress, replays, back-fills and sweeps,
//! recorded in the round's model as they are acknowledged.

use super::*;

impl Round {
    pub(super) fn clock(&self) -> Clock {
        let n = self.now.clone();
        Arc::new(move || n.load(Ordering::SeqCst))
    }

    pub(super) fn limits() -> Limits {
        Limits {
            retention_ms: RETENTION_MS,
            ..Limits::default()
        }
    }

    pub(super) fn open(&self) -> Result<Arc<RedbJournal>, String> {
        RedbJournal::open_with_backend(
            self.disk.factory(),
            Some((self.disk.segment_fs(), SEGMENT_BYTES)),
            CACHE,
            courier::store::seal::KeyRing::test_ring(),
            Box::new(|_| {}),
            self.clock(),
            Self::limits(),
        )
        .map(Arc::new)
        .map_err(|e| format!("the journal does not open: {e}"))
    }

    pub(super) fn req(&mut self, ep: &str) -> EnqueueReq {
        let now = self.now.load(Ordering::SeqCst);
        let meta = EventMeta {
            id: self.ids.next(now),
            enqueued_at_ms: now,
            content_type: "application/json".into(),
            event_type: Some("t".into()),
        };
        let len = 1 + self.rng.below(3000) as usize;
        let body = Bytes::from(vec![b'x'; len]);
        EnqueueReq::new(ep.into(), meta, body, None).expect("a record encodes")
    }

    pub(super) fn acked(&mut self, ep: &str, id: String, seq: u64, enqueued_ms: u64) {
        self.model.events.insert(
            id,
            Ev {
                endpoint: ep.into(),
                seq,
                enqueued_ms,
                attempts: 0,
                latest: St::Pending,
                allowed: vec![St::Pending],
            },
        );
        self.model.barrier();
    }

    /// An error is expected only once the power is gone.
    pub(super) fn failed(&self, what: &str, e: impl std::fmt::Display) -> Result<(), String> {
        if self.disk.is_cut() {
            Ok(())
        } else {
            Err(format!("{what} failed with the power on: {e}"))
        }
    }

    /// One step of the workload.
    pub(super) async fn step(&mut self, j: &Arc<RedbJournal>) -> Result<(), String> {
        self.now.fetch_add(self.rng.below(700), Ordering::SeqCst);
        let Some(ep) = self.rng.pick(&self.model.endpoints).cloned() else {
            return Ok(());
        };
        match self.rng.below(100) {
            0..28 => {
                let req = self.req(&ep);
                let at = req.meta.enqueued_at_ms;
                match j.enqueue(req).await {
                    Ok(ok) => self.acked(&ep, ok.id, ok.seq, at),
                    Err(e) => self.failed("enqueue", e)?,
                }
            }
            28..36 => {
                // Several producers at once: their enqueues share group commits.
                let mut tasks = Vec::new();
                for _ in 0..1 + self.rng.below(6) {
                    let req = self.req(&ep);
                    let at = req.meta.enqueued_at_ms;
                    let j = j.clone();
                    tasks.push(tokio::spawn(async move { (j.enqueue(req).await, at) }));
                }
                for t in tasks {
                    match t.await.map_err(|e| e.to_string())? {
                        (Ok(ok), at) => self.acked(&ep, ok.id, ok.seq, at),
                        (Err(e), _) => self.failed("concurrent enqueue", e)?,
                    }
                }
            }
            36..43 => {
                let reqs: Vec<EnqueueReq> =
                    (0..1 + self.rng.below(8)).map(|_| self.req(&ep)).collect();
                let at = reqs[0].meta.enqueued_at_ms;
                match j.enqueue_batch(reqs).await {
                    Ok(oks) => {
                        for ok in oks {
                            self.acked(&ep, ok.id, ok.seq, at);
                        }
                    }
                    Err(e) => self.failed("batch", e)?,
                }
            }
            43..81 => {
                // An attempt's result, as the scheduler sends it (not awaited).
                // Mostly the endpoint's oldest pending event (in order, as with one in flight:
                // the cursor moves), sometimes any (out of order: a `done` row).
                let pending = self.model.in_state(St::Pending);
                let oldest = (pending.iter())
                    .filter(|id| self.model.events[*id].endpoint == ep)
                    .min_by_key(|id| self.model.events[*id].seq)
                    .cloned();
                let any = self.rng.pick(&pending).cloned();
                let Some(id) = (if self.rng.below(4) == 0 { any } else { oldest }) else {
                    return Ok(());
                };
                let roll = self.rng.below(100);
                let (outcome, st, down) = match roll {
                    0..60 => (ProgressOutcome::Delivered, St::Delivered, None),
                    60..85 => (ProgressOutcome::Pending, St::Pending, None),
                    85..90 => (ProgressOutcome::Pending, St::Pending, Some(true)),
                    _ => (
                        ProgressOutcome::Dead {
                            reason: "MAX_RETRIES_EXCEEDED".into(),
                        },
                        St::Dead,
                        None,
                    ),
                };
                let down = if st == St::Delivered && self.rng.below(4) == 0 {
                    Some(false)
                } else {
                    down
                };
                let e = self.model.events.get_mut(&id).ok_or("model")?;
                e.attempts += 1;
                j.record_progress(update(e, &id, outcome, down));
                self.model.set(&id, st);
            }
            81..87 => {
                let dead = self.model.in_state(St::Dead);
                let Some(id) = self.rng.pick(&dead).cloned() else {
                    return Ok(());
                };
                match j.replay(id.clone()).await {
                    Ok(_) => {
                        self.model.set(&id, St::Pending);
                        self.model.barrier();
                    }
                    Err(e) => self.failed("replay", e)?,
                }
            }
            87..90 => match j.sync().await {
                Ok(()) => self.model.barrier(),
                Err(e) => self.failed("sync", e)?,
            },
            90..96 => self.backfill(j, &ep).await?,
            _ => self.sweep(j).await?,
        }
        Ok(())
    }

    /// A back-fill of a random window of one endpoint: every delivered event of the window
    /// still retained goes back to pending (learnt from the journal's reads, then checked).
    pub(super) async fn backfill(&mut self, j: &Arc<RedbJournal>, ep: &str) -> Result<(), String> {
        let now = self.now.load(Ordering::SeqCst);
        let since = now.saturating_sub(self.rng.below(2 * RETENTION_MS));
        let until = now.saturating_sub(self.rng.below(now - since + 1));
        let window: Vec<String> = (self.model.events.iter())
            .filter(|(_, e)| e.endpoint == ep && e.latest == St::Delivered)
            .filter(|(_, e)| (since..=until).contains(&e.enqueued_ms))
            .map(|(id, _)| id.clone())
            .collect();
        let req = BackfillReq {
            endpoint: ep.into(),
            since_ms: since,
            until_ms: Some(until),
            after: None,
            limit: 100_000,
        };
        let done = match j.backfill(req).await {
            Ok(done) => done.done,
            Err(courier::store::StoreError::WindowGone { .. }) => 0,
            Err(e) => return self.failed("back-fill", e),
        };
        let Some(live) = self.live(j).await else {
            // The back-fill committed (durably) and the power went before it could be read
            // back: any delivered event of the window may be pending again.
            for id in &window {
                self.model.may_be(id, St::Pending);
            }
            return Ok(());
        };
        let mut reopened = 0;
        for id in &window {
            let e = &self.model.events[id];
            if live.pending.contains_key(id) {
                reopened += 1;
                self.model.set(id, St::Pending);
            } else if live.rows.contains(&(e.endpoint.clone(), e.seq)) {
                return Err(format!(
                    "back-fill left the delivered event {id} of its window"
                ));
            }
        }
        self.reopened += reopened;
        if reopened != done {
            return Err(format!(
                "back-fill said {done} reopened, {reopened} are pending again"
            ));
        }
        self.model.barrier();
        Ok(())
    }

    /// Retention passes until none is due; which delivered events went is read back from the
    /// journal, and only old delivered events may go.
    pub(super) async fn sweep(&mut self, j: &Arc<RedbJournal>) -> Result<(), String> {
        let now = self.now.load(Ordering::SeqCst);
        // Each pass removes up to its bound and compacts one segment: a round's log is done
        // in a few dozen passes; more means a pass that says `more` without making progress.
        let mut passes = 0;
        loop {
            match j.sweep().await {
                Ok(done) => {
                    self.moved += done.moved;
                    if !done.more {
                        break;
                    }
                }
                Err(e) => {
                    self.failed("sweep", e)?;
                    self.may_have_swept(now);
                    return Ok(());
                }
            }
            passes += 1;
            if passes > 200 {
                return Err("retention passes go on saying more is due".into());
            }
        }
        let Some(live) = self.live(j).await else {
            self.may_have_swept(now);
            return Ok(());
        };
        let delivered = self.model.in_state(St::Delivered);
        for id in &delivered {
            let e = &self.model.events[id];
            if live.rows.contains(&(e.endpoint.clone(), e.seq)) {
                continue;
            }
            if e.enqueued_ms + RETENTION_MS >= now {
                return Err(format!(
                    "the sweep removed {id}, younger than the retention"
                ));
            }
            // Not a barrier: whether a pass commits durably is the writer's business.
            self.model.set(id, St::Swept);
            self.swept += 1;
        }
        Ok(())
    }

    /// The power went during a sweep or before its result could be read back: its passes that
    /// committed may be durable (a pass that compacts commits durably, and a concurrent
    /// durable commit covers the others), so every delivered event old enough to be swept may
    /// be gone.
    pub(super) fn may_have_swept(&mut self, now: u64) {
        let old: Vec<String> = (self.model.events.iter())
            .filter(|(_, e)| e.latest == St::Delivered && e.enqueued_ms + RETENTION_MS < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.model.may_be(id, St::Swept);
        }
    }

    /// What the running journal holds now (committed, durable or not), or `None` once the
    /// power is gone.
    pub(super) async fn live(&self, j: &Arc<RedbJournal>) -> Option<Live> {
        match read_live(j).await {
            Ok(live) => Some(live),
            Err(_) if self.disk.is_cut() => None,
            Err(e) => panic!("a read failed with the power on: {e}"),
        }
    }
}
