//! Unit tests of the CLI's argument definitions and the mapping of failures to exit codes.

use std::path::PathBuf;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::*;

#[test]
fn failure_rendering_and_codes() {
    let f = Failure::Unreachable {
        socket: PathBuf::from("/tmp/c.sock"),
        error: "No such file or directory (os error 2)".into(),
    };
    assert_eq!(f.exit_code(), 69);
    assert_eq!(
        f.render(),
        "error: DAEMON_UNREACHABLE: cannot connect to /tmp/c.sock: No such file or directory (os error 2)\n\
         hint: is 'courier serve' running? pass --socket PATH or set COURIER_SOCKET\n"
    );
    let lost = Failure::Lost {
        code: "DAEMON_TIMEOUT",
        socket: PathBuf::from("c.sock"),
        error: "no answer within 60s".into(),
        hint: lost_hint(&Method::POST, "/v1/endpoints/acme/events"),
    };
    assert_eq!(lost.exit_code(), 69);
    assert_eq!(
        lost.render(),
        format!("error: DAEMON_TIMEOUT: c.sock: no answer within 60s\nhint: {HINT_UNKNOWN_SEND}\n")
    );
    assert_eq!(lost_hint(&Method::GET, "/v1/endpoints"), HINT_RETRY_READ);
    assert_eq!(
        lost_hint(&Method::DELETE, "/v1/endpoints/a"),
        HINT_UNKNOWN_OUTCOME
    );
    assert_eq!(Failure::Input("bad".into()).exit_code(), 2);
    assert_eq!(Failure::Input("bad".into()).render(), "error: bad\n");
    let api = Failure::Api(ApiError::new(StatusCode::NOT_FOUND, Bytes::new()));
    assert_eq!(api.exit_code(), 1);
}

/// The argument definitions hold together inside a parser like the binary's.
#[test]
fn clap_definitions() {
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        client: ClientOpts,
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(Subcommand, Debug)]
    enum Cmd {
        #[command(subcommand)]
        Endpoint(EndpointCmd),
        #[command(subcommand)]
        Dlq(DlqCmd),
        Send(SendArgs),
        #[command(subcommand)]
        Channel(ChannelCmd),
    }
    Cli::command().debug_assert();

    let cli = Cli::try_parse_from([
        "courier",
        "endpoint",
        "add",
        "acme",
        "https://a.io/h",
        "--secret-file",
        "/s",
        "--retry-schedule",
        "1s,2s",
        "--json",
        "--socket",
        "/x.sock",
    ])
    .unwrap();
    assert!(cli.client.json);
    assert_eq!(cli.client.socket, PathBuf::from("/x.sock"));
    match cli.cmd {
        Cmd::Endpoint(EndpointCmd::Add {
            settings:
                endpoint::Settings {
                    secret_file,
                    retry_schedule,
                    ..
                },
            ..
        }) => {
            assert_eq!(secret_file, Some(PathBuf::from("/s")));
            assert_eq!(retry_schedule.as_deref(), Some("1s,2s"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        Cli::try_parse_from([
            "courier",
            "endpoint",
            "add",
            "a",
            "u",
            "--secret",
            "s",
            "--secret-file",
            "f"
        ])
        .is_err()
    );
    let parses =
        |args: &[&str]| Cli::try_parse_from(["courier"].iter().chain(args)).map(|cli| cli.cmd);
    match parses(&[
        "endpoint",
        "add",
        "a",
        "u",
        "--clear-secret",
        "--clear-password",
    ]) {
        Ok(Cmd::Endpoint(EndpointCmd::Add {
            settings:
                endpoint::Settings {
                    clear_secret: true,
                    clear_password: true,
                    secret: None,
                    password: None,
                    ..
                },
            ..
        })) => {}
        other => panic!("unexpected {other:?}"),
    }
    match parses(&["channel", "add", "c", "happ", "--clear-secret"]) {
        Ok(Cmd::Channel(ChannelCmd::Add {
            clear_secret: true,
            secret: None,
            rate_limit: None,
            ..
        })) => {}
        other => panic!("unexpected {other:?}"),
    }
    match parses(&["channel", "add", "c", "happ", "--rate-limit", "50"]) {
        Ok(Cmd::Channel(ChannelCmd::Add {
            clear_secret: false,
            secret: None,
            secret_file: None,
            rate_limit: Some(50),
            burst: None,
            ..
        })) => {}
        other => panic!("unexpected {other:?}"),
    }
    for conflicting in [
        &[
            "endpoint",
            "add",
            "a",
            "u",
            "--clear-secret",
            "--secret",
            "s",
        ][..],
        &[
            "endpoint",
            "add",
            "a",
            "u",
            "--clear-secret",
            "--secret-file",
            "f",
        ],
        &[
            "endpoint",
            "add",
            "a",
            "u",
            "--clear-password",
            "--password",
            "p",
        ],
        &[
            "endpoint",
            "add",
            "a",
            "u",
            "--clear-password",
            "--password-file",
            "f",
        ],
        &[
            "channel",
            "add",
            "c",
            "e",
            "--clear-secret",
            "--secret",
            "s",
        ],
        &[
            "channel",
            "add",
            "c",
            "e",
            "--clear-secret",
            "--secret-file",
            "f",
        ],
        &[
            "channel",
            "add",
            "c",
            "e",
            "--secret",
            "s",
            "--secret-file",
            "f",
        ],
    ] {
        assert!(parses(conflicting).is_err(), "{conflicting:?}");
    }
    let cli = Cli::try_parse_from(["courier", "send", "acme"]).unwrap();
    match cli.cmd {
        Cmd::Send(args) => {
            assert_eq!(args.content_type, "application/json");
            assert!(args.file.is_none());
        }
        other => panic!("unexpected {other:?}"),
    }
    let cli = Cli::try_parse_from(["courier", "endpoint", "attempts", "acme"]).unwrap();
    assert!(matches!(
        cli.cmd,
        Cmd::Endpoint(EndpointCmd::Attempts { limit: 20, .. })
    ));
}
