//! `agent-reply`: sends an agent's queued reply through Meta's Send API, at most once.
//!
//! The protocol, per reply (a message in the store):
//! - a reply whose outcome is known (`sent`, `delivered`, `read`, `failed`) is never sent again;
//! - a send attempt is *claimed* with a conditional write (`queued → sending`, attempt n), so two
//!   workers or a doubly delivered queue message cannot both send;
//! - the reply's own id travels in the Send API `metadata`; Meta echoes it, and the echo marks the
//!   reply `sent` even when our call timed out;
//! - an attempt whose outcome is unknown (timeout, crash mid-call) is retried by the queue; it is
//!   resent only once [`Config::echo_wait`] has passed without an echo, and at most
//!   [`Config::max_attempts`] times in all.
//!
//! The window rules (24 h `RESPONSE`, 7 days `HUMAN_AGENT`) are checked again right before sending.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use ecomdrive_aws::store::connections::ConnectionStatus;
use ecomdrive_aws::{AwsError, Store, TokenContext, TokenVault};
use ecomdrive_core::ids::Mid;
use ecomdrive_core::inbox::{Message, MessageStatus, reply_metadata};
pub use ecomdrive_core::inbox::{REPLY_KIND, ReplyJob};
use ecomdrive_core::messaging_window::{ReplyMode, WindowClosed, reply_mode};
use ecomdrive_core::send_errors::{SendErrorAction, classify_send_error};
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::meta::{MessageTag, MessagingType, MetaClient, OutgoingMessage};
use ecomdrive_platforms::outbound::OutboundHttp;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, SecretCache};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("the record is not a reply job: {0}")]
    BadRecord(String),
    #[error(transparent)]
    Store(#[from] AwsError),
    #[error("the Page token could not be opened: {0}")]
    Vault(String),
    #[error("Meta app configuration: {0}")]
    Config(String),
    /// The queue retries the record later; nothing is lost.
    #[error("will try again later: {0}")]
    RetryLater(String),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub meta: MetaEndpoints,
    /// How long an attempt with an unknown outcome waits for its echo before a resend.
    pub echo_wait: Duration,
    /// Attempts in all (first send and resends after unknown outcomes or temporary errors).
    pub max_attempts: u32,
}

impl Config {
    pub const DEFAULT_ECHO_WAIT: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
}

#[derive(Clone)]
pub struct AgentReply {
    pub store: Store,
    pub vault: TokenVault,
    pub secrets: SecretCache<MetaAppSecrets>,
    pub http: OutboundHttp,
    pub config: Config,
}

/// How a job ended, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    AlreadyDone,
    Failed(String),
}

