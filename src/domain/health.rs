//! `stats().health`: one word for where syncing stands, with the seed's "alert on high failure
//! count" built in. Pure; the processor and `stats()` feed it.

use super::time::TimeMs;

/// The overall state of a user's syncing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Health {
    /// Nothing to worry about.
    #[default]
    Ok,
    /// The platform reports no network: nothing uploads until it returns.
    Offline,
    /// Events gave up, or the last `failingAfter` answers all failed.
    Failing,
    /// Online and started, yet the oldest event not delivered yet is older than `stalledAfterMs`.
    Stalled,
}

impl Health {
    /// The name used in JS.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Offline => "offline",
            Health::Failing => "failing",
            Health::Stalled => "stalled",
        }
    }
}

/// What health is judged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// `navigator.onLine`.
    pub online: bool,
    /// The user is started in this outbox (its events are being processed).
    pub started: bool,
    /// Events that gave up.
    pub gave_up: u64,
    /// Failed server answers since the last success.
    pub failed_in_a_row: u32,
    /// Creation time of the oldest event not delivered yet (pending, waiting, processing or
    /// retrying: a server that never answers leaves events retrying).
    pub oldest_pending_at: Option<TimeMs>,
    /// Now.
    pub now: TimeMs,
}

/// Thresholds (options `failingAfter`, `stalledAfterMs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failed answers in a row that make health `"failing"`.
    pub failing_after: u32,
    /// Age of the oldest pending event that makes health `"stalled"`.
    pub stalled_after_ms: u64,
}

/// Judges health; the first that applies wins: offline, failing, stalled, ok.
pub fn judge(s: Signals, t: Thresholds) -> Health {
    if !s.online {
        Health::Offline
    } else if s.gave_up > 0 || s.failed_in_a_row >= t.failing_after {
        Health::Failing
    } else if s.started && s.oldest_pending_at.is_some_and(|at| s.now.saturating_sub(at) > t.stalled_after_ms as i64) {
        Health::Stalled
    } else {
        Health::Ok
    }
}

#[cfg(test)]
mod tests;
