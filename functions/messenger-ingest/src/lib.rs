//! `messenger-ingest`: turns webhook deliveries from the `inbound` queue into the inbox.
//!
//! Each queue record is one delivery as Meta sent it (or one attachment copy job). Every event of
//! it is handled; the record fails (and is retried, then dead-lettered alone) only when something
//! could not be stored. Processing is idempotent by Meta's `mid`, so a retry writes nothing twice.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use ecomdrive_aws::blobs::merchant_key;
use ecomdrive_aws::queue::KIND_ATTRIBUTE;
use ecomdrive_aws::store::inbox::{IncomingMessage, Ingested};
use ecomdrive_aws::{AwsError, Blobs, Queue, Store};
use ecomdrive_core::ids::{ConversationId, MerchantId, MessageId, Mid, PageId};
use ecomdrive_core::inbox::{Direction, MessageStatus, StoredAttachment, parse_reply_metadata};
use ecomdrive_core::webhook::{self, Attachment, MessengerEvent};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::outbound::OutboundHttp;
use serde::{Deserialize, Serialize};

/// The largest attachment file we copy; bigger ones are recorded as `too_large`.
pub const MAX_ATTACHMENT_BYTES: usize = 25 * 1024 * 1024;
/// The queue message kind of an attachment copy job.
pub const ATTACHMENT_KIND: &str = "attachment";
/// A webhook delivery as Meta sent it: the inbound queue's main kind, sent without an attribute.
pub const DELIVERY_KIND: &str = "delivery";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the record is not a Messenger delivery: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("attachment job could not be queued: {0}")]
    Queue(String),
    #[error("attachment could not be copied: {0}")]
    Attachment(String),
}

/// Copy an attachment's file before Meta's URL expires: queued as its own record so a slow or
/// large file never holds up the message itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachmentJob {
    pub merchant_id: MerchantId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub index: usize,
    pub kind: String,
    pub url: String,
}

/// What one delivery did, for the business metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub stored: usize,
    pub duplicates: usize,
    /// Events for a Page no merchant has connected: acknowledged and dropped (POLICY E1).
    pub dropped_unconnected_page: usize,
    pub skipped_unknown: usize,
    pub statuses_moved: usize,
    pub replies_confirmed: usize,
}

#[derive(Clone)]
pub struct Ingest {
    pub store: Store,
    pub blobs: Blobs,
    pub inbound: Queue,
    pub http: OutboundHttp,
}

