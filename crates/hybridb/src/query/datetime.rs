//! RFC 3339 datetimes as microseconds since the Unix epoch: the one encoding that payload
//! indexes (ordered keys) and the filter language (range bounds) both use, so a datetime range
//! means the same in both. A small exact grammar, so no date crate is needed for it.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses an RFC 3339 datetime (`2024-05-01T12:00:00.5+02:00`, `Z` for UTC; a bare date means
/// midnight UTC; as Qdrant also takes them, a space for the `T`, no seconds (`12:30`) and no
/// offset, which means UTC) into microseconds since the Unix epoch, the value a `datetime` payload index
/// orders by; `None` when malformed. A small exact grammar, so no date crate is needed for it.
///
/// # Example
/// ```
/// assert_eq!(hybridb::parse_datetime("1970-01-02"), Some(86_400_000_000));
/// assert_eq!(hybridb::parse_datetime("1970-01-01T00:00:01.5Z"), Some(1_500_000));
/// assert_eq!(hybridb::parse_datetime("1970-01-01 00:01"), Some(60_000_000));
/// assert_eq!(hybridb::parse_datetime("yesterday"), None);
/// ```
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(days * 86_400_000_000);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    // Seconds may be left out (`12:30`, as Qdrant takes it), and then a fraction too.
    let (sec, mut i) = if b.get(16) == Some(&b':') {
        (num(17..19)?, 19)
    } else {
        (0, 16)
    };
    if b.get(13) != Some(&b':') || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut micros = 0i64;
    if i == 19 && b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i) {
        // No offset: UTC (Qdrant reads such a datetime as UTC too).
        None => 0,
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// Formats microseconds since the epoch as RFC 3339 in UTC.
pub(crate) fn format_datetime(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(
            parse_datetime("2024-05-01T12:00:00.5+02:00"),
            Some(parse_datetime("2024-05-01T10:00:00.500Z").unwrap())
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Some(-1_000_000));
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00.5Z",
            "2024-05-01T12",
            "2024-05-01T12:0",
            "2024-05-01X12:00:00Z",
            "2024-05-01T12:00:00+2:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        // Qdrant's other forms: no offset (UTC), no seconds, a space for the `T`.
        let noon = parse_datetime("2024-05-01T12:00:00Z");
        for same in [
            "2024-05-01T12:00:00",
            "2024-05-01T12:00",
            "2024-05-01 12:00",
            "2024-05-01T14:00+02:00",
        ] {
            assert_eq!(parse_datetime(same), noon, "{same}");
        }
        for t in [
            0,
            1,
            -1,
            1_714_564_800_000_000,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ] {
            assert_eq!(parse_datetime(&format_datetime(t)), Some(t), "{t}");
        }
        assert!(parse_datetime("2024-02-29T00:00:00Z").is_some());
    }
}
