//! Users, merchants, memberships and invitations (POLICY E3, A14).

use super::kinds::RecordKind;
use super::{Store, StoreResult, keys};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use ecomdrive_core::ids::{MerchantId, UserId};
use ecomdrive_core::merchant::MerchantProfile;
use ecomdrive_core::role::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when someone invites this user's e-mail: the next request accepts the invitation.
    #[serde(default)]
    pub pending_invites: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub phone: Option<String>,
    pub gstin: Option<String>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the owner closed the account without deleting it: it is deleted
    /// [`ecomdrive_core::retention::CLOSED_MERCHANT`] later unless reopened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    Active,
    Pending,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Membership {
    pub merchant_id: MerchantId,
    /// None while the invitation is pending: the user may not exist yet.
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub role: Role,
    pub status: MembershipStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The index item user → merchant (ids and role only).
#[derive(Serialize, Deserialize)]
struct MembershipIndex {
    merchant_id: MerchantId,
    role: Role,
}

/// The index item e-mail → inviting merchant (ids and role only).
#[derive(Serialize, Deserialize)]
struct InviteIndex {
    merchant_id: MerchantId,
    role: Role,
}

#[derive(Serialize, Deserialize)]
struct EmailIndex {
    user_id: UserId,
}

impl Store {
    /// The membership item and its user → merchant index item: always written together.
    fn membership_puts(
        &self,
        membership: &Membership,
        user: &UserId,
        condition: Option<&str>,
    ) -> StoreResult<[TransactWriteItem; 2]> {
        let m = &membership.merchant_id;
        let index = MembershipIndex {
            merchant_id: m.clone(),
            role: membership.role,
        };
        Ok([
            self.tx_put(
                Self::item(
                    RecordKind::Membership,
                    keys::merchant_pk(m),
                    keys::member_sk(user),
                    membership,
                )?,
                condition,
            ),
            self.tx_put(
                Self::item(
                    RecordKind::MembershipIndex,
                    keys::user_pk(user),
                    keys::membership_index_sk(m),
                    &index,
                )?,
                None,
            ),
        ])
    }

    async fn set_pending_invites(&self, user: &UserId, pending: bool) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user_pk(user), keys::USER_PROFILE_SK)))
            .update_expression("SET pending_invites = :p")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":p", AttributeValue::Bool(pending))
            .send()
            .await
            .map_err(AwsError::dynamo)?;
        Ok(())
    }

    /// Called on every authenticated request: creates the user on first sight and accepts the
    /// invitations waiting for their e-mail.
    pub async fn user_seen(&self, id: &UserId, email: Option<&str>) -> StoreResult<User> {
        let pk = keys::user_pk(id);
        let mut user = match self
            .get::<User>(pk.clone(), keys::USER_PROFILE_SK.into())
            .await?
        {
            Some(u) => u,
            None => {
                let user = User {
                    id: id.clone(),
                    email: None,
                    created_at: OffsetDateTime::now_utc(),
                    pending_invites: false,
                };
                let item = Self::item(
                    RecordKind::User,
                    pk.clone(),
                    keys::USER_PROFILE_SK.into(),
                    &user,
                )?;
                match self.put_new(item, "user exists").await {
                    Ok(()) => user,
                    // Two first requests raced: the other one created it.
                    Err(AwsError::Conflict(_)) => self
                        .get::<User>(pk.clone(), keys::USER_PROFILE_SK.into())
                        .await?
                        .ok_or(AwsError::NotFound)?,
                    Err(e) => return Err(e),
                }
            }
        };
        // The token proves the address now: a first sign-in, or an address changed at the
        // identity provider, moves the e-mail index and looks for invitations to it.
        if let Some(e) = email
            && user.email.as_deref() != Some(e)
        {
            self.change_email(&user, e).await?;
            user.email = Some(e.to_owned());
            user.pending_invites = true;
        }
        if user.pending_invites {
            self.accept_invites(&user).await?;
        }
        Ok(user)
    }

    async fn change_email(&self, user: &User, email: &str) -> StoreResult<()> {
        let idx = EmailIndex {
            user_id: user.id.clone(),
        };
        let mut tx = vec![
            self.tx_update(
                keys::user_pk(&user.id),
                keys::USER_PROFILE_SK.into(),
                "SET email = :e, pending_invites = :t",
                vec![
                    (":e", AttributeValue::S(email.to_owned())),
                    (":t", AttributeValue::Bool(true)),
                ],
                Some("attribute_exists(PK)"),
            ),
            self.tx_put(
                Self::item(
                    RecordKind::EmailIndex,
                    keys::email_pk(email),
                    keys::EMAIL_USER_SK.into(),
                    &idx,
                )?,
                None,
            ),
        ];
        // The old address no longer leads to this user.
        if let Some(old) = user.email.as_deref() {
            let mut release =
                self.tx_delete(keys::email_pk(old), keys::EMAIL_USER_SK.into(), false);
            if let Some(d) = release.delete.as_mut() {
                d.condition_expression = Some("attribute_not_exists(PK) OR user_id = :me".into());
                d.expression_attribute_values =
                    Some([(":me".to_owned(), AttributeValue::S(user.id.to_string()))].into());
            }
            tx.push(release);
        }
        self.transact(tx, "e-mail changed meanwhile").await
    }

    async fn accept_invites(&self, user: &User) -> StoreResult<()> {
        let Some(email) = user.email.as_deref() else {
            return Ok(());
        };
        let invites = self
            .query_prefix(keys::invite_index_pk(email), "MERCHANT#", 1000)
            .await?;
        let mut unsettled = false;
        for item in invites {
            let inv: InviteIndex = Self::parse(item)?;
            let now = OffsetDateTime::now_utc();
            let membership = Membership {
                merchant_id: inv.merchant_id.clone(),
                user_id: Some(user.id.clone()),
                email: Some(email.to_owned()),
                role: inv.role,
                status: MembershipStatus::Active,
                created_at: now,
            };
            let m = &inv.merchant_id;
            let mut tx = vec![
                self.tx_delete(keys::merchant_pk(m), keys::invite_sk(email), true),
                self.tx_delete(
                    keys::invite_index_pk(email),
                    keys::invite_index_sk(m),
                    false,
                ),
            ];
            tx.extend(self.membership_puts(&membership, &user.id, None)?);
            match self.transact(tx, "invitation already accepted").await {
                Ok(()) => {}
                // Accepted by a parallel request, or a concurrent write: the next request
                // looks again (an accepted invitation is no longer there to find).
                Err(AwsError::Conflict(_)) => unsettled = true,
                Err(e) => return Err(e),
            }
        }
        if unsettled {
            return Ok(());
        }
        self.set_pending_invites(&user.id, false).await
    }

    /// Creates a merchant and makes `owner` its owner, atomically.
    pub async fn create_merchant(
        &self,
        owner: &User,
        profile: MerchantProfile,
    ) -> StoreResult<Merchant> {
        let now = OffsetDateTime::now_utc();
        let merchant = Merchant {
            id: MerchantId::generate(),
            name: profile.name,
            phone: profile.phone,
            gstin: profile.gstin,
            created_by: owner.id.clone(),
            created_at: now,
            closed_at: None,
        };
        let m = &merchant.id;
        let membership = Membership {
            merchant_id: m.clone(),
            user_id: Some(owner.id.clone()),
            email: owner.email.clone(),
            role: Role::Owner,
            status: MembershipStatus::Active,
            created_at: now,
        };
        let mut tx = vec![self.tx_put(
            Self::item(
                RecordKind::Merchant,
                keys::merchant_pk(m),
                keys::MERCHANT_PROFILE_SK.into(),
                &merchant,
            )?,
            Some("attribute_not_exists(PK)"),
        )];
        tx.extend(self.membership_puts(&membership, &owner.id, None)?);
        // The retention sweeper's list of merchants (ids only).
        tx.push(
            self.tx_put(
                Self::key(keys::MERCHANTS_PK, keys::merchant_index_sk(m))
                    .into_iter()
                    .chain([(
                        keys::KIND.to_owned(),
                        super::s(RecordKind::MerchantIndex.as_str()),
                    )])
                    .collect(),
                None,
            ),
        );
        self.transact(tx, "merchant exists").await?;
        Ok(merchant)
    }

    pub async fn merchant(&self, m: &MerchantId) -> StoreResult<Option<Merchant>> {
        self.get(keys::merchant_pk(m), keys::MERCHANT_PROFILE_SK.into())
            .await
    }

    pub async fn update_merchant(&self, merchant: &Merchant) -> StoreResult<()> {
        let item = Self::item(
            RecordKind::Merchant,
            keys::merchant_pk(&merchant.id),
            keys::MERCHANT_PROFILE_SK.into(),
            merchant,
        )?;
        self.put(item).await
    }

    /// The caller's membership of a merchant; None for a non-member (who then gets 404).
    pub async fn membership(
        &self,
        m: &MerchantId,
        user: &UserId,
    ) -> StoreResult<Option<Membership>> {
        self.get(keys::merchant_pk(m), keys::member_sk(user)).await
    }

    /// The merchants a user belongs to, with their role in each.
    pub async fn merchants_of(&self, user: &UserId) -> StoreResult<Vec<(MerchantId, Role)>> {
        let items = self
            .query_prefix(keys::user_pk(user), keys::MEMBERSHIP_INDEX_PREFIX, 1000)
            .await?;
        items
            .into_iter()
            .map(|i| Self::parse::<MembershipIndex>(i).map(|x| (x.merchant_id, x.role)))
            .collect()
    }

    /// Members and pending invitations of a merchant.
    pub async fn members(&self, m: &MerchantId) -> StoreResult<Vec<Membership>> {
        let pk = keys::merchant_pk(m);
        let mut out: Vec<Membership> = Vec::new();
        for prefix in [keys::MEMBER_PREFIX, keys::INVITE_PREFIX] {
            for item in self.query_prefix(pk.clone(), prefix, 1000).await? {
                out.push(Self::parse(item)?);
            }
        }
        Ok(out)
    }

    /// Invites an e-mail address; the membership is pending until that user's next request.
    pub async fn invite(&self, m: &MerchantId, email: &str, role: Role) -> StoreResult<Membership> {
        if let Some(idx) = self
            .get::<EmailIndex>(keys::email_pk(email), keys::EMAIL_USER_SK.into())
            .await?
            && self.membership(m, &idx.user_id).await?.is_some()
        {
            return Err(AwsError::Conflict("already a member"));
        }
        let invitation = Membership {
            merchant_id: m.clone(),
            user_id: None,
            email: Some(email.to_owned()),
            role,
            status: MembershipStatus::Pending,
            created_at: OffsetDateTime::now_utc(),
        };
        let index = InviteIndex {
            merchant_id: m.clone(),
            role,
        };
        let tx = vec![
            self.tx_put(
                Self::item(
                    RecordKind::Invitation,
                    keys::merchant_pk(m),
                    keys::invite_sk(email),
                    &invitation,
                )?,
                Some("attribute_not_exists(PK)"),
            ),
            self.tx_put(
                Self::item(
                    RecordKind::InvitationIndex,
                    keys::invite_index_pk(email),
                    keys::invite_index_sk(m),
                    &index,
                )?,
                None,
            ),
        ];
        self.transact(tx, "already invited").await?;
        if let Some(idx) = self
            .get::<EmailIndex>(keys::email_pk(email), keys::EMAIL_USER_SK.into())
            .await?
        {
            self.set_pending_invites(&idx.user_id, true).await?;
        }
        Ok(invitation)
    }

    /// Changes an active member's role. `other_owner`, when the change takes an owner away, is
    /// an owner who must still be one when the write lands: two owners demoting each other at
    /// once cannot leave the merchant without one.
    pub async fn set_role(
        &self,
        m: &MerchantId,
        user: &UserId,
        role: Role,
        other_owner: Option<&UserId>,
    ) -> StoreResult<()> {
        let mut membership = self.membership(m, user).await?.ok_or(AwsError::NotFound)?;
        membership.role = role;
        let mut tx = self
            .membership_puts(&membership, user, Some("attribute_exists(PK)"))?
            .to_vec();
        tx.extend(other_owner.map(|o| self.still_owner(m, o)));
        self.transact(tx, "membership changed").await
    }

    /// Removes a member; `other_owner` as for [`Store::set_role`].
    pub async fn remove_member(
        &self,
        m: &MerchantId,
        user: &UserId,
        other_owner: Option<&UserId>,
    ) -> StoreResult<()> {
        let mut tx = vec![
            self.tx_delete(keys::merchant_pk(m), keys::member_sk(user), true),
            self.tx_delete(keys::user_pk(user), keys::membership_index_sk(m), false),
        ];
        tx.extend(other_owner.map(|o| self.still_owner(m, o)));
        self.transact(tx, "membership changed").await
    }

    fn still_owner(&self, m: &MerchantId, owner: &UserId) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                keys::merchant_pk(m),
                keys::member_sk(owner),
            )))
            .condition_expression("#r = :owner")
            .expression_attribute_names("#r", "role")
            .expression_attribute_values(":owner", AttributeValue::S(Role::Owner.as_str().into()))
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().condition_check(check).build()
    }
}
