//! The segment log on the power-loss [`Disk`]: [`SegmentFs`] and [`SegmentFile`] over memory,
//! each file a durable image and its unsynced changes like the database's, on the disk's power
//! cycle, op counter, armed cut, lying sync and injected error.
//!
//! Files behave as on a Unix file system whose directory is synced where `DirFs` syncs it: a
//! file created by `open(id, true)` exists (empty) durably once the call returns; `remove` is
//! immediate and durable; a file's bytes are durable only up to its last completed `sync`. A
//! name is a link to an inode: a handle opened before a `remove` still reads and writes its
//! file (gone at the next power cycle), and a new file of the same number is another file.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use courier::store::redb::segments::{SegmentFile, SegmentFs};

use super::{Change, Cut, Disk, Image, OpKind, State};

/// The segment files of a disk: names (segment numbers) linked to inodes.
#[derive(Debug, Default)]
pub(super) struct SegFiles {
    names: BTreeMap<u64, u64>,
    inodes: BTreeMap<u64, Image>,
    next_inode: u64,
    /// Files created and removed, over every power cycle.
    created: u64,
    removed: u64,
}

impl SegFiles {
    /// The power goes: every file drops its unsynced changes (or keeps a subset, torn).
    pub(super) fn cut(&mut self, how: Cut, rng: &mut u64) {
        for image in self.inodes.values_mut() {
            image.cut(how, rng);
        }
    }

    /// The power comes back: files read as their durable images; removed files are gone.
    pub(super) fn restore(&mut self) {
        let linked: Vec<u64> = self.names.values().copied().collect();
        self.inodes.retain(|ino, _| linked.contains(ino));
        for image in self.inodes.values_mut() {
            image.restore();
        }
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Image> {
        // An inode outlives its name only until the power cycle ends, with every handle to it.
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("a segment file of an earlier power cycle"))
    }
}

/// What a segment file's bytes are now, for a test's inspection (no op counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentImage {
    /// What reads see.
    pub current: Vec<u8>,
    /// What a clean cut now would keep.
    pub durable: Vec<u8>,
}

impl Disk {
    /// The segment storage of the power cycle that is current now (for
    /// `RedbJournal::open_with_backend`): every call fails once that cycle has lost its power.
    pub fn segment_fs(self: &Arc<Self>) -> Arc<dyn SegmentFs> {
        let cycle = self.lock().cycle;
        Arc::new(DiskSegments {
            disk: self.clone(),
            cycle,
        })
    }

    /// The segment files there are now, by number, with their bytes (whatever the power).
    pub fn segment_files(&self) -> BTreeMap<u64, SegmentImage> {
        let s = self.lock();
        (s.segs.names.iter())
            .filter_map(|(id, ino)| {
                let image = s.segs.inodes.get(ino)?;
                Some((
                    *id,
                    SegmentImage {
                        current: image.current.clone(),
                        durable: image.durable.clone(),
                    },
                ))
            })
            .collect()
    }

    /// Segment files created and removed so far, over every power cycle.
    pub fn segment_churn(&self) -> (u64, u64) {
        let s = self.lock();
        (s.segs.created, s.segs.removed)
    }
}

/// The segment directory of one power cycle of a [`Disk`].
struct DiskSegments {
    disk: Arc<Disk>,
    cycle: u64,
}

impl DiskSegments {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        f(self.disk.lock().live(self.cycle)?)
    }
}

impl SegmentFs for DiskSegments {
    fn list(&self) -> io::Result<Vec<u64>> {
        self.with(|s| Ok(s.segs.names.keys().copied().collect()))
    }

    fn open(&self, id: u64, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let inode = self.with(|s| {
            if let Some(ino) = s.segs.names.get(&id) {
                return Ok(*ino);
            }
            if !create {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no segment file {id}"),
                ));
            }
            // The new name is durable when this returns (`DirFs` syncs the directory).
            s.count(OpKind::SegCreate)?;
            let segs = &mut s.segs;
            let ino = segs.next_inode;
            segs.next_inode += 1;
            segs.inodes.insert(ino, Image::default());
            segs.names.insert(id, ino);
            segs.created += 1;
            Ok(ino)
        })?;
        Ok(Arc::new(DiskSegment {
            disk: self.disk.clone(),
            cycle: self.cycle,
            inode,
        }))
    }

    fn remove(&self, id: u64) -> io::Result<()> {
        self.with(|s| {
            if !s.segs.names.contains_key(&id) {
                return Ok(());
            }
            s.count(OpKind::SegRemove)?;
            s.segs.names.remove(&id);
            s.segs.removed += 1;
            Ok(())
        })
    }
}

