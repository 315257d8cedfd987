//! `courier explain [CODE]`: the error catalogue at the terminal, read from the binary itself
//! (no daemon needed). A code prints its meaning and fix — the same fix every API answer with
//! that code carries as its `hint`; a status (`404`) or part of a code prints every match; no
//! argument lists them all; `--markdown` prints the README's tables.

use crate::codes::{self, CATALOG, CodeInfo};
use crate::views::{ErrorCatalogue, ErrorCodeView};

use super::render::{clip, render_table};
use super::{EXIT_USAGE, emit};

/// Arguments of `courier explain`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// A code (`HTTPS_REQUIRED`, any case), an HTTP status (`401`) or part of a code
    /// (`TIMEOUT`); none lists every code.
    pub code: Option<String>,
    /// Print JSON: the shape of `GET /v1/errors/{code}` (a list for several matches).
    #[arg(long)]
    pub json: bool,
    /// Print the whole catalogue as the README's Markdown tables.
    #[arg(long, conflicts_with_all = ["code", "json"])]
    pub markdown: bool,
}

/// Runs `courier explain`; returns the exit code (2 when nothing matches).
pub fn run(args: &ExplainArgs) -> i32 {
    if args.markdown {
        emit(&codes::markdown());
        return 0;
    }
    let found: Vec<&CodeInfo> = match &args.code {
        None => CATALOG.iter().collect(),
        Some(q) => codes::search(q),
    };
    if found.is_empty() {
        let q = args.code.as_deref().unwrap_or("");
        let shown: String = q.chars().take(64).collect();
        eprint!(
            "error: UNKNOWN_ERROR_CODE: {shown:?} is not a code Courier produces\nhint: {}\n",
            codes::lookup("UNKNOWN_ERROR_CODE").map_or("", |c| c.fix)
        );
        return EXIT_USAGE;
    }
    if args.json {
        let views: Vec<ErrorCodeView> = found.iter().map(|c| ErrorCodeView::from(*c)).collect();
        let text = match (&args.code, views.as_slice()) {
            (Some(_), [one]) => serde_json::to_string_pretty(one),
            _ => serde_json::to_string_pretty(&ErrorCatalogue { errors: views }),
        };
        emit(&format!("{}\n", text.unwrap_or_default()));
    } else if args.code.is_none() {
        emit(&render_catalogue(&found));
    } else {
        let text: Vec<String> = found.iter().map(|c| render_code(c)).collect();
        emit(&text.join("\n"));
    }
    0
}

/// One code, as `courier explain CODE` prints it.
pub fn render_code(c: &CodeInfo) -> String {
    let status = c
        .http_status
        .map(|s| format!(", HTTP {s}"))
        .unwrap_or_default();
    format!(
        "{}  ({}{status})\nmeaning: {}\nfix:     {}\n",
        c.code,
        kind_words(c),
        c.meaning,
        c.fix
    )
}

/// The whole catalogue as one table.
fn render_catalogue(found: &[&CodeInfo]) -> String {
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|c| {
            vec![
                c.code.to_string(),
                c.kind.as_str().to_string(),
                c.http_status.map(|s| s.to_string()).unwrap_or_default(),
                clip(c.meaning, 70),
            ]
        })
        .collect();
    let mut out = render_table(&["CODE", "KIND", "STATUS", "MEANING"], &rows);
    out.push_str("\n`courier explain CODE` prints a code's meaning and fix.\n");
    out
}

fn kind_words(c: &CodeInfo) -> &'static str {
    use crate::codes::Kind;
    match c.kind {
        Kind::Api => "API answer",
        Kind::Ingress => "ingress answer",
        Kind::Attempt => "delivery attempt failure",
        Kind::DeadLetter => "dead-letter reason",
        Kind::Client => "printed by the command line",
        Kind::Start => "refusal at start",
    }
}
