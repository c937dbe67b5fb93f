//! The host's wall clock: [`now`] and the [`Timestamp`] it returns.

use std::fmt;
use std::time::Duration;

use crate::Error;

/// The wall clock, as the host reads it once per reconcile: every `now()`
/// within one call returns the same instant, so a reconcile stays a
/// function of its event, its cache reads and this time. Offline runs
/// (`kubewasm eval`, fixtures, [`TestHost`](crate::testing::TestHost)) take
/// it from the fixture, which keeps them reproducible.
///
/// ```
/// use kubewasm_guest::{testing::TestHost, Timestamp};
///
/// TestHost::new().now(Timestamp::parse("2026-12-04T03:15:00Z")?).install();
/// let now = kubewasm_guest::now();
/// assert_eq!(now.rfc3339(), "2026-12-04T03:15:00Z");
/// assert_eq!(now.epoch_ms(), 1_796_354_100_000);
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn now() -> Timestamp {
    crate::host::now()
}

/// A point in wall-clock time: milliseconds since the Unix epoch and the
/// same instant in RFC 3339 (UTC, second precision, the form Kubernetes
/// writes in `lastTransitionTime`).
///
/// ```
/// use kubewasm_guest::Timestamp;
///
/// let t = Timestamp::from_epoch_ms(1_700_000_000_500);
/// assert_eq!(t.rfc3339(), "2023-11-14T22:13:20Z");
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20Z");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    epoch_ms: i64,
    rfc3339: String,
}

impl Timestamp {
    /// The instant `epoch_ms` milliseconds after the Unix epoch (before it,
    /// if negative).
    ///
    /// ```
    /// let t = kubewasm_guest::Timestamp::from_epoch_ms(0);
    /// assert_eq!(t.rfc3339(), "1970-01-01T00:00:00Z");
    /// ```
    pub fn from_epoch_ms(epoch_ms: i64) -> Self {
        Timestamp {
            epoch_ms,
            rfc3339: format_rfc3339(epoch_ms),
        }
    }

    /// Parses an RFC 3339 time as Kubernetes writes them
    /// (`2026-03-01T10:00:04Z`), with optional fractional seconds and a
    /// `Z` or `±hh:mm` offset.
    ///
    /// ```
    /// use kubewasm_guest::Timestamp;
    /// let t = Timestamp::parse("2026-03-01T11:00:04.250+01:00")?;
    /// assert_eq!(t.rfc3339(), "2026-03-01T10:00:04Z");
    /// assert_eq!(t.epoch_ms() % 1000, 250);
    /// assert!(Timestamp::parse("yesterday").is_err());
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_rfc3339(text)
            .map(Timestamp::from_epoch_ms)
            .ok_or_else(|| Error::msg(format!("{text:?} is not an RFC 3339 time")))
    }

    /// Both forms as the host gave them (the component's import).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn from_parts(epoch_ms: i64, rfc3339: String) -> Self {
        Timestamp { epoch_ms, rfc3339 }
    }

    /// Milliseconds since the Unix epoch.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::Timestamp::from_epoch_ms(42).epoch_ms(), 42);
    /// ```
    pub fn epoch_ms(&self) -> i64 {
        self.epoch_ms
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-12-04T03:15:00Z`.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::Timestamp::from_epoch_ms(86_400_000).rfc3339(), "1970-01-02T00:00:00Z");
    /// ```
    pub fn rfc3339(&self) -> &str {
        &self.rfc3339
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kubewasm_guest::Timestamp;
    /// let ready_since = Timestamp::parse("2026-03-01T10:00:00Z")?;
    /// let now = Timestamp::parse("2026-03-01T10:05:00Z")?;
    /// assert_eq!(now.since(&ready_since), Duration::from_secs(300));
    /// assert_eq!(ready_since.since(&now), Duration::ZERO);
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn since(&self, earlier: &Timestamp) -> Duration {
        let ms = self.epoch_ms.saturating_sub(earlier.epoch_ms);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// The instant `delay` after this one (saturating).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = kubewasm_guest::Timestamp::from_epoch_ms(0).plus(Duration::from_secs(90));
    /// assert_eq!(t.rfc3339(), "1970-01-01T00:01:30Z");
    /// ```
    pub fn plus(&self, delay: Duration) -> Timestamp {
        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_epoch_ms(self.epoch_ms.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339)
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// `YYYY-MM-DDTHH:MM:SSZ` for an instant (whole seconds, rounded down).
fn format_rfc3339(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(MS_PER_DAY);
    let seconds = epoch_ms.rem_euclid(MS_PER_DAY) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Milliseconds since the epoch of an RFC 3339 time, or none if malformed.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..len.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[len..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (digits_of(&rest[1..3])?, digits_of(&rest[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
    };
    // A leap second reads as the last second of its minute.
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let local = ((days * 24 + hour) * 60 + minute) * 60 + second;
    Some((local - offset_minutes * 60) * 1000 + millis)
}

fn digits_of(part: &str) -> Option<i64> {
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "era"
/// algorithm: 400-year cycles of 146097 days, years starting in March).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:00:00Z", 951_825_600_000),
            ("2026-12-04T03:15:00Z", 1_796_354_100_000),
            ("1969-12-31T23:59:59Z", -1000),
            ("2100-03-01T00:00:00Z", 4_107_542_400_000),
        ] {
            assert_eq!(parse_rfc3339(text), Some(ms), "{text}");
            assert_eq!(format_rfc3339(ms), text);
        }
    }

    #[test]
    fn every_day_round_trips() {
        // 1960 to 2100, every day: the two conversions are inverses.
        for days in -3653..47_482 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }

    #[test]
    fn offsets_fractions_and_rounding() {
        assert_eq!(
            parse_rfc3339("2026-01-01T01:30:00+01:30"),
            parse_rfc3339("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.123456Z"), Some(123));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Some(500));
        // Negative instants round down to the whole second before them.
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn malformed_times_are_refused() {
        for text in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00+01:00junk",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Zulu",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
        assert_eq!(
            Timestamp::parse("soon").unwrap_err().message(),
            "\"soon\" is not an RFC 3339 time"
        );
    }
}
