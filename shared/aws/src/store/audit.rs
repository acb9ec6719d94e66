//! The security audit log (POLICY A14, A5, A21): every state-changing action of a user or a job:
//! who, what, which object, when, from which IP address and user agent.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::{AuditId, MerchantId, UserId};
use ecomdrive_core::retention;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who acted: a signed-in user (with where the request came from) or one of our jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    User {
        id: UserId,
        /// The caller's IP address as API Gateway saw it (POLICY A5: anonymised after 90 days).
        ip: Option<String>,
        user_agent: Option<String>,
    },
    /// A job acting on its own schedule or on a request recorded earlier, e.g. `data-deletion`.
    Job(&'static str),
}

impl Actor {
    /// A user known only by id (a callback without the browser's request, or a test).
    pub fn user(id: &UserId) -> Self {
        Actor::User {
            id: id.clone(),
            ip: None,
            user_agent: None,
        }
    }
}

/// User agents are kept to this many characters: enough to tell browsers apart, no more.
const USER_AGENT_MAX: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: AuditId,
    pub merchant_id: MerchantId,
    /// The user who acted; `None` when a job did.
    pub actor: Option<UserId>,
    /// The job that acted, e.g. `retention-sweeper`.
    #[serde(default)]
    pub job: Option<String>,
    /// What was done, e.g. `messenger.page.connect`.
    pub action: String,
    /// The object it was done to (an id, never personal data).
    pub target: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The IP address, whole for 90 days, then only its network (see [`retention::IP_ADDRESS`]).
    #[serde(default)]
    pub ip: Option<String>,
    /// True once the sweeper has cut the IP address down to its network.
    #[serde(default)]
    pub ip_anonymised: bool,
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl Store {
    /// Writes an audit record; it expires [`retention::AUDIT_RECORDS`] after `now` (TTL).
    pub async fn audit(
        &self,
        m: &MerchantId,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let (user, job, ip, user_agent) = match actor {
            Actor::User { id, ip, user_agent } => (
                Some(id.clone()),
                None,
                ip.clone(),
                user_agent
                    .as_deref()
                    .map(|ua| ua.chars().take(USER_AGENT_MAX).collect()),
            ),
            Actor::Job(name) => (None, Some((*name).to_owned()), None, None),
        };
        let rec = AuditRecord {
            // The id's time is `at`'s: "records older than" is then one key range (the sweeper).
            id: AuditId::generate_at(super::now_ms(now).max(0) as u64),
            merchant_id: m.clone(),
            actor: user,
            job,
            action: action.to_owned(),
            target: target.map(str::to_owned),
            at: now,
            ip,
            ip_anonymised: false,
            user_agent,
        };
        let mut item = Self::item(
            RecordKind::Audit,
            keys::merchant_pk(m),
            keys::audit_sk(&rec.id),
            &rec,
        )?;
        item.insert(
            keys::EXPIRES_AT.into(),
            AttributeValue::N(
                retention::AUDIT_RECORDS
                    .end(now)
                    .unix_timestamp()
                    .to_string(),
            ),
        );
        self.put(item).await
    }

    /// The merchant's most recent audit records, newest first.
    pub async fn audit_log(&self, m: &MerchantId, max: usize) -> StoreResult<Vec<AuditRecord>> {
        self.query_prefix_ordered(keys::merchant_pk(m), keys::AUDIT_PREFIX, max, false)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect()
    }
}
