//! Amazon: the seller's marketplaces, orders, and the rules of review requests (POLICY A2, A7,
//! A10). Types and pure rules only; the SP-API client lives in `ecomdrive-platforms`.

pub mod jobs;
pub mod marketplace;
pub mod order;
pub mod pacing;
pub mod solicitation;

use serde::{Deserialize, Serialize};
use std::fmt;

// Calendar days as `YYYY-MM-DD` (stored, compared and shown as such).
time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");

/// Amazon's id of a seller account (`selling_partner_id` of the OAuth callback).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SellingPartnerId(String);

impl SellingPartnerId {
    /// Amazon's ids are upper-case alphanumerics (e.g. `A3EXAMPLE1234`); anything else is refused
    /// because it ends up inside our keys and the KMS encryption context.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (4..=32).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SellingPartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Amazon order id, `NNN-NNNNNNN-NNNNNNN` (3-7-7 digits), exactly as Amazon writes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AmazonOrderId(String);

impl AmazonOrderId {
    pub fn parse(raw: &str) -> Option<Self> {
        let parts: Vec<&str> = raw.split('-').collect();
        let ok = parts.len() == 3
            && parts
                .iter()
                .zip([3, 7, 7])
                .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AmazonOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_have_amazons_shape() {
        assert!(AmazonOrderId::parse("402-1234567-7654321").is_some());
        assert!(AmazonOrderId::parse("123-1234567-1234567").is_some());
        for bad in [
            "",
            "402-123456-7654321",
            "402-1234567-765432a",
            "402#1234567-7654321",
            "402-1234567-7654321-1",
        ] {
            assert!(AmazonOrderId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn selling_partner_ids_are_plain_alphanumerics() {
        assert!(SellingPartnerId::parse("A2DEMOSELLER01IN").is_some());
        assert!(SellingPartnerId::parse("A2#X").is_none());
        assert!(SellingPartnerId::parse("a b c d").is_none());
        assert!(SellingPartnerId::parse("").is_none());
    }
}

#[cfg(test)]
mod solicitation_properties;
