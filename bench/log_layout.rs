//! The measurement behind the retained log's layout (ARCHITECTURE.md, "Decisions"): the same
//! records appended durably in group commits of `--batch` to (a) a redb table keyed
//! `(endpoint, seq)`, as Courier's `events`, and (b) a bare segment log (64 MiB files,
//! `write` + `fdatasync` per batch); then, for redb, what delivery costs in each model (a
//! per-event delete, the layout before the retained log, or nothing) and whether retention's
//! range removal gives the space back for the next round.
//!
//! ```text
//! cargo run --release --example log_layout -- --events 100000 --body-bytes 512 --batch 64
//! ```

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use clap::Parser;
use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");

#[derive(Parser, Debug)]
#[command(about = "redb table vs segment log, for the retained log")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// Records per durable commit.
    #[arg(long, default_value_t = 64)]
    batch: u64,
    /// Endpoints the records are spread over (round robin).
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Rounds of append + retention for the space-reuse figure.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    let names: Vec<String> = (0..a.endpoints).map(|i| format!("e{i}")).collect();
    let record = vec![0x5au8; a.body_bytes + 60]; // about a record's header and metadata
    let payload = a.events * record.len() as u64;
    println!(
        "{} records of {} B ({:.1} MiB), commits of {}",
        a.events,
        record.len(),
        mib(payload),
        a.batch
    );

    // (a) redb, the layout of `events`.
    let path = dir.path().join("t.redb");
    let db = Database::builder().set_cache_size(32 << 20).create(&path)?;
    let mut seq = 0u64;
    let append =
        |db: &Database, seq: &mut u64, n: u64| -> Result<f64, Box<dyn std::error::Error>> {
            let t = Instant::now();
            let mut left = n;
            while left > 0 {
                let k = left.min(a.batch);
                let tx = db.begin_write()?;
                {
                    let mut tab = tx.open_table(EVENTS)?;
                    for _ in 0..k {
                        let ep = &names[(*seq % a.endpoints as u64) as usize];
                        tab.insert((ep.as_str(), *seq), record.as_slice())?;
                        *seq += 1;
                    }
                }
                tx.commit()?;
                left -= k;
            }
            Ok(n as f64 / t.elapsed().as_secs_f64())
        };
    let rate = append(&db, &mut seq, a.events)?;
    let after_append = file_len(&path);
    let tx = db.begin_write()?;
    let st = tx.stats()?;
    tx.abort()?;
    println!(
        "redb pages: {} allocated of {} B; {} leaf, {} branch; leaf bytes stored {:.1} MiB, fragmented {:.1} MiB",
        st.allocated_pages(),
        st.page_size(),
        st.leaf_pages(),
        st.branch_pages(),
        mib(st.stored_bytes()),
        mib(st.fragmented_bytes())
    );
    println!(
        "redb append: {rate:.0} records/s; file {:.1} MiB = {:.2}x the records",
        mib(after_append),
        after_append as f64 / payload as f64
    );
    // Delivery before the retained log: one delete per event, lazily committed in batches.
    let t = Instant::now();
    let mut s = 0u64;
    while s < a.events {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::None)?;
        {
            let mut tab = tx.open_table(EVENTS)?;
            for _ in 0..a.batch.min(a.events - s) {
                let ep = &names[(s % a.endpoints as u64) as usize];
                tab.remove((ep.as_str(), s))?;
                s += 1;
            }
        }
        tx.commit()?;
    }
    let del_rate = a.events as f64 / t.elapsed().as_secs_f64();
    let tx = db.begin_write()?;
    tx.commit()?;
    println!(
        "redb per-event delete (delivery before the retained log): {del_rate:.0} events/s; file {:.1} MiB after",
        mib(file_len(&path))
    );
    // Rounds of steady traffic with retention: append a round, remove the previous round by
    // range (what the sweep does), and watch the file.
    let mut sizes = Vec::new();
    for _round in 0..a.rounds {
        let from = seq;
        append(&db, &mut seq, a.events)?;
        let tx = db.begin_write()?;
        {
            let mut tab = tx.open_table(EVENTS)?;
            for ep in &names {
                tab.retain_in((ep.as_str(), 0)..(ep.as_str(), from), |_, _| false)?;
            }
        }
        tx.commit()?;
        let tx = db.begin_write()?;
        tx.commit()?;
        let rows = db.begin_read()?.open_table(EVENTS)?.len()?;
        sizes.push(file_len(&path));
        assert_eq!(rows, a.events, "one round retained");
    }
    let sizes_mib: Vec<String> = sizes.iter().map(|s| format!("{:.1}", mib(*s))).collect();
    println!(
        "redb steady rounds (append a round, retention removes the one before): file MiB per round {}",
        sizes_mib.join(", ")
    );
    drop(db);

    // (b) the segment log.
    let seg_dir = dir.path().join("segments");
    std::fs::create_dir_all(&seg_dir)?;
    let t = Instant::now();
    let mut seg = 0u32;
    let mut f = std::fs::File::create(seg_dir.join(format!("{seg:08}.log")))?;
    let mut in_seg = 0u64;
    let mut buf = Vec::with_capacity((a.batch as usize) * (record.len() + 16));
    let mut written = 0u64;
    let mut left = a.events;
    while left > 0 {
        let k = left.min(a.batch);
        buf.clear();
        for i in 0..k {
            buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(written + i).to_le_bytes());
            buf.extend_from_slice(&[0u8; 4]); // a checksum's room
            buf.extend_from_slice(&record);
        }
        f.write_all(&buf)?;
        f.sync_data()?;
        in_seg += buf.len() as u64;
        written += k;
        left -= k;
        if in_seg >= 64 << 20 {
            seg += 1;
            f = std::fs::File::create(seg_dir.join(format!("{seg:08}.log")))?;
            in_seg = 0;
        }
    }
    let seg_rate = a.events as f64 / t.elapsed().as_secs_f64();
    let seg_bytes: u64 = std::fs::read_dir(&seg_dir)?
        .filter_map(|e| e.ok())
        .map(|e| file_len(&e.path()))
        .sum();
    println!(
        "segment log append: {seg_rate:.0} records/s ({:.2}x redb); files {:.1} MiB = {:.2}x the records",
        seg_rate / rate,
        mib(seg_bytes),
        seg_bytes as f64 / payload as f64
    );
    Ok(())
}
