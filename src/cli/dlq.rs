//! `courier dlq …`: the clap definitions of the dead-letter commands and how each one talks to
//! the daemon through [`crate::client`].

use super::{ClientOpts, Failure, render};

/// Inspect, replay and purge dead letters.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCmd {
    /// List dead letters, oldest event first.
    List {
        /// Only dead letters of this endpoint.
        #[arg(long, value_name = "ID")]
        endpoint: Option<String>,
    },
    /// Show one dead letter with its attempt history and payload.
    Show {
        /// Event id (evt_...).
        event_id: String,
    },
    /// Put a dead letter back in its endpoint's queue at its original place.
    ///
    /// It keeps its event id, its attempt numbers continue and its retry schedule starts
    /// afresh. The endpoint must exist: re-create a deleted one with the same id first.
    Replay {
        /// Event id (evt_...).
        event_id: String,
    },
    /// Delete a dead letter for good.
    Purge {
        /// Event id (evt_...).
        event_id: String,
    },
}

pub(super) async fn run(opts: &ClientOpts, cmd: DlqCmd) -> Result<(), Failure> {
    let mut client = opts.client();
    let fail = |e| opts.failure(e);
    match cmd {
        DlqCmd::List { endpoint } => {
            let list = client
                .dead_letters(endpoint.as_deref())
                .await
                .map_err(fail)?;
            opts.output(&list, |l| render::render_dead_letter_table(&l.dead_letters))
        }
        DlqCmd::Show { event_id } => {
            let detail = client.dead_letter(&event_id).await.map_err(fail)?;
            opts.output(&detail, render::render_dead_letter)
        }
        DlqCmd::Replay { event_id } => {
            let replayed = client.replay_dead_letter(&event_id).await.map_err(fail)?;
            opts.output(&replayed, render::replay_line)
        }
        DlqCmd::Purge { event_id } => {
            client.purge_dead_letter(&event_id).await.map_err(fail)?;
            opts.done(&format!("purged dead letter {event_id}\n"))
        }
    }
}
