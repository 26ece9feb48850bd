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
    /// When the beat may last have changed: the last look before the current value was first
    /// seen (the change happened after it), or the first look of all.
    since: f64,
    /// The latest look.
    last: f64,
}

impl BeatWatch {
    /// Records what was read at monotonic time `now`; returns for how long (ms) it may have
    /// stood still: measured from the look *before* the current value appeared, so a heartbeat
    /// that stopped right after a look is not given an extra interval.
    pub fn observe(&mut self, beat: Option<Beat>, now: f64) -> f64 {
        match &self.seen {
            Some(seen) if *seen == beat => {}
            Some(_) => {
                self.seen = Some(beat);
                self.since = self.last;
            }
            None => {
                self.seen = Some(beat);
                self.since = now;
            }
        }
        self.last = now;
        (now - self.since).max(0.0)
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

/// What taking over costs after the decision (stealing the lock, writing the uploader record):
/// the decision comes this much before the bound, so the new uploader is in place within it. A
/// live uploader's pauses stay shorter than the bound by a second, and a follower's stillness
/// overstates its own by at most one interval: still no live uploader is taken for gone.
pub const TAKEOVER_COST_MS: f64 = 250.0;

/// In how many ms the uploader counts as gone if its record stays as it is (`<= 0`: gone now).
/// `still_ms` from [`BeatWatch::observe`]; a missing record (the database was wiped, or the
/// uploader never wrote one) is given one interval and a second to appear. A follower looks
/// again at the latest when this runs out, not only on its interval.
pub fn uploader_gone_in(beat: Option<&Beat>, still_ms: f64, takeover_ms: f64, processing_interval_ms: u64) -> f64 {
    let limit = match beat {
        Some(_) => takeover_ms,
        None => (processing_interval_ms as f64 + 1_000.0).min(takeover_ms),
    };
    limit - TAKEOVER_COST_MS - still_ms
}

#[cfg(test)]
mod tests;
