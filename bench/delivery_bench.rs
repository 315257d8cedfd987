//! Delivery benchmarks against an in-process receiver (always 200), so clocks match.
//!
//! * default (P3, throughput): (a) baseline — a plain pooled hyper client posts `--events`
//!   512 B bodies over `--streams` ordered streams (one request in flight per stream, as Courier
//!   does with `max_in_flight` 1); (b) Courier — the release binary with `--streams` endpoints
//!   pointing at the receiver, paused, `--events` batch-enqueued round robin, resumed; time from
//!   the resume until the receiver saw every event. Prints both rates and the ratio.
//! * `--latency` (P4): producers at a fixed `--rate` for `--duration` into `--endpoints` active
//!   endpoints; per event, the time from the producer's send (and from its 202) to the
//!   receiver's arrival, joined on the event id → p50/p90/p99/max.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/delivery_bench --events 50000
//! target/release/examples/delivery_bench --latency --rate 2000 --duration 10s
//! ```

use testkit::bench as common;
use testkit::receiver;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use common::{Daemon, pct};
use courier::client::{Client as ApiClient, Target};
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use receiver::{Behavior, Delivery, Plan, Receiver, ReceiverConfig, ServeOptions};
use tokio::sync::Notify;

#[derive(Parser, Debug, Clone)]
#[command(about = "Courier delivery throughput (P3) and latency (P4)")]
struct Args {
    /// P4: ingest-to-receiver latency at a fixed rate instead of P3 throughput.
    #[arg(long)]
    latency: bool,
    /// P3: events to deliver (each side).
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// P3: ordered streams / endpoints.
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// P3: run only `baseline` or `courier`.
    #[arg(long)]
    only: Option<String>,
    /// Event body size.
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// P4: total events/s.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// P4: how long to produce.
    #[arg(long, default_value = "10s", value_parser = common::parse_duration)]
    duration: Duration,
    /// P4: endpoints e1..eN.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// P4: producers (connections to the Unix socket).
    #[arg(long, default_value_t = 16)]
    producers: usize,
    /// P3: cap the baseline client's idle connections per host (hyper-util's
    /// `pool_max_idle_per_host`; default unlimited). Courier's delivery client uses 1024.
    #[arg(long)]
    baseline_pool_max_idle: Option<usize>,
    /// Longest wait for deliveries to complete.
    #[arg(long, default_value = "300s", value_parser = common::parse_duration)]
    timeout: Duration,
}

/// What the receiver's hook counts.
struct Tally {
    target: u64,
    delivered: AtomicU64,
    /// A success whose `n` is not above the previous one of its path (out of order/duplicate).
    order_errors: AtomicU64,
    last_n: Mutex<HashMap<String, u64>>,
    first_at: Mutex<Option<Instant>>,
    done_at: Mutex<Option<Instant>>,
    done: Notify,
    /// Latency mode: (event id, arrival) of every success.
    arrivals: Option<Mutex<Vec<(String, Instant)>>>,
}

impl Tally {
    fn new(target: u64, keep_arrivals: bool) -> Arc<Tally> {
        Arc::new(Tally {
            target,
            delivered: AtomicU64::new(0),
            order_errors: AtomicU64::new(0),
            last_n: Mutex::new(HashMap::new()),
            first_at: Mutex::new(None),
            done_at: Mutex::new(None),
            done: Notify::new(),
            arrivals: keep_arrivals.then(|| Mutex::new(Vec::new())),
        })
    }

