//! The marketplaces EcomDrive serves, with what the rules need to know about each: where its
//! sellers consent, which SP-API region answers for it, its currency and its clock.
//!
//! India is the only one today. Its time zone (IST, UTC+05:30) has no daylight saving time, so a
//! fixed offset is exact; a marketplace with DST would need a zone database here.

use time::{Date, OffsetDateTime, UtcOffset};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpApiRegion {
    /// `sellingpartnerapi-eu.amazon.com`: Europe, the Middle East and India.
    Eu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marketplace {
    pub id: &'static str,
    pub country_code: &'static str,
    pub name: &'static str,
    pub currency: &'static str,
    /// Where the seller is sent to consent (Seller Central of that country).
    pub seller_central: &'static str,
    pub region: SpApiRegion,
    pub utc_offset: UtcOffset,
}

pub const INDIA: Marketplace = Marketplace {
    id: "A21TJRUUN4KGV",
    country_code: "IN",
    name: "Amazon.in",
    currency: "INR",
    seller_central: "https://sellercentral.amazon.in",
    region: SpApiRegion::Eu,
    utc_offset: match UtcOffset::from_hms(5, 30, 0) {
        Ok(o) => o,
        Err(_) => panic!("IST is a valid offset"),
    },
};

pub const SUPPORTED: &[Marketplace] = &[INDIA];

pub fn by_id(id: &str) -> Option<&'static Marketplace> {
    SUPPORTED.iter().find(|m| m.id == id)
}

impl Marketplace {
    /// The calendar date in this marketplace at instant `t`.
    pub fn local_date(&self, t: OffsetDateTime) -> Date {
        t.to_offset(self.utc_offset).date()
    }

    /// The instant this marketplace's day `d` begins.
    pub fn start_of_day(&self, d: Date) -> OffsetDateTime {
        d.midnight().assume_offset(self.utc_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn india_days_start_at_midnight_ist() {
        // 20:00 UTC is already the next day in India (01:30 IST).
        assert_eq!(
            INDIA.local_date(datetime!(2026-11-21 20:00 UTC)),
            date!(2026 - 11 - 22)
        );
        assert_eq!(
            INDIA.local_date(datetime!(2026-11-21 18:29 UTC)),
            date!(2026 - 11 - 21)
        );
        assert_eq!(
            INDIA.start_of_day(date!(2026 - 11 - 22)),
            datetime!(2026-11-21 18:30 UTC)
        );
        assert_eq!(by_id("A21TJRUUN4KGV"), Some(&INDIA));
        assert_eq!(by_id("ATVPDKIKX0DER"), None);
    }
}
