//! Courier: a durable webhook delivery daemon.
//!
//! The data path, in module order: [`api`] takes requests (Unix socket and TCP) →
//! [`store::writer`] makes them durable with group commit → [`scheduler`] decides what to send
//! when → [`delivery`] performs signed HTTPS attempts → results go back through the writer.
//! Pure policy lives in [`retry`], [`signing`], [`record`] and [`duration`].
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod ids;
pub mod model;
pub mod record;
pub mod retry;
pub mod scheduler;
pub mod signing;
pub mod store;
pub mod timefmt;
