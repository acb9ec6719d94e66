//! What the `data-deletion` job removes, and how (POLICY A19, E15, A20).
//!
//! - A **merchant**: every item of its partition `MERCHANT#<id>` (GSI entries go with their
//!   items; the memberships last), the index items elsewhere that point at it (found from the partition's own records
//!   before those are deleted: see [`Pointer`]), the accounts of members left with no merchant,
//!   and every object under `merchants/<id>/` and `exports/<id>/` in the data bucket. What the
//!   law makes us keep is [`LEGAL_RECORDS`]; each kind's fate is decided in [`decide`], an
//!   exhaustive `match`, so a new kind does not compile until someone has said what happens to it.
//! - A **customer**: their record, every conversation of theirs with its messages, `mid` markers,
//!   reply keys, order links, rate counters and attachments; audit records keep the action but lose
//!   the erased ids ([`Store::erase_customer`]).
//! - A **conversation** alone ([`Store::delete_conversation`]): what the retention sweeper removes
//!   after two years without a message.
//! - A **user**: their memberships, their Facebook authorizations, invitations to their address,
//!   their profile and e-mail index ([`Store::erase_user`]).
//!
//! Everything here is idempotent and resumable: work goes in pages, each page first removes the
//! index items its records point to and only then the records, so a run killed at any point leaves
//! nothing unreachable, and the next run goes on from what is left. A [`Budget`] bounds how much a
//! run deletes, so a run always ends well inside a Lambda's time limit.

use super::deletions::facebook_user_of;
use super::kinds::RecordKind;
use super::settlements::batches;
use super::{Item, Store, StoreResult, keys, s};
use crate::AwsError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use ecomdrive_core::ids::{ConversationId, CustomerId, MerchantId, UserId};
use ecomdrive_core::role::Role;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// Records the law makes us keep after their merchant is deleted (POLICY A20: payment records,
/// 7 years, [`ecomdrive_core::retention::PAYMENT_RECORDS`]).
///
/// Empty today, on purpose: EcomDrive stores no billing or payment records yet (POLICY A4,
/// payments through a provider, is *later*). Settlements, orders and costs are the merchant's own
/// business records, not ours to keep: they go with the merchant. The deletion receipt is the
/// proof that stays. When billing lands, its kind goes here and in [`decide`].
pub const LEGAL_RECORDS: &[RecordKind] = &[];

/// The key under which deleted bucket objects are counted on a receipt.
pub const OBJECTS_COUNT: &str = "object";
/// Items without a (known) kind found in a deleted partition: the partition is the merchant's,
/// so they are deleted too, and counted apart so someone notices.
pub const UNKNOWN_KIND_COUNT: &str = "unknown";

/// Items read (and deleted) per page.
const PAGE_ITEMS: i32 = 100;
/// How often a batch's unprocessed writes are sent again before giving up (the job is retried).
const WRITE_ATTEMPTS: u32 = 8;
/// Bucket objects listed (and deleted) per call: S3's limit for both.
const OBJECTS_PER_CALL: usize = 1000;

/// What happens to a kind of record when its merchant is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Deleted, after the index items it points to (see [`Pointer`]).
    Delete(Pointer),
    /// Kept: a legal record (see [`LEGAL_RECORDS`]).
    Keep,
    /// Never in a merchant's partition: its home is elsewhere, and it goes with what it belongs
    /// to (an index item with the record pointing to it, a user's item with the user, a receipt
    /// or tombstone never). Found in the partition anyway, it is deleted: the partition is the
    /// merchant's.
    NotInPartition,
}

/// The index item (outside the partition) a record points to, deleted before the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointer {
    None,
    /// `USER#<u>` / `MEMBER_OF#<m>`; the member's account goes too once it has no merchant.
    MembershipIndex,
    /// `INVITE#<email>` / `MERCHANT#<m>`.
    InvitationIndex,
    /// `PAGE#<p>` / `OWNER` while it is this merchant's, and the Facebook user's index item.
    PageOwnerAndFacebookUser,
    /// `FBUSER#<id>` / `MERCHANT#<m>` when the record names the Facebook user.
    FacebookUser,
    /// `AMAZON#CONNECTED` / `MERCHANT#<m>`.
    AmazonConnected,
}

