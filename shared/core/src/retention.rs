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
/// Per-request usage records are deleted this long after the request (POLICY A5). EcomDrive's
/// per-request records are its logs (the HTTP API's access log, the functions' logs): CloudWatch
/// deletes them after the log groups' `RetentionInDays`, which template.yaml keeps within this
/// period and within [`IP_ADDRESS`], since the access log holds IP addresses (tested in the
/// suite's `template` module).
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

    /// A bound for range queries: every start whose period is over at `now` is at or before it.
    /// Exact for days; for years up to a day late (a period from 29 February ends on the 28th),
    /// so the caller still checks each candidate with [`Period::is_over`].
    pub fn latest_over_start(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Period::Days(days) => now - Duration::days(days),
            Period::Years(years) => {
                now.replace_date(years_after(now.date(), -years)) + Duration::days(1)
            }
        }
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

/// What the sweeper does to the IP address and user agent of an audit or usage record
/// (POLICY A5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpRetention {
    /// Within [`IP_ADDRESS`], already done, or nothing to anonymise.
    Keep,
    /// Keep only the network (`None`: not an address, so it is dropped) and drop the user agent:
    /// a full user agent beside a /24 network would still single out a device.
    Anonymise { network: Option<String> },
}

/// The A5 rule for one record made at `at`: from [`IP_ADDRESS`] after it, the IP address keeps
/// only its network and the user agent goes; once done (`anonymised`), nothing more happens.
pub fn ip_retention(
    at: OffsetDateTime,
    now: OffsetDateTime,
    ip: Option<&str>,
    user_agent: Option<&str>,
    anonymised: bool,
) -> IpRetention {
    if anonymised || (ip.is_none() && user_agent.is_none()) || !IP_ADDRESS.is_over(at, now) {
        return IpRetention::Keep;
    }
    IpRetention::Anonymise {
        network: ip.and_then(anonymised_ip),
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

    const SECOND: Duration = Duration::seconds(1);

    #[test]
    fn policy_a5_an_ip_address_is_kept_whole_until_the_90th_day() {
        let at = datetime!(2026-03-10 08:30:00 UTC);
        let end = datetime!(2026-06-08 08:30:00 UTC);
        let ua = Some("Mozilla/5.0");
        let rule = |now, ip, ua, done| ip_retention(at, now, ip, ua, done);
        assert_eq!(
            rule(end - SECOND, Some("127.0.0.1"), ua, false),
            IpRetention::Keep
        );
        assert_eq!(
            rule(end, Some("127.0.0.1"), ua, false),
            IpRetention::Anonymise {
                network: Some("127.0.0.0".into())
            }
        );
        // Not an address: dropped, not kept.
        assert_eq!(
            rule(end, Some("unknown"), None, false),
            IpRetention::Anonymise { network: None }
        );
        // A user agent alone is usage data too.
        assert_eq!(
            rule(end, None, ua, false),
            IpRetention::Anonymise { network: None }
        );
        // Done once; a job's record (no address, no agent) has nothing to do.
        assert_eq!(rule(end, Some("127.0.0.0"), None, true), IpRetention::Keep);
        assert_eq!(rule(end, None, None, false), IpRetention::Keep);
    }

    #[test]
    fn the_latest_over_start_bounds_every_start_whose_period_is_over() {
        let now = datetime!(2030-02-28 12:00:00 UTC);
        for period in [
            CLOSED_MERCHANT,
            IP_ADDRESS,
            COMMUNICATION_RECORDS,
            PAYMENT_RECORDS,
        ] {
            let bound = period.latest_over_start(now);
            // Every start over at `now` is at or before the bound...
            let mut start = bound + Duration::days(3);
            while start > bound {
                assert!(!period.is_over(start, now), "{period:?} from {start}");
                start -= Duration::hours(1);
            }
            // ...and the bound is at most a day past the last one that is over.
            assert!(period.is_over(bound - Duration::days(1), now), "{period:?}");
        }
        assert_eq!(
            IP_ADDRESS.latest_over_start(now),
            datetime!(2029-11-30 12:00:00 UTC)
        );
        // Two years from the leap day end on 28 February 2030: the bound covers it.
        assert!(COMMUNICATION_RECORDS.is_over(datetime!(2028-02-29 12:00:00 UTC), now));
        assert!(COMMUNICATION_RECORDS.latest_over_start(now) >= datetime!(2028-02-29 12:00:00 UTC));
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
