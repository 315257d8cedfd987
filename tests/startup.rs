//! Black-box tests of start-up and stop against the real binary: what the daemon does with the
//! socket path, and that a failed start leaves no socket and no new data dir behind.

use testkit::daemon;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon::{BIN, Daemon};

/// Starts `courier serve` with `args` (and `--listen off` unless they name `--listen`);
/// stderr and stdout are captured.
fn spawn_serve(args: &[&std::ffi::OsStr]) -> Child {
    let listen: &[&str] = if args.iter().any(|a| *a == "--listen") {
        &[]
    } else {
        &["--listen", "off"]
    };
    Command::new(BIN)
        .arg("serve")
        .args(listen)
        .args(args)
        .env("COURIER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier")
}

/// Runs `courier serve` expecting it to exit at start; panics if it is still running after
/// 20 s (it started instead of refusing).
fn serve_expecting_exit(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = spawn_serve(args);
    let deadline = Instant::now() + Duration::from_secs(20);
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until a daemon answers `GET /readyz` on `socket`.
async fn wait_ready(socket: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(a) = daemon::request(socket, "GET", "/readyz", None, &[]).await
            && a.status == 200
        {
            return;
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("courier exited at start with {s}");
        }
        assert!(Instant::now() < deadline, "daemon did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM and wait; returns the exit code.
fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("daemon did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child when dropped (a failed assertion must not leave a daemon running).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ino(path: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(path).expect("stat");
    (m.dev(), m.ino())
}

#[test]
fn a_socket_path_that_is_not_a_socket_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("courier.toml");
    let contents = "data_dir = \"/var/lib/courier\"\n";
    std::fs::write(&config, contents).unwrap();
    let directory = tmp.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let link = tmp.path().join("link-to-config");
    std::os::unix::fs::symlink(&config, &link).unwrap();

    for path in [&config, &directory, &link] {
        let data = tmp.path().join("data");
        let out = serve_expecting_exit(&[
            "--socket".as_ref(),
            path.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(64), "{}: {err}", path.display());
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&path.display().to_string()) && err.contains("not a socket"),
            "{err}"
        );
        assert!(!data.exists(), "the data dir was created: {err}");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), contents);
    assert!(directory.is_dir());
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_removed_at_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("courier.sock");
    // A socket file nobody listens on, as a killed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let data = tmp.path().join("data");
    let mut d = Reaper(spawn_serve(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]));
    wait_ready(&socket, &mut d.0).await;
    assert_eq!(terminate(&mut d.0), Some(0));
    assert!(!socket.exists(), "a stopped daemon removes its socket");
}

#[tokio::test]
async fn a_live_socket_is_refused_before_anything_is_created() {
    let d = Daemon::start(&[]).await;
    let before = ino(&d.socket);
    let data = d.dir.join("second-data");
    let out = serve_expecting_exit(&[
        "--socket".as_ref(),
        d.socket.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!data.exists(), "the data dir was created: {err}");
    assert_eq!(ino(&d.socket), before);
    assert_eq!(d.req("GET", "/readyz", None).await.status, 200);
}

#[tokio::test]
async fn a_stopping_daemon_leaves_a_socket_another_daemon_owns() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("courier.sock");
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Reaper(spawn_serve(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data_a.as_os_str(),
    ]));
    wait_ready(&socket, &mut a.0).await;
    // The path is taken over by a second daemon while the first still runs.
    std::fs::remove_file(&socket).unwrap();
    let mut b = Reaper(spawn_serve(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data_b.as_os_str(),
    ]));
    wait_ready(&socket, &mut b.0).await;
    let owned_by_b = ino(&socket);

    assert_eq!(terminate(&mut a.0), Some(0));
    assert!(
        socket.exists(),
        "the first daemon removed the second's socket"
    );
    assert_eq!(ino(&socket), owned_by_b);
    let ready = daemon::request(&socket, "GET", "/readyz", None, &[]).await;
    assert_eq!(ready.map(|a| a.status), Ok(200));

    assert_eq!(terminate(&mut b.0), Some(0));
    assert!(!socket.exists(), "the owner removes its socket at stop");
}

#[tokio::test]
async fn a_daemon_started_while_another_stops_keeps_its_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("courier.sock");
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Reaper(spawn_serve(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data_a.as_os_str(),
    ]));
    wait_ready(&socket, &mut a.0).await;
    // A request that never completes keeps the first daemon in its connection drain (5 s)
    // after it stopped accepting.
    let mut hold = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    std::io::Write::write_all(
        &mut hold,
        b"POST /v1/endpoints/acme/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(a.0.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        assert!(Instant::now() < deadline, "the first daemon kept accepting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.0.try_wait().ok().flatten(), None, "still stopping");

    let mut b = Reaper(spawn_serve(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data_b.as_os_str(),
    ]));
    wait_ready(&socket, &mut b.0).await;
    let owned_by_b = ino(&socket);
    assert_eq!(terminate(&mut a.0), Some(0));
    assert!(
        std::fs::symlink_metadata(&socket).is_ok_and(|_| ino(&socket) == owned_by_b),
        "the first daemon removed the second's socket"
    );
    let ready = daemon::request(&socket, "GET", "/readyz", None, &[]).await;
    assert_eq!(ready.map(|a| a.status), Ok(200));
    drop(hold);
    assert_eq!(terminate(&mut b.0), Some(0));
}

#[test]
fn a_taken_port_leaves_no_socket_and_no_data_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for flag in ["--listen", "--ingress-listen"] {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("courier.sock");
        let data = tmp.path().join("data");
        let out = serve_expecting_exit(&[
            "--socket".as_ref(),
            socket.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            flag.as_ref(),
            addr.as_ref(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(err.contains(&addr), "{err}");
        assert!(
            std::fs::symlink_metadata(&socket).is_err(),
            "{flag}: socket left behind: {err}"
        );
        assert!(!data.exists(), "{flag}: data dir left behind: {err}");
    }
}

#[test]
fn a_failed_start_removes_the_data_dir_it_created_and_keeps_one_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    // The socket cannot be bound: its directory does not exist.
    let socket = tmp.path().join("no-such-dir").join("courier.sock");

    let new_data: PathBuf = tmp.path().join("new").join("nested").join("data");
    let out = serve_expecting_exit(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        new_data.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot bind socket"), "{err}");
    assert!(
        !tmp.path().join("new").exists(),
        "the data dir created by the failed start was left behind: {err}"
    );

    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep-me"), "x").unwrap();
    let out = serve_expecting_exit(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        existing.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        existing.join("keep-me").exists(),
        "an existing data dir is kept"
    );
}
