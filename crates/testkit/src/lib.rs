//! Courier's test and benchmark support (a dev-only crate, never published): [`daemon`] runs
//! the real binary for black-box tests, [`receiver`] is a fault-injecting webhook receiver (also
//! behind `examples/receiver.rs`), [`bench`] is the plumbing the benchmark tools in `bench/`
//! share, and [`power_loss`] is a disk that loses what was not synced (under the real journal,
//! for `tests/power_loss/`). All API calls go through [`courier::client`].

pub mod bench;
pub mod daemon;
pub mod power_loss;
pub mod receiver;
