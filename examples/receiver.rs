//! Fault-injecting webhook receiver for trying Courier by hand or from scripts.
//!
//! ```text
//! cargo run --example receiver -- --listen 127.0.0.1:9000 [--tls-ca-out ca.pem] [--secret S]
//!     [--status 200] [--sleep-ms N] [--record deliveries.jsonl]
//! ```
//!
//! Prints the listening URL (first line of stdout), then one line per request on stderr: the
//! event type and id, the attempt, whether the signature checked out, and the body (clipped).
//! Change behaviour at run time:
//! `curl -d '{"behavior":"status","status":503}' URL/_control` (also `retry_after` with
//! `status`/`secs`, `sleep` with `ms`/`then`, `hang`, `reset`, `huge_body` with `status`/`bytes`;
//! optional `"path":"/x"` for a per-path override, `"count":N` for only the next N requests,
//! `"clear_paths":true`). `GET URL/_deliveries` returns the record as JSON (`DELETE` clears it).

use testkit::receiver;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use receiver::{Behavior, Delivery, Plan, Receiver, ReceiverConfig, ServeOptions, TestCa, TlsMode};

const USAGE: &str = "usage: receiver [--listen ADDR] [--tls-ca-out FILE] [--secret S] [--status N] \
[--sleep-ms N] [--record FILE]

  --listen ADDR       address to bind (default 127.0.0.1:0, the URL is printed on stdout)
  --tls-ca-out FILE   serve HTTPS with a fresh throwaway CA; write its PEM to FILE
                      (for `courier serve --ca-file FILE`); URL is https://localhost:PORT/
  --secret S          check X-HAPP-Signature with secret S (signature_valid in the record)
  --status N          status to answer (default 200)
  --sleep-ms N        sleep N ms before answering
  --record FILE       append one JSON line per delivery:
                      {\"path\",\"event_id\",\"attempt\",\"event_type\",\"content_type\",
                       \"at_ms\",\"signature_valid\",\"status\"}
control: POST /_control {\"behavior\":\"status\",\"status\":503} | retry_after | sleep | hang | reset | huge_body
         GET /_deliveries, DELETE /_deliveries";

struct Args {
    listen: SocketAddr,
    tls_ca_out: Option<PathBuf>,
    secret: Option<String>,
    status: u16,
    sleep_ms: Option<u64>,
    record: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_ca_out: None,
        secret: None,
        status: 200,
        sleep_ms: None,
        record: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                args.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--tls-ca-out" => args.tls_ca_out = Some(PathBuf::from(value()?)),
            "--secret" => args.secret = Some(value()?),
            "--status" => {
                let v = value()?;
                args.status = match v.parse::<u16>() {
                    Ok(s) if (100..=999).contains(&s) => s,
                    _ => return Err(format!("--status {v}: not an HTTP status")),
                };
            }
            "--sleep-ms" => {
                let v = value()?;
                args.sleep_ms = Some(v.parse().map_err(|e| format!("--sleep-ms {v}: {e}"))?);
            }
            "--record" => args.record = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn record_line(d: &Delivery) -> String {
    serde_json::json!({
        "path": d.path,
        "event_id": d.event_id,
        "attempt": d.attempt,
        "event_type": d.event_type,
        "content_type": d.content_type,
        "at_ms": d.at_unix_ms,
        "signature_valid": d.signature_valid,
        "status": d.answered,
    })
    .to_string()
}

/// What the terminal shows of one request.
fn summary_line(d: &Delivery) -> String {
    let signature = match d.signature_valid {
        Some(true) => "signature ok",
        Some(false) => "signature WRONG",
        None if d.signature.is_some() => "signed (pass --secret to check)",
        None => "unsigned",
    };
    let body = String::from_utf8_lossy(&d.body);
    let clipped: String = body.chars().take(200).collect();
    let more = if clipped.len() < body.len() {
        "…"
    } else {
        ""
    };
    format!(
        "{} {} {} attempt {} {signature}: {clipped}{more}",
        d.method,
        d.event_type.as_deref().unwrap_or("-"),
        d.event_id.as_deref().unwrap_or("-"),
        d.attempt.map_or("-".to_string(), |a| a.to_string()),
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("receiver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let behavior = match args.sleep_ms {
        Some(ms) => Behavior::Sleep {
            ms,
            then: args.status,
        },
        None => Behavior::Status(args.status),
    };
    let mut cfg = ReceiverConfig::plain().with_plan(Plan::always(behavior));
    if let Some(secret) = &args.secret {
        cfg = cfg.with_secret(secret.clone());
    }
    if let Some(path) = &args.tls_ca_out {
        let ca = TestCa::new();
        if let Err(e) = ca.write_ca_pem(path) {
            eprintln!("receiver: writing CA to {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        cfg = cfg.with_tls(TlsMode::Trusted(ca));
    }

    let mut opts = ServeOptions {
        listen: Some(args.listen),
        control_endpoints: true,
        on_delivery: None,
    };
    let record = match &args.record {
        None => None,
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!("receiver: opening {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    opts.on_delivery = Some(Arc::new(move |d: &Delivery| {
        eprintln!("{}", summary_line(d));
        if let Some(file) = &record {
            let line = record_line(d);
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = writeln!(f, "{line}") {
                eprintln!("receiver: writing record: {e}");
            }
        }
    }));

    let rx = match Receiver::start_with(cfg, opts).await {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("receiver: listening on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    {
        // A closed stdout must not kill the receiver.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", rx.url("/"));
        let _ = out.flush();
    }
    eprintln!(
        "receiver: {:?}; control at {}",
        rx.plan().default.then,
        rx.url("/_control")
    );

    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("receiver: waiting for ctrl-c: {e}");
    }
    let n = rx.deliveries().len();
    eprintln!(
        "receiver: {n} deliveries, {} successful",
        rx.successful().len()
    );
    rx.shutdown();
    ExitCode::SUCCESS
}
