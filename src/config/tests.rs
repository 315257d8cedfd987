//! Tests of the configuration: defaults, precedence of flags over the file, and the values
//! each setting refuses.

use super::*;

#[test]
fn defaults_match_the_contract() {
    let c = Config::merge(&ServeArgs::default(), FileConfig::default()).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("./courier-data"));
    assert_eq!(c.socket, PathBuf::from("./courier.sock"));
    assert_eq!(c.listen, Some("127.0.0.1:8425".parse().unwrap()));
    assert!(!c.allow_http);
}

#[test]
fn flags_beat_file() {
    let file =
        parse_file("listen = \"127.0.0.1:9000\"\nallow_http = true\nshutdown_grace = \"3s\"\n")
            .unwrap();
    let args = ServeArgs {
        listen: Some("off".into()),
        ..Default::default()
    };
    let c = Config::merge(&args, file).unwrap();
    assert_eq!(c.listen, None);
    assert!(c.allow_http);
    assert_eq!(c.shutdown_grace, Duration::from_secs(3));
}

#[test]
fn bad_values_are_named() {
    let e = Config::merge(
        &ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        },
        FileConfig::default(),
    )
    .unwrap_err();
    assert!(e.0.contains("listen"), "{e}");
    let e = Config::merge(
        &ServeArgs {
            shutdown_grace: Some("5 parsecs".into()),
            ..Default::default()
        },
        FileConfig::default(),
    )
    .unwrap_err();
    assert!(e.0.contains("shutdown_grace"), "{e}");
    assert!(
        parse_file("bogus_key = 1")
            .unwrap_err()
            .contains("bogus_key")
    );
    assert!(parse_file("listen = [").is_err());
}

#[test]
fn flag_and_env_values_are_checked_here() {
    let merge = |args: ServeArgs| Config::merge(&args, FileConfig::default());
    for (v, want) in [("true", true), ("yes", true), ("0", false), ("OFF", false)] {
        let c = merge(ServeArgs {
            allow_http: Some(v.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.allow_http, want, "{v}");
    }
    let e = merge(ServeArgs {
        allow_http: Some("maybe".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.0.contains("allow_http"), "{e}");
    let e = merge(ServeArgs {
        max_body_bytes: Some("-1".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.0.contains("max_body_bytes"), "{e}");
    let e = merge(ServeArgs {
        shutdown_grace: Some("-5s".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.0.contains("shutdown_grace") && e.0.contains("negative"),
        "{e}"
    );
    let c = merge(ServeArgs {
        cache_mib: Some("8".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.cache_bytes, 8 << 20);
}

#[test]
fn admin_tokens_from_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# ops\n\ntok-a\n  tok-b  \n").unwrap();
    let merge = |args: ServeArgs| Config::merge(&args, FileConfig::default());
    let c = merge(ServeArgs {
        admin_token_file: Some(file.clone()),
        admin_token: Some(Secret::new("tok-env")),
        ..Default::default()
    })
    .unwrap();
    let shown: Vec<&str> = c.admin_tokens.iter().map(Secret::expose).collect();
    assert_eq!(shown, ["tok-a", "tok-b", "tok-env"]);
    assert!(!format!("{c:?}").contains("tok-"), "Debug shows a token");
    assert!(!c.listen_insecure);

    std::fs::write(&file, "# nothing here\n\n").unwrap();
    let e = merge(ServeArgs {
        admin_token_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.0.contains("admin_token_file") && e.0.contains("no token"),
        "{e}"
    );
    let e = merge(ServeArgs {
        admin_token_file: Some(dir.path().join("missing")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.0.contains("cannot read"), "{e}");
    let e = merge(ServeArgs {
        admin_token: Some(Secret::new("two words")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.0.contains("COURIER_ADMIN_TOKEN") && !e.0.contains("words"),
        "{e}"
    );

    let file_cfg = parse_file("listen_insecure = true\n").unwrap();
    assert!(
        Config::merge(&ServeArgs::default(), file_cfg)
            .unwrap()
            .listen_insecure
    );
    let c = merge(ServeArgs {
        listen_insecure: Some("true".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(c.listen_insecure);
}

#[test]
fn observability_settings_are_read_and_checked() {
    let merge = |args: ServeArgs, file: &str| Config::merge(&args, parse_file(file).unwrap());
    let c = merge(ServeArgs::default(), "").unwrap();
    assert_eq!(c.metrics_max_endpoints, 1000);
    assert_eq!(c.max_backlog, 1_000_000);
    assert_eq!(c.operator_endpoint, None);
    let c = merge(
        ServeArgs {
            max_backlog: Some("5".into()),
            ..Default::default()
        },
        "metrics_max_endpoints = 2\nmax_backlog = 9\noperator_endpoint = \"ops\"\n",
    )
    .unwrap();
    assert_eq!(
        (c.metrics_max_endpoints, c.max_backlog),
        (2, 5),
        "the flag wins over the file"
    );
    assert_eq!(c.operator_endpoint.as_deref(), Some("ops"));
    for (args, name) in [
        (
            ServeArgs {
                max_backlog: Some("0".into()),
                ..Default::default()
            },
            "max_backlog",
        ),
        (
            ServeArgs {
                metrics_max_endpoints: Some("-1".into()),
                ..Default::default()
            },
            "metrics_max_endpoints",
        ),
        (
            ServeArgs {
                operator_endpoint: Some("no spaces".into()),
                ..Default::default()
            },
            "operator_endpoint",
        ),
    ] {
        let e = merge(args, "").unwrap_err();
        assert!(e.0.contains(name), "{e}");
    }
}
