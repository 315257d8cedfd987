//! Black-box tests of offline inspection: `courier dlq|endpoint list|show --data-dir DIR` with
//! the daemon stopped prints exactly what the running daemon printed, never writes to the data
//! files, refuses writes, and while the daemon runs says so and asks it over the socket.

use testkit::{daemon, receiver};

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use daemon::Daemon;
use receiver::{Behavior, Plan, Receiver, ReceiverConfig};
use serde_json::json;

const NOTE: &str = "daemon is running; asking it over the socket\n";

/// A daemon with endpoints in every state worth showing and dead letters of two reasons:
/// `ok` delivered two events, `held` is paused with three waiting, `gone` was force-deleted
/// with two waiting (`ENDPOINT_DELETED`), `bad`'s receiver refused two (`MAX_RETRIES_EXCEEDED`)
/// and it shows its last error (kept in the journal, the same online and offline). Returns the daemon, the receivers (kept alive) and the dead
/// letters' ids.
async fn scripted() -> (Daemon, Vec<Receiver>, Vec<String>) {
    let good = Receiver::start(ReceiverConfig::plain()).await.unwrap();
    let refusing =
        Receiver::start(ReceiverConfig::plain().with_plan(Plan::always(Behavior::Status(400))))
            .await
            .unwrap();
    let d = Daemon::start(&["--allow-http"]).await;
    d.put_endpoint("ok", json!({"url": good.url("/ok"), "secret": "s3cret-ok"}))
        .await;
    d.put_endpoint(
        "held",
        json!({"url": good.url("/held"), "password": "pw-held"}),
    )
    .await;
    d.put_endpoint("gone", json!({"url": good.url("/gone")}))
        .await;
    d.put_endpoint(
        "bad",
        json!({"url": refusing.url("/bad"), "retry_schedule": []}),
    )
    .await;
    for ep in ["held", "gone"] {
        assert_eq!(
            d.req("POST", &format!("/v1/endpoints/{ep}/pause"), None)
                .await
                .status,
            200
        );
    }
    for i in 0..2 {
        d.send("ok", &format!("{{\"ok\":{i}}}")).await;
        d.send("gone", &format!("{{\"gone\":{i}}}")).await;
        d.send("bad", &format!("{{\"bad\":{i}}}")).await;
    }
    for i in 0..3 {
        d.send("held", &format!("{{\"held\":{i}}}")).await;
    }
    assert!(
        good.wait_for(|ds| ds.len() >= 2, Duration::from_secs(30))
            .await
    );
    d.wait_for_endpoint("ok", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;
    d.wait_dead_letters(2, Duration::from_secs(30)).await;
    d.wait_for_endpoint("bad", Duration::from_secs(10), |v| v["backlog"] == 0)
        .await;
    assert_eq!(
        d.req("DELETE", "/v1/endpoints/gone?force=true", None)
            .await
            .status,
        204
    );
    let ids: Vec<String> = d
        .wait_dead_letters(4, Duration::from_secs(10))
        .await
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    (d, vec![good, refusing], ids)
}

/// The read commands compared online and offline, with and without `--json`.
fn commands(ids: &[String]) -> Vec<Vec<String>> {
    let mut cmds: Vec<Vec<&str>> = vec![
        vec!["dlq", "list"],
        vec!["dlq", "list", "--endpoint", "gone"],
        vec!["endpoint", "list"],
        vec!["endpoint", "show", "ok"],
        vec!["endpoint", "show", "held"],
        vec!["endpoint", "show", "gone"],
        vec!["endpoint", "show", "bad"],
        vec!["endpoint", "attempts", "ok"],
        vec!["channel", "list"],
    ];
    for id in ids {
        cmds.push(vec!["dlq", "show", id]);
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for c in cmds {
        let plain: Vec<String> = c.iter().map(|s| s.to_string()).collect();
        let mut json = plain.clone();
        json.push("--json".into());
        out.push(plain);
        out.push(json);
    }
    out
}

/// An answer with the one figure that moves with the clock between the online and the
/// offline run (the oldest waiting event's age: the time it was accepted is kept) blanked.
fn timeless(answer: &(i32, String, String)) -> (i32, String, String) {
    let blank = |text: &str| -> String {
        text.lines()
            .map(|l| {
                if l.trim_start().starts_with("\"oldest_event_age_secs\": ") {
                    "  (age)".to_string()
                } else if let Some((head, rest)) = l.split_once("the oldest accepted ") {
                    let tail = rest.split_once(" ago").map_or("", |(_, t)| t);
                    format!("{head}the oldest accepted (age) ago{tail}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    (answer.0, blank(&answer.1), blank(&answer.2))
}

fn run(d: &Daemon, cmd: &[String], data_dir: Option<&std::path::Path>) -> (i32, String, String) {
    let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    if let Some(dir) = data_dir {
        args.push("--data-dir");
        args.push(dir.to_str().unwrap());
    }
    d.cli(&args)
}

#[tokio::test]
async fn offline_output_equals_online_and_writes_nothing() {
    let (mut d, _receivers, ids) = scripted().await;
    let cmds = commands(&ids);
    let online: Vec<_> = cmds.iter().map(|c| run(&d, c, None)).collect();
    for (c, (code, out, err)) in cmds.iter().zip(&online) {
        let not_found = c[..2] == ["endpoint", "show"] && c[2] == "gone";
        assert_eq!(*code, if not_found { 1 } else { 0 }, "{c:?}: {err}");
        assert!(not_found || !out.is_empty(), "{c:?}");
    }
    // While the daemon runs: the note, and the daemon's answer.
    let (code, out, err) = run(&d, &cmds[0], Some(&d.data));
    assert_eq!((code, out.as_str()), (0, online[0].1.as_str()));
    assert_eq!(err, NOTE);

    assert_eq!(d.terminate(), Some(0));
    let journal = d.data.join("courier.redb");
    let before = std::fs::read(&journal).unwrap();
    let segments_before = read_segments(&d.data);
    assert!(
        !segments_before.is_empty(),
        "the events' bodies are in segment files"
    );
    let offline: Vec<_> = cmds.iter().map(|c| run(&d, c, Some(&d.data))).collect();
    for ((c, on), off) in cmds.iter().zip(&online).zip(&offline) {
        assert_eq!(timeless(on), timeless(off), "{c:?} differs offline");
    }
    assert!(
        offline
            .iter()
            .any(|(_, out, _)| out.contains("\"oldest_event_at\": \"")),
        "the held endpoint's oldest waiting event is shown offline too"
    );
    assert!(
        offline[0].1.contains("ENDPOINT_DELETED") && offline[0].1.contains("MAX_RETRIES_EXCEEDED")
    );

    // Writes are refused with a code and its hint, and nothing changes on disk.
    let event = d.dir.join("event.json");
    std::fs::write(&event, "{}").unwrap();
    for write in [
        vec!["endpoint", "pause", "held"],
        vec!["dlq", "purge", ids[0].as_str()],
        vec!["dlq", "replay", ids[0].as_str()],
        vec!["send", "held", event.to_str().unwrap()],
    ] {
        let write: Vec<String> = write.iter().map(|s| s.to_string()).collect();
        let (code, out, err) = run(&d, &write, Some(&d.data));
        assert_eq!(code, 1, "{write:?}: {out}{err}");
        assert!(
            err.starts_with("error: READ_ONLY: ") && err.contains("\nhint: start the daemon"),
            "{write:?}: {err}"
        );
    }
    assert!(
        std::fs::read(&journal).unwrap() == before,
        "offline inspection wrote to the journal"
    );
    assert!(
        read_segments(&d.data) == segments_before,
        "offline inspection wrote to the segment files"
    );
    let mut files: Vec<_> = std::fs::read_dir(&d.data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    // The master key is the daemon's (its first start made it).
    assert_eq!(
        files,
        ["courier.redb", "master.key", "segments"],
        "offline inspection created files"
    );

    // A read-only copy reads the same.
    let copy = tempfile::tempdir().unwrap();
    let ro = copy.path().join("data");
    std::fs::create_dir(&ro).unwrap();
    std::fs::copy(&journal, ro.join("courier.redb")).unwrap();
    std::fs::set_permissions(
        ro.join("courier.redb"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    // The master key comes along, as a backup of the data dir would have it.
    std::fs::copy(d.data.join("master.key"), ro.join("master.key")).unwrap();
    std::fs::set_permissions(
        ro.join("master.key"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    std::fs::create_dir(ro.join("segments")).unwrap();
    for (name, bytes) in &segments_before {
        let p = ro.join("segments").join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    std::fs::set_permissions(ro.join("segments"), std::fs::Permissions::from_mode(0o500)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    assert_eq!(run(&d, &cmds[0], Some(&ro)), online[0]);
    assert_eq!(run(&d, &cmds[4], Some(&ro)), online[4]);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(ro.join("segments"), std::fs::Permissions::from_mode(0o700)).unwrap();

    // The daemon starts again on the inspected journal and has everything.
    d.spawn().await;
    assert_eq!(run(&d, &cmds[0], None), online[0]);
}

#[tokio::test]
async fn a_missing_or_foreign_data_dir_is_a_clear_error() {
    let d = Daemon::start(&[]).await;
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let list: Vec<String> = vec!["dlq".into(), "list".into()];
    let (code, out, err) = run(&d, &list, Some(&missing));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no such directory"), "{err}");
    assert!(!missing.exists(), "a data dir was created");

    let (code, _, err) = run(&d, &list, Some(tmp.path()));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no journal"), "{err}");
    assert!(
        !tmp.path().join("courier.redb").exists(),
        "a journal was created"
    );

    std::fs::write(tmp.path().join("courier.redb"), b"not a database at all").unwrap();
    let (code, _, err) = run(&d, &list, Some(tmp.path()));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a Courier journal"), "{err}");
    assert_eq!(
        std::fs::read(tmp.path().join("courier.redb")).unwrap(),
        b"not a database at all"
    );
}

#[tokio::test]
async fn a_journal_left_by_a_killed_daemon_says_how_to_recover() {
    let mut d = Daemon::start(&[]).await;
    d.put_endpoint("acme", json!({"url": "https://api.acme.io/x"}))
        .await;
    d.kill9();
    let list: Vec<String> = vec!["endpoint".into(), "list".into()];
    let (code, out, err) = run(&d, &list, Some(&d.data));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("not closed cleanly") && err.contains("start the daemon"),
        "{err}"
    );
    d.spawn().await;
    let online = run(&d, &list, None);
    d.terminate();
    assert_eq!(run(&d, &list, Some(&d.data)), online);
}

/// The segment files of a data directory, by name, with their bytes.
fn read_segments(data: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}
