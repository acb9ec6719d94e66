//! Retention (POLICY A5, A20, E16) with a movable clock: the sweeper takes `now`, so each test
//! sweeps one second before a period ends (nothing happens) and at its end (it happens), on data
//! made through the product's own paths.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_aws::store::audit::AuditRecord;
use ecomdrive_aws::store::deletion_jobs::ObjectEraser;
use ecomdrive_aws::{Queue, Store};
use ecomdrive_core::data_rights::{DeletionChannel, DeletionJob, DeletionStatus, DeletionSubject};
use ecomdrive_core::ids::{ConversationId, MerchantId};
use ecomdrive_core::retention;
use reqwest::StatusCode;
use retention_sweeper::{RetentionSweeper, SweepReport};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::support::{PAGE_A, Tenant, TestStack, sdk, stack, stack_with};

const SECOND: Duration = Duration::seconds(1);

/// The sweeper of this test's stack, as the lead's `/_local/run/retention-sweeper` builds it.
async fn sweeper(s: &TestStack) -> RetentionSweeper {
    let sdk = sdk().await;
    let r = &s.stack.resources;
    RetentionSweeper {
        store: s.stack.store.clone(),
        deletions: Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            r.deletions_queue_url.clone(),
        ),
        objects: ObjectEraser::new(ecomdrive_aws::s3_client(&sdk), r.bucket.clone()),
    }
}

async fn sweep(sw: &RetentionSweeper, now: OffsetDateTime) -> SweepReport {
    sw.sweep(now).await.expect("the sweep runs")
}

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

fn store(s: &TestStack) -> &Store {
    &s.stack.store
}

