//! `ProgressEntry`: one measurement, and the input rules of `save`, `saveWeight`, `update` and
//! `delete`.

use super::arg::{fmt_num, Arg};
use super::error::{Error, Result};
use super::metric::Metric;
use super::time::{to_iso8601, TimeMs};

/// Earliest accepted measurement date: 1900-01-01T00:00:00Z.
pub const MIN_DATE_MS: TimeMs = -2_208_988_800_000;
/// How far in the future a measurement date may lie (clock skew, time zones): 24 hours.
pub const MAX_FUTURE_MS: TimeMs = 86_400_000;
/// Longest accepted user id, in UTF-16 code units (what JS `string.length` counts).
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest accepted entry or event id, in UTF-16 code units (ours are 36).
pub const MAX_ID_LEN: usize = 256;
/// Priority bounds.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// A measurement as stored in IndexedDB and returned to JS.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEntry {
    /// Local id (UUID v4), also the `localId` sent to the server.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Metric (`type` in JS); the unit follows from it.
    pub metric: Metric,
    /// The value, in the metric's unit.
    pub quantity: f64,
    /// When the measurement was taken.
    pub date: TimeMs,
    /// The server's id once it acknowledged the entry.
    pub backend_id: Option<String>,
    /// When it was saved locally.
    pub created_at: TimeMs,
    /// Last local change (saving, editing, or recording the backend id).
    pub updated_at: TimeMs,
    /// Sequence number of the latest outbox event written for this entry (1 for the create).
    pub rev: u32,
}

impl ProgressEntry {
    /// A new entry. The input must already be validated.
    pub fn new(id: String, input: &SaveInput, now: TimeMs) -> Self {
        ProgressEntry {
            id,
            user_id: input.user_id.clone(),
            metric: input.metric,
            quantity: input.quantity,
            date: input.date,
            backend_id: None,
            created_at: now,
            updated_at: now,
            rev: 1,
        }
    }

    /// The unit of its quantity.
    pub fn unit(&self) -> &'static str {
        self.metric.unit()
    }

    /// Applies a validated edit.
    pub fn edit(&mut self, change: &Change, now: TimeMs) {
        self.quantity = change.quantity;
        self.date = change.date;
        self.updated_at = now;
    }
}

/// What the server receives for an entry (CONTRACT §2), in wire order:
/// `{"localId","userId","type","quantity","unit","date"}` with the date as ISO 8601.
#[derive(Debug, Clone, PartialEq)]
pub struct Body<'a> {
    /// The entry's local id.
    pub local_id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Metric.
    pub metric: Metric,
    /// The value.
    pub quantity: f64,
    /// `2026-11-26T07:30:00.000Z`.
    pub date_iso: String,
}

/// A validated `save` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveInput {
    /// Metric.
    pub metric: Metric,
    /// In the metric's unit, within its rule.
    pub quantity: f64,
    /// Owner.
    pub user_id: String,
    /// Measurement time.
    pub date: TimeMs,
    /// Upload priority, higher first.
    pub priority: i32,
}

/// A validated `update`: the entry's new quantity and date (unchanged ones copied over).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// New quantity.
    pub quantity: f64,
    /// New measurement time.
    pub date: TimeMs,
}

/// The raw arguments of `save(metric, quantity, { userId, date, priority })` (and `saveWeight`).
#[derive(Debug, Clone, PartialEq)]
pub struct SaveArgs {
    /// `metric` (`saveWeight` passes `"weight"`).
    pub metric: Arg,
    /// `quantity` (`kg` for `saveWeight`).
    pub quantity: Arg,
    /// `options.userId`.
    pub user_id: Arg,
    /// `options.date`.
    pub date: Arg,
    /// `options.priority`.
    pub priority: Arg,
}

/// The raw options of `update(entryId, { quantity, date })`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateArgs {
    /// `quantity`.
    pub quantity: Arg,
    /// `date`.
    pub date: Arg,
}

/// Which API method a save came through, for messages naming the argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMethod {
    /// `saveWeight(kg, options)`.
    SaveWeight,
    /// `save(metric, quantity, options)`.
    Save,
}

impl SaveMethod {
    fn name(self) -> &'static str {
        match self {
            SaveMethod::SaveWeight => "saveWeight",
            SaveMethod::Save => "save",
        }
    }

    fn quantity(self, metric: Metric) -> String {
        match self {
            SaveMethod::SaveWeight => "saveWeight(kg)".into(),
            SaveMethod::Save => format!("save(\"{}\", quantity)", metric.name()),
        }
    }
}

/// A user id: a non-blank string of at most 256 UTF-16 code units.
pub fn validate_user_id(what: &str, user: &Arg) -> Result<String> {
    match user {
        Arg::Str(s) => {
            let len = s.encode_utf16().count();
            // Blank as JS `trim()` sees it (which also strips U+FEFF, not white space to Rust).
            if s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}').is_empty() {
                Err(Error::out_of_range(what, "must not be empty or only spaces"))
            } else if len > MAX_USER_ID_LEN {
                Err(Error::out_of_range(what, format!("must be at most {MAX_USER_ID_LEN} characters (got {len})")))
            } else {
                Ok(s.clone())
            }
        }
        Arg::LongStr(len) => Err(Error::out_of_range(what, format!("must be at most {MAX_USER_ID_LEN} characters (got {len})"))),
        other => Err(Error::invalid_type(what, "a non-empty string", other.describe())),
    }
}

