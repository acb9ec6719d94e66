//! Agents' replies: the reply API (`POST .../conversations/{id}/replies`) and `agent-reply`, which
//! sends them through Meta's Send API at most once (POLICY E5, E8, E12).
//!
//! Most tests stop the queue pollers and drive the queues themselves (`poll_once`) or call
//! `agent_reply.send(job, now)` directly, so that what is sent, and when, is decided by the test.

use crate::support::{PAGE_A, Tenant, TestStack, eventually, stack, stack_with};
use agent_reply::{AgentReply, Outcome, ReplyError, ReplyJob};
use ecomdrive_local::poller::Poller;
use ecomdrive_platforms::outbound::{AllowList, LoopbackPorts, OutboundHttp, Timeouts};
use meta_sandbox::{SentMessage, payloads};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

// --- helpers ---

fn replies_path(t: &Tenant, conversation_id: &str) -> String {
    format!(
        "/v1/merchants/{}/conversations/{conversation_id}/replies",
        t.merchant_id
    )
}

/// Handles every record waiting on that queue; answers how many were handled.
async fn drain(poller: &Poller) -> usize {
    let mut handled = 0;
    loop {
        let n = poller
            .poll_once(Duration::ZERO)
            .await
            .expect("the queue answers");
        if n == 0 {
            return handled;
        }
        handled += n;
    }
}

/// Records waiting on the replies queue, visible or in flight.
async fn replies_waiting(s: &TestStack) -> usize {
    crate::support::queue_depth(&s.stack.resources.replies_queue_url).await
}