/// One open segment file (a link to its inode, like a file descriptor).
struct DiskSegment {
    disk: Arc<Disk>,
    cycle: u64,
    inode: u64,
}

impl DiskSegment {
    /// Runs `f` on the file's image (counting the op `what` first, when it changes the disk).
    fn with<T>(
        &self,
        what: Option<OpKind>,
        f: impl FnOnce(&mut Image, bool) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut guard = self.disk.lock();
        let s = guard.live(self.cycle)?;
        // A file of this cycle exists (maybe without a name): check before counting.
        s.segs.inode(self.inode)?;
        if let Some(what) = what {
            s.count(what)?;
        }
        let lying = s.lying;
        f(s.segs.inode(self.inode)?, lying)
    }
}

impl SegmentFile for DiskSegment {
    fn len(&self) -> io::Result<u64> {
        self.with(None, |image, _| Ok(image.current.len() as u64))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.with(None, |image, _| {
            image.read(offset, buf).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the segment file",
                )
            })
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(Some(OpKind::SegWrite), |image, _| {
            image.change(Change::Write {
                offset,
                data: data.to_vec(),
            });
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(Some(OpKind::SegSetLen), |image, _| {
            image.change(Change::SetLen(len));
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(Some(OpKind::SegSync), |image, lying| {
            image.sync(lying);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(disk: &Disk, id: u64) -> Option<Vec<u8>> {
        disk.segment_files().get(&id).map(|f| f.current.clone())
    }

    #[test]
    fn a_cut_keeps_synced_segment_bytes_and_drops_the_rest() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        let f = fs.open(1, true).unwrap();
        f.write_at(0, b"synced").unwrap();
        f.sync().unwrap();
        f.write_at(6, b" and not").unwrap();
        f.set_len(20).unwrap();
        let g = fs.open(2, true).unwrap();
        g.write_at(0, b"never synced").unwrap();
        assert_eq!(f.len().unwrap(), 20);
        disk.cut(Cut::Clean);
        assert!(f.write_at(0, b"x").is_err(), "no write after the cut");
        assert!(f.read_at(0, &mut [0; 1]).is_err(), "no read either");
        assert!(fs.list().is_err() && fs.open(3, true).is_err());
        disk.power_on();
        assert!(fs.list().is_err(), "the old cycle's storage stays dead");
        assert!(f.len().is_err(), "and so do its files");
        let fs = disk.segment_fs();
        let mut ids = fs.list().unwrap();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2], "created files are durable");
        let f = fs.open(1, false).unwrap();
        assert_eq!(f.len().unwrap(), 6);
        let mut buf = [0u8; 6];
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"synced");
        assert_eq!(fs.open(2, false).unwrap().len().unwrap(), 0);
        assert_eq!(
            f.read_at(4, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn a_torn_cut_keeps_a_subset_of_the_unsynced_segment_writes() {
        let (mut kept, mut dropped) = (0, 0);
        for seed in 0..16 {
            let disk = Disk::new();
            let fs = disk.segment_fs();
            let f = fs.open(1, true).unwrap();
            f.write_at(0, &[0xAA; 8]).unwrap();
            f.sync().unwrap();
            for i in 0..8u8 {
                f.write_at(u64::from(i), &[i]).unwrap();
            }
            disk.cut(Cut::Torn { seed });
            disk.power_on();
            let got = bytes(&disk, 1).unwrap();
            assert_eq!(got.len(), 8);
            for (i, b) in got.iter().enumerate() {
                // Each byte is its write or what was synced under it, nothing else.
                assert!(*b == i as u8 || *b == 0xAA, "seed {seed}: {got:?}");
                if *b == i as u8 {
                    kept += 1
                } else {
                    dropped += 1
                }
            }
        }
        assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}");
    }

    #[test]
    fn a_lying_segment_sync_keeps_nothing() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        let f = fs.open(1, true).unwrap();
        f.write_at(0, b"durable").unwrap();
        f.sync().unwrap();
        disk.set_lying(true);
        f.write_at(7, b" lost").unwrap();
        f.sync().unwrap();
        drop(f);
        disk.power_on();
        assert_eq!(bytes(&disk, 1).unwrap(), b"durable");
    }

    #[test]
    fn an_armed_cut_lands_on_a_segment_op_and_fails_every_later_call() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        let db = disk.backend().unwrap();
        let f = fs.open(1, true).unwrap();
        f.write_at(0, b"abc").unwrap();
        f.sync().unwrap();
        disk.arm(1, Cut::Clean);
        f.write_at(3, b"def").unwrap();
        assert!(f.sync().is_err(), "the armed op fails");
        assert_eq!(disk.cut_on(), Some(OpKind::SegSync));
        assert!(disk.cut_on().is_some_and(OpKind::is_segment));
        assert!(disk.is_cut());
        assert!(redb::StorageBackend::len(&db).is_err(), "the database too");
        assert!(disk.factory()().is_err());
        disk.power_on();
        assert_eq!(bytes(&disk, 1).unwrap(), b"abc");

        // A cut can land on a file's creation (it is not there) or removal (it stays).
        let fs = disk.segment_fs();
        disk.arm(0, Cut::Clean);
        assert!(fs.open(2, true).is_err());
        assert_eq!(disk.cut_on(), Some(OpKind::SegCreate));
        disk.power_on();
        let fs = disk.segment_fs();
        assert_eq!(fs.list().unwrap(), [1]);
        disk.arm(0, Cut::Clean);
        assert!(fs.remove(1).is_err());
        assert_eq!(disk.cut_on(), Some(OpKind::SegRemove));
        disk.power_on();
        assert_eq!(disk.segment_fs().list().unwrap(), [1]);
    }

    #[test]
    fn a_cut_armed_on_the_segment_log_passes_over_database_ops() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        let db = disk.backend().unwrap();
        let f = fs.open(1, true).unwrap();
        assert_eq!(
            (disk.ops(), disk.segment_ops()),
            (1, 1),
            "the creation is an op"
        );
        disk.arm_segment(1, Cut::Clean);
        for i in 0..5 {
            redb::StorageBackend::write(&db, i, &[1]).unwrap();
        }
        f.write_at(0, b"a").unwrap();
        redb::StorageBackend::sync_data(&db).unwrap();
        assert!(f.sync().is_err(), "the second segment op after arming");
        assert_eq!(disk.cut_on(), Some(OpKind::SegSync));
        assert_eq!(disk.cut_op(), Some(9));
        disk.power_on();
        assert_eq!(bytes(&disk, 1).unwrap(), b"", "the write was not synced");
        assert_eq!(disk.durable_len(), 5, "the database's sync completed");
    }

    #[test]
    fn files_are_created_and_removed_durably_and_a_removed_file_stays_open() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        assert_eq!(
            fs.open(1, false).err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        let f = fs.open(1, true).unwrap();
        f.write_at(0, b"old").unwrap();
        f.sync().unwrap();
        let again = fs.open(1, true).unwrap();
        assert_eq!(
            again.len().unwrap(),
            3,
            "create opens an existing file as it is"
        );
        fs.remove(1).unwrap();
        fs.remove(1).unwrap(); // a missing file is not an error
        assert!(fs.list().unwrap().is_empty());
        let mut buf = [0u8; 3];
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"old", "an open handle still reads the removed file");
        let new = fs.open(1, true).unwrap();
        assert_eq!(new.len().unwrap(), 0, "a new file of the same number");
        f.write_at(0, b"xyz").unwrap();
        assert_eq!(new.len().unwrap(), 0);
        assert_eq!(disk.segment_churn(), (2, 1));
        disk.power_on();
        assert_eq!(disk.segment_fs().list().unwrap(), [1]);
        assert_eq!(bytes(&disk, 1).unwrap(), b"");
    }

    #[test]
    fn an_injected_error_on_a_segment_op_keeps_the_power_on() {
        let disk = Disk::new();
        let fs = disk.segment_fs();
        let f = fs.open(1, true).unwrap();
        f.write_at(0, b"abc").unwrap();
        disk.fail_next();
        assert!(f.sync().is_err());
        assert!(!disk.is_cut());
        f.sync().unwrap();
        disk.power_on();
        assert_eq!(bytes(&disk, 1).unwrap(), b"abc");
    }
}
