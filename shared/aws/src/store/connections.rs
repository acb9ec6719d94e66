//! The Messenger connection: OAuth state, the authorizing user's token and Pages, connected Pages
//! (POLICY E1, E4, E14, E15). Tokens are stored only as KMS ciphertext (see `vault`).

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::{MerchantId, PageId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    TokenInvalid,
    Disconnected,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageConnection {
    pub merchant_id: MerchantId,
    pub page_id: PageId,
    pub name: String,
    pub status: ConnectionStatus,
    /// KMS ciphertext (base64) of the Page token; removed on disconnect. Never leaves the server.
    pub token_ciphertext: Option<String>,
    pub connected_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailablePage {
    pub id: PageId,
    pub name: String,
}

/// What the OAuth callback learnt: whose authorization it is and which Pages it manages.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessengerAuthorization {
    pub merchant_id: MerchantId,
    pub authorized_by: UserId,
    /// KMS ciphertext (base64) of the long-lived user token, used to fetch a Page's token on select.
    pub user_token_ciphertext: String,
    pub pages: Vec<AvailablePage>,
    #[serde(with = "time::serde::rfc3339")]
    pub authorized_at: OffsetDateTime,
    /// Epoch seconds; also the item's TTL. The user token is only needed to pick Pages, so it is
    /// kept for [`AUTHORIZATION_LIFETIME`] and no longer.
    pub expires_at: i64,
}

/// How long the authorizing user's token is kept after the OAuth callback.
pub const AUTHORIZATION_LIFETIME: time::Duration = time::Duration::hours(1);

/// A pending OAuth authorization, keyed by the id inside the signed `state`; single use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthState {
    pub state_id: String,
    pub integration: String,
    pub user_id: UserId,
    pub merchant_id: MerchantId,
    /// SHA-256 of the browser nonce (the cookie holds the nonce itself).
    pub nonce_hash: String,
    /// Epoch seconds; also the item's TTL.
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct PageOwner {
    merchant_id: MerchantId,
}

impl Store {
    pub async fn save_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::OAuthState,
            keys::oauth_state_pk(&state.state_id),
            keys::OAUTH_STATE_SK.into(),
            state,
        )?;
        self.put_new(item, "state exists").await
    }

    /// Takes the state out of the store: a second use finds nothing.
    pub async fn take_oauth_state(&self, state_id: &str) -> StoreResult<Option<OAuthState>> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::oauth_state_pk(state_id),
                keys::OAUTH_STATE_SK,
            )))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        res.attributes.map(Self::parse).transpose()
    }

    pub async fn save_messenger_authorization(
        &self,
        auth: &MessengerAuthorization,
    ) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::MessengerAuthorization,
            keys::merchant_pk(&auth.merchant_id),
            keys::MESSENGER_AUTH_SK.into(),
            auth,
        )?;
        self.put(item).await
    }

    pub async fn messenger_authorization(
        &self,
        m: &MerchantId,
    ) -> StoreResult<Option<MessengerAuthorization>> {
        self.get(keys::merchant_pk(m), keys::MESSENGER_AUTH_SK.into())
            .await
    }

    /// Deletes the authorizing user's token and Page list (their membership ended).
    pub async fn delete_messenger_authorization(&self, m: &MerchantId) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::MESSENGER_AUTH_SK,
            )))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(())
    }

    /// Connects a Page to a merchant. A Page another merchant holds is refused (POLICY E1: one
    /// merchant at a time); connecting again the same merchant's Page replaces its token.
    pub async fn connect_page(&self, conn: &PageConnection) -> StoreResult<()> {
        let owner = PageOwner {
            merchant_id: conn.merchant_id.clone(),
        };
        let mut owner_put = self.tx_put(
            Self::item(
                RecordKind::PageOwnerIndex,
                keys::page_owner_pk(&conn.page_id),
                keys::PAGE_OWNER_SK.into(),
                &owner,
            )?,
            Some("attribute_not_exists(PK) OR merchant_id = :m"),
        );
        if let Some(p) = owner_put.put.as_mut() {
            p.expression_attribute_values = Some(
                [(
                    ":m".to_owned(),
                    AttributeValue::S(conn.merchant_id.to_string()),
                )]
                .into(),
            );
        }
        let tx = vec![
            owner_put,
            self.tx_put(
                Self::item(
                    RecordKind::PageConnection,
                    keys::merchant_pk(&conn.merchant_id),
                    keys::page_sk(&conn.page_id),
                    conn,
                )?,
                None,
            ),
        ];
        self.transact(tx, "page connected to another merchant")
            .await
    }

    pub async fn page_connection(
        &self,
        m: &MerchantId,
        page: &PageId,
    ) -> StoreResult<Option<PageConnection>> {
        self.get(keys::merchant_pk(m), keys::page_sk(page)).await
    }

    pub async fn page_connections(&self, m: &MerchantId) -> StoreResult<Vec<PageConnection>> {
        self.query_prefix(keys::merchant_pk(m), keys::PAGE_PREFIX, 1000)
            .await?
            .into_iter()
            .map(Self::parse)
            .collect()
    }

    /// Which merchant connected this Page, if any: how a webhook finds its merchant.
    pub async fn page_owner(&self, page: &PageId) -> StoreResult<Option<MerchantId>> {
        Ok(self
            .get::<PageOwner>(keys::page_owner_pk(page), keys::PAGE_OWNER_SK.into())
            .await?
            .map(|o| o.merchant_id))
    }

    /// Disconnects a Page: its token is deleted at once, webhooks for it are dropped from now on.
    pub async fn disconnect_page(&self, m: &MerchantId, page: &PageId) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| AwsError::Corrupt(e.to_string()))?;
        let mut release =
            self.tx_delete(keys::page_owner_pk(page), keys::PAGE_OWNER_SK.into(), false);
        if let Some(d) = release.delete.as_mut() {
            d.condition_expression = Some("attribute_not_exists(PK) OR merchant_id = :m".into());
            d.expression_attribute_values =
                Some([(":m".to_owned(), AttributeValue::S(m.to_string()))].into());
        }
        let tx = vec![
            self.tx_update(
                keys::merchant_pk(m),
                keys::page_sk(page),
                "SET #s = :d, updated_at = :now REMOVE token_ciphertext",
                vec![
                    (":d", AttributeValue::S("disconnected".into())),
                    (":now", AttributeValue::S(now)),
                ],
                Some("attribute_exists(PK)"),
            ),
            release,
        ];
        let mut tx = tx;
        if let Some(u) = tx[0].update.as_mut() {
            u.expression_attribute_names = Some([("#s".to_owned(), "status".to_owned())].into());
        }
        self.transact(tx, "page not connected").await
    }

    /// Meta said the Page token is no longer valid (error 190): the merchant must reconnect.
    pub async fn mark_page_token_invalid(&self, m: &MerchantId, page: &PageId) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::page_sk(page))))
            .update_expression("SET #s = :t")
            .condition_expression("attribute_exists(PK) AND #s = :a")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":t", AttributeValue::S("token_invalid".into()))
            .expression_attribute_values(":a", AttributeValue::S("active".into()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if super::is_condition_failed(&e) {
                    Ok(())
                } else {
                    Err(AwsError::dynamo(e))
                }
            })
    }
}
