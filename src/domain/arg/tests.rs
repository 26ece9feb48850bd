//! Unit tests of `domain::arg`.

use super::*;

#[test]
fn describe_is_readable() {
    assert_eq!(Arg::Number(f64::NAN).describe(), "NaN");
    assert_eq!(Arg::Number(f64::NEG_INFINITY).describe(), "-Infinity");
    assert_eq!(Arg::Str("a".repeat(50)).describe(), format!("the string \"{}...\"", "a".repeat(40)));
    assert_eq!(truncate("héllo", 2), "hé...");
    assert_eq!(fmt_num(72.5), "72.5");
    assert_eq!(fmt_num(635.0001), "635.0001");
    // Past six decimals when the rounding would hide the difference from a bound.
    assert_eq!(fmt_num(635.0000001), "635.0000001");
    assert_eq!(fmt_num(0.000000123), "0.000000123");
    assert_eq!(fmt_num(-3.0), "-3");
    assert_eq!(fmt_num(0.1 + 0.2), "0.3");
    assert_eq!(fmt_num(1e308), "1e+308");
    assert_eq!(fmt_num(9e15), "9e+15");
    // Large integers exactly (they were garbled by the 6-decimal path).
    assert_eq!(fmt_num(1_764_000_000_123.0), "1764000000123");
    assert_eq!(fmt_num(1_700_000_000_001.0), "1700000000001");
    assert_eq!(fmt_num(2e13), "20000000000000");
    assert_eq!(fmt_num(999_999_999_999_999.0), "999999999999999");
    assert_eq!(fmt_num(-1e14), "-100000000000000");
    assert_eq!(fmt_num(5e9 + 0.25), "5000000000");
    assert_eq!(fmt_num(123_456.789), "123456.789");
}
