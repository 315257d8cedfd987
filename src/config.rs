//! `courier serve` configuration: flags, `COURIER_*` environment variables and a TOML file, in
//! that order of precedence over the built-in defaults. Everything is validated before anything
//! is bound or opened; a bad value is one line on stderr and exit code 64. The limits group
//! (`--max-backlog`, `--max-journal-bytes`, `--retention`) is resolved in [`limits`].

pub mod limits;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::api::auth::parse_tokens;
use crate::core::duration;
use crate::core::secret::Secret;

/// The environment variable holding one admin token (besides `--admin-token-file`).
pub const ADMIN_TOKEN_ENV: &str = "COURIER_ADMIN_TOKEN";

/// Exit code for a configuration error (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Flags of `courier serve`. Each is also `COURIER_<NAME>` in the environment and `<name>` in
/// the config file.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "COURIER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the journal lives [default: ./courier-data].
    #[arg(long, env = "COURIER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Unix socket of the producer/admin API [default: ./courier.sock].
    #[arg(long, env = "COURIER_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// TCP address of the producer/admin API, or `off` [default: 127.0.0.1:8425].
    #[arg(long, env = "COURIER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// TCP address of the inbound webhook ingress (`/webhook/{channel}`), or `off` [default: off].
    #[arg(long, env = "COURIER_INGRESS_LISTEN", value_name = "ADDR")]
    pub ingress_listen: Option<String>,
    /// Extra CA certificates (PEM) trusted for deliveries, besides the web roots.
    #[arg(long, env = "COURIER_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Permit http:// endpoint URLs (local development and tests only).
    // Values are taken as text and checked by `Config::merge`, so that a bad one is a config
    // error (one line, exit 64) like every other, not a usage error of the argument parser.
    #[arg(long, env = "COURIER_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub allow_http: Option<String>,
    /// Largest event body accepted, in bytes [default: 1048576].
    #[arg(
        long,
        env = "COURIER_MAX_BODY_BYTES",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub max_body_bytes: Option<String>,
    /// How long in-flight attempts may run on at shutdown [default: 10s].
    #[arg(
        long,
        env = "COURIER_SHUTDOWN_GRACE",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub shutdown_grace: Option<String>,
    /// Longest `Retry-After` of a 429 that is honoured [default: 5m].
    #[arg(
        long,
        env = "COURIER_RETRY_AFTER_MAX",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub retry_after_max: Option<String>,
    /// Journal page cache, in MiB [default: 32].
    #[arg(
        long,
        env = "COURIER_CACHE_MIB",
        value_name = "MIB",
        allow_hyphen_values = true
    )]
    pub cache_mib: Option<String>,
    /// Log filter, e.g. `info` or `courier=debug` [default: info].
    #[arg(long, env = "COURIER_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Admin tokens for the TCP API, one per line (blank lines and `#` comments ignored);
    /// `COURIER_ADMIN_TOKEN` adds one.
    #[arg(long, env = "COURIER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve the TCP admin API without a token (local development only).
    #[arg(long, env = "COURIER_LISTEN_INSECURE", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub listen_insecure: Option<String>,
    /// The token of `COURIER_ADMIN_TOKEN` (read by [`Config::resolve`], never a flag: a flag
    /// would show it in the process list).
    #[arg(skip)]
    pub admin_token: Option<Secret>,
    /// Endpoints with series of their own in /metrics; the rest are summed under
    /// endpoint="_other" [default: 1000].
    #[arg(
        long,
        env = "COURIER_METRICS_MAX_ENDPOINTS",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub metrics_max_endpoints: Option<String>,
    /// Most undelivered events per endpoint; intake past it answers 429 BACKLOG_FULL
    /// [default: 1000000].
    #[arg(
        long,
        env = "COURIER_MAX_BACKLOG",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub max_backlog: Option<String>,
    /// Most bytes of events the journal holds (pending, retained, dead letters), e.g. 512MiB,
    /// 2GiB or plain bytes; past it the endpoints holding the most get 507 STORAGE_FULL
    /// [default: none].
    #[arg(
        long,
        env = "COURIER_MAX_JOURNAL_BYTES",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub max_journal_bytes: Option<String>,
    /// How long delivered events are kept for back-fill (courier replay) before their space is
    /// reused [default: 72h].
    #[arg(
        long,
        env = "COURIER_RETENTION",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub retention: Option<String>,
    /// Size of the segment files event bodies are appended to, e.g. 64MiB; a segment is
    /// removed once retention (or compaction) has emptied it [default: 64MiB].
    #[arg(
        long,
        env = "COURIER_SEGMENT_SIZE",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub segment_size: Option<String>,
    /// Endpoint that receives Courier's own operator events (endpoint.down,
    /// endpoint.recovered, event.dead_lettered, endpoint.backlog_full) [default: none].
    #[arg(long, env = "COURIER_OPERATOR_ENDPOINT", value_name = "ID")]
    pub operator_endpoint: Option<String>,
    /// File of the master keys that seal endpoints and channels in the journal (base64, one
    /// per line, the first seals); else COURIER_MASTER_KEY, else DATA_DIR/master.key (created
    /// 0600 on first start).
    #[arg(long, env = "COURIER_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The keys of `COURIER_MASTER_KEY` (read by [`Config::resolve`], never a flag).
    #[arg(skip)]
    pub master_key: Option<Secret>,
}

