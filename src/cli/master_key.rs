//! `courier master-key generate|ids`: makes a new master key (a base64 line for the key file:
//! prepend it to rotate) and shows the ids of a key file's keys (to find the key a journal
//! asks for by `MASTER_KEY_MISMATCH`). No daemon needed; no key is ever logged.

use std::path::PathBuf;

use crate::store::seal::{generate_key, key_file};

/// Subcommands of `courier master-key`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum MasterKeyCmd {
    /// Print a new random master key (32 bytes, base64): a line for the key file.
    Generate,
    /// Print the id of each key of a key file, the sealing one first.
    Ids {
        /// The key file [default: ./courier-data/master.key].
        file: Option<PathBuf>,
    },
}

/// Runs `courier master-key`; returns the exit code.
pub fn run(cmd: &MasterKeyCmd) -> i32 {
    match cmd {
        MasterKeyCmd::Generate => {
            println!("{}", generate_key());
            0
        }
        MasterKeyCmd::Ids { file } => {
            let path = file
                .clone()
                .unwrap_or_else(|| PathBuf::from("./courier-data").join(key_file::KEY_FILE));
            match key_file::read(&path) {
                Ok(Some(ring)) => {
                    for (i, id) in ring.ids().iter().enumerate() {
                        let role = if i == 0 { "seals and opens" } else { "opens" };
                        println!("{id}  {role}");
                    }
                    0
                }
                Ok(None) => {
                    eprintln!("error: {}: no such file", path.display());
                    super::EXIT_USAGE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
    }
}
