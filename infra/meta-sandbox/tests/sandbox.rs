//! The sandbox checked against what Meta documents, over real HTTP on loopback:
//! a tiny webhook receiver stands in for EcomDrive's webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use meta_sandbox::{MetaSandbox, SandboxConfig, local_routes, payloads};
use serde_json::{Value, json};
use sha2::Sha256;
use time::Duration;
use tokio::sync::mpsc;

const APP_ID: &str = "4242424242";
const APP_SECRET: &str = "local-fake-app-secret";
const STORE: &str = "100000000000101";
const OUTLET: &str = "100000000000102";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/meta/callback";

/// One POST the webhook receiver got.
struct Received {
    signature: Option<String>,
    user_agent: Option<String>,
    raw: Bytes,
    json: Value,
}

/// A webhook on loopback that records what it gets and answers `status`.
struct Receiver {
    url: String,
    deliveries: mpsc::UnboundedReceiver<Received>,
    status: Arc<AtomicU16>,
}

type ReceiverState = (mpsc::UnboundedSender<Received>, Arc<AtomicU16>);

async fn receive(
    State((tx, status)): State<ReceiverState>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let received = Received {
        signature: header("x-hub-signature-256"),
        user_agent: header("user-agent"),
        json: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    };
    tx.send(received).expect("test still listening");
    StatusCode::from_u16(status.load(Ordering::SeqCst)).expect("valid status")
}