/// The config file's keys (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub listen: Option<String>,
    pub ingress_listen: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub allow_http: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub retry_after_max: Option<String>,
    pub cache_mib: Option<usize>,
    pub log: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    pub listen_insecure: Option<bool>,
    pub metrics_max_endpoints: Option<usize>,
    pub max_backlog: Option<u64>,
    pub max_journal_bytes: Option<limits::ByteSize>,
    pub retention: Option<String>,
    pub segment_size: Option<limits::ByteSize>,
    pub operator_endpoint: Option<String>,
    pub master_key_file: Option<PathBuf>,
}

/// The resolved, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    /// `None` when TCP is off.
    pub listen: Option<SocketAddr>,
    /// `None` when the ingress is off.
    pub ingress_listen: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    pub allow_http: bool,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub retry_after_max: Duration,
    /// Journal page cache in bytes.
    pub cache_bytes: usize,
    pub log: String,
    /// Admin tokens of the TCP API (`--admin-token-file`, `COURIER_ADMIN_TOKEN`).
    pub admin_tokens: Vec<Secret>,
    /// Serve the TCP admin API without a token.
    pub listen_insecure: bool,
    /// Endpoints with series of their own in `/metrics`.
    pub metrics_max_endpoints: usize,
    /// Most pending events per endpoint.
    pub max_backlog: u64,
    /// Most bytes of events the journal holds (`None`: no limit).
    pub max_journal_bytes: Option<u64>,
    /// How long delivered events are kept.
    pub retention: Duration,
    /// Size of a segment file of the event log.
    pub segment_bytes: u64,
    /// Where operator events go.
    pub operator_endpoint: Option<String>,
    /// The master key file (`--master-key-file`); `None`: `COURIER_MASTER_KEY`, else the data
    /// dir's `master.key`.
    pub master_key_file: Option<PathBuf>,
    /// The keys of `COURIER_MASTER_KEY`.
    pub master_key: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./courier-data"),
            socket: PathBuf::from("./courier.sock"),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8425))),
            ingress_listen: None,
            ca_file: None,
            allow_http: false,
            max_body_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(10),
            retry_after_max: Duration::from_secs(300),
            cache_bytes: crate::store::redb::DEFAULT_CACHE_BYTES,
            log: "info".into(),
            admin_tokens: Vec::new(),
            listen_insecure: false,
            metrics_max_endpoints: 1000,
            max_backlog: crate::store::DEFAULT_MAX_BACKLOG,
            max_journal_bytes: None,
            retention: Duration::from_millis(crate::store::DEFAULT_RETENTION_MS),
            segment_bytes: crate::store::redb::segments::DEFAULT_SEGMENT_BYTES,
            operator_endpoint: None,
            master_key_file: None,
            master_key: None,
        }
    }
}

/// A configuration error: what is wrong, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error: {0}")]
pub struct ConfigError(pub String);

/// Largest body limit accepted for `max_body_bytes`.
pub const MAX_BODY_LIMIT: usize = 64 << 20;

