//! The metric table (CONTRACT §1 "Metrics"): every kind of measurement the outbox stores, its
//! unit and the rule its quantity must pass. The one place these live.

use super::arg::{fmt_num, Arg};
use super::error::{Error, Result};

/// A kind of measurement (`type` in JS and on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Metric {
    /// Body mass in kilograms.
    #[default]
    Weight,
    /// Body fat in percent.
    BodyFat,
    /// Height in centimetres.
    Height,
    /// Step count.
    Steps,
    /// Heart rate in beats per minute.
    HeartRate,
    /// Mood on a 1-10 score.
    Mood,
}

/// What a quantity of a metric must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Smallest accepted value.
    pub min: f64,
    /// `min` itself is refused (weight: more than 0).
    pub min_exclusive: bool,
    /// Largest accepted value (inclusive).
    pub max: f64,
    /// Only whole numbers.
    pub integer: bool,
}

impl Metric {
    /// Every metric, in the contract's order.
    pub const ALL: [Metric; 6] = [Metric::Weight, Metric::BodyFat, Metric::Height, Metric::Steps, Metric::HeartRate, Metric::Mood];

    /// The wire and storage name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Weight => "weight",
            Metric::BodyFat => "bodyFat",
            Metric::Height => "height",
            Metric::Steps => "steps",
            Metric::HeartRate => "heartRate",
            Metric::Mood => "mood",
        }
    }

    /// The unit quantities are stored and sent in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Weight => "kg",
            Metric::BodyFat => "%",
            Metric::Height => "cm",
            Metric::Steps => "count",
            Metric::HeartRate => "bpm",
            Metric::Mood => "score",
        }
    }

    /// The quantity rule.
    pub fn rule(self) -> Rule {
        let (min, min_exclusive, max, integer) = match self {
            Metric::Weight => (0.0, true, 635.0, false),
            Metric::BodyFat => (1.0, false, 75.0, false),
            Metric::Height => (30.0, false, 300.0, false),
            Metric::Steps => (0.0, false, 200_000.0, true),
            Metric::HeartRate => (20.0, false, 300.0, true),
            Metric::Mood => (1.0, false, 10.0, true),
        };
        Rule { min, min_exclusive, max, integer }
    }

    /// The metric called `name`, if any.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The rule in words, e.g. `an integer from 0 to 200000 (count)`.
    pub fn describe_rule(self) -> String {
        let r = self.rule();
        let kind = if r.integer { "an integer" } else { "a finite number" };
        if r.min_exclusive {
            format!("{kind} more than {} and at most {} {}", fmt_num(r.min), fmt_num(r.max), self.unit())
        } else {
            format!("{kind} from {} to {} {}", fmt_num(r.min), fmt_num(r.max), self.unit())
        }
    }

    /// Checks a quantity of this metric; `what` names the argument in the error.
    pub fn validate(self, what: &str, quantity: &Arg) -> Result<f64> {
        let r = self.rule();
        match *quantity {
            Arg::Number(n) if n.is_finite() => {
                let below = if r.min_exclusive { n <= r.min } else { n < r.min };
                if below || n > r.max || (r.integer && n.fract() != 0.0) {
                    Err(Error::out_of_range(what, format!("must be {} (got {})", self.describe_rule(), fmt_num(n))))
                } else {
                    // -0 is stored as 0: both are "no steps".
                    Ok(n + 0.0)
                }
            }
            Arg::Number(_) => Err(Error::out_of_range(what, format!("must be {} (got {})", self.describe_rule(), quantity.describe()))),
            _ => Err(Error::invalid_type(what, "a number", quantity.describe())),
        }
    }

    /// Reads a metric argument (`save(metric, ...)`): one of the table's names.
    pub fn from_arg(what: &str, metric: &Arg) -> Result<Metric> {
        match metric {
            Arg::Str(_) | Arg::LongStr(_) => metric
                .as_str()
                .and_then(Metric::parse)
                .ok_or_else(|| Error::out_of_range(what, format!("must be one of {} (got {})", names(), metric.describe()))),
            other => Err(Error::invalid_type(what, "a metric name string", other.describe())),
        }
    }
}

/// `"weight", "bodyFat", ...` for messages.
pub fn names() -> String {
    let quoted: Vec<String> = Metric::ALL.iter().map(|m| format!("\"{}\"", m.name())).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests;
