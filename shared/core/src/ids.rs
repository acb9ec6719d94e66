//! Identifiers. Ours are ULIDs with a short prefix (sortable by creation time, readable in logs);
//! the platforms' (Page id, PSID, `mid`) are kept exactly as the platform sends them.

use serde::{Deserialize, Serialize};
use std::fmt;

fn rand_bits() -> u128 {
    // The random part of a ULID; Ulid::new() draws it from the thread RNG the same way.
    ulid::Ulid::new().random()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, ulid::Ulid::new().to_string().to_lowercase()))
            }

            /// An id whose time part is `unix_ms`: messages sort by when they were written,
            /// not by when we processed them.
            pub fn generate_at(unix_ms: u64) -> Self {
                let id = ulid::Ulid::from_parts(unix_ms, rand_bits());
                Self(format!("{}_{}", $prefix, id.to_string().to_lowercase()))
            }

            /// The largest id of this kind at `unix_ms`: an upper bound for range queries.
            pub fn max_at(unix_ms: u64) -> Self {
                let id = ulid::Ulid::from_parts(unix_ms, u128::MAX);
                Self(format!("{}_{}", $prefix, id.to_string().to_lowercase()))
            }

            /// Accepts only ids of this kind: a path segment is outside input.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix(concat!($prefix, "_"))?;
                let ok = (10..=64).contains(&rest.len())
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                ok.then(|| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A merchant: the business that uses EcomDrive. Every key of its data starts with it.
    MerchantId,
    "mer"
);
id_type!(ConversationId, "conv");
id_type!(CustomerId, "cus");
id_type!(
    /// A message in a conversation (inbound or outbound, ours, not Meta's `mid`).
    MessageId,
    "msg"
);
id_type!(AuditId, "aud");
id_type!(
    /// An export of a merchant's data (POLICY A19): its job, its file, its link.
    ExportId,
    "exp"
);
id_type!(
    /// A deletion: its confirmation code is this id, shown to whoever asked and kept on the receipt.
    DeletionId,
    "del"
);
id_type!(
    /// A settlement file uploaded through a presigned URL, imported asynchronously.
    SettlementUploadId,
    "stu"
);
id_type!(
    /// One Amazon connection of a merchant: jobs carry it, so a job queued before a disconnect
    /// (or a reconnect) finds it no longer current and does nothing.
    AmazonConnectionId,
    "acn"
);

macro_rules! platform_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Platform ids are opaque, but they end up inside our keys: only plain ASCII
            /// without our key separator is accepted.
            pub fn parse(raw: &str) -> Option<Self> {
                let ok = !raw.is_empty()
                    && raw.len() <= 256
                    && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
                ok.then(|| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

platform_id!(
    /// A Facebook Page id.
    PageId
);
platform_id!(
    /// A customer's page-scoped id on Messenger.
    Psid
);
platform_id!(
    /// Meta's message id (`mid`): the key that makes ingest idempotent.
    Mid
);
platform_id!(
    /// The Cognito `sub` of a user.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_foreign_kinds_do_not() {
        let m = MerchantId::generate();
        assert_eq!(MerchantId::parse(m.as_str()), Some(m.clone()));
        assert_eq!(ConversationId::parse(m.as_str()), None);
        assert_eq!(MerchantId::parse("mer_"), None);
        assert_eq!(MerchantId::parse("mer_../../etc/passwd"), None);
    }

    #[test]
    fn platform_ids_refuse_our_key_separator_and_blanks() {
        assert!(PageId::parse("1000000001").is_some());
        assert!(PageId::parse("").is_none());
        assert!(PageId::parse("1#MERCHANT").is_none());
        assert!(Psid::parse("a b").is_none());
    }
}