    fn on(&self, d: &Delivery) {
        if !d.is_success() {
            return;
        }
        if let Some(n) = common::body_n(&d.body) {
            let mut m = self.last_n.lock().unwrap_or_else(|e| e.into_inner());
            match m.get_mut(&d.path) {
                Some(last) if n <= *last => {
                    self.order_errors.fetch_add(1, Ordering::Relaxed);
                }
                Some(last) => *last = n,
                None => {
                    m.insert(d.path.clone(), n);
                }
            }
        }
        if let Some(a) = &self.arrivals
            && let Some(id) = &d.event_id
        {
            a.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id.clone(), d.at));
        }
        let c = self.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if c == 1 {
            *self.first_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
        }
        if c == self.target {
            *self.done_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
            self.done.notify_one();
        }
    }

    async fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(t) = *self.done_at.lock().unwrap_or_else(|e| e.into_inner()) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, self.done.notified())
                .await
                .is_err()
            {
                return *self.done_at.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// Starts a release daemon in a temporary directory and creates endpoints e1..eN delivering to
/// the receiver's /e1../eN, paused when asked.
async fn daemon_with_endpoints(
    rx: &Receiver,
    n: usize,
    paused: bool,
) -> Result<(tempfile::TempDir, Daemon, common::Api, Vec<String>), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut d = Daemon::spawn(tmp.path(), None).map_err(|e| e.to_string())?;
    d.wait_ready(Duration::from_secs(20))
        .await
        .map_err(|e| e.to_string())?;
    let mut api = d.api();
    let ids: Vec<String> = (1..=n).map(|i| format!("e{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        api.put_endpoint(id, &rx.url(&format!("/e{}", i + 1)))
            .await
            .map_err(|e| e.to_string())?;
        if paused {
            api.set_paused(id, true).await.map_err(|e| e.to_string())?;
        }
    }
    Ok((tmp, d, api, ids))
}

async fn start_receiver(tally: &Arc<Tally>) -> Result<Receiver, String> {
    let t = tally.clone();
    Receiver::start_with(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(200))),
        ServeOptions {
            on_delivery: Some(Arc::new(move |d: &Delivery| t.on(d))),
            ..ServeOptions::default()
        },
    )
    .await
    .map_err(|e| format!("receiver: {e}"))
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("delivery_bench: {e}");
            std::process::exit(1);
        }
    };
    let r = if args.latency {
        rt.block_on(latency(args))
    } else {
        rt.block_on(throughput(args))
    };
    if let Err(e) = r {
        eprintln!("delivery_bench: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------------------------------
// P3: throughput
// ------------------------------------------------------------------------------------------

async fn throughput(args: Args) -> Result<(), String> {
    let only = args.only.as_deref();
    let base = if only.is_none_or(|o| o == "baseline") {
        Some(baseline(&args).await?)
    } else {
        None
    };
    let cour = if only.is_none_or(|o| o == "courier") {
        Some(courier(&args).await?)
    } else {
        None
    };
    let mut pairs = vec![("events", args.events.to_string())];
    if let Some((b, conns, cpu)) = base {
        pairs.push(("baseline_per_s", format!("{b:.0}")));
        pairs.push(("baseline_conns", conns.to_string()));
        pairs.push(("baseline_cpu_us", format!("{cpu:.1}")));
    }
    if let Some((c, conns, cpu)) = cour {
        pairs.push(("courier_per_s", format!("{c:.0}")));
        pairs.push(("courier_conns", conns.to_string()));
        pairs.push(("courier_cpu_us", format!("{cpu:.1}")));
    }
    let (base, cour) = (base.map(|b| b.0), cour.map(|c| c.0));
    if let (Some(b), Some(c)) = (base, cour) {
        println!("ratio courier/baseline: {:.2}", c / b);
        pairs.push(("ratio", format!("{:.3}", c / b)));
    }
    println!("{}", common::result_line(&pairs));
    Ok(())
}

/// (a) A plain hyper client, `streams` sequential streams, one request in flight each.
/// Returns (deliveries/s, TCP connections, CPU µs per delivery of client + receiver).
async fn baseline(args: &Args) -> Result<(f64, u64, f64), String> {
    let tally = Tally::new(args.events, false);
    let rx = start_receiver(&tally).await?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    if let Some(n) = args.baseline_pool_max_idle {
        builder.pool_max_idle_per_host(n);
    }
    let client: Client<HttpConnector, Full<Bytes>> = builder.build(http);
    let per_stream = args.events.div_ceil(args.streams as u64);
    let cpu0 = common::stat_cpu("/proc/self/stat");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut left = args.events;
    for s in 0..args.streams {
        let n = per_stream.min(left);
        left -= n;
        let client = client.clone();
        let uri: hyper::Uri = rx
            .url(&format!("/e{}", s + 1))
            .parse()
            .map_err(|e| format!("{e}"))?;
        let body_bytes = args.body_bytes;
        tasks.spawn(async move {
            let mut errors = 0u64;
            for k in 0..n {
                let req = hyper::Request::post(uri.clone())
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .header(hyper::header::USER_AGENT, "baseline/1")
                    .header("x-happ-event-id", format!("evt_baseline_{s}_{k}"))
                    .header("x-happ-attempt", "1")
                    .body(Full::new(Bytes::from(common::event_body(k, body_bytes))));
                let Ok(req) = req else {
                    errors += 1;
                    continue;
                };
                match client.request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                    }
                    _ => errors += 1,
                }
            }
            errors
        });
    }
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        errors += r.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = common::stat_cpu("/proc/self/stat") - cpu0;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let rate = delivered as f64 / elapsed;
    println!(
        "baseline CPU (client + receiver, this process): {cpu:.2} s = {:.0}% of one core \
         ({:.1} µs per request)",
        cpu / elapsed * 100.0,
        cpu * 1e6 / delivered.max(1) as f64
    );
    println!(
        "baseline: {delivered} deliveries over {} streams in {elapsed:.2} s = {rate:.0}/s; \
         errors {errors}; order errors {}; TCP connections {}",
        args.streams,
        tally.order_errors.load(Ordering::Relaxed),
        rx.connections()
    );
    Ok((rate, rx.connections(), cpu * 1e6 / delivered.max(1) as f64))
}

