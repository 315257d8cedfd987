//! Courier: a durable webhook delivery daemon.
//!
//! The data path, in module order: [`api`] takes requests (Unix socket and TCP) →
//! [`store::writer`] makes them durable with group commit → [`scheduler`] decides what to send
//! when → [`delivery`] performs signed HTTPS attempts → results go back through the writer.
//! Incoming webhooks from outside platforms enter through [`ingress`] (rate limited with
//! [`ratelimit`], HMAC-verified) and join the same path as producers' events.
//! Pure policy lives in [`retry`], [`signing`], [`record`], [`ratelimit`] and [`duration`].
#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod cli;
pub mod client;
pub mod codes;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod ids;
pub mod ingress;
pub mod model;
pub mod ratelimit;
pub mod record;
pub mod retry;
pub mod scheduler;
pub mod signing;
pub mod store;
pub mod timefmt;
pub mod views;
