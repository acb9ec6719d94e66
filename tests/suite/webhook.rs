//! Webhook intake (`messenger-webhook`) and ingest (`messenger-ingest`) through the real stack:
//! Meta's subscription check, signatures, body limits, redelivery, batched deliveries, echoes,
//! watermarks, postbacks, reactions, attachments, partial batch failures and conversations.
//!
//! Most tests start the stack without its background pollers and drain the queues themselves
//! (`drain`): the same poller code runs, but the test knows when everything was processed, so a
//! check that something was NOT stored is a real check and not a race.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_aws::Store;
use ecomdrive_core::ids::{ConversationId, MerchantId};
use ecomdrive_core::webhook::MAX_DELIVERY_BYTES;
use ecomdrive_local::stack::{DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN};
use ecomdrive_runtime::logging::capture::with_captured_logs;
use ecomdrive_runtime::secrets::SecretCache;
use messenger_ingest::{Ingest, MAX_ATTACHMENT_BYTES};
use messenger_webhook::WebhookState;
use meta_sandbox::payloads::{self, EchoContent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::support::{self, PAGE_A, PAGE_B, Tenant, TestStack, eventually};

/// A Page no merchant has connected (not one of the sandbox's Pages).
const UNKNOWN_PAGE: &str = "100000000000999";

// --- helpers ------------------------------------------------------------------------------------

/// The whole stack, with the queue pollers left to the test (see the module comment).
async fn quiet_stack() -> TestStack {
    support::stack_with(|o| o.run_pollers = false).await
}

/// Runs both queue functions until neither queue has anything left.
async fn drain(s: &TestStack) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let resources = &s.stack.resources;
    while tokio::time::Instant::now() < deadline {
        let inbound = s
            .stack
            .inbound_poller
            .poll_once(Duration::ZERO)
            .await
            .expect("the inbound queue answers");
        let replies = s
            .stack
            .replies_poller
            .poll_once(Duration::ZERO)
            .await
            .expect("the replies queue answers");
        if inbound == 0 && replies == 0 {
            // Nothing visible: done, unless a failed record is waiting out its visibility timeout.
            let in_flight = crate::support::queue_depth(&resources.inbound_queue_url).await
                + crate::support::queue_depth(&resources.replies_queue_url).await;
            if in_flight == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    panic!("the queues never ran dry");
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A fresh Meta-like message id.
fn new_mid() -> String {
    format!("m_{}", ulid::Ulid::new())
}

fn signed(body: &[u8]) -> String {
    meta_sandbox::sign(DEFAULT_APP_SECRET, body)
}

/// A delivery of one customer text message to `page`.
fn text_delivery(page: &str, psid: &str, mid: &str, text: &str) -> Value {
    let at = now_ms();
    payloads::single(page, at, payloads::message_event(page, psid, at, mid, text))
}

/// Takes every message off a queue (they stay invisible for a minute): `(kind, body)`.
async fn take_all(queue_url: &str) -> Vec<(Option<String>, String)> {
    let sqs = aws_sdk_sqs::Client::new(&support::sdk().await);
    let mut out = Vec::new();
    loop {
        let res = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await
            .expect("the queue answers");
        let messages = res.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let kind = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("kind"))
                .and_then(|k| k.string_value.clone());
            out.push((kind, m.body.unwrap_or_default()));
        }
    }
}

fn kind_of(item: &HashMap<String, AttributeValue>) -> &str {
    item.get("kind")
        .and_then(|k| k.as_s().ok())
        .map_or("", String::as_str)
}

/// How many message items the whole table holds (every merchant).
async fn stored_message_count(s: &TestStack) -> usize {
    support::scan_table(&s.stack.resources.table)
        .await
        .iter()
        .filter(|i| kind_of(i) == "message")
        .count()
}

/// Whether any item anywhere in the table mentions `needle` (a PSID, a text).
async fn table_mentions(s: &TestStack, needle: &str) -> bool {
    support::scan_table(&s.stack.resources.table)
        .await
        .iter()
        .any(|i| format!("{i:?}").contains(needle))
}

/// The conversations of `psid` with the merchant, newest activity first.
async fn conversations_of(s: &TestStack, t: &Tenant, psid: &str) -> Vec<Value> {
    s.conversations(t)
        .await
        .into_iter()
        .filter(|c| c["customer"]["psid"] == psid)
        .collect()
}

/// The messages of the customer's only conversation (fails if there is not exactly one).
async fn thread(s: &TestStack, t: &Tenant, psid: &str) -> (String, Vec<Value>) {
    let convs = conversations_of(s, t, psid).await;
    assert_eq!(convs.len(), 1, "one conversation with {psid}: {convs:?}");
    let cid = convs[0]["id"].as_str().expect("conversation id").to_owned();
    let msgs = s.messages(t, &cid).await;
    (cid, msgs)
}

async fn patch_status(s: &TestStack, t: &Tenant, cid: &str, status: &str) {
    let (code, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &format!("/v1/merchants/{}/conversations/{cid}", t.merchant_id),
            Some(json!({ "status": status })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], status);
}

/// An agent replies from the inbox; returns once the reply was sent and Meta's echo of it was
/// taken in (the replies and inbound queues drained).
async fn reply_and_take_echo(s: &TestStack, t: &Tenant, cid: &str, text: &str) -> Value {
    let echoes_answered = || {
        s.stack
            .sandbox
            .webhooks()
            .iter()
            .filter(|w| w.field == "message_echoes" && w.status == Some(200))
            .count()
    };
    let before = echoes_answered();
    let (status, reply) = s
        .post(
            &t.token,
            &format!(
                "/v1/merchants/{}/conversations/{cid}/replies",
                t.merchant_id
            ),
            json!({ "text": text, "client_id": ulid::Ulid::new().to_string() }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    drain(s).await; // agent-reply sends it; the sandbox then posts the echo
    eventually("the echo of the reply accepted by the webhook", || async {
        (echoes_answered() > before).then_some(())
    })
    .await;
    drain(s).await;
    reply
}

fn message_by_id<'a>(msgs: &'a [Value], id: &Value) -> &'a Value {
    msgs.iter()
        .find(|m| m["id"] == *id)
        .unwrap_or_else(|| panic!("message {id} in {msgs:?}"))
}

fn sqs_record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.to_owned());
    record.body = Some(body.to_owned());
    record
}

