//! The writer's protocol: every [`Op`] producers, the scheduler and the API send it, with
//! where its answer goes, and what each op weighs in a group commit (events, bytes, whether it
//! needs a durable commit).

use std::sync::Arc;

use crate::core::dead_filter::DeadFilter;
use crate::core::model::{
    AttemptRecord, ChannelConfig, ChannelRecord, EndpointConfig, EndpointRecord,
};
use crate::store::{
    BackfillDone, BackfillReq, BulkDone, EnqueueOk, EnqueueReq, ProgressOutcome, ProgressUpdate,
    StoreError, SweepDone,
};

/// Where an op's answer goes.
pub type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

/// Work for the writer.
#[derive(Debug)]
pub enum Op {
    Enqueue(EnqueueReq, Reply<EnqueueOk>),
    /// All or nothing, one commit.
    EnqueueBatch(Vec<EnqueueReq>, Reply<Vec<EnqueueOk>>),
    PutEndpoint {
        id: String,
        config: EndpointConfig,
        reply: Reply<(EndpointRecord, bool)>,
    },
    SetPaused {
        id: String,
        paused: bool,
        reply: Reply<EndpointRecord>,
    },
    DeleteEndpoint {
        id: String,
        force: bool,
        reply: Reply<()>,
    },
    Progress(ProgressUpdate),
    /// An attempt outside the queue (test, call) for the endpoint's attempt log; committed
    /// lazily like a progress update, answered after the commit.
    LogAttempt {
        endpoint: String,
        attempt: AttemptRecord,
        reply: Reply<()>,
    },
    Replay {
        event_id: String,
        reply: Reply<(String, u64)>,
    },
    Purge {
        event_id: String,
        reply: Reply<()>,
    },
    /// A bulk replay: one chunk of the matches, one commit.
    ReplayMatching {
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
        reply: Reply<BulkDone>,
    },
    /// A bulk purge: one chunk of the matches, one commit.
    PurgeMatching {
        filter: DeadFilter,
        after: Option<u64>,
        limit: usize,
        reply: Reply<BulkDone>,
    },
    /// One chunk of a back-fill, one commit.
    Backfill {
        req: BackfillReq,
        reply: Reply<BackfillDone>,
    },
    /// One retention pass, one commit.
    Sweep(Reply<SweepDone>),
    /// Creates or updates an ingress channel (its endpoint must exist).
    PutChannel {
        id: String,
        config: ChannelConfig,
        reply: Reply<(ChannelRecord, bool)>,
    },
    DeleteChannel {
        id: String,
        reply: Reply<()>,
    },
    /// Sets aside a pending event whose stored record is corrupt: it becomes a dead letter
    /// with reason `RECORD_CORRUPT` (raw bytes kept), so the endpoint can go on.
    Quarantine {
        endpoint: Arc<str>,
        seq: u64,
        why: String,
    },
    /// A durable commit barrier.
    Sync(Reply<()>),
    /// A durable commit, then the writer stops (at shutdown); later ops get `Stopped`.
    Stop(Reply<()>),
}

impl Op {
    pub(super) fn needs_durable(&self) -> bool {
        !matches!(
            self,
            Op::Progress(ProgressUpdate {
                outcome: ProgressOutcome::Delivered | ProgressOutcome::Pending,
                down: None | Some(false),
                ..
            }) | Op::LogAttempt { .. }
                | Op::Sweep(_)
        )
    }

    /// Events (and attempt results) this op writes: its share of a commit's batch size.
    pub(super) fn events(&self) -> usize {
        match self {
            Op::EnqueueBatch(rs, _) => rs.len(),
            Op::Enqueue(..) | Op::Progress(_) | Op::Replay { .. } | Op::Quarantine { .. } => 1,
            _ => 0,
        }
    }

    pub(super) fn weight(&self) -> usize {
        match self {
            Op::Enqueue(r, _) => r.record.len(),
            Op::EnqueueBatch(rs, _) => rs.iter().map(|r| r.record.len()).sum(),
            _ => 64,
        }
    }
}
