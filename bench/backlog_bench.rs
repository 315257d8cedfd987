//! P5: a large backlog for one paused endpoint.
//!
//! 1. fill `--events` (default 1,000,000) 512 B events into paused `e1` with the batch route
//!    (`--batch` 10,000 per request, `--producers` concurrent requests);
//! 2. resident memory of the daemon while it holds them (VmRSS, and the peak VmHWM);
//! 3. SIGTERM, restart, time until `/readyz` answers and until `GET /v1/endpoints/e1` shows the
//!    whole backlog;
//! 4. resume and measure the in-order drain rate to an in-process receiver for the first
//!    `--drain` events (bounded by `--drain-timeout`), checking that they arrive in seq order
//!    with no gap and no duplicate.
//!
//! ```text
//! target/release/examples/backlog_bench --events 1000000 --drain 200000
//! ```

use testkit::bench as common;
use testkit::receiver;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use common::Daemon;
use hyper::Method;
use receiver::{Behavior, Delivery, Plan, Receiver, ReceiverConfig, ServeOptions};

#[derive(Parser, Debug)]
#[command(about = "Courier large-backlog benchmark (memory, restart, drain)")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Concurrent batch requests while filling.
    #[arg(long, default_value_t = 2)]
    producers: usize,
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// Events to drain (and time) after the restart.
    #[arg(long, default_value_t = 200_000)]
    drain: u64,
    #[arg(long, default_value = "120s", value_parser = common::parse_duration)]
    drain_timeout: Duration,
}

/// Order check on the receiver side: body `n` → seq through the per-batch seq starts.
struct Order {
    batch: u64,
    /// First seq of each batch (batch b holds n = b*batch ..).
    seq_start: OnceLock<Vec<u64>>,
    delivered: AtomicU64,
    /// (last seq, gaps, out-of-order or duplicate)
    state: Mutex<(u64, u64, u64)>,
    /// Arrival of the first delivery and the `drain`-th.
    first_at: Mutex<Option<Instant>>,
    done_at: Mutex<Option<Instant>>,
    drain: u64,
}

impl Order {
    fn on(&self, d: &Delivery) {
        if !d.is_success() {
            return;
        }
        let c = self.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if c == 1 {
            *self.first_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
        }
        if c == self.drain {
            *self.done_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
        }
        let (Some(n), Some(starts)) = (common::body_n(&d.body), self.seq_start.get()) else {
            return;
        };
        let Some(start) = starts.get((n / self.batch) as usize) else {
            return;
        };
        let seq = start + n % self.batch;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, gaps, bad) = &mut *st;
        if *last != 0 && seq <= *last {
            *bad += 1;
        } else {
            if *last != 0 && seq != *last + 1 {
                *gaps += 1;
            }
            *last = seq;
        }
    }
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("backlog_bench: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("backlog_bench: {e}");
        std::process::exit(1);
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1}", k as f64 / 1024.0))
        .unwrap_or_else(|| "?".into())
}