// --- 1. verification ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_subscription_check_echoes_the_challenge_only_for_our_verify_token() {
    let s = quiet_stack().await;
    let verify = |query: Vec<(&'static str, &'static str)>| {
        let req = s.browser.get(s.url("/webhooks/messenger")).query(&query);
        async move {
            let res = req.send().await.expect("the webhook answers");
            (res.status(), res.text().await.unwrap_or_default())
        }
    };
    let (status, body) = verify(vec![
        ("hub.mode", "subscribe"),
        ("hub.verify_token", DEFAULT_VERIFY_TOKEN),
        ("hub.challenge", "1158201444"),
    ])
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "1158201444", "the body is exactly the challenge");

    let refused = [
        vec![
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "not-our-token"),
            ("hub.challenge", "1158201444"),
        ],
        vec![
            ("hub.mode", "unsubscribe"),
            ("hub.verify_token", DEFAULT_VERIFY_TOKEN),
            ("hub.challenge", "1158201444"),
        ],
        vec![("hub.mode", "subscribe"), ("hub.challenge", "1158201444")],
        vec![
            ("hub.verify_token", DEFAULT_VERIFY_TOKEN),
            ("hub.challenge", "1158201444"),
        ],
        vec![
            ("hub.mode", "subscribe"),
            ("hub.verify_token", DEFAULT_VERIFY_TOKEN),
        ],
        vec![
            ("hub.mode", "subscribe"),
            ("hub.verify_token", ""),
            ("hub.challenge", "1158201444"),
        ],
        vec![],
    ];
    for query in refused {
        let (status, body) = verify(query.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query:?}");
        assert!(!body.contains("1158201444"), "no challenge echoed: {body}");
    }
}

// --- 2. signatures ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_refuses_unsigned_or_badly_signed_deliveries_and_enqueues_nothing() {
    let s = quiet_stack().await;
    let sandbox = &s.stack.sandbox;
    let body = text_delivery(PAGE_A, "7101", &new_mid(), "forged?")
        .to_string()
        .into_bytes();
    let other_body = text_delivery(PAGE_A, "7101", &new_mid(), "another")
        .to_string()
        .into_bytes();
    let right_hex = signed(&body).trim_start_matches("sha256=").to_owned();

    let bad_signatures: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("wrong", Some(format!("sha256={}", "0".repeat(64)))),
        ("not hex", Some("sha256=zz".into())),
        (
            "forged with another secret",
            Some(meta_sandbox::sign("another-app-secret", &body)),
        ),
        ("sha1= prefix", Some(format!("sha1={right_hex}"))),
        ("no prefix", Some(right_hex.clone())),
        ("valid over a different body", Some(signed(&other_body))),
    ];
    for (what, signature) in &bad_signatures {
        let status = sandbox
            .post_raw_with_signature(&body, signature.as_deref())
            .await
            .expect("the webhook answers");
        assert_eq!(status, 403, "{what}");
    }
    // The same body, properly signed, is taken.
    let status = sandbox
        .post_raw_with_signature(&body, Some(&signed(&body)))
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200);

    let queued = take_all(&s.stack.resources.inbound_queue_url).await;
    assert_eq!(queued.len(), 1, "only the signed delivery is queued");
    assert_eq!(
        queued[0].0, None,
        "a delivery is the queue's main kind: no attribute"
    );
    assert_eq!(queued[0].1.as_bytes(), body.as_slice());
}

