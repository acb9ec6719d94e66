//! Every key of the single table, in one place.
//!
//! Tenant isolation is structural (DESIGN.md principle 4): every item of a merchant's data lives in
//! the partition `MERCHANT#<id>`. The few lookups that must start elsewhere are the *index items*
//! at the bottom of this file; they hold ids only, never the data itself.

use ecomdrive_core::amazon::AmazonOrderId;
use ecomdrive_core::ids::{
    ConversationId, CustomerId, MerchantId, MessageId, Mid, PageId, Psid, UserId,
};
use ecomdrive_core::settlement::SettlementId;
use time::Date;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// DynamoDB's TTL attribute (epoch seconds). Reads must ignore expired items: TTL deletes lag.
pub const EXPIRES_AT: &str = "expires_at";
/// The record kind of every item, so exports and deletions can enumerate what exists.
pub const KIND: &str = "kind";

// ---- the merchant's partition -------------------------------------------------------------

pub fn merchant_pk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}")
}
pub const MERCHANT_PROFILE_SK: &str = "PROFILE";

pub fn member_sk(u: &UserId) -> String {
    format!("MEMBER#{u}")
}
pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn invite_sk(email: &str) -> String {
    format!("INVITE#{email}")
}
pub const INVITE_PREFIX: &str = "INVITE#";

pub const MESSENGER_AUTH_SK: &str = "MESSENGER#AUTH";
pub fn page_sk(p: &PageId) -> String {
    format!("PAGE#{p}")
}
pub const PAGE_PREFIX: &str = "PAGE#";

pub fn customer_sk(c: &CustomerId) -> String {
    format!("CUSTOMER#{c}")
}

pub fn conversation_sk(c: &ConversationId) -> String {
    format!("CONV#{c}")
}
/// Conversations by most recent activity: one GSI1 partition per merchant.
pub fn conversations_by_activity_pk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}#CONVS")
}
pub fn conversations_by_activity_sk(activity_ms: i64, c: &ConversationId) -> String {
    format!("{activity_ms:015}#{c}")
}

/// Messages sort by their id, a ULID made from the message's own time: oldest first.
pub fn message_sk(c: &ConversationId, m: &MessageId) -> String {
    format!("MSG#{c}#{m}")
}
pub fn messages_prefix(c: &ConversationId) -> String {
    format!("MSG#{c}#")
}
/// Marks a Meta `mid` as stored: the conditional put that makes ingest idempotent.
pub fn mid_sk(mid: &Mid) -> String {
    format!("MID#{mid}")
}
/// A reply's client idempotency key within its conversation.
pub fn reply_key_sk(c: &ConversationId, client_id: &str) -> String {
    format!("REPLYKEY#{c}#{client_id}")
}

pub fn audit_sk(id: &ecomdrive_core::ids::AuditId) -> String {
    format!("AUDIT#{id}")
}
pub const AUDIT_PREFIX: &str = "AUDIT#";

/// An export job of the merchant's data, and its file once done.
pub fn export_sk(id: &ecomdrive_core::ids::ExportId) -> String {
    format!("EXPORT#{id}")
}
pub const EXPORT_PREFIX: &str = "EXPORT#";

pub fn rate_sk(scope: &str, window_start: i64) -> String {
    format!("RATE#{scope}#{window_start}")
}

// ---- Amazon (POLICY A2, A7, A10, A11) ---------------------------------------------------------

pub const AMAZON_CONNECTION_SK: &str = "AMAZON#CONNECTION";
pub const AMAZON_SYNC_SK: &str = "AMAZON#SYNC";
pub const SOLICITATION_SETTINGS_SK: &str = "AMAZON#SOLICITATION_SETTINGS";

pub fn order_sk(o: &AmazonOrderId) -> String {
    format!("ORDER#{o}")
}
pub const ORDER_PREFIX: &str = "ORDER#";
/// Orders by purchase date: one GSI1 partition per merchant.
pub fn orders_by_purchase_pk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}#ORDERS")
}
pub fn orders_by_purchase_sk(purchase_ms: i64, o: &AmazonOrderId) -> String {
    format!("{purchase_ms:015}#{o}")
}

/// An order's link to a conversation (POLICY E9), kept apart from the order so a link may come
/// before order sync has seen the order.
pub fn order_link_sk(o: &AmazonOrderId, c: &ConversationId) -> String {
    format!("ORDERLINK#{o}#{c}")
}
pub fn order_links_prefix(o: &AmazonOrderId) -> String {
    format!("ORDERLINK#{o}#")
}
pub const ORDER_LINK_PREFIX: &str = "ORDERLINK#";

/// An order's review request: its status, and the claim of whoever is sending it.
pub fn solicitation_sk(o: &AmazonOrderId) -> String {
    format!("SOLICIT#{o}")
}
pub const SOLICITATION_PREFIX: &str = "SOLICIT#";

/// The token bucket pacing one SP-API operation for the merchant's seller account.
pub fn pace_sk(operation: &str) -> String {
    format!("PACE#{operation}")
}

// ---- the user's partition -----------------------------------------------------------------

pub fn user_pk(u: &UserId) -> String {
    format!("USER#{u}")
}
pub const USER_PROFILE_SK: &str = "PROFILE";

// ---- index items: lookups that cannot start from a merchant (ids only) -----------------------

/// user → the merchants they belong to.
pub fn membership_index_sk(m: &MerchantId) -> String {
    format!("MEMBER_OF#{m}")
}
pub const MEMBERSHIP_INDEX_PREFIX: &str = "MEMBER_OF#";

