//! Helpers shared by the suite's modules.
#![allow(dead_code)] // each module uses a different subset

// --- emulator ---

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::SdkConfig;
use ecomdrive_local::provision::{self, Resources};

/// SDK configuration for the emulator named by `AWS_ENDPOINT_URL`. Tests never skip: without a
/// reachable emulator they fail, saying how to start one.
pub async fn sdk() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if endpoint.is_empty() {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests run against the local AWS emulator. \
             Run them with infra/scripts/test.sh (the README's test command), which starts it."
        );
    }
    static REACHABLE: OnceLock<()> = OnceLock::new();
    if REACHABLE.get().is_none() {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client builds");
        // Every test of the binary may ask at once at start-up, while the emulator is still
        // warming up: a few tries over ~10 s before saying it is not there.
        let mut last_error = None;
        for _ in 0..30 {
            match client.get(&endpoint).send().await {
                Ok(_) => {
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Some(error) = last_error {
            panic!(
                "the AWS emulator at AWS_ENDPOINT_URL={endpoint} does not answer ({error}). \
                 Run the tests with infra/scripts/test.sh (the README's test command), which starts it."
            );
        }
        let _ = REACHABLE.set(());
    }
    ecomdrive_local::emulator::sdk_config(&endpoint).await
}

/// The fake Meta app credentials every test's secret holds.
pub fn fake_meta_secret() -> serde_json::Value {
    serde_json::json!({
        "app_id": "local-app-id",
        "app_secret": "local-fake-app-secret",
        "verify_token": "local-fake-verify-token",
        "state_signing_key": "local-fake-state-key",
    })
}

/// A fresh copy of every resource template.yaml declares, under a unique name prefix, so
/// tests running in parallel never see each other's data.
pub async fn fresh_resources() -> Resources {
    let sdk = sdk().await;
    let prefix = format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let secrets = BTreeMap::from([
        ("MetaAppSecret".to_string(), fake_meta_secret()),
        (
            "AmazonAppSecret".to_string(),
            serde_json::json!({
                "application_id": "amzn1.sp.solution.test-fake",
                "client_id": "amzn1.application-oa2-client.testfake",
                "client_secret": "test-fake-lwa-secret",
            }),
        ),
        (
            "DeletionFormSecret".to_string(),
            serde_json::json!({ "form_signing_key": "test-fake-form-signing-key" }),
        ),
    ]);
    let template = provision::template_path(&provision::repo_root());
    provision::provision(&sdk, &template, &prefix, &secrets)
        .await
        .unwrap_or_else(|error| panic!("provisioning from {} failed: {error}", template.display()))
}

// --- stack ---

use ecomdrive_local::stack::{RunningStack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Both Pages of the Meta sandbox's test user.
pub const PAGE_A: &str = "100000000000101";
pub const PAGE_B: &str = "100000000000102";

/// The whole system for one test: fresh resources, its own Meta sandbox and identity provider,
/// every HTTP function on a free loopback port, the queue functions on pollers.
pub struct TestStack {
    pub stack: RunningStack,
    /// Keeps cookies, as the merchant's browser does (the OAuth nonce cookie).
    pub browser: reqwest::Client,
}

/// A merchant and its owner's bearer token.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub token: String,
    pub merchant_id: String,
}

pub fn unique_prefix() -> String {
    format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

pub async fn stack() -> TestStack {
    stack_with(|_| {}).await
}

pub async fn stack_with(configure: impl FnOnce(&mut StackOptions)) -> TestStack {
    let sdk = sdk().await;
    let mut options = StackOptions::new(unique_prefix());
    options.retry_after = Duration::from_secs(1);
    configure(&mut options);
    let stack = RunningStack::start(&sdk, options)
        .await
        .unwrap_or_else(|e| panic!("the local stack did not start: {e}"));
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds");
    TestStack { stack, browser }
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    /// A bearer token for this e-mail, as `/_local/login` gives it.
    pub fn token(&self, email: &str) -> String {
        self.stack.idp.login(email)
    }

    /// Any request with an optional bearer token and JSON body; answers status and JSON (or
    /// `Value::Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.browser.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the local stack answers");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, Some(token), path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, Some(token), path, Some(body)).await
    }

    /// A new merchant owned by `owner_email`.
    pub async fn merchant(&self, owner_email: &str) -> Tenant {
        let token = self.token(owner_email);
        let (status, body) = self
            .post(&token, "/v1/merchants", json!({"name": "Acme Traders"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Tenant {
            token,
            merchant_id: body["id"].as_str().expect("merchant id").to_owned(),
        }
    }

    /// Runs the Messenger OAuth flow as a browser would (the nonce cookie included).
    pub async fn authorize_messenger(&self, t: &Tenant) -> Value {
        let (status, body) = self
            .post(
                &t.token,
                &format!(
                    "/v1/merchants/{}/integrations/messenger/connect",
                    t.merchant_id
                ),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["authorize_url"]
            .as_str()
            .expect("authorize_url")
            .to_owned();
        let res = self.browser.get(url).send().await.expect("dialog answers");
        assert!(
            res.status().is_success(),
            "callback answered {}",
            res.status()
        );
        res.json().await.expect("callback JSON")
    }

    /// A merchant whose `page` is connected, ready to receive messages.
    pub async fn connected_merchant(&self, owner_email: &str, page: &str) -> Tenant {
        let t = self.merchant(owner_email).await;
        self.authorize_messenger(&t).await;
        let (status, body) = self
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
        t
    }

    /// The customer `psid` writes `text` to `page`, through a signed webhook as Meta sends it.
    pub async fn customer_writes(&self, page: &str, psid: &str, text: &str) -> String {
        let d = self
            .stack
            .sandbox
            .simulate_message(page, psid, text)
            .await
            .expect("the sandbox posts the webhook");
        assert_eq!(d.webhook_status, 200);
        d.mid
    }

    pub async fn conversations(&self, t: &Tenant) -> Vec<Value> {
        let (status, body) = self
            .get(
                &t.token,
                &format!("/v1/merchants/{}/conversations", t.merchant_id),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn messages(&self, t: &Tenant, conversation_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &t.token,
                &format!(
                    "/v1/merchants/{}/conversations/{conversation_id}/messages?limit=100",
                    t.merchant_id
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the customer's message shows in the inbox; returns the conversation.
    pub async fn conversation_with(&self, t: &Tenant, psid: &str) -> Value {
        eventually(&format!("a conversation with {psid}"), || async {
            self.conversations(t)
                .await
                .into_iter()
                .find(|c| c["customer"]["psid"] == psid)
        })
        .await
    }
}

/// Polls `probe` until it gives a value, for at most 20 seconds (the queue pollers run in the
/// background); fails the test naming what never happened.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(20), probe).await
}

/// [`eventually`] with a longer limit, for work that writes hundreds of items while every other
/// test of the suite shares the emulator (an order sync of the demo seller).
pub async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records on a queue, visible or in flight (a failed record is invisible until its visibility
/// timeout ends, then comes back).
pub async fn queue_depth(queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("the queue answers");
    let attrs = out.attributes.unwrap_or_default();
    [
        ApproximateNumberOfMessages,
        ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|a| attrs.get(a).and_then(|v| v.parse::<usize>().ok()))
    .sum()
}

impl TestStack {
    /// The owner (or admin) of `t` invites `email` with `role`.
    pub async fn invite(&self, t: &Tenant, email: &str, role: &str) -> (StatusCode, Value) {
        self.post(
            &t.token,
            &format!("/v1/merchants/{}/members", t.merchant_id),
            json!({"email": email, "role": role}),
        )
        .await
    }
}

impl TestStack {
    /// Runs Amazon's website authorization as a browser would: start, the sandbox's consent page
    /// (which consents at once for its demo seller), the callback with the nonce cookie.
    pub async fn connect_amazon(&self, t: &Tenant) -> Value {
        let (status, body) = self
            .post(
                &t.token,
                &format!(
                    "/v1/merchants/{}/integrations/amazon/connect",
                    t.merchant_id
                ),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["authorize_url"]
            .as_str()
            .expect("authorize_url")
            .to_owned();
        let res = self.browser.get(url).send().await.expect("consent answers");
        assert!(
            res.status().is_success(),
            "callback answered {}",
            res.status()
        );
        res.json().await.expect("callback JSON")
    }

    /// A merchant whose Amazon seller account (the sandbox's demo seller) is connected and whose
    /// first order sync has finished.
    pub async fn amazon_merchant(&self, owner_email: &str) -> Tenant {
        let t = self.merchant(owner_email).await;
        let connected = self.connect_amazon(&t).await;
        assert_eq!(connected["connected"], true, "{connected}");
        let m = ecomdrive_core::ids::MerchantId::parse(&t.merchant_id).expect("merchant id");
        eventually_within("the first order sync", Duration::from_secs(120), || async {
            self.stack
                .store
                .sync_state(&m)
                .await
                .expect("store answers")
        })
        .await;
        t
    }
}

// --- raw reads of the table and the bucket ---

/// One raw item of the table.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Every item of `table`, read page by page with consistent reads (a fresh table per stack or
/// per test: only that test's data). In the order the scan gives them: callers that want an
/// order or a subset sort or filter themselves.
pub async fn scan_table(table: &str) -> Vec<Item> {
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk().await);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = dynamo
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .expect("the table scans");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

/// Every key of `bucket` under `prefix` (`""` for the whole bucket), page by page.
pub async fn bucket_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let s3 = ecomdrive_aws::s3_client(&sdk().await);
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("the bucket lists");
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

// --- a merchant with a record of every kind ---

/// The photo the customer of [`TestStack::merchant_with_everything`] sends.
pub const EVERYTHING_PHOTO: &[u8] = b"\x89PNG photo";
/// The customer's name and notes [`TestStack::merchant_with_everything`] saves (notes with all
/// that CSV must quote, both with text beyond ASCII).
pub const EVERYTHING_CUSTOMER_NAME: &str = "Priyā Śarmā";
pub const EVERYTHING_CUSTOMER_NOTES: &str = "likes \"red\", size M\nprefers COD";

impl TestStack {
    /// A merchant with a record of every kind the product's paths make, each made through those
    /// paths: Messenger connected on Page A, a member (`agent`, invitation accepted) and a
    /// pending invitation, a customer `psid` who wrote and sent a photo (copied into the bucket),
    /// was named and got a reply; Amazon connected with orders synced, one linked to the
    /// conversation, review requests on and planned; a settlement uploaded, an upload slot, the
    /// scheduled import, costs of goods; an export done by the stack's `data-export` job (its zip
    /// in the bucket). Returns once every queue of the stack is empty: all of it is written.
    pub async fn merchant_with_everything(&self, owner: &str, agent: &str, psid: &str) -> Tenant {
        let s = self;
        let t = s.connected_merchant(owner, PAGE_A).await;
        let m = &t.merchant_id;
        let mid = ecomdrive_core::ids::MerchantId::parse(m).expect("merchant id");
        let bucket = &s.stack.resources.bucket;

        // Members: an agent who accepted, an admin still invited.
        let (status, body) = s.invite(&t, agent, "agent").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = s.get(&s.token(agent), "/v1/me").await;
        assert_eq!(status, StatusCode::OK, "the invitation is accepted: {body}");
        let (status, body) = s.invite(&t, &format!("pending.{owner}"), "admin").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Messenger: a message, a photo copied into the bucket, the customer named, a reply sent.
        s.customer_writes(PAGE_A, psid, "Where is my parcel?").await;
        let d = s
            .stack
            .sandbox
            .simulate_attachment(
                PAGE_A,
                psid,
                "image",
                EVERYTHING_PHOTO.to_vec(),
                "image/png",
            )
            .await
            .expect("the sandbox posts the attachment");
        assert_eq!(d.webhook_status, 200);
        let conv = s.conversation_with(&t, psid).await;
        let cid = conv["id"].as_str().expect("conversation id").to_owned();
        let customer = conv["customer"]["id"]
            .as_str()
            .expect("customer id")
            .to_owned();
        let attachments = format!("merchants/{m}/attachments/{cid}/");
        eventually("the attachment in the bucket", || async {
            (!bucket_keys(bucket, &attachments).await.is_empty()).then_some(())
        })
        .await;
        eventually("the photo stored", || async {
            s.messages(&t, &cid)
                .await
                .into_iter()
                .find(|msg| msg["attachments"][0]["state"] == "stored")
        })
        .await;
        let (status, body) = s
            .call(
                Method::PATCH,
                Some(&t.token),
                &format!("/v1/merchants/{m}/customers/{customer}"),
                Some(json!({
                    "name": EVERYTHING_CUSTOMER_NAME,
                    "notes": EVERYTHING_CUSTOMER_NOTES,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, reply) = s
            .post(
                &t.token,
                &format!("/v1/merchants/{m}/conversations/{cid}/replies"),
                json!({"text": "It ships today", "client_id": format!("c-{psid}")}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        eventually("the reply sent", || async {
            s.messages(&t, &cid)
                .await
                .iter()
                .any(|msg| msg["id"] == reply["id"] && msg["status"] == "sent")
                .then_some(())
        })
        .await;

        // Amazon: connected, orders synced, one linked to the conversation, review requests
        // planned.
        let connected = s.connect_amazon(&t).await;
        assert_eq!(connected["connected"], true, "{connected}");
        eventually_within("the first order sync", Duration::from_secs(120), || async {
            s.stack.store.sync_state(&mid).await.expect("store answers")
        })
        .await;
        let (status, orders) = s.get(&t.token, &format!("/v1/merchants/{m}/orders")).await;
        assert_eq!(status, StatusCode::OK, "{orders}");
        let order_id = orders["items"][0]["order_id"]
            .as_str()
            .expect("the sandbox seller has orders")
            .to_owned();
        let (status, body) = s
            .post(
                &t.token,
                &format!("/v1/merchants/{m}/conversations/{cid}/orders"),
                json!({"order_ref": order_id}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .call(
                Method::PUT,
                Some(&t.token),
                &format!("/v1/merchants/{m}/solicitations/settings"),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .call(
                Method::POST,
                None,
                "/_local/run/solicitation-scheduler",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        eventually_within(
            "review requests planned",
            Duration::from_secs(60),
            || async {
                let planned = s.stack.store.all_solicitations(&mid).await.expect("store");
                (!planned.is_empty()).then_some(())
            },
        )
        .await;

        // Money: an uploaded settlement, a presigned upload slot, the scheduled import, costs.
        let res = s
            .browser
            .post(s.url(&format!("/v1/merchants/{m}/settlements")))
            .bearer_auth(&t.token)
            .header("content-type", "text/tab-separated-values")
            .body(crate::settlements::small_settlement("90001"))
            .send()
            .await
            .expect("stack answers");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let (status, body) = s
            .post(
                &t.token,
                &format!("/v1/merchants/{m}/settlements/uploads"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = s
            .call(Method::POST, None, "/_local/run/settlement-import", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        eventually_within(
            "the scheduled settlement import",
            Duration::from_secs(60),
            || async {
                s.stack
                    .store
                    .settlement_import_state(&mid)
                    .await
                    .expect("store")
            },
        )
        .await;
        let res = s
            .browser
            .put(s.url(&format!("/v1/merchants/{m}/cogs")))
            .bearer_auth(&t.token)
            .header("content-type", "text/csv")
            .body("sku,unit_cost,currency,effective_from\nKURTA-RED-M,400.00,INR,2026-10-01\n")
            .send()
            .await
            .expect("stack answers");
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap_or_default()
        );

        // An export, carried out by the stack's `data-export` job: its zip is in the bucket.
        let (status, body) = s
            .post(
                &t.token,
                &format!("/v1/merchants/{m}/exports"),
                json!({"format": "json"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let export = body["id"].as_str().expect("export id").to_owned();
        eventually_within("the export done", Duration::from_secs(120), || async {
            // In-process (not `/_local/run/data-export`): a loaded machine may take longer
            // than the HTTP client waits, and some tests run with the pollers off.
            s.stack
                .exports_poller
                .poll_once(Duration::ZERO)
                .await
                .expect("the exports queue answers");
            let (status, view) = s
                .get(&t.token, &format!("/v1/merchants/{m}/exports/{export}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{view}");
            assert_ne!(view["status"], "failed", "{view}");
            (view["status"] == "done").then_some(())
        })
        .await;
        let exports = format!("exports/{m}/");
        assert!(
            bucket_keys(bucket, &exports)
                .await
                .iter()
                .any(|k| k.ends_with(".zip")),
            "the export's zip is under {exports}"
        );
        s.settle().await;
        t
    }

    /// Waits until every queue of the stack is empty: the data a test built is all written.
    pub async fn settle(&self) {
        let r = &self.stack.resources;
        let queues = [
            r.inbound_queue_url.clone(),
            r.replies_queue_url.clone(),
            r.order_sync_queue_url.clone(),
            r.solicitation_plan_queue_url.clone(),
            r.solicitations_queue_url.clone(),
            r.settlement_import_queue_url.clone(),
            r.exports_queue_url.clone(),
        ];
        eventually_within("every queue to drain", Duration::from_secs(180), || {
            let queues = queues.clone();
            async move {
                for q in &queues {
                    if queue_depth(q).await > 0 {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
    }
}