/// The per-kind decision of a merchant deletion. No `_` arm: a new kind must be decided here.
pub const fn decide(kind: RecordKind) -> Decision {
    use Decision::{Delete, NotInPartition};
    use RecordKind::*;
    match kind {
        // The merchant-keyed index items (`MERCHANTS`, `AMAZON#CONNECTED`) need nothing from the
        // profile: they are deleted by key when the partition is empty.
        Merchant => Delete(Pointer::None),
        Membership => Delete(Pointer::MembershipIndex),
        Invitation => Delete(Pointer::InvitationIndex),
        // Audit records go with the merchant: they are its security log, about its data.
        Audit | RateCounter => Delete(Pointer::None),
        MessengerAuthorization => Delete(Pointer::FacebookUser),
        PageConnection => Delete(Pointer::PageOwnerAndFacebookUser),
        Customer | Conversation | Message | MidMarker | ReplyKey => Delete(Pointer::None),
        AmazonConnection => Delete(Pointer::AmazonConnected),
        AmazonSyncState | Order | OrderLink | Solicitation | SolicitationSettings | Pace => {
            Delete(Pointer::None)
        }
        // Settlements, their sums and costs are the merchant's business records (reports from
        // Amazon and its own uploads), not payment records we owe anyone: they go.
        Settlement
        | SettlementDay
        | SettlementSkuDay
        | SettlementOrder
        | SettlementUpload
        | SettlementImportState
        | SettlementReport
        | UnitCost => Delete(Pointer::None),
        // The export's zip is deleted with the bucket prefix `exports/<m>/`.
        ExportJob => Delete(Pointer::None),
        User | MembershipIndex | EmailIndex | InvitationIndex | PageOwnerIndex
        | AmazonConnectedIndex | MerchantIndex | FacebookUserIndex | MerchantDeletedIndex
        | OAuthState | DeletionLink | DeletionReceipt | FormRateCounter => NotInPartition,
    }
}

/// How much one run may still delete (items and objects): a run stops when it is spent, and the
/// next run of the same deletion goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    left: usize,
}

impl Budget {
    pub fn new(items: usize) -> Self {
        Self { left: items }
    }

    /// No limit: for work that is small by nature (one conversation, one user).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    pub fn left(&self) -> usize {
        self.left
    }

    pub fn spent(&self) -> bool {
        self.left == 0
    }

    fn spend(&mut self, n: usize) {
        self.left = self.left.saturating_sub(n);
    }
}

/// How far a run got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing of the subject is left (but the legal records).
    Finished,
    /// The budget ran out first: the next run goes on.
    Stopped,
}

/// Deleted records per kind (the receipt's counts).
pub type Counts = BTreeMap<String, u64>;

fn count(counts: &mut Counts, key: &str, n: u64) {
    if n > 0 {
        *counts.entry(key.to_owned()).or_default() += n;
    }
}

/// An item's key.
fn key_of(item: &Item) -> Item {
    [keys::PK, keys::SK]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

fn attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn sk_of(item: &Item) -> &str {
    attr(item, keys::SK).unwrap_or_default()
}

/// The kind an item says it is.
pub fn kind_of(item: &Item) -> Option<RecordKind> {
    attr(item, keys::KIND).and_then(RecordKind::parse)
}

/// An index item to delete before the record pointing to it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexKey {
    pub pk: String,
    pub sk: String,
    /// Deleted only while it still names this merchant (a Page's routing may belong to another
    /// merchant since this one disconnected it).
    pub only_if_merchant: bool,
}

impl IndexKey {
    fn new(pk: String, sk: String) -> Self {
        Self {
            pk,
            sk,
            only_if_merchant: false,
        }
    }
}

/// The index items a record of the merchant `m` points to (pure, from the item alone).
pub fn index_keys(m: &MerchantId, pointer: Pointer, item: &Item) -> Vec<IndexKey> {
    let sk = sk_of(item);
    let fb = facebook_user_of(item)
        .map(|fb| IndexKey::new(keys::facebook_user_pk(fb), keys::facebook_user_sk(m)));
    match pointer {
        Pointer::None => Vec::new(),
        Pointer::MembershipIndex => sk
            .strip_prefix(keys::MEMBER_PREFIX)
            .map(|u| IndexKey::new(format!("USER#{u}"), keys::membership_index_sk(m)))
            .into_iter()
            .collect(),
        Pointer::InvitationIndex => sk
            .strip_prefix(keys::INVITE_PREFIX)
            .map(|email| IndexKey::new(keys::invite_index_pk(email), keys::invite_index_sk(m)))
            .into_iter()
            .collect(),
        Pointer::PageOwnerAndFacebookUser => sk
            .strip_prefix(keys::PAGE_PREFIX)
            .map(|p| IndexKey {
                pk: format!("PAGE#{p}"),
                sk: keys::PAGE_OWNER_SK.into(),
                only_if_merchant: true,
            })
            .into_iter()
            .chain(fb)
            .collect(),
        Pointer::FacebookUser => fb.into_iter().collect(),
        Pointer::AmazonConnected => vec![IndexKey::new(
            keys::AMAZON_CONNECTED_PK.into(),
            keys::amazon_connected_sk(m),
        )],
    }
}

