//! Time as milliseconds since the Unix epoch (what JS `Date.now()` returns), and the two text
//! forms the wire protocol uses: ISO 8601 for dates we send, HTTP dates in `Retry-After`.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type TimeMs = i64;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since the epoch for a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` for days since the epoch (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push_padded(out: &mut String, value: i64, width: usize) {
    let digits = value.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// Formats like JS `Date.prototype.toISOString()`: `2026-11-26T07:30:00.000Z`
/// (years outside 0..=9999 use the expanded `+YYYYYY`/`-YYYYYY` form, as JS does).
pub fn to_iso8601(ms: TimeMs) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(24);
    if (0..=9999).contains(&y) {
        push_padded(&mut s, y, 4);
    } else {
        s.push(if y < 0 { '-' } else { '+' });
        push_padded(&mut s, y, 6);
    }
    for (sep, value, width) in [
        ('-', m as i64, 2),
        ('-', d as i64, 2),
        ('T', in_day / 3_600_000, 2),
        (':', in_day / 60_000 % 60, 2),
        (':', in_day / 1000 % 60, 2),
        ('.', in_day % 1000, 3),
    ] {
        s.push(sep);
        push_padded(&mut s, value, width);
    }
    s.push('Z');
    s
}

/// Milliseconds for a UTC calendar time; `None` when a field is out of range. Years are those of
/// HTTP dates (four digits, 1..=9999): a larger one made the day count overflow and wrap, and a
/// far-future `Retry-After` date then read as one in the past.
pub fn from_civil(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<TimeMs> {
    if !(1..=9999).contains(&y) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month[mo as usize - 1] || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s.min(59)) as i64;
    Some(secs * 1000)
}

fn month_from_name(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    MONTHS.iter().position(|m| name.eq_ignore_ascii_case(m)).map(|i| i as u32 + 1)
}

fn parse_hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let sec = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((h, m, sec))
}

/// Parses an HTTP date (RFC 9110 §5.6.7) in any of its three forms:
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`
/// and asctime `Sun Nov  6 08:49:37 1994`.
pub fn parse_http_date(s: &str) -> Option<TimeMs> {
    let s = s.trim();
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    match parts.as_slice() {
        // IMF-fixdate
        [_wkday, day, mon, year, time, gmt] if gmt.eq_ignore_ascii_case("GMT") => {
            let (h, mi, sec) = parse_hms(time)?;
            from_civil(year.parse().ok()?, month_from_name(mon)?, day.parse().ok()?, h, mi, sec)
        }
        // RFC 850: two-digit year; RFC 9110 says pick the year within 50 years of now,
        // which for any date we will ever see means 19xx for 70..=99 and 20xx below.
        [_weekday, date, time, gmt] if gmt.eq_ignore_ascii_case("GMT") => {
            let mut d = date.split('-');
            let day = d.next()?.parse().ok()?;
            let mon = month_from_name(d.next()?)?;
            let yy: i64 = d.next()?.parse().ok()?;
            let year = if yy < 70 {
                2000 + yy
            } else if yy < 100 {
                1900 + yy
            } else {
                yy
            };
            let (h, mi, sec) = parse_hms(time)?;
            from_civil(year, mon, day, h, mi, sec)
        }
        // asctime
        [_wkday, mon, day, time, year] => {
            let (h, mi, sec) = parse_hms(time)?;
            from_civil(year.parse().ok()?, month_from_name(mon)?, day.parse().ok()?, h, mi, sec)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
