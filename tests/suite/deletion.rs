//! Deletion of a merchant and of one customer (POLICY A19, E15, A11, A20), end to end: the data
//! is built through the product's own routes and jobs, deleted through `DELETE`, and the whole
//! table and bucket are then searched for anything left.
//!
//! The job runs the way it does in production: `DELETE` queues it and the local stack's poller of
//! the `deletions` queue carries it out (`POST /_local/run/data-deletion` drains the queue now);
//! the proof is the receipt. Where a test needs the job in its own hands (a run stopped half-way,
//! a duplicate run), it stops the stack's pollers and runs `data_deletion::job::DeletionRunner`
//! built from the stack's own resources.

use std::collections::BTreeSet;
use std::time::Duration;

use data_deletion::job::{DeletionRunner, RunOutcome};
use ecomdrive_aws::store::deletion_jobs::{LEGAL_RECORDS, ObjectEraser};
use ecomdrive_aws::store::kinds::{Home, RecordKind};
use ecomdrive_aws::{Queue, TokenVault};
use ecomdrive_core::data_rights::{DeletionReceipt, DeletionStatus};
use ecomdrive_core::ids::DeletionId;
use ecomdrive_local::poller::Poller;
use ecomdrive_platforms::outbound::{AllowList, LoopbackPorts, OutboundHttp, Timeouts};
use ecomdrive_runtime::secrets::{MetaEndpoints, SecretCache};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    self, Item, PAGE_A, PAGE_B, TestStack, bucket_keys, eventually, eventually_within, scan_table,
};

/// Customers' PSIDs long enough that no other number of the table contains them.
const GONE_PSID: &str = "7700000000008101";
const FORGET_PSID: &str = "7700000000008301";

/// The job, built from the stack's resources, deleting at most `budget` per run.
async fn runner(s: &TestStack, budget: usize) -> DeletionRunner {
    let sdk = support::sdk().await;
    let r = &s.stack.resources;
    let sandbox = s.stack.sandbox.base_url().expect("the Meta sandbox serves");
    DeletionRunner {
        store: s.stack.store.clone(),
        vault: TokenVault::new(aws_sdk_kms::Client::new(&sdk), r.token_key_id.clone()),
        objects: ObjectEraser::new(ecomdrive_aws::s3_client(&sdk), r.bucket.clone()),
        queue: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            r.deletions_queue_url.clone(),
        ),
        meta: MetaEndpoints {
            graph_base: sandbox.clone(),
            dialog_base: sandbox,
            version: "v23.0".into(),
        },
        meta_secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            r.meta_secret_id.clone(),
        ),
        http: OutboundHttp::new(
            AllowList::production().with_loopback(LoopbackPorts::Any),
            Timeouts::default(),
        )
        .expect("client builds"),
        budget,
    }
}

/// Waits until the stack's job has carried the deletion out (draining the `deletions` queue
/// meanwhile, as the stack's poller also does) and returns its receipt, done.
async fn finished(s: &TestStack, id: &DeletionId) -> DeletionReceipt {
    eventually_within(
        "the deletion carried out by the job",
        Duration::from_secs(120),
        || async {
            let (status, body) = s
                .call(Method::POST, None, "/_local/run/data-deletion", None)
                .await;
            assert!(status.is_success(), "{status} {body}");
            s.stack
                .store
                .deletion(id)
                .await
                .expect("store")
                .filter(|r| r.status == DeletionStatus::Done)
        },
    )
    .await
}

/// Handles every record waiting on that queue (for stacks whose pollers are stopped).
async fn drain(poller: &Poller) {
    while poller
        .poll_once(Duration::ZERO)
        .await
        .expect("the queue answers")
        > 0
    {}
}

fn text(item: &Item) -> String {
    format!("{item:?}")
}

fn attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// Items (as text) that mention any of `needles`.
fn mentioning<'a>(items: &'a [Item], needles: &[String]) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| needles.iter().any(|n| text(i).contains(n.as_str())))
        .collect()
}

fn merchant_items(items: &[Item], m: &str) -> Vec<Item> {
    items
        .iter()
        .filter(|i| text(i).contains(m))
        .cloned()
        .collect()
}

