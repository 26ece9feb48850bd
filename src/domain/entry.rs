//! `ProgressEntry`: one measurement, and the input rules every measurement must pass.

use super::arg::{fmt_num, Arg};
use super::error::{Error, Result};
use super::time::{to_iso8601, TimeMs};

/// Heaviest accepted weight in kg (the heaviest person on record weighed about 635 kg).
pub const MAX_KG: f64 = 635.0;
/// Earliest accepted measurement date: 1900-01-01T00:00:00Z.
pub const MIN_DATE_MS: TimeMs = -2_208_988_800_000;
/// How far in the future a measurement date may lie (clock skew, time zones): 24 hours.
pub const MAX_FUTURE_MS: TimeMs = 86_400_000;
/// Longest accepted user id, in UTF-16 code units (what JS `string.length` counts).
pub const MAX_USER_ID_LEN: usize = 256;
/// Priority bounds.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// The kind of measurement. Only weight exists today; the seed's next metrics (steps, heart
/// rate, mood, ...) become new variants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricType {
    /// Body mass in kilograms.
    #[default]
    Weight,
}

impl MetricType {
    /// The wire/storage name (`"weight"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Weight => "weight",
        }
    }

    /// The unit quantities of this metric are stored and sent in.
    pub fn unit(self) -> &'static str {
        match self {
            MetricType::Weight => "kg",
        }
    }
}

/// A measurement as stored in IndexedDB and returned to JS.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEntry {
    /// Local id (UUID v4), also the `localId` sent to the server.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Metric (`type` in JS).
    pub metric: MetricType,
    /// The value, in `unit`.
    pub quantity: f64,
    /// `"kg"` for weight.
    pub unit: String,
    /// When the measurement was taken.
    pub date: TimeMs,
    /// The server's id once it acknowledged the entry.
    pub backend_id: Option<String>,
    /// When it was saved locally.
    pub created_at: TimeMs,
    /// Last local change (saving, or recording the backend id).
    pub updated_at: TimeMs,
}

impl ProgressEntry {
    /// A new weight entry. Arguments must already be validated.
    pub fn new_weight(id: String, input: &WeightInput, now: TimeMs) -> Self {
        ProgressEntry {
            id,
            user_id: input.user_id.clone(),
            metric: MetricType::Weight,
            quantity: input.kg,
            unit: MetricType::Weight.unit().to_owned(),
            date: input.date,
            backend_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The fields of the upload body (CONTRACT §2), in order.
    pub fn upload_body(&self) -> UploadBody<'_> {
        UploadBody { local_id: &self.id, metric: self.metric.as_str(), quantity: self.quantity, unit: &self.unit, date_iso: to_iso8601(self.date) }
    }
}

/// What the server receives for an entry:
/// `{"localId","type","quantity","unit","date"}` with the date as ISO 8601.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadBody<'a> {
    /// The entry's local id.
    pub local_id: &'a str,
    /// `"weight"`.
    pub metric: &'static str,
    /// The value.
    pub quantity: f64,
    /// `"kg"`.
    pub unit: &'a str,
    /// `2026-11-26T07:30:00.000Z`.
    pub date_iso: String,
}

/// A validated `saveWeight` call.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightInput {
    /// Kilograms, 0 < kg <= 635.
    pub kg: f64,
    /// Owner.
    pub user_id: String,
    /// Measurement time.
    pub date: TimeMs,
    /// Upload priority, higher first.
    pub priority: i32,
}

/// `kg`: a finite number with 0 < kg <= 635.
pub fn validate_kg(kg: &Arg) -> Result<f64> {
    const WHAT: &str = "saveWeight(kg)";
    match *kg {
        Arg::Number(n) if n.is_finite() => {
            if n <= 0.0 {
                Err(Error::out_of_range(WHAT, format!("must be more than 0 kg (got {})", fmt_num(n))))
            } else if n > MAX_KG {
                Err(Error::out_of_range(WHAT, format!("must be at most 635 kg (got {})", fmt_num(n))))
            } else {
                Ok(n)
            }
        }
        Arg::Number(_) => Err(Error::out_of_range(WHAT, format!("must be a finite number of kilograms (got {})", kg.describe()))),
        _ => Err(Error::invalid_type(WHAT, "a number of kilograms", kg.describe())),
    }
}