// --- 3. body size -------------------------------------------------------------------------------

/// A JSON delivery padded to exactly `len` bytes.
fn padded_delivery(len: usize) -> Vec<u8> {
    let head = r#"{"object":"page","entry":[],"padding":""#;
    let tail = r#""}"#;
    let pad = len - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_refuses_bodies_over_one_mebibyte_and_takes_one_at_the_limit() {
    let s = quiet_stack().await;
    let sandbox = &s.stack.sandbox;

    let too_big = padded_delivery(MAX_DELIVERY_BYTES + 1);
    let status = sandbox
        .post_raw_with_signature(&too_big, Some(&signed(&too_big)))
        .await
        .expect("the webhook answers");
    assert_eq!(status, 413);

    let at_limit = padded_delivery(MAX_DELIVERY_BYTES);
    assert_eq!(at_limit.len(), 1024 * 1024);
    let status = sandbox
        .post_raw_with_signature(&at_limit, Some(&signed(&at_limit)))
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200);

    let queued = take_all(&s.stack.resources.inbound_queue_url).await;
    assert_eq!(queued.len(), 1, "only the body at the limit is queued");
    assert_eq!(queued[0].1.len(), MAX_DELIVERY_BYTES);
}

// --- 4. queue unreachable -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_answers_5xx_and_stores_nothing_when_the_queue_is_unreachable() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let sdk = support::sdk().await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let broken = messenger_webhook::router(WebhookState {
        secrets: SecretCache::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            s.stack.resources.meta_secret_id.clone(),
        ),
        inbound: ecomdrive_aws::Queue::new(
            aws_sdk_sqs::Client::new(&sdk),
            format!(
                "{}/123456789012/{}-no-such-queue",
                endpoint.trim_end_matches('/'),
                support::unique_prefix()
            ),
        ),
    });
    let body = text_delivery(PAGE_A, "7201", &new_mid(), "lost?")
        .to_string()
        .into_bytes();
    let request = http::Request::post("/webhooks/messenger")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signed(&body))
        .body(axum::body::Body::from(body.clone()))
        .expect("request builds");
    let res = broken.oneshot(request).await.expect("the router answers");
    assert!(
        res.status().is_server_error(),
        "Meta must retry: got {}",
        res.status()
    );

    drain(&s).await;
    assert!(
        take_all(&s.stack.resources.inbound_queue_url)
            .await
            .is_empty()
    );
    assert_eq!(stored_message_count(&s).await, 0);
    assert!(conversations_of(&s, &t, "7201").await.is_empty());

    // Meta's retry of the very same delivery, once the queue is back, is stored.
    let status = s
        .stack
        .sandbox
        .post_raw_with_signature(&body, Some(&signed(&body)))
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200);
    drain(&s).await;
    let (_, msgs) = thread(&s, &t, "7201").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "lost?");
}

// --- 5. redelivery ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e10_a_redelivered_webhook_is_kept_exactly_once() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let delivery = text_delivery(PAGE_A, "7301", &new_mid(), "Is it in stock?");
    for _ in 0..2 {
        assert_eq!(s.stack.sandbox.post_raw(&delivery).await.unwrap(), 200);
    }
    drain(&s).await;
    let (_, msgs) = thread(&s, &t, "7301").await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["text"], "Is it in stock?");

    // A new message of the same customer still lands next to it.
    s.customer_writes(PAGE_A, "7301", "Hello?").await;
    drain(&s).await;
    let (_, msgs) = thread(&s, &t, "7301").await;
    assert_eq!(msgs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_queue_record_handled_twice_stores_one_message() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let body = text_delivery(PAGE_A, "7302", &new_mid(), "Do you ship to Pune?").to_string();
    let record = sqs_record("rec-1", &body);
    s.stack.ingest.handle_record(record.clone()).await.unwrap();
    s.stack.ingest.handle_record(record).await.unwrap();
    let (_, msgs) = thread(&s, &t, "7302").await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["text"], "Do you ship to Pune?");
    assert_eq!(stored_message_count(&s).await, 1);

    // A third time, the counts say why nothing was written.
    let counts = s
        .stack
        .ingest
        .handle_delivery(body.as_bytes())
        .await
        .unwrap();
    assert_eq!((counts.stored, counts.duplicates), (0, 1));
}

