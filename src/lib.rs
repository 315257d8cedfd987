//! Courier: a durable webhook delivery daemon.
//!
//! The data path, in module order: [`api`] takes requests (Unix socket and TCP) → the
//! [`store::Journal`] makes them durable (embedded backend: [`store::redb`], group commit) →
//! [`scheduler`] decides what to send when → a [`destination`] performs signed HTTPS attempts →
//! results go back to the journal. Incoming webhooks from outside platforms enter through
//! [`ingress`] and join the same path as producers' events. Pure policy lives in [`core`];
//! the API's JSON shapes in [`views`], every stable code in [`codes`], every metric in
//! [`telemetry`]; [`offline`] serves the CLI from a stopped daemon's journal. ARCHITECTURE.md
//! has the layout and the invariants.
#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod cli;
pub mod client;
pub mod codes;
pub mod config;
pub mod core;
pub mod daemon;
pub mod destination;
pub mod error;
pub mod ingress;
pub mod intake;
pub mod offline;
pub mod operator;
pub mod scheduler;
pub mod store;
pub mod telemetry;
pub mod views;

#[cfg(test)]
mod source_tree;
