//! Validation of the read and maintenance calls: `events`, `stats`, `entries`, `staleEvents`,
//! `resetForRetry`, and of option objects' keys.

use super::arg::{fmt_num, Arg};
use super::entry::validate_user_id;
use super::error::{Error, Result};
use super::event::EventStatus;

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
        Arg::Str(s) => Some(EventStatus::parse(s).ok_or_else(|| {
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
    let limit = match *limit {
        Arg::Undefined | Arg::Null => None,
        Arg::Number(n) if n.is_finite() && n.fract() == 0.0 && (1.0..=1_000_000.0).contains(&n) => Some(n as u32),
        Arg::Number(n) => return Err(Error::out_of_range("events(options.limit)", format!("must be an integer from 1 to 1000000 (got {})", fmt_num(n)))),
        ref other => return Err(Error::invalid_type("events(options.limit)", "an integer", other.describe())),
    };
    Ok(EventsQuery { user_id, status, limit })
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
        match item {
            Arg::Str(s) if !s.is_empty() => {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            other => return Err(Error::invalid_type(format!("resetForRetry(ids[{i}])"), "a non-empty event id string", other.describe())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
