//! The power-loss test: the real redb journal and its segment log on a disk that forgets what
//! was not synced (`testkit::power_loss`), a seeded random workload through the `Journal` trait
//! with the power cut at a random write or sync (of the database or of a segment file, or a
//! segment file's creation or removal), then a new journal over what the disk kept: every
//! acknowledged event is there (pending, delivered and retained, or a dead letter, in a state
//! the contract allows) and its record reads back from the segment log, the invariants hold,
//! the segment files are the ones the journal lists, and the journal takes and delivers new
//! events. Segments are small, so rounds move on to new segments, and sweeps empty, compact and
//! remove them. A quarter of the rounds lose power a second time while the journal recovers.
//!
//! Reproducible: each round's workload and cut point follow from its seed, printed on failure
//! (`POWER_LOSS_SEED=<seed> POWER_LOSS_ROUNDS=1 POWER_LOSS_CUT=<op>` reruns it; group commit
//! timing can still vary).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use courier::core::ids::IdGen;
use courier::core::model::{AttemptRecord, EndpointConfig, EventProgress};
use courier::core::record::{self, EventMeta};
use courier::store::redb::RedbJournal;
use courier::store::redb::segments::Loc;
use courier::store::{
    BackfillReq, Clock, EnqueueReq, Journal, Limits, ProgressOutcome, ProgressUpdate,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use testkit::power_loss::{Cut, Disk, OpKind};

mod check;
mod round;

use check::*;

/// The journal's `events` table, read directly for the rows that are neither pending nor dead:
/// delivered events the retained log keeps (the `Journal` trait has no read of them).
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
/// The journal's segment table (segment → live rows and record bytes) and `meta` (the log's
/// committed end), read directly to hold them against the segment files.
const SEGMENTS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("segments");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Small segments: a round's ~100 KiB of records fill a dozen, so the log moves on to new
/// segments and retention empties, compacts and removes old ones.
const SEGMENT_BYTES: u64 = 8 << 10;
const CACHE: usize = 1 << 20;
const RETENTION_MS: u64 = 5_000;
const T0: u64 = 1_700_000_000_000;

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        v.get(self.below(v.len() as u64) as usize)
    }
}

/// Where an event is, as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    /// Delivered: retained in the log until a sweep removes it.
    Delivered,
    Dead,
    /// Removed by retention.
    Swept,
}

#[derive(Debug)]
struct Ev {
    endpoint: String,
    seq: u64,
    enqueued_ms: u64,
    attempts: u32,
    /// The newest state sent to the journal.
    latest: St,
    /// Every state it may be found in after a power loss: the one made durable last, and each
    /// sent since (progress may lag, never lead).
    allowed: Vec<St>,
}

#[derive(Default)]
struct Model {
    endpoints: Vec<String>,
    events: BTreeMap<String, Ev>,
}

impl Model {
    fn set(&mut self, id: &str, st: St) {
        if let Some(e) = self.events.get_mut(id) {
            e.latest = st;
            if !e.allowed.contains(&st) {
                e.allowed.push(st);
            }
        }
    }

    /// `st` is one more state the event may be found in (an op whose effect the test could not
    /// read back before the power went), its newest state unchanged.
    fn may_be(&mut self, id: &str, st: St) {
        if let Some(e) = self.events.get_mut(id)
            && !e.allowed.contains(&st)
        {
            e.allowed.push(st);
        }
    }

    /// A durable commit was acknowledged: everything sent before it is durable.
    fn barrier(&mut self) {
        for e in self.events.values_mut() {
            e.allowed = vec![e.latest];
        }
    }

    fn in_state(&self, st: St) -> Vec<String> {
        let ids = self.events.iter().filter(|(_, e)| e.latest == st);
        ids.map(|(id, _)| id.clone()).collect()
    }
}

fn config() -> EndpointConfig {
    EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![100, 200],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    }
}

fn update(e: &Ev, id: &str, outcome: ProgressOutcome, down: Option<bool>) -> ProgressUpdate {
    let delivered = outcome == ProgressOutcome::Delivered;
    ProgressUpdate {
        endpoint: Arc::from(e.endpoint.as_str()),
        seq: e.seq,
        attempt: AttemptRecord {
            event_id: id.into(),
            seq: e.seq,
            attempt: e.attempts,
            started_ms: 0,
            status: Some(if delivered { 200 } else { 503 }),
            latency_ms: 1,
            error: (!delivered).then(|| "HTTP_5XX".into()),
            message: None,
            kind: Default::default(),
            answer: None,
            repeats: 0,
            last_ms: 0,
        },
        progress: EventProgress {
            attempts: e.attempts,
            failures: if delivered { 0 } else { e.attempts },
            ..EventProgress::default()
        },
        outcome,
        down,
    }
}

/// One round: its journal, disk, clock and model.
struct Round {
    disk: Arc<Disk>,
    now: Arc<AtomicU64>,
    ids: IdGen,
    model: Model,
    rng: Rng,
    /// Events the round's sweeps removed and its back-fills reopened, record bytes its sweeps'
    /// compactions moved (while the power was on).
    swept: u64,
    reopened: u64,
    moved: u64,
}

