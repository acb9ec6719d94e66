//! The Messenger connection: OAuth state, the authorizing user's token and Pages, connected Pages
//! (POLICY E1, E4, E14, E15). Tokens are stored only as KMS ciphertext (see `vault`).
//!
//! Meta's data deletion and deauthorize callbacks name a *Facebook* user (app-scoped id), not one
//! of ours: the authorization and each Page connected through it keep that id, and the index item
//! `FBUSER#<id>` → `MERCHANT#<m>` leads from it to every merchant where that person authorized
//! Pages. [`Store::forget_facebook_user`] undoes it all.

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_core::ids::{MerchantId, PageId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The app-scoped id of the Facebook user whose authorization connected the Page: Meta's
    /// callbacks for that person disconnect it. `None` on connections made before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook_user_id: Option<String>,
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
    /// The Facebook user behind the token (`GET /me`): their app-scoped id, which Meta's data
    /// deletion and deauthorize callbacks name, and their name. `None` on older items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook_user_name: Option<String>,
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

/// The index item `FBUSER#<facebook user>` / `MERCHANT#<m>`: ids only.
#[derive(Serialize, Deserialize)]
struct FacebookUserLink {
    merchant_id: MerchantId,
}

/// What [`Store::forget_facebook_user`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForgetOutcome {
    /// The merchants where the Facebook user had authorized Pages.
    pub merchants: Vec<MerchantId>,
    /// Pages disconnected (token deleted, webhooks no longer routed), by merchant.
    pub pages_disconnected: Vec<(MerchantId, PageId)>,
    /// Page connections from which the Facebook user's id was removed.
    pub pages_erased: u64,
    /// Authorizations (user token, Facebook id and name, Page list) deleted.
    pub authorizations_deleted: u64,
    /// `FBUSER#` index items deleted.
    pub index_items_deleted: u64,
}

impl ForgetOutcome {
    /// Counts per record kind for a deletion receipt: deleted items under the kind's name, the
    /// rest under `disconnected:` / `erased:`. Every key is present, zero or not, so a receipt
    /// for someone we never knew looks like any other.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let kind = |k: RecordKind| k.as_str();
        BTreeMap::from([
            (
                kind(RecordKind::MessengerAuthorization).to_owned(),
                self.authorizations_deleted,
            ),
            (
                kind(RecordKind::FacebookUserIndex).to_owned(),
                self.index_items_deleted,
            ),
            (
                format!("disconnected:{}", kind(RecordKind::PageConnection)),
                self.pages_disconnected.len() as u64,
            ),
            (
                format!("erased:{}", kind(RecordKind::PageConnection)),
                self.pages_erased,
            ),
        ])
    }
}

/// What forgetting needs to do to one Page connection of the Facebook user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageAction {
    /// Still connected (or holding a token): disconnect it.
    Disconnect,
    /// Already disconnected: only the Facebook id is left to remove.
    Erase,
    Nothing,
}

