//! Where the master keys come from, in order: `--master-key-file FILE` (config
//! `master_key_file`), the environment's `COURIER_MASTER_KEY`, else the data dir's
//! `master.key`, which the daemon creates (mode 0600, one new random key) on its first start
//! and offline inspection never creates. A key file readable or writable by group or others is
//! refused, as ssh refuses such a private key, and so is one that does not parse. Every refusal
//! starts with its stable code; none shows a key.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{KeyParseError, KeyRing, generate_key};
use crate::core::secret::Secret;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";
/// The environment variable that may hold the keys (base64, one per line).
pub const KEY_ENV: &str = "COURIER_MASTER_KEY";

/// What a new key file says above its key.
const HEADER: &str = "# Courier's master key: it seals the endpoints and channels of the journal beside it.\n\
# Back it up (apart from the data dir if you can): without it they cannot be read.\n\
# One base64 key per line; the first seals, the others only open (rotation).\n";

/// The keys found, where they came from, and the file created for them (if one was).
#[derive(Debug)]
pub struct MasterKeys {
    pub ring: Arc<KeyRing>,
    /// `--master-key-file <path>`, `COURIER_MASTER_KEY` or the data dir's file (for the log).
    pub source: String,
    /// The key file this call created (a first start).
    pub created: Option<PathBuf>,
}

/// Why no master key could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// No key where one was looked for.
    #[error("MASTER_KEY_MISSING: {0}")]
    Missing(String),
    /// The key file is open to group or others.
    #[error(
        "MASTER_KEY_PERMISSIONS: {path} is readable or writable by group or others (mode {mode:03o}); make it owner-only: chmod 600 {path}"
    )]
    Permissions { path: String, mode: u32 },
    /// The keys do not parse.
    #[error("MASTER_KEY_INVALID: {what}: {why}")]
    Invalid { what: String, why: KeyParseError },
}

impl MasterKeyError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            MasterKeyError::Missing(_) => "MASTER_KEY_MISSING",
            MasterKeyError::Permissions { .. } => "MASTER_KEY_PERMISSIONS",
            MasterKeyError::Invalid { .. } => "MASTER_KEY_INVALID",
        }
    }
}

/// The master keys: from `file` if given, else from `env` (the value of
/// `COURIER_MASTER_KEY`) if given, else from `<data_dir>/master.key`, which is created with
/// one new key when absent and `create` is set (the daemon's start; the data dir exists).
pub fn load(
    file: Option<&Path>,
    env: Option<&Secret>,
    data_dir: &Path,
    create: bool,
) -> Result<MasterKeys, MasterKeyError> {
    if let Some(path) = file {
        let ring = read(path)?.ok_or_else(|| {
            MasterKeyError::Missing(format!(
                "--master-key-file {}: no such file (restore it from its backup, or make one with courier master-key generate)",
                path.display()
            ))
        })?;
        return Ok(MasterKeys {
            ring: Arc::new(ring),
            source: format!("--master-key-file {}", path.display()),
            created: None,
        });
    }
    if let Some(value) = env.filter(|v| !v.expose().trim().is_empty()) {
        let ring = KeyRing::parse(value.expose()).map_err(|why| MasterKeyError::Invalid {
            what: KEY_ENV.into(),
            why,
        })?;
        return Ok(MasterKeys {
            ring: Arc::new(ring),
            source: KEY_ENV.into(),
            created: None,
        });
    }
    let path = data_dir.join(KEY_FILE);
    let source = path.display().to_string();
    if let Some(ring) = read(&path)? {
        return Ok(MasterKeys {
            ring: Arc::new(ring),
            source,
            created: None,
        });
    }
    if !create {
        return Err(MasterKeyError::Missing(format!(
            "no master key: {source} does not exist and neither --master-key-file nor {KEY_ENV} is given"
        )));
    }
    match create_file(&path)? {
        Some(ring) => Ok(MasterKeys {
            ring: Arc::new(ring),
            source,
            created: Some(path),
        }),
        // Another process created it meanwhile: take that one.
        None => match read(&path)? {
            Some(ring) => Ok(MasterKeys {
                ring: Arc::new(ring),
                source,
                created: None,
            }),
            None => Err(MasterKeyError::Missing(format!(
                "{source} vanished while it was being created"
            ))),
        },
    }
}

/// The keys of the file at `path`; `None` when there is no such file. The file must be
/// owner-only.
pub fn read(path: &Path) -> Result<Option<KeyRing>, MasterKeyError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| {
        MasterKeyError::Missing(format!("{shown}: cannot read the key file: {e}"))
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(MasterKeyError::Missing(format!(
            "{shown} is not a regular file"
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::Permissions { path: shown, mode });
    }
    let text = std::io::read_to_string(file).map_err(unreadable)?;
    KeyRing::parse(&text)
        .map(Some)
        .map_err(|why| MasterKeyError::Invalid { what: shown, why })
}

/// Creates the key file at `path` (0600, a new key); `None` when it exists already. The key is
/// written and synced to a temporary file first, then linked into place (which fails if the
/// file appeared meanwhile: an existing key is never replaced), so a crash never leaves a
/// partial key file behind.
fn create_file(path: &Path) -> Result<Option<KeyRing>, MasterKeyError> {
    let shown = path.display().to_string();
    let fail =
        |e: std::io::Error| MasterKeyError::Missing(format!("{shown}: cannot create it: {e}"));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    // A temporary file left by a crash holds no key anything was sealed with.
    let _ = std::fs::remove_file(&tmp);
    let text = format!("{HEADER}{}\n", generate_key());
    let ring = KeyRing::parse(&text).map_err(|why| MasterKeyError::Invalid {
        what: shown.clone(),
        why,
    })?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(fail(e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(Some(ring))
}