/// What to do with one page of a merchant's partition.
#[derive(Debug, Default, PartialEq)]
pub struct PagePlan {
    /// Index items first...
    pub index: BTreeSet<IndexKey>,
    /// ...then the records, with the name they are counted under.
    pub records: Vec<(Item, String)>,
    /// Members whose account may be left with no merchant.
    pub members: Vec<UserId>,
    /// Legal records seen (kept), by kind.
    pub kept: Counts,
}

/// Plans the deletion of one page of the merchant `m`'s partition (pure).
pub fn plan_page(m: &MerchantId, items: &[Item]) -> PagePlan {
    let mut plan = PagePlan::default();
    for item in items {
        let kind = kind_of(item);
        let decision = kind.map_or(Decision::NotInPartition, decide);
        let pointer = match decision {
            Decision::Keep => {
                count(&mut plan.kept, kind.map_or("", RecordKind::as_str), 1);
                continue;
            }
            Decision::Delete(p) => p,
            Decision::NotInPartition => Pointer::None,
        };
        plan.index.extend(index_keys(m, pointer, item));
        if pointer == Pointer::MembershipIndex
            && let Some(u) = sk_of(item)
                .strip_prefix(keys::MEMBER_PREFIX)
                .and_then(UserId::parse)
        {
            plan.members.push(u);
        }
        let counted = kind.map_or(UNKNOWN_KIND_COUNT, RecordKind::as_str);
        plan.records.push((key_of(item), counted.to_owned()));
    }
    plan
}

/// The bucket prefixes that hold a merchant's objects: its own data (`blobs::merchant_key`) and
/// its export files.
pub fn merchant_object_prefixes(m: &MerchantId) -> [String; 2] {
    [format!("merchants/{m}/"), format!("exports/{m}/")]
}

/// Where a conversation's attachments are (as `messenger-ingest` stores them).
pub fn attachment_prefix(m: &MerchantId, c: &ConversationId) -> String {
    crate::blobs::merchant_key(m, &format!("attachments/{c}/"))
}

/// Deletes objects of the data bucket by prefix, a page at a time.
///
/// Its own small type because [`crate::Blobs`] reads and writes one object at a time; these two
/// calls could move there.
#[derive(Clone)]
pub struct ObjectEraser {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

fn s3_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> AwsError {
    AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

impl ObjectEraser {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    /// Deletes objects under `prefix` until none is left or `budget` is spent; returns how many.
    pub async fn delete_prefix(&self, prefix: &str, budget: &mut Budget) -> StoreResult<Progress> {
        self.delete_prefix_counted(prefix, budget, &mut Counts::new())
            .await
    }

    async fn delete_prefix_counted(
        &self,
        prefix: &str,
        budget: &mut Budget,
        counts: &mut Counts,
    ) -> StoreResult<Progress> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        loop {
            if budget.spent() {
                return Ok(Progress::Stopped);
            }
            let want = budget.left().min(OBJECTS_PER_CALL);
            let listed = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(i32::try_from(want).unwrap_or(1000))
                .send()
                .await
                .map_err(s3_error)?;
            let keys: Vec<String> = listed
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
            if keys.is_empty() {
                return Ok(Progress::Finished);
            }
            let objects = keys
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::Blob(e.to_string()))?;
            let out = self
                .s3
                .delete_objects()
                .bucket(&self.bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|e| AwsError::Blob(e.to_string()))?,
                )
                .send()
                .await
                .map_err(s3_error)?;
            if let Some(e) = out.errors().first() {
                return Err(AwsError::Blob(format!(
                    "{} objects not deleted, first: {}",
                    out.errors().len(),
                    e.code().unwrap_or("unknown error")
                )));
            }
            budget.spend(keys.len());
            count(counts, OBJECTS_COUNT, keys.len() as u64);
        }
    }
}

impl Store {
    // ---- batch writes ----------------------------------------------------------------------