impl Config {
    /// Merges flags/env over the file over defaults, and validates.
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let mut args = args.clone();
        if args.admin_token.is_none() {
            args.admin_token = std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(Secret::new);
        }
        if args.master_key.is_none() {
            args.master_key = std::env::var(crate::store::seal::key_file::KEY_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new);
        }
        Self::merge(&args, file)
    }

    /// Merge without reading files (exposed for tests).
    pub fn merge(args: &ServeArgs, file: FileConfig) -> Result<Config, ConfigError> {
        let d = Config::default();
        let (max_backlog, max_journal_bytes, retention) = limits::resolve(args, &file)?;
        let segment_bytes = limits::segment_size(args, &file)?;
        let listen = parse_listen("listen", args.listen.clone().or(file.listen), d.listen)?;
        let ingress_listen = parse_listen(
            "ingress_listen",
            args.ingress_listen.clone().or(file.ingress_listen),
            d.ingress_listen,
        )?;
        let dur = |name: &str, v: Option<String>, def: Duration| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(def),
                Some(s) => duration::parse(&s).map_err(|e| ConfigError(format!("{name}: {e}"))),
            }
        };
        let max_body_bytes = number("max_body_bytes", args.max_body_bytes.as_deref())?
            .or(file.max_body_bytes)
            .unwrap_or(d.max_body_bytes);
        if max_body_bytes == 0 || max_body_bytes > MAX_BODY_LIMIT {
            return Err(ConfigError(format!(
                "max_body_bytes: {max_body_bytes} is outside 1..={MAX_BODY_LIMIT}"
            )));
        }
        let cache_mib = number("cache_mib", args.cache_mib.as_deref())?
            .or(file.cache_mib)
            .unwrap_or(d.cache_bytes >> 20);
        if !(1..=65_536).contains(&cache_mib) {
            return Err(ConfigError(format!(
                "cache_mib: {cache_mib} is outside 1..=65536"
            )));
        }
        let metrics_max_endpoints = number(
            "metrics_max_endpoints",
            args.metrics_max_endpoints.as_deref(),
        )?
        .or(file.metrics_max_endpoints)
        .unwrap_or(d.metrics_max_endpoints);
        if metrics_max_endpoints > 1_000_000 {
            return Err(ConfigError(format!(
                "metrics_max_endpoints: {metrics_max_endpoints} is outside 0..=1000000"
            )));
        }
        let operator_endpoint = args
            .operator_endpoint
            .clone()
            .or(file.operator_endpoint)
            .filter(|s| !s.is_empty());
        if let Some(id) = &operator_endpoint
            && !crate::core::endpoint::valid_endpoint_id(id)
        {
            return Err(ConfigError(format!(
                "operator_endpoint: {id:?} is not an endpoint id (1-64 of A-Z a-z 0-9 _ . -)"
            )));
        }
        let ca_file = args.ca_file.clone().or(file.ca_file);
        if let Some(p) = &ca_file
            && !p.is_file()
        {
            return Err(ConfigError(format!(
                "ca_file: {} is not a readable file",
                p.display()
            )));
        }
        let socket = args.socket.clone().or(file.socket).unwrap_or(d.socket);
        if socket.as_os_str().is_empty() {
            return Err(ConfigError("socket: empty path".into()));
        }
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or(d.data_dir);
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError("data_dir: empty path".into()));
        }
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(ConfigError(format!(
                "data_dir: {} exists and is not a directory",
                data_dir.display()
            )));
        }
        let mut admin_tokens = match args.admin_token_file.clone().or(file.admin_token_file) {
            Some(p) => load_tokens(&p)?,
            None => Vec::new(),
        };
        if let Some(t) = &args.admin_token {
            let mut one = parse_tokens(t.expose())
                .ok()
                .filter(|v| v.len() == 1)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{ADMIN_TOKEN_ENV}: not a token (printable ASCII without spaces)"
                    ))
                })?;
            admin_tokens.append(&mut one);
        }
        Ok(Config {
            data_dir,
            socket,
            listen,
            ingress_listen,
            ca_file,
            allow_http: boolean("allow_http", args.allow_http.as_deref())?
                .or(file.allow_http)
                .unwrap_or(d.allow_http),
            max_body_bytes,
            shutdown_grace: dur(
                "shutdown_grace",
                args.shutdown_grace.clone().or(file.shutdown_grace),
                d.shutdown_grace,
            )?,
            retry_after_max: dur(
                "retry_after_max",
                args.retry_after_max.clone().or(file.retry_after_max),
                d.retry_after_max,
            )?,
            cache_bytes: cache_mib << 20,
            log: args.log.clone().or(file.log).unwrap_or(d.log),
            admin_tokens,
            listen_insecure: boolean("listen_insecure", args.listen_insecure.as_deref())?
                .or(file.listen_insecure)
                .unwrap_or(d.listen_insecure),
            metrics_max_endpoints,
            max_backlog,
            max_journal_bytes,
            retention,
            segment_bytes,
            operator_endpoint,
            master_key_file: args.master_key_file.clone().or(file.master_key_file),
            master_key: args.master_key.clone(),
        })
    }
}

/// A whole number given as a flag or in the environment.
fn number(name: &str, v: Option<&str>) -> Result<Option<usize>, ConfigError> {
    v.map(|s| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| ConfigError(format!("{name}: {s:?} is not a whole number of 0 or more")))
    })
    .transpose()
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`) given as a flag or in the environment.
fn boolean(name: &str, v: Option<&str>) -> Result<Option<bool>, ConfigError> {
    v.map(|s| match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!("{name}: {s:?} is not true or false"))),
    })
    .transpose()
}

fn parse_listen(
    name: &str,
    v: Option<String>,
    default: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if matches!(s.trim(), "off" | "none" | "") => Ok(None),
        Some(s) => s.trim().parse::<SocketAddr>().map(Some).map_err(|_| {
            ConfigError(format!(
                "{name}: {s:?} is not an address like 127.0.0.1:8425 (or \"off\")"
            ))
        }),
    }
}

/// The tokens of `--admin-token-file`: an unreadable file, or one without a token, is a
/// configuration error (a typo must not leave the TCP API closed without saying why).
fn load_tokens(p: &Path) -> Result<Vec<Secret>, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        ConfigError(format!(
            "admin_token_file: cannot read {}: {e}",
            p.display()
        ))
    })?;
    let tokens = parse_tokens(&text)
        .map_err(|e| ConfigError(format!("admin_token_file: {}: {e}", p.display())))?;
    if tokens.is_empty() {
        return Err(ConfigError(format!(
            "admin_token_file: {} holds no token (one per line; blank lines and # comments are ignored)",
            p.display()
        )));
    }
    Ok(tokens)
}

fn load_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
    parse_file(&text).map_err(|e| ConfigError(format!("{}: {e}", p.display())))
}

/// Parses config file text.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| e.message().to_string())
}

#[cfg(test)]
mod tests;
