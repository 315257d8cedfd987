//! The scheduler's outside: its settings, the messages it takes, the handle the API and the
//! daemon hold, and the runtime view of an endpoint it answers with.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::core::model::ErrorInfo;
use crate::core::partition::RetryNow;
use crate::destination::Destination;
use crate::operator::OperatorTx;
use crate::store::Notice;
use crate::telemetry::Activity;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
    /// Where events accepted and delivered are counted (`courier status`'s rates).
    pub activity: Arc<Activity>,
    /// Where operator events go (`--operator-endpoint`), if anywhere.
    pub operator: Option<OperatorTx>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            retry_after_cap: Duration::from_secs(300),
            activity: Arc::default(),
            operator: None,
        }
    }
}

/// What an endpoint looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeView {
    pub id: String,
    /// `active`, `paused` or `down`.
    pub state: &'static str,
    /// Events accepted and neither delivered nor dead-lettered (in flight included).
    pub backlog: u64,
    pub in_flight: u32,
    pub last_error: Option<ErrorInfo>,
    /// When (unix ms) the next attempt is due by itself: a `down` endpoint's probe or the
    /// earliest retry waiting; `None` when nothing waits for a time.
    pub next_attempt_ms: Option<u64>,
    /// When the oldest waiting event was accepted (unix ms); `None` when nothing waits.
    pub oldest_event_ms: Option<u64>,
}

/// Messages to the scheduler.
pub enum SchedMsg {
    Notice(Notice),
    Inspect {
        id: Option<String>,
        reply: oneshot::Sender<Vec<RuntimeView>>,
    },
    /// The endpoint's destination, for an attempt outside its queue (test, call).
    Destination {
        id: String,
        reply: oneshot::Sender<Option<Arc<dyn Destination>>>,
    },
    /// Attempt now what waits ([`crate::core::partition::Input::RetryNow`]); `None` for an
    /// unknown endpoint.
    RetryNow {
        id: String,
        reply: oneshot::Sender<Option<RetryNow>>,
    },
    /// Stop starting attempts, let in-flight ones finish within `grace`, then answer.
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

/// A handle to the scheduler task.
#[derive(Clone)]
pub struct SchedulerHandle {
    pub(super) tx: mpsc::UnboundedSender<SchedMsg>,
}

impl SchedulerHandle {
    /// Forwards a writer notice.
    pub fn notify(&self, n: Notice) {
        let _ = self.tx.send(SchedMsg::Notice(n));
    }

    /// Runtime views of one endpoint or all.
    pub async fn inspect(&self, id: Option<String>) -> Vec<RuntimeView> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SchedMsg::Inspect { id, reply: tx }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The destination the endpoint's deliveries use (same client, guards and credentials);
    /// `None` when the scheduler does not deliver to it (unknown, or settings unusable).
    pub async fn destination(&self, id: String) -> Option<Arc<dyn Destination>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(SchedMsg::Destination { id, reply: tx }).ok()?;
        rx.await.ok().flatten()
    }

    /// Attempts now what waits at the endpoint (its probe, or its retries waiting).
    pub async fn retry_now(&self, id: String) -> Option<RetryNow> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(SchedMsg::RetryNow { id, reply: tx }).ok()?;
        rx.await.ok().flatten()
    }

    /// Drains in-flight attempts (bounded by `grace`) and stops.
    pub async fn shutdown(&self, grace: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SchedMsg::Shutdown { grace, done: tx }).is_ok() {
            let _ = rx.await;
        }
    }
}
