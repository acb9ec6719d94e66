//! A customer on Messenger: each call builds the webhook Meta would send (see [`crate::payloads`]),
//! signs it and POSTs it to the webhook URL, and returns once the webhook answered.
//!
//! Messages, attachments, postbacks and standby messages (re)open the customer's messaging
//! window with that Page, as a customer's message does on Messenger.

use serde::Serialize;

use crate::MetaSandbox;
use crate::error::SandboxError;
use crate::ids;
use crate::payloads;
use crate::sandbox::{StoredFile, unix_ms};

/// What a simulated customer event produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedDelivery {
    /// The id of the customer's message (or postback).
    pub mid: String,
    /// The HTTP status the webhook answered.
    pub webhook_status: u16,
}

/// Attachment types of the `messages` webhook ("messages Webhook Event Reference").
const ATTACHMENT_KINDS: [&str; 4] = ["image", "video", "audio", "file"];
const REACTION_ACTIONS: [&str; 2] = ["react", "unreact"];

impl MetaSandbox {
    /// The customer `psid` writes `text` to the Page (`messages` field).
    pub async fn simulate_message(
        &self,
        page_id: &str,
        psid: &str,
        text: &str,
    ) -> Result<SimulatedDelivery, SandboxError> {
        self.require_page(page_id)?;
        let now = self.now();
        let mid = ids::mid();
        let event = payloads::message_event(page_id, psid, unix_ms(now), &mid, text);
        self.customer_wrote(page_id, psid, now);
        let webhook_status = self
            .post_webhook("messages", &payloads::single(page_id, unix_ms(now), event))
            .await?;
        Ok(SimulatedDelivery {
            mid,
            webhook_status,
        })
    }

    /// The customer sends a file; its bytes are served at `{base_url}/_files/{id}`, the URL in
    /// `payload.url` (standing in for Meta's CDN). `kind`: image, video, audio or file.
    pub async fn simulate_attachment(
        &self,
        page_id: &str,
        psid: &str,
        kind: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<SimulatedDelivery, SandboxError> {
        self.require_page(page_id)?;
        if !ATTACHMENT_KINDS.contains(&kind) {
            return Err(SandboxError::InvalidInput(format!(
                "attachment kind must be one of {}, got {kind:?}",
                ATTACHMENT_KINDS.join(", ")
            )));
        }
        let base_url = self.base_url().ok_or(SandboxError::NotServing)?;
        let file_id = ids::file_id();
        let url = format!("{base_url}/_files/{file_id}");
        self.with_state(|s| {
            s.files.insert(
                file_id,
                StoredFile {
                    content_type: content_type.to_owned(),
                    bytes,
                },
            )
        });
        let now = self.now();
        let mid = ids::mid();
        let event = payloads::attachment_event(page_id, psid, unix_ms(now), &mid, kind, &url);
        self.customer_wrote(page_id, psid, now);
        let webhook_status = self
            .post_webhook("messages", &payloads::single(page_id, unix_ms(now), event))
            .await?;
        Ok(SimulatedDelivery {
            mid,
            webhook_status,
        })
    }

    /// The customer taps a postback button (`messaging_postbacks` field).
    pub async fn simulate_postback(
        &self,
        page_id: &str,
        psid: &str,
        title: &str,
        payload: &str,
    ) -> Result<SimulatedDelivery, SandboxError> {
        self.require_page(page_id)?;
        let now = self.now();
        let mid = ids::mid();
        let event = payloads::postback_event(page_id, psid, unix_ms(now), &mid, title, payload);
        self.customer_wrote(page_id, psid, now);
        let webhook_status = self
            .post_webhook(
                "messaging_postbacks",
                &payloads::single(page_id, unix_ms(now), event),
            )
            .await?;
        Ok(SimulatedDelivery {
            mid,
            webhook_status,
        })
    }

    /// The customer reacts to (`react`) or withdraws a reaction from (`unreact`) message `mid`
    /// (`message_reactions` field). Returns the webhook's status.
    pub async fn simulate_reaction(
        &self,
        page_id: &str,
        psid: &str,
        mid: &str,
        reaction: &str,
        action: &str,
    ) -> Result<u16, SandboxError> {
        self.require_page(page_id)?;
        if !REACTION_ACTIONS.contains(&action) {
            return Err(SandboxError::InvalidInput(format!(
                "reaction action must be react or unreact, got {action:?}"
            )));
        }
        let now_ms = self.now_ms();
        let event = payloads::reaction_event(page_id, psid, now_ms, mid, reaction, action);
        self.post_webhook(
            "message_reactions",
            &payloads::single(page_id, now_ms, event),
        )
        .await
    }

    /// The customer's device got the Page's messages up to `watermark_ms`
    /// (`message_deliveries` field); `mids` lists the sandbox-accepted sends up to it.
    pub async fn simulate_delivery(
        &self,
        page_id: &str,
        psid: &str,
        watermark_ms: i64,
    ) -> Result<u16, SandboxError> {
        self.require_page(page_id)?;
        let mids: Vec<String> = self
            .sent()
            .into_iter()
            .filter(|m| m.page_id == page_id && m.recipient_id == psid)
            .filter(|m| unix_ms(m.at) <= watermark_ms)
            .filter_map(|m| m.message_id)
            .collect();
        let event = payloads::delivery_event(page_id, psid, watermark_ms, &mids);
        let now_ms = self.now_ms();
        self.post_webhook(
            "message_deliveries",
            &payloads::single(page_id, now_ms, event),
        )
        .await
    }

    /// The customer read the Page's messages up to `watermark_ms` (`message_reads` field).
    pub async fn simulate_read(
        &self,
        page_id: &str,
        psid: &str,
        watermark_ms: i64,
    ) -> Result<u16, SandboxError> {
        self.require_page(page_id)?;
        let now_ms = self.now_ms();
        let event = payloads::read_event(page_id, psid, now_ms, watermark_ms);
        self.post_webhook("message_reads", &payloads::single(page_id, now_ms, event))
            .await
    }

    /// The customer writes while another app controls the thread: the event arrives under
    /// `standby` instead of `messaging` (`standby` field).
    pub async fn simulate_standby_message(
        &self,
        page_id: &str,
        psid: &str,
        text: &str,
    ) -> Result<SimulatedDelivery, SandboxError> {
        self.require_page(page_id)?;
        let now = self.now();
        let mid = ids::mid();
        let event = payloads::message_event(page_id, psid, unix_ms(now), &mid, text);
        let entry = payloads::standby_entry(page_id, unix_ms(now), vec![event]);
        self.customer_wrote(page_id, psid, now);
        let webhook_status = self
            .post_webhook("standby", &payloads::envelope(vec![entry]))
            .await?;
        Ok(SimulatedDelivery {
            mid,
            webhook_status,
        })
    }

    /// POSTs any body, signed with the app secret (e.g. a batch built with
    /// [`crate::payloads`]). Returns the webhook's status. It does not touch the windows.
    pub async fn post_raw(&self, body: &serde_json::Value) -> Result<u16, SandboxError> {
        self.post_webhook("raw", body).await
    }
}
