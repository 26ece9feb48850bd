//! Typed errors. Every failure the library reports is one of these; the bindings turn each into a
//! real JS `TypeError`, `RangeError` or `Error` (see [`Error::js_class`]) carrying [`Error::code`].

/// What went wrong, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument or option has the wrong JS type (a string where a number belongs, ...).
    #[error("{what} must be {expected}, got {got}")]
    InvalidType {
        /// The argument, e.g. `saveWeight(kg)`.
        what: String,
        /// What it must be, e.g. `a finite number`.
        expected: &'static str,
        /// A short description of what was passed.
        got: String,
    },
    /// An argument has the right type but an unacceptable value.
    #[error("{what} {problem}")]
    OutOfRange {
        /// The argument, e.g. `saveWeight(kg)`.
        what: String,
        /// Why the value is refused, e.g. `must be at most 635 (got 700)`.
        problem: String,
    },
    /// A per-user call with no `userId` while no user is started.
    #[error("{method}: no user: {} or call outbox.start(userId) first", user_hint(method))]
    NoCurrentUser {
        /// The method that needed a user.
        method: &'static str,
    },
    /// `resetForRetry` named an event that does not exist.
    #[error("resetForRetry: no outbox event with id \"{0}\"; nothing was reset")]
    UnknownEvent(String),
    /// `update`/`delete` named an entry that does not exist or was already deleted.
    #[error("{method}: no entry with id \"{id}\" (unknown, or already deleted); nothing was changed")]
    UnknownEntry {
        /// `update` or `delete`.
        method: &'static str,
        /// The id given.
        id: String,
    },
    /// IndexedDB is missing (private mode in old browsers, or a context without storage).
    #[error("IndexedDB is not available in this context: {0}")]
    Unsupported(String),
    /// The database has no room left. Nothing of the failed write was stored.
    #[error("storage is full ({0}); nothing was saved. Free space or ask the user to allow more storage")]
    QuotaExceeded(String),
    /// An IndexedDB request or transaction failed. Nothing of the failed write was stored.
    #[error("IndexedDB {operation} failed: {detail}")]
    Storage {
        /// What the library was doing.
        operation: &'static str,
        /// The browser's error (DOMException name and message).
        detail: String,
    },
    /// The database on disk was written by a newer version of the library.
    #[error("database \"{name}\" has schema version {found}, newer than this library's {supported}; upgrade progress-outbox")]
    NewerSchema {
        /// The database name.
        name: String,
        /// Version found on disk.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// Opening needs a schema upgrade that other connections keep blocking.
    #[error("database \"{0}\" needs an upgrade, but another tab or worker keeps an older version of it open and did not close it; close the other tabs of this app (or reload them), then try again")]
    Blocked(String),
    /// A storage call did not settle in time (another context's long transaction ahead of it, or
    /// the browser's IndexedDB is stuck or overloaded).
    #[error("IndexedDB {0} did not finish within 9 s{1}")]
    TimedOut(&'static str, Written),
    /// Opening got no answer within the call's 9 s: another tab's upgrade of the database (or one that blocks
    /// it) is ahead of this open in the browser's queue, or storage is stuck.
    #[error("opening database \"{0}\" did not finish within 9 s: another tab of this app may be upgrading it, or keeps an older version of it open (close or reload the app's other tabs, then try again); otherwise the browser's storage is stuck (reload the page)")]
    OpenTimedOut(String),
    /// Another tab upgraded the database; this connection was closed so the upgrade could proceed.
    #[error("the database was upgraded by a newer version of the app in another tab; reload this page")]
    VersionChanged,
    /// `close()` was called.
    #[error("this Outbox is closed; open a new one with Outbox.open()")]
    Closed,
}

/// What a transaction that ran out of time left in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A read: nothing to store.
    Read,
    /// Aborted in time: nothing of it was stored.
    Nothing,
    /// The browser had begun to commit it and did not confirm the commit in time: it may well
    /// have been stored (retrying a save blindly could store the measurement twice).
    Maybe,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Written::Read => " (another tab or worker may hold the database in a long transaction); try again; if it persists, reload the page",
            Written::Nothing => "; nothing of it was stored. Try again; if it persists, reload the page",
            Written::Maybe => ": the browser had begun to commit it but did not confirm the commit in time, so it may have been stored. Look for it (entries(), events()) before doing it again",
        })
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which JS error class an [`Error`] becomes at the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsClass {
    /// `TypeError`: wrong kind of argument.
    TypeError,
    /// `RangeError`: right kind, refused value.
    RangeError,
    /// `Error`: everything else.
    Error,
}

