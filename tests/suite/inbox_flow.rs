//! The promise end to end: a customer's message shows up as a conversation, an agent
//! answers, the answer reaches the customer on Messenger.

use crate::support::{PAGE_A, stack};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e8_a_customer_message_is_answered_from_the_inbox() {
    let s = stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7001", "Where is my order?")
        .await;
    let conv = s.conversation_with(&t, "7001").await;
    assert_eq!(conv["status"], "open");
    assert_eq!(conv["channel"], "messenger");
    let cid = conv["id"].as_str().unwrap();
    let msgs = s.messages(&t, cid).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["text"], "Where is my order?");

    let (status, reply) = s
        .post(
            &t.token,
            &format!(
                "/v1/merchants/{}/conversations/{cid}/replies",
                t.merchant_id
            ),
            json!({"text": "It ships today", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["status"], "queued");

    let sent = crate::support::eventually("the reply at Meta", || async {
        s.stack
            .sandbox
            .sent()
            .into_iter()
            .find(|m| m.text == "It ships today")
    })
    .await;
    assert_eq!(sent.recipient_id, "7001");
    assert_eq!(sent.page_id, PAGE_A);
    assert_eq!(sent.messaging_type, "RESPONSE");
    assert_eq!(sent.status, 200);

    crate::support::eventually("the reply marked sent", || async {
        let msgs = s.messages(&t, cid).await;
        msgs.iter()
            .any(|m| m["id"] == reply["id"] && m["status"] == "sent")
            .then_some(())
    })
    .await;
}

/// Resolving a conversation does not delete it: the customer's next message starts a new
/// conversation, and the old one keeps its messages (POLICY E10: support history is kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e10_support_history_is_kept_after_a_conversation_is_resolved() {
    let s = stack().await;
    let t = s.connected_merchant("owner@history.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7101", "first question").await;
    let first = s.conversation_with(&t, "7101").await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call(
            reqwest::Method::PATCH,
            Some(&t.token),
            &format!("/v1/merchants/{}/conversations/{first_id}", t.merchant_id),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    s.customer_writes(PAGE_A, "7101", "second question").await;
    let convs = crate::support::eventually("a second conversation", || async {
        let c = s.conversations(&t).await;
        (c.len() == 2).then_some(c)
    })
    .await;
    let statuses: Vec<_> = convs
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["status"].clone()))
        .collect();
    assert!(
        statuses.contains(&(first_id.clone(), json!("resolved"))),
        "{statuses:?}"
    );
    let newest = &convs[0];
    assert_ne!(
        newest["id"],
        first_id.as_str(),
        "most recent activity first"
    );
    assert_eq!(newest["status"], "open");
    assert_eq!(
        newest["customer"]["id"], first["customer"]["id"],
        "the same customer"
    );

    let old = s.messages(&t, &first_id).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["text"], "first question");
}

/// The channel is a field of every conversation and customer, so Instagram or WhatsApp add an
/// adapter, not a schema (POLICY E2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e2_every_conversation_and_customer_names_its_channel() {
    let s = stack().await;
    let t = s.connected_merchant("owner@channel.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7201", "hi").await;
    let conv = s.conversation_with(&t, "7201").await;
    assert_eq!(conv["channel"], "messenger");
    let (status, customer) = s
        .get(
            &t.token,
            &format!(
                "/v1/merchants/{}/customers/{}",
                t.merchant_id,
                conv["customer"]["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    assert_eq!(customer["channel"], "messenger");
    assert_eq!(customer["psid"], "7201");
}
