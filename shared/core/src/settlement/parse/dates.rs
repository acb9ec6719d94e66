//! Dates and times as settlement files write them, read by hand (they are on every line).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A date or a moment, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Day(Date),
    Moment(OffsetDateTime),
}

/// What the formats look like, for reasons.
const FORMATS: &str = "2026-10-05, 2026-10-05T10:00:00+00:00, 2026-10-05 10:00:00 UTC, \
                       05.10.2026 or 05.10.2026 10:00:00 UTC";

impl Written {
    /// The date as written (a moment's date in its own offset).
    pub(crate) fn day_as_written(self) -> Date {
        match self {
            Written::Day(day) => day,
            Written::Moment(moment) => moment.date(),
        }
    }

    /// The date where the clock shows `local` (a bare date stays as it is).
    pub(crate) fn day_at(self, local: UtcOffset) -> Result<Date, &'static str> {
        match self {
            Written::Day(day) => Ok(day),
            Written::Moment(moment) => moment
                .checked_to_offset(local)
                .map(OffsetDateTime::date)
                .ok_or("the date is out of range"),
        }
    }

    /// As a moment: a bare date is midnight UTC.
    pub(crate) fn moment(self) -> OffsetDateTime {
        match self {
            Written::Day(day) => day.midnight().assume_utc(),
            Written::Moment(moment) => moment,
        }
    }
}

/// Reads `2026-10-05`, `2026-10-05T10:00:00+00:00` (or `Z`, `+0530`, fractions of a second),
/// `2026-10-05 10:00:00 UTC`, `05.10.2026 10:00:00 UTC` and `05.10.2026`.
pub(crate) fn parse_written(text: &str) -> Result<Written, String> {
    let bytes = text.as_bytes();
    let wrong_format = || {
        format!(
            "{} is not a date as Amazon writes them ({FORMATS})",
            super::shown(text)
        )
    };
    let (day, rest) = if bytes.get(4) == Some(&b'-') {
        (
            year_month_day(bytes).ok_or_else(wrong_format)?,
            &bytes[10..],
        )
    } else if bytes.get(2) == Some(&b'.') {
        (
            day_month_year(bytes).ok_or_else(wrong_format)?,
            &bytes[10..],
        )
    } else {
        return Err(wrong_format());
    };
    let day = day.map_err(|why| format!("{}: {why}", super::shown(text)))?;
    if rest.is_empty() {
        return Ok(Written::Day(day));
    }
    let utc_clock = rest
        .strip_prefix(b" ")
        .and_then(|rest| rest.strip_suffix(b" UTC"));
    let moment = match (utc_clock, rest.strip_prefix(b"T")) {
        (Some(clock), _) if clock.len() == 8 => {
            let time = clock_time(clock).ok_or_else(wrong_format)?;
            time.map(|time| PrimitiveDateTime::new(day, time).assume_utc())
        }
        (_, Some(iso)) if bytes.get(4) == Some(&b'-') => {
            iso_moment(day, iso).ok_or_else(wrong_format)?
        }
        _ => return Err(wrong_format()),
    };
    moment
        .map(Written::Moment)
        .map_err(|why| format!("{}: {why}", super::shown(text)))
}

/// `YYYY-MM-DD` at the start; `None` when not in that shape, `Err` when no such day.
fn year_month_day(bytes: &[u8]) -> Option<Result<Date, &'static str>> {
    (bytes.get(7) == Some(&b'-')).then_some(())?;
    Some(calendar_day(
        number(bytes, 0, 4)?,
        number(bytes, 5, 2)?,
        number(bytes, 8, 2)?,
    ))
}

/// `DD.MM.YYYY` at the start.
fn day_month_year(bytes: &[u8]) -> Option<Result<Date, &'static str>> {
    (bytes.get(5) == Some(&b'.')).then_some(())?;
    Some(calendar_day(
        number(bytes, 6, 4)?,
        number(bytes, 3, 2)?,
        number(bytes, 0, 2)?,
    ))
}

fn calendar_day(year: u32, month: u32, day: u32) -> Result<Date, &'static str> {
    let month = u8::try_from(month)
        .ok()
        .and_then(|month| Month::try_from(month).ok())
        .ok_or("no such month")?;
    let year = i32::try_from(year).map_err(|_| "no such year")?;
    let day = u8::try_from(day).map_err(|_| "no such day")?;
    Date::from_calendar_date(year, month, day).map_err(|_| "no such day")
}

/// `HH:MM:SS`; `None` when not in that shape, `Err` when no such time.
fn clock_time(bytes: &[u8]) -> Option<Result<Time, &'static str>> {
    (bytes.len() >= 8 && bytes[2] == b':' && bytes[5] == b':').then_some(())?;
    let (hour, minute, second) = (
        number(bytes, 0, 2)?,
        number(bytes, 3, 2)?,
        number(bytes, 6, 2)?,
    );
    // A leap second (:60) is read as :59, as most systems do.
    let second = second.min(59);
    Some(Time::from_hms(hour as u8, minute as u8, second as u8).map_err(|_| "no such time"))
}

/// The part after `T` of an ISO 8601 moment: `HH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`.
fn iso_moment(day: Date, bytes: &[u8]) -> Option<Result<OffsetDateTime, &'static str>> {
    let time = match clock_time(bytes)? {
        Ok(time) => time,
        Err(why) => return Some(Err(why)),
    };
    let mut rest = &bytes[8..];
    let mut time = time;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let nanos = number(fraction, 0, digits)? * 10u32.pow(9 - digits as u32);
        time = time.replace_nanosecond(nanos).ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => Ok(UtcOffset::UTC),
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            offset(*sign, number(hh, 0, 2)?, number(&[*m1, *m2], 0, 2)?)
        }
        [sign @ (b'+' | b'-'), digits @ ..] if digits.len() == 4 => {
            offset(*sign, number(digits, 0, 2)?, number(digits, 2, 2)?)
        }
        _ => return None,
    };
    Some(offset.map(|offset| PrimitiveDateTime::new(day, time).assume_offset(offset)))
}

/// Offsets on Earth run from -12:00 to +14:00.
fn offset(sign: u8, hours: u32, minutes: u32) -> Result<UtcOffset, &'static str> {
    if hours > 14 || minutes > 59 {
        return Err("no such UTC offset");
    }
    let (hours, minutes) = (hours as i8, minutes as i8);
    let (hours, minutes) = if sign == b'-' {
        (-hours, -minutes)
    } else {
        (hours, minutes)
    };
    UtcOffset::from_hms(hours, minutes, 0).map_err(|_| "no such UTC offset")
}

/// `len` ASCII digits at `at`, as a number.
fn number(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let digits = bytes.get(at..at + len)?;
    digits.iter().try_fold(0u32, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}
