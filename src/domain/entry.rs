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
        UploadBody {
            local_id: &self.id,
            metric: self.metric.as_str(),
            quantity: self.quantity,
            unit: &self.unit,
            date_iso: to_iso8601(self.date),
        }
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
        Arg::Number(_) | Arg::Date(_) => {
            return Err(Error::out_of_range(WHAT, format!("must be a valid time (got {})", date.describe())))
        }
        _ => return Err(Error::invalid_type(WHAT, "a Date or milliseconds since the epoch", date.describe())),
    };
    if ms < MIN_DATE_MS as f64 {
        return Err(Error::out_of_range(WHAT, format!("must not be before 1900-01-01 (got {})", iso_or_raw(ms))));
    }
    if ms > (now + MAX_FUTURE_MS) as f64 {
        return Err(Error::out_of_range(
            WHAT,
            format!("must not be more than 24 hours in the future (got {}, now is {})", iso_or_raw(ms), to_iso8601(now)),
        ));
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
mod tests {
    use super::*;
    use crate::domain::error::JsClass;

    const NOW: TimeMs = 1_795_678_200_000;

    fn args(kg: Arg) -> SaveArgs {
        SaveArgs { kg, user_id: Arg::Undefined, date: Arg::Undefined, priority: Arg::Undefined }
    }

    #[test]
    fn kg_boundaries() {
        assert_eq!(validate_kg(&Arg::Number(635.0)), Ok(635.0));
        assert_eq!(validate_kg(&Arg::Number(72.5)), Ok(72.5));
        assert_eq!(validate_kg(&Arg::Number(f64::MIN_POSITIVE)), Ok(f64::MIN_POSITIVE));
        for bad in [635.0001, 0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308] {
            let e = validate_kg(&Arg::Number(bad)).unwrap_err();
            assert_eq!(e.js_class(), JsClass::RangeError, "{bad}");
        }
    }

    #[test]
    fn kg_wrong_types_are_type_errors() {
        for bad in [Arg::Str("72".into()), Arg::Null, Arg::Undefined, Arg::Bool(true), Arg::Other("an object".into()), Arg::Date(0.0)] {
            let e = validate_kg(&bad).unwrap_err();
            assert_eq!(e.js_class(), JsClass::TypeError, "{bad:?}");
            assert!(e.to_string().starts_with("saveWeight(kg) must be a number of kilograms, got "), "{e}");
        }
        assert!(validate_kg(&Arg::Str("72".into())).unwrap_err().to_string().contains("the string \"72\""));
    }

    #[test]
    fn user_id_rules() {
        let ok = "x".repeat(256);
        assert_eq!(validate_user_id("u", &Arg::Str(ok.clone())), Ok(ok));
        // 256 UTF-16 units of astral characters = 128 characters: accepted; one more is too long.
        assert!(validate_user_id("u", &Arg::Str("😀".repeat(128))).is_ok());
        assert!(validate_user_id("u", &Arg::Str("😀".repeat(129))).is_err());
        assert_eq!(validate_user_id("u", &Arg::Str("x".repeat(257))).unwrap_err().js_class(), JsClass::RangeError);
        assert_eq!(validate_user_id("u", &Arg::Str("".into())).unwrap_err().js_class(), JsClass::RangeError);
        assert_eq!(validate_user_id("u", &Arg::Str("  ".into())).unwrap_err().js_class(), JsClass::RangeError);
        assert_eq!(validate_user_id("u", &Arg::Number(1.0)).unwrap_err().js_class(), JsClass::TypeError);
        assert_eq!(validate_user_id("u", &Arg::Null).unwrap_err().js_class(), JsClass::TypeError);
    }

    #[test]
    fn date_boundaries() {
        let limit = NOW + MAX_FUTURE_MS;
        assert_eq!(validate_date(&Arg::Number(limit as f64), NOW), Ok(limit));
        assert!(validate_date(&Arg::Number((limit + 1) as f64), NOW).is_err());
        assert_eq!(validate_date(&Arg::Date(MIN_DATE_MS as f64), NOW), Ok(MIN_DATE_MS));
        assert!(validate_date(&Arg::Date((MIN_DATE_MS - 1) as f64), NOW).is_err());
        assert_eq!(validate_date(&Arg::Number(1.9), NOW), Ok(1));
        for bad in [Arg::Date(f64::NAN), Arg::Number(f64::INFINITY), Arg::Number(f64::NAN), Arg::Number(9e15)] {
            assert_eq!(validate_date(&bad, NOW).unwrap_err().js_class(), JsClass::RangeError, "{bad:?}");
        }
        for bad in [Arg::Str("2026-11-01".into()), Arg::Bool(false), Arg::Other("an object".into())] {
            assert_eq!(validate_date(&bad, NOW).unwrap_err().js_class(), JsClass::TypeError, "{bad:?}");
        }
        let msg = validate_date(&Arg::Number((limit + 1) as f64), NOW).unwrap_err().to_string();
        assert!(msg.contains("24 hours in the future"), "{msg}");
    }

    #[test]
    fn priority_rules() {
        assert_eq!(validate_priority(&Arg::Number(1000.0)), Ok(1000));
        assert_eq!(validate_priority(&Arg::Number(-1000.0)), Ok(-1000));
        assert!(validate_priority(&Arg::Number(1001.0)).is_err());
        assert!(validate_priority(&Arg::Number(-1001.0)).is_err());
        assert!(validate_priority(&Arg::Number(1.5)).is_err());
        assert!(validate_priority(&Arg::Number(f64::NAN)).is_err());
        assert_eq!(validate_priority(&Arg::Str("1".into())).unwrap_err().js_class(), JsClass::TypeError);
    }

    #[test]
    fn save_defaults_and_user_resolution() {
        let input = validate_save(&args(Arg::Number(72.5)), Some("u1"), NOW).unwrap();
        assert_eq!(input, WeightInput { kg: 72.5, user_id: "u1".into(), date: NOW, priority: 0 });
        let e = validate_save(&args(Arg::Number(72.5)), None, NOW).unwrap_err();
        assert_eq!(e, Error::NoCurrentUser { method: "saveWeight" });
        let mut a = args(Arg::Number(80.0));
        a.user_id = Arg::Str("u2".into());
        a.date = Arg::Date(1_793_491_200_000.0);
        a.priority = Arg::Number(5.0);
        let input = validate_save(&a, Some("u1"), NOW).unwrap();
        assert_eq!((input.user_id.as_str(), input.date, input.priority), ("u2", 1_793_491_200_000, 5));
        // kg is checked first: one clear error, even when several things are wrong.
        a.kg = Arg::Null;
        a.user_id = Arg::Number(3.0);
        assert!(validate_save(&a, None, NOW).unwrap_err().to_string().starts_with("saveWeight(kg)"));
    }

    #[test]
    fn entry_and_upload_body() {
        let input = WeightInput { kg: 72.5, user_id: "u1".into(), date: NOW, priority: 0 };
        let e = ProgressEntry::new_weight("e1".into(), &input, NOW + 5);
        assert_eq!((e.unit.as_str(), e.metric, e.backend_id.clone(), e.created_at, e.updated_at), ("kg", MetricType::Weight, None, NOW + 5, NOW + 5));
        let body = e.upload_body();
        assert_eq!(body, UploadBody { local_id: "e1", metric: "weight", quantity: 72.5, unit: "kg", date_iso: "2026-11-26T07:30:00.000Z".into() });
    }
}
