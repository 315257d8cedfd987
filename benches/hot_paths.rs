//! Micro-benchmarks of the per-event CPU work on Courier's data path: record encode/decode
//! (512 B body), HMAC-SHA256 signing (512 B), batch parsing (100 NDJSON lines), the attempt
//! timeout wrapper against tokio's plain `timeout`, the idempotency fingerprint, and sealing and
//! opening a 200 B endpoint row (the master key's AEAD).
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;

use courier::core::ids::IdGen;
use courier::core::record::{self, EventMeta};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn body(len: usize) -> Vec<u8> {
    let head = b"{\"n\":1,\"pad\":\"";
    let mut v = head.to_vec();
    v.resize(len - 2, b'x');
    v.extend_from_slice(b"\"}");
    v
}

fn meta() -> EventMeta {
    EventMeta {
        id: IdGen::new().next(1_795_240_146_123),
        enqueued_at_ms: 1_795_240_146_123,
        content_type: "application/json".into(),
        event_type: Some("message.received".into()),
    }
}

fn records(c: &mut Criterion) {
    let b = body(512);
    let m = meta();
    let enc = record::encode(&m, &b).expect("encode");
    let mut g = c.benchmark_group("record_512B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |bench| {
        bench.iter(|| record::encode(black_box(&m), black_box(&b)))
    });
    g.bench_function("decode", |bench| {
        bench.iter(|| record::decode(black_box(&enc)))
    });
    g.finish();
}

fn signing(c: &mut Criterion) {
    let b = body(512);
    let mut g = c.benchmark_group("hmac_sha256_512B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |bench| {
        bench.iter(|| {
            courier::core::signing::sign(black_box(b"whsec_0123456789abcdef"), black_box(&b))
        })
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let b = String::from_utf8(body(512)).expect("ascii");
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!(
            "{{\"endpoint\":\"e{}\",\"body\":{b}}}\n",
            i % 10 + 1
        ));
    }
    let ids = IdGen::new();
    let mut g = c.benchmark_group("parse_batch");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_lines_512B", |bench| {
        bench.iter(|| {
            courier::api::parse_batch(black_box(text.as_bytes()), 1 << 20, &ids, 1_795_240_146_123)
                .map(|v| v.len())
                .unwrap_or(0)
        })
    });
    g.finish();
}

/// An attempt that completes after one wake-up, as a fast receiver's does: the cost of the
/// freeze-aware timeout against tokio's plain one.
fn attempt_timeout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let timeout = std::time::Duration::from_secs(5);
    let mut g = c.benchmark_group("attempt_timeout");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tokio_timeout", |bench| {
        bench.iter(|| {
            rt.block_on(async {
                tokio::time::timeout(timeout, async {
                    tokio::task::yield_now().await;
                    black_box(200u16)
                })
                .await
                .ok()
            })
        })
    });
    g.bench_function("within_timeout", |bench| {
        bench.iter(|| {
            rt.block_on(courier::destination::deadline::within_timeout(
                timeout,
                async {
                    tokio::task::yield_now().await;
                    black_box(200u16)
                },
            ))
        })
    });
    g.finish();
}

fn fingerprint(c: &mut Criterion) {
    let b = body(512);
    let mut g = c.benchmark_group("idempotency_fingerprint_512B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sha256", |bench| {
        bench.iter(|| {
            courier::core::model::request_fingerprint(
                black_box("application/json"),
                Some("order.created"),
                black_box(&b),
            )
        })
    });
    g.finish();
}

/// Sealing and opening an endpoint row of a typical size (a delivery commit rewrites its
/// endpoint's row: one seal per commit and endpoint; a read of it, one open).
fn sealed_rows(c: &mut Criterion) {
    use courier::store::seal::KeyRing;
    let ring = KeyRing::test_ring();
    let row = body(200);
    let sealed = ring.seal("endpoints", b"acme-crm", &row);
    let mut g = c.benchmark_group("sealed_endpoint_row_200B");
    g.throughput(Throughput::Bytes(row.len() as u64));
    g.bench_function("seal", |bench| {
        bench.iter(|| ring.seal("endpoints", black_box(b"acme-crm"), black_box(&row)))
    });
    g.bench_function("open", |bench| {
        bench.iter(|| ring.open("endpoints", black_box(b"acme-crm"), black_box(&sealed)))
    });
    g.finish();
}

criterion_group!(
    benches,
    records,
    signing,
    batch,
    attempt_timeout,
    fingerprint,
    sealed_rows
);
criterion_main!(benches);
