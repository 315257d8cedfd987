//! `courier dlq …`: the clap definitions of the dead-letter commands and how each one talks to
//! the daemon through [`crate::client`]: one by one (show, replay, purge by event id) and in
//! bulk by filter (list with paging, replay with a progress bar, purge with confirmation,
//! NDJSON export).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use super::{ClientOpts, Failure, emit, render};
use crate::client::Client;
use crate::views::{DeadLetterFilter, DeadLetterList};

/// Dead letters one bulk replay request handles (the daemon's most); the bar moves per request.
const REPLAY_STEP: u32 = 1000;

/// Which dead letters a bulk command selects.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only dead letters of this endpoint.
    #[arg(long, value_name = "ID")]
    pub endpoint: Option<String>,
    /// Only dead letters with this reason (MAX_RETRIES_EXCEEDED, ENDPOINT_DELETED,
    /// RECORD_CORRUPT).
    #[arg(long, value_name = "CODE")]
    pub reason: Option<String>,
    /// Only those dead-lettered at or after this time: RFC 3339 (2026-11-21T06:00:00Z) or a
    /// duration ago (90m, 2h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only those dead-lettered before this time (exclusive): RFC 3339 or a duration ago.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

impl FilterArgs {
    /// The API's filter; a duration is turned into the RFC 3339 time that long ago.
    fn to_filter(&self) -> Result<DeadLetterFilter, Failure> {
        Ok(DeadLetterFilter {
            endpoint: self.endpoint.clone(),
            reason: self.reason.clone(),
            since: self.since.as_deref().map(time_arg).transpose()?,
            until: self.until.as_deref().map(time_arg).transpose()?,
            limit: None,
            cursor: None,
        })
    }
}

/// `2h` → the RFC 3339 time two hours ago; anything else is passed on for the daemon to judge.
pub(super) fn time_arg(s: &str) -> Result<String, Failure> {
    if s.starts_with(|c: char| c.is_ascii_digit()) && !s.contains('-') {
        let d = crate::core::duration::parse(s).map_err(|e| {
            Failure::Input(format!("{s:?} is neither a duration ago nor RFC 3339: {e}"))
        })?;
        let now = crate::core::timefmt::now_ms();
        let ago = now.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        return Ok(crate::core::timefmt::rfc3339(ago));
    }
    Ok(s.to_string())
}