impl AgentReply {
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        ecomdrive_runtime::sqs::process_batch(event, |m| self.handle_record(m)).await
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), ReplyError> {
        let job: ReplyJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| ReplyError::BadRecord(e.to_string()))?;
        let outcome = self.send(&job, OffsetDateTime::now_utc()).await?;
        tracing::info!(message_id = %job.message_id, outcome = ?outcome_name(&outcome), "reply handled");
        Ok(())
    }

    pub async fn send(&self, job: &ReplyJob, now: OffsetDateTime) -> Result<Outcome, ReplyError> {
        let m = &job.merchant_id;
        let Some(msg) = self
            .store
            .message(m, &job.conversation_id, &job.message_id)
            .await?
        else {
            // Deleted meanwhile (customer deletion): nothing to send.
            return Ok(Outcome::AlreadyDone);
        };
        if msg.status.outcome_known() {
            return Ok(Outcome::AlreadyDone);
        }
        if msg.status == MessageStatus::Sending {
            let started = msg.attempt_started_at.unwrap_or(now);
            let waited = now - started;
            if waited < self.config.echo_wait {
                return Err(ReplyError::RetryLater(
                    "waiting for the echo of the last attempt".into(),
                ));
            }
            if msg.attempts >= self.config.max_attempts {
                self.store
                    .finish_attempt(
                        &msg,
                        MessageStatus::Failed,
                        Some("outcome unknown after the last attempt"),
                    )
                    .await?;
                return Ok(Outcome::Failed("outcome unknown".into()));
            }
        }
        let Some(conv) = self.store.conversation(m, &job.conversation_id).await? else {
            return Ok(Outcome::AlreadyDone);
        };
        // The window is checked again at send time: the reply may have waited in the queue.
        let mode = match reply_mode(conv.last_customer_message_at, now) {
            Ok(mode) => mode,
            Err(closed) => {
                let reason = match closed {
                    WindowClosed::NeverWrote => "the customer has not written to this Page",
                    WindowClosed::Expired => {
                        "outside the messaging window (more than 7 days since the customer's last message)"
                    }
                };
                return self.fail_unsent(&msg, now, reason).await;
            }
        };
        let Some(page) = self.store.page_connection(m, &conv.page_id).await? else {
            return self
                .fail_unsent(&msg, now, "the Page is not connected")
                .await;
        };
        let sealed = match (&page.status, &page.token_ciphertext) {
            (ConnectionStatus::Active, Some(t)) => t.clone(),
            _ => {
                return self
                    .fail_unsent(&msg, now, "the Page is not connected")
                    .await;
            }
        };
        // Everything that can fail without sending comes before the claim: a claimed attempt
        // whose call never happened would otherwise wait out the echo wait for nothing.
        let ctx = TokenContext::messenger_page(m, &conv.page_id);
        let token = match self.vault.open(&ctx, &sealed).await {
            Ok(token) => token,
            // This ciphertext will never open for this Page: retrying cannot help.
            Err(AwsError::TokenRefused) => {
                return self
                    .fail_unsent(
                        &msg,
                        now,
                        "the Page token could not be opened; reconnect the Page",
                    )
                    .await;
            }
            Err(e) => return Err(ReplyError::Vault(e.to_string())),
        };
        let meta = self.meta().await?;
        if !self.store.claim_send_attempt(&msg, now).await? {
            // Another worker holds this attempt. Acknowledging would drop the job if that worker
            // then died mid-call, so the queue brings it back later; by then the outcome is known
            // or the echo wait applies.
            return Err(ReplyError::RetryLater(
                "another attempt of this reply is in progress".into(),
            ));
        }
        let claimed = Message {
            status: MessageStatus::Sending,
            attempts: msg.attempts + 1,
            ..msg
        };
        let outgoing = OutgoingMessage {
            recipient_psid: conv.psid.to_string(),
            messaging_type: match mode {
                ReplyMode::Response => MessagingType::Response,
                ReplyMode::HumanAgent => MessagingType::MessageTag,
            },
            tag: (mode == ReplyMode::HumanAgent).then_some(MessageTag::HumanAgent),
            text: claimed.text.clone().unwrap_or_default(),
            metadata: Some(reply_metadata(&conv.id, &claimed.id)),
        };
        match meta.send_message(&token, &outgoing).await {
            Ok(sent) => {
                match Mid::parse(&sent.message_id) {
                    Some(mid) => {
                        self.store.record_sent(&claimed, &mid).await?;
                    }
                    // Sent all the same: never leave it `sending`, or it would be sent again.
                    None => {
                        self.store
                            .finish_attempt(&claimed, MessageStatus::Sent, None)
                            .await?
                    }
                }
                Ok(Outcome::Sent)
            }
            Err(PlatformError::Api {
                http_status,
                code,
                subcode,
                message,
            }) => {
                let error = format!(
                    "Meta error {code}{}: {message}",
                    subcode.map(|s| format!("/{s}")).unwrap_or_default()
                );
                match classify_send_error(http_status, code, subcode) {
                    SendErrorAction::Fail => {
                        self.store
                            .finish_attempt(&claimed, MessageStatus::Failed, Some(&error))
                            .await?;
                        Ok(Outcome::Failed(error))
                    }
                    SendErrorAction::TokenInvalid => {
                        self.store.mark_page_token_invalid(m, &conv.page_id).await?;
                        self.store
                            .finish_attempt(&claimed, MessageStatus::Failed, Some(&error))
                            .await?;
                        Ok(Outcome::Failed(error))
                    }
                    // Meta refused it for now, so it was not sent.
                    SendErrorAction::Retry => self.not_sent_yet(&claimed, error).await,
                }
            }
            // The connection never opened: nothing was sent.
            Err(e @ PlatformError::Connect(_)) => self.not_sent_yet(&claimed, e.to_string()).await,
            // Our own checks refused it before any call: it cannot succeed later.
            Err(e @ (PlatformError::Refused(_) | PlatformError::InvalidInput(_))) => {
                let error = e.to_string();
                self.store
                    .finish_attempt(&claimed, MessageStatus::Failed, Some(&error))
                    .await?;
                Ok(Outcome::Failed(error))
            }
            // Timeout, connection reset, unreadable answer: the outcome is unknown. The reply stays
            // `sending`; its echo confirms it, or a later retry resends after the echo wait.
            Err(e) => Err(ReplyError::RetryLater(format!("outcome unknown: {e}"))),
        }
    }

    /// The attempt certainly did not reach the customer: back to `queued` for the queue to retry,
    /// or `failed` once every attempt is used.
    async fn not_sent_yet(&self, claimed: &Message, error: String) -> Result<Outcome, ReplyError> {
        if claimed.attempts >= self.config.max_attempts {
            self.store
                .finish_attempt(claimed, MessageStatus::Failed, Some(&error))
                .await?;
            return Ok(Outcome::Failed(error));
        }
        self.store
            .finish_attempt(claimed, MessageStatus::Queued, None)
            .await?;
        Err(ReplyError::RetryLater(error))
    }

    /// The reply was never sent and never will be: `failed` with the reason (E5).
    async fn fail_unsent(
        &self,
        msg: &Message,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<Outcome, ReplyError> {
        if !self.store.claim_send_attempt(msg, now).await? {
            // Changed meanwhile (an echo, another worker): look again later.
            return Err(ReplyError::RetryLater(
                "the reply changed while it was being failed".into(),
            ));
        }
        let claimed = Message {
            status: MessageStatus::Sending,
            ..msg.clone()
        };
        self.store
            .finish_attempt(&claimed, MessageStatus::Failed, Some(reason))
            .await?;
        Ok(Outcome::Failed(reason.to_owned()))
    }

    async fn meta(&self) -> Result<MetaClient, ReplyError> {
        self.config
            .meta
            .client(&self.http, &self.secrets)
            .await
            .map_err(|e| ReplyError::Config(e.to_string()))
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Sent => "sent",
        Outcome::AlreadyDone => "already_done",
        Outcome::Failed(_) => "failed",
    }
}
