//! Pure builders for the webhook bodies Meta POSTs for a Page (no I/O), so a test can build a
//! delivery, sign it with [`crate::sign`] and send it any way it likes.
//!
//! A delivery is an envelope `{"object":"page","entry":[...]}`; each entry names the Page and
//! carries `messaging` events (or `standby` events while another app has thread control).
//! Timestamps are milliseconds since the Unix epoch, as Meta sends them.

use serde_json::{Value, json};

/// The whole body of one POST: `object` and its `entry` list.
/// ("Webhooks for Messenger" / "Webhook Events Reference": Meta may batch several entries.)
pub fn envelope(entries: Vec<Value>) -> Value {
    json!({ "object": "page", "entry": entries })
}

/// One entry of a Page with its `messaging` events.
pub fn entry(page_id: &str, time_ms: i64, messaging: Vec<Value>) -> Value {
    json!({ "id": page_id, "time": time_ms, "messaging": messaging })
}

/// One entry of a Page with `standby` events (the `standby` field: events for a thread that
/// another app controls; "message_echoes Webhook Event Reference", example 2).
pub fn standby_entry(page_id: &str, time_ms: i64, standby: Vec<Value>) -> Value {
    json!({ "id": page_id, "time": time_ms, "standby": standby })
}

/// A delivery of one Page with one `messaging` event, the common case.
pub fn single(page_id: &str, time_ms: i64, event: Value) -> Value {
    envelope(vec![entry(page_id, time_ms, vec![event])])
}

/// A customer's text message ("messages Webhook Event Reference").
pub fn message_event(page_id: &str, psid: &str, timestamp_ms: i64, mid: &str, text: &str) -> Value {
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "timestamp": timestamp_ms,
        "message": { "mid": mid, "text": text },
    })
}

/// A customer's message with one attachment ("messages Webhook Event Reference":
/// `attachments: [{type: image|video|audio|file, payload: {url}}]`).
pub fn attachment_event(
    page_id: &str,
    psid: &str,
    timestamp_ms: i64,
    mid: &str,
    kind: &str,
    url: &str,
) -> Value {
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "timestamp": timestamp_ms,
        "message": {
            "mid": mid,
            "attachments": [ { "type": kind, "payload": { "url": url } } ],
        },
    })
}

/// A tap on a postback button ("messaging_postbacks Webhooks Reference").
pub fn postback_event(
    page_id: &str,
    psid: &str,
    timestamp_ms: i64,
    mid: &str,
    title: &str,
    payload: &str,
) -> Value {
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "timestamp": timestamp_ms,
        "postback": { "mid": mid, "title": title, "payload": payload },
    })
}

/// The emoji Meta pairs with each reaction name ("message_reactions Webhook Event Reference").
pub fn reaction_emoji(reaction: &str) -> Option<&'static str> {
    match reaction {
        "love" => Some("\u{2764}\u{FE0F}"),
        "like" => Some("\u{1F44D}"),
        "smile" => Some("\u{1F606}"),
        "wow" => Some("\u{1F62E}"),
        "sad" => Some("\u{1F622}"),
        "angry" => Some("\u{1F620}"),
        "dislike" => Some("\u{1F44E}"),
        _ => None,
    }
}

/// A reaction to (or its removal from) a message ("message_reactions Webhook Event Reference":
/// `reaction: {reaction, emoji, action: react|unreact, mid}`).
pub fn reaction_event(
    page_id: &str,
    psid: &str,
    timestamp_ms: i64,
    mid: &str,
    reaction: &str,
    action: &str,
) -> Value {
    let mut body = json!({ "reaction": reaction, "action": action, "mid": mid });
    if let Some(emoji) = reaction_emoji(reaction) {
        body["emoji"] = json!(emoji);
    }
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "timestamp": timestamp_ms,
        "reaction": body,
    })
}

/// Delivery receipt for the Page's messages ("message_deliveries Webhook Event Reference":
/// `watermark` always, `mids` only sometimes, so it is left out when empty).
pub fn delivery_event(page_id: &str, psid: &str, watermark_ms: i64, mids: &[String]) -> Value {
    let mut delivery = json!({ "watermark": watermark_ms });
    if !mids.is_empty() {
        delivery["mids"] = json!(mids);
    }
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "delivery": delivery,
    })
}

/// Read receipt ("message_reads Webhook Event Reference": everything up to `watermark` was read).
pub fn read_event(page_id: &str, psid: &str, timestamp_ms: i64, watermark_ms: i64) -> Value {
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page_id },
        "timestamp": timestamp_ms,
        "read": { "watermark": watermark_ms },
    })
}

/// What the app wants echoed: the fields of a Send API `message` that the echo carries.
#[derive(Debug, Clone, Default)]
pub struct EchoContent<'a> {
    pub text: Option<&'a str>,
    pub metadata: Option<&'a str>,
    /// `message.attachment` as sent, echoed as `attachments: [..]`.
    pub attachment: Option<&'a Value>,
}

/// The echo of a message the Page sent ("message_echoes Webhook Event Reference": sender is the
/// Page, recipient the customer, `message.is_echo`, `app_id` (a number), `metadata`, `mid`).
pub fn echo_event(
    page_id: &str,
    psid: &str,
    timestamp_ms: i64,
    app_id: &str,
    mid: &str,
    content: &EchoContent<'_>,
) -> Value {
    // Meta sends app_id as a JSON number; keep a non-numeric id as a string rather than lose it.
    let app_id = app_id
        .parse::<u64>()
        .map_or_else(|_| json!(app_id), |n| json!(n));
    let mut message = json!({ "is_echo": true, "app_id": app_id, "mid": mid });
    if let Some(text) = content.text {
        message["text"] = json!(text);
    }
    if let Some(metadata) = content.metadata {
        message["metadata"] = json!(metadata);
    }
    if let Some(attachment) = content.attachment {
        message["attachments"] = json!([attachment]);
    }
    json!({
        "sender": { "id": page_id },
        "recipient": { "id": psid },
        "timestamp": timestamp_ms,
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_removal_keeps_the_documented_fields() {
        let event = reaction_event("1", "2", 10, "m_x", "love", "unreact");
        assert_eq!(event["reaction"]["action"], "unreact");
        assert_eq!(event["reaction"]["mid"], "m_x");
        assert_eq!(event["reaction"]["emoji"], "\u{2764}\u{FE0F}");
        let other = reaction_event("1", "2", 10, "m_x", "other", "react");
        assert!(other["reaction"].get("emoji").is_none());
    }

    #[test]
    fn delivery_leaves_out_mids_when_there_are_none() {
        let event = delivery_event("1", "2", 99, &[]);
        assert_eq!(event["delivery"]["watermark"], 99);
        assert!(event["delivery"].get("mids").is_none());
        let with = delivery_event("1", "2", 99, &["m_a".to_owned()]);
        assert_eq!(with["delivery"]["mids"], json!(["m_a"]));
    }

    #[test]
    fn echo_sends_a_numeric_app_id_as_a_number() {
        let content = EchoContent {
            text: Some("hi"),
            metadata: Some("reply:1"),
            attachment: None,
        };
        let event = echo_event("1", "2", 10, "1234", "m_y", &content);
        assert_eq!(event["message"]["app_id"], json!(1234));
        assert_eq!(event["message"]["metadata"], "reply:1");
        assert_eq!(event["sender"]["id"], "1");
        assert_eq!(event["recipient"]["id"], "2");
    }
}