/// Inspect, replay, purge and export dead letters.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCmd {
    /// List dead letters, oldest first: one page (--limit, --cursor), or every page (--all).
    ///
    /// With --endpoint they come in the endpoint's order (seq), else by event id. When more
    /// follow, the cursor of the next page is printed on stderr.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Dead letters a page holds: 1-1000.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
        /// Start after this page (the next_cursor of the previous one).
        #[arg(long, value_name = "CURSOR", conflicts_with = "all")]
        cursor: Option<String>,
        /// Walk every page and list them all.
        #[arg(long)]
        all: bool,
    },
    /// Show one dead letter with its attempt history and payload.
    Show {
        /// Event id (evt_...).
        event_id: String,
    },
    /// Put dead letters back in their endpoint's queue at their original place: one
    /// (EVENT_ID), or every one --endpoint and the other filters select.
    ///
    /// Each keeps its event id, its attempt numbers continue and its retry schedule starts
    /// afresh; in bulk they go back oldest first, ahead of every event not yet started, 1000
    /// per request (a progress bar on a terminal, a line per request otherwise). A dead letter
    /// whose record is corrupt cannot be sent again: it is counted as skipped and stays. The
    /// endpoint must exist: re-create a deleted one with the same id first.
    Replay {
        /// Event id (evt_...).
        #[arg(required_unless_present = "endpoint", conflicts_with_all = ["endpoint", "reason", "since", "until"])]
        event_id: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Delete dead letters for good: one (EVENT_ID), or every one --endpoint and the other
    /// filters select.
    ///
    /// In bulk it shows how many will go and asks on the terminal; --yes skips the question.
    /// Without a terminal to ask on, it refuses (exit 2) unless --yes is given.
    Purge {
        /// Event id (evt_...).
        #[arg(required_unless_present = "endpoint", conflicts_with_all = ["endpoint", "reason", "since", "until"])]
        event_id: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Purge without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write dead letters with their payloads as NDJSON, one a line (the shape of
    /// `courier dlq show --json`), oldest first, as the daemon streams them.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// Write to this file (created 0600: payloads may be personal data) instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub(super) async fn run(opts: &ClientOpts, cmd: DlqCmd) -> Result<(), Failure> {
    let mut client = opts.client();
    let fail = |e| opts.failure(e);
    match cmd {
        DlqCmd::List {
            filter,
            limit,
            cursor,
            all,
        } => {
            let filter = filter.to_filter()?;
            let list = if all {
                client.all_dead_letters(&filter).await.map_err(fail)?
            } else {
                client
                    .dead_letter_page(&filter, Some(limit), cursor.as_deref())
                    .await
                    .map_err(fail)?
            };
            opts.output(&list, |l| render::render_dead_letter_table(&l.dead_letters))?;
            more_hint(&list);
            Ok(())
        }
        DlqCmd::Show { event_id } => {
            let detail = client.dead_letter(&event_id).await.map_err(fail)?;
            opts.output(&detail, render::render_dead_letter)
        }
        DlqCmd::Replay {
            event_id: Some(event_id),
            ..
        } => {
            let replayed = client.replay_dead_letter(&event_id).await.map_err(fail)?;
            opts.output(&replayed, render::replay_line)
        }
        DlqCmd::Replay {
            event_id: None,
            filter,
        } => replay_matching(opts, &mut client, &filter.to_filter()?).await,
        DlqCmd::Purge {
            event_id: Some(event_id),
            ..
        } => {
            client.purge_dead_letter(&event_id).await.map_err(fail)?;
            opts.done(&format!("purged dead letter {event_id}\n"))
        }
        DlqCmd::Purge {
            event_id: None,
            filter,
            yes,
        } => purge_matching(opts, &mut client, &filter.to_filter()?, yes).await,
        DlqCmd::Export { filter, output } => {
            export(opts, &mut client, &filter.to_filter()?, output).await
        }
    }
}

/// On stderr, where the next page starts (stdout keeps only the list).
fn more_hint(list: &DeadLetterList) {
    if let Some(c) = &list.next_cursor {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "more dead letters follow: add --cursor {c} for the next page, or --all"
        );
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a filter selects, in words: `of acme with reason X since T`.
fn described(f: &DeadLetterFilter) -> String {
    let mut s = format!("of {}", f.endpoint.as_deref().unwrap_or("every endpoint"));
    if let Some(r) = &f.reason {
        s.push_str(&format!(" with reason {r}"));
    }
    if let Some(t) = &f.since {
        s.push_str(&format!(" since {t}"));
    }
    if let Some(t) = &f.until {
        s.push_str(&format!(" until {t}"));
    }
    s
}

/// Counts the matches, then replays them 1000 a request, showing progress on stderr.
async fn replay_matching(
    opts: &ClientOpts,
    client: &mut Client,
    filter: &DeadLetterFilter,
) -> Result<(), Failure> {
    let fail = |e| opts.failure(e);
    let total = client.count_dead_letters(filter).await.map_err(fail)?;
    let bar = Progress::new(total, "replaying");
    let mut step = DeadLetterFilter {
        limit: Some(REPLAY_STEP),
        ..filter.clone()
    };
    let (mut replayed, mut skipped) = (0u64, 0u64);
    loop {
        let r = client.replay_dead_letters(&step).await.map_err(|e| {
            bar.abandon();
            fail(e)
        })?;
        replayed += r.replayed;
        skipped += r.skipped;
        bar.set(replayed + skipped);
        match r.next_cursor {
            Some(c) => step.cursor = Some(c),
            None => break,
        }
    }
    bar.finish();
    let answer = crate::views::BulkReplayed {
        replayed,
        skipped,
        next_cursor: None,
    };
    opts.output(&answer, |a| {
        let mut s = format!(
            "replayed {} dead letters {}\n",
            thousands(a.replayed),
            described(filter)
        );
        if a.skipped > 0 {
            s.push_str(&format!(
                "skipped {}: their records are corrupt and cannot be sent again (courier dlq list --reason RECORD_CORRUPT)\n",
                thousands(a.skipped)
            ));
        }
        s
    })
}

/// Counts the matches, asks (unless `yes`), purges.
async fn purge_matching(
    opts: &ClientOpts,
    client: &mut Client,
    filter: &DeadLetterFilter,
    yes: bool,
) -> Result<(), Failure> {
    let fail = |e| opts.failure(e);
    let n = client.count_dead_letters(filter).await.map_err(fail)?;
    if n == 0 {
        return opts.output(&crate::views::Purged { purged: 0 }, |_| {
            format!("no dead letters {} to purge\n", described(filter))
        });
    }
    if !yes {
        let what = format!("purge {} dead letters {}", thousands(n), described(filter));
        if !confirm(&what)? {
            return opts.done("not purged\n");
        }
    }
    let purged = client.purge_dead_letters(filter).await.map_err(fail)?;
    opts.output(&crate::views::Purged { purged }, |p| {
        format!(
            "purged {} dead letters {}\n",
            thousands(p.purged),
            described(filter)
        )
    })
}

/// Asks "`what`? [y/N]" on the terminal; refuses when there is none to ask on.
fn confirm(what: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Failure::Input(format!(
            "refusing to {what} without a terminal to confirm on: pass --yes"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{what}? [y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Input(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Streams the NDJSON to a file (0600) or stdout; says how many on stderr.
async fn export(
    opts: &ClientOpts,
    client: &mut Client,
    filter: &DeadLetterFilter,
    output: Option<PathBuf>,
) -> Result<(), Failure> {
    let mut out: Box<dyn Write> = match &output {
        None => Box::new(std::io::stdout().lock()),
        Some(path) => {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let f = o
                .open(path)
                .map_err(|e| Failure::Input(format!("cannot write {}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(f))
        }
    };
    let mut lines = 0u64;
    client
        .export_dead_letters(filter, |chunk| {
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            out.write_all(chunk)
                .map_err(|e| format!("cannot write: {e}"))
        })
        .await
        .map_err(|e| opts.failure(e))?;
    out.flush()
        .map_err(|e| Failure::Input(format!("cannot write: {e}")))?;
    drop(out);
    if let Some(path) = output {
        emit(&format!(
            "exported {} dead letters {} to {}\n",
            thousands(lines),
            described(filter),
            path.display()
        ));
    }
    Ok(())
}

/// Progress on stderr: a bar on a terminal, a plain line per step otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    verb: &'static str,
}

impl Progress {
    fn new(total: u64, verb: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(verb);
            bar
        });
        Self { bar, total, verb }
    }

    fn set(&self, done: u64) {
        match &self.bar {
            Some(b) => b.set_position(done),
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "{} {}/{}",
                    self.verb,
                    thousands(done),
                    thousands(self.total.max(done))
                );
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn abandon(&self) {
        if let Some(b) = &self.bar {
            b.abandon();
        }
    }
}
