//! The file seam of the segment log: [`SegmentFs`] (a directory of numbered segment files) and
//! [`SegmentFile`] (one file: positioned reads and writes, length, `fdatasync`), with
//! [`DirFs`], the real directory. The power-loss test implements both over memory that forgets
//! what was not synced (`testkit::power_loss`), as it does redb's `StorageBackend`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One segment file. Every call may fail like the disk under it (`ENOSPC`, `EIO`).
// A length that can fail is not a collection's: `is_empty` would add nothing.
#[allow(clippy::len_without_is_empty)]
pub trait SegmentFile: Send + Sync {
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; a read past the end is an `UnexpectedEof` error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset` (not durable before [`SegmentFile::sync`]).
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cuts (or extends with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
}

/// A directory of segment files named by number.
pub trait SegmentFs: Send + Sync {
    /// The numbers of the segment files there are, in any order.
    fn list(&self) -> io::Result<Vec<u64>>;
    /// Opens segment `id`; with `create`, creates it empty (and durably: its directory entry
    /// survives a power loss once this returns) when it does not exist.
    fn open(&self, id: u64, create: bool) -> io::Result<Arc<dyn SegmentFile>>;
    /// Removes segment `id` (a missing file is not an error).
    fn remove(&self, id: u64) -> io::Result<()>;
    /// Whether this storage can only be read (offline inspection): nothing is created,
    /// trimmed or removed.
    fn read_only(&self) -> bool {
        false
    }
    /// Bytes the segment files take, as the file system counts them (for `courier status`
    /// and the benchmarks); the sum of lengths where the storage cannot say.
    fn disk_bytes(&self) -> io::Result<u64> {
        let mut n = 0;
        for id in self.list()? {
            n += self.open(id, false)?.len()?;
        }
        Ok(n)
    }
}

/// The segment directory's name inside the data directory.
pub const SEGMENT_DIR: &str = "segments";

/// The segment files of a real directory: `<dir>/<id, 16 hex digits>.seg`, created 0600 (they
/// hold event bodies).
pub struct DirFs {
    dir: PathBuf,
    read_only: bool,
}

impl DirFs {
    /// The directory `dir`, created (0700) when missing.
    pub fn create(dir: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            read_only: false,
        })
    }

    /// The directory `dir` for reading only (it may be missing: a journal without segments).
    pub fn read_only(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            read_only: true,
        }
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.seg"))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct RealFile(File);

impl SegmentFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl SegmentFs for DirFs {
    fn list(&self) -> io::Result<Vec<u64>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.read_only => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut ids = Vec::new();
        for entry in rd {
            let name = entry?.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if hex.len() == 16
                && let Ok(id) = u64::from_str_radix(hex, 16)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn open(&self, id: u64, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.path(id);
        let create = create && !self.read_only;
        let existed = !create || path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(!self.read_only)
            .create(create)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        if !existed {
            // The new name must survive a power loss before a commit refers to the file.
            sync_dir(&self.dir)?;
        }
        Ok(Arc::new(RealFile(file)))
    }

    fn remove(&self, id: u64) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn disk_bytes(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let mut n = 0;
        for id in self.list()? {
            match std::fs::metadata(self.path(id)) {
                Ok(m) => n += m.blocks() * 512,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// Open segment files, by number: a file is opened once and read by every reader. At most
/// [`MAX_OPEN`] are kept (a large journal of small segments would otherwise hold a descriptor
/// for each); past it an arbitrary other one is closed, to be opened again when read.
#[derive(Default)]
pub(crate) struct OpenFiles(std::sync::RwLock<HashMap<u64, Arc<dyn SegmentFile>>>);

/// Most segment files kept open.
pub(crate) const MAX_OPEN: usize = 256;

impl OpenFiles {
    pub(crate) fn get(&self, fs: &dyn SegmentFs, id: u64) -> io::Result<Arc<dyn SegmentFile>> {
        if let Ok(files) = self.0.read()
            && let Some(f) = files.get(&id)
        {
            return Ok(f.clone());
        }
        let f = fs.open(id, false)?;
        self.put(id, f.clone());
        Ok(f)
    }

    pub(crate) fn put(&self, id: u64, f: Arc<dyn SegmentFile>) {
        if let Ok(mut files) = self.0.write() {
            if files.len() >= MAX_OPEN
                && !files.contains_key(&id)
                && let Some(other) = files.keys().copied().find(|k| *k != id)
            {
                files.remove(&other);
            }
            files.insert(id, f);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.read().map_or(0, |f| f.len())
    }

    pub(crate) fn forget(&self, id: u64) {
        if let Ok(mut files) = self.0.write() {
            files.remove(&id);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut files) = self.0.write() {
            files.clear();
        }
    }
}
