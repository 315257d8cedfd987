//! The ceiling for HTTP intake (benchmark P1 baseline): a minimal hyper 1 HTTP/1.1 server that
//! reads the request body and answers 202 `{"id":"evt_x","seq":1}` — no validation, no storage.
//! Same runtime shape as `courier serve` (tokio multi-thread, one task per connection).
//!
//! ```text
//! cargo run --release --example baseline_server -- --listen 127.0.0.1:8426 --socket /tmp/b.sock
//! ```
//!
//! Stops on SIGTERM/SIGINT, or after `--max-seconds` (default 900) as a safety bound.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

#[derive(Parser, Debug)]
#[command(about = "Minimal HTTP/1.1 intake ceiling for Courier benchmarks")]
struct Args {
    /// TCP address to listen on.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Unix socket to listen on.
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    /// Worker threads (0: tokio's default, one per core — like courier).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Exit after this many seconds at the latest.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
}

fn main() {
    let args = Args::parse();
    if args.listen.is_none() && args.socket.is_none() {
        eprintln!("baseline_server: give --listen ADDR and/or --socket PATH");
        std::process::exit(2);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baseline_server: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("baseline_server: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let tcp = match args.listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let unix = match &args.socket {
        Some(p) => {
            let _ = std::fs::remove_file(p);
            Some(UnixListener::bind(p)?)
        }
        None => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = tcp {
        eprintln!("baseline_server: listening on {}", l.local_addr()?);
        tasks.spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(serve(s));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
    if let Some(l) = unix {
        tasks.spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        tokio::spawn(serve(s));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = tokio::time::sleep(Duration::from_secs(args.max_seconds)) => {
            eprintln!("baseline_server: --max-seconds reached");
        }
    }
    tasks.abort_all();
    if let Some(p) = &args.socket {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

async fn serve<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service_fn(handle))
        .await;
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as an intake must before it can answer.
    let _body = req.into_body().collect().await.map(|c| c.to_bytes());
    let mut r = Response::new(Full::new(Bytes::from_static(br#"{"id":"evt_x","seq":1}"#)));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
