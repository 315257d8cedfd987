//! One endpoint as the scheduler holds it ([`Part`]: its partition state machine, its
//! destination, what operators see) and the scheduler's queued events as the partition's
//! [`Pending`] items.

use std::sync::Arc;
use std::time::Duration;

use super::RuntimeView;
use crate::core::model::{AttemptRecord, ErrorInfo, EventProgress};
use crate::core::partition::{Partition, Pending};
use crate::destination::Destination;
use crate::store::QueuedEvent;

/// One endpoint: its state machine, its destination, what operators see.
pub(super) struct Part {
    pub(super) id: Arc<str>,
    pub(super) core: Partition<QueuedEvent>,
    pub(super) dest: Arc<dyn Destination>,
    pub(super) last_error: Option<ErrorInfo>,
    /// Tells this partition from an earlier one of the same id (a read's answer may outlive it).
    pub(super) epoch: u64,
}

impl Part {
    /// `now` and `now_ms` are the same instant, in partition time and unix ms.
    pub(super) fn view(&self, now: Duration, now_ms: u64) -> RuntimeView {
        let backlog = self.core.backlog();
        RuntimeView {
            id: self.id.to_string(),
            state: if self.core.is_paused() {
                "paused"
            } else if self.core.is_down() {
                "down"
            } else {
                "active"
            },
            backlog,
            in_flight: self.core.in_flight(),
            last_error: self.last_error.clone(),
            next_attempt_ms: self
                .core
                .next_due()
                .map(|t| now_ms + t.saturating_sub(now).as_millis() as u64),
            oldest_event_ms: (backlog > 0)
                .then(|| self.core.oldest().map(|e| e.meta.enqueued_at_ms))
                .flatten(),
        }
    }
}

impl Pending for QueuedEvent {
    type Snapshot = EventProgress;
    type Attempt = AttemptRecord;

    fn seq(&self) -> u64 {
        self.seq
    }

    fn failures(&self) -> u32 {
        self.progress.failures
    }

    fn begin_attempt(&mut self) -> u32 {
        self.progress.attempts += 1;
        self.progress.attempts
    }

    fn count_failure(&mut self) {
        self.progress.failures += 1;
    }

    fn snapshot(&self) -> EventProgress {
        self.progress.clone()
    }
}
