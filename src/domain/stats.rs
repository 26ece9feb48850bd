//! `stats()`: counts per status plus the sync health the seed's debug view showed.

use super::health::Health;
use super::time::TimeMs;

/// How many recent completions `syncLatencyMs` is the median of.
pub const LATENCY_WINDOW: usize = 50;

/// Per-user sync history kept beside the events (one small record per user). `completed` is
/// a maintained counter because completed events pile up for `retentionMs` and counting them
/// through an index would cost time proportional to their number; the other counts are small
/// sets counted through the state index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserMeta {
    /// Completed events currently stored for the user.
    pub completed: u64,
    /// Last acknowledged upload.
    pub last_sync_at: Option<TimeMs>,
    /// Last failure message.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<TimeMs>,
    /// Save-to-acknowledged times of the latest completions, oldest first.
    pub latencies: Vec<i64>,
    /// Failed server answers since the last success (health turns `"failing"` past a threshold).
    pub failed_in_a_row: u32,
}

impl UserMeta {
    /// An upload was acknowledged `latency_ms` after its entry was saved.
    pub fn record_success(&mut self, now: TimeMs, latency_ms: i64) {
        self.completed += 1;
        self.last_sync_at = Some(now);
        self.failed_in_a_row = 0;
        if self.latencies.len() >= LATENCY_WINDOW {
            self.latencies.remove(0);
        }
        self.latencies.push(latency_ms.max(0));
    }

    /// An attempt failed; `answered`: the server said no (it did answer).
    pub fn record_failure(&mut self, now: TimeMs, message: &str, answered: bool) {
        self.last_error = Some(message.to_owned());
        self.last_error_at = Some(now);
        if answered {
            self.failed_in_a_row = self.failed_in_a_row.saturating_add(1);
        }
    }

    /// `removed` completed events were deleted by cleanup.
    pub fn record_cleanup(&mut self, removed: u64) {
        self.completed = self.completed.saturating_sub(removed);
    }

    /// The median of the recent latencies (the mean of the middle two for an even count).
    pub fn sync_latency_ms(&self) -> Option<i64> {
        let mut v = self.latencies.clone();
        if v.is_empty() {
            return None;
        }
        // Insertion sort: at most LATENCY_WINDOW values, and no standard sort in the wasm.
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && v[j - 1] > v[j] {
                v.swap(j - 1, j);
                j -= 1;
            }
        }
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2 })
    }
}

/// Event counts per finer state (see [`super::event::StateKey`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `pending`, claimable.
    pub pending: u64,
    /// `pending` behind an earlier event of the same entry.
    pub waiting: u64,
    /// `processing`.
    pub processing: u64,
    /// `failed`, will retry.
    pub retrying: u64,
    /// `failed`, gave up.
    pub gave_up: u64,
}

/// `navigator.storage.estimate()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StorageEstimate {
    /// Bytes used by this origin.
    pub usage: f64,
    /// Bytes it may use.
    pub quota: f64,
}

/// What `stats()` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Whose stats.
    pub user_id: String,
    /// Waiting to upload (including events waiting behind an earlier one of their entry).
    pub pending: u64,
    /// Upload under way.
    pub processing: u64,
    /// Status `failed`: retrying ones and ones that gave up.
    pub failed: u64,
    /// Acknowledged and still retained.
    pub completed: u64,
    /// Failed with no automatic retry left (a subset of `failed`).
    pub gave_up: u64,
    /// Failed and scheduled to retry (`failed - gaveUp`).
    pub retrying: u64,
    /// Last acknowledged upload.
    pub last_sync_at: Option<TimeMs>,
    /// Last failure message.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<TimeMs>,
    /// Creation time of the oldest pending event.
    pub oldest_pending_at: Option<TimeMs>,
    /// Creation time of the oldest event not delivered yet (pending, waiting, processing or
    /// retrying): what `"stalled"` health is judged by (a server that never answers leaves
    /// events retrying, not pending). Not part of the JS object.
    pub oldest_unsynced_at: Option<TimeMs>,
    /// Median save-to-acknowledged time of recent completions.
    pub sync_latency_ms: Option<i64>,
    /// Records that cannot be read (kept aside, never blocking others).
    pub quarantined: u64,
    /// Failed server answers since the last success.
    pub failed_in_a_row: u32,
    /// Overall state.
    pub health: Health,
    /// `navigator.storage.persisted()`, where the platform tells.
    pub persisted: Option<bool>,
    /// `navigator.storage.estimate()`, where the platform tells.
    pub storage: Option<StorageEstimate>,
    /// Events per batch request right now (with `batchEndpoint`).
    pub batch_events: Option<u32>,
}