impl Error {
    /// This error as a pass's failure: a pass asks for no write, so a claim whose commit was not
    /// confirmed in time is not "look for it before doing it again" (its claims come back to the
    /// queue).
    pub fn of_a_pass(self) -> Error {
        match self {
            Error::TimedOut(op, Written::Maybe) => Error::TimedOut(op, Written::Read),
            e => e,
        }
    }

    /// The JS error class for this error.
    pub fn js_class(&self) -> JsClass {
        match self {
            Error::InvalidType { .. } | Error::NoCurrentUser { .. } => JsClass::TypeError,
            Error::OutOfRange { .. } | Error::UnknownEvent(_) | Error::UnknownEntry { .. } => JsClass::RangeError,
            _ => JsClass::Error,
        }
    }

    /// A stable, machine-readable code, set as `error.code` in JS.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidType { .. } => "INVALID_TYPE",
            Error::OutOfRange { .. } => "OUT_OF_RANGE",
            Error::NoCurrentUser { .. } => "NO_USER",
            Error::UnknownEvent(_) => "UNKNOWN_EVENT",
            Error::UnknownEntry { .. } => "UNKNOWN_ENTRY",
            Error::Blocked(_) => "BLOCKED",
            Error::TimedOut(..) | Error::OpenTimedOut(_) => "TIMEOUT",
            Error::Unsupported(_) => "UNSUPPORTED",
            Error::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            Error::Storage { .. } => "STORAGE",
            Error::NewerSchema { .. } => "NEWER_SCHEMA",
            Error::VersionChanged => "VERSION_CHANGED",
            Error::Closed => "CLOSED",
        }
    }

    /// Every code [`Error::code`] can return.
    pub const CODES: [&'static str; 13] = [
        "INVALID_TYPE",
        "OUT_OF_RANGE",
        "NO_USER",
        "UNKNOWN_EVENT",
        "UNKNOWN_ENTRY",
        "UNSUPPORTED",
        "QUOTA_EXCEEDED",
        "STORAGE",
        "NEWER_SCHEMA",
        "BLOCKED",
        "TIMEOUT",
        "VERSION_CHANGED",
        "CLOSED",
    ];

    /// Shorthand for [`Error::InvalidType`].
    pub fn invalid_type(what: impl Into<String>, expected: &'static str, got: impl Into<String>) -> Self {
        Error::InvalidType { what: what.into(), expected, got: got.into() }
    }

    /// Shorthand for [`Error::OutOfRange`].
    pub fn out_of_range(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::OutOfRange { what: what.into(), problem: problem.into() }
    }

    /// A failure IndexedDB reported (`Name: message`) while doing `operation`: quota errors get
    /// their own variant; a connection the browser closed under the call (Chromium's texts when
    /// site data is cleared) says what happened and that trying again works, not only the
    /// browser's words ("Backend aborted error").
    pub fn from_browser(operation: &'static str, detail: String) -> Error {
        if detail.starts_with("QuotaExceededError") {
            return Error::QuotaExceeded(detail);
        }
        if detail.contains("Connection is closing") || detail.contains("Backend aborted") {
            return Error::Storage {
                operation,
                detail: format!(
                    "{detail} (the browser closed the database under this call: site data cleared, or storage trouble; nothing of it was stored, and the next call reopens the database: try again)"
                ),
            };
        }
        Error::Storage { operation, detail }
    }
}

/// How `method` is told whose records it is about.
fn user_hint(method: &str) -> &'static str {
    match method {
        "stats" => "pass the user, stats(\"u1\"),",
        "staleEvents" => "pass the user, staleEvents(\"u1\"),",
        "entries" => "pass the user, entries(\"u1\") or entries({ userId: \"u1\" }),",
        _ => "pass { userId },",
    }
}

#[cfg(test)]
mod tests;