/// Pure: what to do to `page` when forgetting `facebook_user_id` (`erase`: the data deletion
/// callback, which also removes the id itself).
fn page_action(page: &PageConnection, facebook_user_id: &str, erase: bool) -> PageAction {
    if page.facebook_user_id.as_deref() != Some(facebook_user_id) {
        // Connected by someone else (or before ids were kept): not this person's to take away.
        PageAction::Nothing
    } else if page.status != ConnectionStatus::Disconnected || page.token_ciphertext.is_some() {
        PageAction::Disconnect
    } else if erase {
        PageAction::Erase
    } else {
        PageAction::Nothing
    }
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

    /// Saves the authorization and, when the Facebook user is known, the index item that leads
    /// Meta's callbacks for that person to this merchant (both or neither).
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
        let Some(facebook_user_id) = &auth.facebook_user_id else {
            return self.put(item).await;
        };
        let link = Self::item(
            RecordKind::FacebookUserIndex,
            keys::facebook_user_pk(facebook_user_id),
            keys::facebook_user_sk(&auth.merchant_id),
            &FacebookUserLink {
                merchant_id: auth.merchant_id.clone(),
            },
        )?;
        self.transact(
            vec![self.tx_put(item, None), self.tx_put(link, None)],
            "authorization changed meanwhile",
        )
        .await
    }

    pub async fn messenger_authorization(
        &self,
        m: &MerchantId,
    ) -> StoreResult<Option<MessengerAuthorization>> {
        self.get(keys::merchant_pk(m), keys::MESSENGER_AUTH_SK.into())
            .await
    }

    /// Deletes the authorizing user's token and Page list (their membership ended, or their data
    /// is being deleted). True when there was one.
    pub async fn delete_messenger_authorization(&self, m: &MerchantId) -> StoreResult<bool> {
        // The index item from the Facebook user to this merchant stays: Pages connected through
        // the authorization still name the user, and Meta's data deletion callback must find
        // them. It goes with the merchant's deletion (`Store::forget_merchant_tokens` deletes it
        // with the authorization), or when that callback erases the user.
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::MESSENGER_AUTH_SK,
            )))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(res.attributes.is_some())
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

    // ---- Meta's data deletion and deauthorize callbacks ------------------------------------

    /// The merchants where this Facebook user authorized Pages (from the `FBUSER#` index).
    pub async fn facebook_user_merchants(
        &self,
        facebook_user_id: &str,
    ) -> StoreResult<Vec<MerchantId>> {
        self.query_prefix(keys::facebook_user_pk(facebook_user_id), "MERCHANT#", 1000)
            .await?
            .into_iter()
            .map(|item| Self::parse::<FacebookUserLink>(item).map(|l| l.merchant_id))
            .collect()
    }

    /// The Page connections this Facebook user's authorization made that still hold a token or
    /// route webhooks: what Meta's callbacks will disconnect. The callback unsubscribes them from
    /// Meta with their tokens first, so it reads them before [`Store::forget_facebook_user`].
    pub async fn facebook_user_pages(
        &self,
        facebook_user_id: &str,
    ) -> StoreResult<Vec<PageConnection>> {
        let mut pages = Vec::new();
        for m in self.facebook_user_merchants(facebook_user_id).await? {
            pages.extend(
                self.page_connections(&m)
                    .await?
                    .into_iter()
                    .filter(|p| page_action(p, facebook_user_id, false) == PageAction::Disconnect),
            );
        }
        Ok(pages)
    }

    /// Takes back what a Facebook user gave us, in every merchant where they authorized Pages:
    /// each Page connected through their authorization is disconnected (token deleted, its
    /// owner item removed so webhooks stop routing) and their authorization (user token, id,
    /// name) is deleted. With `erase_identity` (the data deletion callback) their id is also
    /// removed from every Page connection and the `FBUSER#` index items go; without it (the
    /// deauthorize callback) the index stays, so a later deletion request still finds the
    /// records that name them. Safe to repeat: a second run finds nothing left to do.
    pub async fn forget_facebook_user(
        &self,
        facebook_user_id: &str,
        erase_identity: bool,
    ) -> StoreResult<ForgetOutcome> {
        let mut outcome = ForgetOutcome::default();
        for m in self.facebook_user_merchants(facebook_user_id).await? {
            for page in self.page_connections(&m).await? {
                match page_action(&page, facebook_user_id, erase_identity) {
                    PageAction::Disconnect => {
                        if self
                            .disconnect_facebook_page(
                                &m,
                                &page.page_id,
                                facebook_user_id,
                                erase_identity,
                            )
                            .await?
                        {
                            outcome
                                .pages_disconnected
                                .push((m.clone(), page.page_id.clone()));
                            outcome.pages_erased += u64::from(erase_identity);
                        }
                    }
                    PageAction::Erase => {
                        if self
                            .erase_page_facebook_user(&m, &page.page_id, facebook_user_id)
                            .await?
                        {
                            outcome.pages_erased += 1;
                        }
                    }
                    PageAction::Nothing => {}
                }
            }
            if self
                .delete_facebook_authorization(&m, facebook_user_id)
                .await?
            {
                outcome.authorizations_deleted += 1;
            }
            if erase_identity {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(
                        keys::facebook_user_pk(facebook_user_id),
                        keys::facebook_user_sk(&m),
                    )))
                    .send()
                    .await
                    .map_err(AwsError::dynamo)?;
                outcome.index_items_deleted += 1;
            }
            outcome.merchants.push(m);
        }
        Ok(outcome)
    }

    /// Disconnects a Page connected through `facebook_user_id`'s authorization, as
    /// [`Store::disconnect_page`] does, and with `erase` removes the id too. False when the
    /// connection changed hands meanwhile (reconnected by someone else): then it is left alone.
    async fn disconnect_facebook_page(
        &self,
        m: &MerchantId,
        page: &PageId,
        facebook_user_id: &str,
        erase: bool,
    ) -> StoreResult<bool> {
        let now = super::rfc3339(OffsetDateTime::now_utc());
        let expression = if erase {
            "SET #s = :d, updated_at = :now REMOVE token_ciphertext, facebook_user_id"
        } else {
            "SET #s = :d, updated_at = :now REMOVE token_ciphertext"
        };
        let mut update = self.tx_update(
            keys::merchant_pk(m),
            keys::page_sk(page),
            expression,
            vec![
                (":d", AttributeValue::S("disconnected".into())),
                (":now", AttributeValue::S(now)),
                (":f", AttributeValue::S(facebook_user_id.into())),
            ],
            Some("facebook_user_id = :f"),
        );
        if let Some(u) = update.update.as_mut() {
            u.expression_attribute_names = Some([("#s".to_owned(), "status".to_owned())].into());
        }
        // The owner item goes only if it is still this merchant's (it routes the webhooks).
        let mut release =
            self.tx_delete(keys::page_owner_pk(page), keys::PAGE_OWNER_SK.into(), false);
        if let Some(d) = release.delete.as_mut() {
            d.condition_expression = Some("attribute_not_exists(PK) OR merchant_id = :m".into());
            d.expression_attribute_values =
                Some([(":m".to_owned(), AttributeValue::S(m.to_string()))].into());
        }
        match self
            .transact(vec![update, release], "page changed meanwhile")
            .await
        {
            Ok(()) => Ok(true),
            Err(AwsError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the Facebook user's id from an already disconnected Page connection.
    async fn erase_page_facebook_user(
        &self,
        m: &MerchantId,
        page: &PageId,
        facebook_user_id: &str,
    ) -> StoreResult<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::merchant_pk(m), keys::page_sk(page))))
            .update_expression("REMOVE facebook_user_id")
            .condition_expression("facebook_user_id = :f")
            .expression_attribute_values(":f", AttributeValue::S(facebook_user_id.into()))
            .send()
            .await;
        super::written(res)
    }

    /// Deletes the merchant's Messenger authorization if it is this Facebook user's, expired or
    /// not (an expired item can linger until DynamoDB's TTL removes it, and it holds their name).
    async fn delete_facebook_authorization(
        &self,
        m: &MerchantId,
        facebook_user_id: &str,
    ) -> StoreResult<bool> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::MESSENGER_AUTH_SK,
            )))
            .condition_expression("facebook_user_id = :f")
            .expression_attribute_values(":f", AttributeValue::S(facebook_user_id.into()))
            .send()
            .await;
        super::written(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(
        facebook_user_id: Option<&str>,
        status: ConnectionStatus,
        token: bool,
    ) -> PageConnection {
        let now = OffsetDateTime::now_utc();
        PageConnection {
            merchant_id: MerchantId::generate(),
            page_id: PageId::parse("100000000000101").unwrap(),
            name: "Demo Store".into(),
            status,
            token_ciphertext: token.then(|| "sealed".to_owned()),
            connected_by: UserId::parse("user-1").unwrap(),
            facebook_user_id: facebook_user_id.map(str::to_owned),
            connected_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn only_pages_connected_through_that_facebook_user_are_touched() {
        use ConnectionStatus::*;
        let fb = "100000000000001";
        for erase in [false, true] {
            assert_eq!(
                page_action(&page(Some(fb), Active, true), fb, erase),
                PageAction::Disconnect
            );
            assert_eq!(
                page_action(&page(Some(fb), TokenInvalid, true), fb, erase),
                PageAction::Disconnect
            );
            assert_eq!(
                page_action(&page(Some("other"), Active, true), fb, erase),
                PageAction::Nothing
            );
            assert_eq!(
                page_action(&page(None, Active, true), fb, erase),
                PageAction::Nothing
            );
        }
        // Already disconnected: the deauthorize callback has nothing left to do, the deletion
        // callback still removes the id.
        assert_eq!(
            page_action(&page(Some(fb), Disconnected, false), fb, false),
            PageAction::Nothing
        );
        assert_eq!(
            page_action(&page(Some(fb), Disconnected, false), fb, true),
            PageAction::Erase
        );
    }

    #[test]
    fn receipt_counts_always_name_every_kind() {
        let none = ForgetOutcome::default().counts();
        assert_eq!(
            none.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "disconnected:page_connection",
                "erased:page_connection",
                "facebook_user_index",
                "messenger_authorization"
            ]
        );
        assert!(none.values().all(|n| *n == 0));
        let m = MerchantId::generate();
        let some = ForgetOutcome {
            merchants: vec![m.clone()],
            pages_disconnected: vec![
                (m.clone(), PageId::parse("1").unwrap()),
                (m, PageId::parse("2").unwrap()),
            ],
            pages_erased: 2,
            authorizations_deleted: 1,
            index_items_deleted: 1,
        };
        let counts = some.counts();
        assert_eq!(counts["disconnected:page_connection"], 2);
        assert_eq!(counts["messenger_authorization"], 1);
    }

    #[test]
    fn old_items_without_facebook_ids_still_read() {
        let mut item = serde_json::to_value(page(None, ConnectionStatus::Active, true)).unwrap();
        assert!(
            item.get("facebook_user_id").is_none(),
            "None is not written: {item}"
        );
        item.as_object_mut().unwrap().remove("facebook_user_id");
        let read: PageConnection = serde_json::from_value(item).unwrap();
        assert_eq!(read.facebook_user_id, None);
    }
}
