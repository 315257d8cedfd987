//! The ceiling for durable intake (benchmark P2 baseline): a bare redb group-commit loop in one
//! process. N producer threads send records over a crossbeam channel to one writer thread that
//! drains the channel, inserts everything into one table keyed `(endpoint, seq)` in one write
//! transaction, commits durably (fsync), and only then acks each producer.
//!
//! With `--batch K` each producer message carries K records (like one request of Courier's
//! batch route) and is acked once.
//!
//! ```text
//! cargo run --release --example redb_baseline -- --producers 8 --batch 1000 --duration 10s
//! ```

use testkit::bench as common;

use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::{Receiver, Sender};
use redb::{Database, Durability, TableDefinition};

const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");

#[derive(Parser, Debug)]
#[command(about = "Bare redb group-commit throughput")]
struct Args {
    /// Producer threads.
    #[arg(long, default_value_t = 64)]
    producers: usize,
    /// Records per producer message (acked together).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Record size.
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// Endpoints e1..eN the records are spread over.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = common::parse_duration)]
    duration: Duration,
    /// Stop after this many records.
    #[arg(long)]
    events: Option<u64>,
    /// redb page cache in MiB (default: redb's own default, 1 GiB — what courier uses).
    #[arg(long)]
    cache_mib: Option<usize>,
    /// Directory for the database file (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

struct Msg {
    records: Vec<(u16, Vec<u8>)>,
    ack: Sender<()>,
}

struct WriterStats {
    commits: u64,
    records: u64,
    commit_time: Duration,
    max_records_per_commit: usize,
    /// CPU seconds of the writer thread.
    cpu: f64,
    /// Seconds the writer thread was runnable but waiting for a CPU.
    cpu_wait: f64,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("redb_baseline: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    if args.producers == 0 || args.batch == 0 || args.endpoints == 0 {
        return Err("--producers, --batch and --endpoints must be at least 1".into());
    }
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let path = dir.join("baseline.redb");
    let mut builder = Database::builder();
    if let Some(mib) = args.cache_mib {
        builder.set_cache_size(mib << 20);
    }
    let db = builder.create(&path).map_err(|e| e.to_string())?;
    {
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(EVENTS).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    let names: Vec<String> = (1..=args.endpoints).map(|i| format!("e{i}")).collect();
    let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
    let writer = {
        let names = names.clone();
        std::thread::spawn(move || writer(db, rx, names))
    };

    let cpu_before = common::stat_cpu("/proc/self/stat");
    let io_before = common::write_bytes(None);
    let start = Instant::now();
    let deadline = start + args.duration;
    let budget = args.events.unwrap_or(u64::MAX);
    let claimed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..args.producers {
        let tx = tx.clone();
        let claimed = claimed.clone();
        let (batch, body_bytes, endpoints) = (args.batch, args.body_bytes, args.endpoints);
        producers.push(std::thread::spawn(move || {
            let (ack_tx, ack_rx) = crossbeam_channel::bounded::<()>(1);
            let body = common::event_body(p as u64, body_bytes).into_bytes();
            let mut lat = Vec::new();
            let mut sent = 0u64;
            let mut n = p;
            let mut last = start;
            while Instant::now() < deadline {
                let c = claimed.fetch_add(batch as u64, std::sync::atomic::Ordering::Relaxed);
                if c >= budget {
                    break;
                }
                let records = (0..batch)
                    .map(|i| (((n + i) % endpoints) as u16, body.clone()))
                    .collect();
                n += 1;
                let t = Instant::now();
                if tx
                    .send(Msg {
                        records,
                        ack: ack_tx.clone(),
                    })
                    .is_err()
                    || ack_rx.recv().is_err()
                {
                    break;
                }
                last = Instant::now();
                lat.push(last.duration_since(t).as_micros() as u32);
                sent += batch as u64;
            }
            (sent, lat, last)
        }));
    }
    drop(tx);
    let mut total = 0u64;
    let mut lat = Vec::new();
    let mut last = start;
    for p in producers {
        let (s, l, t) = p.join().map_err(|_| "producer panicked")?;
        total += s;
        lat.extend(l);
        last = last.max(t);
    }
    let (ws, rss_kib) = writer.join().map_err(|_| "writer panicked")??;
    let cpu_total = common::stat_cpu("/proc/self/stat") - cpu_before;
    let written = common::write_bytes(None).saturating_sub(io_before);
    let elapsed = last.duration_since(start).as_secs_f64().max(1e-9);
    lat.sort_unstable();
    let rate = total as f64 / elapsed;
    println!(
        "redb_baseline: producers={} batch={} record={}B endpoints={} file={}",
        args.producers,
        args.batch,
        args.body_bytes,
        args.endpoints,
        path.display()
    );
    println!("elapsed {elapsed:.2} s; records {total} ({rate:.0}/s)");
    println!(
        "commits {} ({:.0}/s); records/commit avg {:.0} max {}; txn time (insert+commit) avg \
         {:.2} ms; RSS with the database open {:.1} MiB",
        ws.commits,
        ws.commits as f64 / elapsed,
        ws.records as f64 / ws.commits.max(1) as f64,
        ws.max_records_per_commit,
        ws.commit_time.as_secs_f64() * 1000.0 / ws.commits.max(1) as f64,
        rss_kib as f64 / 1024.0
    );
    println!(
        "process CPU {cpu_total:.2} s = {:.0}% of one core ({:.1} µs per record); writer thread \
         {:.2} s ({:.0}%), runnable but waiting for a CPU {:.2} s",
        cpu_total / elapsed * 100.0,
        cpu_total * 1e6 / total.max(1) as f64,
        ws.cpu,
        ws.cpu / elapsed * 100.0,
        ws.cpu_wait
    );
    println!(
        "disk writes: {:.0} MiB = {:.0} MiB/s ({:.0} bytes per record)",
        written as f64 / 1048576.0,
        written as f64 / 1048576.0 / elapsed,
        written as f64 / total.max(1) as f64
    );
    println!(
        "ack latency µs: p50 {} p99 {} max {}",
        common::pct(&lat, 50.0),
        common::pct(&lat, 99.0),
        common::pct(&lat, 100.0)
    );
    println!(
        "{}",
        common::result_line(&[
            ("accepted", total.to_string()),
            ("accepted_per_s", format!("{rate:.0}")),
            ("commits", ws.commits.to_string()),
            (
                "records_per_commit",
                format!("{:.0}", ws.records as f64 / ws.commits.max(1) as f64)
            ),
            (
                "commit_ms",
                format!(
                    "{:.2}",
                    ws.commit_time.as_secs_f64() * 1000.0 / ws.commits.max(1) as f64
                )
            ),
            ("p50_us", common::pct(&lat, 50.0).to_string()),
            ("p99_us", common::pct(&lat, 99.0).to_string()),
            ("rss_mib", format!("{:.1}", rss_kib as f64 / 1024.0)),
            (
                "cpu_us_per_event",
                format!("{:.1}", cpu_total * 1e6 / total.max(1) as f64)
            ),
            ("writer_cores", format!("{:.2}", ws.cpu / elapsed)),
            (
                "disk_bytes_per_event",
                format!("{:.0}", written as f64 / total.max(1) as f64)
            ),
            ("elapsed_s", format!("{elapsed:.3}")),
        ])
    );
    Ok(())
}

/// The writer loop; returns its stats and this process's VmRSS (KiB) measured while the
/// database is still open.
fn writer(
    db: Database,
    rx: Receiver<Msg>,
    names: Vec<String>,
) -> Result<(WriterStats, u64), String> {
    let mut seqs = vec![0u64; names.len()];
    let mut st = WriterStats {
        commits: 0,
        records: 0,
        commit_time: Duration::ZERO,
        max_records_per_commit: 0,
        cpu: 0.0,
        cpu_wait: 0.0,
    };
    let cpu_start = common::stat_cpu("/proc/thread-self/stat");
    let sched = || {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        let v: Vec<f64> = s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        v.get(1).copied().unwrap_or(0.0) / 1e9
    };
    let wait_start = sched();
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        let t = Instant::now();
        let mut tx = db.begin_write().map_err(|e| e.to_string())?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        {
            let mut table = tx.open_table(EVENTS).map_err(|e| e.to_string())?;
            for m in &msgs {
                for (ep, rec) in &m.records {
                    let e = *ep as usize;
                    seqs[e] += 1;
                    table
                        .insert((names[e].as_str(), seqs[e]), rec.as_slice())
                        .map_err(|e| e.to_string())?;
                    n += 1;
                }
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        st.commit_time += t.elapsed();
        st.commits += 1;
        st.records += n as u64;
        st.max_records_per_commit = st.max_records_per_commit.max(n);
        for m in msgs {
            let _ = m.ack.send(());
        }
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    drop(db);
    st.cpu = common::stat_cpu("/proc/thread-self/stat") - cpu_start;
    st.cpu_wait = sched() - wait_start;
    Ok((st, rss))
}
