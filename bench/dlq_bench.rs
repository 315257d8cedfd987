//! Dead letters in bulk, on the embedded journal in-process (no HTTP): a journal with
//! `--dead` (default 100,000) dead letters over `--endpoints` (default 2,000) endpoints, made by
//! force-deleting endpoints with a backlog and creating them again (so they can be replayed;
//! no scheduler runs, so nothing is delivered);
//! then
//!
//! 1. page latency: one page of 100 of one endpoint (the index walk), of everything from the
//!    middle (the event-id walk), with a filter nothing matches (one page's scan budget), and
//!    the v1 read a page replaces (every dead letter of one endpoint by scanning them all);
//! 2. bulk replay of `--replay` (default 10,000) dead letters of one endpoint, in chunks of
//!    100, 1000 (the API's) and all at once, each chunk one durable commit;
//! 3. export throughput: every dead letter with its payload, read 100 a page and serialized as
//!    the NDJSON lines of `GET /v1/dead-letters/export`.
//!
//! ```text
//! cargo build --release --example dlq_bench && target/release/examples/dlq_bench
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use courier::core::dead_filter::{Cursor, DeadFilter};
use courier::core::ids::IdGen;
use courier::core::model::EndpointConfig;
use courier::core::record::EventMeta;
use courier::store::redb::{DB_FILE, DEFAULT_CACHE_BYTES, RedbJournal};
use courier::store::{DeadQuery, EnqueueReq, Journal};

#[derive(Parser, Debug)]
#[command(about = "Courier dead letters in bulk: pages, bulk replay, export")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    dead: usize,
    #[arg(long, default_value_t = 2_000)]
    endpoints: usize,
    /// Dead letters of the one endpoint the replay takes back.
    #[arg(long, default_value_t = 10_000)]
    replay: usize,
    #[arg(long, default_value_t = 512)]
    body_bytes: usize,
    /// Repetitions of each page read (the median is printed).
    #[arg(long, default_value_t = 50)]
    reps: usize,
}

