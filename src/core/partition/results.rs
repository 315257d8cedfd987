//! How a partition takes the answers it gets: a read of the journal ([`Input::Loaded`]) and an
//! attempt's result ([`Input::Done`]): retry, wait, pause, dead letter, down and back up.

use super::*;

impl<E: Pending> Partition<E> {
    pub(super) fn on_loaded(
        &mut self,
        from: u64,
        limit: usize,
        events: Vec<E>,
        corrupt: Vec<(u64, String)>,
        out: &mut Vec<Effect<E>>,
    ) {
        let got = events.len() + corrupt.len();
        let mut last = None::<u64>;
        for ev in events {
            let seq = ev.seq();
            last = last.max(Some(seq));
            self.loaded_upto = self.loaded_upto.max(seq);
            self.unheld.remove(&seq);
            if !self.active.contains_key(&seq) {
                self.ready.insert(seq, ev);
            }
        }
        for (seq, why) in corrupt {
            last = last.max(Some(seq));
            self.loaded_upto = self.loaded_upto.max(seq);
            self.backlog = self.backlog.saturating_sub(1);
            out.push(Effect::Quarantine { seq, why });
        }
        let next = last.map_or(from, |l| l + 1);
        // A full read may have more behind it; so may a short one that did not see an event
        // enqueued while it was out.
        self.spilled = (got >= limit || self.spilled_upto >= next).then_some(next);
    }

    /// Once a read is answered: what was noticed meanwhile is read in its turn — unless that
    /// read saw it (it is held now: read again too, it could be sent twice) — and the buffer is
    /// brought back to its bounds.
    pub(super) fn after_read(&mut self) {
        let late = std::mem::take(&mut self.late);
        let held = |seq: &u64| self.ready.contains_key(seq) || self.active.contains_key(seq);
        let unread: Vec<u64> = late.into_iter().filter(|seq| !held(seq)).collect();
        self.unheld.extend(unread);
        self.settle();
    }

    /// Keeps the buffer within [`BUFFER`] events (a bulk replay must not fill memory) and every
    /// held event before every `unheld` one: the newest held events go back to the journal —
    /// their seqs are kept — and are read again in their turn.
    pub(super) fn settle(&mut self) {
        if self.loading.is_some() {
            return; // at most one read's worth over, until it is answered
        }
        while let Some((&last, _)) = self.ready.last_key_value() {
            let over = self.ready.len() > BUFFER;
            let behind = self.unheld.first().is_some_and(|first| last > *first);
            if !over && !behind {
                break;
            }
            self.ready.pop_last();
            self.unheld.insert(last);
        }
    }

    /// The answer to a read of `unheld` events (from the first of them): those are taken back,
    /// in order; anything else it holds is held already or comes with `spilled`. What the read
    /// went past without finding is no longer pending.
    pub(super) fn on_loaded_unheld(
        &mut self,
        limit: usize,
        events: Vec<E>,
        corrupt: Vec<(u64, String)>,
        out: &mut Vec<Effect<E>>,
    ) {
        let got = events.len() + corrupt.len();
        let mut last = 0;
        for ev in events {
            let seq = ev.seq();
            last = last.max(seq);
            if self.unheld.remove(&seq) && !self.active.contains_key(&seq) {
                self.ready.insert(seq, ev);
            }
        }
        for (seq, why) in corrupt {
            last = last.max(seq);
            if self.unheld.remove(&seq) {
                self.backlog = self.backlog.saturating_sub(1);
                out.push(Effect::Quarantine { seq, why });
            }
        }
        if got < limit {
            self.unheld.clear(); // the read saw the end: the rest is not pending any more
        } else {
            self.unheld.retain(|s| *s > last);
        }
    }

