//! Validation of the read and maintenance calls: `events`, `stats`, `entries`, `staleEvents`,
//! `resetForRetry`, and of option objects' keys.

use super::arg::{fmt_num, Arg};
use super::entry::{validate_id, validate_user_id};
use super::error::{Error, Result};
use super::event::EventStatus;
use super::metric::Metric;

/// Most ids one `resetForRetry` call takes.
pub const MAX_RESET_IDS: usize = 10_000;

/// Refuses option keys outside `allowed`: a typo such as `userID` must not silently save a
/// measurement for the wrong user.
pub fn check_keys(what: &str, keys: &[String], allowed: &[&str]) -> Result<()> {
    match keys.iter().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::invalid_type(format!("{what}: option \"{k}\""), "one of the known options", format!("unknown (known: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// An optional user argument: absent means the current user.
pub fn resolve_user(method: &'static str, user: &Arg, current: Option<&str>) -> Result<String> {
    if user.is_absent() {
        current.map(str::to_owned).ok_or(Error::NoCurrentUser { method })
    } else {
        validate_user_id(&format!("{method}(userId)"), user)
    }
}

/// A validated `events()` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    /// Whose events.
    pub user_id: String,
    /// Only this status.
    pub status: Option<EventStatus>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Validates `events({ status, userId, limit })`.
pub fn validate_events_query(status: &Arg, user_id: &Arg, limit: &Arg, current: Option<&str>) -> Result<EventsQuery> {
    let status = match status {
        a if a.is_absent() => None,
        Arg::Str(_) | Arg::LongStr(_) => Some(status.as_str().and_then(EventStatus::parse).ok_or_else(|| {
            Error::out_of_range(
                "events(options.status)",
                format!("must be \"pending\", \"processing\", \"completed\" or \"failed\" (got {})", status.describe()),
            )
        })?),
        other => return Err(Error::invalid_type("events(options.status)", "a status string", other.describe())),
    };
    let user_id = if user_id.is_absent() {
        current.map(str::to_owned).ok_or(Error::NoCurrentUser { method: "events" })?
    } else {
        validate_user_id("events(options.userId)", user_id)?
    };
    let limit = limit_arg("events(options.limit)", limit)?;
    Ok(EventsQuery { user_id, status, limit })
}

fn limit_arg(what: &str, limit: &Arg) -> Result<Option<u32>> {
    match *limit {
        Arg::Undefined => Ok(None),
        Arg::Number(n) if n.is_finite() && n.fract() == 0.0 && (1.0..=1_000_000.0).contains(&n) => Ok(Some(n as u32)),
        Arg::Number(n) => Err(Error::out_of_range(what, format!("must be an integer from 1 to 1000000 (got {})", fmt_num(n)))),
        ref other => Err(Error::invalid_type(what, "an integer", other.describe())),
    }
}

/// A validated `entries()` query.
#[derive(Debug, Clone, PartialEq)]
pub struct EntriesQuery {
    /// Whose entries.
    pub user_id: String,
    /// Only this metric.
    pub metric: Option<Metric>,
    /// Measured at or after (ms; a fraction is kept, so `t + 0.5` excludes a measurement at `t`).
    pub from: Option<f64>,
    /// Measured at or before (ms; a fraction is kept).
    pub to: Option<f64>,
    /// At most this many (newest first).
    pub limit: Option<u32>,
}

fn bound(what: &str, v: &Arg) -> Result<Option<f64>> {
    match *v {
        Arg::Undefined => Ok(None),
        // Not rounded: stored dates are whole milliseconds, and `from: t + 0.5` must exclude `t`.
        Arg::Number(n) | Arg::Date(n) if n.is_finite() && n.abs() <= 8.64e15 => Ok(Some(n + 0.0)),
        Arg::Number(_) | Arg::Date(_) => Err(Error::out_of_range(what, format!("must be a valid time (got {})", v.describe()))),
        ref other => Err(Error::invalid_type(what, "a Date or milliseconds since the epoch", other.describe())),
    }
}

/// Validates `entries({ userId, metric, from, to, limit })` (bounds inclusive).
pub fn validate_entries_query(user_id: &Arg, metric: &Arg, from: &Arg, to: &Arg, limit: &Arg, current: Option<&str>) -> Result<EntriesQuery> {
    let user_id = if user_id.is_absent() {
        current.map(str::to_owned).ok_or(Error::NoCurrentUser { method: "entries" })?
    } else {
        validate_user_id("entries(options.userId)", user_id)?
    };
    let metric = if metric.is_absent() { None } else { Some(Metric::from_arg("entries(options.metric)", metric)?) };
    let from = bound("entries(options.from)", from)?;
    let to = bound("entries(options.to)", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Error::out_of_range("entries(options.from)", "must not be after options.to"));
        }
    }
    let limit = limit_arg("entries(options.limit)", limit)?;
    Ok(EntriesQuery { user_id, metric, from, to, limit })
}

/// Validates `resetForRetry(ids)`: an array of non-empty id strings.
pub fn validate_ids(ids: &Arg) -> Result<Vec<String>> {
    const WHAT: &str = "resetForRetry(ids)";
    let Arg::Array(items) = ids else {
        return Err(Error::invalid_type(WHAT, "an array of event id strings", ids.describe()));
    };
    if items.len() > MAX_RESET_IDS {
        return Err(Error::out_of_range(WHAT, format!("must hold at most {MAX_RESET_IDS} ids (got {})", items.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // The rule of every id argument (`update`, `delete`): at most 256 characters.
        let id = validate_id(&format!("resetForRetry(ids[{i}])"), item)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
