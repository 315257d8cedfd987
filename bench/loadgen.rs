//! Load generator for Courier's intake (and for `baseline_server`): many concurrent producers,
//! each on its own keep-alive HTTP/1.1 connection, over TCP or the Unix socket.
//!
//! ```text
//! cargo run --release --example loadgen -- --http 127.0.0.1:8425 --producers 64 \
//!     --endpoints 10 --create-endpoints http://127.0.0.1:9/hook --paused --duration 10s
//! cargo run --release --example loadgen -- --socket ./courier.sock --batch 1000 --producers 8
//! ```
//!
//! Bounded: stops after `--events` (then `--duration` defaults to a 600 s safety cap) or after
//! `--duration` (default 10 s), whichever comes first. Over TCP every request carries
//! `Authorization: Bearer $COURIER_ADMIN_TOKEN` when that is set (the daemon's admin token). Prints accepted events/s, errors by
//! status and code, request latency percentiles (µs), and a `RESULT key=value …` line.

use testkit::bench as common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use common::{Api, pct, unix_us};
use courier::client::{Client, Target, TransportKind};
use courier::config::ADMIN_TOKEN_ENV;
use courier::core::secret::Secret;
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderValue};

#[derive(Parser, Debug, Clone)]
#[command(about = "Courier intake load generator")]
struct Args {
    /// TCP address of the API, e.g. 127.0.0.1:8425.
    #[arg(long, conflicts_with = "socket")]
    http: Option<std::net::SocketAddr>,
    /// Unix socket of the API.
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    /// Concurrent producers (one connection each).
    #[arg(long, default_value_t = 64)]
    producers: usize,
    /// Endpoints e1..eN the events are spread over (round robin).
    #[arg(long, default_value_t = 1)]
    endpoints: usize,
    /// Create (or update) e1..eN pointing at this URL before the run.
    #[arg(long, value_name = "URL")]
    create_endpoints: Option<String>,
    /// Pause the endpoints after creating them (pure intake, no delivery).
    #[arg(long)]
    paused: bool,
    /// Size of each event body.
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// Total events to send (then stop).
    #[arg(long)]
    events: Option<u64>,
    /// How long to run [default: 10s, or 600s as a cap when --events is given].
    #[arg(long, value_parser = common::parse_duration)]
    duration: Option<Duration>,
    /// Total events/s (fixed rate, spread over producers); default: as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Events per request on the batch route (`POST /v1/events/batch`, NDJSON).
    #[arg(long)]
    batch: Option<usize>,
    /// Write acknowledged ids: `id<TAB>endpoint<TAB>seq<TAB>sent_unix_us<TAB>ack_unix_us`.
    #[arg(long, value_name = "FILE")]
    ids_out: Option<std::path::PathBuf>,
    /// Worker threads of the load generator's runtime (0: one per core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also report the CPU time this process (the server under test) used during the run, by
    /// thread (e.g. `courier-writer` vs the tokio workers `courier`).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Print Courier's writer metrics (group commit size, commit time) after the run.
    #[arg(long)]
    show_metrics: bool,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    accepted: u64,
    errors: HashMap<String, u64>,
    /// Request latency, µs.
    lat: Vec<u32>,
    /// Latency from the scheduled send time (fixed rate only), µs.
    lat_sched: Vec<u32>,
    ids: Vec<String>,
    last_done: Option<Instant>,
}

