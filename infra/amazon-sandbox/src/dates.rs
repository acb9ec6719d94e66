//! Dates as the Orders API writes and reads them: ISO 8601, UTC, whole seconds, `Z`.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2025-03-01T10:20:30Z`, the form of every date in Amazon's order JSON.
pub fn iso(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// A date parameter such as `LastUpdatedAfter`: RFC 3339, or another ISO 8601 date-time with
/// an offset (`20250301T102030Z`).
pub fn parse_iso(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(raw, &Iso8601::DEFAULT))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_are_written_in_utc_with_whole_seconds() {
        assert_eq!(
            iso(datetime!(2025-03-01 15:50:30.999 +05:30)),
            "2025-03-01T10:20:30Z"
        );
    }

    #[test]
    fn dates_parse_from_rfc3339_and_basic_iso_8601() {
        let expected = datetime!(2025-03-01 10:20:30 UTC);
        assert_eq!(parse_iso("2025-03-01T10:20:30Z"), Some(expected));
        assert_eq!(parse_iso("2025-03-01T15:50:30+05:30"), Some(expected));
        assert_eq!(parse_iso("20250301T102030Z"), Some(expected));
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("TEST_CASE_200"), None);
    }
}
