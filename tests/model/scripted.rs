//! Scripted cases of the model test: action sequences written out, each run through the same
//! model and checks as the generated ones, and asserting that it reaches what it is for (the
//! copies sent, the window retention removed, the copy that died) — a case once shrunk to by
//! proptest among them.

use super::{Action, Since, Until, run, runtime};
use crate::model::Stats;
use crate::system::Mode;

fn scripted(actions: Vec<Action>) -> Stats {
    runtime()
        .block_on(run(actions))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The case proptest once shrank a failure to: the receiver down across a restart.
#[test]
fn retries_across_a_restart() {
    use Action::*;
    scripted(vec![
        SetMode(1, Mode::Unavailable),
        Enqueue(1),
        Advance(300),
        Enqueue(1),
        Restart,
        Advance(2478),
    ]);
}

/// A back-fill of delivered events, in chunks, while newer events wait behind a pause: the
/// copies go first, in order, with the replay flag, once each.
#[test]
fn back_filled_copies_go_ahead_of_newer_events() {
    use Action::*;
    let stats = scripted(vec![
        Enqueue(0),
        Enqueue(0),
        Enqueue(0),
        Advance(100),
        Pause(0),
        Enqueue(0),
        Enqueue(0),
        Backfill {
            ep: 0,
            since: Since::Origin,
            until: Until::Event(2, 1),
            limit: 2,
        },
        Resume(0),
        Advance(1_000),
    ]);
    assert_eq!((stats.copies, stats.copies_delivered), (3, 3), "{stats:?}");
}

/// Retention removes what was delivered before it; a window older than what it kept is gone,
/// one reaching into what it kept sends that part.
#[test]
fn a_window_retention_removed_is_gone() {
    use Action::*;
    let stats = scripted(vec![
        Enqueue(0),
        Enqueue(0),
        Advance(100),
        Advance(2_500),
        Sweep,
        Backfill {
            ep: 0,
            since: Since::Origin,
            until: Until::Cutoff,
            limit: 1000,
        },
        Enqueue(0),
        Advance(100),
        Backfill {
            ep: 0,
            since: Since::Origin,
            until: Until::Now,
            limit: 1000,
        },
        Advance(100),
    ]);
    assert_eq!(
        (stats.removed, stats.window_gone, stats.copies_delivered),
        (2, 1, 1),
        "{stats:?}"
    );
}

/// A back-filled copy the receiver keeps refusing becomes a dead letter; put back, it is sent
/// once more (without the replay flag: a dead-letter replay is not a back-fill).
#[test]
fn a_back_filled_copy_that_dies_can_be_replayed() {
    use Action::*;
    let stats = scripted(vec![
        Enqueue(0),
        Advance(100),
        SetMode(0, Mode::Rejected),
        Backfill {
            ep: 0,
            since: Since::Origin,
            until: Until::Now,
            limit: 1000,
        },
        Advance(1_000),
        SetMode(0, Mode::Ok),
        ReplayAll(0),
        Advance(100),
    ]);
    assert_eq!((stats.copies, stats.copies_dead), (1, 1), "{stats:?}");
}