impl Ingest {
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        ecomdrive_runtime::sqs::process_batch(event, |m| self.handle_record(m)).await
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), IngestError> {
        let kind = record
            .message_attributes
            .get(KIND_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            .unwrap_or(DELIVERY_KIND);
        let body = record.body.as_deref().unwrap_or_default();
        match kind {
            ATTACHMENT_KIND => {
                let job: AttachmentJob = serde_json::from_str(body)
                    .map_err(|e| IngestError::BadRecord(e.to_string()))?;
                self.copy_attachment(&job).await
            }
            _ => {
                let counts = self.handle_delivery(body.as_bytes()).await?;
                emit_metrics(&counts);
                Ok(())
            }
        }
    }

    pub async fn handle_delivery(&self, body: &[u8]) -> Result<DeliveryCounts, IngestError> {
        let delivery =
            webhook::parse_delivery(body).map_err(|e| IngestError::BadRecord(e.to_string()))?;
        let mut counts = DeliveryCounts {
            skipped_unknown: delivery.skipped,
            ..Default::default()
        };
        for event in delivery.events {
            let page = event_page(&event);
            let Some(merchant) = self.store.page_owner(page).await? else {
                counts.dropped_unconnected_page += 1;
                continue;
            };
            self.handle_event(&merchant, event, &mut counts).await?;
        }
        Ok(counts)
    }

    async fn handle_event(
        &self,
        m: &MerchantId,
        event: MessengerEvent,
        counts: &mut DeliveryCounts,
    ) -> Result<(), IngestError> {
        match event {
            MessengerEvent::Message {
                page,
                psid,
                mid,
                at,
                text,
                attachments,
            } => {
                let incoming = IncomingMessage {
                    page,
                    psid,
                    mid,
                    at,
                    text,
                    direction: Direction::Inbound,
                    attachments: pending(&attachments),
                    postback_payload: None,
                };
                self.store_message(m, incoming, &attachments, counts).await
            }
            MessengerEvent::Postback {
                page,
                psid,
                mid,
                at,
                title,
                payload,
            } => {
                // A postback may come without a mid: its time and sender identify it just as well.
                let mid = mid.or_else(|| {
                    Mid::parse(&format!(
                        "pb-{psid}-{}",
                        at.unix_timestamp_nanos() / 1_000_000
                    ))
                });
                let Some(mid) = mid else {
                    counts.skipped_unknown += 1;
                    return Ok(());
                };
                let incoming = IncomingMessage {
                    page,
                    psid,
                    mid,
                    at,
                    text: Some(title),
                    direction: Direction::Inbound,
                    attachments: Vec::new(),
                    postback_payload: Some(payload),
                };
                self.store_message(m, incoming, &[], counts).await
            }
            MessengerEvent::Echo {
                page,
                psid,
                mid,
                at,
                text,
                attachments,
                metadata,
            } => {
                if let Some((conv, msg)) = metadata.as_deref().and_then(parse_reply_metadata) {
                    match self.store.confirm_reply(m, &conv, &msg, &mid).await {
                        Ok(true) => {
                            counts.replies_confirmed += 1;
                            return Ok(());
                        }
                        Ok(false) => {
                            counts.duplicates += 1;
                            return Ok(());
                        }
                        // Not one of ours after all: store it like any echo.
                        Err(AwsError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                if self.store.knows_mid(m, &mid).await? {
                    counts.duplicates += 1;
                    return Ok(());
                }
                // Typed by a person in Meta's own inbox: part of the support history too.
                let incoming = IncomingMessage {
                    page,
                    psid,
                    mid,
                    at,
                    text,
                    direction: Direction::Outbound,
                    attachments: pending(&attachments),
                    postback_payload: None,
                };
                self.store_message(m, incoming, &attachments, counts).await
            }
            MessengerEvent::Delivered {
                page,
                psid,
                watermark,
            } => {
                counts.statuses_moved += self
                    .store
                    .apply_watermark(m, &page, &psid, watermark, MessageStatus::Delivered)
                    .await?;
                Ok(())
            }
            MessengerEvent::Read {
                page,
                psid,
                watermark,
            } => {
                counts.statuses_moved += self
                    .store
                    .apply_watermark(m, &page, &psid, watermark, MessageStatus::Read)
                    .await?;
                Ok(())
            }
            MessengerEvent::Reaction {
                mid,
                action,
                reaction,
                ..
            } => {
                let reaction = (action != "unreact").then_some(reaction).flatten();
                self.store
                    .record_reaction(m, &mid, reaction.as_deref())
                    .await?;
                Ok(())
            }
        }
    }

    async fn store_message(
        &self,
        m: &MerchantId,
        incoming: IncomingMessage,
        attachments: &[Attachment],
        counts: &mut DeliveryCounts,
    ) -> Result<(), IngestError> {
        let mid = incoming.mid.clone();
        let message = match self.store.ingest_message(m, incoming).await? {
            Ingested::Stored(message) => {
                counts.stored += 1;
                Some(*message)
            }
            Ingested::Duplicate => {
                counts.duplicates += 1;
                // A retry of a record whose attachment jobs were not all queued the first time
                // (the queue failed, the function timed out): queue what is still pending.
                if attachments.is_empty() {
                    None
                } else {
                    self.store.message_for_mid(m, &mid).await?
                }
            }
        };
        let Some(message) = message else {
            return Ok(());
        };
        for (index, a) in attachments.iter().enumerate() {
            let pending = message
                .attachments
                .get(index)
                .is_some_and(|stored| stored.state == "pending");
            let Some(url) = a.url.as_ref().filter(|_| pending) else {
                continue;
            };
            let job = AttachmentJob {
                merchant_id: m.clone(),
                conversation_id: message.conversation_id.clone(),
                message_id: message.id.clone(),
                index,
                kind: a.kind.clone(),
                url: url.clone(),
            };
            // Copying is idempotent (same object key, same list slot), so queuing a job twice
            // costs a second download at most.
            self.inbound
                .send_json(ATTACHMENT_KIND, &job)
                .await
                .map_err(|e| IngestError::Queue(e.to_string()))?;
        }
        Ok(())
    }

    /// Copies one attachment into the bucket, bounded in size.
    pub async fn copy_attachment(&self, job: &AttachmentJob) -> Result<(), IngestError> {
        let m = &job.merchant_id;
        let mut stored = StoredAttachment {
            kind: job.kind.clone(),
            object_key: None,
            state: "pending".into(),
            size: None,
            content_type: None,
        };
        match self
            .http
            .fetch_bounded(&job.url, MAX_ATTACHMENT_BYTES)
            .await
        {
            Ok((bytes, content_type)) => {
                let key = merchant_key(
                    m,
                    &format!(
                        "attachments/{}/{}/{}",
                        job.conversation_id, job.message_id, job.index
                    ),
                );
                let size = bytes.len() as u64;
                self.blobs
                    .put(&key, bytes.to_vec(), content_type.as_deref())
                    .await
                    .map_err(|e| IngestError::Attachment(e.to_string()))?;
                stored.object_key = Some(key);
                stored.state = "stored".into();
                stored.size = Some(size);
                stored.content_type = content_type;
            }
            Err(PlatformError::TooLarge { .. }) => stored.state = "too_large".into(),
            // Refused by the allow-list, gone or expired: retrying cannot help.
            Err(PlatformError::Refused(_) | PlatformError::UnexpectedStatus(_)) => {
                stored.state = "unavailable".into()
            }
            Err(e) => return Err(IngestError::Attachment(e.to_string())),
        }
        self.store
            .set_attachment(m, &job.conversation_id, &job.message_id, job.index, &stored)
            .await?;
        Ok(())
    }
}

fn pending(attachments: &[Attachment]) -> Vec<StoredAttachment> {
    attachments
        .iter()
        .map(|a| StoredAttachment {
            kind: a.kind.clone(),
            object_key: None,
            state: if a.url.is_some() {
                "pending"
            } else {
                "unavailable"
            }
            .into(),
            size: None,
            content_type: None,
        })
        .collect()
}

fn event_page(e: &MessengerEvent) -> &PageId {
    match e {
        MessengerEvent::Message { page, .. }
        | MessengerEvent::Echo { page, .. }
        | MessengerEvent::Delivered { page, .. }
        | MessengerEvent::Read { page, .. }
        | MessengerEvent::Postback { page, .. }
        | MessengerEvent::Reaction { page, .. } => page,
    }
}

/// Business metrics (CloudWatch EMF on stdout), and the same counts on the record's log line.
fn emit_metrics(c: &DeliveryCounts) {
    let counts = [
        ("MessagesStored", c.stored as u64),
        ("DuplicatesSkipped", c.duplicates as u64),
        ("DroppedUnconnectedPage", c.dropped_unconnected_page as u64),
        ("UnknownEventsSkipped", c.skipped_unknown as u64),
    ];
    ecomdrive_runtime::metrics::emit("EcomDrive/Messenger", &counts);
    tracing::info!(
        MessagesStored = c.stored,
        DuplicatesSkipped = c.duplicates,
        DroppedUnconnectedPage = c.dropped_unconnected_page,
        UnknownEventsSkipped = c.skipped_unknown,
        "delivery processed"
    );
}