async fn delete(s: &TestStack, token: &str, path: &str) -> (StatusCode, Value) {
    s.call(Method::DELETE, Some(token), path, None).await
}

/// The kinds of the merchant's partition.
fn kinds_of(items: &[Item], m: &str) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| attr(i, "PK") == format!("MERCHANT#{m}"))
        .map(|i| attr(i, "kind").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a19_merchant_deletion_leaves_nothing_but_the_receipt() {
    let s = support::stack().await;
    let a = s
        .merchant_with_everything("owner@gone.example", "agent@gone.example", GONE_PSID)
        .await;
    // The other merchant: its own Page, customer and member.
    let b = s.connected_merchant("owner@stays.example", PAGE_B).await;
    s.customer_writes(PAGE_B, "8201", "hello B").await;
    s.conversation_with(&b, "8201").await;

    let before = scan_table(&s.stack.resources.table).await;
    let kinds = kinds_of(&before, &a.merchant_id);
    let missing: Vec<&str> = RecordKind::ALL
        .iter()
        .filter(|k| k.home() == Home::Merchant)
        .map(|k| k.as_str())
        .filter(|k| !kinds.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "every record kind must be present before the deletion; missing: {missing:?}"
    );
    let b_before = merchant_items(&before, &b.merchant_id).len();
    // What only A had: its Page, its customer, its members (ids as the table holds them).
    let only_a: Vec<String> = before
        .iter()
        .filter(|i| attr(i, "PK") == format!("MERCHANT#{}", a.merchant_id))
        .filter_map(|i| {
            let sk = attr(i, "SK");
            sk.strip_prefix("MEMBER#")
                .or_else(|| sk.strip_prefix("CUSTOMER#"))
                .map(str::to_owned)
        })
        .chain([GONE_PSID.to_owned()])
        .collect();
    assert!(only_a.len() >= 4, "{only_a:?}");

    // The agent and the admin cannot delete the merchant.
    let m = &a.merchant_id;
    let (status, _) = delete(
        &s,
        &s.token("agent@gone.example"),
        &format!("/v1/merchants/{m}"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = delete(&s, &a.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let code = body["confirmation_code"].as_str().expect("code").to_owned();
    assert_eq!(body["status"], "pending");
    assert!(
        body["status_url"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/data-deletion/status/{code}")),
        "{body}"
    );
    assert!(body["due_by"].is_string());

    // Idempotent: asked again, the same deletion.
    let (status, again) = delete(&s, &a.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["confirmation_code"], code.as_str());

    // POLICY A11: the tokens are gone at once, before the job ran; the Page was unsubscribed.
    let now = scan_table(&s.stack.resources.table).await;
    let tokens: Vec<&Item> = now
        .iter()
        .filter(|i| text(i).contains(m.as_str()))
        .filter(|i| {
            [
                "token_ciphertext",
                "user_token_ciphertext",
                "refresh_token_ciphertext",
            ]
            .iter()
            .any(|t| i.contains_key(*t))
        })
        .collect();
    assert!(tokens.is_empty(), "tokens left: {tokens:?}");
    assert_eq!(
        s.stack.sandbox.subscribed_fields(PAGE_A),
        None,
        "Page A unsubscribed"
    );
    assert!(
        s.stack.sandbox.subscribed_fields(PAGE_B).is_some(),
        "Page B untouched"
    );

    // From the request on, the merchant's routes answer 410 Gone.
    for path in [
        format!("/v1/merchants/{m}"),
        format!("/v1/merchants/{m}/conversations"),
        format!("/v1/merchants/{m}/orders"),
    ] {
        let (status, body) = s.get(&a.token, &path).await;
        assert_eq!(status, StatusCode::GONE, "{path}: {body}");
        assert!(
            body["type"].as_str().unwrap_or("").ends_with("gone"),
            "{body}"
        );
    }

    // The queued job carries it out; its receipt counts what went.
    let id = DeletionId::parse(&code).expect("a deletion id");
    let receipt = finished(&s, &id).await;
    let counts = &receipt.counts;
    assert!(
        counts.get("message").is_some_and(|n| *n >= 2)
            && counts.get("object").is_some_and(|n| *n >= 1),
        "{counts:?}"
    );

    // Nothing of A is left but its receipt and tombstone, and nothing A alone had.
    let after = scan_table(&s.stack.resources.table).await;
    let left: Vec<&Item> = mentioning(&after, std::slice::from_ref(m))
        .into_iter()
        .filter(|i| attr(i, "kind") != "merchant_deleted_index")
        .collect();
    assert!(left.is_empty(), "left of the merchant: {left:#?}");
    let left: Vec<&Item> = mentioning(&after, &only_a);
    assert!(left.is_empty(), "left of what only it had: {left:#?}");
    // Its Page no longer routes to anyone (B's authorization may still list the Page by name:
    // the sandbox's test user manages both Pages).
    assert!(
        !after
            .iter()
            .any(|i| attr(i, "PK") == format!("PAGE#{PAGE_A}")),
        "the Page's routing is gone"
    );
    let bucket = bucket_keys(&s.stack.resources.bucket, "").await;
    for prefix in [format!("merchants/{m}/"), format!("exports/{m}/")] {
        let left: Vec<&String> = bucket.iter().filter(|k| k.starts_with(&prefix)).collect();
        assert!(left.is_empty(), "left under {prefix}: {left:?}");
    }
    let objects: Vec<&String> = bucket.iter().filter(|k| k.contains(m.as_str())).collect();
    assert!(objects.is_empty(), "{objects:?}");
    assert!(
        LEGAL_RECORDS.is_empty(),
        "nothing of a merchant is kept today"
    );

    // The receipt is the proof, without personal data.
    let receipt = s.stack.store.deletion(&id).await.unwrap().expect("receipt");
    assert_eq!(receipt.status, DeletionStatus::Done);
    assert!(receipt.subject.is_none() && receipt.completed_at.is_some());
    assert_eq!(receipt.subject_kind, "merchant");
    // Still 410 Gone, also for the former owner whose membership is gone.
    let (status, _) = s.get(&a.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::GONE);
    // Another run of the same message does nothing.
    assert_eq!(
        runner(&s, 10).await.run(&id, 10).await.unwrap(),
        RunOutcome::AlreadyDone
    );

    // The other merchant is untouched.
    assert_eq!(merchant_items(&after, &b.merchant_id).len(), b_before);
    let (status, _) = s
        .get(&b.token, &format!("/v1/merchants/{}", b.merchant_id))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e15_customer_deletion_removes_the_customer_everywhere() {
    let s = support::stack().await;
    let t = s.connected_merchant("owner@forget.example", PAGE_A).await;
    let m = t.merchant_id.clone();
    s.customer_writes(PAGE_A, FORGET_PSID, "please forget me")
        .await;
    s.stack
        .sandbox
        .simulate_attachment(
            PAGE_A,
            FORGET_PSID,
            "file",
            b"my invoice".to_vec(),
            "application/pdf",
        )
        .await
        .expect("attachment");
    s.customer_writes(PAGE_A, "8302", "I stay").await;
    let gone = s.conversation_with(&t, FORGET_PSID).await;
    let stays = s.conversation_with(&t, "8302").await;
    let cid = gone["id"].as_str().unwrap().to_owned();
    let customer = gone["customer"]["id"].as_str().unwrap().to_owned();
    eventually("the attachment in the bucket", || async {
        bucket_keys(&s.stack.resources.bucket, "")
            .await
            .iter()
            .any(|k| k.contains(&cid))
            .then_some(())
    })
    .await;
    let (status, reply) = s
        .post(
            &t.token,
            &format!("/v1/merchants/{m}/conversations/{cid}/replies"),
            json!({"text": "Will do", "client_id": "forget-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (status, body) = s
        .post(
            &t.token,
            &format!("/v1/merchants/{m}/conversations/{cid}/orders"),
            json!({"order_ref": "171-1234567-7654321"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the reply sent", || async {
        s.messages(&t, &cid)
            .await
            .iter()
            .any(|msg| msg["id"] == reply["id"] && msg["status"] == "sent")
            .then_some(())
    })
    .await;
    let message_ids: Vec<String> = s
        .messages(&t, &cid)
        .await
        .iter()
        .filter_map(|msg| msg["id"].as_str().map(str::to_owned))
        .collect();
    let needles: Vec<String> = [customer.clone(), cid.clone(), FORGET_PSID.to_owned()]
        .into_iter()
        .chain(message_ids)
        .collect();
    let before = scan_table(&s.stack.resources.table).await;
    assert!(!mentioning(&before, &needles).is_empty());
    let stays_id = stays["customer"]["id"].as_str().unwrap().to_owned();
    let others_before = mentioning(&before, std::slice::from_ref(&stays_id)).len();

    // Agents may not; an unknown customer is a 404 and queues nothing.
    s.invite(&t, "agent@forget.example", "agent").await;
    let agent = s.token("agent@forget.example");
    s.get(&agent, "/v1/me").await;
    let path = format!("/v1/merchants/{m}/customers/{customer}");
    assert_eq!(delete(&s, &agent, &path).await.0, StatusCode::FORBIDDEN);
    let unknown = format!("/v1/merchants/{m}/customers/cus_0000000000000000000000000");
    assert_eq!(
        delete(&s, &t.token, &unknown).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = delete(&s, &t.token, &path).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = DeletionId::parse(body["confirmation_code"].as_str().unwrap()).unwrap();
    let receipt = finished(&s, &id).await;
    assert!(
        receipt.counts.get("message").is_some_and(|n| *n >= 2)
            && receipt.counts.get("object").is_some_and(|n| *n >= 1),
        "{:?}",
        receipt.counts
    );
    assert!(receipt.subject.is_none(), "{receipt:?}");

    let after = scan_table(&s.stack.resources.table).await;
    let left = mentioning(&after, &needles);
    assert!(left.is_empty(), "left of the customer: {left:#?}");
    let objects: Vec<String> = bucket_keys(&s.stack.resources.bucket, "")
        .await
        .into_iter()
        .filter(|k| k.contains(&cid))
        .collect();
    assert!(objects.is_empty(), "{objects:?}");
    assert_eq!(
        mentioning(&after, std::slice::from_ref(&stays_id)).len(),
        others_before,
        "the other customer is untouched"
    );
    let (status, _) = s.get(&t.token, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The merchant goes on: the action is in its audit log, naming the deletion only.
    let (status, audit) = s.get(&t.token, &format!("/v1/merchants/{m}/audit")).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert!(audit.to_string().contains("customer.delete"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a19_a_deletion_stopped_half_way_finishes_on_the_next_run() {
    // The pollers are stopped: the job is in this test's hands, not the stack's.
    let s = support::stack_with(|o| o.run_pollers = false).await;
    let t = s.connected_merchant("owner@halfway.example", PAGE_A).await;
    for i in 0..6 {
        s.customer_writes(PAGE_A, &format!("77000000000084{i:02}"), "hello")
            .await;
    }
    eventually("six conversations", || async {
        drain(&s.stack.inbound_poller).await;
        (s.conversations(&t).await.len() == 6).then_some(())
    })
    .await;
    let m = t.merchant_id.clone();
    let (status, body) = delete(&s, &t.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = DeletionId::parse(body["confirmation_code"].as_str().unwrap()).unwrap();

    // Killed after 5 deletions: some data left, the receipt running.
    let job = runner(&s, 5).await;
    let first = job.run(&id, 5).await.unwrap();
    assert!(matches!(first, RunOutcome::Unfinished { .. }), "{first:?}");
    let receipt = s.stack.store.deletion(&id).await.unwrap().unwrap();
    assert_eq!(receipt.status, DeletionStatus::Running);
    assert!(receipt.subject.is_some());
    let left = merchant_items(&scan_table(&s.stack.resources.table).await, &m)
        .into_iter()
        .filter(|i| {
            attr(i, "kind") != "merchant_deleted_index" && attr(i, "kind") != "deletion_receipt"
        })
        .count();
    assert!(left > 0, "some data is left after a stopped run");

    // A duplicate of the message while another run holds the deletion does nothing (SQS delivers
    // at least once): the counts stay those of the runs that deleted.
    let now = time::OffsetDateTime::now_utc();
    assert!(
        s.stack
            .store
            .claim_deletion(&id, "another-run", now, data_deletion::job::RUN_LEASE)
            .await
            .unwrap()
    );
    assert_eq!(job.run(&id, 100_000).await.unwrap(), RunOutcome::Busy);
    assert_eq!(
        merchant_items(&scan_table(&s.stack.resources.table).await, &m)
            .into_iter()
            .filter(|i| {
                attr(i, "kind") != "merchant_deleted_index" && attr(i, "kind") != "deletion_receipt"
            })
            .count(),
        left,
        "a busy run deletes nothing"
    );
    s.stack
        .store
        .release_deletion(&id, "another-run")
        .await
        .unwrap();

    // The next run finishes it; the counts add up across runs.
    let second = job.run(&id, 100_000).await.unwrap();
    assert!(matches!(second, RunOutcome::Done { .. }), "{second:?}");
    let after = scan_table(&s.stack.resources.table).await;
    let left: Vec<Item> = merchant_items(&after, &m)
        .into_iter()
        .filter(|i| attr(i, "kind") != "merchant_deleted_index")
        .collect();
    assert!(left.is_empty(), "{left:#?}");
    let receipt = s.stack.store.deletion(&id).await.unwrap().unwrap();
    assert_eq!(receipt.status, DeletionStatus::Done);
    assert_eq!(
        receipt.counts.get("conversation"),
        Some(&6),
        "{:?}",
        receipt.counts
    );
    assert_eq!(
        receipt.counts.get("customer"),
        Some(&6),
        "{:?}",
        receipt.counts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a14_only_an_owner_deletes_a_merchant_and_owners_or_admins_a_customer() {
    let s = support::stack().await;
    let t = s
        .connected_merchant("owner@roles-del.example", PAGE_A)
        .await;
    let m = t.merchant_id.clone();
    for (email, role) in [
        ("admin@roles-del.example", "admin"),
        ("agent@roles-del.example", "agent"),
    ] {
        let (status, body) = s.invite(&t, email, role).await;
        assert!(status.is_success(), "{body}");
        s.get(&s.token(email), "/v1/me").await;
    }
    let admin = s.token("admin@roles-del.example");
    let agent = s.token("agent@roles-del.example");
    let stranger = s.token("stranger@roles-del.example");
    let merchant = format!("/v1/merchants/{m}");
    assert_eq!(delete(&s, &agent, &merchant).await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&s, &admin, &merchant).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        delete(&s, &stranger, &merchant).await.0,
        StatusCode::NOT_FOUND
    );

    s.customer_writes(PAGE_A, "8501", "hi").await;
    let conv = s.conversation_with(&t, "8501").await;
    let customer = format!(
        "/v1/merchants/{m}/customers/{}",
        conv["customer"]["id"].as_str().unwrap()
    );
    assert_eq!(delete(&s, &agent, &customer).await.0, StatusCode::FORBIDDEN);
    let (status, body) = delete(&s, &admin, &customer).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");

    let (status, first) = delete(&s, &t.token, &merchant).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, second) = delete(&s, &t.token, &merchant).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(first["confirmation_code"], second["confirmation_code"]);
    // Every member, and every route, gets 410 from now on (the job runs meanwhile); the admin's
    // DELETE too: it deletes nothing.
    assert_eq!(s.get(&agent, &merchant).await.0, StatusCode::GONE);
    assert_eq!(delete(&s, &admin, &merchant).await.0, StatusCode::GONE);
    assert_eq!(delete(&s, &admin, &customer).await.0, StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e15_a_messenger_authorization_without_a_page_leaves_no_facebook_index_behind() {
    // The job is left to `finished` (the stack's own `data-deletion`, drained on demand).
    let s = support::stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("owner@no-page.example").await;
    let m = t.merchant_id.clone();
    let authorized = s.authorize_messenger(&t).await;
    assert_eq!(authorized["status"], "authorized", "{authorized}");

    // The person authorized Messenger and connected no Page: only the authorization names them,
    // with its index item `FBUSER#<id>` / `MERCHANT#<m>`.
    let before = scan_table(&s.stack.resources.table).await;
    let index: Vec<&Item> = before
        .iter()
        .filter(|i| attr(i, "kind") == RecordKind::FacebookUserIndex.as_str())
        .filter(|i| attr(i, "SK") == format!("MERCHANT#{m}"))
        .collect();
    assert_eq!(index.len(), 1, "the authorization's index item: {index:#?}");
    assert!(
        !before.iter().any(|i| {
            attr(i, "PK") == format!("MERCHANT#{m}")
                && attr(i, "kind") == RecordKind::PageConnection.as_str()
        }),
        "no Page is connected"
    );

    let (status, body) = delete(&s, &t.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = DeletionId::parse(body["confirmation_code"].as_str().expect("code")).unwrap();
    finished(&s, &id).await;

    // Nothing mentions the merchant but its tombstone (the done receipt names no one).
    let after = scan_table(&s.stack.resources.table).await;
    let left: Vec<&Item> = mentioning(&after, std::slice::from_ref(&m))
        .into_iter()
        .filter(|i| attr(i, "kind") != RecordKind::MerchantDeletedIndex.as_str())
        .collect();
    assert!(left.is_empty(), "left of the merchant: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a11_an_oauth_callback_after_the_deletion_request_is_gone_and_writes_no_token() {
    // No job runs: the memberships are still there when the callbacks come back, as they are
    // until the job's last step.
    let s = support::stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("owner@late-callback.example").await;
    let m = t.merchant_id.clone();
    // Both connections started (the browser holds each one's nonce cookie), not yet completed.
    let mut started = Vec::new();
    for integration in ["amazon", "messenger"] {
        let (status, body) = s
            .post(
                &t.token,
                &format!("/v1/merchants/{m}/integrations/{integration}/connect"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{integration}: {body}");
        let url = body["authorize_url"].as_str().expect("authorize_url");
        started.push((integration, url.to_owned()));
    }

    let (status, body) = delete(&s, &t.token, &format!("/v1/merchants/{m}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The platforms consent and send the browser back: the merchant is gone.
    for (integration, url) in started {
        let res = s.browser.get(url).send().await.expect("consent answers");
        assert_eq!(res.status(), StatusCode::GONE, "{integration}");
        let problem: Value = res.json().await.expect("a problem");
        assert!(
            problem["type"].as_str().unwrap_or("").ends_with("gone"),
            "{integration}: {problem}"
        );
    }
    let table = scan_table(&s.stack.resources.table).await;
    let written: Vec<&Item> = mentioning(&table, std::slice::from_ref(&m))
        .into_iter()
        .filter(|i| {
            [
                RecordKind::AmazonConnection,
                RecordKind::AmazonConnectedIndex,
                RecordKind::MessengerAuthorization,
                RecordKind::FacebookUserIndex,
            ]
            .iter()
            .any(|k| attr(i, "kind") == k.as_str())
                || [
                    "token_ciphertext",
                    "user_token_ciphertext",
                    "refresh_token_ciphertext",
                ]
                .iter()
                .any(|a| i.contains_key(*a))
        })
        .collect();
    assert!(
        written.is_empty(),
        "written after the deletion: {written:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a19_a_merchant_being_deleted_is_no_longer_listed_for_its_members() {
    // No job runs: the memberships stay until its last step, and the lists must not show the
    // merchant meanwhile.
    let s = support::stack_with(|o| o.run_pollers = false).await;
    let gone = s.merchant("owner@listed.example").await;
    let stays = s.merchant("owner@listed.example").await;
    let token = &gone.token;
    let ids = |body: &Value, list: &str| -> BTreeSet<String> {
        body[list]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect()
    };
    let both = BTreeSet::from([gone.merchant_id.clone(), stays.merchant_id.clone()]);
    let (status, me) = s.get(token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(ids(&me, "merchants"), both, "{me}");

    let (status, body) = delete(&s, token, &format!("/v1/merchants/{}", gone.merchant_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let only = BTreeSet::from([stays.merchant_id.clone()]);
    let (status, me) = s.get(token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(ids(&me, "merchants"), only, "{me}");
    let (status, list) = s.get(token, "/v1/merchants").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list, "items"), only, "{list}");
}
