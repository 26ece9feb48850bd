//! Leadership judged by heartbeats over elapsed time, never by comparing another context's
//! wall-clock stamp with ours (a clock jump in either context must not make a live uploader
//! look dead).
//!
//! The uploader of a user keeps a record `{ owner, gen, beat }` in the database: `gen` grows at
//! every change of uploader (it fences the previous one: a claim checks it), `beat` grows at
//! every pass and every recorded result. A follower watches the record on its own monotonic
//! clock: a beat that has not changed for the takeover time, or a record that stays missing,
//! means the uploader is gone (crashed, frozen, or lost its database).

/// One part of a Web Lock name: `%` and `:` percent-encoded, so that the parts of two
/// different names never run together (dbName `app` with user `b:c` and dbName `app:b` with
/// user `c` would otherwise share one lock). Names without either character are unchanged.
fn lock_part(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

/// The Web Lock of `user`'s uploads in database `db_name`: `progress-outbox:{dbName}:{userId}`.
pub fn lock_name(db_name: &str, user: &str) -> String {
    ["progress-outbox:", &lock_part(db_name), ":", &lock_part(user)].concat()
}

/// The Web Lock an `Outbox` instance holds for its life: `progress-outbox:{dbName}:alive:{id}`
/// (no user name can read `alive:…` once encoded).
pub fn alive_lock_name(db_name: &str, instance: &str) -> String {
    ["progress-outbox:", &lock_part(db_name), ":alive:", instance].concat()
}

/// What a follower read of the uploader's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The uploading `Outbox` instance.
    pub owner: String,
    /// Its leadership generation.
    pub gen: u64,
    /// Grows while it is alive.
    pub beat: u64,
}

/// A follower's watch over the uploader's heartbeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BeatWatch {
    seen: Option<Option<Beat>>,
    since: f64,
}

impl BeatWatch {
    /// Records what was read at monotonic time `now`; returns for how long (ms) it has not
    /// changed.
    pub fn observe(&mut self, beat: Option<Beat>, now: f64) -> f64 {
        match &self.seen {
            Some(seen) if *seen == beat => (now - self.since).max(0.0),
            _ => {
                self.seen = Some(beat);
                self.since = now;
                0.0
            }
        }
    }

    /// Forget what was seen (a new wait begins).
    pub fn reset(&mut self) {
        self.seen = None;
    }
}

/// How long an uploader's heartbeat may stand still before a follower takes over: longer than
/// any pause a live uploader makes (an interval, plus a request that runs to its timeout), with
/// a margin: `2 × processingIntervalMs + requestTimeoutMs + 1 s` (CONTRACT §3b).
pub fn takeover_after_ms(processing_interval_ms: u64, request_timeout_ms: u64) -> f64 {
    (2 * processing_interval_ms + request_timeout_ms + 1_000) as f64
}

/// Is the uploader gone? `still_ms` from [`BeatWatch::observe`]; a missing record (the database
/// was wiped, or the uploader never wrote one) is given one interval and a second to appear.
pub fn uploader_gone(beat: Option<&Beat>, still_ms: f64, takeover_ms: f64, processing_interval_ms: u64) -> bool {
    match beat {
        Some(_) => still_ms > takeover_ms,
        None => still_ms > (processing_interval_ms as f64 + 1_000.0).min(takeover_ms),
    }
}

#[cfg(test)]
mod tests;