    /// Handles a finished attempt; `false` when the event is not (or no longer) started here.
    pub(super) fn on_done(
        &mut self,
        now: Time,
        seq: u64,
        probe: bool,
        verdict: Verdict,
        attempt: E::Attempt,
        out: &mut Vec<Effect<E>>,
    ) -> bool {
        if !self.active.contains_key(&seq) {
            return false;
        }
        let (blames_endpoint, next) = match verdict {
            Verdict::Delivered => {
                let Some(slot) = self.active.remove(&seq) else {
                    return false;
                };
                self.backlog = self.backlog.saturating_sub(1);
                let back_up = self.down.take().is_some();
                out.push(Effect::Finished {
                    event: slot.ev,
                    attempt,
                    finish: Finish::Delivered,
                    down: back_up.then_some(false),
                });
                return true;
            }
            Verdict::Failed {
                blames_endpoint,
                next,
            } => (blames_endpoint, next),
        };
        let mut health = None;
        if let Some(down) = self.down {
            if blames_endpoint {
                // Still down: the event goes back in line; a failed probe makes the next wait
                // longer.
                let Some(slot) = self.active.remove(&seq) else {
                    return false;
                };
                let progress = slot.ev.snapshot();
                self.ready.insert(seq, slot.ev);
                if probe {
                    let probes = down.probes + 1;
                    self.down = Some(Down {
                        probes,
                        next_at: now + retry::probe_delay(&self.policy.schedule, probes),
                    });
                }
                out.push(Effect::Progress {
                    seq,
                    attempt,
                    progress,
                    down: None,
                });
                return true;
            }
            // The endpoint answers; this event's own failure is handled as usual.
            self.down = None;
            health = Some(false);
        }
        let Some(slot) = self.active.get_mut(&seq) else {
            return false;
        };
        let action = match next {
            Next::Schedule => retry::on_failure(
                &self.policy.schedule,
                slot.ev.failures(),
                None,
                self.policy.retry_after_cap,
            ),
            Next::After(wait) => retry::on_failure(
                &self.policy.schedule,
                slot.ev.failures(),
                Some(wait),
                self.policy.retry_after_cap,
            ),
            Next::Pause => {
                // Nothing used up: the event keeps its place, the endpoint waits for an operator.
                let Some(slot) = self.active.remove(&seq) else {
                    return false;
                };
                let progress = slot.ev.snapshot();
                self.ready.insert(seq, slot.ev);
                self.paused = true;
                out.push(Effect::Progress {
                    seq,
                    attempt,
                    progress,
                    down: health,
                });
                out.push(Effect::Pause);
                return true;
            }
            Next::DeadLetter(_) => RetryAction::Dead,
        };
        match action {
            RetryAction::Retry { after, counted } => {
                if counted {
                    slot.ev.count_failure();
                }
                slot.phase = Phase::Waiting(now + after);
                out.push(Effect::Progress {
                    seq,
                    attempt,
                    progress: slot.ev.snapshot(),
                    down: health,
                });
            }
            RetryAction::Dead => {
                let reason = match next {
                    Next::DeadLetter(reason) => reason,
                    _ => MAX_RETRIES_EXCEEDED,
                };
                let Some(slot) = self.active.remove(&seq) else {
                    return false;
                };
                self.backlog = self.backlog.saturating_sub(1);
                if blames_endpoint {
                    health = Some(true);
                    self.down = Some(Down {
                        probes: 0,
                        next_at: now + retry::probe_delay(&self.policy.schedule, 0),
                    });
                    // Events waiting for a retry go back in line behind the probe.
                    let waiting: Vec<u64> = self
                        .active
                        .iter()
                        .filter(|(_, s)| matches!(s.phase, Phase::Waiting(_)))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in waiting {
                        if let Some(s) = self.active.remove(&k) {
                            self.ready.insert(k, s.ev);
                        }
                    }
                }
                out.push(Effect::Finished {
                    event: slot.ev,
                    attempt,
                    finish: Finish::Dead { reason },
                    down: health,
                });
            }
        }
        true
    }
}