// --- 6. batched deliveries ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_delivery_lands_every_message_with_the_merchant_of_its_page() {
    let s = quiet_stack().await;
    let a = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let b = s.connected_merchant("owner@outlet.example", PAGE_B).await;
    let at = now_ms();
    let msg = |page: &str, psid: &str, n: i64, text: &str| {
        payloads::message_event(page, psid, at + n, &new_mid(), text)
    };
    let optin = json!({"sender": {"id": "7409"}, "recipient": {"id": PAGE_A}, "timestamp": at,
        "optin": {"ref": "newsletter"}});
    let referral = json!({"sender": {"id": "7409"}, "recipient": {"id": PAGE_B}, "timestamp": at,
        "referral": {"ref": "ad-42", "source": "ADS", "type": "OPEN_THREAD"}});
    let delivery = payloads::envelope(vec![
        payloads::entry(
            PAGE_A,
            at,
            vec![
                msg(PAGE_A, "7401", 1, "A: first"),
                optin,
                msg(PAGE_A, "7402", 2, "A: other customer"),
            ],
        ),
        payloads::standby_entry(PAGE_A, at, vec![msg(PAGE_A, "7401", 3, "A: on standby")]),
        payloads::entry(
            PAGE_B,
            at,
            vec![referral, msg(PAGE_B, "7403", 4, "B: first")],
        ),
        payloads::standby_entry(
            PAGE_B,
            at,
            vec![
                msg(PAGE_B, "7403", 5, "B: on standby"),
                msg(PAGE_B, "7404", 6, "B: another"),
            ],
        ),
    ]);
    assert_eq!(s.stack.sandbox.post_raw(&delivery).await.unwrap(), 200);
    drain(&s).await;

    let texts = |msgs: Vec<Value>| -> Vec<String> {
        msgs.iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        texts(thread(&s, &a, "7401").await.1),
        ["A: first", "A: on standby"]
    );
    assert_eq!(texts(thread(&s, &a, "7402").await.1), ["A: other customer"]);
    assert_eq!(
        texts(thread(&s, &b, "7403").await.1),
        ["B: first", "B: on standby"]
    );
    assert_eq!(texts(thread(&s, &b, "7404").await.1), ["B: another"]);
    // Each merchant sees only its own Page's customers.
    assert_eq!(s.conversations(&a).await.len(), 2);
    assert_eq!(s.conversations(&b).await.len(), 2);
    for c in s.conversations(&a).await {
        assert_eq!(c["page_id"], PAGE_A);
    }
    for c in s.conversations(&b).await {
        assert_eq!(c["page_id"], PAGE_B);
    }
    assert_eq!(stored_message_count(&s).await, 6);

    // The unknown kinds (optin, referral) were skipped and counted, not failures.
    let counts = s
        .stack
        .ingest
        .handle_delivery(delivery.to_string().as_bytes())
        .await
        .expect("unknown event kinds are not errors");
    assert_eq!(counts.skipped_unknown, 2);
    assert_eq!((counts.stored, counts.duplicates), (0, 6));
}

