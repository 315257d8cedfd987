//! Offline inspection (`courier … --data-dir DIR` with the daemon stopped): opens the journal
//! read-only and serves the CLI's requests in this process through the daemon's own router
//! ([`api::handle`], over in-memory HTTP/1.1 connections), so every answer — and so everything
//! the CLI prints — is the same as online by construction. No scheduler runs: endpoint views
//! come from the stored records, as the API shows an endpoint the scheduler does not know. The
//! `before` step serves reads only (`READ_ONLY` otherwise), and the journal refuses every write
//! anyway: nothing here writes to the data files.

use std::path::Path;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::api::auth::{AdminGate, Via};
use crate::api::{self, AppState};
use crate::client::Local;
use crate::ingress::Channels;
use crate::intake::Intake;
use crate::scheduler::Scheduler;
use crate::store::Journal;
use crate::store::redb::{self as redb_store, ReadOnlyError, RedbJournal};

/// The page cache of an offline reader: small, it reads a few pages per command.
const OFFLINE_CACHE_BYTES: usize = 8 << 20;

/// Largest event body of the offline API's settings (it accepts no body anyway: reads only).
const OFFLINE_BODY_MAX: usize = 1 << 20;

/// How much an in-memory connection buffers in each direction.
const PIPE_BYTES: usize = 64 * 1024;

/// Opens the journal of `data_dir` read-only and answers the in-process API serving it, its
/// sealed rows opened with the master keys of `key_file`, else `COURIER_MASTER_KEY`, else the
/// data dir's `master.key` (never created here). [`ReadOnlyError::InUse`] means a daemon runs
/// on it (ask that one instead).
pub async fn open(data_dir: &Path, key_file: Option<&Path>) -> Result<Local, ReadOnlyError> {
    use crate::store::seal::key_file::{self, KEY_ENV, MasterKeyError};
    let path = data_dir.join(redb_store::DB_FILE);
    let env = std::env::var(KEY_ENV)
        .ok()
        .map(crate::core::secret::Secret::new);
    // No key at all is refused by the open only when the journal is sealed (an older one,
    // not yet upgraded, is read in clear).
    let keys = match key_file::load(key_file, env.as_ref(), data_dir, false) {
        Ok(k) => Some(k.ring),
        Err(MasterKeyError::Missing(_)) if key_file.is_none() => None,
        Err(e) => return Err(ReadOnlyError::Key(e.to_string())),
    };
    let journal: Arc<dyn Journal> = Arc::new(RedbJournal::open_read_only(
        &path,
        OFFLINE_CACHE_BYTES,
        keys,
    )?);
    let channels = journal
        .channels()
        .await
        .map_err(|e| ReadOnlyError::Invalid {
            path: path.clone(),
            why: e.to_string(),
        })?;
    // No scheduler: its handle's receiver is dropped, so it knows no endpoint.
    let (sched, _) = Scheduler::channel();
    let state = Arc::new(AppState {
        journal: journal.clone(),
        intake: Arc::new(Intake::new(journal)),
        sched,
        max_body_bytes: OFFLINE_BODY_MAX,
        allow_http: false,
        metrics: None,
        channels: Arc::new(Channels::load(channels)),
        gate: AdminGate::closed(),
        activity: None,
        metrics_max_endpoints: 0,
        journal_file: Some(path.clone()),
        // The daemon's flags are not stored: the defaults.
        limits: crate::store::Limits::default(),
    });
    Ok(Local::new(data_dir.display().to_string(), move || {
        connect(state.clone())
    }))
}

/// One in-memory connection: the far end is served on a task of the current runtime.
fn connect(state: Arc<AppState>) -> std::io::Result<tokio::io::DuplexStream> {
    let rt = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    let (near, far) = tokio::io::duplex(PIPE_BYTES);
    rt.spawn(async move {
        let svc = service_fn(move |req| api::handle(state.clone(), Via::Offline, req));
        if let Err(e) = http1::Builder::new()
            .serve_connection(TokioIo::new(far), svc)
            .await
        {
            tracing::debug!(error = %e, "offline connection ended with an error");
        }
    });
    Ok(near)
}
