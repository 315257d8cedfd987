//! Black-box tests of the master key and the sealed rows against the real binary: a first
//! start creates `master.key` owner-only; a key from `COURIER_MASTER_KEY` creates none; a key
//! file open to others, a malformed key, and a wrong key are refused with their codes, as is
//! offline inspection without the key; a flipped byte inside a stored endpoint row refuses the
//! start naming the endpoint (never a changed URL served); a prepended key reseals every row at
//! the next start, after which the old key alone opens nothing and deliveries go on.

use testkit::{daemon, receiver};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon::{BIN, Daemon};
use receiver::{Receiver, ReceiverConfig};
use serde_json::json;

const KEY_ENV: &str = "COURIER_MASTER_KEY";

/// Runs `courier serve` on `d`'s data dir with `args`, expecting it to refuse to start.
fn refused(d: &Daemon, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(&d.data)
        .arg("--socket")
        .arg(d.dir.join("other.sock"))
        .args(["--listen", "off", "--allow-http"])
        .args(args)
        .env_remove(KEY_ENV)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "courier started instead of refusing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Writes a key file, owner-only.
fn write_key(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn generate() -> String {
    let out = Command::new(BIN)
        .args(["master-key", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(key.len(), 44, "32 bytes in base64: {key}");
    key
}

/// The key lines of a key file (comments left out).
fn key_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_first_start_creates_an_owner_only_key_and_wrong_keys_are_refused() {
    let rx = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    let key_file = d.data.join("master.key");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(key_lines(&key_file).len(), 1);
    assert!(d.log().contains("created a new master key"), "{}", d.log());
    d.put_endpoint("acme", json!({"url": rx.url("/hook"), "secret": "s-1"}))
        .await;
    assert_eq!(d.terminate(), Some(0));

    // Another key, from a file or the environment: refused, naming the key the journal needs.
    let ids = Command::new(BIN)
        .args(["master-key", "ids"])
        .arg(&key_file)
        .output()
        .unwrap();
    let needed = String::from_utf8(ids.stdout).unwrap();
    let needed = needed.split_whitespace().next().unwrap().to_string();
    assert_eq!(needed.len(), 16);
    let other = d.dir.join("other.key");
    write_key(&other, &generate());
    let o = refused(&d, &["--master-key-file", other.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("MASTER_KEY_MISMATCH"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&needed), "{}", stderr(&o));
    let o = refused(&d, &[], &[(KEY_ENV, &generate())]);
    assert!(stderr(&o).contains("MASTER_KEY_MISMATCH"), "{}", stderr(&o));
    // A key file others can read, and a malformed one: configuration errors (exit 64).
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = refused(&d, &["--master-key-file", other.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("MASTER_KEY_PERMISSIONS"),
        "{}",
        stderr(&o)
    );
    write_key(&other, "not a key\n");
    let o = refused(&d, &["--master-key-file", other.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(stderr(&o).contains("MASTER_KEY_INVALID"), "{}", stderr(&o));
    // The data dir's own key file, loosened, is refused too (and left as it is).
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = refused(&d, &[], &[]);
    assert!(
        stderr(&o).contains("MASTER_KEY_PERMISSIONS"),
        "{}",
        stderr(&o)
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Offline inspection reads with the data dir's key; without a key it is refused.
    let data = d.data.to_str().unwrap().to_string();
    let (code, out, err) = d.cli(&["endpoint", "show", "acme", "--json", "--data-dir", &data]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/hook"), "{out}");
    let moved = d.dir.join("kept.key");
    std::fs::rename(&key_file, &moved).unwrap();
    let (code, out, err) = d.cli(&["endpoint", "list", "--data-dir", &data]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("MASTER_KEY_MISSING"), "{err}");
    let (code, out, err) = d.cli(&[
        "endpoint",
        "list",
        "--data-dir",
        &data,
        "--master-key-file",
        moved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acme"), "{out}");
    std::fs::rename(&moved, &key_file).unwrap();
    d.spawn().await;
    assert_eq!(d.endpoint("acme").await["url"], rx.url("/hook"));
}

#[tokio::test]
async fn a_key_from_the_environment_creates_no_key_file() {
    let key = generate();
    let mut d = Daemon::start_env(&["--allow-http"], &[(KEY_ENV, &key)]).await;
    assert!(!d.data.join("master.key").exists());
    d.put_endpoint("acme", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    assert_eq!(d.terminate(), Some(0));
    assert!(!d.log().contains(&key));
    // Without it, the daemon does not open the journal (it makes a key, finds the rows sealed
    // under another, refuses, and takes the key it made away again).
    let o = refused(&d, &[], &[]);
    assert!(stderr(&o).contains("MASTER_KEY_MISMATCH"), "{}", stderr(&o));
    assert!(!d.data.join("master.key").exists());
}

/// Every place in `file` where `needle` is.
fn find_all(file: &[u8], needle: &[u8]) -> Vec<usize> {
    file.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn a_flipped_byte_in_a_stored_endpoint_refuses_the_start_naming_it() {
    const ENDPOINTS: ::redb::TableDefinition<&str, &[u8]> =
        ::redb::TableDefinition::new("endpoints");
    let rx = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("acme", json!({"url": rx.url("/hook")}))
        .await;
    assert_eq!(d.terminate(), Some(0));
    let db_path = d.data.join("courier.redb");
    let row = {
        use ::redb::ReadableDatabase;
        let db = ::redb::Database::create(&db_path).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(ENDPOINTS).unwrap();
        t.get("acme").unwrap().unwrap().value().to_vec()
    };
    let mut file = std::fs::read(&db_path).unwrap();
    let at = find_all(&file, &row);
    assert!(!at.is_empty(), "the sealed row is in the file");
    // One bit of one byte in the middle of the row (where a clear row kept the URL's port).
    for start in at {
        file[start + row.len() / 2] ^= 0x01;
    }
    std::fs::write(&db_path, &file).unwrap();
    let o = refused(&d, &[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("JOURNAL_ROW_CORRUPT"), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"acme\""), "{}", stderr(&o));
    assert!(rx.deliveries().is_empty());
}

#[tokio::test]
async fn a_prepended_key_reseals_every_row_and_the_old_key_alone_opens_none() {
    let rx = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let mut d = Daemon::start(&["--allow-http"]).await;
    for ep in ["a", "b", "c"] {
        d.put_endpoint(
            ep,
            json!({"url": rx.url(&format!("/{ep}")), "secret": "s3cret"}),
        )
        .await;
    }
    d.req(
        "PUT",
        "/v1/channels/inbox",
        Some(&json!({"endpoint": "a", "secret": "ch"}).to_string()),
    )
    .await;
    d.send("a", r#"{"n":1}"#).await;
    assert!(
        rx.wait_for(|ds| ds.len() == 1, Duration::from_secs(20))
            .await
    );
    assert_eq!(d.terminate(), Some(0));

    let key_file = d.data.join("master.key");
    let old = key_lines(&key_file).remove(0);
    let new = generate();
    write_key(&key_file, &format!("{new}\n{old}\n"));
    d.spawn().await;
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("resealed under the first master key"))
        .unwrap_or_else(|| panic!("no reseal line: {log}"));
    // Three endpoints and the channel.
    assert!(line.contains("rows=4"), "{line}");
    for ep in ["a", "b", "c"] {
        d.send(ep, r#"{"n":2}"#).await;
    }
    assert!(
        rx.wait_for(|ds| ds.len() == 4, Duration::from_secs(20))
            .await
    );
    assert_eq!(d.terminate(), Some(0));

    // The old key alone opens nothing; the new one alone opens everything.
    write_key(&key_file, &format!("{old}\n"));
    let o = refused(&d, &[], &[]);
    assert!(stderr(&o).contains("MASTER_KEY_MISMATCH"), "{}", stderr(&o));
    write_key(&key_file, &format!("{new}\n"));
    d.spawn().await;
    d.send("b", r#"{"n":3}"#).await;
    assert!(
        rx.wait_for(|ds| ds.len() == 5, Duration::from_secs(20))
            .await
    );
    assert_eq!(d.endpoint("c").await["url"], rx.url("/c"));
    assert_eq!(d.terminate(), Some(0));
}