/// Where a round's cut is armed: after this many more ops, of any kind or on the segment log
/// only.
#[derive(Debug, Clone, Copy)]
enum At {
    Op(u64),
    SegmentOp(u64),
}

impl At {
    /// `POWER_LOSS_CUT`: `<n>` or `seg:<n>`, as the rerun line of a failed round says.
    fn from_env() -> Option<At> {
        let v = std::env::var("POWER_LOSS_CUT").ok()?;
        match v.strip_prefix("seg:") {
            Some(n) => n.parse().ok().map(At::SegmentOp),
            None => v.parse().ok().map(At::Op),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Op(n) => write!(f, "{n}"),
            At::SegmentOp(n) => write!(f, "seg:{n}"),
        }
    }
}

/// What a round found: the ops before the cut, whether it fired during the workload and on
/// what op, and what the second cut (while recovering) landed on.
struct Outcome {
    ops: u64,
    seg_ops: u64,
    cut_during: bool,
    cut_on: Option<OpKind>,
    recovery_cut_on: Option<OpKind>,
    swept: u64,
    reopened: u64,
    moved: u64,
    /// Segment files created and removed over the round.
    churn: (u64, u64),
}

/// One round: fresh disk, endpoints and a workload with the cut armed at `cut` (`None`: no cut
/// during the workload), then the check over what the disk kept.
async fn round(seed: u64, cut: Option<At>, how: Cut, lying: bool) -> Result<Outcome, String> {
    let mut r = Round {
        disk: Disk::new(),
        now: Arc::new(AtomicU64::new(T0)),
        ids: IdGen::new(),
        model: Model::default(),
        rng: Rng(seed),
        swept: 0,
        reopened: 0,
        moved: 0,
    };
    let j = r.open()?;
    // The first endpoint before anything is armed, so each round has one to write to.
    j.put_endpoint("ep0".into(), config())
        .await
        .map_err(|e| e.to_string())?;
    r.model.endpoints.push("ep0".into());
    match cut {
        Some(At::Op(n)) => r.disk.arm(n, how),
        Some(At::SegmentOp(n)) => r.disk.arm_segment(n, how),
        None => {}
    }
    r.disk.set_lying(lying);
    let steps = 80;
    let mut after_cut = 0;
    for i in 0..steps {
        if i == 3 || i == 10 {
            let id = format!("ep{}", r.model.endpoints.len());
            match j.put_endpoint(id.clone(), config()).await {
                Ok(_) => {
                    r.model.endpoints.push(id);
                    r.model.barrier();
                }
                Err(e) => r.failed("put_endpoint", e)?,
            }
        }
        r.step(&j).await?;
        if r.disk.is_cut() {
            after_cut += 1;
            // A few calls into the dead journal (each waits out a failed reopen), then stop.
            if after_cut > 2 {
                break;
            }
        }
    }
    let cut_during = r.disk.is_cut();
    let cut_on = r.disk.cut_on();
    let (ops, seg_ops) = (r.disk.ops(), r.disk.segment_ops());
    r.disk.cut(how);
    drop(j);
    r.disk.power_on();
    let mut recovery_cut_on = None;
    if r.rng.below(4) == 0 {
        // The power goes again while the journal recovers.
        r.disk.arm(r.rng.below(60), how);
        match r.open() {
            Ok(j) => drop(j),
            Err(e) if !r.disk.is_cut() => return Err(format!("recovery failed: {e}")),
            Err(_) => {}
        }
        recovery_cut_on = r.disk.cut_on();
        r.disk.cut(how);
        r.disk.power_on();
    }
    let j = r.open()?;
    check(&r, &j).await?;
    still_works(&mut r, &j).await?;
    let _ = j.close().await;
    Ok(Outcome {
        ops,
        seg_ops,
        cut_during,
        cut_on,
        recovery_cut_on,
        swept: r.swept,
        reopened: r.reopened,
        moved: r.moved,
        churn: r.disk.segment_churn(),
    })
}

