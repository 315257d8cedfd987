//! Pure policy: no clock, socket, file or store inside. Everything here takes `now`, attempt
//! numbers and bytes as arguments and returns values, so it is unit-tested without waiting.

pub mod channel;
pub mod dead_filter;
pub mod duration;
pub mod endpoint;
pub mod ids;
pub mod model;
pub mod partition;
pub mod ratelimit;
pub mod record;
pub mod retry;
pub mod secret;
pub mod signing;
pub mod timefmt;
