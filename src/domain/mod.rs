//! The pure core: data, rules and decisions. Nothing here touches JS, so `cargo test` runs it
//! natively; time and ids are passed in by the caller.

pub mod arg;
pub mod batch;
pub mod config;
pub mod entry;
pub mod error;
pub mod event;
pub mod health;
pub mod lease;
pub mod metric;
pub mod query;
pub mod retry;
pub mod stats;
pub mod time;

pub use error::{Error, Result};
