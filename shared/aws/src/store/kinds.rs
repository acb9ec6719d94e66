//! Every kind of record the table holds, as one enum.
//!
//! Every item is written with its kind in the `kind` attribute (see [`super::Store`]'s `item`), so
//! the data-rights jobs can enumerate what exists. The export and the deletion each decide per
//! kind in an exhaustive `match`: a new kind does not compile until both have said what happens to
//! it (POLICY A19).

use serde::{Deserialize, Serialize};

/// Where a kind of record lives, which decides who may see it and what a deletion must visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    /// In the merchant's partition `MERCHANT#<id>`: the merchant's own data.
    Merchant,
    /// In a user's partition `USER#<id>`.
    User,
    /// An index item elsewhere (ids only), kept in step with the merchant's or user's records.
    Index,
    /// Neither a merchant's nor a user's: short-lived protocol state or proof kept on its own.
    Standalone,
}

macro_rules! record_kinds {
    ($($variant:ident => $name:literal, $home:ident;)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RecordKind {
            $($variant,)+
        }

        impl RecordKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [RecordKind] = &[$(RecordKind::$variant,)+];

            /// The value of the item's `kind` attribute.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RecordKind::$variant => $name,)+
                }
            }

            pub const fn home(self) -> Home {
                match self {
                    $(RecordKind::$variant => Home::$home,)+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($name => Some(RecordKind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

record_kinds! {
    // the merchant and its people
    Merchant => "merchant", Merchant;
    Membership => "membership", Merchant;
    Invitation => "invitation", Merchant;
    Audit => "audit", Merchant;
    RateCounter => "rate_counter", Merchant;
    // Messenger
    MessengerAuthorization => "messenger_authorization", Merchant;
    PageConnection => "page_connection", Merchant;
    Customer => "customer", Merchant;
    Conversation => "conversation", Merchant;
    Message => "message", Merchant;
    MidMarker => "mid_marker", Merchant;
    ReplyKey => "reply_key", Merchant;
    // Amazon
    AmazonConnection => "amazon_connection", Merchant;
    AmazonSyncState => "amazon_sync_state", Merchant;
    Order => "order", Merchant;
    OrderLink => "order_link", Merchant;
    Solicitation => "solicitation", Merchant;
    SolicitationSettings => "solicitation_settings", Merchant;
    Pace => "pace", Merchant;
    // settlements and costs
    Settlement => "settlement", Merchant;
    SettlementDay => "settlement_day", Merchant;
    SettlementSkuDay => "settlement_sku_day", Merchant;
    SettlementOrder => "settlement_order", Merchant;
    SettlementUpload => "settlement_upload", Merchant;
    SettlementImportState => "settlement_import_state", Merchant;
    SettlementReport => "settlement_report", Merchant;
    UnitCost => "unit_cost", Merchant;
    // data rights
    ExportJob => "export_job", Merchant;
    // users
    User => "user", User;
    MembershipIndex => "membership_index", User;
    // index items (ids only)
    EmailIndex => "email_index", Index;
    InvitationIndex => "invitation_index", Index;
    PageOwnerIndex => "page_owner_index", Index;
    AmazonConnectedIndex => "amazon_connected_index", Index;
    MerchantIndex => "merchant_index", Index;
    FacebookUserIndex => "facebook_user_index", Index;
    MerchantDeletedIndex => "merchant_deleted_index", Index;
    // protocol state and proofs
    OAuthState => "oauth_state", Standalone;
    DeletionLink => "deletion_link", Standalone;
    DeletionReceipt => "deletion_receipt", Standalone;
    FormRateCounter => "form_rate_counter", Standalone;
}

/// A kind reads and writes as its `kind` attribute's value.
impl Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RecordKind::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown record kind {raw}")))
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for k in RecordKind::ALL {
            assert!(seen.insert(k.as_str()), "{k} twice");
            assert_eq!(RecordKind::parse(k.as_str()), Some(*k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        assert_eq!(RecordKind::parse("nope"), None);
    }
}