// --- 7. unconnected and disconnected Pages ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e1_messages_for_an_unconnected_or_disconnected_page_are_dropped() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let (status, body) = s
        .call(
            Method::PUT,
            Some(&t.token),
            &format!(
                "/v1/merchants/{}/integrations/messenger/pages/{PAGE_B}",
                t.merchant_id
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A Page nobody connected: acknowledged (Meta must not retry), then dropped.
    let unknown = text_delivery(
        UNKNOWN_PAGE,
        "7501000000000001",
        &new_mid(),
        "secret-unknown-page-text",
    );
    assert_eq!(s.stack.sandbox.post_raw(&unknown).await.unwrap(), 200);
    // A connected Page's message in the same run lands.
    s.customer_writes(PAGE_A, "7502000000000002", "connected-page-text")
        .await;
    drain(&s).await;
    assert_eq!(stored_message_count(&s).await, 1);
    assert!(table_mentions(&s, "7502000000000002").await);
    assert!(
        !table_mentions(&s, "7501000000000001").await,
        "nothing of the unknown Page is stored"
    );
    let counts = s
        .stack
        .ingest
        .handle_delivery(unknown.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!((counts.dropped_unconnected_page, counts.stored), (1, 0));
    // The drop is counted in the business metrics line (CloudWatch EMF) of the record.
    let ingest = &s.stack.ingest;
    let metrics_of = |body: Value| async move {
        let (handled, logs) =
            with_captured_logs(ingest.handle_record(sqs_record("metrics", &body.to_string())))
                .await;
        handled.expect("the record is handled");
        logs.text().replace("\\\"", "\"")
    };
    let dropped = metrics_of(unknown.clone()).await;
    assert!(
        dropped.contains("\"DroppedUnconnectedPage\":1"),
        "{dropped}"
    );
    let landed = metrics_of(text_delivery(PAGE_A, "7505000000000005", &new_mid(), "hi")).await;
    assert!(landed.contains("\"DroppedUnconnectedPage\":0"), "{landed}");
    assert!(landed.contains("\"MessagesStored\":1"), "{landed}");

    // After a disconnect, the Page's messages are dropped while the other Page's still land.
    let (status, body) = s
        .call(
            Method::DELETE,
            Some(&t.token),
            &format!(
                "/v1/merchants/{}/integrations/messenger/pages/{PAGE_A}",
                t.merchant_id
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disconnected");
    s.customer_writes(PAGE_A, "7503000000000003", "after-disconnect")
        .await;
    s.customer_writes(PAGE_B, "7504000000000004", "still-connected")
        .await;
    drain(&s).await;
    assert_eq!(stored_message_count(&s).await, 3);
    assert!(table_mentions(&s, "still-connected").await);
    assert!(!table_mentions(&s, "7503000000000003").await);
    assert!(!table_mentions(&s, "after-disconnect").await);
    assert!(
        conversations_of(&s, &t, "7503000000000003")
            .await
            .is_empty()
    );
    assert_eq!(conversations_of(&s, &t, "7504000000000004").await.len(), 1);
}

// --- 8. echoes ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_of_our_reply_does_not_become_a_second_message() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7601", "Where is my parcel?")
        .await;
    drain(&s).await;
    let (cid, _) = thread(&s, &t, "7601").await;
    let reply = reply_and_take_echo(&s, &t, &cid, "Out for delivery").await;

    let echo = s
        .stack
        .sandbox
        .webhooks()
        .into_iter()
        .find(|w| w.field == "message_echoes")
        .expect("the sandbox echoed the reply");
    let metadata = &echo.body["entry"][0]["messaging"][0]["message"]["metadata"];
    assert!(
        metadata
            .as_str()
            .is_some_and(|m| m.starts_with("ecomdrive:")),
        "our metadata rides on the echo: {metadata}"
    );
    let (_, msgs) = thread(&s, &t, "7601").await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let ours = message_by_id(&msgs, &reply["id"]);
    assert_eq!(ours["status"], "sent");
    assert_eq!(ours["direction"], "outbound");

    // Meta redelivers the echo: still nothing new.
    assert_eq!(s.stack.sandbox.post_raw(&echo.body).await.unwrap(), 200);
    drain(&s).await;
    assert_eq!(thread(&s, &t, "7601").await.1.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_typed_in_metas_inbox_is_kept_once_as_sent_outbound() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7602", "Hi, can I exchange?")
        .await;
    drain(&s).await;

    let at = now_ms();
    let echo = payloads::single(
        PAGE_A,
        at,
        payloads::echo_event(
            PAGE_A,
            "7602",
            at,
            "263902037430900", // Meta's own inbox, not our app
            &new_mid(),
            &EchoContent {
                text: Some("Sure, bring it to the store"),
                ..Default::default()
            },
        ),
    );
    for _ in 0..3 {
        // the first delivery, then two redeliveries
        assert_eq!(s.stack.sandbox.post_raw(&echo).await.unwrap(), 200);
    }
    drain(&s).await;
    let (_, msgs) = thread(&s, &t, "7602").await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let typed: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0]["text"], "Sure, bring it to the store");
    assert_eq!(typed[0]["status"], "sent");
}

// --- 9. watermarks ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e5_outbound_status_moves_to_delivered_then_read_and_never_back() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let sandbox = &s.stack.sandbox;
    s.customer_writes(PAGE_A, "7701", "Is COD available?").await;
    drain(&s).await;
    let (cid, _) = thread(&s, &t, "7701").await;
    let first = reply_and_take_echo(&s, &t, &cid, "Yes, COD is available").await;
    let status_of = |id: Value| {
        let s = &s;
        let t = &t;
        let cid = cid.clone();
        async move {
            let msgs = s.messages(t, &cid).await;
            message_by_id(&msgs, &id)["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(status_of(first["id"].clone()).await, "sent");

    let w1 = now_ms();
    assert_eq!(
        sandbox.simulate_delivery(PAGE_A, "7701", w1).await.unwrap(),
        200
    );
    drain(&s).await;
    assert_eq!(status_of(first["id"].clone()).await, "delivered");

    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = reply_and_take_echo(&s, &t, &cid, "Anything else?").await;
    assert_eq!(
        sandbox.simulate_read(PAGE_A, "7701", w1).await.unwrap(),
        200
    );
    drain(&s).await;
    assert_eq!(status_of(first["id"].clone()).await, "read");
    assert_eq!(
        status_of(second["id"].clone()).await,
        "sent",
        "a watermark before a message does not move it"
    );

    // A late delivery receipt: the second reply moves on, the first stays read.
    let w2 = now_ms();
    assert_eq!(
        sandbox.simulate_delivery(PAGE_A, "7701", w2).await.unwrap(),
        200
    );
    drain(&s).await;
    assert_eq!(status_of(first["id"].clone()).await, "read");
    assert_eq!(status_of(second["id"].clone()).await, "delivered");
    assert_eq!(
        sandbox.simulate_read(PAGE_A, "7701", w2).await.unwrap(),
        200
    );
    assert_eq!(
        sandbox.simulate_delivery(PAGE_A, "7701", w2).await.unwrap(),
        200
    );
    drain(&s).await;
    assert_eq!(status_of(second["id"].clone()).await, "read");

    // The customer's own message is not an outbound one: watermarks leave it alone.
    let msgs = s.messages(&t, &cid).await;
    let inbound: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0]["status"], "received");
}

// --- 10. postbacks and reactions ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postbacks_are_stored_as_customer_messages_with_their_payload() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let d = s
        .stack
        .sandbox
        .simulate_postback(PAGE_A, "7801", "Track my order", "TRACK_ORDER")
        .await
        .unwrap();
    assert_eq!(d.webhook_status, 200);
    // Meta may send a postback without a mid: its sender and time identify it, redelivered too.
    let at = now_ms();
    let no_mid = payloads::single(
        PAGE_A,
        at,
        json!({"sender": {"id": "7801"}, "recipient": {"id": PAGE_A}, "timestamp": at,
               "postback": {"title": "Talk to a human", "payload": "HUMAN"}}),
    );
    for _ in 0..2 {
        assert_eq!(s.stack.sandbox.post_raw(&no_mid).await.unwrap(), 200);
    }
    drain(&s).await;
    let (_, msgs) = thread(&s, &t, "7801").await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["text"], "Track my order");
    assert_eq!(msgs[0]["postback_payload"], "TRACK_ORDER");
    assert_eq!(msgs[1]["text"], "Talk to a human");
    assert_eq!(msgs[1]["postback_payload"], "HUMAN");
    let conv = &conversations_of(&s, &t, "7801").await[0];
    assert_eq!(conv["status"], "open");
    assert_ne!(
        conv["reply_window"], "closed",
        "a postback opens the window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reaction_lands_on_the_message_it_reacts_to() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "7802", "Thanks!").await;
    drain(&s).await;
    let (cid, _) = thread(&s, &t, "7802").await;
    let reply = reply_and_take_echo(&s, &t, &cid, "You're welcome").await;
    let reply_mid = s
        .stack
        .sandbox
        .sent()
        .into_iter()
        .find(|m| m.text == "You're welcome")
        .and_then(|m| m.message_id)
        .expect("Meta's id of the reply");

    let status = s
        .stack
        .sandbox
        .simulate_reaction(PAGE_A, "7802", &reply_mid, "love", "react")
        .await
        .unwrap();
    assert_eq!(status, 200);
    drain(&s).await;
    let msgs = s.messages(&t, &cid).await;
    assert_eq!(msgs.len(), 2, "a reaction is not a message of its own");
    assert_eq!(
        message_by_id(&msgs, &reply["id"])["reaction"],
        "\u{2764}\u{FE0F}"
    );
    let inbound = msgs.iter().find(|m| m["direction"] == "inbound").unwrap();
    assert_eq!(inbound["reaction"], Value::Null);

    let status = s
        .stack
        .sandbox
        .simulate_reaction(PAGE_A, "7802", &reply_mid, "love", "unreact")
        .await
        .unwrap();
    assert_eq!(status, 200);
    drain(&s).await;
    let msgs = s.messages(&t, &cid).await;
    assert_eq!(message_by_id(&msgs, &reply["id"])["reaction"], Value::Null);
}

// --- 11. attachments ----------------------------------------------------------------------------

/// Serves files bigger than [`MAX_ATTACHMENT_BYTES`] on loopback: `/sized` announces its length,
/// `/streamed` is chunked (no length), so both of the copier's limits are exercised.
async fn serve_oversized_files() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("has an address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 2048];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let total = MAX_ATTACHMENT_BYTES + 1;
                let chunk = vec![b'x'; 1 << 20];
                let chunked = request.starts_with(b"GET /streamed");
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ntransfer-encoding: chunked\r\n\r\n"
                        .to_owned()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {total}\r\n\r\n"
                    )
                };
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = total;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let written = if chunked {
                        let mut piece = format!("{n:x}\r\n").into_bytes();
                        piece.extend_from_slice(&chunk[..n]);
                        piece.extend_from_slice(b"\r\n");
                        socket.write_all(&piece).await
                    } else {
                        socket.write_all(&chunk[..n]).await
                    };
                    if written.is_err() {
                        return; // the copier gave up reading: as it should
                    }
                    left -= n;
                }
                if chunked {
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_copied_into_the_merchants_folder_and_oversized_ones_are_not() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let photo: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let d = s
        .stack
        .sandbox
        .simulate_attachment(PAGE_A, "7901", "image", photo.clone(), "image/png")
        .await
        .unwrap();
    assert_eq!(d.webhook_status, 200);
    drain(&s).await; // the message, then its copy job

    let (cid, msgs) = thread(&s, &t, "7901").await;
    assert_eq!(msgs.len(), 1);
    let shown = &msgs[0]["attachments"][0];
    assert_eq!(shown["kind"], "image");
    assert_eq!(shown["state"], "stored");
    assert_eq!(shown["size"], 3000);
    assert_eq!(shown["content_type"], "image/png");

    let m = MerchantId::parse(&t.merchant_id).expect("merchant id");
    let conv = ConversationId::parse(&cid).expect("conversation id");
    let stored = s
        .stack
        .store
        .list_messages(&m, &conv, None, 10)
        .await
        .unwrap()
        .items;
    let key = stored[0].attachments[0]
        .object_key
        .clone()
        .expect("the copy's key");
    assert_eq!(
        key,
        format!("merchants/{m}/attachments/{cid}/{}/0", stored[0].id)
    );
    let s3 = ecomdrive_aws::s3_client(&support::sdk().await);
    let object = s3
        .get_object()
        .bucket(&s.stack.resources.bucket)
        .key(&key)
        .send()
        .await
        .expect("the copy is in the bucket");
    assert_eq!(object.content_type(), Some("image/png"));
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), photo.as_slice());

    // Two files over the limit (one announces its size, one does not): recorded, not copied.
    let files = serve_oversized_files().await;
    let at = now_ms();
    let big = payloads::single(
        PAGE_A,
        at,
        json!({"sender": {"id": "7901"}, "recipient": {"id": PAGE_A}, "timestamp": at,
        "message": {"mid": new_mid(), "attachments": [
            {"type": "video", "payload": {"url": format!("{files}/sized")}},
            {"type": "video", "payload": {"url": format!("{files}/streamed")}},
        ]}}),
    );
    assert_eq!(s.stack.sandbox.post_raw(&big).await.unwrap(), 200);
    drain(&s).await;
    let msgs = s.messages(&t, &cid).await;
    assert_eq!(msgs.len(), 2);
    for a in msgs[1]["attachments"].as_array().expect("attachments") {
        assert_eq!(a["state"], "too_large", "{a}");
        assert_eq!(a["size"], Value::Null);
    }
    let big_id = msgs[1]["id"].as_str().unwrap();
    let listed = s3
        .list_objects_v2()
        .bucket(&s.stack.resources.bucket)
        .prefix(format!("merchants/{m}/"))
        .send()
        .await
        .expect("the bucket lists");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys, [key], "only the small file was copied");
    assert!(!keys.iter().any(|k| k.contains(big_id)));
}

