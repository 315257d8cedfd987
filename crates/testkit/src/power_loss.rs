//! A disk that loses power: a [`redb::StorageBackend`] over memory that keeps what is durable
//! (the image at the last completed `sync_data`) apart from what was written since, and at a cut
//! ("power loss") throws the unsynced writes away — all of them ([`Cut::Clean`]), or all but a
//! random subset of whole writes ([`Cut::Torn`]: the drive wrote some of its cache in any order).
//! After the cut every call of every backend of that power cycle fails, like a machine without
//! power; [`Disk::power_on`] starts the next cycle from the durable image.
//!
//! The same disk holds the journal's segment log ([`segments`]: `Disk::segment_fs`), on the
//! same power cycle and op counter, so a cut lands on a segment write or sync as well.
//!
//! A kill -9 keeps the page cache, so only this shows a missing fsync. The journal is put on it
//! with `RedbJournal::open_with_backend(disk.factory(), Some((disk.segment_fs(), ..)), ..)`;
//! `tests/power_loss/` drives it.

pub mod segments;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use segments::SegFiles;

/// What survives a cut besides the durable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing written since the last completed sync.
    Clean,
    /// A random subset (chosen by `seed`) of the whole writes (and length changes) made since the
    /// last completed sync, applied in their order: what a drive flushing its cache in any order
    /// may leave.
    Torn { seed: u64 },
}

/// One change not yet synced.
#[derive(Debug)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// What a write, length change, sync or file operation was on: where a cut landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    DbWrite,
    DbSetLen,
    DbSync,
    SegWrite,
    SegSetLen,
    SegSync,
    /// A segment file created (durable when it returns).
    SegCreate,
    /// A segment file removed (durable when it returns).
    SegRemove,
}

impl OpKind {
    /// Whether the op was on the segment log (not on the database).
    pub fn is_segment(self) -> bool {
        !matches!(self, OpKind::DbWrite | OpKind::DbSetLen | OpKind::DbSync)
    }
}

/// One file's bytes: what a power loss keeps apart from what was written since.
#[derive(Debug, Default)]
struct Image {
    /// What a power loss keeps: the image at the last completed sync.
    durable: Vec<u8>,
    /// What reads see: the durable image with every change since applied.
    current: Vec<u8>,
    /// The changes since the last completed sync, in order.
    unsynced: Vec<Change>,
}

impl Image {
    fn change(&mut self, change: Change) {
        apply(&mut self.current, &change);
        self.unsynced.push(change);
    }

    /// A completed sync (`lying`: one that makes nothing durable).
    fn sync(&mut self, lying: bool) {
        if lying {
            return;
        }
        for change in self.unsynced.drain(..) {
            apply(&mut self.durable, &change);
        }
    }

    /// The power goes: the unsynced changes are dropped, or (torn) a subset drawn from `rng`
    /// reaches the durable image.
    fn cut(&mut self, how: Cut, rng: &mut u64) {
        if let Cut::Torn { .. } = how {
            for change in &self.unsynced {
                if next(rng) & 1 == 1 {
                    apply(&mut self.durable, change);
                }
            }
        }
        self.unsynced.clear();
    }

    /// The power comes back: reads see the durable image.
    fn restore(&mut self) {
        self.current = self.durable.clone();
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Option<()> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(out.len())?;
        out.copy_from_slice(self.current.get(start..end)?);
        Some(())
    }
}

/// An armed cut.
#[derive(Debug, Clone, Copy)]
struct Armed {
    at: u64,
    how: Cut,
    /// Counted in segment ops only.
    segment: bool,
}

#[derive(Debug)]
struct State {
    /// The database's image.
    db: Image,
    /// The segment files.
    segs: SegFiles,
    /// The power cycle; a backend of another cycle fails every call.
    cycle: u64,
    /// Whether the power is on (no cut since the last `power_on`).
    on: bool,
    /// Writes, length changes, syncs and segment file creations and removals this cycle.
    ops: u64,
    /// Those of them on the segment log.
    seg_ops: u64,
    /// The cut is armed: it happens instead of the op with this number (counted from 1 in
    /// `ops`, or in `seg_ops` when `segment`).
    cut_at: Option<Armed>,
    /// The op number the cut happened at and what it was (`None` for a cut by hand or none
    /// yet).
    cut_op: Option<(u64, OpKind)>,
    /// `sync_data` completes without making anything durable (a drive whose cache lies): the
    /// fault the power-loss test must be able to see.
    lying: bool,
    /// The next op fails with an I/O error, the power stays on.
    fail_next: bool,
    /// Backends made (each open of the database takes one).
    opened: u64,
}

/// The storage: shared by every backend made over it (one per open of the database).
#[derive(Debug)]
pub struct Disk {
    state: Mutex<State>,
}

fn power_lost() -> io::Error {
    io::Error::other("the disk lost power")
}

