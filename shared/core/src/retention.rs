//! Retention (POLICY A20, A5, E16): each period of the privacy policy as a named constant, and
//! the moment each one ends. DynamoDB TTL applies them where it can (`expires_at`), the
//! `retention-sweeper` does the rest; both ask this module, so a period changes in one place.

use time::{Date, Duration, Month, OffsetDateTime};

/// How long something is kept: a number of days, or of calendar years (a year after 29 February
/// ends on 28 February).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Days(i64),
    Years(i32),
}

/// A merchant who closed the account (without asking for deletion) is deleted this long after.
pub const CLOSED_MERCHANT: Period = Period::Days(90);
/// A deletion request is carried out within this (POLICY A19): the jobs finish well inside it.
pub const DELETION_DEADLINE: Period = Period::Days(30);
/// Audit and usage records keep the IP address this long, then only its network (POLICY A5).
pub const IP_ADDRESS: Period = Period::Days(90);
/// Per-request usage records are deleted this long after the request (POLICY A5).
pub const USAGE_RECORDS: Period = Period::Days(180);
/// Communication records: a conversation with no message for this long is deleted (POLICY A20).
pub const COMMUNICATION_RECORDS: Period = Period::Years(2);
/// Audit records are deleted this long after the action they record.
pub const AUDIT_RECORDS: Period = Period::Years(2);
/// Payment records the law makes us keep (POLICY A20), even after a merchant is deleted.
pub const PAYMENT_RECORDS: Period = Period::Years(7);

impl Period {
    /// The moment a period that started at `start` ends.
    pub fn end(self, start: OffsetDateTime) -> OffsetDateTime {
        match self {
            Period::Days(days) => start + Duration::days(days),
            Period::Years(years) => start.replace_date(years_after(start.date(), years)),
        }
    }

    /// True from the moment the period is over: `now` at or after its end.
    pub fn is_over(self, start: OffsetDateTime, now: OffsetDateTime) -> bool {
        now >= self.end(start)
    }
}

/// The same day `years` later; 29 February becomes 28 February in a year without one.
fn years_after(day: Date, years: i32) -> Date {
    let year = day.year() + years;
    Date::from_calendar_date(year, day.month(), day.day())
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .unwrap_or(day)
}

/// An IP address with its host part removed (POLICY A5): IPv4 keeps its /24 network, IPv6 its
/// /48. `None` for text that is not an IP address (it is then dropped, not kept).
pub fn anonymised_ip(ip: &str) -> Option<String> {
    match ip.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(std::net::Ipv4Addr::new(a, b, c, 0).to_string())
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NANO: Duration = Duration::nanoseconds(1);

    #[test]
    fn policy_a20_each_period_ends_exactly_when_the_policy_says() {
        let start = datetime!(2026-03-10 08:30:00 UTC);
        for (period, end) in [
            (CLOSED_MERCHANT, datetime!(2026-06-08 08:30:00 UTC)),
            (DELETION_DEADLINE, datetime!(2026-04-09 08:30:00 UTC)),
            (IP_ADDRESS, datetime!(2026-06-08 08:30:00 UTC)),
            (USAGE_RECORDS, datetime!(2026-09-06 08:30:00 UTC)),
            (COMMUNICATION_RECORDS, datetime!(2028-03-10 08:30:00 UTC)),
            (AUDIT_RECORDS, datetime!(2028-03-10 08:30:00 UTC)),
            (PAYMENT_RECORDS, datetime!(2033-03-10 08:30:00 UTC)),
        ] {
            assert_eq!(period.end(start), end, "{period:?}");
            assert!(
                !period.is_over(start, end - NANO),
                "{period:?} not yet over"
            );
            assert!(period.is_over(start, end), "{period:?} over at its end");
            assert!(
                period.is_over(start, end + Duration::days(400)),
                "{period:?}"
            );
        }
    }

    #[test]
    fn policy_a20_calendar_years_from_a_leap_day_end_on_the_28th() {
        let leap_day = datetime!(2028-02-29 12:00:00 UTC);
        assert_eq!(
            COMMUNICATION_RECORDS.end(leap_day),
            datetime!(2030-02-28 12:00:00 UTC)
        );
        assert_eq!(
            Period::Years(4).end(leap_day),
            datetime!(2032-02-29 12:00:00 UTC)
        );
    }

    #[test]
    fn policy_a5_ip_addresses_keep_only_their_network() {
        assert_eq!(
            anonymised_ip("203.0.113.77").as_deref(),
            Some("203.0.113.0")
        );
        assert_eq!(
            anonymised_ip("2001:db8:85a3:8d3:1319:8a2e:370:7348").as_deref(),
            Some("2001:db8:85a3::")
        );
        assert_eq!(anonymised_ip(" 10.1.2.3 ").as_deref(), Some("10.1.2.0"));
        assert_eq!(anonymised_ip("not an address"), None);
        assert_eq!(anonymised_ip(""), None);
        // Already anonymised: the same again.
        assert_eq!(anonymised_ip("203.0.113.0").as_deref(), Some("203.0.113.0"));
    }
}
