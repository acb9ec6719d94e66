//! What the sandbox was asked and what it answered, for tests and for a person to look at.
//!
//! Records never hold a token: paths are kept without their query string.

use serde::Serialize;
use time::OffsetDateTime;

/// One HTTP call to the sandbox's Graph/dialog endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphCall {
    pub method: String,
    /// The path only (no query string, so no `access_token`).
    pub path: String,
    /// The HTTP status the sandbox answered.
    pub status: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One Send API call, accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentMessage {
    /// The Page the message was sent as (empty when the token named none).
    pub page_id: String,
    /// The customer's PSID from `recipient.id` (empty when missing).
    pub recipient_id: String,
    /// `RESPONSE`, `UPDATE` or `MESSAGE_TAG` as sent (empty when missing).
    pub messaging_type: String,
    pub tag: Option<String>,
    /// `message.text` (empty for attachments and sender actions).
    pub text: String,
    pub metadata: Option<String>,
    /// `sender_action` (`typing_on`, `mark_seen`...) when the call was one.
    pub sender_action: Option<String>,
    /// The HTTP status the sandbox answered.
    pub status: u16,
    pub error_code: Option<i64>,
    pub error_subcode: Option<i64>,
    /// The `message_id` answered when the message was accepted.
    pub message_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl SentMessage {
    pub fn accepted(&self) -> bool {
        self.status == 200
    }
}

/// One webhook POST the sandbox made (a simulated customer event or an echo).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// The webhook field it stands for: `messages`, `message_echoes`, `standby`, `raw`...
    pub field: String,
    pub body: serde_json::Value,
    /// The webhook's HTTP status, or `None` when it gave no HTTP answer.
    pub status: Option<u16>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
