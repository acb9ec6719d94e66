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
