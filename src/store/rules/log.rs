//! The retained log: which `events` rows of an endpoint are pending (its cursor and the `done`
//! and `reopened` side tables, [`crate::core::model::LogPos`]), what a delivery does to them (a
//! cursor move, no row deleted), retention (delivered rows removed in ranges by [`Rules::sweep`])
//! and back-fill ([`Rules::backfill`]: delivered rows of a time window made pending again).

use super::{Applied, Changes, Rules};
use crate::store::tables::Tables;
use crate::store::{BackfillDone, BackfillReq, StoreError, SweepDone};

impl Rules {
    /// One chunk of a back-fill (see [`crate::store::Journal::backfill`]).
    pub fn backfill(
        &mut self,
        _t: &mut impl Tables,
        req: &BackfillReq,
        _ch: &mut Changes,
    ) -> Applied<BackfillDone> {
        if !self.endpoints.contains_key(&req.endpoint) {
            return Ok(Err(StoreError::EndpointNotFound(req.endpoint.clone())));
        }
        Ok(Ok(BackfillDone::default()))
    }

    /// One retention pass (see [`crate::store::Journal::sweep`]).
    pub fn sweep(
        &mut self,
        _t: &mut impl Tables,
        _now: u64,
        _ch: &mut Changes,
    ) -> Applied<SweepDone> {
        Ok(Ok(SweepDone::default()))
    }
}
