//! Batches (CONTRACT §2b): how many events go in one request, and what each item's answer means.
//! Pure: the transport parses the answer, these rules decide.

use super::retry::Outcome;

/// How long a batch answer may take and still count as fast (the size grows only on fast answers).
pub const FAST_ANSWER_MS: f64 = 2_000.0;
/// Largest batch on a metered or 2g-class connection.
pub const CONSTRAINED_BATCH: u32 = 10;

/// What one batch answer says about the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSignal {
    /// A complete result list for this many events, quickly: grow.
    Fast(u32),
    /// A complete result list, slowly: shrink.
    Slow,
    /// A timeout: shrink.
    Overloaded,
    /// 413 to a batch of this many events: shrink, and stay below the size the server refused.
    TooLarge(u32),
    /// Any other failure (network, 5xx): says nothing about the size.
    Neutral,
}

/// The batch size, adapted by additive increase and multiplicative decrease within
/// `1..=max`: +max/10 (at least 1) after each fast, complete answer; halved after a timeout,
/// a 413 or a slow answer.
///
/// A 413 also sets a ceiling: a server that limits its batches would otherwise be overshot
/// again each time the size grows back, a 413 per overshoot. The ceiling is the larger of the
/// biggest batch answered whole so far and half the refused one, so repeated 413s close in on
/// the server's limit from below (a refused size at or below one answered before means the
/// limit moved: what was known is forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveSize {
    size: u32,
    max: u32,
    ceiling: u32,
    /// The most events a fast, complete answer covered.
    answered: u32,
}

impl AdaptiveSize {
    /// Starts at `min(10, max)`: small until the server has shown it copes.
    pub fn new(max: u32) -> AdaptiveSize {
        let max = max.max(1);
        AdaptiveSize { size: max.min(10), max, ceiling: max, answered: 0 }
    }

    /// The largest size it grows to: `max`, or less after a 413.
    pub fn ceiling(&self) -> u32 {
        self.ceiling
    }

    /// The current size.
    pub fn get(&self) -> u32 {
        self.size
    }

    /// Adapts to an answer.
    pub fn on(&mut self, signal: SizeSignal) {
        match signal {
            SizeSignal::Fast(n) => {
                self.answered = self.answered.max(n);
                self.size = (self.size + (self.max / 10).max(1)).min(self.ceiling);
            }
            SizeSignal::Slow | SizeSignal::Overloaded => self.size = (self.size / 2).max(1),
            // A 413 to one event is that event's own answer (`whole_failure`), no sign that
            // batches are too large: taken as one, it pinned the size at 1 for good.
            SizeSignal::TooLarge(n) if n > 1 => {
                if n <= self.answered {
                    self.answered = 0;
                }
                self.ceiling = self.answered.max(n / 2).clamp(1, self.max);
                self.size = (self.size / 2).clamp(1, self.ceiling);
            }
            SizeSignal::TooLarge(_) | SizeSignal::Neutral => {}
        }
    }
}

/// The network as `navigator.connection` reports it (where the browser has it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    /// `saveData`: the user asked for less data.
    pub save_data: bool,
    /// `effectiveType` is `"slow-2g"` or `"2g"`.
    pub slow: bool,
}

impl Network {
    /// A metered or very slow link.
    pub fn constrained(self) -> bool {
        self.save_data || self.slow
    }

    /// Requests allowed in flight at once.
    pub fn concurrency(self, max_concurrent: u32) -> u32 {
        if self.constrained() {
            1
        } else {
            max_concurrent.max(1)
        }
    }

    /// The batch size to use now, given the adapted one.
    pub fn batch(self, adapted: u32) -> u32 {
        if self.constrained() {
            adapted.min(CONSTRAINED_BATCH)
        } else {
            adapted
        }
    }
}

/// One item of a batch answer: `{"status": 201, "id": "b-9"}`, `{"status": 422, "error": "..."}`,
/// `{"status": 503, "retryAfter": 5}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAnswer {
    /// The item's own status.
    pub status: u16,
    /// Its `id`, as a string.
    pub id: Option<String>,
    /// Its `error` text.
    pub error: Option<String>,
    /// Its `retryAfter`, in seconds.
    pub retry_after_s: Option<f64>,
    /// Its `retryAfter` given as text, as the header's forms: seconds, or an HTTP date.
    pub retry_after_text: Option<String>,
}

/// Each item's outcome, classified as if it were that event's own answer, from a 2xx batch
/// answer whose `results` were read as `results` (`None`: not a JSON object with a `results`
/// array; an inner `None`: that result is not an object with a numeric `status`).
/// `Err` when the answer is not a complete result list (CONTRACT §2b): one result per event, each
/// readable. A list that is short, long or has an unreadable entry may be misaligned (results
/// shifted by one would hand one event another's id), so it then applies to every item, and
/// completes none.
pub fn item_outcomes(items: usize, results: Option<Vec<Option<ItemAnswer>>>) -> Result<Vec<Outcome>, String> {
    let Some(results) = results else {
        return Err("the batch answer is not a JSON object with a \"results\" array".into());
    };
    if results.len() < items {
        return Err(format!("the batch answer has {} results for {items} events", results.len()));
    }
    if results.len() > items {
        // (A list far longer than any batch is read only up to one result past the largest.)
        return Err(format!("the batch answer has more results than the {items} events sent"));
    }
    let mut out = Vec::with_capacity(items);
    for (i, r) in results.into_iter().enumerate() {
        let Some(a) = r else {
            return Err(format!("result {i} of the batch answer is not an object with a numeric \"status\""));
        };
        out.push(Outcome::Response {
            status: a.status,
            retry_after: a.retry_after_s.filter(|s| s.is_finite() && *s >= 0.0).map(|s| (s.ceil() as u64).to_string()).or(a.retry_after_text),
            backend_id: a.id,
            plain: true,
            body_excerpt: a.error.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The outcome every item of a batch of `items` events gets when the request as a whole failed
/// with `status` (a non-2xx answer, or `200` for an answer that is not a complete result list).
/// A 413 to more than one event says the batch was too big, not that any event is: see
/// [`Outcome::BatchTooLarge`].
pub fn whole_failure(status: u16, retry_after: Option<String>, detail: String, items: usize) -> Outcome {
    if status == 413 && items > 1 {
        return Outcome::BatchTooLarge(items.min(u32::MAX as usize) as u32);
    }
    Outcome::Batch { status, retry_after, detail }
}

#[cfg(test)]
mod tests;