/// Handles the replies queue until it is empty, retried records included (a record that failed
/// comes back after the visibility timeout).
async fn send_queued_replies(s: &TestStack) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        drain(&s.stack.replies_poller).await;
        if replies_waiting(s).await == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replies queue never emptied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Like `support::eventually`, but with the pollers stopped: handles the inbound queue (webhook
/// deliveries, echoes) between probes.
async fn ingest_until<T, F, Fut>(s: &TestStack, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        drain(&s.stack.inbound_poller).await;
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stack without pollers, a merchant with PAGE_A connected, and `psid`'s conversation (the
/// customer just wrote). Returns the conversation id.
async fn quiet_conversation(psid: &str) -> (TestStack, Tenant, String) {
    let s = stack_with(|o| o.run_pollers = false).await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, psid, "Where is my order?").await;
    let cid = ingest_until(&s, "the customer's conversation", || async {
        s.conversations(&t)
            .await
            .into_iter()
            .find(|c| c["customer"]["psid"] == psid)
    })
    .await["id"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    (s, t, cid)
}

async fn connect_page(s: &TestStack, t: &Tenant, page: &str) {
    s.authorize_messenger(t).await;
    let (status, body) = s
        .call(
            Method::PUT,
            Some(&t.token),
            &format!(
                "/v1/merchants/{}/integrations/messenger/pages/{page}",
                t.merchant_id
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Posts a reply; it must be accepted (202). Returns the reply as the API shows it.
async fn reply(s: &TestStack, t: &Tenant, cid: &str, text: &str, client_id: &str) -> Value {
    let (status, body) = s
        .post(
            &t.token,
            &replies_path(t, cid),
            json!({"text": text, "client_id": client_id}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued", "{body}");
    body
}

/// The job the API queues for a reply.
fn job(t: &Tenant, cid: &str, reply: &Value) -> ReplyJob {
    serde_json::from_value(json!({
        "merchant_id": t.merchant_id,
        "conversation_id": cid,
        "message_id": reply["id"],
    }))
    .expect("a reply job")
}

/// The reply as the inbox shows it now.
async fn shown(s: &TestStack, t: &Tenant, cid: &str, reply: &Value) -> Value {
    s.messages(t, cid)
        .await
        .into_iter()
        .find(|m| m["id"] == reply["id"])
        .unwrap_or_else(|| panic!("reply {} is not in its conversation", reply["id"]))
}

/// Every Send API call (accepted or refused) that carried this text.
fn calls_with(s: &TestStack, text: &str) -> Vec<SentMessage> {
    s.stack
        .sandbox
        .sent()
        .into_iter()
        .filter(|m| m.text == text)
        .collect()
}

/// agent-reply as the stack runs it, but its Send API calls give up after one second.
fn impatient(s: &TestStack) -> AgentReply {
    let http = OutboundHttp::new(
        AllowList::production().with_loopback(LoopbackPorts::Any),
        Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(1),
        },
    )
    .expect("the HTTP client builds");
    AgentReply {
        http,
        ..s.stack.agent_reply.clone()
    }
}

/// Longer than the impatient client waits: its call times out, the sandbox acts afterwards.
const SLOW_SEND: Duration = Duration::from_secs(2);

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("a time in range")
}

/// The customer's message, as Meta delivers it, written `age` ago; the sandbox's own record of the
/// customer's last message is moved back by the same age so both sides agree on the window.
async fn customer_wrote_ago(s: &TestStack, psid: &str, age: time::Duration, text: &str) {
    let at = unix_ms(s.stack.sandbox.now() - age);
    let mid = format!("m_old{}", ulid::Ulid::new());
    let event = payloads::message_event(PAGE_A, psid, at, &mid, text);
    let status = s
        .stack
        .sandbox
        .post_raw(&payloads::single(PAGE_A, at, event))
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200);
    s.stack
        .sandbox
        .backdate_customer(PAGE_A, psid, age)
        .expect("the sandbox knows the customer");
}

// --- the messaging window (POLICY E12) ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e12_replies_follow_metas_window() {
    let s = stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant("owner@acme.example").await;
    let (recent, days_ago, too_old) = ("7101", "7102", "7103");
    // The sandbox (Meta) learns of each customer from a first message sent while the Page is not
    // connected yet, so our inbox drops it (POLICY E1) and only the old message below counts.
    for psid in [recent, days_ago, too_old] {
        s.customer_writes(PAGE_A, psid, "hello").await;
    }
    drain(&s.stack.inbound_poller).await;
    assert!(s.conversations(&t).await.is_empty());
    connect_page(&s, &t, PAGE_A).await;

    customer_wrote_ago(&s, recent, time::Duration::hours(23), "from yesterday").await;
    customer_wrote_ago(&s, days_ago, time::Duration::days(3), "from three days ago").await;
    customer_wrote_ago(&s, too_old, time::Duration::days(8), "from last week").await;
    let convs = ingest_until(&s, "three conversations", || async {
        let c = s.conversations(&t).await;
        (c.len() == 3).then_some(c)
    })
    .await;
    let conv = |psid: &str| {
        convs
            .iter()
            .find(|c| c["customer"]["psid"] == psid)
            .cloned()
            .expect("a conversation per customer")
    };
    let (c_recent, c_days, c_old) = (conv(recent), conv(days_ago), conv(too_old));
    assert_eq!(c_recent["reply_window"], "response");
    assert_eq!(c_days["reply_window"], "message_tag");
    assert_eq!(c_old["reply_window"], "closed");
    let id = |c: &Value| c["id"].as_str().unwrap().to_owned();
    let (c_recent, c_days, c_old) = (id(&c_recent), id(&c_days), id(&c_old));

    let r1 = reply(&s, &t, &c_recent, "Answer within a day", "w-1").await;
    let r2 = reply(&s, &t, &c_days, "Answer after three days", "w-2").await;
    let (status, problem) = s
        .post(
            &t.token,
            &replies_path(&t, &c_old),
            json!({"text": "Answer after eight days", "client_id": "w-3"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("outside-messaging-window")),
        "{problem}"
    );

    // Queued inside the window, but the queue only gets to it more than 7 days later.
    let late = reply(&s, &t, &c_recent, "Answer that waited too long", "w-4").await;
    let outcome = s
        .stack
        .agent_reply
        .send(
            &job(&t, &c_recent, &late),
            OffsetDateTime::now_utc() + time::Duration::days(7),
        )
        .await
        .expect("a final outcome");
    assert!(
        matches!(&outcome, Outcome::Failed(reason) if reason.contains("outside the messaging window")),
        "{outcome:?}"
    );

    // Three jobs were queued (none for the refused reply); the late one is already done.
    assert_eq!(replies_waiting(&s).await, 3);
    send_queued_replies(&s).await;
    let sent = s.stack.sandbox.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let to = |psid: &str| sent.iter().find(|m| m.recipient_id == psid);
    let first = to(recent).expect("the reply inside 24 hours was sent");
    assert_eq!(
        (first.messaging_type.as_str(), first.tag.as_deref()),
        ("RESPONSE", None)
    );
    assert!(first.accepted(), "{first:?}");
    let tagged = to(days_ago).expect("the reply after three days was sent");
    assert_eq!(
        (tagged.messaging_type.as_str(), tagged.tag.as_deref()),
        ("MESSAGE_TAG", Some("HUMAN_AGENT"))
    );
    assert!(
        tagged.accepted(),
        "Meta refused the tagged reply: {tagged:?}"
    );
    assert!(to(too_old).is_none());

    assert_eq!(shown(&s, &t, &c_recent, &r1).await["status"], "sent");
    assert_eq!(shown(&s, &t, &c_days, &r2).await["status"], "sent");
    let late = shown(&s, &t, &c_recent, &late).await;
    assert_eq!(late["status"], "failed");
    assert!(
        late["error"]
            .as_str()
            .is_some_and(|e| e.contains("messaging window")),
        "{late}"
    );
    // Nothing was stored for the refused reply: the customer's message stays alone.
    let old_msgs = s.messages(&t, &c_old).await;
    assert_eq!(old_msgs.len(), 1, "{old_msgs:?}");
    assert_eq!(old_msgs[0]["direction"], "inbound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e12_no_message_to_someone_who_never_wrote() {
    let (s, t, cid) = quiet_conversation("7201").await;
    let m = &t.merchant_id;

    // No route starts a conversation or messages customers in bulk.
    for path in [
        format!("/v1/merchants/{m}/broadcasts"),
        format!("/v1/merchants/{m}/messages"),
        format!("/v1/merchants/{m}/conversations"),
        format!("/v1/merchants/{m}/customers/7201/messages"),
    ] {
        let (status, body) = s
            .post(
                &t.token,
                &path,
                json!({"text": "Big sale!", "psid": "7299"}),
            )
            .await;
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "POST {path} answered {status}: {body}"
        );
    }
    let (status, api) = s.call(Method::GET, None, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = api["paths"].as_object().expect("OpenAPI paths");
    for (path, ops) in paths {
        if ops.get("post").is_some() {
            let p = path.to_ascii_lowercase();
            assert!(
                !p.contains("broadcast") && !p.ends_with("/messages") && !p.contains("/send"),
                "a POST route that could message customers: {path}"
            );
        }
    }

    // A conversation that does not exist (well-formed id or not) cannot be replied to.
    for missing in [
        ecomdrive_core::ids::ConversationId::generate().to_string(),
        "not-a-conversation".to_owned(),
    ] {
        let (status, body) = s
            .post(
                &t.token,
                &replies_path(&t, &missing),
                json!({"text": "Hello there", "client_id": "n-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {body}");
    }

    // The Page wrote first from Meta's own inbox: the conversation exists (support history), but
    // the customer never wrote, so no reply may go out.
    let silent = "7202";
    let at = unix_ms(s.stack.sandbox.now());
    let echo = payloads::echo_event(
        PAGE_A,
        silent,
        at,
        "263902037430900",
        &format!("m_page{}", ulid::Ulid::new()),
        &payloads::EchoContent {
            text: Some("Hi from the Page"),
            ..Default::default()
        },
    );
    assert_eq!(
        s.stack
            .sandbox
            .post_raw(&payloads::single(PAGE_A, at, echo))
            .await
            .unwrap(),
        200
    );
    let never_wrote = ingest_until(&s, "the Page-started conversation", || async {
        s.conversations(&t)
            .await
            .into_iter()
            .find(|c| c["customer"]["psid"] == silent)
    })
    .await;
    assert_eq!(never_wrote["last_customer_message_at"], Value::Null);
    assert_eq!(never_wrote["reply_window"], "closed");
    let (status, problem) = s
        .post(
            &t.token,
            &replies_path(&t, never_wrote["id"].as_str().unwrap()),
            json!({"text": "Unsolicited hello", "client_id": "n-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("outside-messaging-window")),
        "{problem}"
    );

    // The customer who did write gets the answer: the checks above could have failed.
    reply(&s, &t, &cid, "Answer to a real question", "n-3").await;
    assert_eq!(drain(&s.stack.replies_poller).await, 1);
    let sent = s.stack.sandbox.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].recipient_id, "7201");
    assert!(sent[0].accepted());
}

// --- idempotency and at-most-once ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_id_twice_sends_one_reply() {
    let (s, t, cid) = quiet_conversation("7301").await;
    let first = reply(&s, &t, &cid, "Your parcel left today", "same-1").await;
    let again = reply(&s, &t, &cid, "Your parcel left today", "same-1").await;
    assert_eq!(first["id"], again["id"]);
    // Both requests queued the job (in case the first enqueue was lost); it is sent once.
    assert_eq!(replies_waiting(&s).await, 2);
    send_queued_replies(&s).await;
    let calls = calls_with(&s, "Your parcel left today");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(calls[0].accepted());

    let other = reply(&s, &t, &cid, "Your parcel left today", "same-2").await;
    assert_ne!(other["id"], first["id"]);
    send_queued_replies(&s).await;
    assert_eq!(calls_with(&s, "Your parcel left today").len(), 2);
    let outbound: Vec<Value> = s
        .messages(&t, &cid)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(outbound.len(), 2, "{outbound:?}");
    assert!(outbound.iter().all(|m| m["status"] == "sent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_processed_twice_is_sent_once() {
    let (s, t, cid) = quiet_conversation("7401").await;
    let agent = &s.stack.agent_reply;

    let r = reply(&s, &t, &cid, "Sent once, handled twice", "twice-1").await;
    let j = job(&t, &cid, &r);
    let now = OffsetDateTime::now_utc();
    assert_eq!(agent.send(&j, now).await.unwrap(), Outcome::Sent);
    assert_eq!(agent.send(&j, now).await.unwrap(), Outcome::AlreadyDone);
    assert_eq!(calls_with(&s, "Sent once, handled twice").len(), 1);

    // Two workers at the same time, a few times over.
    for round in 0..3 {
        let text = format!("Raced reply {round}");
        let r = reply(&s, &t, &cid, &text, &format!("race-{round}")).await;
        let j = job(&t, &cid, &r);
        let now = OffsetDateTime::now_utc();
        let (a, b) = tokio::join!(agent.send(&j, now), agent.send(&j, now));
        let sent = [&a, &b]
            .iter()
            .filter(|o| matches!(o, Ok(Outcome::Sent)))
            .count();
        assert_eq!(sent, 1, "round {round}: {a:?} / {b:?}");
        for o in [&a, &b] {
            assert!(
                matches!(
                    o,
                    Ok(Outcome::Sent | Outcome::AlreadyDone) | Err(ReplyError::RetryLater(_))
                ),
                "round {round}: {o:?}"
            );
        }
        let calls = calls_with(&s, &text);
        assert_eq!(calls.len(), 1, "round {round}: {calls:#?}");
        assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_send_timed_out_is_confirmed_by_its_echo_and_not_resent() {
    let (s, t, cid) = quiet_conversation("7501").await;
    let agent = impatient(&s);
    let text = "Slow but delivered";
    let r = reply(&s, &t, &cid, text, "slow-1").await;
    let j = job(&t, &cid, &r);
    let t0 = OffsetDateTime::now_utc();

    s.stack.sandbox.delay_next_send(SLOW_SEND, true);
    let first = agent.send(&j, t0).await;
    assert!(matches!(first, Err(ReplyError::RetryLater(_))), "{first:?}");
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sending");

    // Meta accepts it after all and echoes it with our metadata: the echo confirms the reply.
    let sent = ingest_until(&s, "the echo confirming the reply", || async {
        let m = shown(&s, &t, &cid, &r).await;
        (m["status"] == "sent").then_some(m)
    })
    .await;
    assert_eq!(sent["error"], Value::Null);
    let echoes = s
        .stack
        .sandbox
        .webhooks()
        .into_iter()
        .filter(|w| w.field == "message_echoes")
        .count();
    assert_eq!(echoes, 1);

    // A later retry of the job, even past the echo wait, sends nothing.
    let later = t0 + s.stack.agent_reply.config.echo_wait + time::Duration::seconds(1);
    assert_eq!(agent.send(&j, later).await.unwrap(), Outcome::AlreadyDone);
    let calls = calls_with(&s, text);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(calls[0].accepted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_echo_is_resent_after_the_echo_wait_and_fails_after_max_attempts() {
    let (s, t, cid) = quiet_conversation("7601").await;
    let agent = impatient(&s);
    let echo_wait = agent.config.echo_wait;
    let max = agent.config.max_attempts;

    // Meta drops the timed-out call: no echo comes.
    let text = "Dropped then resent";
    let r = reply(&s, &t, &cid, text, "drop-1").await;
    let j = job(&t, &cid, &r);
    let t0 = OffsetDateTime::now_utc();
    s.stack.sandbox.delay_next_send(SLOW_SEND, false);
    let first = agent.send(&j, t0).await;
    assert!(matches!(first, Err(ReplyError::RetryLater(_))), "{first:?}");
    // Retried before the echo wait: nothing is sent, it keeps waiting.
    let early = agent
        .send(&j, t0 + echo_wait - time::Duration::seconds(1))
        .await;
    assert!(matches!(early, Err(ReplyError::RetryLater(_))), "{early:?}");
    let dropped = eventually("the dropped call at Meta", || async {
        let c = calls_with(&s, text);
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(!dropped[0].accepted());
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sending");

    // No echo within the wait: resent once, with the same metadata, so an echo of either call
    // would name the same reply.
    assert_eq!(agent.send(&j, t0 + echo_wait).await.unwrap(), Outcome::Sent);
    let calls = calls_with(&s, text);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls[1].accepted());
    assert!(calls[0].metadata.is_some());
    assert_eq!(calls[0].metadata, calls[1].metadata);
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sent");

    // Every attempt's outcome stays unknown: after `max_attempts` the reply fails.
    let text = "Never answered";
    let r = reply(&s, &t, &cid, text, "drop-2").await;
    let j = job(&t, &cid, &r);
    let t0 = OffsetDateTime::now_utc();
    for attempt in 0..max {
        s.stack.sandbox.delay_next_send(SLOW_SEND, false);
        let at = t0 + echo_wait * attempt;
        let res = agent.send(&j, at).await;
        assert!(
            matches!(res, Err(ReplyError::RetryLater(_))),
            "attempt {attempt}: {res:?}"
        );
    }
    let last = agent.send(&j, t0 + echo_wait * max).await.unwrap();
    assert!(matches!(last, Outcome::Failed(_)), "{last:?}");
    let failed = shown(&s, &t, &cid, &r).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown")),
        "{failed}"
    );
    let calls = eventually("every slow call recorded", || async {
        let c = calls_with(&s, text);
        (c.len() >= max as usize).then_some(c)
    })
    .await;
    tokio::time::sleep(SLOW_SEND).await;
    assert_eq!(calls_with(&s, text).len(), max as usize, "{calls:#?}");
}

// --- Meta's errors ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_errors_that_cannot_succeed_fail_the_reply_without_retry() {
    let (s, t, cid) = quiet_conversation("7701").await;
    let agent = &s.stack.agent_reply;
    for (code, subcode) in [(10, Some(2_018_278)), (551, None), (100, None)] {
        let text = format!("Refused with {code}");
        let r = reply(&s, &t, &cid, &text, &format!("fail-{code}")).await;
        let j = job(&t, &cid, &r);
        s.stack.sandbox.fail_next_send(400, code, subcode);
        let outcome = agent.send(&j, OffsetDateTime::now_utc()).await.unwrap();
        assert!(
            matches!(&outcome, Outcome::Failed(e) if e.contains(&format!("Meta error {code}"))),
            "{code}: {outcome:?}"
        );
        assert_eq!(
            agent.send(&j, OffsetDateTime::now_utc()).await.unwrap(),
            Outcome::AlreadyDone
        );
        let shown = shown(&s, &t, &cid, &r).await;
        assert_eq!(shown["status"], "failed", "{code}");
        assert!(
            shown["error"]
                .as_str()
                .is_some_and(|e| e.contains(&code.to_string())),
            "{shown}"
        );
        assert_eq!(calls_with(&s, &text).len(), 1, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_meta_errors_are_retried_then_fail_after_max_attempts() {
    let (s, t, cid) = quiet_conversation("7801").await;
    let agent = &s.stack.agent_reply;
    for (http_status, code) in [(400, 613), (400, 4), (400, 32), (500, 2), (400, 1200)] {
        let text = format!("Retried after {code}");
        let r = reply(&s, &t, &cid, &text, &format!("retry-{code}")).await;
        let j = job(&t, &cid, &r);
        s.stack.sandbox.fail_next_send(http_status, code, None);
        let res = agent.send(&j, OffsetDateTime::now_utc()).await;
        assert!(
            matches!(&res, Err(ReplyError::RetryLater(e)) if e.contains(&format!("Meta error {code}"))),
            "{code}: {res:?}"
        );
        let queued = shown(&s, &t, &cid, &r).await;
        assert_eq!(queued["status"], "queued", "{code}: {queued}");
        assert_eq!(
            agent.send(&j, OffsetDateTime::now_utc()).await.unwrap(),
            Outcome::Sent,
            "{code}"
        );
        let calls = calls_with(&s, &text);
        assert_eq!(calls.len(), 2, "{code}: {calls:#?}");
        assert_eq!(calls[0].error_code, Some(code));
        assert!(calls[1].accepted());
        assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sent");
    }

    let max = agent.config.max_attempts;
    let text = "Rate limited every time";
    let r = reply(&s, &t, &cid, text, "retry-max").await;
    let j = job(&t, &cid, &r);
    for _ in 0..max {
        s.stack.sandbox.fail_next_send(400, 613, None);
    }
    for attempt in 1..max {
        let res = agent.send(&j, OffsetDateTime::now_utc()).await;
        assert!(
            matches!(res, Err(ReplyError::RetryLater(_))),
            "attempt {attempt}: {res:?}"
        );
    }
    let last = agent.send(&j, OffsetDateTime::now_utc()).await.unwrap();
    assert!(matches!(last, Outcome::Failed(_)), "{last:?}");
    assert_eq!(
        agent.send(&j, OffsetDateTime::now_utc()).await.unwrap(),
        Outcome::AlreadyDone
    );
    assert_eq!(calls_with(&s, text).len(), max as usize);
    let failed = shown(&s, &t, &cid, &r).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("613")),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_page_token_fails_the_reply_and_marks_the_page() {
    let (s, t, cid) = quiet_conversation("7901").await;
    let agent = &s.stack.agent_reply;
    let integration = format!("/v1/merchants/{}/integrations/messenger", t.merchant_id);
    let (_, before) = s.get(&t.token, &integration).await;
    assert_eq!(before["pages"][0]["status"], "active", "{before}");

    let r = reply(&s, &t, &cid, "Token revoked meanwhile", "tok-1").await;
    s.stack.sandbox.fail_next_send(400, 190, None);
    let outcome = agent
        .send(&job(&t, &cid, &r), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Failed(e) if e.contains("190")),
        "{outcome:?}"
    );
    let failed = shown(&s, &t, &cid, &r).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("190")),
        "{failed}"
    );

    let (status, after) = s.get(&t.token, &integration).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["pages"][0]["id"], PAGE_A);
    assert_eq!(after["pages"][0]["status"], "token_invalid", "{after}");
    let raw = after.to_string();
    assert!(
        !raw.contains("EAA") && !raw.contains("token_ciphertext"),
        "{raw}"
    );
    assert!(!failed.to_string().contains("EAA"), "{failed}");

    // Until the merchant reconnects, later replies fail without calling Meta.
    let r2 = reply(&s, &t, &cid, "After the token broke", "tok-2").await;
    let outcome = agent
        .send(&job(&t, &cid, &r2), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    assert!(calls_with(&s, "After the token broke").is_empty());
    assert_eq!(s.stack.sandbox.sent().len(), 1);
}

// --- statuses and the queue (POLICY E5, E8) ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e5_outbound_status_moves_queued_sent_delivered_read() {
    let (s, t, cid) = quiet_conversation("8001").await;
    let r = reply(&s, &t, &cid, "On its way", "st-1").await;
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "queued");
    assert_eq!(drain(&s.stack.replies_poller).await, 1);
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "sent");

    let sandbox = &s.stack.sandbox;
    let status = sandbox
        .simulate_delivery(PAGE_A, "8001", unix_ms(sandbox.now()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    ingest_until(&s, "the reply delivered", || async {
        (shown(&s, &t, &cid, &r).await["status"] == "delivered").then_some(())
    })
    .await;
    let read_at = unix_ms(sandbox.now());
    assert_eq!(
        sandbox
            .simulate_read(PAGE_A, "8001", read_at)
            .await
            .unwrap(),
        200
    );
    ingest_until(&s, "the reply read", || async {
        (shown(&s, &t, &cid, &r).await["status"] == "read").then_some(())
    })
    .await;
    // A late delivery receipt does not move it back.
    sandbox
        .simulate_delivery(PAGE_A, "8001", read_at)
        .await
        .unwrap();
    drain(&s.stack.inbound_poller).await;
    assert_eq!(shown(&s, &t, &cid, &r).await["status"], "read");

    // A reply Meta refuses ends `failed` with Meta's error.
    let f = reply(&s, &t, &cid, "Nobody home", "st-2").await;
    sandbox.fail_next_send(400, 551, None);
    assert_eq!(drain(&s.stack.replies_poller).await, 1);
    let failed = shown(&s, &t, &cid, &f).await;
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("551") && error.contains("isn't available"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e8_agents_reply_through_the_queue() {
    // The pollers run, as the queues' Lambda triggers do: the basic path is inbox_flow.rs; this
    // one proves the queue's retries and the final status of a reply that never gets through.
    let s = stack().await;
    let t = s.connected_merchant("owner@acme.example", PAGE_A).await;
    s.customer_writes(PAGE_A, "8101", "Is it in stock?").await;
    let cid = s.conversation_with(&t, "8101").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    s.stack.sandbox.fail_next_send(400, 613, None);
    let r = reply(&s, &t, &cid, "Yes, 4 left", "q-1").await;
    eventually("the reply sent after a retry", || async {
        (shown(&s, &t, &cid, &r).await["status"] == "sent").then_some(())
    })
    .await;
    let calls = calls_with(&s, "Yes, 4 left");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].error_code, Some(613));
    assert!(calls[1].accepted());
    assert_eq!(calls[1].messaging_type, "RESPONSE");

    let max = s.stack.agent_reply.config.max_attempts;
    for _ in 0..max {
        s.stack.sandbox.fail_next_send(400, 613, None);
    }
    let r = reply(&s, &t, &cid, "Still rate limited", "q-2").await;
    let failed = eventually("the reply failed for good", || async {
        let m = shown(&s, &t, &cid, &r).await;
        (m["status"] == "failed").then_some(m)
    })
    .await;
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("613")),
        "{failed}"
    );
    assert_eq!(calls_with(&s, "Still rate limited").len(), max as usize);
}

/// A Page token's ciphertext copied into another merchant's connection does not decrypt there
/// (the KMS encryption context names merchant and Page): the reply fails, asking for a reconnect,
/// and nothing reaches Meta with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_copied_from_another_merchant_does_not_send() {
    let (s, a, cid) = quiet_conversation("9301").await;
    let b = s.merchant("owner@other.example").await;
    connect_page(&s, &b, crate::support::PAGE_B).await;
    let m =
        |t: &Tenant| ecomdrive_core::ids::MerchantId::parse(&t.merchant_id).expect("merchant id");
    let page = |p: &str| ecomdrive_core::ids::PageId::parse(p).expect("page id");
    let theirs = s
        .stack
        .store
        .page_connection(&m(&b), &page(crate::support::PAGE_B))
        .await
        .unwrap()
        .unwrap();
    let mut ours = s
        .stack
        .store
        .page_connection(&m(&a), &page(PAGE_A))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(ours.token_ciphertext, theirs.token_ciphertext);
    ours.token_ciphertext = theirs.token_ciphertext.clone();
    s.stack
        .store
        .connect_page(&ours)
        .await
        .expect("the connection is rewritten");

    let r = reply(&s, &a, &cid, "Sealed for someone else", "copied-1").await;
    let outcome = s
        .stack
        .agent_reply
        .send(&job(&a, &cid, &r), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Failed(e) if e.contains("reconnect")),
        "{outcome:?}"
    );
    assert!(calls_with(&s, "Sealed for someone else").is_empty());
    let shown = shown(&s, &a, &cid, &r).await;
    assert_eq!(shown["status"], "failed");
    assert!(
        shown["error"]
            .as_str()
            .unwrap_or_default()
            .contains("reconnect")
    );
}

/// A client retrying the same request (a lost answer, a retry loop) gets its reply back each
/// time without using up the rate limit: more repeats than the per-conversation limit all answer
/// 202 with the same reply, and a new reply is still accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_reply_request_does_not_use_up_the_rate_limit() {
    let (s, t, cid) = quiet_conversation("9401").await;
    let first = reply(&s, &t, &cid, "Once only", "same-key").await;
    let repeats = ecomdrive_api::routes::inbox::REPLIES_PER_CONVERSATION_PER_MINUTE + 5;
    for _ in 0..repeats {
        let again = reply(&s, &t, &cid, "Once only", "same-key").await;
        assert_eq!(again["id"], first["id"]);
    }
    let other = reply(&s, &t, &cid, "A second reply", "other-key").await;
    assert_ne!(other["id"], first["id"]);
    let outbound: Vec<_> = s
        .messages(&t, &cid)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(outbound.len(), 2, "{outbound:#?}");
}