// --- 12. partial batch failures -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_record_fails_alone_in_its_batch() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let mut event = SqsEvent::default();
    event.records = vec![
        sqs_record(
            "good-1",
            &text_delivery(PAGE_A, "8001", &new_mid(), "one").to_string(),
        ),
        sqs_record("bad", "{this is not json"),
        sqs_record(
            "good-2",
            &text_delivery(PAGE_A, "8002", &new_mid(), "two").to_string(),
        ),
    ];
    let response = s.stack.ingest.handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad"]);
    assert_eq!(thread(&s, &t, "8001").await.1[0]["text"], "one");
    assert_eq!(thread(&s, &t, "8002").await.1[0]["text"], "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_keeps_failing_ends_in_the_dead_letter_queue_alone() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let sandbox = &s.stack.sandbox;
    s.customer_writes(PAGE_A, "8101", "before").await;
    // Signed, so the webhook takes it; ingest cannot read it.
    let poison = b"{this is not a delivery".to_vec();
    assert_eq!(
        sandbox
            .post_raw_with_signature(&poison, Some(&signed(&poison)))
            .await
            .unwrap(),
        200
    );
    s.customer_writes(PAGE_A, "8102", "after").await;

    let sqs = aws_sdk_sqs::Client::new(&support::sdk().await);
    let dlq = s.stack.resources.inbound_dlq_url.clone();
    let dlq_depth = || async {
        let out = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("the DLQ answers");
        out.attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    // Lambda's event source in miniature: receive, handle, delete what succeeded; the failed
    // record comes back after the (1 s) visibility timeout, five times, then moves to the DLQ.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dlq_depth().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poison record never reached the DLQ"
        );
        s.stack
            .inbound_poller
            .poll_once(Duration::from_secs(1))
            .await
            .expect("the inbound queue answers");
    }
    let dead = take_all(&dlq).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].1.as_bytes(), poison.as_slice());
    assert_eq!(thread(&s, &t, "8101").await.1[0]["text"], "before");
    assert_eq!(thread(&s, &t, "8102").await.1[0]["text"], "after");
    assert_eq!(stored_message_count(&s).await, 2);
    assert!(
        take_all(&s.stack.resources.inbound_queue_url)
            .await
            .is_empty()
    );
}