fn apply(image: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Change::SetLen(len) => image.resize(*len as usize, 0),
    }
}

/// A small deterministic generator (splitmix64) for the torn cut.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl State {
    fn cut(&mut self, how: Cut) {
        let mut rng = match how {
            Cut::Torn { seed } => seed,
            Cut::Clean => 0,
        };
        self.db.cut(how, &mut rng);
        self.segs.cut(how, &mut rng);
        self.on = false;
    }

    /// The state of the live power cycle `cycle`, or the error of a disk without power.
    fn live(&mut self, cycle: u64) -> io::Result<&mut Self> {
        if !self.on || self.cycle != cycle {
            return Err(power_lost());
        }
        Ok(self)
    }

    /// Counts an op that changes the disk (`what`); fails it (and cuts the power) when it is
    /// the armed one.
    fn count(&mut self, what: OpKind) -> io::Result<()> {
        self.ops += 1;
        if what.is_segment() {
            self.seg_ops += 1;
        }
        if self.fail_next {
            self.fail_next = false;
            return Err(io::Error::other("an injected I/O error"));
        }
        if let Some(armed) = self.cut_at
            && (if armed.segment {
                what.is_segment() && self.seg_ops >= armed.at
            } else {
                self.ops >= armed.at
            })
        {
            self.cut_at = None;
            self.cut_op = Some((self.ops, what));
            self.cut(armed.how);
            return Err(power_lost());
        }
        Ok(())
    }
}