/// An entry or event id: a non-empty string of at most 256 UTF-16 code units.
pub fn validate_id(what: &str, id: &Arg) -> Result<String> {
    match id {
        Arg::Str(s) if !s.is_empty() && s.encode_utf16().count() <= MAX_ID_LEN => Ok(s.clone()),
        Arg::Str(s) if s.is_empty() => Err(Error::out_of_range(what, "must be a non-empty id string")),
        Arg::Str(_) | Arg::LongStr(_) => Err(Error::out_of_range(what, format!("must be at most {MAX_ID_LEN} characters"))),
        other => Err(Error::invalid_type(what, "an id string", other.describe())),
    }
}

/// A measurement date: a valid `Date` or milliseconds, not before 1900, at most 24 h ahead of `now`.
/// Fractional milliseconds are truncated, as JS `new Date(ms)` does.
pub fn validate_date(what: &str, date: &Arg, now: TimeMs) -> Result<TimeMs> {
    let ms = match *date {
        Arg::Number(n) | Arg::Date(n) if n.is_finite() => n.trunc() + 0.0,
        Arg::Number(_) | Arg::Date(_) => return Err(Error::out_of_range(what, format!("must be a valid time (got {})", date.describe()))),
        _ => return Err(Error::invalid_type(what, "a Date or milliseconds since the epoch", date.describe())),
    };
    if ms < MIN_DATE_MS as f64 {
        return Err(Error::out_of_range(what, format!("must not be before 1900-01-01 (got {})", iso_or_raw(ms))));
    }
    if ms > (now + MAX_FUTURE_MS) as f64 {
        return Err(Error::out_of_range(what, format!("must not be more than 24 hours in the future (got {}, now is {})", iso_or_raw(ms), to_iso8601(now))));
    }
    Ok(ms as TimeMs)
}

fn iso_or_raw(ms: f64) -> String {
    // JS dates span +-8.64e15 ms; beyond that there is no calendar date to show.
    if ms.abs() <= 8.64e15 {
        to_iso8601(ms as TimeMs)
    } else {
        fmt_num(ms)
    }
}

/// A priority: an integer from -1000 to 1000.
pub fn validate_priority(what: &str, priority: &Arg) -> Result<i32> {
    match *priority {
        Arg::Number(n) if n.is_finite() && n.fract() == 0.0 => {
            if n < *PRIORITY_RANGE.start() as f64 || n > *PRIORITY_RANGE.end() as f64 {
                Err(Error::out_of_range(what, format!("must be from -1000 to 1000 (got {})", fmt_num(n))))
            } else {
                Ok(n as i32)
            }
        }
        Arg::Number(_) => Err(Error::out_of_range(what, format!("must be an integer (got {})", priority.describe()))),
        _ => Err(Error::invalid_type(what, "an integer from -1000 to 1000", priority.describe())),
    }
}

/// Validates a whole `save`/`saveWeight` call. `current_user` is the user given to `start()`.
/// Arguments are checked in the order they are written, so the first wrong one is named.
pub fn validate_save(method: SaveMethod, args: &SaveArgs, current_user: Option<&str>, now: TimeMs) -> Result<SaveInput> {
    let name = method.name();
    let metric = Metric::from_arg(&format!("{name}(metric)"), &args.metric)?;
    let quantity = metric.validate(&method.quantity(metric), &args.quantity)?;
    let user_id = if args.user_id.is_absent() {
        current_user.map(str::to_owned).ok_or(Error::NoCurrentUser { method: name })?
    } else {
        validate_user_id(&format!("{name}(options.userId)"), &args.user_id)?
    };
    let date = if args.date.is_absent() { now } else { validate_date(&format!("{name}(options.date)"), &args.date, now)? };
    let priority = if args.priority.is_absent() { 0 } else { validate_priority(&format!("{name}(options.priority)"), &args.priority)? };
    Ok(SaveInput { metric, quantity, user_id, date, priority })
}

/// A checked `update` before its entry is read: types and dates are checked here, the quantity
/// rule (which depends on the entry's metric) by [`UpdateInput::change_for`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateInput {
    /// A finite number, if given.
    pub quantity: Option<f64>,
    /// A valid date, if given.
    pub date: Option<TimeMs>,
}

/// Validates `update(entryId, { quantity, date })` as far as possible without the entry.
/// At least one of the two must be given.
pub fn validate_update(args: &UpdateArgs, now: TimeMs) -> Result<UpdateInput> {
    if args.quantity.is_absent() && args.date.is_absent() {
        return Err(Error::out_of_range("update(entryId, changes)", "must change something: pass { quantity } and/or { date }"));
    }
    let quantity = match args.quantity {
        Arg::Undefined => None,
        Arg::Number(n) => Some(n),
        ref other => return Err(Error::invalid_type("update(entryId, { quantity })", "a number", other.describe())),
    };
    let date = if args.date.is_absent() { None } else { Some(validate_date("update(entryId, { date })", &args.date, now)?) };
    Ok(UpdateInput { quantity, date })
}

impl UpdateInput {
    /// The entry's new values; the quantity must pass the entry's metric rule.
    pub fn change_for(&self, entry: &ProgressEntry) -> Result<Change> {
        let quantity = match self.quantity {
            Some(q) => entry.metric.validate(&format!("update(entryId, {{ quantity }}) of a \"{}\" entry", entry.metric.name()), &Arg::Number(q))?,
            None => entry.quantity,
        };
        Ok(Change { quantity, date: self.date.unwrap_or(entry.date) })
    }
}

#[cfg(test)]
mod tests;
