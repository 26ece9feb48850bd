//! IndexedDB through idb: one database holding entries, outbox events, tombstones of deleted
//! entries, per-user records and records set aside. One file per responsibility:
//! [`connection`] (open, upgrades, reopen), [`queue`] (save, edit, claim, record, hand back),
//! [`lease`] (the uploader record), [`queries`] (stats, listings), [`cleanup`] (retention),
//! [`quarantine`] (unreadable records), [`records`] (layout).
//!
//! Every query goes through an index and touches only the records it returns. Writes that
//! belong together share one transaction. Every call settles within [`DEADLINE_MS`]: one that
//! the browser does not finish in time is aborted (nothing of it stored) and rejects.

pub mod cleanup;
pub mod connection;
pub mod lease;
pub mod quarantine;
pub mod queries;
pub mod queue;
pub mod records;

use std::future::Future;

use crate::domain::{Error, Result};
use crate::platform::timer::within;
use crate::platform::Log;
use connection::Db;

/// How long any storage call may take (CONTRACT §3: every call settles within 10 s).
pub const DEADLINE_MS: u64 = 10_000;

/// The outbox's database.
pub struct Store {
    db: Db,
}

/// Runs a storage call within [`DEADLINE_MS`]. A call that runs out of time is dropped, which
/// aborts its transaction: nothing of it is stored.
pub async fn deadline<T>(operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
    within(DEADLINE_MS, call).await.unwrap_or(Err(Error::TimedOut(operation)))
}

impl Store {
    /// Opens (creating or upgrading) the database.
    pub async fn open(name: &str, max_attempts: u32, log: Log) -> Result<Store> {
        Ok(Store { db: Db::open(name, max_attempts, log).await? })
    }

    /// The connection.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// `Ok` while calls may run; otherwise why not.
    pub fn check_open(&self) -> Result<()> {
        self.db.check_open()
    }

    /// Closes the connection; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        self.db.close()
    }
}