    /// Sends writes with `BatchWriteItem`, 25 at a time, sending unprocessed ones again with a
    /// growing pause (DynamoDB returns them when a partition is busy).
    pub(crate) async fn write_requests(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for batch in batches(requests) {
            let mut pending = batch;
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == WRITE_ATTEMPTS {
                    return Err(AwsError::Dynamo(format!(
                        "{} writes still unprocessed after {WRITE_ATTEMPTS} attempts",
                        pending.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(AwsError::dynamo)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }

    /// Deletes items by key (a key twice is deleted once: a batch may not name an item twice).
    pub(crate) async fn delete_keys(&self, items: Vec<Item>) -> StoreResult<()> {
        let mut seen = HashSet::new();
        let requests = items
            .into_iter()
            .filter(|k| {
                seen.insert((
                    attr(k, keys::PK).map(str::to_owned),
                    attr(k, keys::SK).map(str::to_owned),
                ))
            })
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| AwsError::Dynamo(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write_requests(requests).await
    }

    /// One page of a partition (raw items, keys included), from its start or `start`.
    async fn raw_page(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
        limit: i32,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk))
            .limit(limit.max(1))
            .set_exclusive_start_key(start)
            .consistent_read(true);
        q = match sk_prefix {
            Some(p) => q
                .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
                .expression_attribute_values(":p", s(p)),
            None => q.key_condition_expression("PK = :pk"),
        };
        if let Some((expression, values)) = filter {
            q = q.filter_expression(expression);
            for (k, v) in values {
                q = q.expression_attribute_values(k, v);
            }
        }
        let out = q.send().await.map_err(AwsError::dynamo)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Every raw item of a partition (under a prefix, matching a filter). For sets that are small
    /// by nature (one customer's conversations, one user's items).
    async fn raw_all(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
    ) -> StoreResult<Vec<Item>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self
                .raw_page(pk, sk_prefix, filter.clone(), 1000, start)
                .await?;
            all.extend(items);
            match next {
                Some(n) => start = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// Deletes an index item only while it names merchant `m`.
    async fn delete_if_merchant(&self, pk: &str, sk: &str, m: &MerchantId) -> StoreResult<()> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression("merchant_id = :m")
            .expression_attribute_values(":m", s(m))
            .send()
            .await;
        super::written(res).map(|_| ())
    }

    async fn delete_index(&self, m: &MerchantId, index: BTreeSet<IndexKey>) -> StoreResult<usize> {
        let n = index.len();
        let mut plain = Vec::new();
        for k in index {
            if k.only_if_merchant {
                self.delete_if_merchant(&k.pk, &k.sk, m).await?;
            } else {
                plain.push(Self::key(k.pk, k.sk));
            }
        }
        self.delete_keys(plain).await?;
        Ok(n)
    }

    // ---- a merchant ------------------------------------------------------------------------

    /// Deletes the merchant's data within `budget`; see the module docs. Tokens are expected to be
    /// gone already ([`Store::forget_merchant_tokens`]); whatever is left of them goes with the
    /// partition. `counts` gets what was deleted; legal records kept are counted under
    /// `kept:<kind>` when the run finishes.
    pub async fn erase_merchant(
        &self,
        objects: &ObjectEraser,
        m: &MerchantId,
        budget: &mut Budget,
        counts: &mut Counts,
    ) -> StoreResult<Progress> {
        for prefix in merchant_object_prefixes(m) {
            if objects
                .delete_prefix_counted(&prefix, budget, counts)
                .await?
                == Progress::Stopped
            {
                return Ok(Progress::Stopped);
            }
        }
        let pk = keys::merchant_pk(m);
        let not_members = || {
            Some((
                "NOT begins_with(SK, :member)",
                vec![(":member", s(keys::MEMBER_PREFIX))],
            ))
        };
        // The memberships go last: until the rest is gone an owner asking again is still a member,
        // and gets this deletion (202) rather than 410; a member's account goes with them.
        for (sk_prefix, filter) in [(None, not_members()), (Some(keys::MEMBER_PREFIX), None)] {
            // Passes until one deletes nothing: a writer that was still running when the merchant
            // was deleted (an order sync half-way) may have added items behind us.
            loop {
                let mut start = None;
                let mut deleted_in_pass = 0usize;
                let mut kept = Counts::new();
                loop {
                    if budget.spent() {
                        return Ok(Progress::Stopped);
                    }
                    let limit = i32::try_from(budget.left())
                        .unwrap_or(PAGE_ITEMS)
                        .min(PAGE_ITEMS);
                    let (items, next) = self
                        .raw_page(&pk, sk_prefix, filter.clone(), limit, start)
                        .await?;
                    let plan = plan_page(m, &items);
                    for (k, n) in plan.kept {
                        count(&mut kept, &k, n);
                    }
                    let index = self.delete_index(m, plan.index).await?;
                    count(counts, "index", index as u64);
                    // A member's account with no merchant left holds nothing but who they were
                    // to this one: it goes too (their next sign-in starts a new, empty one).
                    for u in plan.members {
                        if self.merchants_of(&u).await?.is_empty() {
                            let gone = self.erase_user_account(&u).await?;
                            for (k, n) in gone {
                                count(counts, &k, n);
                            }
                        }
                    }
                    let records = plan.records.len();
                    let mut by_kind = Counts::new();
                    let mut keys_to_delete = Vec::with_capacity(records);
                    for (k, kind) in plan.records {
                        count(&mut by_kind, &kind, 1);
                        keys_to_delete.push(k);
                    }
                    self.delete_keys(keys_to_delete).await?;
                    for (k, n) in by_kind {
                        count(counts, &k, n);
                    }
                    budget.spend(records + index);
                    deleted_in_pass += records;
                    match next {
                        Some(n) => start = Some(n),
                        None => break,
                    }
                }
                if deleted_in_pass == 0 {
                    for (k, n) in kept {
                        counts.insert(format!("kept:{k}"), n);
                    }
                    break;
                }
            }
        }
        // The merchant-keyed index items need nothing from the partition.
        self.delete_keys(vec![
            Self::key(keys::MERCHANTS_PK, keys::merchant_index_sk(m)),
            Self::key(keys::AMAZON_CONNECTED_PK, keys::amazon_connected_sk(m)),
        ])
        .await?;
        Ok(Progress::Finished)
    }

    // ---- a user ----------------------------------------------------------------------------

    /// Deletes a user's own partition (profile, membership index items) and their e-mail index
    /// item. Returns what was deleted, by kind.
    pub(crate) async fn erase_user_account(&self, u: &UserId) -> StoreResult<Counts> {
        let items = self.raw_all(&keys::user_pk(u), None, None).await?;
        let mut counts = Counts::new();
        for item in &items {
            if let Some(email) = attr(item, "email")
                && sk_of(item) == keys::USER_PROFILE_SK
            {
                // Only while the address still leads to this user.
                let res = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(keys::email_pk(email), keys::EMAIL_USER_SK)))
                    .condition_expression("user_id = :u")
                    .expression_attribute_values(":u", s(u))
                    .send()
                    .await;
                if super::written(res)? {
                    count(&mut counts, RecordKind::EmailIndex.as_str(), 1);
                }
            }
            count(
                &mut counts,
                kind_of(item).map_or(UNKNOWN_KIND_COUNT, RecordKind::as_str),
                1,
            );
        }
        self.delete_keys(items.iter().map(key_of).collect()).await?;
        Ok(counts)
    }

    /// The merchants whose only owner `u` is: deleting the user deletes them too.
    pub async fn solely_owned_merchants(&self, u: &UserId) -> StoreResult<Vec<MerchantId>> {
        let mut out = Vec::new();
        for (m, role) in self.merchants_of(u).await? {
            if role != Role::Owner {
                continue;
            }
            let owners = self
                .members(&m)
                .await?
                .into_iter()
                .filter(|x| x.role == Role::Owner && x.user_id.is_some())
                .count();
            if owners <= 1 {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Deletes a user (POLICY A19, the public form): their membership of every merchant, the
    /// Facebook authorizations they made (their token), invitations to their address, their
    /// profile and e-mail index. Merchants they solely own are the caller's to delete first
    /// ([`Store::solely_owned_merchants`]): here they only lose this member.
    ///
    /// The ids of what they did for a merchant (a reply's author, a Page's `connected_by`, an
    /// audit record's actor) stay: those are the merchant's records, and without the profile they
    /// name no one.
    pub async fn erase_user(&self, u: &UserId) -> StoreResult<Counts> {
        let mut counts = Counts::new();
        let profile = self
            .get_item(keys::user_pk(u), keys::USER_PROFILE_SK.into())
            .await?;
        for (m, _) in self.merchants_of(u).await? {
            if let Some(auth) = self.messenger_authorization(&m).await?
                && &auth.authorized_by == u
                && self.delete_messenger_authorization(&m).await?
            {
                count(&mut counts, RecordKind::MessengerAuthorization.as_str(), 1);
            }
            self.delete_keys(vec![
                Self::key(keys::merchant_pk(&m), keys::member_sk(u)),
                Self::key(keys::user_pk(u), keys::membership_index_sk(&m)),
            ])
            .await?;
            count(&mut counts, RecordKind::Membership.as_str(), 1);
            count(&mut counts, RecordKind::MembershipIndex.as_str(), 1);
        }
        if let Some(email) = profile.as_ref().and_then(|p| attr(p, "email")) {
            let invites = self
                .raw_all(&keys::invite_index_pk(email), Some("MERCHANT#"), None)
                .await?;
            let mut gone = Vec::new();
            for inv in &invites {
                if let Some(m) = attr(inv, "merchant_id").and_then(MerchantId::parse) {
                    gone.push(Self::key(keys::merchant_pk(&m), keys::invite_sk(email)));
                    count(&mut counts, RecordKind::Invitation.as_str(), 1);
                }
                gone.push(key_of(inv));
                count(&mut counts, RecordKind::InvitationIndex.as_str(), 1);
            }
            self.delete_keys(gone).await?;
        }
        for (k, n) in self.erase_user_account(u).await? {
            count(&mut counts, &k, n);
        }
        Ok(counts)
    }

    // ---- a customer, a conversation --------------------------------------------------------

    /// Deletes one conversation and everything of it: its messages and their `mid` markers, reply
    /// keys, order links, rate counters, attachments in the bucket; the customer no longer has it
    /// as their current conversation. Used by the retention sweeper (POLICY A20: communication
    /// records, 2 years) and by customer deletions. Idempotent.
    pub async fn delete_conversation(
        &self,
        objects: &ObjectEraser,
        m: &MerchantId,
        c: &ConversationId,
    ) -> StoreResult<Counts> {
        let mut counts = Counts::new();
        self.erase_conversation(objects, m, c, &mut Budget::unlimited(), &mut counts)
            .await?;
        Ok(counts)
    }

    async fn erase_conversation(
        &self,
        objects: &ObjectEraser,
        m: &MerchantId,
        c: &ConversationId,
        budget: &mut Budget,
        counts: &mut Counts,
    ) -> StoreResult<Progress> {
        if objects
            .delete_prefix_counted(&attachment_prefix(m, c), budget, counts)
            .await?
            == Progress::Stopped
        {
            return Ok(Progress::Stopped);
        }
        let pk = keys::merchant_pk(m);
        // Messages a page at a time, each page's `mid` markers first (they point to the message).
        loop {
            if budget.spent() {
                return Ok(Progress::Stopped);
            }
            let limit = i32::try_from(budget.left())
                .unwrap_or(PAGE_ITEMS)
                .min(PAGE_ITEMS);
            let (messages, next) = self
                .raw_page(&pk, Some(&keys::messages_prefix(c)), None, limit, None)
                .await?;
            if messages.is_empty() {
                break;
            }
            let mids: Vec<Item> = messages
                .iter()
                .filter_map(|msg| attr(msg, "mid"))
                .map(|mid| Self::key(pk.clone(), format!("MID#{mid}")))
                .collect();
            let n_mids = mids.len();
            self.delete_keys(mids).await?;
            self.delete_keys(messages.iter().map(key_of).collect())
                .await?;
            count(counts, RecordKind::MidMarker.as_str(), n_mids as u64);
            count(counts, RecordKind::Message.as_str(), messages.len() as u64);
            budget.spend(n_mids + messages.len());
            if next.is_none() {
                break;
            }
        }
        let conv_filter = || Some(("conversation_id = :c", vec![(":c", s(c))]));
        let mut rest: Vec<(Item, RecordKind)> = Vec::new();
        for item in self
            .raw_all(&pk, Some(&format!("REPLYKEY#{c}#")), None)
            .await?
        {
            rest.push((item, RecordKind::ReplyKey));
        }
        for item in self
            .raw_all(&pk, Some(keys::ORDER_LINK_PREFIX), conv_filter())
            .await?
        {
            rest.push((item, RecordKind::OrderLink));
        }
        // Per-conversation rate counters name the conversation in their key.
        for item in self
            .raw_all(
                &pk,
                Some("RATE#"),
                Some(("contains(SK, :c)", vec![(":c", s(c))])),
            )
            .await?
        {
            rest.push((item, RecordKind::RateCounter));
        }
        for (_, kind) in &rest {
            count(counts, kind.as_str(), 1);
        }
        budget.spend(rest.len());
        self.delete_keys(rest.iter().map(|(i, _)| key_of(i)).collect())
            .await?;
        // The customer's pointer to it, then the conversation itself, last: until then a
        // resumed run finds it again.
        if let Some(conv) = self.get_item(pk.clone(), keys::conversation_sk(c)).await? {
            if let Some(customer) = attr(&conv, "customer_id") {
                let res = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk.clone(), format!("CUSTOMER#{customer}"))))
                    .update_expression("REMOVE current_conversation_id")
                    .condition_expression("current_conversation_id = :c")
                    .expression_attribute_values(":c", s(c))
                    .send()
                    .await;
                super::written(res)?;
            }
            self.delete_keys(vec![key_of(&conv)]).await?;
            count(counts, RecordKind::Conversation.as_str(), 1);
            budget.spend(1);
        }
        Ok(Progress::Finished)
    }

    /// Deletes one customer of a merchant (POLICY E15, A19): see the module docs. Audit records
    /// that named the customer, one of their conversations or messages keep the action, who did
    /// it and when, but lose that id (POLICY A14 keeps the log; the erased person leaves it).
    pub async fn erase_customer(
        &self,
        objects: &ObjectEraser,
        m: &MerchantId,
        customer: &CustomerId,
        budget: &mut Budget,
        counts: &mut Counts,
    ) -> StoreResult<Progress> {
        let pk = keys::merchant_pk(m);
        let conversations: Vec<ConversationId> = self
            .raw_all(
                &pk,
                Some("CONV#"),
                Some(("customer_id = :cu", vec![(":cu", s(customer))])),
            )
            .await?
            .iter()
            .filter_map(|c| attr(c, "id").and_then(ConversationId::parse))
            .collect();
        // Every id of theirs, while all can still be found.
        let mut ids: HashSet<String> = HashSet::from([customer.to_string()]);
        for c in &conversations {
            ids.insert(c.to_string());
            for msg in self
                .raw_all(&pk, Some(&keys::messages_prefix(c)), None)
                .await?
            {
                ids.extend(attr(&msg, "id").map(str::to_owned));
            }
        }
        let scrubbed = self.scrub_audit_targets(m, &ids).await?;
        count(counts, "audit_target_erased", scrubbed);
        for c in &conversations {
            if self
                .erase_conversation(objects, m, c, budget, counts)
                .await?
                == Progress::Stopped
            {
                return Ok(Progress::Stopped);
            }
        }
        // Links made from the order's side name the customer too.
        let links = self
            .raw_all(
                &pk,
                Some(keys::ORDER_LINK_PREFIX),
                Some(("customer_id = :cu", vec![(":cu", s(customer))])),
            )
            .await?;
        count(counts, RecordKind::OrderLink.as_str(), links.len() as u64);
        self.delete_keys(links.iter().map(key_of).collect()).await?;
        if self
            .get_item(pk.clone(), keys::customer_sk(customer))
            .await?
            .is_some()
        {
            self.delete_keys(vec![Self::key(pk, keys::customer_sk(customer))])
                .await?;
            count(counts, RecordKind::Customer.as_str(), 1);
        }
        Ok(Progress::Finished)
    }

    /// Removes the target of the merchant's audit records that name one of `ids`.
    async fn scrub_audit_targets(&self, m: &MerchantId, ids: &HashSet<String>) -> StoreResult<u64> {
        let pk = keys::merchant_pk(m);
        let mut scrubbed = 0;
        for item in self
            .raw_all(
                &pk,
                Some(keys::AUDIT_PREFIX),
                Some(("attribute_exists(target)", Vec::new())),
            )
            .await?
        {
            let Some(target) = attr(&item, "target") else {
                continue;
            };
            if !ids.contains(target) {
                continue;
            }
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_of(&item)))
                .update_expression("REMOVE target")
                .condition_expression("target = :t")
                .expression_attribute_values(":t", s(target))
                .send()
                .await;
            if super::written(res)? {
                scrubbed += 1;
            }
        }
        Ok(scrubbed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Option<RecordKind>, pk: &str, sk: &str) -> Item {
        let mut i = Store::key(pk, sk);
        if let Some(k) = kind {
            i.insert(keys::KIND.into(), s(k.as_str()));
        }
        i
    }

    #[test]
    fn policy_a20_legal_records_are_exactly_the_kinds_decided_keep() {
        let kept: Vec<RecordKind> = RecordKind::ALL
            .iter()
            .copied()
            .filter(|k| decide(*k) == Decision::Keep)
            .collect();
        assert_eq!(kept, LEGAL_RECORDS);
        // Today no payment record is stored (POLICY A4 is later): nothing of a merchant is kept.
        assert!(LEGAL_RECORDS.is_empty());
    }

    #[test]
    fn every_kind_of_a_merchants_partition_is_deleted_and_every_other_is_not_found_there() {
        use super::super::kinds::Home;
        for k in RecordKind::ALL {
            match (k.home(), decide(*k)) {
                (Home::Merchant, Decision::Delete(_) | Decision::Keep) => {}
                (Home::Merchant, d) => panic!("{k}: a merchant's kind must be decided, got {d:?}"),
                (_, Decision::NotInPartition) => {}
                (h, d) => panic!("{k} lives in {h:?}, yet {d:?}"),
            }
        }
    }

    #[test]
    fn a_page_deletes_index_items_of_members_invitations_pages_and_facebook_users() {
        let m = MerchantId::generate();
        let pk = keys::merchant_pk(&m);
        let u = UserId::parse("user-1").unwrap();
        let mut page = item(Some(RecordKind::PageConnection), &pk, "PAGE#555");
        page.insert(
            super::super::deletions::FACEBOOK_USER_ATTRIBUTE.into(),
            s("fb-9"),
        );
        let mut auth = item(
            Some(RecordKind::MessengerAuthorization),
            &pk,
            keys::MESSENGER_AUTH_SK,
        );
        auth.insert(
            super::super::deletions::FACEBOOK_USER_ATTRIBUTE.into(),
            s("fb-9"),
        );
        let items = vec![
            item(Some(RecordKind::Merchant), &pk, keys::MERCHANT_PROFILE_SK),
            item(Some(RecordKind::Membership), &pk, &keys::member_sk(&u)),
            item(
                Some(RecordKind::Invitation),
                &pk,
                &keys::invite_sk("a@b.example"),
            ),
            page,
            auth,
            item(
                Some(RecordKind::AmazonConnection),
                &pk,
                keys::AMAZON_CONNECTION_SK,
            ),
            item(Some(RecordKind::Message), &pk, "MSG#c#m"),
            item(None, &pk, "ODD#1"),
        ];
        let plan = plan_page(&m, &items);
        let index: Vec<(String, String, bool)> = plan
            .index
            .iter()
            .map(|k| (k.pk.clone(), k.sk.clone(), k.only_if_merchant))
            .collect();
        let merchant_sk = format!("MERCHANT#{m}");
        for expected in [
            (keys::user_pk(&u), keys::membership_index_sk(&m), false),
            ("INVITE#a@b.example".to_owned(), merchant_sk.clone(), false),
            ("PAGE#555".to_owned(), "OWNER".to_owned(), true),
            ("FBUSER#fb-9".to_owned(), merchant_sk.clone(), false),
            ("AMAZON#CONNECTED".to_owned(), merchant_sk.clone(), false),
        ] {
            assert!(index.contains(&expected), "{expected:?} in {index:?}");
        }
        assert_eq!(index.len(), 5, "the Facebook user's item once: {index:?}");
        assert_eq!(plan.records.len(), items.len(), "every record goes");
        assert!(plan.records.iter().any(|(_, k)| k == UNKNOWN_KIND_COUNT));
        assert_eq!(plan.members, vec![u]);
        assert!(plan.kept.is_empty());
    }

    #[test]
    fn budgets_run_out_and_unlimited_ones_do_not() {
        let mut b = Budget::new(3);
        b.spend(2);
        assert_eq!(b.left(), 1);
        assert!(!b.spent());
        b.spend(5);
        assert!(b.spent());
        let mut u = Budget::unlimited();
        u.spend(1_000_000);
        assert!(!u.spent());
    }

    #[test]
    fn a_merchants_objects_and_a_conversations_attachments_have_their_prefixes() {
        let m = MerchantId::generate();
        let c = ConversationId::generate();
        assert_eq!(
            merchant_object_prefixes(&m),
            [format!("merchants/{m}/"), format!("exports/{m}/")]
        );
        assert!(attachment_prefix(&m, &c).starts_with(&merchant_object_prefixes(&m)[0]));
        assert!(attachment_prefix(&m, &c).ends_with(&format!("/{c}/")));
    }
}
