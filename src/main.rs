//! The `courier` binary: parses arguments, sets up logging, and runs the daemon or a client
//! command. All logic lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use courier::cli::{
    self, ChannelCmd, ClientOpts, DlqCmd, EndpointCmd, ExplainArgs, MasterKeyCmd, ReplayArgs,
    SendArgs,
};
use courier::config::{Config, EXIT_CONFIG, ServeArgs};
use courier::daemon::{self, DaemonError};

#[derive(Parser, Debug)]
#[command(name = "courier", version, about = "Durable webhook delivery daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Manage endpoints (destinations).
    Endpoint {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        cmd: EndpointCmd,
    },
    /// Enqueue one event for an endpoint.
    Send {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(flatten)]
        args: SendArgs,
    },
    /// Manage inbound webhook channels (the ingress).
    Channel {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        cmd: ChannelCmd,
    },
    /// Inspect, replay and purge dead letters.
    Dlq {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        cmd: DlqCmd,
    },
    /// Back-fill: send an endpoint's retained events of a time window again (X-HAPP-Replay: 1).
    Replay {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(flatten)]
        args: ReplayArgs,
    },
    /// Explain an error code: what it means and how to fix it (no daemon needed).
    Explain(ExplainArgs),
    /// The daemon on one screen: uptime, rates, backlog, endpoints by state, dead letters.
    Status {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The master keys that seal endpoints and channels in the journal: make one, list ids.
    MasterKey {
        #[command(subcommand)]
        cmd: MasterKeyCmd,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Endpoint { opts, cmd } => client(|rt| rt.block_on(cli::endpoint(&opts, cmd))),
        Command::Send { opts, args } => client(|rt| rt.block_on(cli::send(&opts, args))),
        Command::Dlq { opts, cmd } => client(|rt| rt.block_on(cli::dlq(&opts, cmd))),
        Command::Replay { opts, args } => client(|rt| rt.block_on(cli::replay(&opts, args))),
        Command::Channel { opts, cmd } => client(|rt| rt.block_on(cli::channel(&opts, cmd))),
        Command::Explain(args) => ExitCode::from(cli::explain::run(&args).clamp(0, 255) as u8),
        Command::Status { opts } => client(|rt| rt.block_on(cli::status(&opts))),
        Command::MasterKey { cmd } => {
            ExitCode::from(cli::master_key::run(&cmd).clamp(0, 255) as u8)
        }
    }
}

/// Help and version print as usual. A bad argument of `serve` is a configuration error: one line
/// on stderr and exit 64, like every other; the client commands keep clap's usage and exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let serve = std::env::args_os().nth(1).is_some_and(|a| a == "serve");
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !serve || shown {
        e.exit();
    }
    let text = e.render().to_string();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    eprintln!("courier: config error: {line} (see courier serve --help)");
    ExitCode::from(EXIT_CONFIG)
}

fn client(f: impl FnOnce(&tokio::runtime::Runtime) -> i32) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => ExitCode::from(f(&rt).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let cfg = match Config::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("courier: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&cfg.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("courier: config error: log: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("courier")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("courier: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(DaemonError::Config(e)) => {
            eprintln!("courier: config error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("courier: {e}");
            ExitCode::from(1)
        }
    }
}
