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
    /// Anything else, described by `typeof` or the constructor name.
    Other(String),
}

impl Arg {
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
            Arg::Other(what) => what.clone(),
        }
    }

    /// True for `undefined` and `null` (an omitted optional argument).
    pub fn is_absent(&self) -> bool {
        matches!(self, Arg::Undefined | Arg::Null)
    }
}

/// Formats a number for a message without Rust's float formatting machinery (it would add
/// kilobytes to the wasm): integers exactly (up to 2^53), others to at most 6 decimals while those
/// are meaningful (below 1e9; larger ones are rounded to an integer), huge ones in e-notation.
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
        return format!("{sign}{}e+{exp}", fmt_num(m));
    }
    if n.fract() == 0.0 || a >= 1e9 {
        // Exact below 2^53; beyond, f64 holds only integers anyway.
        return format!("{sign}{}", a.round() as u64);
    }
    let scaled = (a * 1e6).round() as u64;
    let (int, frac) = (scaled / 1_000_000, scaled % 1_000_000);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let mut digits = format!("{frac:06}");
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
