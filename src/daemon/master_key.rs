//! The daemon's master keys at start: loaded (or, on a first start, created) from the sources
//! of [`crate::store::seal::key_file`], a refusal being a configuration error that starts with
//! its code; a key file this start creates is announced in the log (it must be backed up).

use super::DaemonError;
use crate::config::Config;
use crate::store::seal::key_file::{self, MasterKeys};

/// The master keys of the journal's sealed rows ([`crate::store::seal::key_file`]): a refusal
/// is a configuration error naming its code. A key file this start creates is announced (it
/// must be backed up) and, in a data dir this start created, removed again by a failed start.
pub(super) fn load(cfg: &Config, created: &mut super::Created) -> Result<MasterKeys, DaemonError> {
    let keys = key_file::load(
        cfg.master_key_file.as_deref(),
        cfg.master_key.as_ref(),
        &cfg.data_dir,
        true,
    )
    .map_err(|e| DaemonError::Config(e.to_string()))?;
    if let Some(made) = &keys.created {
        if created.journal.is_some() {
            created.key = Some(made.clone());
        }
        tracing::warn!(file = %made.display(), key_id = %keys.ring.sealing_id(), "created a new master key; back it up: without it the endpoints and channels in the journal cannot be read");
    }
    tracing::info!(source = %keys.source, key_id = %keys.ring.sealing_id(), keys = keys.ring.ids().len(), "master key loaded");
    Ok(keys)
}