/// e-mail → user (so an invitation can find an existing user).
pub fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}
pub const EMAIL_USER_SK: &str = "USER";

/// e-mail → merchants that invited it, until the user's first authenticated request.
pub fn invite_index_pk(email: &str) -> String {
    format!("INVITE#{email}")
}
pub fn invite_index_sk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}")
}

/// Page → the merchant that connected it: webhook routing (POLICY E1) and one merchant per Page.
pub fn page_owner_pk(p: &PageId) -> String {
    format!("PAGE#{p}")
}
pub const PAGE_OWNER_SK: &str = "OWNER";

/// OAuth `state` → its pending authorization (single use, expires).
pub fn oauth_state_pk(state_id: &str) -> String {
    format!("OAUTH#{state_id}")
}
pub const OAUTH_STATE_SK: &str = "STATE";

/// Every merchant with a live Amazon connection: the scheduled jobs' fan-out list.
pub const AMAZON_CONNECTED_PK: &str = "AMAZON#CONNECTED";
pub fn amazon_connected_sk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}")
}

/// Every merchant (ids only): the retention sweeper's list of partitions to visit.
pub const MERCHANTS_PK: &str = "MERCHANTS";
pub fn merchant_index_sk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}")
}

/// A Facebook user (app-scoped id) → a merchant where they authorized Pages: Meta's data
/// deletion and deauthorize callbacks name the Facebook user, not our user.
pub fn facebook_user_pk(facebook_user_id: &str) -> String {
    format!("FBUSER#{facebook_user_id}")
}
pub fn facebook_user_sk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}")
}

/// A deletion and its receipt (POLICY A19): confirmation code, dates, counts per kind, status.
/// Outside the merchant's partition, so it outlives the deletion it proves.
pub fn deletion_pk(id: &ecomdrive_core::ids::DeletionId) -> String {
    format!("DELETION#{id}")
}
pub const DELETION_RECEIPT_SK: &str = "RECEIPT";

/// A deleted (or being deleted) merchant → its deletion: its routes answer 410 Gone, not 404.
pub fn merchant_deleted_pk(m: &MerchantId) -> String {
    format!("DELETED#{m}")
}
pub const MERCHANT_DELETED_SK: &str = "DELETION";

/// A link e-mailed by the public deletion form: single use, expires (TTL).
pub fn deletion_link_pk(link_id: &str) -> String {
    format!("DELLINK#{link_id}")
}
pub const DELETION_LINK_SK: &str = "LINK";

/// Rate-limit counters of the public form, keyed by a hash of what is limited (IP or e-mail).
pub fn form_rate_pk(scope_hash: &str) -> String {
    format!("FORMRATE#{scope_hash}")
}

/// The deterministic customer id of a (Page, PSID) within a merchant: the same customer however
/// often or concurrently their messages arrive.
pub fn customer_id_for(m: &MerchantId, page: &PageId, psid: &Psid) -> CustomerId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{m}|{page}|{psid}").as_bytes());
    let id = format!("{}_{}", CustomerId::PREFIX, hex::encode(&digest[..13]));
    CustomerId::parse(&id).expect("hex digest is a valid id body")
}

// ---- settlements, COGS (POLICY A3, A8) -------------------------------------------------------

/// A settlement: its summary and import state.
pub fn settlement_sk(s: &SettlementId) -> String {
    format!("SETTLEMENT#{s}")
}
pub const SETTLEMENT_PREFIX: &str = "SETTLEMENT#";
/// Sums of one posted day of one settlement: day first, so a period is one range query.
pub fn settlement_day_sk(day: Date, s: &SettlementId) -> String {
    format!("STLDAY#{day}#{s}")
}
pub const SETTLEMENT_DAY_PREFIX: &str = "STLDAY#";
/// Sums of one SKU on one posted day of one settlement.
pub fn settlement_sku_sk(day: Date, sku: &str, s: &SettlementId) -> String {
    format!("STLSKU#{day}#{s}#{sku}")
}
pub const SETTLEMENT_SKU_PREFIX: &str = "STLSKU#";
/// One run of an order's lines in one settlement, by the run's ordinal in the file (an order's
/// runs share the prefix).
pub fn settlement_order_sk(order_id: &str, s: &SettlementId, run: u64) -> String {
    format!("STLORDER#{order_id}#{s}#{run:012}")
}
pub fn settlement_order_prefix(order_id: &str) -> String {
    format!("STLORDER#{order_id}#")
}
/// Settled order runs by posted day: one GSI1 partition per merchant.
pub fn settlement_orders_by_day_pk(m: &MerchantId) -> String {
    format!("MERCHANT#{m}#STLORDERS")
}
pub fn settlement_orders_by_day_sk(
    day: Date,
    order_id: &str,
    s: &SettlementId,
    run: u64,
) -> String {
    format!("{day}#{order_id}#{s}#{run:012}")
}
/// Which settlement reports the scheduled import has seen.
pub const SETTLEMENT_IMPORT_SK: &str = "AMAZON#SETTLEMENT_IMPORT";
/// A large file uploaded through a presigned URL, and its import's status.
pub fn settlement_upload_sk(upload_id: &str) -> String {
    format!("STLUPLOAD#{upload_id}")
}
/// A unit cost of a SKU from a date on.
pub fn unit_cost_sk(sku: &str, effective_from: Date) -> String {
    format!("COGS#{sku}#{effective_from}")
}
pub const UNIT_COST_PREFIX: &str = "COGS#";
/// A settlement report the scheduled import has imported (report id → settlement id).
pub fn settlement_report_sk(report_id: &str) -> String {
    format!("STLREPORT#{report_id}")
}