impl Stats {
    /// Assembles stats from the counted states and the user's meta record.
    /// Health, persistence and storage are filled in by the caller.
    pub fn new(user_id: &str, counts: Counts, meta: &UserMeta, oldest_pending_at: Option<TimeMs>, quarantined: u64) -> Self {
        Stats {
            user_id: user_id.to_owned(),
            pending: counts.pending + counts.waiting,
            processing: counts.processing,
            failed: counts.retrying + counts.gave_up,
            completed: meta.completed,
            gave_up: counts.gave_up,
            retrying: counts.retrying,
            last_sync_at: meta.last_sync_at,
            last_error: meta.last_error.clone(),
            last_error_at: meta.last_error_at,
            oldest_pending_at,
            oldest_unsynced_at: oldest_pending_at,
            sync_latency_ms: meta.sync_latency_ms(),
            quarantined,
            failed_in_a_row: meta.failed_in_a_row,
            health: Health::Ok,
            persisted: None,
            storage: None,
            batch_events: None,
        }
    }

    /// A failure this context saw after the stored `lastError` (a pass that storage refused to
    /// record: the user's meta record, where `lastError` lives, may be the write that failed)
    /// is the last error.
    pub fn show_failure(&mut self, message: &str, at: TimeMs) {
        if self.last_error_at.is_none_or(|stored| at > stored) {
            self.last_error = Some(message.to_owned());
            self.last_error_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests;

/// What one processing pass did (`processNow()` resolves with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whose events (`None` when no user is started and nothing ran).
    pub user_id: Option<String>,
    /// The pass ran in another context (the uploader of this user), at this one's request.
    pub delegated: bool,
    /// The platform reported offline: no network work was tried.
    pub offline: bool,
    /// Stale `processing` events put back in the queue.
    pub stale_reset: u32,
    /// Due retries put back in the queue.
    pub promoted: u32,
    /// Events claimed.
    pub claimed: u32,
    /// Acknowledged by the server.
    pub completed: u32,
    /// Failed, retry scheduled.
    pub retrying: u32,
    /// Failed for good.
    pub gave_up: u32,
    /// Claimed but handed back unsent (logout, lost lead, an unreachable server).
    pub released: u32,
    /// Requests sent (one per event, or one per batch).
    pub requests: u32,
    /// `processNow()` stopped waiting for the pass at its bound while the pass went on in the
    /// background (the counts are what it had done so far), the pass stopped early, or no pass
    /// could run.
    pub unfinished: bool,
}

impl PassReport {
    /// An empty report of a pass for `user`.
    pub fn of(user: impl Into<String>) -> Self {
        PassReport { user_id: Some(user.into()), ..PassReport::default() }
    }

    /// The counts, in [`PassReport::COUNT_NAMES`] order.
    pub fn counts(&self) -> [u32; 8] {
        [self.stale_reset, self.promoted, self.claimed, self.completed, self.retrying, self.gave_up, self.released, self.requests]
    }

    /// The JS names of [`PassReport::counts`].
    pub const COUNT_NAMES: [&'static str; 8] = ["staleReset", "promoted", "claimed", "completed", "retrying", "gaveUp", "released", "requests"];

    /// Sets the counts from `counts` (in [`PassReport::COUNT_NAMES`] order).
    pub fn set_counts(&mut self, counts: [u32; 8]) {
        [self.stale_reset, self.promoted, self.claimed, self.completed, self.retrying, self.gave_up, self.released, self.requests] = counts;
    }
}