fn config() -> EndpointConfig {
    EndpointConfig {
        url: "https://receiver.test/hook".into(),
        secret: None,
        password: None,
        timeout_ms: 5000,
        retry_schedule_ms: vec![],
        max_in_flight: 1,
        max_backlog: None,
        security: Default::default(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn fill(j: &RedbJournal, ids: &IdGen, ep: &str, n: usize, body: &Bytes) {
    j.put_endpoint(ep.into(), config()).await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let reqs = chunk
            .iter()
            .map(|_| {
                let now = courier::core::timefmt::now_ms();
                let meta = EventMeta {
                    id: ids.next(now),
                    enqueued_at_ms: now,
                    content_type: "application/json".into(),
                    event_type: Some("bench".into()),
                };
                EnqueueReq::new(ep.into(), meta, body.clone(), None).unwrap()
            })
            .collect();
        j.enqueue_batch(reqs).await.unwrap();
    }
    // Dead letters with reason ENDPOINT_DELETED; created again, it can take them back.
    j.delete_endpoint(ep.into(), true).await.unwrap();
    j.put_endpoint(ep.into(), config()).await.unwrap();
}

async fn page_time(j: &RedbJournal, q: DeadQuery, reps: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let p = j.dead_letter_page(q.clone()).await.unwrap();
        times.push(t.elapsed());
        n = p.entries.len();
    }
    (median(times), n)
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let j = Arc::new(
        RedbJournal::open(
            &dir.path().join(DB_FILE),
            DEFAULT_CACHE_BYTES,
            courier::store::seal::KeyRing::test_ring(),
            Box::new(|_| {}),
        )
        .unwrap(),
    );
    let ids = IdGen::new();
    let body = Bytes::from(format!(
        "{{\"pad\":\"{}\"}}",
        "x".repeat(a.body_bytes.saturating_sub(10))
    ));
    let t = Instant::now();
    // One endpoint holds the replay's share; the rest is spread over the others.
    fill(&j, &ids, "big", a.replay, &body).await;
    let rest = a.dead.saturating_sub(a.replay);
    let others = a.endpoints.saturating_sub(1).max(1);
    for e in 0..others {
        let n = rest / others + usize::from(e < rest % others);
        fill(&j, &ids, &format!("ep{e:05}"), n, &body).await;
    }
    let total = j.dead_letters(None).await.unwrap().len();
    println!(
        "filled {total} dead letters over {} endpoints in {:.1} s",
        others + 1,
        t.elapsed().as_secs_f64()
    );

    // 1. pages
    let one = DeadFilter::endpoint(format!("ep{:05}", others / 2));
    let (d, n) = page_time(
        &j,
        DeadQuery {
            filter: one.clone(),
            after: None,
            limit: 100,
            records: false,
        },
        a.reps,
    )
    .await;
    println!(
        "page of one endpoint (index):      {:>9.3} ms  ({n} rows)",
        ms(d)
    );
    let middle = j.dead_letters(None).await.unwrap()[total / 2]
        .event_id
        .clone();
    let (d, n) = page_time(
        &j,
        DeadQuery {
            filter: DeadFilter::default(),
            after: Some(Cursor::Id(middle)),
            limit: 100,
            records: false,
        },
        a.reps,
    )
    .await;
    println!(
        "page of everything, mid-walk:      {:>9.3} ms  ({n} rows)",
        ms(d)
    );
    let (d, n) = page_time(
        &j,
        DeadQuery {
            filter: DeadFilter {
                reason: Some("RECORD_CORRUPT".into()),
                ..DeadFilter::default()
            },
            after: None,
            limit: 100,
            records: false,
        },
        a.reps.min(10),
    )
    .await;
    println!(
        "page of a filter matching nothing: {:>9.3} ms  ({n} rows; 10,000 rows scanned)",
        ms(d)
    );
    let (d, n) = page_time(
        &j,
        DeadQuery {
            filter: DeadFilter::endpoint("big"),
            after: None,
            limit: 1000,
            records: true,
        },
        a.reps.min(10),
    )
    .await;
    println!(
        "page of 1000 with payloads:        {:>9.3} ms  ({n} rows)",
        ms(d)
    );
    let mut times = Vec::new();
    for _ in 0..a.reps.min(5) {
        let t = Instant::now();
        let v = j.dead_letters(one.endpoint.as_deref()).await.unwrap();
        times.push(t.elapsed());
        assert!(!v.is_empty());
    }
    println!(
        "v1 list of one endpoint (scan):    {:>9.3} ms",
        ms(median(times))
    );

    // 2. bulk replay of the big endpoint, in chunks; each run puts them back to dead letters
    //    by force-deleting the endpoint again.
    for chunk in [100usize, 1000, a.replay] {
        let t = Instant::now();
        let mut after = None;
        let mut replayed = 0;
        let mut commits = 0;
        loop {
            let r = j
                .replay_matching(DeadFilter::endpoint("big"), after, chunk)
                .await
                .unwrap();
            replayed += r.done;
            commits += 1;
            after = r.next;
            if after.is_none() {
                break;
            }
        }
        let d = t.elapsed();
        println!(
            "bulk replay of {replayed} in chunks of {chunk:>5}: {:>8.1} ms  ({commits} commits, {:.0} /s)",
            ms(d),
            replayed as f64 / d.as_secs_f64()
        );
        j.delete_endpoint("big".into(), true).await.unwrap();
        j.put_endpoint("big".into(), config()).await.unwrap();
    }

    // 3. export: every dead letter with its payload, as NDJSON lines.
    let t = Instant::now();
    let mut q = DeadQuery {
        filter: DeadFilter::default(),
        after: None,
        limit: 100,
        records: true,
    };
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let page = j.dead_letter_page(q.clone()).await.unwrap();
        let mut chunk = Vec::new();
        for e in &page.entries {
            if let Some(rec) = &e.record {
                serde_json::to_writer(
                    &mut chunk,
                    &courier::api::views::dead_letter_detail(&e.letter, rec),
                )
                .unwrap();
                chunk.push(b'\n');
                lines += 1;
            }
        }
        bytes += chunk.len() as u64;
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let d = t.elapsed();
    println!(
        "export of {lines} dead letters: {:.2} s, {:.0} lines/s, {:.1} MB/s",
        d.as_secs_f64(),
        lines as f64 / d.as_secs_f64(),
        bytes as f64 / d.as_secs_f64() / 1e6
    );
    j.close().await.unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
