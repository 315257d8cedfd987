//! Full disk: on a size-limited tmpfs, intake answers 507 STORAGE_FULL, nothing acknowledged
//! is lost, and the daemon recovers by itself when space returns. Needs root (to mount tmpfs),
//! as CI has.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/receiver.rs"]
mod receiver;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use daemon::Daemon;
use receiver::{Receiver, ReceiverConfig};
use serde_json::json;

/// A size-limited tmpfs, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { path, _dir: dir }
    }

    fn avail_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["-k", "--output=avail"])
            .arg(&self.path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn fill(path: &Path, kib: u64) {
    let data = vec![0u8; 1024];
    let mut f = std::fs::File::create(path).unwrap();
    for _ in 0..kib {
        if std::io::Write::write_all(&mut f, &data).is_err() {
            break;
        }
    }
}

async fn post(d: &Daemon, body: &Bytes) -> daemon::Answer {
    d.try_request("POST", "/v1/endpoints/acme/events", Some(body.clone()), &[])
        .await
        .expect("daemon answers even when the disk is full")
}

#[tokio::test]
async fn full_disk_refuses_cleanly_loses_nothing_and_recovers() {
    let fs = Tmpfs::mount("16m");
    let r = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&[
        "--allow-http",
        "--data-dir",
        fs.path.join("data").to_str().unwrap(),
    ])
    .await;
    d.put_endpoint("acme", json!({"url": r.url("/hook")})).await;
    d.req("POST", "/v1/endpoints/acme/pause", None).await;

    let filler = fs.path.join("filler");
    fill(&filler, fs.avail_kib().saturating_sub(600));
    let body = Bytes::from(format!("\"{}\"", "x".repeat(4000)));
    let mut acked = Vec::new();
    let mut refusal = None;
    for _ in 0..1000 {
        let a = post(&d, &body).await;
        if a.status == 202 {
            acked.push(a.json["id"].as_str().unwrap().to_string());
        } else {
            refusal = Some(a);
            break;
        }
    }
    let refusal = refusal.expect("the disk never filled up");
    assert_eq!(refusal.status, 507, "{refusal:?}");
    assert_eq!(refusal.json["error"]["code"], "STORAGE_FULL");
    assert!(refusal.json["error"]["hint"].is_string());
    assert!(!acked.is_empty(), "the disk was full from the start");
    // While full, every answer is either a durable 202 or a clean 507 (a reopened journal may
    // still fit a small commit into space a failed one freed); it settles into refusals.
    let mut refused_in_a_row = 0;
    for _ in 0..200 {
        let a = post(&d, &body).await;
        match a.status {
            202 => {
                acked.push(a.json["id"].as_str().unwrap().to_string());
                refused_in_a_row = 0;
            }
            507 => refused_in_a_row += 1,
            other => panic!("unexpected answer {other}: {a:?}"),
        }
        if refused_in_a_row >= 3 {
            break;
        }
    }
    assert!(refused_in_a_row >= 3, "the full disk kept accepting");
    assert_eq!(d.req("GET", "/livez", None).await.status, 200);

    // Space returns: intake recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = post(&d, &body).await;
        if a.status == 202 {
            acked.push(a.json["id"].as_str().unwrap().to_string());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not recover: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Nothing acknowledged was lost, across a restart too.
    assert_eq!(d.terminate(), Some(0), "{}", d.log());
    d.spawn().await;
    assert_eq!(d.endpoint("acme").await["backlog"], acked.len());
    d.req("POST", "/v1/endpoints/acme/resume", None).await;
    assert!(
        r.wait_for(|ds| ds.len() >= acked.len(), Duration::from_secs(30))
            .await
    );
    let got: Vec<String> = r
        .deliveries()
        .iter()
        .filter_map(|x| x.event_id.clone())
        .collect();
    assert_eq!(got, acked, "delivered in order, all of them");
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len());
}