fn base_seed() -> u64 {
    match std::env::var("POWER_LOSS_SEED") {
        Ok(s) => s.parse().expect("POWER_LOSS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

fn rounds(default: u64) -> u64 {
    std::env::var("POWER_LOSS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `n` rounds from `base`: round i has seed `base + i`; its cut point is drawn from it
/// over the ops a whole workload makes (measured by a first round without a cut), in one round
/// of three over its segment ops only (most ops are the database's page writes).
async fn run(name: &str, n: u64, how: impl Fn(u64) -> Cut) {
    let base = base_seed();
    let whole = round(base, None, Cut::Clean, false)
        .await
        .unwrap_or_else(|e| panic!("{name}: the round without a cut failed (seed {base}): {e}"));
    let span = whole.ops.max(10);
    let seg_span = whole.seg_ops.max(10);
    let (mut fired, mut swept, mut reopened, mut moved) = (0, 0, 0, 0);
    let (mut on_segment, mut on_recovery_segment, mut created, mut removed) = (0, 0, 0, 0);
    let mut kinds: BTreeMap<OpKind, u64> = BTreeMap::new();
    for i in 0..n {
        let seed = base.wrapping_add(i);
        let mut rng = Rng(seed ^ 0x5EED);
        let cut = At::from_env().unwrap_or_else(|| match rng.below(3) {
            0 => At::SegmentOp(rng.below(seg_span + seg_span / 4)),
            _ => At::Op(rng.below(span + span / 4)),
        });
        match round(seed, Some(cut), how(seed), false).await {
            Ok(o) => {
                fired += u64::from(o.cut_during);
                swept += o.swept;
                reopened += o.reopened;
                moved += o.moved;
                created += o.churn.0;
                removed += o.churn.1;
                if let Some(kind) = o.cut_on.filter(|_| o.cut_during) {
                    *kinds.entry(kind).or_default() += 1;
                    on_segment += u64::from(kind.is_segment());
                }
                on_recovery_segment += u64::from(o.recovery_cut_on.is_some_and(OpKind::is_segment));
            }
            Err(e) => panic!(
                "{name}: round {i} failed: {e}\n  rerun: POWER_LOSS_SEED={seed} POWER_LOSS_ROUNDS=1 POWER_LOSS_CUT={cut} (of ~{span} ops, ~{seg_span} on segments)"
            ),
        }
    }
    eprintln!(
        "{name}: {n} rounds from seed {base}, ~{span} ops a round (~{seg_span} on segments), {fired} cut mid-workload, {on_segment} of them on a segment op ({kinds:?}), {on_recovery_segment} recoveries cut on a segment op; {swept} events swept, {reopened} back-filled, {moved} bytes compacted; {created} segment files created, {removed} removed"
    );
    assert!(
        fired * 3 >= n,
        "most cuts should land inside the workload ({fired} of {n})"
    );
    assert!(
        n < 20 || (swept > 0 && reopened > 0),
        "the workload sweeps and back-fills"
    );
    assert!(
        n < 20 || (on_segment > 0 && removed > 0 && moved > 0),
        "cuts land on segment ops ({on_segment}), sweeps remove ({removed}) and compact ({moved} bytes) segments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_power_loss() {
    run("clean cut", rounds(200), |_| Cut::Clean).await;
}

/// redb's claim for a drive that writes back any subset of its cache: the same must hold when
/// the cut keeps a random subset of the unsynced writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_a_torn_power_loss() {
    run("torn cut", rounds(60), |seed| Cut::Torn { seed }).await;
}

/// The test sees a missing fsync: on a disk whose `sync_data` makes nothing durable after the
/// first endpoint (every commit acknowledged without being durable), rounds fail with an
/// acknowledged event missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_skips_fsync_is_caught() {
    let base = base_seed();
    let mut caught = 0;
    for i in 0..10 {
        let seed = base.wrapping_add(i);
        if let Err(e) = round(seed, Some(At::Op(1_000_000)), Cut::Clean, true).await {
            assert!(
                e.contains("acknowledged event"),
                "round {i} (seed {seed}) failed otherwise: {e}"
            );
            caught += 1;
        }
    }
    assert!(caught >= 9, "only {caught} of 10 rounds saw the loss");
}

/// A journal on a custom backend reopens through its factory: after a transient I/O error the
/// writer fails that commit, makes a new backend over the same disk and goes on; what it
/// acknowledged before and after is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_reopens_through_the_factory() {
    let mut r = Round {
        disk: Disk::new(),
        now: Arc::new(AtomicU64::new(T0)),
        ids: IdGen::new(),
        model: Model::default(),
        rng: Rng(7),
        swept: 0,
        reopened: 0,
        moved: 0,
    };
    let j = r.open().unwrap();
    j.put_endpoint("ep0".into(), config()).await.unwrap();
    r.model.endpoints.push("ep0".into());
    let req = r.req("ep0");
    let ok = j.enqueue(req).await.unwrap();
    r.acked("ep0", ok.id, ok.seq, T0);
    let opened = r.disk.opened();
    r.disk.fail_next();
    let req = r.req("ep0");
    assert!(
        j.enqueue(req).await.is_err(),
        "the failed commit is refused"
    );
    let mut accepted = None;
    for _ in 0..50 {
        let req = r.req("ep0");
        if let Ok(ok) = j.enqueue(req).await {
            accepted = Some(ok);
            break;
        }
    }
    let ok = accepted.expect("the journal takes events again after reopening");
    r.acked("ep0", ok.id, ok.seq, T0);
    assert_eq!(
        r.disk.opened(),
        opened + 1,
        "one reopen, through the factory"
    );
    r.disk.cut(Cut::Clean);
    drop(j);
    r.disk.power_on();
    let j = r.open().unwrap();
    check(&r, &j).await.unwrap();
    let _ = j.close().await;
}
