//! The help texts state the defaults and bounds the daemon really has: each `[default: …]`,
//! `[new endpoint: …]` and range in `courier … --help` is checked against the constant it
//! restates (the configuration's defaults, the endpoint and channel specs).

use std::process::Command;
use std::time::Duration;

use courier::config::Config;
use courier::core::channel::RATE_MAX;
use courier::core::duration;
use courier::core::endpoint::{
    DEFAULT_MAX_IN_FLIGHT, ID_RULE, MAX_IN_FLIGHT_MAX, RETRY_DELAY_MAX, RETRY_ENTRIES_MAX,
    TIMEOUT_MAX,
};
use courier::core::model::{DEFAULT_CHANNEL_RATE, DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT};
use courier::core::retry::MIN_RETRY_DELAY;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .arg("--help")
        .output()
        .expect("courier runs");
    assert!(out.status.success(), "{args:?} --help failed");
    // Long help wraps lines; join them so a statement is found whole.
    String::from_utf8(out.stdout)
        .expect("help is UTF-8")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn has(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "help lacks {wanted:?}:\n{text}");
}

#[test]
fn serve_states_the_configuration_defaults() {
    let h = help(&["serve"]);
    let d = Config::default();
    has(&h, &format!("[default: {}]", d.data_dir.display()));
    has(&h, &format!("[default: {}]", d.socket.display()));
    let listen = d.listen.map_or("off".to_string(), |a| a.to_string());
    has(&h, &format!("or `off` [default: {listen}]"));
    assert!(d.ingress_listen.is_none());
    has(&h, "(`/webhook/{channel}`), or `off` [default: off]");
    has(&h, &format!("in bytes [default: {}]", d.max_body_bytes));
    has(
        &h,
        &format!(
            "at shutdown [default: {}]",
            duration::format(d.shutdown_grace)
        ),
    );
    has(
        &h,
        &format!(
            "honoured [default: {}]",
            duration::format(d.retry_after_max)
        ),
    );
    has(&h, &format!("in MiB [default: {}]", d.cache_bytes >> 20));
    has(&h, &format!("[default: {}]", d.log));
}

#[test]
fn endpoint_add_states_the_spec() {
    let h = help(&["endpoint", "add"]);
    has(&h, &format!("Endpoint id: {ID_RULE}"));
    has(&h, &format!("at most {};", duration::format(TIMEOUT_MAX)));
    has(
        &h,
        &format!("[new endpoint: {}]", duration::format(DEFAULT_TIMEOUT)),
    );
    has(
        &h,
        &format!(
            "{}-{} each, at most {RETRY_ENTRIES_MAX}",
            duration::format(MIN_RETRY_DELAY),
            duration::format(RETRY_DELAY_MAX)
        ),
    );
    // The stated default schedule, read back as durations (`60s` and `1m` are the same).
    let stated = h
        .split("(\"\" for no retries) [new endpoint: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no default schedule stated:\n{h}"));
    let stated: Vec<Duration> = stated
        .split(',')
        .map(|d| duration::parse(d).unwrap_or_else(|e| panic!("{d:?}: {e}")))
        .collect();
    assert_eq!(stated, DEFAULT_RETRY_SCHEDULE.to_vec(), "{h}");
    has(&h, &format!("1-{MAX_IN_FLIGHT_MAX} (1 keeps strict order)"));
    has(
        &h,
        &format!("strict order) [new endpoint: {DEFAULT_MAX_IN_FLIGHT}]"),
    );
    assert_eq!(
        DEFAULT_TIMEOUT,
        Duration::from_secs(5),
        "the contract's default"
    );
}

#[test]
fn channel_add_states_the_spec() {
    let h = help(&["channel", "add"]);
    has(&h, &format!("Channel id: {ID_RULE}"));
    has(
        &h,
        &format!("Requests a second, 1-{RATE_MAX} [new channel: {DEFAULT_CHANNEL_RATE}]"),
    );
    has(
        &h,
        &format!("in a burst, 1-{RATE_MAX} [new channel: the rate]"),
    );
}