/// A user id: a non-blank string of at most 256 UTF-16 code units.
pub fn validate_user_id(what: &str, user: &Arg) -> Result<String> {
    match user {
        Arg::Str(s) => {
            if s.trim().is_empty() {
                Err(Error::out_of_range(what, "must be a non-empty string"))
            } else if s.encode_utf16().count() > MAX_USER_ID_LEN {
                Err(Error::out_of_range(what, format!("must be at most {MAX_USER_ID_LEN} characters (got {})", s.encode_utf16().count())))
            } else {
                Ok(s.clone())
            }
        }
        other => Err(Error::invalid_type(what, "a non-empty string", other.describe())),
    }
}

/// A measurement date: a valid `Date` or milliseconds, not before 1900, at most 24 h ahead of `now`.
/// Fractional milliseconds are truncated, as JS `new Date(ms)` does.
pub fn validate_date(date: &Arg, now: TimeMs) -> Result<TimeMs> {
    const WHAT: &str = "saveWeight(options.date)";
    let ms = match *date {
        Arg::Number(n) | Arg::Date(n) if n.is_finite() => n.trunc(),
        Arg::Number(_) | Arg::Date(_) => return Err(Error::out_of_range(WHAT, format!("must be a valid time (got {})", date.describe()))),
        _ => return Err(Error::invalid_type(WHAT, "a Date or milliseconds since the epoch", date.describe())),
    };
    if ms < MIN_DATE_MS as f64 {
        return Err(Error::out_of_range(WHAT, format!("must not be before 1900-01-01 (got {})", iso_or_raw(ms))));
    }
    if ms > (now + MAX_FUTURE_MS) as f64 {
        return Err(Error::out_of_range(WHAT, format!("must not be more than 24 hours in the future (got {}, now is {})", iso_or_raw(ms), to_iso8601(now))));
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
pub fn validate_priority(priority: &Arg) -> Result<i32> {
    const WHAT: &str = "saveWeight(options.priority)";
    match *priority {
        Arg::Number(n) if n.is_finite() && n.fract() == 0.0 => {
            if n < *PRIORITY_RANGE.start() as f64 || n > *PRIORITY_RANGE.end() as f64 {
                Err(Error::out_of_range(WHAT, format!("must be from -1000 to 1000 (got {})", fmt_num(n))))
            } else {
                Ok(n as i32)
            }
        }
        Arg::Number(_) => Err(Error::out_of_range(WHAT, format!("must be an integer (got {})", priority.describe()))),
        _ => Err(Error::invalid_type(WHAT, "an integer from -1000 to 1000", priority.describe())),
    }
}

/// The raw arguments of `saveWeight(kg, { userId, date, priority })`.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveArgs {
    /// `kg`.
    pub kg: Arg,
    /// `options.userId`.
    pub user_id: Arg,
    /// `options.date`.
    pub date: Arg,
    /// `options.priority`.
    pub priority: Arg,
}

/// Validates a whole `saveWeight` call. `current_user` is the user given to `start()`.
pub fn validate_save(args: &SaveArgs, current_user: Option<&str>, now: TimeMs) -> Result<WeightInput> {
    let kg = validate_kg(&args.kg)?;
    let user_id = if args.user_id.is_absent() {
        current_user.map(str::to_owned).ok_or(Error::NoCurrentUser { method: "saveWeight" })?
    } else {
        validate_user_id("saveWeight(options.userId)", &args.user_id)?
    };
    let date = if args.date.is_absent() { now } else { validate_date(&args.date, now)? };
    let priority = if args.priority.is_absent() { 0 } else { validate_priority(&args.priority)? };
    Ok(WeightInput { kg, user_id, date, priority })
}

#[cfg(test)]
mod tests;
