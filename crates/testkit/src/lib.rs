//! Courier's test and benchmark support (a dev-only crate, never published): [`daemon`] runs
//! the real binary for black-box tests, [`receiver`] is a fault-injecting webhook receiver (also
//! behind `examples/receiver.rs`), and [`bench`] is the plumbing the benchmark tools in `bench/`
//! share. All API calls go through [`courier::client`].

pub mod bench;
pub mod daemon;
pub mod receiver;
