//! Disk use of probing down endpoints, on the embedded journal in-process (no HTTP, no
//! scheduler): `--endpoints` (default 500) endpoints, each `down` with one pending event of
//! `--body` bytes (default 1 KiB), probed every `--every-ms` (400) for `--seconds` (60) of
//! simulated time, every probe failing the same way (`ECONNREFUSED`) — what the scheduler
//! journals for it: `record_progress` with the probe's attempt, the event's progress (one more
//! attempt and history entry) and `down`; one commit per probe round. Prints the journal
//! file's size before, every 10 simulated seconds, and after.
//!
//! The issue's case is 2,500 endpoints (`--endpoints 2500`: 25 -> 198 MiB in a minute before
//! the attempt log counted repeats).
//!
//! ```text
//! cargo build --release --example probe_disk && target/release/examples/probe_disk
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use courier::core::ids::IdGen;
use courier::core::model::{AttemptKind, AttemptRecord, EndpointConfig, ErrorInfo, EventProgress};
use courier::core::record::EventMeta;
use courier::store::redb::{DB_FILE, DEFAULT_CACHE_BYTES, RedbJournal};
use courier::store::{EnqueueReq, Journal, ProgressOutcome, ProgressUpdate};

#[derive(Parser)]
struct Args {
    /// Down endpoints.
    #[arg(long, default_value_t = 500)]
    endpoints: usize,
    /// Simulated seconds of probing.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Probe interval (ms).
    #[arg(long, default_value_t = 400)]
    every_ms: u64,
    /// Body bytes of each endpoint's pending event.
    #[arg(long, default_value_t = 1024)]
    body: usize,
}

fn mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / f64::from(1 << 20))
}

/// A failed probe, built from the attempt's first shape (so this tool reads the same before
/// and after the attempt log's third shape).
fn probe(event_id: &str, n: u32, started_ms: u64) -> Option<AttemptRecord> {
    let first = (
        event_id,
        1u64,
        n,
        started_ms,
        None::<u16>,
        1u32,
        Some("ECONNREFUSED"),
        Some("connection refused (os error 111)"),
    );
    let mut a = AttemptRecord::decode_logged(&postcard::to_stdvec(&first).ok()?)?;
    a.kind = AttemptKind::Probe;
    Some(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(DB_FILE);
    let j = Arc::new(RedbJournal::open(
        &path,
        DEFAULT_CACHE_BYTES,
        courier::store::seal::KeyRing::test_ring(),
        Box::new(|_| {}),
    )?);
    let ids = IdGen::new();
    let cfg = EndpointConfig {
        url: "https://down.example/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5_000,
        retry_schedule_ms: vec![5_000, 15_000, 60_000],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    };
    let mut eps = Vec::with_capacity(args.endpoints);
    for i in 0..args.endpoints {
        let ep = format!("ep{i:05}");
        j.put_endpoint(ep.clone(), cfg.clone()).await?;
        let meta = EventMeta {
            id: ids.next(1),
            enqueued_at_ms: 1,
            content_type: "application/json".into(),
            event_type: None,
        };
        let body = Bytes::from(vec![b'x'; args.body]);
        let ok = j
            .enqueue(EnqueueReq::new(ep.clone(), meta, body, None)?)
            .await?;
        eps.push((Arc::<str>::from(ep), ok.id, EventProgress::default()));
    }
    j.sync().await?;
    println!(
        "{} down endpoints, a probe each every {} ms for {} s",
        args.endpoints, args.every_ms, args.seconds
    );
    println!("t=0s    journal {:7.1} MiB", mib(&path));
    let rounds = args.seconds * 1000 / args.every_ms;
    let t0 = Instant::now();
    for r in 1..=rounds {
        let now = 1_700_000_000_000 + r * args.every_ms;
        for (ep, id, progress) in &mut eps {
            let a = probe(id, progress.attempts + 1, now).ok_or("attempt shape")?;
            progress.attempts += 1;
            progress.last_error = Some(ErrorInfo {
                code: "ECONNREFUSED".into(),
                message: "connection refused (os error 111)".into(),
                status: None,
                at_ms: now,
            });
            progress.push(a.clone());
            j.record_progress(ProgressUpdate {
                endpoint: ep.clone(),
                seq: 1,
                attempt: a,
                progress: progress.clone(),
                outcome: ProgressOutcome::Pending,
                down: Some(true),
            });
        }
        j.sync().await?;
        if (r * args.every_ms).is_multiple_of(10_000) {
            println!(
                "t={:<4}  journal {:7.1} MiB",
                format!("{}s", r * args.every_ms / 1000),
                mib(&path)
            );
        }
    }
    let elapsed = t0.elapsed();
    let log = j.attempts("ep00000", 2000).await?;
    j.close().await?;
    println!(
        "after {} probes ({:.1} s): journal {:.1} MiB; endpoint ep00000 has {} attempt rows",
        rounds * args.endpoints as u64,
        elapsed.as_secs_f64(),
        mib(&path),
        log.len()
    );
    Ok(())
}