/// The merchant's audit log as the API shows it to its owner.
async fn audit_api(s: &TestStack, t: &Tenant) -> Vec<Value> {
    let (status, body) = s
        .get(&t.token, &format!("/v1/merchants/{}/audit", t.merchant_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn audit_record(s: &TestStack, t: &Tenant, action: &str) -> AuditRecord {
    store(s)
        .audit_log(&merchant_id(t), 500)
        .await
        .expect("the audit log reads")
        .into_iter()
        .find(|r| r.action == action)
        .unwrap_or_else(|| panic!("no {action} record"))
}

/// The sort keys of the merchant's partition that start with `prefix`, straight from the table.
async fn sort_keys(s: &TestStack, m: &MerchantId, prefix: &str) -> BTreeSet<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk().await);
    let mut out = BTreeSet::new();
    let mut start = None;
    loop {
        let page = dynamo
            .query()
            .table_name(&s.stack.resources.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("MERCHANT#{m}")))
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("the table answers");
        for item in page.items.unwrap_or_default() {
            if let Some(AttributeValue::S(sk)) = item.get("SK") {
                out.insert(sk.clone());
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

// --- A5: IP addresses ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a5_audit_ip_addresses_are_anonymised_after_90_days() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let sw = sweeper(&s).await;
    // Two audited requests: creating the merchant (no user agent), renaming it from a browser.
    let t = s.merchant("owner@a5.example").await;
    let res = s
        .browser
        .patch(s.url(&format!("/v1/merchants/{}", t.merchant_id)))
        .bearer_auth(&t.token)
        .header(
            reqwest::header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux) Test/1.0",
        )
        .json(&json!({"name": "Acme Retail"}))
        .send()
        .await
        .expect("the stack answers");
    assert_eq!(res.status(), StatusCode::OK);
    let created = audit_record(&s, &t, "merchant.create").await;
    let renamed = audit_record(&s, &t, "merchant.update").await;
    assert_eq!(created.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(renamed.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        renamed.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux) Test/1.0")
    );
    assert!(created.at <= renamed.at);

    // One second before the 90 days of the first record end: both keep their address.
    let first_end = retention::IP_ADDRESS.end(created.at);
    assert_eq!(first_end, created.at + Duration::days(90));
    let report = sweep(&sw, first_end - SECOND).await;
    assert_eq!(report.ips_anonymised, 0, "{report:?}");
    assert_eq!(audit_record(&s, &t, "merchant.create").await, created);

    // At the end: the first record keeps only its network and is flagged.
    let report = sweep(&sw, first_end).await;
    let shown = audit_api(&s, &t).await;
    let create_json = shown
        .iter()
        .find(|r| r["action"] == "merchant.create")
        .expect("the record is still listed");
    assert_eq!(create_json["ip"], "127.0.0.0");
    assert_eq!(create_json["ip_anonymised"], true);
    if renamed.at > created.at {
        // The later record's 90 days are not over yet.
        assert_eq!(report.ips_anonymised, 1, "{report:?}");
        assert_eq!(audit_record(&s, &t, "merchant.update").await, renamed);
    }
    // The sweep itself is in the log, as the job, with no address of its own.
    let job = audit_record(&s, &t, "retention.audit.anonymise_ip").await;
    assert_eq!(job.job.as_deref(), Some("retention-sweeper"));
    assert_eq!((job.actor, job.ip), (None, None));

    // The second record at its own end: its network stays, its user agent goes.
    let second_end = retention::IP_ADDRESS.end(renamed.at);
    sweep(&sw, second_end).await;
    let after = audit_record(&s, &t, "merchant.update").await;
    assert_eq!(after.ip.as_deref(), Some("127.0.0.0"));
    assert!(after.ip_anonymised);
    assert_eq!(
        after.user_agent, None,
        "a full user agent would single out the device"
    );
    assert_eq!(
        (&after.id, &after.action, &after.actor, after.at),
        (&renamed.id, &renamed.action, &renamed.actor, renamed.at),
        "who did what and when stay"
    );

    // Idempotent: the same sweep again does nothing more.
    let again = sweep(&sw, second_end).await;
    assert_eq!(again.ips_anonymised, 0, "{again:?}");
}

// --- A20: communication records ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a20_a_conversation_with_no_message_for_two_years_is_deleted() {
    let s = stack().await;
    let sw = sweeper(&s).await;
    let t = s.connected_merchant("owner@a20conv.example", PAGE_A).await;
    let m = merchant_id(&t);
    s.customer_writes(PAGE_A, "7301", "an old question").await;
    let idle = s.conversation_with(&t, "7301").await;
    let idle_id = ConversationId::parse(idle["id"].as_str().unwrap()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.customer_writes(PAGE_A, "7302", "a newer question").await;
    let active = s.conversation_with(&t, "7302").await;
    let active_id = ConversationId::parse(active["id"].as_str().unwrap()).unwrap();

    let conv = |id: &ConversationId| {
        let (st, m, id) = (store(&s).clone(), m.clone(), id.clone());
        async move { st.conversation(&m, &id).await.expect("the store reads") }
    };
    let idle_at = conv(&idle_id).await.unwrap().last_activity_at;
    let active_at = conv(&active_id).await.unwrap().last_activity_at;
    assert!(
        idle_at < active_at,
        "the second conversation's message is later"
    );
    let messages_of = |id: &ConversationId| format!("MSG#{id}#");
    assert_eq!(sort_keys(&s, &m, &messages_of(&idle_id)).await.len(), 1);

    let end = retention::COMMUNICATION_RECORDS.end(idle_at);
    let report = sweep(&sw, end - SECOND).await;
    assert_eq!(report.conversations_deleted, 0, "{report:?}");
    assert!(conv(&idle_id).await.is_some());

    let report = sweep(&sw, end).await;
    assert_eq!(report.conversations_deleted, 1, "{report:?}");
    // The idle one is gone with its messages; the API no longer finds it.
    assert!(conv(&idle_id).await.is_none());
    assert!(sort_keys(&s, &m, &messages_of(&idle_id)).await.is_empty());
    let (status, _) = s
        .get(
            &t.token,
            &format!("/v1/merchants/{}/conversations/{idle_id}", t.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The active one stays with its message.
    assert!(conv(&active_id).await.is_some());
    assert_eq!(s.messages(&t, active_id.as_str()).await.len(), 1);
    // The deletion is in the merchant's log, as the job, naming the conversation.
    let logged = audit_record(&s, &t, "retention.conversation.delete").await;
    assert_eq!(logged.target.as_deref(), Some(idle_id.as_str()));
    assert_eq!(logged.job.as_deref(), Some("retention-sweeper"));

    let again = sweep(&sw, end).await;
    assert_eq!(again.conversations_deleted, 0, "{again:?}");
}

// --- A20: a closed account ---

/// The deletion jobs on the queue now (received, so they are not counted twice).
async fn queued_deletions(s: &TestStack) -> Vec<DeletionJob> {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let out = sqs
        .receive_message()
        .queue_url(&s.stack.resources.deletions_queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(600)
        .send()
        .await
        .expect("the queue answers");
    out.messages
        .unwrap_or_default()
        .iter()
        .map(|msg| serde_json::from_str(msg.body().unwrap_or_default()).expect("a deletion job"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a20_a_closed_merchant_is_deleted_90_days_later() {
    // No pollers: the deletion job stays on the queue for the test to see.
    let s = stack_with(|o| o.run_pollers = false).await;
    let sw = sweeper(&s).await;
    let closing = s.merchant("owner@closing.example").await;
    let reopened = s.merchant("owner@reopening.example").await;

    // Only the owner closes: an admin may not.
    let (status, body) = s.invite(&closing, "admin@closing.example", "admin").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let admin = s.token("admin@closing.example");
    assert_eq!(s.get(&admin, "/v1/me").await.0, StatusCode::OK);
    let close_path = |t: &Tenant| format!("/v1/merchants/{}/close", t.merchant_id);
    let (status, body) = s.post(&admin, &close_path(&closing), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, closed) = s
        .post(&closing.token, &close_path(&closing), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let closed_at = store(&s)
        .merchant(&merchant_id(&closing))
        .await
        .unwrap()
        .unwrap()
        .closed_at
        .expect("closed");
    let due = retention::CLOSED_MERCHANT.end(closed_at);
    let rfc = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(closed["closed_at"], rfc(closed_at));
    assert_eq!(closed["deletion_due_at"], rfc(due));
    // Closing again keeps the first date.
    let (_, again) = s
        .post(&closing.token, &close_path(&closing), json!({}))
        .await;
    assert_eq!(again["closed_at"], closed["closed_at"]);
    // A closed merchant's data reads as before.
    let (status, _) = s
        .get(
            &closing.token,
            &format!("/v1/merchants/{}", closing.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = s
        .post(&reopened.token, &close_path(&reopened), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, open) = s
        .post(
            &reopened.token,
            &format!("/v1/merchants/{}/reopen", reopened.merchant_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{open}");
    assert_eq!(open, json!({"closed_at": null, "deletion_due_at": null}));
    let actions: Vec<String> = audit_api(&s, &reopened)
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        actions.contains(&"merchant.close".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"merchant.reopen".to_owned()),
        "{actions:?}"
    );

    // One second before the 90 days end: nothing.
    let report = sweep(&sw, due - SECOND).await;
    assert_eq!(report.merchants_deletion_requested, 0, "{report:?}");
    assert!(queued_deletions(&s).await.is_empty());

    // At the end: a receipt, the merchant marked as being deleted, a job on the queue.
    let report = sweep(&sw, due).await;
    assert_eq!(report.merchants_deletion_requested, 1, "{report:?}");
    let jobs = queued_deletions(&s).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let receipt = store(&s)
        .deletion(&jobs[0].deletion_id)
        .await
        .unwrap()
        .expect("a receipt");
    assert_eq!(
        receipt.subject,
        Some(DeletionSubject::Merchant {
            merchant_id: merchant_id(&closing)
        })
    );
    assert_eq!(receipt.channel, DeletionChannel::Retention);
    assert_eq!(receipt.status, DeletionStatus::Pending);
    assert_eq!(receipt.requested_at, due);
    assert_eq!(receipt.due_by, retention::DELETION_DEADLINE.end(due));
    assert_eq!(
        store(&s)
            .merchant_deletion(&merchant_id(&closing))
            .await
            .unwrap(),
        Some(receipt.id.clone())
    );

    // The same sweep again asks for nothing more; the reopened merchant is never asked for.
    let again = sweep(&sw, due).await;
    assert_eq!(
        (again.merchants_deletion_requested, again.deletions_requeued),
        (0, 0),
        "{again:?}"
    );
    assert!(queued_deletions(&s).await.is_empty());
    let later = sweep(&sw, due + Duration::days(400)).await;
    assert_eq!(later.merchants_deletion_requested, 0, "{later:?}");
    assert_eq!(
        store(&s)
            .merchant_deletion(&merchant_id(&reopened))
            .await
            .unwrap(),
        None
    );
    // A day on, a retention deletion still pending lost its job: it is queued again.
    assert_eq!(later.deletions_requeued, 1, "{later:?}");
    let requeued = queued_deletions(&s).await;
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].deletion_id, receipt.id);
}

// --- A19: a merchant deletion nobody carries out ---

/// Removes every message waiting on the deletions queue (a lost send, as far as the job knows).
async fn lose_queued_deletions(s: &TestStack) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let mut lost = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&s.stack.resources.deletions_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("the queue answers");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return lost;
        }
        for msg in messages {
            sqs.delete_message()
                .queue_url(&s.stack.resources.deletions_queue_url)
                .receipt_handle(msg.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("the message is deleted");
            lost += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a19_a_merchant_deletion_whose_job_was_lost_is_queued_again_a_day_later() {
    // No pollers: the deletion job stays on the queue for the test to see (or lose).
    let s = stack_with(|o| o.run_pollers = false).await;
    let sw = sweeper(&s).await;
    let t = s.merchant("owner@lost-deletion.example").await;
    let m = merchant_id(&t);
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            Some(&t.token),
            &format!("/v1/merchants/{m}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = store(&s)
        .merchant_deletion(&m)
        .await
        .unwrap()
        .expect("the merchant is being deleted");
    let receipt = store(&s).deletion(&id).await.unwrap().expect("a receipt");
    assert_eq!(
        (receipt.channel, receipt.status),
        (DeletionChannel::Api, DeletionStatus::Pending)
    );
    // The route queued its job; the message is lost (a failed send, as the job sees it).
    assert_eq!(lose_queued_deletions(&s).await, 1);
    let asked = receipt.requested_at;

    // An hour on, the job may still be on its way: nothing is queued.
    let report = sweep(&sw, asked + Duration::hours(1)).await;
    assert_eq!(
        (report.merchants_being_deleted, report.deletions_requeued),
        (1, 0),
        "{report:?}"
    );
    assert!(queued_deletions(&s).await.is_empty());

    // A day on, still pending: it is queued again.
    let day = asked + retention_sweeper::REQUEUE_AFTER + SECOND;
    let report = sweep(&sw, day).await;
    assert_eq!(report.deletions_requeued, 1, "{report:?}");
    let jobs = queued_deletions(&s).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].deletion_id, id);
    lose_queued_deletions(&s).await;

    // A run claims it and dies holding it (its message ends in the DLQ): while its lease lasts
    // the deletion is left to it; once the lease has run out, it is queued again.
    let lease = std::time::Duration::from_secs(900);
    assert!(
        store(&s)
            .claim_deletion(&id, "run_dead", day, lease)
            .await
            .unwrap()
    );
    let held = store(&s).deletion_with_lease(&id).await.unwrap().unwrap();
    assert_eq!(held.receipt.status, DeletionStatus::Running);
    assert_eq!(
        held.lease_until.map(OffsetDateTime::unix_timestamp),
        Some((day + lease).unix_timestamp()),
        "the lease as the claim wrote it (whole seconds)"
    );
    let report = sweep(&sw, day + lease - SECOND).await;
    assert_eq!(report.deletions_requeued, 0, "{report:?}");
    assert!(queued_deletions(&s).await.is_empty());
    let report = sweep(&sw, day + lease).await;
    assert_eq!(report.deletions_requeued, 1, "{report:?}");
    let jobs = queued_deletions(&s).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].deletion_id, id);
}

// --- E16: expired items ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e16_expired_items_are_ignored_on_read() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("owner@e16.example").await;
    let created = audit_record(&s, &t, "merchant.create").await;
    assert_eq!(audit_api(&s, &t).await.len(), 1);
    // Its TTL passes; DynamoDB has not removed it yet (it may take days; moto never does).
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk().await);
    let key = [
        (
            "PK".to_owned(),
            AttributeValue::S(format!("MERCHANT#{}", t.merchant_id)),
        ),
        (
            "SK".to_owned(),
            AttributeValue::S(format!("AUDIT#{}", created.id)),
        ),
    ];
    dynamo
        .update_item()
        .table_name(&s.stack.resources.table)
        .set_key(Some(key.clone().into()))
        .update_expression("SET expires_at = :past")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((OffsetDateTime::now_utc().unix_timestamp() - 1).to_string()),
        )
        .send()
        .await
        .expect("the record is there");
    let still_stored = dynamo
        .get_item()
        .table_name(&s.stack.resources.table)
        .set_key(Some(key.into()))
        .send()
        .await
        .unwrap()
        .item;
    assert!(still_stored.is_some(), "still in the table");
    assert!(audit_api(&s, &t).await.is_empty(), "but no longer read");
}

// --- A20: business records ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a20_settlements_stay_while_the_merchant_does() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let sw = sweeper(&s).await;
    let t = s.merchant("owner@ledger-kept.example").await;
    let m = merchant_id(&t);
    let res = s
        .browser
        .post(s.url(&format!("/v1/merchants/{}/settlements", t.merchant_id)))
        .bearer_auth(&t.token)
        .header(reqwest::header::CONTENT_TYPE, "text/tab-separated-values")
        .body(crate::settlements::small_settlement("12000000901"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = s
        .browser
        .put(s.url(&format!("/v1/merchants/{}/cogs", t.merchant_id)))
        .bearer_auth(&t.token)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body("sku,unit_cost,currency,effective_from\nKURTA-RED-M,400.00,INR,2026-01-01\n")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let business = ["SETTLEMENT#", "STLDAY#", "STLSKU#", "STLORDER#", "COGS#"];
    let mut before = Vec::new();
    for prefix in business {
        before.push(sort_keys(&s, &m, prefix).await);
    }
    // The settlement and the costs are there (the other kinds as the file makes them).
    assert!(!before[0].is_empty() && !before[4].is_empty(), "{before:?}");

    // Far past every period of the policy, payment records' seven years included.
    let far = OffsetDateTime::now_utc() + Duration::days(365 * 10);
    let report = sweep(&sw, far).await;
    assert_eq!(report.merchants_deletion_requested, 0, "{report:?}");
    for (prefix, kept) in business.iter().zip(&before) {
        assert_eq!(&sort_keys(&s, &m, prefix).await, kept, "{prefix}");
    }
    let (status, body) = s
        .get(
            &t.token,
            &format!("/v1/merchants/{}/settlements", t.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
}
