//! Messenger webhook deliveries: the signature Meta puts on them and the events inside them.
//!
//! One delivery can batch several entries (Pages) and several events each, under `messaging` (the
//! Page's primary receiver) or `standby` (another app holds the thread). Every event is read; a kind
//! we don't handle is counted and skipped, never an error, so a new Meta event type cannot stall the
//! queue. Shapes: Meta's "Webhooks for Messenger Platform" reference (messages, message_echoes,
//! message_deliveries, message_reads, messaging_postbacks, message_reactions).

use crate::ids::{Mid, PageId, Psid};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use time::OffsetDateTime;

/// The most a webhook body may be; larger ones are refused with 413 before any work.
pub const MAX_DELIVERY_BYTES: usize = 1024 * 1024;

/// Checks `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
pub fn signature_is_valid(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The value Meta would send for `body`: used by tests and the sandbox's customer simulator.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// `image`, `video`, `audio`, `file`, ... as Meta names it.
    pub kind: String,
    /// Meta's CDN URL; it expires, which is why ingest copies the file.
    pub url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessengerEvent {
    /// A customer wrote to the Page.
    Message {
        page: PageId,
        psid: Psid,
        mid: Mid,
        at: OffsetDateTime,
        text: Option<String>,
        attachments: Vec<Attachment>,
    },
    /// A message the Page sent, echoed back: ours (with our `metadata`) or typed in Meta's inbox.
    Echo {
        page: PageId,
        psid: Psid,
        mid: Mid,
        at: OffsetDateTime,
        text: Option<String>,
        attachments: Vec<Attachment>,
        metadata: Option<String>,
    },
    /// Every message the Page sent to `psid` before `watermark` was delivered.
    Delivered {
        page: PageId,
        psid: Psid,
        watermark: OffsetDateTime,
    },
    /// Every message the Page sent to `psid` before `watermark` was read.
    Read {
        page: PageId,
        psid: Psid,
        watermark: OffsetDateTime,
    },
    /// The customer tapped a button; it opens the messaging window like a message does.
    Postback {
        page: PageId,
        psid: Psid,
        mid: Option<Mid>,
        at: OffsetDateTime,
        title: String,
        payload: String,
    },
    /// The customer reacted to (or un-reacted from) a message.
    Reaction {
        page: PageId,
        psid: Psid,
        mid: Mid,
        at: OffsetDateTime,
        action: String,
        reaction: Option<String>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub events: Vec<MessengerEvent>,
    /// Events of a kind we don't handle, or missing fields we need: skipped and counted.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("the delivery is not JSON: {0}")]
    NotJson(String),
    #[error("the delivery is for object {0:?}, not a Page")]
    NotPage(String),
}

#[derive(Deserialize)]
struct RawDelivery {
    object: String,
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    messaging: Vec<Value>,
    #[serde(default)]
    standby: Vec<Value>,
}

/// Reads a whole delivery. Only a body that is not a Page delivery at all is an error.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let raw: RawDelivery =
        serde_json::from_slice(body).map_err(|e| DeliveryError::NotJson(e.to_string()))?;
    if raw.object != "page" {
        return Err(DeliveryError::NotPage(raw.object));
    }
    let mut out = Delivery::default();
    for entry in raw.entry {
        for ev in entry.messaging.iter().chain(entry.standby.iter()) {
            match parse_event(ev) {
                Some(e) => out.events.push(e),
                None => out.skipped += 1,
            }
        }
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn millis(v: Option<&Value>) -> Option<OffsetDateTime> {
    let ms = v?.as_i64()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn attachments(message: &Value) -> Vec<Attachment> {
    message
        .get("attachments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| Attachment {
                    kind: str_at(a, &["type"]).unwrap_or("unknown").to_owned(),
                    url: str_at(a, &["payload", "url"]).map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_event(ev: &Value) -> Option<MessengerEvent> {
    let sender = str_at(ev, &["sender", "id"])?;
    let recipient = str_at(ev, &["recipient", "id"])?;
    let at = millis(ev.get("timestamp"));

    if let Some(message) = ev.get("message") {
        let mid = Mid::parse(str_at(message, &["mid"])?)?;
        let text = str_at(message, &["text"]).map(str::to_owned);
        let attachments = attachments(message);
        let at = at?;
        return if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            // An echo is sent by the Page: the customer is the recipient.
            Some(MessengerEvent::Echo {
                page: PageId::parse(sender)?,
                psid: Psid::parse(recipient)?,
                mid,
                at,
                text,
                attachments,
                metadata: str_at(message, &["metadata"]).map(str::to_owned),
            })
        } else {
            Some(MessengerEvent::Message {
                page: PageId::parse(recipient)?,
                psid: Psid::parse(sender)?,
                mid,
                at,
                text,
                attachments,
            })
        };
    }

    let page = PageId::parse(recipient)?;
    let psid = Psid::parse(sender)?;
    if let Some(d) = ev.get("delivery") {
        return Some(MessengerEvent::Delivered {
            page,
            psid,
            watermark: millis(d.get("watermark"))?,
        });
    }
    if let Some(r) = ev.get("read") {
        return Some(MessengerEvent::Read {
            page,
            psid,
            watermark: millis(r.get("watermark"))?,
        });
    }
    if let Some(p) = ev.get("postback") {
        return Some(MessengerEvent::Postback {
            page,
            psid,
            mid: str_at(p, &["mid"]).and_then(Mid::parse),
            at: at?,
            title: str_at(p, &["title"]).unwrap_or_default().to_owned(),
            payload: str_at(p, &["payload"]).unwrap_or_default().to_owned(),
        });
    }
    if let Some(r) = ev.get("reaction") {
        return Some(MessengerEvent::Reaction {
            page,
            psid,
            mid: Mid::parse(str_at(r, &["mid"])?)?,
            at: at?,
            action: str_at(r, &["action"]).unwrap_or("react").to_owned(),
            reaction: str_at(r, &["emoji"])
                .or_else(|| str_at(r, &["reaction"]))
                .map(str::to_owned),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_accepts_meta_form_and_refuses_the_rest() {
        let body = br#"{"object":"page","entry":[]}"#;
        let good = sign(b"s3cret", body);
        assert!(signature_is_valid(b"s3cret", body, Some(&good)));
        assert!(!signature_is_valid(b"other", body, Some(&good)));
        assert!(!signature_is_valid(b"s3cret", b"{}", Some(&good)));
        assert!(!signature_is_valid(b"s3cret", body, None));
        assert!(!signature_is_valid(
            b"s3cret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
        assert!(!signature_is_valid(b"s3cret", body, Some("sha256=zz")));
        assert!(!signature_is_valid(b"s3cret", body, Some("sha1=abc")));
    }

    #[test]
    fn every_event_of_a_batched_delivery_is_read_and_unknown_kinds_are_counted() {
        let body = json!({
            "object": "page",
            "entry": [
                {"id": "P1", "time": 1, "messaging": [
                    {"sender": {"id": "U1"}, "recipient": {"id": "P1"}, "timestamp": 1700000000000i64,
                     "message": {"mid": "m_1", "text": "hi", "attachments": [
                        {"type": "image", "payload": {"url": "https://cdn.fbsbx.com/x.jpg"}}]}},
                    {"sender": {"id": "P1"}, "recipient": {"id": "U1"}, "timestamp": 1700000001000i64,
                     "message": {"mid": "m_2", "text": "ours", "is_echo": true, "app_id": 1, "metadata": "msg_x"}},
                    {"sender": {"id": "U1"}, "recipient": {"id": "P1"}, "timestamp": 1,
                     "delivery": {"mids": ["m_2"], "watermark": 1700000002000i64}},
                    {"sender": {"id": "U1"}, "recipient": {"id": "P1"}, "timestamp": 1,
                     "optin": {"ref": "x"}}
                ]},
                {"id": "P2", "time": 1, "standby": [
                    {"sender": {"id": "U2"}, "recipient": {"id": "P2"}, "timestamp": 1700000003000i64,
                     "read": {"watermark": 1700000003000i64}},
                    {"sender": {"id": "U2"}, "recipient": {"id": "P2"}, "timestamp": 1700000004000i64,
                     "postback": {"title": "Track order", "payload": "TRACK"}},
                    {"sender": {"id": "U2"}, "recipient": {"id": "P2"}, "timestamp": 1700000005000i64,
                     "reaction": {"mid": "m_9", "action": "react", "reaction": "love", "emoji": "❤"}}
                ]}
            ]
        });
        let d = parse_delivery(body.to_string().as_bytes()).unwrap();
        assert_eq!(d.events.len(), 6);
        assert_eq!(d.skipped, 1);
        match &d.events[0] {
            MessengerEvent::Message {
                page,
                psid,
                text,
                attachments,
                ..
            } => {
                assert_eq!(page.as_str(), "P1");
                assert_eq!(psid.as_str(), "U1");
                assert_eq!(text.as_deref(), Some("hi"));
                assert_eq!(attachments[0].kind, "image");
            }
            other => panic!("expected a message, got {other:?}"),
        }
        match &d.events[1] {
            MessengerEvent::Echo {
                page,
                psid,
                metadata,
                ..
            } => {
                assert_eq!((page.as_str(), psid.as_str()), ("P1", "U1"));
                assert_eq!(metadata.as_deref(), Some("msg_x"));
            }
            other => panic!("expected an echo, got {other:?}"),
        }
        assert!(matches!(d.events[2], MessengerEvent::Delivered { .. }));
        assert!(matches!(d.events[3], MessengerEvent::Read { .. }));
        assert!(matches!(d.events[4], MessengerEvent::Postback { .. }));
        assert!(
            matches!(&d.events[5], MessengerEvent::Reaction { reaction: Some(r), .. } if r == "❤")
        );
    }

    #[test]
    fn events_missing_what_we_need_are_skipped_not_fatal() {
        let body = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "U1"}, "recipient": {"id": "P1"}, "timestamp": 1, "message": {"text": "no mid"}},
            {"recipient": {"id": "P1"}, "timestamp": 1, "message": {"mid": "m", "text": "no sender"}},
            "not even an object"
        ]}]});
        let d = parse_delivery(body.to_string().as_bytes()).unwrap();
        assert_eq!((d.events.len(), d.skipped), (0, 3));
    }

    #[test]
    fn non_page_or_non_json_deliveries_are_errors() {
        assert!(matches!(
            parse_delivery(b"nope"),
            Err(DeliveryError::NotJson(_))
        ));
        assert_eq!(
            parse_delivery(br#"{"object":"instagram","entry":[]}"#),
            Err(DeliveryError::NotPage("instagram".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_delivery(&bytes);
        }
    }
}
