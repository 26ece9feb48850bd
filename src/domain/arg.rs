//! Arguments from JS as plain Rust values, so validation can be pure and say exactly what was wrong.

/// A JS value as seen by validation: enough to say what was wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `undefined` (or the key was missing).
    Undefined,
    /// `null`.
    Null,
    /// A number (including NaN and the infinities).
    Number(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A `Date` object, as its time value (NaN for an invalid date).
    Date(f64),
    /// An array (only `backoffMs` takes one).
    Array(Vec<Arg>),
    /// A string too long to be any value taken, by its length in UTF-16 code units (not copied):
    /// a string, so a refused value (RangeError), not a wrong type.
    LongStr(u32),
    /// Anything else, described by `typeof` or the constructor name.
    Other(String),
}

impl Arg {
    /// The text of a string read whole (`None` for any other value, a [`Arg::LongStr`] too).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Arg::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Arg::Undefined => "undefined".into(),
            Arg::Null => "null".into(),
            Arg::Number(n) if n.is_nan() => "NaN".into(),
            Arg::Number(n) if n.is_infinite() => {
                if *n > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            }
            Arg::Number(n) => fmt_num(*n),
            // Quoted by hand: `{:?}` would pull Rust's escaping tables into the wasm.
            Arg::Str(s) => format!("the string \"{}\"", truncate(s, 40)),
            Arg::Bool(b) => format!("{b}"),
            Arg::Date(t) if t.is_nan() => "an invalid Date".into(),
            Arg::Date(_) => "a Date".into(),
            Arg::Array(_) => "an array".into(),
            Arg::LongStr(len) => format!("a string of {len} characters (far longer than any value taken)"),
            Arg::Other(what) => what.clone(),
        }
    }

    /// True for `undefined` (an omitted optional argument). `null` is a value, and refused where
    /// a string, number or Date is expected: `{ userId: null }` from an app bug must not quietly
    /// save for whoever is logged in.
    pub fn is_absent(&self) -> bool {
        matches!(self, Arg::Undefined)
    }
}

/// Formats a number for a message without Rust's float formatting machinery (it would add
/// kilobytes to the wasm): integers exactly (up to 2^53), others to at most 6 decimals while those
/// are meaningful, more when they are needed to differ from the rounding (below 1e9; larger ones
/// are rounded to an integer), huge ones in e-notation.
pub fn fmt_num(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sign = if n < 0.0 { "-" } else { "" };
    let a = n.abs();
    if a >= 1e15 {
        let mut exp = 0;
        let mut m = a;
        while m >= 10.0 {
            m /= 10.0;
            exp += 1;
        }
        // The divisions leave float noise in the mantissa: six decimals of it are plenty.
        return format!("{sign}{}e+{exp}", fmt_num((m * 1e6).round() / 1e6));
    }
    if n.fract() == 0.0 || a >= 1e9 {
        // Exact below 2^53; beyond, f64 holds only integers anyway.
        return format!("{sign}{}", a.round() as u64);
    }
    // Six decimals, or more while they are needed to tell the number from its rounding (so
    // "at most 635" never says "got 635" of 635.0000001), within f64's exact integers.
    let (mut places, mut scale) = (6usize, 1e6);
    while places < 15 && a * scale * 10.0 < 9e15 && (a * scale).round() / scale != a {
        places += 1;
        scale *= 10.0;
    }
    let scaled = (a * scale).round() as u64;
    let (int, frac) = (scaled / scale as u64, scaled % scale as u64);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let mut digits = format!("{frac:0places$}");
    while digits.ends_with('0') {
        digits.pop();
    }
    format!("{sign}{int}.{digits}")
}

/// The first `max` characters of `s`, with `...` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