impl Disk {
    /// An empty disk, powered on.
    pub fn new() -> Arc<Disk> {
        Arc::new(Disk {
            state: Mutex::new(State {
                db: Image::default(),
                segs: SegFiles::default(),
                cycle: 0,
                on: true,
                ops: 0,
                seg_ops: 0,
                cut_at: None,
                cut_op: None,
                lying: false,
                fail_next: false,
                opened: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bytes behind: read through it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A backend over this disk for the current power cycle (fails while the power is off).
    pub fn backend(self: &Arc<Self>) -> io::Result<DiskBackend> {
        let mut s = self.lock();
        if !s.on {
            return Err(power_lost());
        }
        s.opened += 1;
        Ok(DiskBackend {
            disk: self.clone(),
            cycle: s.cycle,
        })
    }

    /// The factory `RedbJournal::open_with_backend` takes: each call makes a backend of the
    /// power cycle that is current now, so a journal of this cycle can never reach a later one
    /// (its reopen after the cut fails, as on a machine without power).
    pub fn factory(
        self: &Arc<Self>,
    ) -> impl Fn() -> io::Result<DiskBackend> + Send + Sync + 'static {
        let disk = self.clone();
        let cycle = self.lock().cycle;
        move || {
            let mut s = disk.lock();
            if !s.on || s.cycle != cycle {
                return Err(power_lost());
            }
            s.opened += 1;
            Ok(DiskBackend {
                disk: disk.clone(),
                cycle,
            })
        }
    }

    /// Arms the cut: `after` more ops (writes, length changes, syncs, segment files created or
    /// removed) complete, the next one is where the power goes (it does not happen).
    pub fn arm(&self, after: u64, how: Cut) {
        let mut s = self.lock();
        let at = s.ops + after + 1;
        s.cut_at = Some(Armed {
            at,
            how,
            segment: false,
        });
    }

    /// Arms the cut on the segment log: `after` more segment ops (writes, length changes,
    /// syncs, files created or removed) complete, the next one is where the power goes.
    pub fn arm_segment(&self, after: u64, how: Cut) {
        let mut s = self.lock();
        let at = s.seg_ops + after + 1;
        s.cut_at = Some(Armed {
            at,
            how,
            segment: true,
        });
    }

    /// Cuts the power now (if it is on).
    pub fn cut(&self, how: Cut) {
        let mut s = self.lock();
        if s.on {
            s.cut_at = None;
            s.cut(how);
        }
    }

    /// The next op (write, length change, sync, segment file created or removed) fails with an
    /// I/O error; nothing is lost and the power stays on (a transient fault: the journal must
    /// reopen and go on).
    pub fn fail_next(&self) {
        self.lock().fail_next = true;
    }

    /// How many backends were made over this disk (every open and reopen of the database).
    pub fn opened(&self) -> u64 {
        self.lock().opened
    }

    /// Whether the power was cut this cycle.
    pub fn is_cut(&self) -> bool {
        !self.lock().on
    }

    /// The op number the armed cut happened at, when it did.
    pub fn cut_op(&self) -> Option<u64> {
        self.lock().cut_op.map(|(n, _)| n)
    }

    /// What the op the armed cut happened at was, when it did.
    pub fn cut_on(&self) -> Option<OpKind> {
        self.lock().cut_op.map(|(_, what)| what)
    }

    /// Ops (writes, length changes, syncs, segment files created or removed) of this power
    /// cycle so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Those of them on the segment log.
    pub fn segment_ops(&self) -> u64 {
        self.lock().seg_ops
    }

    /// From now on `sync_data` (and a segment file's `sync`) completes without making anything
    /// durable (`true`), or syncs again (`false`). Only for showing that the power-loss test
    /// sees a missing fsync.
    pub fn set_lying(&self, lying: bool) {
        self.lock().lying = lying;
    }

    /// Starts the next power cycle from the durable image (cutting first if the power is
    /// still on, with [`Cut::Clean`]). Backends of earlier cycles keep failing.
    pub fn power_on(&self) {
        let mut s = self.lock();
        if s.on {
            s.cut(Cut::Clean);
        }
        s.db.restore();
        s.segs.restore();
        s.cycle += 1;
        s.on = true;
        s.ops = 0;
        s.seg_ops = 0;
        s.cut_at = None;
        s.cut_op = None;
        s.lying = false;
    }

    /// The bytes a power loss now would keep (with [`Cut::Clean`]).
    pub fn durable_len(&self) -> u64 {
        self.lock().db.durable.len() as u64
    }
}

/// One open of the [`Disk`] (redb owns it; made by [`Disk::factory`] or [`Disk::backend`]).
#[derive(Debug)]
pub struct DiskBackend {
    disk: Arc<Disk>,
    cycle: u64,
}

impl DiskBackend {
    /// Runs `f` on the disk's state, if this backend's power cycle is the live one.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        f(self.disk.lock().live(self.cycle)?)
    }
}

impl redb::StorageBackend for DiskBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.with(|s| Ok(s.db.current.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.with(|s| {
            s.db.read(offset, out).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "read past the end of the disk")
            })
        })
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.with(|s| {
            s.count(OpKind::DbSetLen)?;
            s.db.change(Change::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.with(|s| {
            s.count(OpKind::DbSync)?;
            let lying = s.lying;
            s.db.sync(lying);
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.with(|s| {
            s.count(OpKind::DbWrite)?;
            s.db.change(Change::Write {
                offset,
                data: data.to_vec(),
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, Durability, ReadableDatabase, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn put(db: &Database, k: u64, durability: Durability) -> Result<(), redb::Error> {
        let mut tx = db.begin_write()?;
        tx.set_durability(durability)?;
        tx.open_table(T)?.insert(k, k)?;
        tx.commit()?;
        Ok(())
    }

    fn keys(disk: &Arc<Disk>) -> Vec<u64> {
        let db = Database::builder()
            .create_with_backend(disk.backend().unwrap())
            .unwrap();
        let tx = db.begin_read().unwrap();
        let Ok(t) = tx.open_table(T) else {
            return Vec::new();
        };
        redb::ReadableTable::iter(&t)
            .unwrap()
            .map(|r| r.unwrap().0.value())
            .collect()
    }

    /// The demonstration the power-loss test rests on: what a commit with `Durability::None`
    /// wrote is gone after the cut, what one with `Durability::Immediate` wrote is there — so an
    /// acknowledgement given after a non-durable commit would be caught.
    #[test]
    fn a_cut_keeps_durable_commits_and_drops_the_rest() {
        let disk = Disk::new();
        let db = Database::builder()
            .create_with_backend(disk.backend().unwrap())
            .unwrap();
        put(&db, 1, Durability::Immediate).unwrap();
        put(&db, 2, Durability::None).unwrap();
        put(&db, 3, Durability::None).unwrap();
        disk.cut(Cut::Clean);
        assert!(
            put(&db, 4, Durability::Immediate).is_err(),
            "no write after the cut"
        );
        drop(db);
        disk.power_on();
        assert_eq!(keys(&disk), [1], "only the durable commit survives");
    }

    #[test]
    fn an_armed_cut_fails_that_op_and_every_later_call() {
        let disk = Disk::new();
        let db = Database::builder()
            .create_with_backend(disk.backend().unwrap())
            .unwrap();
        put(&db, 1, Durability::Immediate).unwrap();
        disk.arm(0, Cut::Clean);
        assert!(put(&db, 2, Durability::Immediate).is_err());
        assert!(disk.is_cut());
        assert!(disk.factory()().is_err(), "no new backend without power");
        drop(db);
        disk.power_on();
        assert_eq!(keys(&disk), [1]);
    }

    #[test]
    fn a_lying_sync_keeps_nothing() {
        let disk = Disk::new();
        let db = Database::builder()
            .create_with_backend(disk.backend().unwrap())
            .unwrap();
        put(&db, 1, Durability::Immediate).unwrap();
        disk.set_lying(true);
        put(&db, 2, Durability::Immediate).unwrap();
        drop(db);
        disk.power_on();
        assert_eq!(keys(&disk), [1]);
    }
}