/// (b) Courier: enqueue everything paused, resume, time until all delivered.
/// Returns (deliveries/s, TCP connections it opened, daemon CPU µs per delivery).
async fn courier(args: &Args) -> Result<(f64, u64, f64), String> {
    let tally = Tally::new(args.events, false);
    let rx = start_receiver(&tally).await?;
    let (_tmp, mut d, mut api, ids) = daemon_with_endpoints(&rx, args.streams, true).await?;
    let t_fill = Instant::now();
    enqueue_round_robin(&mut api, &ids, args.events, args.body_bytes).await?;
    let fill_s = t_fill.elapsed().as_secs_f64();
    if tally.delivered.load(Ordering::Relaxed) != 0 {
        return Err("deliveries while paused".into());
    }
    // Resume all at once (concurrently, so the resumes share commits).
    let pid = d.pid().unwrap_or(0);
    let (cpu0, sched0) = (common::thread_cpu(pid), common::thread_sched(pid));
    let own0 = common::stat_cpu("/proc/self/stat");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let mut a = d.api();
        tasks.spawn(async move { a.set_paused(&id, false).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    let resumed = started.elapsed();
    let done = tally.wait(args.timeout).await;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let Some(done) = done else {
        return Err(format!(
            "courier delivered only {delivered} of {} within {:?}",
            args.events, args.timeout
        ));
    };
    let elapsed = done.duration_since(started).as_secs_f64();
    let (cpu1, sched1) = (common::thread_cpu(pid), common::thread_sched(pid));
    let own = common::stat_cpu("/proc/self/stat") - own0;
    println!(
        "receiver CPU (this process) during the drain: {own:.2} s ({:.1} µs per delivery)",
        own * 1e6 / args.events as f64
    );
    let (cpu_text, cpu_total) = common::cpu_report(&common::cpu_delta(&cpu0, &cpu1), elapsed);
    println!(
        "courier CPU during the drain: {cpu_total:.2} s = {:.0}% of one core ({:.1} µs per \
         delivery): {cpu_text}",
        cpu_total / elapsed * 100.0,
        cpu_total * 1e6 / args.events as f64
    );
    println!(
        "courier threads: {}",
        common::sched_report(&sched0, &sched1)
    );
    let first = tally
        .first_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map(|t| t.duration_since(started).as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    let rate = args.events as f64 / elapsed;
    let rss = d.status_kib("VmRSS").unwrap_or(0);
    println!(
        "courier: enqueued {} in {fill_s:.2} s; resumed {} endpoints in {:.1} ms; first delivery \
         after {first:.1} ms; {} deliveries in {elapsed:.2} s = {rate:.0}/s; order errors {}; \
         TCP connections opened by courier {}; daemon RSS {} MiB",
        args.events,
        args.streams,
        resumed.as_secs_f64() * 1000.0,
        args.events,
        tally.order_errors.load(Ordering::Relaxed),
        rx.connections(),
        rss / 1024
    );
    if let Ok(m) = api.writer_metrics().await {
        println!("{m}");
    }
    d.terminate(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    Ok((rate, rx.connections(), cpu_total * 1e6 / args.events as f64))
}

/// Batch-enqueues `events` bodies round robin over `ids`, 10,000 per request; each endpoint's
/// bodies carry n = 0, 1, 2, … in order.
async fn enqueue_round_robin(
    api: &mut common::Api,
    ids: &[String],
    events: u64,
    body_bytes: usize,
) -> Result<(), String> {
    let mut k = 0u64;
    while k < events {
        let end = (k + 10_000).min(events);
        let mut s = String::with_capacity(((end - k) as usize) * (body_bytes + 40));
        for j in k..end {
            let ep = &ids[(j % ids.len() as u64) as usize];
            let n = j / ids.len() as u64;
            s.push_str("{\"endpoint\":\"");
            s.push_str(ep);
            s.push_str("\",\"body\":");
            s.push_str(&common::event_body(n, body_bytes));
            s.push_str("}\n");
        }
        let (status, raw) = api
            .raw(Method::POST, "/v1/events/batch", Bytes::from(s))
            .await
            .map_err(|e| e.to_string())?;
        if status != 202 {
            return Err(format!(
                "batch enqueue: HTTP {status} {}",
                String::from_utf8_lossy(&raw)
            ));
        }
        k = end;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// P4: latency
// ------------------------------------------------------------------------------------------

struct Sent {
    id: String,
    endpoint: usize,
    seq: u64,
    sent: Instant,
    acked: Instant,
}

async fn latency(args: Args) -> Result<(), String> {
    let tally = Tally::new(u64::MAX, true);
    let rx = start_receiver(&tally).await?;
    let (_tmp, mut d, mut api, ids) = daemon_with_endpoints(&rx, args.endpoints, false).await?;
    let target = Target::Unix(d.socket.clone());
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + args.duration;
    let interval = Duration::from_secs_f64(args.producers as f64 / args.rate);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..args.producers {
        let target = target.clone();
        let ids = ids.clone();
        let counter = counter.clone();
        let body_bytes = args.body_bytes;
        let producers = args.producers;
        tasks.spawn(async move {
            let mut out: Vec<Sent> = Vec::new();
            let mut errors = 0u64;
            let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
            let mut api = ApiClient::new(target);
            api.connect().await.map_err(|e| e.to_string())?;
            let mut at = start + interval.mul_f64(p as f64 / producers as f64);
            while at < deadline {
                tokio::time::sleep_until(at.into()).await;
                at += interval;
                let k = counter.fetch_add(1, Ordering::Relaxed);
                let ep_idx = (k % ids.len() as u64) as usize;
                let ep = &ids[ep_idx];
                let body = Bytes::from(common::event_body(k, body_bytes));
                let sent = Instant::now();
                let r = api
                    .call(
                        Method::POST,
                        &format!("/v1/endpoints/{ep}/events"),
                        &json,
                        body,
                    )
                    .await
                    .map(|a| (a.status.as_u16(), a.body));
                let acked = Instant::now();
                match r {
                    Ok((202, raw)) => {
                        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
                        if let Some(id) = v["id"].as_str() {
                            out.push(Sent {
                                id: id.to_string(),
                                endpoint: ep_idx,
                                seq: v["seq"].as_u64().unwrap_or(0),
                                sent,
                                acked,
                            });
                        }
                    }
                    _ => {
                        errors += 1;
                        if !api.is_connected() {
                            api.connect().await.map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
            Ok::<_, String>((out, errors))
        });
    }
    let mut sent: Vec<Sent> = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (o, e) = r.map_err(|e| e.to_string())??;
        sent.extend(o);
        errors += e;
    }
    let produced_s = start.elapsed().as_secs_f64();
    // Wait (bounded) until every acknowledged event has arrived.
    let want = sent.len() as u64;
    let wait_until = Instant::now() + Duration::from_secs(30).min(args.timeout);
    while tally.delivered.load(Ordering::Relaxed) < want && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrival_list: Vec<(String, Instant)> = tally
        .arrivals
        .as_ref()
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default();
    let mut arrivals: HashMap<&str, Instant> = HashMap::with_capacity(arrival_list.len());
    for (id, at) in &arrival_list {
        arrivals.entry(id.as_str()).or_insert(*at);
    }
    // Order: per endpoint, arrivals (the hook runs before the answer, so in delivery order)
    // must come in increasing seq. (Producers send concurrently, so body numbers say nothing.)
    let by_id: HashMap<&str, (usize, u64)> = sent
        .iter()
        .map(|s| (s.id.as_str(), (s.endpoint, s.seq)))
        .collect();
    let mut last_seq: HashMap<usize, u64> = HashMap::new();
    let mut order_errors = 0u64;
    for (id, _) in &arrival_list {
        if let Some((ep, seq)) = by_id.get(id.as_str()) {
            match last_seq.get(ep) {
                Some(l) if seq <= l => order_errors += 1,
                _ => {
                    last_seq.insert(*ep, *seq);
                }
            }
        }
    }
    let mut from_send: Vec<i64> = Vec::with_capacity(sent.len());
    let mut from_ack: Vec<i64> = Vec::with_capacity(sent.len());
    let mut req_lat: Vec<i64> = Vec::with_capacity(sent.len());
    let mut missing = 0u64;
    let us = |a: Instant, b: Instant| -> i64 {
        if a >= b {
            a.duration_since(b).as_micros() as i64
        } else {
            -(b.duration_since(a).as_micros() as i64)
        }
    };
    for s in &sent {
        req_lat.push(us(s.acked, s.sent));
        match arrivals.get(s.id.as_str()) {
            Some(at) => {
                from_send.push(us(*at, s.sent));
                from_ack.push(us(*at, s.acked));
            }
            None => missing += 1,
        }
    }
    from_send.sort_unstable();
    from_ack.sort_unstable();
    req_lat.sort_unstable();
    let rate = sent.len() as f64 / produced_s;
    println!(
        "latency: {} events acknowledged at {rate:.0}/s ({} endpoints, {} producers, {:?}); \
         errors {errors}; not delivered {missing}; out of seq order {order_errors}",
        sent.len(),
        args.endpoints,
        args.producers,
        args.duration,
    );
    let show = |name: &str, v: &[i64]| {
        println!(
            "{name} µs: p50 {} p90 {} p99 {} max {}",
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            pct(v, 100.0)
        );
    };
    show("enqueue request (send→202)", &req_lat);
    show("send→receiver arrival", &from_send);
    show("202→receiver arrival", &from_ack);
    if let Ok(m) = api.writer_metrics().await {
        println!("{m}");
    }
    d.terminate(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        common::result_line(&[
            ("events", sent.len().to_string()),
            ("rate", format!("{rate:.0}")),
            ("missing", missing.to_string()),
            ("errors", errors.to_string()),
            ("order_errors", order_errors.to_string()),
            ("p50_us", pct(&from_send, 50.0).to_string()),
            ("p90_us", pct(&from_send, 90.0).to_string()),
            ("p99_us", pct(&from_send, 99.0).to_string()),
            ("max_us", pct(&from_send, 100.0).to_string()),
            ("ack_p50_us", pct(&from_ack, 50.0).to_string()),
            ("ack_p99_us", pct(&from_ack, 99.0).to_string()),
            ("req_p50_us", pct(&req_lat, 50.0).to_string()),
            ("req_p99_us", pct(&req_lat, 99.0).to_string()),
        ])
    );
    Ok(())
}
