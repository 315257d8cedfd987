//! Back-fill benchmark: `--events` 512 B events of one endpoint are delivered (paused, batch
//! enqueued, resumed: the drain rate is the single-endpoint delivery rate, the reference), then
//! `POST /v1/endpoints/e1/replay` sends every one of them again from the retained log. Prints
//! the time from the request to the first back-filled arrival, the back-fill's rate beside the
//! drain's, and whether the copies came in order with `X-HAPP-Replay: 1`.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/backfill_bench --events 100000
//! ```

use testkit::bench as common;
use testkit::receiver;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use common::Daemon;
use courier::views::BackfillRequest;
use hyper::Method;
use receiver::{Behavior, Delivery, Plan, Receiver, ReceiverConfig, ServeOptions};

#[derive(Parser, Debug)]
#[command(about = "Courier back-fill from the retained log")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    #[arg(long, default_value = "300s", value_parser = common::parse_duration)]
    timeout: Duration,
}

/// Arrivals of one kind (first deliveries, or back-filled copies).
#[derive(Default)]
struct Count {
    n: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    last_body: AtomicU64,
    out_of_order: AtomicU64,
}

impl Count {
    fn on(&self, d: &Delivery) {
        let n = self.n.fetch_add(1, Ordering::AcqRel);
        if n == 0 {
            *self.first.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.at);
        if let Some(b) = common::body_n(&d.body) {
            let prev = self.last_body.swap(b + 1, Ordering::AcqRel);
            if n > 0 && b < prev {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn span(&self) -> Option<(Instant, Instant)> {
        let f = *self.first.lock().unwrap_or_else(|e| e.into_inner());
        let l = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        f.zip(l)
    }

    async fn wait(&self, n: u64, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        while self.n.load(Ordering::Acquire) < n {
            if Instant::now() > end {
                return Err(format!(
                    "only {} of {n} arrived",
                    self.n.load(Ordering::Acquire)
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
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
            eprintln!("backfill_bench: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("backfill_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let first = Arc::new(Count::default());
    let copies = Arc::new(Count::default());
    let bad_header = Arc::new(AtomicU64::new(0));
    let (f, c, b) = (first.clone(), copies.clone(), bad_header.clone());
    let rx = Receiver::start_with(
        ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(200))),
        ServeOptions {
            on_delivery: Some(Arc::new(move |d: &Delivery| {
                match d.headers.get("x-happ-replay").map(|v| v.as_bytes()) {
                    Some(b"1") => c.on(d),
                    Some(_) => {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                    None => f.on(d),
                }
            })),
            ..ServeOptions::default()
        },
    )
    .await
    .map_err(|e| format!("receiver: {e}"))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut d = Daemon::spawn(tmp.path(), None).map_err(|e| e.to_string())?;
    d.wait_ready(Duration::from_secs(20))
        .await
        .map_err(|e| e.to_string())?;
    let mut api = d.api();
    api.put_endpoint("e1", &rx.url("/e1"))
        .await
        .map_err(|e| e.to_string())?;
    api.set_paused("e1", true)
        .await
        .map_err(|e| e.to_string())?;
    let since = courier::core::timefmt::now_ms().saturating_sub(1);
    let mut k = 0;
    while k < args.events {
        let end = (k + 10_000).min(args.events);
        let mut s = String::new();
        for j in k..end {
            s.push_str("{\"endpoint\":\"e1\",\"body\":");
            s.push_str(&common::event_body(j, args.body_bytes));
            s.push_str("}\n");
        }
        let (status, raw) = api
            .raw(Method::POST, "/v1/events/batch", Bytes::from(s))
            .await
            .map_err(|e| e.to_string())?;
        if status != 202 {
            return Err(format!("batch: {status} {}", String::from_utf8_lossy(&raw)));
        }
        k = end;
    }
    let resumed = Instant::now();
    api.set_paused("e1", false)
        .await
        .map_err(|e| e.to_string())?;
    first.wait(args.events, args.timeout).await?;
    let (_, last) = first.span().ok_or("no deliveries")?;
    let drain = args.events as f64 / last.duration_since(resumed).as_secs_f64();

    let asked = Instant::now();
    let window = BackfillRequest {
        since: Some(courier::core::timefmt::rfc3339(since)),
        until: None,
        limit: None,
        cursor: None,
    };
    let answer = api
        .client()
        .backfill("e1", &window)
        .await
        .map_err(|e| e.to_string())?;
    let answered = asked.elapsed();
    copies.wait(args.events, args.timeout).await?;
    let (f0, l0) = copies.span().ok_or("no copies")?;
    let to_first = f0.duration_since(asked);
    let rate = args.events as f64 / l0.duration_since(asked).as_secs_f64();
    println!(
        "drain (first deliveries, 1 endpoint): {drain:.0}/s; back-fill of {} events: answered \
         in {:.2} s, first copy {:.0} ms after the request, all in {:.2} s = {rate:.0}/s \
         ({:.2}x the drain); copies out of order {}, without the header {}",
        answer.replayed,
        answered.as_secs_f64(),
        to_first.as_secs_f64() * 1000.0,
        l0.duration_since(asked).as_secs_f64(),
        rate / drain,
        copies.out_of_order.load(Ordering::Relaxed),
        bad_header.load(Ordering::Relaxed),
    );
    println!(
        "{}",
        common::result_line(&[
            ("events", args.events.to_string()),
            ("drain_per_s", format!("{drain:.0}")),
            (
                "backfill_first_ms",
                format!("{:.0}", to_first.as_secs_f64() * 1000.0)
            ),
            ("backfill_per_s", format!("{rate:.0}")),
            ("ratio", format!("{:.3}", rate / drain)),
        ])
    );
    let _ = d.terminate(Duration::from_secs(10));
    Ok(())
}
