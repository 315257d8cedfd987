//! `courier replay ID --since TIME [--until TIME]`: back-fill from the retained log. The CLI
//! drives the chunks itself (`POST /v1/endpoints/{id}/replay` with `limit` and `cursor`, the
//! route's own paging), so it can show a progress bar on a terminal; otherwise it prints one
//! summary line when done.

use std::io::IsTerminal;

use super::dlq::{thousands, time_arg};
use super::{ClientOpts, Failure};
use crate::views::{BackfillRequest, Backfilled};

/// Events one request handles (the daemon's most); the bar moves per request.
const STEP: u32 = 1000;

/// Send again every retained event of an endpoint accepted in a window, delivered or not.
///
/// The events go out in their original order with their original ids and X-HAPP-Replay: 1,
/// ahead of every event not yet started; events of the window still waiting for their first
/// delivery are left in line (sent once). Times are RFC 3339 (2026-11-21T06:00:00Z) or a
/// duration ago (90m, 2h); --until is exclusive and defaults to now.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Endpoint id.
    pub endpoint: String,
    /// Start of the window (inclusive): RFC 3339 or a duration ago (2h).
    #[arg(long, value_name = "TIME")]
    pub since: String,
    /// End of the window (exclusive): RFC 3339 or a duration ago [default: now].
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

pub(super) async fn run(opts: &ClientOpts, args: ReplayArgs) -> Result<(), Failure> {
    let mut client = opts.client();
    let mut step = BackfillRequest {
        since: Some(time_arg(&args.since)?),
        until: args.until.as_deref().map(time_arg).transpose()?,
        limit: Some(STEP),
        cursor: None,
    };
    let bar = Bar::new();
    let mut total = Backfilled {
        replayed: 0,
        pending: 0,
        retained_since: None,
        cut: false,
        next_cursor: None,
        left_at_most: None,
    };
    loop {
        let r = client.backfill(&args.endpoint, &step).await.map_err(|e| {
            bar.abandon();
            opts.failure(e)
        })?;
        total.replayed += r.replayed;
        total.pending += r.pending;
        total.cut |= r.cut;
        total.retained_since = r.retained_since;
        let handled = total.replayed + total.pending;
        bar.set(handled, handled + r.left_at_most.unwrap_or(0));
        match r.next_cursor {
            Some(c) => step.cursor = Some(c),
            None => break,
        }
    }
    bar.finish();
    opts.output(&total, |t| summary(&args.endpoint, t))
}

/// The summary: what was sent again, what was left in line, what retention had removed.
fn summary(endpoint: &str, t: &Backfilled) -> String {
    let id = super::render::one_line(endpoint);
    let mut s = format!(
        "Back-filled {} events of {id} ({} still pending were left in line)\n",
        thousands(t.replayed),
        thousands(t.pending)
    );
    if t.cut {
        let from = t.retained_since.as_deref().unwrap_or("-");
        s.push_str(&format!(
            "retention had removed the start of the window: {id} retains events accepted since {}\n",
            super::render::one_line(from)
        ));
    }
    s
}

/// A progress bar on stderr when it is a terminal (nothing otherwise); its length is the
/// events handled plus at most the daemon's `left_at_most`, refined with every request.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new() -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message("back-filling");
            bar
        }))
    }

    fn set(&self, done: u64, of: u64) {
        if let Some(b) = &self.0 {
            b.set_length(of.max(done));
            b.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }

    fn abandon(&self) {
        if let Some(b) = &self.0 {
            b.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_was_sent_and_what_was_left() {
        let mut t = Backfilled {
            replayed: 1234,
            pending: 2,
            retained_since: Some("2026-11-21T06:00:00.000Z".into()),
            cut: false,
            next_cursor: None,
            left_at_most: None,
        };
        assert_eq!(
            summary("acme", &t),
            "Back-filled 1,234 events of acme (2 still pending were left in line)\n"
        );
        t.cut = true;
        assert!(
            summary("acme", &t).ends_with(
                "retention had removed the start of the window: acme retains events accepted since 2026-11-21T06:00:00.000Z\n"
            ),
            "{}",
            summary("acme", &t)
        );
    }
}