async fn run(args: Args) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    let order = Arc::new(Order {
        batch: args.batch,
        seq_start: OnceLock::new(),
        delivered: AtomicU64::new(0),
        state: Mutex::new((0, 0, 0)),
        first_at: Mutex::new(None),
        done_at: Mutex::new(None),
        drain: args.drain,
    });
    let hook = order.clone();
    let rx = Receiver::start_with(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(200))),
        ServeOptions {
            on_delivery: Some(Arc::new(move |d: &Delivery| hook.on(d))),
            ..ServeOptions::default()
        },
    )
    .await
    .map_err(e)?;

    let tmp = tempfile::tempdir().map_err(e)?;
    let mut d = Daemon::spawn(tmp.path(), None).map_err(e)?;
    d.wait_ready(Duration::from_secs(20)).await.map_err(e)?;
    let mut api = d.api();
    api.put_endpoint("e1", &rx.url("/e1")).await.map_err(e)?;
    api.set_paused("e1", true).await.map_err(e)?;
    let rss_idle = d.status_kib("VmRSS");

    // 1. Fill.
    let batches = args.events.div_ceil(args.batch);
    let next = Arc::new(AtomicU64::new(0));
    let starts = Arc::new(Mutex::new(vec![0u64; batches as usize]));
    let t_fill = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.producers {
        let mut api = d.api();
        let next = next.clone();
        let starts = starts.clone();
        let (events, batch, body_bytes) = (args.events, args.batch, args.body_bytes);
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, String>(lat);
                }
                let (lo, hi) = (b * batch, ((b + 1) * batch).min(events));
                let mut s = String::with_capacity(((hi - lo) as usize) * (body_bytes + 32));
                for n in lo..hi {
                    s.push_str("{\"endpoint\":\"e1\",\"body\":");
                    s.push_str(&common::event_body(n, body_bytes));
                    s.push_str("}\n");
                }
                let t = Instant::now();
                let (status, raw) = api
                    .raw(Method::POST, "/v1/events/batch", Bytes::from(s))
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t.elapsed().as_millis() as u64);
                if status != 202 {
                    return Err(format!(
                        "batch {b}: HTTP {status} {}",
                        String::from_utf8_lossy(&raw[..raw.len().min(300)])
                    ));
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
                let evs = v["events"].as_array().ok_or("no events in answer")?;
                let first = evs.first().and_then(|x| x["seq"].as_u64()).unwrap_or(0);
                let last = evs.last().and_then(|x| x["seq"].as_u64()).unwrap_or(0);
                if evs.len() as u64 != hi - lo || last + 1 - first != hi - lo {
                    return Err(format!("batch {b}: seqs not contiguous"));
                }
                starts.lock().unwrap_or_else(|e| e.into_inner())[b as usize] = first;
            }
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r.map_err(|e| e.to_string())??);
    }
    let fill_s = t_fill.elapsed().as_secs_f64();
    lat.sort_unstable();
    let _ = order
        .seq_start
        .set(starts.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let backlog = api.backlog("e1").await.map_err(e)?;
    println!(
        "fill: {} events in {fill_s:.2} s = {:.0}/s ({} per request, {} producers; request ms \
         p50 {} max {}); backlog {backlog}; journal {:.0} MiB",
        args.events,
        args.events as f64 / fill_s,
        args.batch,
        args.producers,
        common::pct(&lat, 50.0),
        common::pct(&lat, 100.0),
        d.journal_bytes() as f64 / 1048576.0
    );
    if backlog != args.events {
        return Err(format!("backlog {backlog}, expected {}", args.events));
    }

    // 2. Memory while holding the backlog.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_hold = d.status_kib("VmRSS");
    let hwm_fill = d.status_kib("VmHWM");
    println!(
        "memory: RSS idle {} MiB; holding {} events: RSS {} MiB (peak during fill {} MiB)",
        mib(rss_idle),
        args.events,
        mib(rss_hold),
        mib(hwm_fill)
    );

    // 3. Restart.
    let stop = d.terminate(Duration::from_secs(60)).map_err(e)?;
    let t0 = Instant::now();
    d.start().map_err(e)?;
    let ready = d.wait_ready(Duration::from_secs(60)).await.map_err(e)?;
    let mut api = d.api();
    let restart_deadline = t0 + Duration::from_secs(60);
    let backlog_at = loop {
        if let Ok(n) = api.backlog("e1").await
            && n == args.events
        {
            break t0.elapsed();
        }
        if Instant::now() > restart_deadline {
            return Err("backlog not visible after restart within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let rss_restart = d.status_kib("VmRSS");
    println!(
        "restart: SIGTERM→exit {:.0} ms; start→/readyz {:.0} ms; start→backlog {} visible \
         {:.0} ms; RSS after restart {} MiB",
        stop.as_secs_f64() * 1000.0,
        ready.as_secs_f64() * 1000.0,
        args.events,
        backlog_at.as_secs_f64() * 1000.0,
        mib(rss_restart)
    );

    // 4. Drain.
    let pid = d.pid().unwrap_or(0);
    let (cpu0, sched0) = (common::thread_cpu(pid), common::thread_sched(pid));
    let t_resume = Instant::now();
    api.set_paused("e1", false).await.map_err(e)?;
    let drain_deadline = t_resume + args.drain_timeout;
    let mut rss_drain_max = 0u64;
    while order
        .done_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_none()
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rss_drain_max = rss_drain_max.max(d.status_kib("VmRSS").unwrap_or(0));
    }
    let delivered = order.delivered.load(Ordering::Relaxed);
    let done_at = *order.done_at.lock().unwrap_or_else(|e| e.into_inner());
    let end = done_at.unwrap_or_else(Instant::now);
    let drain_s = end.duration_since(t_resume).as_secs_f64();
    let drained = delivered.min(args.drain);
    let rate = drained as f64 / drain_s;
    let (cpu1, sched1) = (common::thread_cpu(pid), common::thread_sched(pid));
    let (cpu_text, cpu_total) = common::cpu_report(&common::cpu_delta(&cpu0, &cpu1), drain_s);
    println!(
        "drain CPU: {cpu_total:.2} s = {:.0}% of one core ({:.1} µs per delivery): {cpu_text}",
        cpu_total / drain_s * 100.0,
        cpu_total * 1e6 / drained.max(1) as f64
    );
    println!("drain threads: {}", common::sched_report(&sched0, &sched1));
    let (last, gaps, bad) = *order.state.lock().unwrap_or_else(|e| e.into_inner());
    let first_ms = order
        .first_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map(|t| t.duration_since(t_resume).as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    println!(
        "drain: {drained} events in {drain_s:.2} s = {rate:.0}/s{} (first after {first_ms:.1} \
         ms); order: last seq {last}, gaps {gaps}, out of order/duplicates {bad}; RSS max \
         during drain {} MiB; TCP connections {}",
        if done_at.is_none() {
            " (TIMED OUT)"
        } else {
            ""
        },
        mib(Some(rss_drain_max)),
        rx.connections()
    );
    if let Ok(m) = api.writer_metrics().await {
        println!("{m}");
    }
    d.terminate(Duration::from_secs(60)).map_err(e)?;
    println!(
        "{}",
        common::result_line(&[
            ("events", args.events.to_string()),
            ("fill_per_s", format!("{:.0}", args.events as f64 / fill_s)),
            ("rss_mib", mib(rss_hold)),
            ("hwm_mib", mib(hwm_fill)),
            ("rss_restart_mib", mib(rss_restart)),
            ("stop_ms", format!("{:.0}", stop.as_secs_f64() * 1000.0)),
            ("ready_ms", format!("{:.0}", ready.as_secs_f64() * 1000.0)),
            (
                "restart_ms",
                format!("{:.0}", backlog_at.as_secs_f64() * 1000.0)
            ),
            ("drained", drained.to_string()),
            ("drain_per_s", format!("{rate:.0}")),
            ("order_errors", (gaps + bad).to_string()),
            ("timed_out", (done_at.is_none()).to_string()),
        ])
    );
    Ok(())
}