fn main() {
    let args = Args::parse();
    let mut rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if args.threads > 1 {
        rt.worker_threads(args.threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let target = match (&args.http, &args.socket) {
        (Some(a), None) => Target::Tcp(a.to_string()),
        (None, Some(p)) => Target::Unix(p.clone()),
        _ => return Err("give --http ADDR or --socket PATH".into()),
    };
    if args.producers == 0 || args.endpoints == 0 || args.batch == Some(0) {
        return Err("--producers, --endpoints and --batch must be at least 1".into());
    }
    let endpoints: Vec<String> = (1..=args.endpoints).map(|i| format!("e{i}")).collect();
    let token = match target {
        Target::Tcp(_) => std::env::var(ADMIN_TOKEN_ENV).ok().map(Secret::new),
        _ => None,
    };
    if let Some(t) = &token {
        // Checked once here, so that the producers' clients cannot fail to carry it.
        Client::new(target.clone())
            .with_token(t)
            .map_err(|e| e.to_string())?;
    }
    let mut api = Api::from_client(client(&target, token.as_ref()));
    if let Some(url) = &args.create_endpoints {
        for ep in &endpoints {
            api.put_endpoint(ep, url).await.map_err(|e| e.to_string())?;
            if args.paused {
                api.set_paused(ep, true).await.map_err(|e| e.to_string())?;
            }
        }
    }

    let duration = args.duration.unwrap_or(if args.events.is_some() {
        Duration::from_secs(600)
    } else {
        Duration::from_secs(10)
    });
    let per_req = args.batch.unwrap_or(1) as u64;
    // Requests to send in all; producers claim them one by one.
    let budget = args.events.map(|n| n.div_ceil(per_req)).unwrap_or(u64::MAX);
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let want_ids = args.ids_out.is_some();

    let cpu_before = args.server_pid.map(common::thread_cpu);
    let io_before = args.server_pid.map(|p| common::write_bytes(Some(p)));
    let sched_before = args.server_pid.map(common::thread_sched);
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..args.producers {
        let target = target.clone();
        let token = token.clone();
        let claimed = claimed.clone();
        let endpoints = endpoints.clone();
        let args = args.clone();
        tasks.spawn(async move {
            producer(
                p,
                client(&target, token.as_ref()),
                args,
                endpoints,
                claimed,
                budget,
                start,
                deadline,
                want_ids,
            )
            .await
        });
    }
    let mut total = Stats::default();
    while let Some(r) = tasks.join_next().await {
        let s = r.map_err(|e| format!("producer panicked: {e}"))?;
        total.requests += s.requests;
        total.accepted += s.accepted;
        for (k, v) in s.errors {
            *total.errors.entry(k).or_default() += v;
        }
        total.lat.extend(s.lat);
        total.lat_sched.extend(s.lat_sched);
        total.ids.extend(s.ids);
        total.last_done = total.last_done.max(s.last_done);
    }
    let cpu = args
        .server_pid
        .zip(cpu_before)
        .map(|(pid, before)| common::cpu_delta(&before, &common::thread_cpu(pid)));
    let sched = args
        .server_pid
        .zip(sched_before)
        .map(|(pid, before)| common::sched_report(&before, &common::thread_sched(pid)));
    let written = args
        .server_pid
        .zip(io_before)
        .map(|(pid, before)| common::write_bytes(Some(pid)).saturating_sub(before));
    let elapsed = total
        .last_done
        .map(|t| t.duration_since(start))
        .unwrap_or_else(|| start.elapsed())
        .as_secs_f64()
        .max(1e-9);

    if let Some(path) = &args.ids_out {
        let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        for line in &total.ids {
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }

    total.lat.sort_unstable();
    total.lat_sched.sort_unstable();
    let errors: u64 = total.errors.values().sum();
    let mode = match args.rate {
        Some(r) => format!("rate {r}/s"),
        None => "max".into(),
    };
    println!(
        "loadgen: target={target} producers={} endpoints={} body={}B batch={} mode={mode} threads={}",
        args.producers, args.endpoints, args.body_bytes, per_req, args.threads
    );
    println!(
        "elapsed {elapsed:.2} s; requests {} ({:.0}/s); accepted events {} ({:.0}/s)",
        total.requests,
        total.requests as f64 / elapsed,
        total.accepted,
        total.accepted as f64 / elapsed
    );
    if total.errors.is_empty() {
        println!("errors: none");
    } else {
        let mut e: Vec<_> = total.errors.iter().collect();
        e.sort();
        for (k, v) in e {
            println!("errors: {v} × {k}");
        }
    }
    let l = &total.lat;
    println!(
        "request latency µs: p50 {} p90 {} p99 {} max {}",
        pct(l, 50.0),
        pct(l, 90.0),
        pct(l, 99.0),
        pct(l, 100.0)
    );
    if !total.lat_sched.is_empty() {
        let l = &total.lat_sched;
        println!(
            "latency from the scheduled send time µs (includes ~1 ms tokio timer slack): p50 {} \
             p99 {} max {}",
            pct(l, 50.0),
            pct(l, 99.0),
            pct(l, 100.0)
        );
    }
    let mut cpu_pairs = Vec::new();
    if let Some(d) = &cpu {
        let (text, total_cpu) = common::cpu_report(d, elapsed);
        let per_event = total_cpu * 1e6 / total.accepted.max(1) as f64;
        println!(
            "server CPU: {total_cpu:.2} s = {:.0}% of one core ({per_event:.1} µs per accepted \
             event): {text}",
            total_cpu / elapsed * 100.0
        );
        cpu_pairs.push(("server_cpu_us_per_event", format!("{per_event:.1}")));
        if let Some(s) = &sched {
            println!("server threads: {s}");
        }
        if let Some(w) = written {
            let per = w as f64 / total.accepted.max(1) as f64;
            println!(
                "server disk writes: {:.0} MiB = {:.0} MiB/s ({per:.0} bytes per accepted event)",
                w as f64 / 1048576.0,
                w as f64 / 1048576.0 / elapsed
            );
            cpu_pairs.push(("disk_bytes_per_event", format!("{per:.0}")));
        }
        cpu_pairs.push(("server_cores", format!("{:.2}", total_cpu / elapsed)));
        for (n, v) in d {
            if n == "courier-writer" {
                cpu_pairs.push(("writer_cores", format!("{:.2}", v / elapsed)));
            }
        }
    }
    if args.show_metrics {
        match api.writer_metrics().await {
            Ok(m) => {
                println!("{m}");
                let get = |name: &str| {
                    m.lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                };
                if let (Some(n), Some(secs)) = (
                    get("courier_commit_duration_seconds_count"),
                    get("courier_commit_duration_seconds_sum"),
                ) {
                    let per_commit = total.accepted as f64 / n.max(1.0);
                    println!(
                        "writer: {n:.0} commits, {per_commit:.1} events per commit, {:.2} ms per \
                         commit, busy committing {:.0}% of the run",
                        secs * 1000.0 / n.max(1.0),
                        secs / elapsed * 100.0
                    );
                    cpu_pairs.push(("events_per_commit", format!("{per_commit:.1}")));
                    cpu_pairs.push(("commit_ms", format!("{:.2}", secs * 1000.0 / n.max(1.0))));
                    cpu_pairs.push(("writer_busy", format!("{:.2}", secs / elapsed)));
                }
            }
            Err(e) => println!("metrics: {e}"),
        }
    }
    let mut pairs = vec![
        ("accepted", total.accepted.to_string()),
        (
            "accepted_per_s",
            format!("{:.0}", total.accepted as f64 / elapsed),
        ),
        ("requests", total.requests.to_string()),
        ("errors", errors.to_string()),
        ("p50_us", pct(l, 50.0).to_string()),
        ("p90_us", pct(l, 90.0).to_string()),
        ("p99_us", pct(l, 99.0).to_string()),
        ("max_us", pct(l, 100.0).to_string()),
        ("elapsed_s", format!("{elapsed:.3}")),
    ];
    pairs.extend(cpu_pairs);
    println!("{}", common::result_line(&pairs));
    Ok(())
}

/// The request body (built once per producer and reused) and its path.
fn request_body(p: usize, args: &Args, endpoints: &[String]) -> (String, Bytes) {
    match args.batch {
        None => {
            // Single events: the producer rotates over endpoints per request.
            let body = common::event_body(p as u64, args.body_bytes);
            (String::new(), Bytes::from(body))
        }
        Some(k) => {
            let mut s = String::with_capacity(k * (args.body_bytes + 40));
            for i in 0..k {
                let ep = &endpoints[(p + i) % endpoints.len()];
                s.push_str("{\"endpoint\":\"");
                s.push_str(ep);
                s.push_str("\",\"body\":");
                s.push_str(&common::event_body(i as u64, args.body_bytes));
                s.push_str("}\n");
            }
            ("/v1/events/batch".into(), Bytes::from(s))
        }
    }
}

/// A client of `target`, carrying the admin token when there is one (checked in `run`).
fn client(target: &Target, token: Option<&Secret>) -> Client {
    let c = Client::new(target.clone());
    match token {
        Some(t) => c
            .with_token(t)
            .unwrap_or_else(|_| Client::new(target.clone())),
        None => c,
    }
}

#[allow(clippy::too_many_arguments)]
async fn producer(
    p: usize,
    mut client: Client,
    args: Args,
    endpoints: Vec<String>,
    claimed: Arc<AtomicU64>,
    budget: u64,
    start: Instant,
    deadline: Instant,
    want_ids: bool,
) -> Stats {
    let mut st = Stats::default();
    let (batch_path, body) = request_body(p, &args, &endpoints);
    let per_req = args.batch.unwrap_or(1) as u64;
    let content_type = if args.batch.is_some() {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    // Fixed rate: this producer's share, phase-shifted so producers do not send in lockstep.
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.producers as f64 / (r / per_req as f64)));
    let mut next_at = interval.map(|iv| start + iv.mul_f64(p as f64 / args.producers as f64));
    let content_type = [(CONTENT_TYPE, HeaderValue::from_static(content_type))];
    // One keep-alive connection (`client`), opened again after it broke.
    let mut n: usize = p;
    loop {
        if let Some(at) = next_at {
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        if Instant::now() >= deadline {
            break;
        }
        if claimed.fetch_add(1, Ordering::Relaxed) >= budget {
            break;
        }
        if !client.is_connected() {
            match tokio::time::timeout_at(deadline.into(), client.connect()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let e = match e.kind {
                        TransportKind::Unreachable(why) | TransportKind::Lost(why) => why,
                        _ => e.to_string(),
                    };
                    *st.errors.entry(format!("connect: {e}")).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(_) => break,
            }
        }
        let path = if args.batch.is_some() {
            batch_path.clone()
        } else {
            format!("/v1/endpoints/{}/events", endpoints[n % endpoints.len()])
        };
        n += 1;
        let sent = Instant::now();
        let sent_us = if want_ids { unix_us() } else { 0 };
        let r = client
            .call(Method::POST, &path, &content_type, body.clone())
            .await
            .map(|a| (a.status.as_u16(), a.body));
        let done = Instant::now();
        st.requests += 1;
        st.last_done = Some(done);
        st.lat
            .push(done.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
        if let Some(at) = next_at {
            st.lat_sched
                .push(done.duration_since(at).as_micros().min(u32::MAX as u128) as u32);
            next_at = interval.map(|iv| at + iv);
        }
        match r {
            Ok((202, resp)) => {
                st.accepted += per_req;
                if want_ids {
                    record_ids(&mut st.ids, &resp, sent_us, unix_us());
                }
            }
            Ok((status, resp)) => {
                let code = serde_json::from_slice::<serde_json::Value>(&resp)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                *st.errors.entry(format!("{status} {code}")).or_default() += 1;
            }
            Err(e) => {
                let e = match e.kind {
                    TransportKind::Lost(why) => why,
                    _ => e.to_string(),
                };
                *st.errors.entry(format!("io: {e}")).or_default() += 1;
                client.disconnect();
            }
        }
    }
    st
}

/// Appends `id endpoint seq sent_us ack_us` lines from a 202 answer (single or batch).
fn record_ids(out: &mut Vec<String>, resp: &[u8], sent_us: u64, ack_us: u64) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(resp) else {
        return;
    };
    let one = |e: &serde_json::Value| {
        format!(
            "{}\t{}\t{}\t{sent_us}\t{ack_us}",
            e["id"].as_str().unwrap_or("?"),
            e["endpoint"].as_str().unwrap_or("?"),
            e["seq"].as_u64().unwrap_or(0)
        )
    };
    match v.get("events").and_then(|e| e.as_array()) {
        Some(list) => out.extend(list.iter().map(one)),
        None => out.push(one(&v)),
    }
}