impl Receiver {
    async fn start() -> Self {
        let (tx, deliveries) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let app = Router::new()
            .route("/webhooks/messenger", post(receive))
            .with_state((tx, status.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/webhooks/messenger",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            deliveries,
            status,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(StdDuration::from_secs(5), self.deliveries.recv())
            .await
            .expect("a webhook POST within 5 s")
            .expect("receiver open")
    }

    async fn nothing_within(&mut self, wait: StdDuration) -> bool {
        tokio::time::timeout(wait, self.deliveries.recv())
            .await
            .is_err()
    }
}

struct Setup {
    sandbox: MetaSandbox,
    base: String,
    hook: Receiver,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let hook = Receiver::start().await;
    let sandbox = MetaSandbox::new(SandboxConfig::demo(APP_ID, APP_SECRET, &hook.url));
    let base = sandbox.serve().await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Setup {
        sandbox,
        base,
        hook,
        http,
    }
}

fn independent_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Setup {
    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs the login dialog and returns the `Location` it redirects to.
    async fn dialog(&self, state: &str) -> url::Url {
        let response = self
            .http
            .get(format!("{}/v23.0/dialog/oauth", self.base))
            .query(&[
                ("client_id", APP_ID),
                ("redirect_uri", REDIRECT),
                ("state", state),
                (
                    "scope",
                    "pages_show_list,pages_messaging,pages_manage_metadata",
                ),
                ("response_type", "code"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().unwrap();
        url::Url::parse(location).unwrap()
    }

    async fn exchange_code(&self, code: &str, redirect_uri: &str, secret: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/v23.0/oauth/access_token", self.base))
            .query(&[
                ("client_id", APP_ID),
                ("client_secret", secret),
                ("redirect_uri", redirect_uri),
                ("code", code),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The whole connect flow: dialog, code, long-lived token, `/me/accounts`.
    /// Returns (long-lived user token, [(page id, page token)]).
    async fn connect(&self) -> (String, Vec<(String, String)>) {
        let location = self.dialog("s1").await;
        let code = query_value(&location, "code").unwrap();
        let (status, short) = self.exchange_code(&code, REDIRECT, APP_SECRET).await;
        assert_eq!(status, 200, "{short}");
        let (status, long) = self
            .get(&format!(
                "/v23.0/oauth/access_token?grant_type=fb_exchange_token&client_id={APP_ID}\
                 &client_secret={APP_SECRET}&fb_exchange_token={}",
                short["access_token"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200, "{long}");
        let user_token = long["access_token"].as_str().unwrap().to_owned();
        let (status, accounts) = self
            .get(&format!("/v23.0/me/accounts?access_token={user_token}"))
            .await;
        assert_eq!(status, 200, "{accounts}");
        let pages = accounts["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["access_token"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (user_token, pages)
    }

    async fn send(&self, page_token: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v23.0/me/messages", self.base))
            .query(&[("access_token", page_token)])
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn reply(
        &self,
        page_token: &str,
        psid: &str,
        messaging_type: &str,
        tag: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({
            "recipient": { "id": psid },
            "messaging_type": messaging_type,
            "message": { "text": "Your order ships today." },
        });
        if let Some(tag) = tag {
            body["tag"] = json!(tag);
        }
        self.send(page_token, body).await
    }
}

fn query_value(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn assert_meta_error(body: &Value, code: i64, subcode: Option<i64>) {
    let error = &body["error"];
    assert_eq!(error["code"], json!(code), "{body}");
    assert_eq!(error["error_subcode"].as_i64(), subcode, "{body}");
    assert_eq!(error["type"], "OAuthException", "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["fbtrace_id"].is_string(), "{body}");
}

#[tokio::test]
async fn a_simulated_message_is_signed_with_the_app_secret_and_has_the_documented_fields() {
    let mut s = setup().await;
    let psid = s.sandbox.new_psid();
    let delivery = s
        .sandbox
        .simulate_message(STORE, &psid, "Where is my order?")
        .await
        .unwrap();
    assert_eq!(delivery.webhook_status, 200);

    let got = s.hook.next().await;
    assert_eq!(got.signature, Some(independent_signature(&got.raw)));
    assert!(meta_sandbox::verify(
        APP_SECRET,
        &got.raw,
        got.signature.as_deref().unwrap()
    ));
    assert_eq!(got.user_agent.as_deref(), Some("facebookexternalua"));

    // "messages Webhook Event Reference".
    let body = got.json;
    assert_eq!(body["object"], "page");
    let entry = &body["entry"][0];
    assert_eq!(entry["id"], STORE);
    assert!(entry["time"].is_i64());
    let event = &entry["messaging"][0];
    assert_eq!(event["sender"]["id"], psid.as_str());
    assert_eq!(event["recipient"]["id"], STORE);
    assert!(event["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(event["message"]["mid"], delivery.mid.as_str());
    assert_eq!(event["message"]["text"], "Where is my order?");
}

#[tokio::test]
async fn the_webhook_status_is_reported_back_to_the_caller() {
    let mut s = setup().await;
    s.hook.status.store(503, Ordering::SeqCst);
    let delivery = s
        .sandbox
        .simulate_message(STORE, "1234", "hello")
        .await
        .unwrap();
    assert_eq!(delivery.webhook_status, 503);
    s.hook.next().await;
    let logged = s.sandbox.webhooks();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].status, Some(503));
    assert_eq!(logged[0].field, "messages");
}

#[tokio::test]
async fn an_unknown_page_cannot_be_simulated() {
    let s = setup().await;
    let error = s
        .sandbox
        .simulate_message("999", "1234", "hello")
        .await
        .unwrap_err();
    assert!(matches!(error, meta_sandbox::SandboxError::UnknownPage(_)));
}

#[tokio::test]
async fn the_login_dialog_redirects_with_code_and_state_and_refuses_an_unknown_app() {
    let s = setup().await;
    let location = s.dialog("csrf-123").await;
    assert!(location.as_str().starts_with(REDIRECT));
    assert_eq!(query_value(&location, "state").as_deref(), Some("csrf-123"));
    assert!(query_value(&location, "code").is_some());

    let response = s
        .http
        .get(format!(
            "{}/v23.0/dialog/oauth?client_id=1&redirect_uri={REDIRECT}&state=x",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("Invalid App ID"));
}

#[tokio::test]
async fn a_declined_consent_redirects_with_the_documented_error() {
    let s = setup().await;
    s.sandbox.deny_next_consent();
    let location = s.dialog("st").await;
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_value(&location, "error_reason").as_deref(),
        Some("user_denied")
    );
    assert_eq!(query_value(&location, "state").as_deref(), Some("st"));
    assert!(query_value(&location, "code").is_none());
    // Only the next one.
    assert!(query_value(&s.dialog("st").await, "code").is_some());
}

#[tokio::test]
async fn the_code_is_single_use_and_bound_to_its_redirect_uri() {
    let s = setup().await;
    let code = query_value(&s.dialog("a").await, "code").unwrap();

    let (status, body) = s
        .exchange_code(&code, "http://127.0.0.1:9/elsewhere", APP_SECRET)
        .await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 100, Some(36008));

    let (status, body) = s.exchange_code(&code, REDIRECT, "wrong-secret").await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 1, None);

    let (status, body) = s.exchange_code(&code, REDIRECT, APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert!(body["access_token"].as_str().unwrap().starts_with("EAA"));
    assert!(body["expires_in"].as_i64().unwrap() > 0);

    let (status, body) = s.exchange_code(&code, REDIRECT, APP_SECRET).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 100, Some(36009));

    let (status, body) = s.exchange_code("AQnot-a-code", REDIRECT, APP_SECRET).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 100, None);
}

#[tokio::test]
async fn the_code_expires() {
    let s = setup().await;
    let code = query_value(&s.dialog("a").await, "code").unwrap();
    s.sandbox.advance_clock(Duration::minutes(11));
    let (status, body) = s.exchange_code(&code, REDIRECT, APP_SECRET).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 100, Some(36007));
}

#[tokio::test]
async fn fb_exchange_token_gives_a_long_lived_user_token() {
    let s = setup().await;
    let code = query_value(&s.dialog("a").await, "code").unwrap();
    let (_, short) = s.exchange_code(&code, REDIRECT, APP_SECRET).await;
    let short = short["access_token"].as_str().unwrap();
    let exchange = |secret: &str| {
        format!(
            "/v23.0/oauth/access_token?grant_type=fb_exchange_token&client_id={APP_ID}\
             &client_secret={secret}&fb_exchange_token={short}"
        )
    };
    let (status, body) = s.get(&exchange("nope")).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 1, None);

    let (status, long) = s.get(&exchange(APP_SECRET)).await;
    assert_eq!(status, 200, "{long}");
    assert_eq!(long["token_type"], "bearer");
    assert_eq!(long["expires_in"], 60 * 24 * 3600);
    assert_ne!(long["access_token"].as_str().unwrap(), short);

    // The short-lived token expires within hours; the long-lived one outlives it.
    s.sandbox.advance_clock(Duration::hours(3));
    let (status, body) = s.get(&format!("/v23.0/me?access_token={short}")).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 190, Some(463));
    let (status, me) = s
        .get(&format!(
            "/v23.0/me?access_token={}",
            long["access_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "Demo Merchant");
}

#[tokio::test]
async fn me_accounts_pages_with_cursors_when_limit_is_one() {
    let s = setup().await;
    let (user_token, _) = s.connect().await;

    let (status, first) = s
        .get(&format!(
            "/v23.0/me/accounts?access_token={user_token}&limit=1"
        ))
        .await;
    assert_eq!(status, 200, "{first}");
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], STORE);
    assert_eq!(data[0]["name"], "Demo Store");
    assert!(data[0]["access_token"].is_string());
    assert!(data[0]["category"].is_string());
    assert!(
        data[0]["tasks"]
            .as_array()
            .unwrap()
            .contains(&json!("MESSAGING"))
    );
    assert!(first["paging"]["cursors"]["before"].is_string());
    assert!(first["paging"].get("previous").is_none());

    // Follow `next` exactly as given, as a client must.
    let next = first["paging"]["next"].as_str().expect("a next link");
    let second: Value = s.http.get(next).send().await.unwrap().json().await.unwrap();
    let data = second["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], OUTLET);
    assert_eq!(data[0]["name"], "Demo Outlet");
    assert!(second["paging"].get("next").is_none(), "{second}");
    assert!(second["paging"]["previous"].is_string());

    // After the last cursor there is nothing.
    let after = second["paging"]["cursors"]["after"].as_str().unwrap();
    let (_, end) = s
        .get(&format!(
            "/v23.0/me/accounts?access_token={user_token}&limit=1&after={after}"
        ))
        .await;
    assert_eq!(end["data"], json!([]));

    let (status, bad) = s
        .get(&format!(
            "/v23.0/me/accounts?access_token={user_token}&after=zz"
        ))
        .await;
    assert_eq!(status, 400);
    assert_meta_error(&bad, 100, None);
}

#[tokio::test]
async fn subscribed_apps_records_fields_and_checks_the_appsecret_proof() {
    let s = setup().await;
    let (user_token, pages) = s.connect().await;
    let store_token = &pages.iter().find(|(id, _)| id == STORE).unwrap().1;
    let url = format!("{}/v23.0/{STORE}/subscribed_apps", s.base);
    assert_eq!(s.sandbox.subscribed_fields(STORE), None);

    let proof = {
        let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
        mac.update(store_token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let response = s
        .http
        .post(&url)
        .query(&[
            (
                "subscribed_fields",
                "messages,message_echoes,message_deliveries,message_reads",
            ),
            ("access_token", store_token),
            ("appsecret_proof", &proof),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "success": true })
    );
    assert_eq!(
        s.sandbox.subscribed_fields(STORE),
        Some(vec![
            "messages".to_owned(),
            "message_echoes".to_owned(),
            "message_deliveries".to_owned(),
            "message_reads".to_owned()
        ])
    );
    assert_eq!(s.sandbox.subscribed_fields(OUTLET), None);

    // A form body works too, as Graph takes POST parameters either way.
    let response = s
        .http
        .post(&url)
        .form(&[
            ("subscribed_fields", "messages"),
            ("access_token", store_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        s.sandbox.subscribed_fields(STORE),
        Some(vec!["messages".to_owned()])
    );

    let wrong_proof = s
        .http
        .post(&url)
        .query(&[
            ("subscribed_fields", "messages"),
            ("access_token", store_token),
            ("appsecret_proof", "00ff"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_proof.status(), 400);
    let body: Value = wrong_proof.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["type"], "GraphMethodException");

    let user_token_call = s
        .http
        .post(&url)
        .query(&[
            ("subscribed_fields", "messages"),
            ("access_token", &user_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(user_token_call.status(), 400);
    assert_meta_error(&user_token_call.json().await.unwrap(), 210, None);

    let unknown_field = s
        .http
        .post(&url)
        .query(&[
            ("subscribed_fields", "messages,gossip"),
            ("access_token", store_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);
    assert_meta_error(&unknown_field.json().await.unwrap(), 100, None);

    let (_, listed) = s
        .get(&format!(
            "/v23.0/{STORE}/subscribed_apps?access_token={store_token}"
        ))
        .await;
    assert_eq!(listed["data"][0]["subscribed_fields"], json!(["messages"]));

    let response = s
        .http
        .delete(&url)
        .query(&[("access_token", store_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "success": true })
    );
    assert_eq!(s.sandbox.subscribed_fields(STORE), None);
}

#[tokio::test]
async fn a_response_is_allowed_until_24_hours_after_the_customers_last_message() {
    let s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();

    s.sandbox
        .backdate_customer(STORE, &psid, Duration::hours(23) + Duration::minutes(59))
        .unwrap();
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recipient_id"], psid.as_str());
    assert!(body["message_id"].as_str().unwrap().starts_with("m_"));

    s.sandbox
        .backdate_customer(STORE, &psid, Duration::minutes(2))
        .unwrap();
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 10, Some(2_018_278));

    // UPDATE and tags other than HUMAN_AGENT do not reach past 24 hours either.
    let (status, body) = s.reply(&token, &psid, "UPDATE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 10, Some(2_018_278));
    let (status, body) = s
        .reply(&token, &psid, "MESSAGE_TAG", Some("POST_PURCHASE_UPDATE"))
        .await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 10, Some(2_018_278));

    // A new customer message reopens the window.
    s.sandbox
        .simulate_message(STORE, &psid, "hello again")
        .await
        .unwrap();
    let (status, _) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200);

    let sent = s.sandbox.sent();
    let statuses: Vec<u16> = sent.iter().map(|m| m.status).collect();
    assert_eq!(statuses, vec![200, 400, 400, 400, 200]);
    assert_eq!(sent[1].error_code, Some(10));
    assert_eq!(sent[1].error_subcode, Some(2_018_278));
    assert_eq!(sent[1].message_id, None);
    assert_eq!(sent[0].page_id, STORE);
    assert_eq!(sent[0].messaging_type, "RESPONSE");
    assert_eq!(sent[0].text, "Your order ships today.");
}

#[tokio::test]
async fn the_human_agent_tag_is_allowed_until_7_days() {
    let s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();

    s.sandbox
        .backdate_customer(STORE, &psid, Duration::days(6) + Duration::hours(23))
        .unwrap();
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 10, Some(2_018_278));
    let (status, body) = s
        .reply(&token, &psid, "MESSAGE_TAG", Some("HUMAN_AGENT"))
        .await;
    assert_eq!(status, 200, "{body}");

    s.sandbox
        .backdate_customer(STORE, &psid, Duration::hours(2))
        .unwrap();
    let (status, body) = s
        .reply(&token, &psid, "MESSAGE_TAG", Some("HUMAN_AGENT"))
        .await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 10, Some(2_018_278));

    let tagged = &s.sandbox.sent()[1];
    assert_eq!(tagged.tag.as_deref(), Some("HUMAN_AGENT"));
    assert_eq!(tagged.messaging_type, "MESSAGE_TAG");
}

#[tokio::test]
async fn a_psid_that_never_wrote_to_that_page_is_no_matching_user() {
    let s = setup().await;
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    // Same person, other Page: PSIDs are per Page.
    let outlet_token = s.sandbox.page_token(OUTLET).unwrap();
    let (status, body) = s.reply(&outlet_token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 100, Some(2_018_001));
}

#[tokio::test]
async fn bad_requests_get_invalid_parameter() {
    let s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    for body in [
        json!({ "recipient": { "id": psid }, "message": { "text": "no type" } }),
        json!({ "recipient": { "id": psid }, "messaging_type": "MESSAGE_TAG", "message": { "text": "no tag" } }),
        json!({ "messaging_type": "RESPONSE", "message": { "text": "no recipient" } }),
        json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "" } }),
        json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "x".repeat(2001) } }),
    ] {
        let (status, answer) = s.send(&token, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_meta_error(&answer, 100, None);
    }
    let (status, _) = s
        .send(&token, json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "x".repeat(2000) } }))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_send_as_form_fields_with_appsecret_proof_is_accepted() {
    // "Send API Reference": parameters may be form fields, `recipient`/`message` as JSON text.
    let s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    let proof = {
        let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let recipient = json!({ "id": psid }).to_string();
    let message = json!({ "text": "Form-sent", "metadata": "m-1" }).to_string();
    let form = [
        ("recipient", recipient.as_str()),
        ("messaging_type", "RESPONSE"),
        ("message", message.as_str()),
        ("access_token", token.as_str()),
        ("appsecret_proof", proof.as_str()),
    ];
    let response = s
        .http
        .post(format!("{}/v23.0/me/messages", s.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let record = s.sandbox.sent().pop().unwrap();
    assert_eq!(record.text, "Form-sent");
    assert_eq!(record.metadata.as_deref(), Some("m-1"));
    assert_eq!(record.recipient_id, psid);

    let mut bad = form;
    bad[4] = ("appsecret_proof", "abcd");
    let response = s
        .http
        .post(format!("{}/v23.0/me/messages", s.base))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["type"], "GraphMethodException");
}

#[tokio::test]
async fn a_revoked_page_token_gets_190_and_a_new_login_works() {
    let s = setup().await;
    let (_, pages) = s.connect().await;
    let old = pages.iter().find(|(id, _)| id == STORE).unwrap().1.clone();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();

    s.sandbox.revoke_page_token(STORE);
    let (status, body) = s.reply(&old, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 190, Some(460));
    let last = s.sandbox.sent().pop().unwrap();
    assert_eq!(last.error_code, Some(190));

    let (status, body) = s.reply("EAAnot-a-token", &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 190, None);

    let (_, pages) = s.connect().await;
    let fresh = &pages.iter().find(|(id, _)| id == STORE).unwrap().1;
    let (status, _) = s.reply(fresh, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn only_a_page_token_of_that_page_can_send() {
    let s = setup().await;
    let (user_token, _) = s.connect().await;
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();

    let (status, body) = s.reply(&user_token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 210, None);

    let outlet_token = s.sandbox.page_token(OUTLET).unwrap();
    let response = s
        .http
        .post(format!("{}/v23.0/{STORE}/messages", s.base))
        .query(&[("access_token", &outlet_token)])
        .json(&json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "x" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_meta_error(&response.json().await.unwrap(), 190, None);

    // The same call with the Store's own token, given as a bearer header.
    let store_token = s.sandbox.page_token(STORE).unwrap();
    let response = s
        .http
        .post(format!("{}/v23.0/{STORE}/messages", s.base))
        .bearer_auth(&store_token)
        .json(&json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "x" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let response = s
        .http
        .post(format!("{}/v23.0/me/messages", s.base))
        .json(&json!({ "recipient": { "id": psid } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_meta_error(&response.json().await.unwrap(), 104, None);
}

#[tokio::test]
async fn an_accepted_send_is_echoed_signed_with_its_metadata() {
    let mut s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    s.hook.next().await;

    let (status, answer) = s
        .send(
            &token,
            json!({
                "recipient": { "id": psid },
                "messaging_type": "RESPONSE",
                "message": { "text": "On its way", "metadata": "ecomdrive:reply:01J" },
            }),
        )
        .await;
    assert_eq!(status, 200);

    let echo = s.hook.next().await;
    assert_eq!(echo.signature, Some(independent_signature(&echo.raw)));
    // "message_echoes Webhook Event Reference".
    let entry = &echo.json["entry"][0];
    assert_eq!(echo.json["object"], "page");
    assert_eq!(entry["id"], STORE);
    let event = &entry["messaging"][0];
    assert_eq!(event["sender"]["id"], STORE);
    assert_eq!(event["recipient"]["id"], psid.as_str());
    assert!(event["timestamp"].is_i64());
    let message = &event["message"];
    assert_eq!(message["is_echo"], true);
    assert_eq!(message["app_id"], json!(4_242_424_242_u64));
    assert_eq!(message["metadata"], "ecomdrive:reply:01J");
    assert_eq!(message["mid"], answer["message_id"]);
    assert_eq!(message["text"], "On its way");

    let record = s.sandbox.sent().pop().unwrap();
    assert_eq!(record.metadata.as_deref(), Some("ecomdrive:reply:01J"));
    assert_eq!(
        record.message_id.as_ref(),
        answer["message_id"].as_str().map(str::to_owned).as_ref()
    );
}

#[tokio::test]
async fn a_page_unsubscribed_from_echoes_gets_none() {
    let mut s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let response = s
        .http
        .post(format!("{}/v23.0/{STORE}/subscribed_apps", s.base))
        .query(&[("subscribed_fields", "messages"), ("access_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    s.hook.next().await;
    let (status, _) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200);
    assert!(s.hook.nothing_within(StdDuration::from_millis(300)).await);
}

#[tokio::test]
async fn fail_next_send_answers_the_injected_error_once() {
    let mut s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    s.hook.next().await;

    s.sandbox.fail_next_send(400, 613, None);
    s.sandbox.fail_next_send(500, 2, None);
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 613, None);
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 500);
    assert_meta_error(&body, 2, None);
    let (status, _) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200);

    // No echo for the failed ones: the first webhook after the message is the one echo.
    let echo = s.hook.next().await;
    assert_eq!(
        echo.json["entry"][0]["messaging"][0]["message"]["is_echo"],
        true
    );
    assert!(s.hook.nothing_within(StdDuration::from_millis(200)).await);

    let codes: Vec<Option<i64>> = s.sandbox.sent().iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![Some(613), Some(2), None]);
}

#[tokio::test]
async fn a_delayed_send_is_still_processed_after_the_client_gave_up() {
    let mut s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    s.hook.next().await;

    s.sandbox
        .delay_next_send(StdDuration::from_millis(600), true);
    let impatient = reqwest::Client::builder()
        .timeout(StdDuration::from_millis(150))
        .build()
        .unwrap();
    let result = impatient
        .post(format!("{}/v23.0/me/messages", s.base))
        .query(&[("access_token", &token)])
        .json(&json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE", "message": { "text": "late" } }))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(
        s.sandbox.sent().is_empty(),
        "not processed before the delay"
    );

    let echo = s.hook.next().await;
    assert_eq!(
        echo.json["entry"][0]["messaging"][0]["message"]["text"],
        "late"
    );
    let sent = s.sandbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].accepted());

    // Dropped: answered 500 after the delay, recorded, not echoed.
    s.sandbox
        .delay_next_send(StdDuration::from_millis(100), false);
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 500);
    assert_meta_error(&body, 2, None);
    assert!(!s.sandbox.sent()[1].accepted());
    assert!(s.hook.nothing_within(StdDuration::from_millis(200)).await);
}

#[tokio::test]
async fn an_unavailable_customer_gets_551() {
    let s = setup().await;
    let token = s.sandbox.page_token(STORE).unwrap();
    let psid = s.sandbox.new_psid();
    s.sandbox
        .simulate_message(STORE, &psid, "hi")
        .await
        .unwrap();
    s.sandbox.mark_customer_unavailable(STORE, &psid).unwrap();
    let (status, body) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 551, Some(1_545_041));
}

#[tokio::test]
async fn an_attachment_is_served_at_its_payload_url() {
    let mut s = setup().await;
    let psid = s.sandbox.new_psid();
    let bytes = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let delivery = s
        .sandbox
        .simulate_attachment(STORE, &psid, "image", bytes.clone(), "image/png")
        .await
        .unwrap();
    assert_eq!(delivery.webhook_status, 200);
    let got = s.hook.next().await;
    let message = &got.json["entry"][0]["messaging"][0]["message"];
    assert_eq!(message["mid"], delivery.mid.as_str());
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["type"], "image");
    let url = attachment["payload"]["url"].as_str().unwrap();
    assert!(url.starts_with(&s.base));

    let response = s.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);

    let missing = s
        .http
        .get(format!("{}/_files/nothing-here", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let error = s
        .sandbox
        .simulate_attachment(STORE, &psid, "hologram", vec![], "x/y")
        .await
        .unwrap_err();
    assert!(matches!(error, meta_sandbox::SandboxError::InvalidInput(_)));
}

#[tokio::test]
async fn postbacks_reactions_receipts_and_standby_have_the_documented_shapes() {
    let mut s = setup().await;
    let psid = s.sandbox.new_psid();

    let postback = s
        .sandbox
        .simulate_postback(STORE, &psid, "Track order", "TRACK:123")
        .await
        .unwrap();
    let event = s.hook.next().await.json["entry"][0]["messaging"][0].clone();
    assert_eq!(event["sender"]["id"], psid.as_str());
    assert_eq!(event["postback"]["title"], "Track order");
    assert_eq!(event["postback"]["payload"], "TRACK:123");
    assert_eq!(event["postback"]["mid"], postback.mid.as_str());

    // A postback opens the window like a message does.
    let token = s.sandbox.page_token(STORE).unwrap();
    let (status, answer) = s.reply(&token, &psid, "RESPONSE", None).await;
    assert_eq!(status, 200);
    let page_mid = answer["message_id"].as_str().unwrap().to_owned();
    s.hook.next().await; // the echo

    let status = s
        .sandbox
        .simulate_reaction(STORE, &psid, &page_mid, "love", "react")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let event = s.hook.next().await.json["entry"][0]["messaging"][0].clone();
    assert_eq!(event["reaction"]["reaction"], "love");
    assert_eq!(event["reaction"]["action"], "react");
    assert_eq!(event["reaction"]["mid"], page_mid.as_str());
    assert!(event["reaction"]["emoji"].is_string());

    let watermark = s.sandbox.now().unix_timestamp() * 1000 + 1000;
    s.sandbox
        .simulate_delivery(STORE, &psid, watermark)
        .await
        .unwrap();
    let event = s.hook.next().await.json["entry"][0]["messaging"][0].clone();
    assert_eq!(event["sender"]["id"], psid.as_str());
    assert_eq!(event["recipient"]["id"], STORE);
    assert_eq!(event["delivery"]["watermark"], watermark);
    assert_eq!(event["delivery"]["mids"], json!([page_mid]));

    s.sandbox
        .simulate_read(STORE, &psid, watermark)
        .await
        .unwrap();
    let event = s.hook.next().await.json["entry"][0]["messaging"][0].clone();
    assert_eq!(event["read"]["watermark"], watermark);
    assert!(event["timestamp"].is_i64());

    let standby = s
        .sandbox
        .simulate_standby_message(STORE, &psid, "still there?")
        .await
        .unwrap();
    let body = s.hook.next().await.json;
    let entry = &body["entry"][0];
    assert!(entry.get("messaging").is_none());
    assert_eq!(entry["standby"][0]["message"]["text"], "still there?");
    assert_eq!(entry["standby"][0]["message"]["mid"], standby.mid.as_str());

    assert!(
        s.sandbox
            .simulate_reaction(STORE, &psid, &page_mid, "love", "poke")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn post_raw_signs_a_batched_delivery() {
    let mut s = setup().await;
    let body = payloads::envelope(vec![
        payloads::entry(
            STORE,
            1_700_000_000_000,
            vec![
                payloads::message_event(STORE, "111", 1_700_000_000_000, "m_1", "one"),
                payloads::message_event(STORE, "222", 1_700_000_000_001, "m_2", "two"),
            ],
        ),
        payloads::entry(
            OUTLET,
            1_700_000_000_002,
            vec![payloads::message_event(
                OUTLET,
                "333",
                1_700_000_000_002,
                "m_3",
                "three",
            )],
        ),
    ]);
    assert_eq!(s.sandbox.post_raw(&body).await.unwrap(), 200);
    let got = s.hook.next().await;
    assert_eq!(got.signature, Some(independent_signature(&got.raw)));
    assert_eq!(got.json, body);

    // And a wrongly signed one, for webhook signature tests.
    let status = s
        .sandbox
        .post_raw_with_signature(br#"{"object":"page","entry":[]}"#, Some("sha256=00"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(s.hook.next().await.signature.as_deref(), Some("sha256=00"));
}

#[tokio::test]
async fn calls_are_recorded_without_tokens() {
    let s = setup().await;
    let (user_token, _) = s.connect().await;
    let calls = s.sandbox.calls();
    let paths: Vec<(&str, &str, u16)> = calls
        .iter()
        .map(|c| (c.method.as_str(), c.path.as_str(), c.status))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("GET", "/v23.0/dialog/oauth", 302),
            ("GET", "/v23.0/oauth/access_token", 200),
            ("GET", "/v23.0/oauth/access_token", 200),
            ("GET", "/v23.0/me/accounts", 200),
        ]
    );
    let serialized = serde_json::to_string(&calls).unwrap();
    assert!(!serialized.contains(&user_token));
    assert!(!serialized.contains("EAA"));

    let (status, body) = s.get("/v23.0/nowhere/at/all").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 2500);
    assert_eq!(s.sandbox.calls().last().unwrap().status, 400);
}

#[tokio::test]
async fn local_routes_simulate_a_customer_and_list_what_was_sent() {
    let mut s = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let app = local_routes(s.sandbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let response = s
        .http
        .post(format!("{local}/_local/messenger/simulate"))
        .json(&json!({ "page_id": STORE, "psid": "5550001", "text": "Is this in stock?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mid = response.json::<Value>().await.unwrap()["mid"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = s.hook.next().await;
    assert_eq!(
        got.json["entry"][0]["messaging"][0]["message"]["mid"],
        mid.as_str()
    );

    let response = s
        .http
        .post(format!("{local}/_local/messenger/simulate"))
        .json(&json!({ "page_id": STORE, "text": "no psid" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(problem["detail"].as_str().unwrap().contains("psid"));

    let token = s.sandbox.page_token(STORE).unwrap();
    let (status, _) = s
        .send(
            &token,
            json!({ "recipient": { "id": "5550001" }, "messaging_type": "RESPONSE", "message": { "text": "Yes!", "metadata": "r1" } }),
        )
        .await;
    assert_eq!(status, 200);

    let listed: Value = s
        .http
        .get(format!("{local}/_local/meta/sent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = &listed["items"][0];
    assert_eq!(item["page_id"], STORE);
    assert_eq!(item["recipient_id"], "5550001");
    assert_eq!(item["messaging_type"], "RESPONSE");
    assert_eq!(item["tag"], Value::Null);
    assert_eq!(item["text"], "Yes!");
    assert_eq!(item["metadata"], "r1");
    assert_eq!(item["status"], 200);
    assert!(item["message_id"].as_str().unwrap().starts_with("m_"));
    assert!(
        time::OffsetDateTime::parse(
            item["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
}
