//! The answers of a group commit's ops, held until the commit is known ([`Finished`]), and the
//! per-batch scratch that collects them with what the rules changed ([`Batch`]).

use super::Reply;
use crate::core::model::{ChannelRecord, EndpointRecord};
use crate::store::rules::{Applied, Changes};
use crate::store::{BackfillDone, BulkDone, EnqueueOk, StoreError, SweepDone};

/// An op's answer, held until its commit is known.
pub(super) enum Finished {
    Enqueue(Reply<EnqueueOk>, Result<EnqueueOk, StoreError>),
    Batch(Reply<Vec<EnqueueOk>>, Result<Vec<EnqueueOk>, StoreError>),
    Endpoint(
        Reply<(EndpointRecord, bool)>,
        Result<(EndpointRecord, bool), StoreError>,
    ),
    Record(Reply<EndpointRecord>, Result<EndpointRecord, StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
    Replay(Reply<(String, u64)>, Result<(String, u64), StoreError>),
    Bulk(Reply<BulkDone>, Result<BulkDone, StoreError>),
    Backfill(Reply<BackfillDone>, Result<BackfillDone, StoreError>),
    Sweep(Reply<SweepDone>, Result<SweepDone, StoreError>),
    Channel(
        Reply<(ChannelRecord, bool)>,
        Result<(ChannelRecord, bool), StoreError>,
    ),
}

impl Finished {
    pub(super) fn send(self) {
        // A dropped receiver means the client went away; nothing to do.
        let _ = match self {
            Finished::Enqueue(r, v) => r.send(v).map_err(drop),
            Finished::Batch(r, v) => r.send(v).map_err(drop),
            Finished::Endpoint(r, v) => r.send(v).map_err(drop),
            Finished::Record(r, v) => r.send(v).map_err(drop),
            Finished::Unit(r, v) => r.send(v).map_err(drop),
            Finished::Replay(r, v) => r.send(v).map_err(drop),
            Finished::Bulk(r, v) => r.send(v).map_err(drop),
            Finished::Backfill(r, v) => r.send(v).map_err(drop),
            Finished::Sweep(r, v) => r.send(v).map_err(drop),
            Finished::Channel(r, v) => r.send(v).map_err(drop),
        };
    }

    pub(super) fn fail(self, e: StoreError) {
        let _ = match self {
            Finished::Enqueue(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Batch(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Endpoint(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Record(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Unit(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Replay(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Bulk(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Backfill(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Sweep(r, _) => r.send(Err(e)).map_err(drop),
            Finished::Channel(r, _) => r.send(Err(e)).map_err(drop),
        };
    }

    pub(super) fn accepted(&self) -> usize {
        match self {
            Finished::Enqueue(_, Ok(ok)) if !ok.duplicate => 1,
            Finished::Batch(_, Ok(v)) => v.iter().filter(|o| !o.duplicate).count(),
            _ => 0,
        }
    }
}

/// Per-batch scratch: answers, and what the rules changed (notices, the undo of the records).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) finished: Vec<Finished>,
    pub(super) changes: Changes,
}

impl Batch {
    /// Keeps an op's answer for after the commit; a storage failure aborts the batch, and the
    /// op that met it is answered with it at once.
    pub(super) fn settle<T>(
        &mut self,
        reply: Reply<T>,
        r: Applied<T>,
        wrap: fn(Reply<T>, Result<T, StoreError>) -> Finished,
    ) -> Result<(), StoreError> {
        match r {
            Ok(answer) => {
                self.finished.push(wrap(reply, answer));
                Ok(())
            }
            Err(e) => {
                let _ = reply.send(Err(e.clone()));
                Err(e)
            }
        }
    }
}