// --- 13. store failures -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_retries_after_a_store_failure_and_lands_once() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    let sdk = support::sdk().await;
    let broken = Ingest {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            format!("{}-no-such-table", support::unique_prefix()),
        ),
        ..s.stack.ingest.clone()
    };
    let record = sqs_record(
        "rec-1",
        &text_delivery(PAGE_A, "8201", &new_mid(), "Retry me").to_string(),
    );
    let failed = broken.handle_record(record.clone()).await;
    assert!(failed.is_err(), "a store failure fails the record");
    assert_eq!(stored_message_count(&s).await, 0);

    s.stack.ingest.handle_record(record.clone()).await.unwrap();
    let (_, msgs) = thread(&s, &t, "8201").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "Retry me");

    s.stack.ingest.handle_record(record).await.unwrap();
    assert_eq!(thread(&s, &t, "8201").await.1.len(), 1);
    assert_eq!(stored_message_count(&s).await, 1);
}

// --- 14. conversations --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_has_one_open_conversation_and_a_resolved_one_is_not_reopened() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "8301", "Hello").await;
    s.customer_writes(PAGE_A, "8301", "Anyone there?").await;
    drain(&s).await;
    let (first, msgs) = thread(&s, &t, "8301").await;
    assert_eq!(msgs.len(), 2, "both messages in one conversation");

    patch_status(&s, &t, &first, "resolved").await;
    s.customer_writes(PAGE_A, "8301", "One more question").await;
    drain(&s).await;
    let convs = conversations_of(&s, &t, "8301").await;
    assert_eq!(convs.len(), 2, "{convs:?}");
    let old = convs.iter().find(|c| c["id"] == first.as_str()).unwrap();
    let new = convs.iter().find(|c| c["id"] != first.as_str()).unwrap();
    assert_eq!(
        old["status"], "resolved",
        "a resolved conversation stays resolved"
    );
    assert_eq!(new["status"], "open");
    let new_id = new["id"].as_str().unwrap().to_owned();
    let new_msgs = s.messages(&t, &new_id).await;
    assert_eq!(new_msgs.len(), 1);
    assert_eq!(new_msgs[0]["text"], "One more question");
    assert_eq!(s.messages(&t, &first).await.len(), 2);

    for waiting in ["snoozed", "pending"] {
        patch_status(&s, &t, &new_id, waiting).await;
        s.customer_writes(PAGE_A, "8301", &format!("ping while {waiting}"))
            .await;
        drain(&s).await;
        let convs = conversations_of(&s, &t, "8301").await;
        assert_eq!(
            convs.len(),
            2,
            "a {waiting} conversation is reopened, not replaced"
        );
        let reopened = convs.iter().find(|c| c["id"] == new_id.as_str()).unwrap();
        assert_eq!(reopened["status"], "open", "after {waiting}");
    }
    assert_eq!(s.messages(&t, &new_id).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e2_conversations_carry_their_channel() {
    let s = quiet_stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "8401", "Hi").await;
    drain(&s).await;
    let conv = &conversations_of(&s, &t, "8401").await[0];
    assert_eq!(conv["channel"], "messenger");
    // The channel is a field of the stored records themselves, not something the API makes up.
    let items = support::scan_table(&s.stack.resources.table).await;
    let of_kind = |kind: &str| -> Vec<&HashMap<String, AttributeValue>> {
        items.iter().filter(|i| kind_of(i) == kind).collect()
    };
    for kind in ["conversation", "customer"] {
        let records = of_kind(kind);
        assert_eq!(records.len(), 1, "one {kind}");
        assert_eq!(
            records[0]
                .get("channel")
                .and_then(|c| c.as_s().ok())
                .map(String::as_str),
            Some("messenger"),
            "{kind} record"
        );
    }
}
