//! IndexedDB through idb: one database holding entries, outbox events, tombstones of deleted
//! entries, per-user records and records set aside. One file per responsibility:
//! [`connection`] (open, upgrades, reopen), [`queue`] (save, edit, claim, record, hand back),
//! [`lease`] (the uploader record), [`queries`] (stats, listings), [`cleanup`] (retention),
//! [`quarantine`] (unreadable records), [`records`] (layout).
//!
//! Every query goes through an index and touches only the records it returns. Writes that
//! belong together share one transaction. Every call settles within 10 s: a transaction the
//! browser does not finish in time is aborted (nothing of it stored) and the call rejects
//! (`platform::idb::DEADLINE_MS`).

pub mod cleanup;
pub mod connection;
pub mod lease;
pub mod quarantine;
pub mod queries;
pub mod queue;
pub mod records;

use crate::domain::Result;
use crate::platform::Log;
use connection::Db;

/// The outbox's database.
pub struct Store {
    db: Db,
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
