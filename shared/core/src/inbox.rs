//! The support inbox: customers, conversations and messages (POLICY E2, E5, E9, E10).

use crate::ids::{ConversationId, CustomerId, MerchantId, MessageId, Mid, PageId, Psid, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The channel a conversation happens on. Messenger today; Instagram and WhatsApp are new
/// adapters writing the same records (POLICY E2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Messenger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Pending,
    Resolved,
    Snoozed,
}

impl ConversationStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
    }

    /// A customer's new message reopens anything but an open conversation; a resolved one is
    /// finished, so the customer starts a new conversation instead.
    pub fn on_customer_message(self) -> CustomerMessageEffect {
        match self {
            ConversationStatus::Resolved => CustomerMessageEffect::StartNew,
            _ => CustomerMessageEffect::Reopen,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerMessageEffect {
    Reopen,
    StartNew,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// An outbound message moves `queued → sending → sent → delivered → read`, or ends `failed`
/// (POLICY E5). `sending` means a Send API call was made and its outcome is not known yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Received,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
        }
    }

    /// Watermarks only move a message forward, never back (a late delivery event after a read
    /// one changes nothing).
    pub fn advanced_by_watermark(self, to: MessageStatus) -> Option<MessageStatus> {
        let movable = matches!(self, MessageStatus::Sent | MessageStatus::Delivered);
        (movable && to > self).then_some(to)
    }

    /// Nothing more will happen to it on our side: it is never sent again.
    pub fn outcome_known(self) -> bool {
        !matches!(self, MessageStatus::Queued | MessageStatus::Sending)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub merchant_id: MerchantId,
    pub channel: Channel,
    pub page_id: PageId,
    pub psid: Psid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub merchant_id: MerchantId,
    pub channel: Channel,
    pub customer_id: CustomerId,
    pub page_id: PageId,
    pub psid: Psid,
    pub status: ConversationStatus,
    pub assignee: Option<UserId>,
    /// Order references an agent linked to this conversation (POLICY E9).
    #[serde(default)]
    pub order_refs: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    /// The customer's last message: the messaging window counts from here.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_customer_message_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttachment {
    pub kind: String,
    /// Where the file was copied (bucket key), once it was.
    pub object_key: Option<String>,
    /// `pending`, `stored`, `too_large`, `unavailable`.
    pub state: String,
    pub size: Option<u64>,
    pub content_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub merchant_id: MerchantId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub text: Option<String>,
    #[serde(default)]
    pub attachments: Vec<StoredAttachment>,
    pub status: MessageStatus,
    /// Meta's id, once known.
    pub mid: Option<Mid>,
    /// Who wrote an outbound message: one of our users, or a person in Meta's own inbox.
    pub author: Option<UserId>,
    /// A postback's payload or a reaction, when the message is one.
    pub postback_payload: Option<String>,
    pub reaction: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The platform's error when the message failed (code/subcode and Meta's words).
    pub error: Option<String>,
    /// Send attempts made (the at-most-once protocol of agent-reply).
    #[serde(default)]
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub attempt_started_at: Option<OffsetDateTime>,
}

/// The Send API `metadata` we put on a reply: Meta echoes it back, which is how an echo confirms a
/// reply whose Send API call timed out.
pub fn reply_metadata(conversation: &ConversationId, message: &MessageId) -> String {
    format!("ecomdrive:{conversation}:{message}")
}

pub fn parse_reply_metadata(raw: &str) -> Option<(ConversationId, MessageId)> {
    let mut parts = raw.strip_prefix("ecomdrive:")?.split(':');
    let c = ConversationId::parse(parts.next()?)?;
    let m = MessageId::parse(parts.next()?)?;
    parts.next().is_none().then_some((c, m))
}

/// The queue message kind of a reply job.
pub const REPLY_KIND: &str = "reply";

/// What the `replies` queue carries from the API to `agent-reply`: which reply to send (the text
/// stays in the store, so no message text travels through the queue).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplyJob {
    pub merchant_id: MerchantId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

/// The most text a reply may carry: the Send API's limit for a text message.
pub const MAX_REPLY_CHARS: usize = 2000;

pub fn validate_reply_text(raw: &str) -> Result<&str, &'static str> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("a reply needs text");
    }
    if t.chars().count() > MAX_REPLY_CHARS {
        return Err("a reply has at most 2000 characters");
    }
    Ok(t)
}

/// The client's idempotency key for a reply: short, printable, no separators.
pub fn validate_client_id(raw: &str) -> Result<&str, &'static str> {
    let ok = (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(raw)
        .ok_or("client_id is 1 to 100 characters of letters, digits, - _ . :")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_e5_watermarks_only_move_forward() {
        use MessageStatus::*;
        assert_eq!(Sent.advanced_by_watermark(Delivered), Some(Delivered));
        assert_eq!(Delivered.advanced_by_watermark(Read), Some(Read));
        assert_eq!(Sent.advanced_by_watermark(Read), Some(Read));
        assert_eq!(Read.advanced_by_watermark(Delivered), None);
        assert_eq!(Queued.advanced_by_watermark(Delivered), None);
        assert_eq!(Failed.advanced_by_watermark(Read), None);
    }

    #[test]
    fn resolved_conversations_are_not_reopened() {
        assert_eq!(
            ConversationStatus::Resolved.on_customer_message(),
            CustomerMessageEffect::StartNew
        );
        assert_eq!(
            ConversationStatus::Snoozed.on_customer_message(),
            CustomerMessageEffect::Reopen
        );
        assert_eq!(
            ConversationStatus::parse("pending"),
            Some(ConversationStatus::Pending)
        );
        assert_eq!(ConversationStatus::parse("closed"), None);
    }

    #[test]
    fn reply_metadata_round_trips_and_refuses_foreign_values() {
        let (c, m) = (ConversationId::generate(), MessageId::generate());
        assert_eq!(parse_reply_metadata(&reply_metadata(&c, &m)), Some((c, m)));
        assert_eq!(parse_reply_metadata("typed in Meta's inbox"), None);
        assert_eq!(parse_reply_metadata("ecomdrive:conv_x:msg_y:extra"), None);
    }

    #[test]
    fn reply_text_and_client_id_are_bounded() {
        assert_eq!(validate_reply_text("  hi "), Ok("hi"));
        assert!(validate_reply_text("   ").is_err());
        assert!(validate_reply_text(&"x".repeat(2001)).is_err());
        assert!(validate_client_id("web-123_a").is_ok());
        assert!(validate_client_id("").is_err());
        assert!(validate_client_id("a#b").is_err());
    }
}
