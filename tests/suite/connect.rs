//! Connecting Messenger (the OAuth callback, one merchant per Page, disconnect, tokens), the
//! members of a merchant, the merchant's own data, and what the store keeps (POLICY A1, A6, A12,
//! A14, E1, E3, E4, E6, E9, E11, E14, E15).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ecomdrive_api::oauth_state::{NONCE_COOKIE, StateClaims, nonce_hash, sign};
use ecomdrive_aws::AwsError;
use ecomdrive_aws::store::connections::{ConnectionStatus, OAuthState};
use ecomdrive_aws::{TokenContext, TokenVault};
use ecomdrive_core::ids::{ConversationId, MerchantId, MessageId, PageId, UserId};
use ecomdrive_platforms::meta::MESSENGER_WEBHOOK_FIELDS;
use ecomdrive_platforms::outbound::AllowList;
use messenger_ingest::AttachmentJob;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::support::{self, PAGE_A, PAGE_B, Tenant, TestStack, eventually, stack};

/// The state signing key of the local stack's secret (infra/local-stack/src/stack.rs).
const STATE_KEY: &[u8] = b"local-fake-state-signing-key";
const OWNER: &str = "owner@acme.example";

type Item = std::collections::HashMap<String, AttributeValue>;

// ---- helpers -------------------------------------------------------------------------------

/// A client without cookies that never follows redirects: every hop is seen and every cookie is
/// sent by hand.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// Another merchant owner's browser: its own cookie jar, follows redirects.
fn other_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

fn connect_path(t: &Tenant) -> String {
    format!(
        "/v1/merchants/{}/integrations/messenger/connect",
        t.merchant_id
    )
}

fn status_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/integrations/messenger", t.merchant_id)
}

fn page_path(t: &Tenant, page: &str) -> String {
    format!(
        "/v1/merchants/{}/integrations/messenger/pages/{page}",
        t.merchant_id
    )
}

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

fn page(id: &str) -> PageId {
    PageId::parse(id).expect("a page id")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The start of the connection as the SPA makes it: the dialog URL and the nonce the cookie holds.
struct Started {
    authorize_url: String,
    nonce: String,
}

async fn begin(s: &TestStack, t: &Tenant) -> Started {
    let res = bare_client()
        .post(s.url(&connect_path(t)))
        .bearer_auth(&t.token)
        .json(&json!({}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("connect sets the nonce cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        cookie.contains("Path=/oauth/messenger/callback"),
        "{cookie}"
    );
    let nonce = cookie
        .strip_prefix(&format!("{NONCE_COOKIE}="))
        .and_then(|rest| rest.split(';').next())
        .expect("the nonce cookie")
        .to_owned();
    assert!(!nonce.is_empty());
    let body: Value = res.json().await.expect("JSON");
    Started {
        authorize_url: body["authorize_url"]
            .as_str()
            .expect("authorize_url")
            .to_owned(),
        nonce,
    }
}

/// The merchant consents in Meta's dialog: where Meta sends the browser back (code and state).
async fn consent(authorize_url: &str) -> String {
    let res = bare_client()
        .get(authorize_url)
        .send()
        .await
        .expect("the dialog answers");
    assert_eq!(res.status(), StatusCode::FOUND);
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a redirect back")
        .to_owned()
}

struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    body: Value,
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status();
    let set_cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    Answer {
        status,
        set_cookie,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Opens the callback URL, with the nonce cookie when given.
async fn callback(url: &str, nonce: Option<&str>) -> Answer {
    let mut req = bare_client().get(url);
    if let Some(n) = nonce {
        req = req.header(COOKIE, format!("{NONCE_COOKIE}={n}"));
    }
    answer(req.send().await.expect("the callback answers")).await
}

fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with the query parameter `name` replaced (or removed with `None`).
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut parsed = Url::parse(url).expect("a URL");
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = parsed.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    parsed.to_string()
}

fn claims_of(state: &str) -> StateClaims {
    let (payload, _) = state.split_once('.').expect("payload.signature");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("state claims")
}

/// A refused callback: 400, a problem whose detail says why, and no cookie cleared for a success.
fn assert_refused(a: &Answer, why: &str) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["type"], "https://errors.ecomdrive.app/bad-request");
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(why),
        "expected a refusal saying {why:?}, got {detail:?}"
    );
}

async fn assert_not_authorized(s: &TestStack, t: &Tenant) {
    let (status, body) = s.get(&t.token, &status_path(t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authorized"], false, "{body}");
    assert!(
        s.stack
            .store
            .messenger_authorization(&merchant_id(t))
            .await
            .expect("store answers")
            .is_none()
    );
}

async fn assert_authorized(s: &TestStack, t: &Tenant) {
    let (status, body) = s.get(&t.token, &status_path(t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authorized"], true, "{body}");
}

async fn connect_page(s: &TestStack, t: &Tenant, page: &str) -> (StatusCode, Value) {
    s.call(Method::PUT, Some(&t.token), &page_path(t, page), None)
        .await
}

async fn disconnect_page(s: &TestStack, t: &Tenant, page: &str) -> (StatusCode, Value) {
    s.call(Method::DELETE, Some(&t.token), &page_path(t, page), None)
        .await
}

async fn audit_log(s: &TestStack, t: &Tenant) -> Vec<Value> {
    let (status, body) = s
        .get(&t.token, &format!("/v1/merchants/{}/audit", t.merchant_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn vault_for(s: &TestStack) -> TokenVault {
    // Built from the emulator config, not taken from the stack: as another process would.
    let sdk = support::sdk().await;
    TokenVault::new(
        aws_sdk_kms::Client::new(&sdk),
        s.stack.resources.token_key_id.clone(),
    )
}

/// Who a token belongs to, asked of the Meta sandbox (`GET /me`): a Page token answers the Page.
async fn sandbox_me(s: &TestStack, token: &str) -> Value {
    let base = s.stack.sandbox.base_url().expect("the sandbox is serving");
    reqwest::Client::new()
        .get(format!("{base}/v23.0/me"))
        .query(&[("access_token", token)])
        .send()
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON")
}

/// Every item of one partition, read raw.
async fn partition(s: &TestStack, pk: &str) -> Vec<Item> {
    s.stack
        .store
        .client()
        .query()
        .table_name(s.stack.store.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

async fn raw_item(s: &TestStack, pk: &str, sk: &str) -> Option<Item> {
    s.stack
        .store
        .client()
        .get_item()
        .table_name(s.stack.store.table())
        .key("PK", AttributeValue::S(pk.to_owned()))
        .key("SK", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
}

fn s_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn names(item: &Item) -> BTreeSet<&str> {
    item.keys().map(String::as_str).collect()
}

/// Asserts the item's attribute names are within `allowed`.
fn assert_only(item: &Item, allowed: &[&str], what: &str) {
    let extra: Vec<&str> = names(item)
        .into_iter()
        .filter(|n| !allowed.contains(n))
        .collect();
    assert!(
        extra.is_empty(),
        "{what} holds attributes outside its list: {extra:?}"
    );
}

/// Every string inside an attribute value (maps and lists included).
fn strings(v: &AttributeValue, out: &mut Vec<String>) {
    match v {
        AttributeValue::S(s) => out.push(s.clone()),
        AttributeValue::L(l) => l.iter().for_each(|x| strings(x, out)),
        AttributeValue::M(m) => m.values().for_each(|x| strings(x, out)),
        AttributeValue::Ss(ss) => out.extend(ss.iter().cloned()),
        _ => {}
    }
}

fn item_strings(item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    item.values().for_each(|v| strings(v, &mut out));
    out
}

// ---- 1. the OAuth callback -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_facebook_lists_the_pages_and_clears_the_nonce_cookie() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    assert_not_authorized(&s, &t).await;

    // The browser of the SPA: the cookie jar keeps the nonce, redirects are followed.
    let (status, body) = s.post(&t.token, &connect_path(&t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["authorize_url"].as_str().expect("authorize_url");
    assert!(param(url, "state").is_some(), "{url}");
    let a = answer(s.browser.get(url).send().await.expect("dialog answers")).await;
    assert!(a.status.is_success(), "{} {}", a.status, a.body);
    assert_eq!(a.body["status"], "authorized");
    assert_eq!(a.body["merchant_id"], t.merchant_id.as_str());
    let pages: Vec<(&str, &str)> = a.body["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    assert_eq!(pages, vec![(PAGE_A, "Demo Store"), (PAGE_B, "Demo Outlet")]);
    let cleared = a.set_cookie.expect("the nonce cookie is cleared");
    assert!(
        cleared.starts_with(&format!("{NONCE_COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    assert_authorized(&s, &t).await;
    let (status, body) = s
        .get(
            &t.token,
            &format!(
                "/v1/merchants/{}/integrations/messenger/pages",
                t.merchant_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|p| p["connected"] == false), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_forged_oauth_state_is_refused() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let other = s.merchant("other@rival.example").await;
    let started = begin(&s, &t).await;
    let back = consent(&started.authorize_url).await;
    let real = param(&back, "state").expect("state");
    let claims = claims_of(&real);
    let nonce = Some(started.nonce.as_str());

    let a = callback(&with_param(&back, "state", None), nonce).await;
    assert_refused(&a, "missing state");

    // Signed with a key that is not ours.
    let forged = sign(b"an-attackers-key", &claims);
    let a = callback(&with_param(&back, "state", Some(&forged)), nonce).await;
    assert_refused(&a, "signature does not match");

    // Our signature, but the payload changed to another merchant.
    let (_, signature) = real.split_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&StateClaims {
            mid: other.merchant_id.clone(),
            ..claims.clone()
        })
        .unwrap(),
    );
    let tampered = format!("{payload}.{signature}");
    let a = callback(&with_param(&back, "state", Some(&tampered)), nonce).await;
    assert_refused(&a, "signature does not match");

    let a = callback(&with_param(&back, "state", Some("not-a-state")), nonce).await;
    assert_refused(&a, "malformed");

    assert_not_authorized(&s, &t).await;
    assert_not_authorized(&s, &other).await;

    // The forgeries neither used up nor spoilt the real state: it still completes.
    let a = callback(&back, nonce).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_authorized(&s, &t).await;
    assert_not_authorized(&s, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_oauth_state_is_refused_and_used_up() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let m = merchant_id(&t);
    let owner = UserId::parse(&s.stack.idp.sub_for(OWNER)).unwrap();
    let started = begin(&s, &t).await;

    // The signed expiry has passed.
    let back = consent(&started.authorize_url).await;
    let claims = claims_of(&param(&back, "state").unwrap());
    let stale = sign(
        STATE_KEY,
        &StateClaims {
            exp: now() - 1,
            ..claims
        },
    );
    let a = callback(
        &with_param(&back, "state", Some(&stale)),
        Some(&started.nonce),
    )
    .await;
    assert_refused(&a, "expired");

    // The signature is still in date, but the stored state has expired (TTL not yet applied).
    let browser_nonce = "nonce-of-this-test-browser";
    let hand_made = |sid: &str, stored_expiry: i64| {
        (
            OAuthState {
                state_id: sid.to_owned(),
                integration: "messenger".into(),
                user_id: owner.clone(),
                merchant_id: m.clone(),
                nonce_hash: nonce_hash(browser_nonce),
                expires_at: stored_expiry,
            },
            sign(
                STATE_KEY,
                &StateClaims {
                    sid: sid.to_owned(),
                    mid: m.to_string(),
                    sub: owner.to_string(),
                    exp: now() + 600,
                },
            ),
        )
    };
    let (expired, signed) = hand_made("expired-state-of-this-test", now() - 5);
    s.stack.store.save_oauth_state(&expired).await.unwrap();
    let back = consent(&with_param(&started.authorize_url, "state", Some(&signed))).await;
    let a = callback(&back, Some(browser_nonce)).await;
    assert_refused(&a, "expired");
    assert!(
        s.stack
            .store
            .take_oauth_state(&expired.state_id)
            .await
            .unwrap()
            .is_none(),
        "a refused state is used up"
    );
    assert_not_authorized(&s, &t).await;

    // The same hand-made state, in date, is accepted: the refusal above was the expiry.
    let (fresh, signed) = hand_made("fresh-state-of-this-test", now() + 600);
    s.stack.store.save_oauth_state(&fresh).await.unwrap();
    let back = consent(&with_param(&started.authorize_url, "state", Some(&signed))).await;
    let a = callback(&back, Some(browser_nonce)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_authorized(&s, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_oauth_callback_is_refused() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let started = begin(&s, &t).await;
    let back = consent(&started.authorize_url).await;
    let sid = claims_of(&param(&back, "state").unwrap()).sid;

    let first = callback(&back, Some(&started.nonce)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    // The very same URL, with the very same cookie.
    let again = callback(&back, Some(&started.nonce)).await;
    assert_refused(&again, "already used");
    assert!(
        s.stack
            .store
            .take_oauth_state(&sid)
            .await
            .unwrap()
            .is_none(),
        "the state is gone after its one use"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_the_nonce_cookie_is_refused() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let (status, body) = s.post(&t.token, &connect_path(&t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["authorize_url"].as_str().unwrap();

    // Someone else's browser (no cookie jar) opens the merchant's dialog link.
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let a = answer(cookieless.get(url).send().await.unwrap()).await;
    assert_refused(&a, "nonce cookie is missing");
    assert_not_authorized(&s, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_opened_in_another_merchants_browser_is_refused_and_used_up() {
    let s = stack().await;
    let a_owner = s.merchant(OWNER).await;
    let b_owner = s.merchant("owner@rival.example").await;

    // A's owner starts in A's browser; B's owner starts in B's browser.
    let (status, body) = s
        .post(&a_owner.token, &connect_path(&a_owner), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url_a = body["authorize_url"].as_str().unwrap().to_owned();
    let b_browser = other_browser();
    let res = b_browser
        .post(s.url(&connect_path(&b_owner)))
        .bearer_auth(&b_owner.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url_b = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();

    // A's link opened in B's browser: B's cookie does not match A's state.
    let a = answer(b_browser.get(&url_a).send().await.unwrap()).await;
    assert_refused(&a, "does not belong to this browser");
    assert_not_authorized(&s, &a_owner).await;
    assert_not_authorized(&s, &b_owner).await;

    // The state was used up by that attempt: not even A's own browser can finish with it now.
    let a = answer(s.browser.get(&url_a).send().await.unwrap()).await;
    assert_refused(&a, "already used");
    assert_not_authorized(&s, &a_owner).await;

    // B's own link in B's browser works, and authorizes B only.
    let a = answer(b_browser.get(&url_b).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["merchant_id"], b_owner.merchant_id.as_str());
    assert_authorized(&s, &b_owner).await;
    assert_not_authorized(&s, &a_owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_facebook_consent_authorizes_nothing() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let (status, body) = s.post(&t.token, &connect_path(&t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["authorize_url"].as_str().unwrap().to_owned();

    s.stack.sandbox.deny_next_consent();
    let a = answer(s.browser.get(&url).send().await.unwrap()).await;
    assert_refused(&a, "access_denied");
    assert_not_authorized(&s, &t).await;

    // The declined attempt used the state up: consenting afterwards with it is refused too.
    let a = answer(s.browser.get(&url).send().await.unwrap()).await;
    assert_refused(&a, "already used");
    assert_not_authorized(&s, &t).await;
}

// ---- 2-5. Pages: one merchant each, disconnect, tokens, statuses -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e1_a_page_is_connected_to_one_merchant_at_a_time() {
    let s = stack().await;
    let a = s.connected_merchant(OWNER, PAGE_A).await;
    let b = s.merchant("owner@rival.example").await;
    s.authorize_messenger(&b).await;

    let (status, body) = connect_page(&s, &b, PAGE_A).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"],
        "https://errors.ecomdrive.app/page-held-by-another-merchant"
    );
    assert_eq!(
        s.stack.store.page_owner(&page(PAGE_A)).await.unwrap(),
        Some(merchant_id(&a))
    );
    // B may connect a Page nobody holds.
    let (status, body) = connect_page(&s, &b, PAGE_B).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = disconnect_page(&s, &a, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = connect_page(&s, &b, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(
        s.stack.store.page_owner(&page(PAGE_A)).await.unwrap(),
        Some(merchant_id(&b))
    );
    // Now A is the one refused.
    let (status, body) = connect_page(&s, &a, PAGE_A).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"],
        "https://errors.ecomdrive.app/page-held-by-another-merchant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e15_disconnect_deletes_the_token_and_unsubscribes() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    let m = merchant_id(&t);

    // Connecting subscribed the app to exactly the webhook fields the inbox needs.
    let fields: BTreeSet<String> = s
        .stack
        .sandbox
        .subscribed_fields(PAGE_A)
        .expect("subscribed on connect")
        .into_iter()
        .collect();
    let wanted: BTreeSet<String> = [
        "messages",
        "message_echoes",
        "message_deliveries",
        "message_reads",
        "messaging_postbacks",
        "message_reactions",
    ]
    .map(String::from)
    .into();
    assert_eq!(fields, wanted);
    assert_eq!(
        MESSENGER_WEBHOOK_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect::<BTreeSet<_>>(),
        wanted
    );
    let before = s
        .stack
        .store
        .page_connection(&m, &page(PAGE_A))
        .await
        .unwrap()
        .unwrap();
    assert!(before.token_ciphertext.is_some());

    let (status, body) = disconnect_page(&s, &t, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disconnected");
    assert_eq!(body["connected"], false);

    let after = s
        .stack
        .store
        .page_connection(&m, &page(PAGE_A))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, ConnectionStatus::Disconnected);
    assert_eq!(after.token_ciphertext, None);
    let raw = raw_item(&s, &format!("MERCHANT#{m}"), &format!("PAGE#{PAGE_A}"))
        .await
        .expect("the connection record stays, without its token");
    assert!(!raw.contains_key("token_ciphertext"), "{raw:?}");
    assert_eq!(s.stack.store.page_owner(&page(PAGE_A)).await.unwrap(), None);

    assert!(
        s.stack
            .sandbox
            .subscribed_fields(PAGE_A)
            .is_none_or(|f| f.is_empty()),
        "the app is still subscribed to the Page"
    );
    assert!(
        s.stack.sandbox.calls().iter().any(|c| c.method == "DELETE"
            && c.path.ends_with(&format!("/{PAGE_A}/subscribed_apps"))
            && c.status == 200),
        "no unsubscribe call reached Meta"
    );

    let owner = s.stack.idp.sub_for(OWNER);
    let log = audit_log(&s, &t).await;
    assert!(
        log.iter()
            .any(|r| r["action"] == "messenger.page.disconnect"
                && r["target"] == PAGE_A
                && r["actor"] == owner.as_str()),
        "{log:?}"
    );

    // The status shows it disconnected.
    let (_, body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(body["pages"][0]["status"], "disconnected", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e14_tokens_are_kms_encrypted_and_bound_to_their_merchant() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let other = s.merchant("owner@rival.example").await;
    let callback_body = s.authorize_messenger(&t).await;
    let (status, connect_body) = connect_page(&s, &t, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{connect_body}");
    let m = merchant_id(&t);

    let conn = s
        .stack
        .store
        .page_connection(&m, &page(PAGE_A))
        .await
        .unwrap()
        .unwrap();
    let sealed = conn.token_ciphertext.clone().expect("a sealed token");
    let vault = vault_for(&s).await;
    let right = TokenContext {
        merchant: &m,
        integration: "messenger_page",
        resource: PAGE_A,
    };
    let token = vault
        .open(&right, &sealed)
        .await
        .expect("opens in its own context");
    let token = token.expose().to_owned();
    assert!(!token.is_empty());
    assert_ne!(sealed, token);
    assert!(!sealed.contains(&token));
    // It is the Page token Meta issued for that Page.
    assert_eq!(sandbox_me(&s, &token).await["id"], PAGE_A);

    // Copied into another merchant's record, it does not decrypt.
    let other_m = merchant_id(&other);
    let copied = TokenContext {
        merchant: &other_m,
        ..right.clone()
    };
    assert!(matches!(
        vault.open(&copied, &sealed).await,
        Err(AwsError::TokenRefused)
    ));
    // Nor as another Page's token, nor as the user token.
    let other_page = TokenContext {
        resource: PAGE_B,
        ..right.clone()
    };
    assert!(matches!(
        vault.open(&other_page, &sealed).await,
        Err(AwsError::TokenRefused)
    ));

    // The user token is sealed the same way.
    let auth = s
        .stack
        .store
        .messenger_authorization(&m)
        .await
        .unwrap()
        .unwrap();
    let user_ctx = TokenContext {
        merchant: &m,
        integration: "messenger_user",
        resource: auth.authorized_by.as_str(),
    };
    let user_token = vault
        .open(&user_ctx, &auth.user_token_ciphertext)
        .await
        .expect("the user token opens")
        .expose()
        .to_owned();
    assert_eq!(sandbox_me(&s, &user_token).await["id"], "100000000000001");
    let user_elsewhere = TokenContext {
        merchant: &other_m,
        ..user_ctx.clone()
    };
    assert!(matches!(
        vault
            .open(&user_elsewhere, &auth.user_token_ciphertext)
            .await,
        Err(AwsError::TokenRefused)
    ));
    // No response carries a token or a ciphertext.
    let (_, status_body) = s.get(&t.token, &status_path(&t)).await;
    let (_, pages_body) = s
        .get(
            &t.token,
            &format!(
                "/v1/merchants/{}/integrations/messenger/pages",
                t.merchant_id
            ),
        )
        .await;
    assert_eq!(status_body["pages"][0]["id"], PAGE_A, "{status_body}");
    assert_eq!(pages_body["items"][0]["id"], PAGE_A, "{pages_body}");
    for (what, body) in [
        ("callback", &callback_body),
        ("connect", &connect_body),
        ("status", &status_body),
        ("pages", &pages_body),
    ] {
        let text = body.to_string();
        for secret in [&token, &user_token, &sealed, &auth.user_token_ciphertext] {
            assert!(!text.contains(secret.as_str()), "the {what} response leaks");
        }
        assert!(
            !text.contains("ciphertext") && !text.contains("token"),
            "{what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e4_connection_records_page_id_name_and_status() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    let m = merchant_id(&t);
    let page_status = || async {
        let (status, body) = s.get(&t.token, &status_path(&t)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let pages = body["pages"].as_array().cloned().unwrap_or_default();
        assert_eq!(pages.len(), 1, "{body}");
        pages[0].clone()
    };

    let p = page_status().await;
    assert_eq!(p["id"], PAGE_A);
    assert_eq!(p["name"], "Demo Store");
    assert_eq!(p["status"], "active");
    assert_eq!(p["connected"], true);
    let raw = raw_item(&s, &format!("MERCHANT#{m}"), &format!("PAGE#{PAGE_A}"))
        .await
        .unwrap();
    assert_eq!(s_attr(&raw, "page_id"), Some(PAGE_A));
    assert_eq!(s_attr(&raw, "name"), Some("Demo Store"));
    assert_eq!(s_attr(&raw, "status"), Some("active"));

    // Meta stops honouring the Page token; the next reply learns it (error 190).
    s.customer_writes(PAGE_A, "7101", "Hello?").await;
    let conv = s.conversation_with(&t, "7101").await;
    s.stack.sandbox.revoke_page_token(PAGE_A);
    let (status, reply) = s
        .post(
            &t.token,
            &format!(
                "/v1/merchants/{}/conversations/{}/replies",
                t.merchant_id,
                conv["id"].as_str().unwrap()
            ),
            json!({"text": "Hi!", "client_id": "e4-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let p = eventually("the Page marked token_invalid", || async {
        let p = page_status().await;
        (p["status"] == "token_invalid").then_some(p)
    })
    .await;
    assert_eq!(p["id"], PAGE_A);
    assert_eq!(p["name"], "Demo Store");
    let raw = raw_item(&s, &format!("MERCHANT#{m}"), &format!("PAGE#{PAGE_A}"))
        .await
        .unwrap();
    assert_eq!(s_attr(&raw, "status"), Some("token_invalid"));

    let (status, body) = disconnect_page(&s, &t, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = page_status().await;
    assert_eq!(p["status"], "disconnected");
    assert_eq!(p["connected"], false);
    assert_eq!(p["name"], "Demo Store");
}

// ---- 6. members ----------------------------------------------------------------------------

fn members_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/members", t.merchant_id)
}

async fn members(s: &TestStack, t: &Tenant) -> Vec<Value> {
    let (status, body) = s.get(&t.token, &members_path(t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn member<'a>(list: &'a [Value], email: &str) -> Option<&'a Value> {
    list.iter().find(|m| m["email"] == email)
}

/// Invites `email` as `role` and lets that user make their first request.
async fn join(s: &TestStack, t: &Tenant, email: &str, role: &str) -> Tenant {
    let (status, body) = s
        .post(
            &t.token,
            &members_path(t),
            json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = s.token(email);
    let (status, body) = s.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tenant {
        token,
        merchant_id: t.merchant_id.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_member_joins_on_their_first_request() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let (status, body) = s.invite(&t, "Agent@Acme.example", "agent").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["email"], "agent@acme.example");
    let list = members(&s, &t).await;
    let pending = member(&list, "agent@acme.example").expect("listed");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["role"], "agent");
    assert_eq!(pending["user_id"], Value::Null);
    assert_eq!(member(&list, OWNER).expect("owner listed")["role"], "owner");

    // The same address again: already invited.
    let (status, body) = s.invite(&t, "agent@acme.example", "admin").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The invitee signs in: their first request accepts.
    let agent = s.token("agent@acme.example");
    let (status, me) = s.get(&agent, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert!(
        me["merchants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == t.merchant_id.as_str() && x["role"] == "agent"),
        "{me}"
    );
    let list = members(&s, &t).await;
    let joined: Vec<&Value> = list
        .iter()
        .filter(|m| m["email"] == "agent@acme.example")
        .collect();
    assert_eq!(joined.len(), 1, "{list:?}");
    assert_eq!(joined[0]["status"], "active");
    assert_eq!(
        joined[0]["user_id"],
        s.stack.idp.sub_for("agent@acme.example").as_str()
    );

    // A member cannot be invited again.
    let (status, body) = s.invite(&t, "agent@acme.example", "agent").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // An existing user invited later joins on their next request too.
    let later = s.token("later@acme.example");
    assert_eq!(s.get(&later, "/v1/me").await.0, StatusCode::OK);
    let (status, _) = s.invite(&t, "later@acme.example", "admin").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(s.get(&later, "/v1/me").await.0, StatusCode::OK);
    let list = members(&s, &t).await;
    let later_m = member(&list, "later@acme.example").unwrap();
    assert_eq!(later_m["status"], "active");
    assert_eq!(later_m["role"], "admin");

    // Role change.
    let agent_id = s.stack.idp.sub_for("agent@acme.example");
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &format!("{}/{agent_id}", members_path(&t)),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    assert_eq!(
        member(&members(&s, &t).await, "agent@acme.example").unwrap()["role"],
        "admin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_owner_cannot_be_demoted_or_removed() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let owner_id = s.stack.idp.sub_for(OWNER);
    let owner_path = format!("{}/{owner_id}", members_path(&t));

    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &owner_path,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://errors.ecomdrive.app/last-owner");
    let (status, body) = s
        .call(Method::DELETE, Some(&t.token), &owner_path, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://errors.ecomdrive.app/last-owner");
    assert_eq!(
        member(&members(&s, &t).await, OWNER).unwrap()["role"],
        "owner"
    );

    // With a second owner, the first may step down: the rule is about the last one.
    let co = join(&s, &t, "co@acme.example", "owner").await;
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &owner_path,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    let co_path = format!(
        "{}/{}",
        members_path(&t),
        s.stack.idp.sub_for("co@acme.example")
    );
    let (status, body) = s
        .call(Method::DELETE, Some(&co.token), &co_path, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://errors.ecomdrive.app/last-owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_invite_or_change_members() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let agent = join(&s, &t, "agent@acme.example", "agent").await;
    let admin = join(&s, &t, "admin@acme.example", "admin").await;

    let (status, body) = s
        .post(
            &agent.token,
            &members_path(&t),
            json!({"email": "friend@acme.example", "role": "agent"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = s
        .call(
            Method::PATCH,
            Some(&agent.token),
            &format!(
                "{}/{}",
                members_path(&t),
                s.stack.idp.sub_for("agent@acme.example")
            ),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An admin manages members but cannot make owners.
    let (status, _) = s
        .post(
            &admin.token,
            &members_path(&t),
            json!({"email": "boss@acme.example", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .post(
            &admin.token,
            &members_path(&t),
            json!({"email": "friend@acme.example", "role": "agent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let list = members(&s, &t).await;
    assert!(member(&list, "friend@acme.example").is_some());
    assert!(member(&list, "boss@acme.example").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e3_merchant_and_user_records_hold_only_what_the_policy_lists() {
    let s = stack().await;
    let token = s.token(OWNER);
    let (status, body) = s
        .post(
            &token,
            "/v1/merchants",
            json!({"name": "Acme Traders", "phone": "+91 98765 43210", "gstin": "27AAPFU0939F1ZV"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let t = Tenant {
        token,
        merchant_id: body["id"].as_str().unwrap().to_owned(),
    };
    join(&s, &t, "agent@acme.example", "agent").await;
    let (status, _) = s.invite(&t, "pending@acme.example", "admin").await;
    assert_eq!(status, StatusCode::CREATED);

    // Bookkeeping every record has: keys, kind, ids, times.
    const MERCHANT: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "id",
        "created_by",
        "created_at", // bookkeeping
        "name",
        "phone",
        "gstin",     // E3 + A1
        "closed_at", // A20: when the owner closed the account, if they did
    ];
    const MEMBERSHIP: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "merchant_id",
        "user_id",
        "created_at",
        "status", // bookkeeping
        "email",
        "role",
    ];
    const USER: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "id",
        "created_at",
        "pending_invites", // bookkeeping
        "email",
    ];

    let items = partition(&s, &format!("MERCHANT#{}", t.merchant_id)).await;
    let mut kinds = BTreeMap::<String, usize>::new();
    for item in &items {
        let kind = s_attr(item, "kind").unwrap_or_default();
        *kinds.entry(kind.to_owned()).or_default() += 1;
        match kind {
            "merchant" => {
                assert_only(item, MERCHANT, "the merchant record");
                assert_eq!(s_attr(item, "name"), Some("Acme Traders"));
                assert_eq!(s_attr(item, "phone"), Some("+919876543210"));
                assert_eq!(s_attr(item, "gstin"), Some("27AAPFU0939F1ZV"));
            }
            "membership" | "invitation" => {
                assert_only(item, MEMBERSHIP, "a membership record");
                assert!(s_attr(item, "email").is_some_and(|e| e.ends_with("@acme.example")));
                assert!(s_attr(item, "role").is_some());
            }
            _ => {}
        }
    }
    assert_eq!(kinds.get("merchant"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("membership"), Some(&2), "{kinds:?}");
    assert_eq!(kinds.get("invitation"), Some(&1), "{kinds:?}");

    for email in [OWNER, "agent@acme.example"] {
        let user = raw_item(
            &s,
            &format!("USER#{}", s.stack.idp.sub_for(email)),
            "PROFILE",
        )
        .await
        .expect("the user record");
        assert_only(&user, USER, "a user record");
        assert_eq!(s_attr(&user, "email"), Some(email));
    }
}

// ---- 7. merchant data ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a1_gstin_and_phone_are_validated() {
    let s = stack().await;
    let token = s.token(OWNER);
    let field_errors = |body: &Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|x| x["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    for bad in [
        "27AAPFU0939F1ZW",
        "27AAPFU0939F1Z",
        "00AAPFU0939F1ZV",
        "not a gstin",
    ] {
        let (status, body) = s
            .post(
                &token,
                "/v1/merchants",
                json!({"name": "Acme Traders", "gstin": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(
            body["type"],
            "https://errors.ecomdrive.app/validation-failed"
        );
        assert_eq!(field_errors(&body), vec!["gstin"], "{body}");
    }
    let (_, me) = s.get(&token, "/v1/me").await;
    assert_eq!(me["merchants"], json!([]), "a refused merchant was created");

    let (status, body) = s
        .post(
            &token,
            "/v1/merchants",
            json!({"name": "Acme Traders", "gstin": "27aapfu0939f1zv"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["gstin"], "27AAPFU0939F1ZV");
    let path = format!("/v1/merchants/{}", body["id"].as_str().unwrap());

    for bad in ["12345", "+91 98x65 43210", "9876543210"] {
        let (status, body) = s
            .call(
                Method::PATCH,
                Some(&token),
                &path,
                Some(json!({"phone": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(field_errors(&body), vec!["phone"], "{body}");
    }
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&token),
            &path,
            Some(json!({"phone": "+91 98765-43210", "gstin": "27AAPFU0939F1ZW"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_errors(&body), vec!["gstin"], "{body}");
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&token),
            &path,
            Some(json!({"phone": "+91 98765-43210"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phone"], "+919876543210");
    assert_eq!(body["gstin"], "27AAPFU0939F1ZV");
    let (_, body) = s.get(&token, &path).await;
    assert_eq!(body["phone"], "+919876543210");
}

// ---- 8. orders -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e9_orders_link_to_conversations_and_customers() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    s.customer_writes(PAGE_A, "7201", "My order is late").await;
    let conv = s.conversation_with(&t, "7201").await;
    let cid = conv["id"].as_str().unwrap();
    let customer = conv["customer"]["id"].as_str().unwrap();
    let orders = format!("/v1/merchants/{}/conversations/{cid}/orders", t.merchant_id);
    let customer_path = format!("/v1/merchants/{}/customers/{customer}", t.merchant_id);

    for bad in ["402 1234567", "'; DROP TABLE", "", &"9".repeat(65)] {
        let (status, body) = s.post(&t.token, &orders, json!({"order_ref": bad})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(body["errors"][0]["field"], "order_ref", "{body}");
    }

    let (status, body) = s
        .post(
            &t.token,
            &orders,
            json!({"order_ref": "402-1234567-1234567"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!(["402-1234567-1234567"]));
    // Linking it again changes nothing.
    let (status, _) = s
        .post(
            &t.token,
            &orders,
            json!({"order_ref": "402-1234567-1234567"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = s
        .get(
            &t.token,
            &format!("/v1/merchants/{}/conversations/{cid}", t.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!(["402-1234567-1234567"]));
    let (status, body) = s.get(&t.token, &customer_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!(["402-1234567-1234567"]));
    assert_eq!(body["current_conversation_id"], cid);
    assert_eq!(body["psid"], "7201");
}

// ---- 9-10. scoping and the audit log -------------------------------------------------------

/// Everything a merchant does in a day: returns the merchant, its agent and the ids involved.
struct Day {
    owner: Tenant,
    agent: Tenant,
    conversation: String,
    customer: String,
    reply: String,
}

async fn a_day_of_work(s: &TestStack) -> Day {
    let owner = s.merchant(OWNER).await;
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&owner.token),
            &format!("/v1/merchants/{}", owner.merchant_id),
            Some(json!({"phone": "+919876543210"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let agent = join(s, &owner, "agent@acme.example", "agent").await;
    let (status, _) = s.invite(&owner, "pending@acme.example", "admin").await;
    assert_eq!(status, StatusCode::CREATED);
    s.authorize_messenger(&owner).await;
    let (status, body) = connect_page(s, &owner, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    s.customer_writes(PAGE_A, "7301", "Is this in stock?").await;
    let conv = s.conversation_with(&owner, "7301").await;
    let cid = conv["id"].as_str().unwrap().to_owned();
    let customer = conv["customer"]["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/merchants/{}", owner.merchant_id);

    let (status, reply) = s
        .post(
            &owner.token,
            &format!("{base}/conversations/{cid}/replies"),
            json!({"text": "Yes, it is", "client_id": "day-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    eventually("the reply at Meta", || async {
        s.stack
            .sandbox
            .sent()
            .into_iter()
            .find(|m| m.text == "Yes, it is" && m.status == 200)
    })
    .await;
    let agent_id = s.stack.idp.sub_for("agent@acme.example");
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&agent.token),
            &format!("{base}/conversations/{cid}"),
            Some(json!({"status": "pending", "assignee": agent_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(
            &owner.token,
            &format!("{base}/conversations/{cid}/orders"),
            json!({"order_ref": "402-1234567-1234567"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&owner.token),
            &format!("{base}/customers/{customer}"),
            Some(json!({"name": "Priya", "notes": "prefers mornings"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = disconnect_page(s, &owner, PAGE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Day {
        owner,
        agent,
        conversation: cid,
        customer,
        reply: reply["id"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e6_operational_records_are_scoped_to_the_merchant() {
    let s = stack().await;
    let day = a_day_of_work(&s).await;
    let rival = s.connected_merchant("owner@rival.example", PAGE_B).await;
    s.customer_writes(PAGE_B, "7302", "Hello rival").await;
    s.conversation_with(&rival, "7302").await;

    let merchants = [day.owner.merchant_id.clone(), rival.merchant_id.clone()];
    // Index items (keys.rs): lookups that cannot start from a merchant, ids only.
    const INDEX_FIELDS: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "merchant_id",
        "user_id",
        "role",
        "expires_at",
    ];
    const USER_FIELDS: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "id",
        "email",
        "created_at",
        "pending_invites",
    ];
    let mut kinds = BTreeMap::<String, BTreeSet<String>>::new();
    for item in support::scan_table(s.stack.store.table()).await {
        let pk = s_attr(&item, "PK").unwrap_or_default().to_owned();
        let sk = s_attr(&item, "SK").unwrap_or_default().to_owned();
        let kind = s_attr(&item, "kind").unwrap_or_default().to_owned();
        if let Some(m) = merchants.iter().find(|m| pk == format!("MERCHANT#{m}")) {
            // Whatever names a merchant inside names this one.
            if let Some(owner) = s_attr(&item, "merchant_id") {
                assert_eq!(owner, m, "{pk} {sk} holds another merchant's id");
            }
            kinds.entry("merchant".into()).or_default().insert(kind);
            continue;
        }
        let index = (pk.starts_with("USER#") && sk.starts_with("MEMBER_OF#"))
            || (pk.starts_with("EMAIL#") && sk == "USER")
            || (pk.starts_with("INVITE#") && sk.starts_with("MERCHANT#"))
            || (pk.starts_with("PAGE#") && sk == "OWNER")
            || (pk.starts_with("OAUTH#") && sk == "STATE")
            || (pk.starts_with("FBUSER#") && sk.starts_with("MERCHANT#"))
            || (pk == "MERCHANTS" && sk.starts_with("MERCHANT#"));
        if index {
            if kind != "oauth_state" {
                assert_only(&item, INDEX_FIELDS, &format!("index item {pk}/{sk}"));
            }
            kinds.entry("index".into()).or_default().insert(kind);
        } else if pk.starts_with("USER#") && sk == "PROFILE" {
            assert_only(&item, USER_FIELDS, "a user record");
            kinds.entry("user".into()).or_default().insert(kind);
        } else {
            panic!("item {pk}/{sk} ({kind}) is outside every merchant's partition");
        }
    }
    let scoped = &kinds["merchant"];
    for kind in [
        "merchant",
        "membership",
        "invitation",
        "messenger_authorization",
        "page_connection",
        "customer",
        "conversation",
        "message",
        "mid_marker",
        "reply_key",
        "audit",
    ] {
        assert!(
            scoped.contains(kind),
            "no {kind} record in a merchant partition: {kinds:?}"
        );
    }
    assert!(kinds["index"].contains("membership_index"), "{kinds:?}");
    assert!(kinds["index"].contains("facebook_user_index"), "{kinds:?}");
    assert!(kinds["index"].contains("merchant_index"), "{kinds:?}");
    assert!(kinds["index"].contains("invitation_index"), "{kinds:?}");
    assert!(kinds["index"].contains("page_owner_index"), "{kinds:?}");

    // And through the API, the rival sees none of it.
    let (status, _) = s
        .get(
            &rival.token,
            &format!(
                "/v1/merchants/{}/conversations/{}",
                day.owner.merchant_id, day.conversation
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .get(
            &rival.token,
            &format!(
                "/v1/merchants/{}/customers/{}",
                rival.merchant_id, day.customer
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a14_state_changing_actions_are_audited() {
    let s = stack().await;
    let day = a_day_of_work(&s).await;
    let owner = s.stack.idp.sub_for(OWNER);
    let agent = s.stack.idp.sub_for("agent@acme.example");
    let log = audit_log(&s, &day.owner).await;

    let expected: &[(&str, &str, Option<&str>)] = &[
        ("merchant.create", &owner, None),
        ("merchant.update", &owner, None),
        ("member.invite", &owner, Some("agent")),
        ("member.invite", &owner, Some("admin")),
        ("messenger.connect.start", &owner, None),
        ("messenger.authorize", &owner, None),
        ("messenger.page.connect", &owner, Some(PAGE_A)),
        ("reply.create", &owner, Some(day.reply.as_str())),
        (
            "conversation.update",
            &agent,
            Some(day.conversation.as_str()),
        ),
        (
            "conversation.link_order",
            &owner,
            Some(day.conversation.as_str()),
        ),
        ("customer.update", &owner, Some(day.customer.as_str())),
        ("messenger.page.disconnect", &owner, Some(PAGE_A)),
    ];
    for (action, actor, target) in expected {
        assert!(
            log.iter().any(|r| r["action"] == *action
                && r["actor"] == *actor
                && r["merchant_id"] == day.owner.merchant_id.as_str()
                && r["at"].is_string()
                && target.is_none_or(|x| r["target"] == x)),
            "no audit record of {action} by {actor}: {log:#?}"
        );
    }
    // Reading changes nothing and records nothing.
    let before = log.len();
    s.get(
        &day.owner.token,
        &format!("/v1/merchants/{}", day.owner.merchant_id),
    )
    .await;
    assert_eq!(audit_log(&s, &day.owner).await.len(), before);
    // The audit log is for those who manage the merchant.
    let (status, _) = s
        .get(
            &day.agent.token,
            &format!("/v1/merchants/{}/audit", day.owner.merchant_id),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ---- 11. outbound HTTP ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e11_outbound_http_refuses_hosts_off_the_allow_list() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;

    // A real attachment on the sandbox's (loopback) CDN is copied: the path works.
    let d = s
        .stack
        .sandbox
        .simulate_attachment(
            PAGE_A,
            "7401",
            "image",
            b"\x89PNG fake".to_vec(),
            "image/png",
        )
        .await
        .unwrap();
    assert_eq!(d.webhook_status, 200);
    let conv = s.conversation_with(&t, "7401").await;
    let cid = conv["id"].as_str().unwrap().to_owned();
    let msg = eventually("the attachment stored", || async {
        s.messages(&t, &cid)
            .await
            .into_iter()
            .find(|m| m["attachments"][0]["state"] == "stored")
    })
    .await;
    let objects = ecomdrive_aws::s3_client(&support::sdk().await)
        .list_objects_v2()
        .bucket(&s.stack.resources.bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        objects.contents().len(),
        1,
        "the copied file is in the bucket"
    );

    // A listener on an address the allow-list does not name: it must never see a connection.
    let trap = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let trap_port = trap.local_addr().unwrap().port();

    let job = |url: String| AttachmentJob {
        merchant_id: merchant_id(&t),
        conversation_id: ConversationId::parse(&cid).unwrap(),
        message_id: MessageId::parse(msg["id"].as_str().unwrap()).unwrap(),
        index: 0,
        kind: "image".into(),
        url,
    };
    for url in [
        "https://example.com/x.jpg".to_owned(),
        format!("http://127.0.0.2:{trap_port}/x.jpg"),
        "https://graph.facebook.com.example.com/x.jpg".to_owned(),
        "http://scontent.xx.fbcdn.net/x.jpg".to_owned(),
    ] {
        // Through the stack's own OutboundHttp, as ingest does.
        assert!(s.stack.ingest.http.check(&url).is_err(), "{url} allowed");
        s.stack
            .ingest
            .copy_attachment(&job(url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let m = s
            .messages(&t, &cid)
            .await
            .into_iter()
            .find(|m| m["id"] == msg["id"])
            .unwrap();
        assert_eq!(m["attachments"][0]["state"], "unavailable", "{url}");
    }
    // A connection made meanwhile would be waiting in the listener's backlog.
    let caught = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await;
    assert!(
        caught.is_err(),
        "a request reached a host off the allow-list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a12_data_is_shared_only_with_the_listed_processors() {
    let production = AllowList::production();
    for url in [
        "https://graph.facebook.com/v23.0/me/messages",
        "https://www.facebook.com/v23.0/dialog/oauth",
        "https://scontent.xx.fbcdn.net/v/t1/x.jpg",
        "https://cdn.fbsbx.com/v/t59/x.pdf",
        "https://sellingpartnerapi-eu.amazon.com/orders/v0/orders",
        "https://sellingpartnerapi-na.amazon.com/orders/v0/orders",
        "https://sellingpartnerapi-fe.amazon.com/orders/v0/orders",
        "https://api.amazon.com/auth/o2/token",
        "https://cognito-idp.ap-south-1.amazonaws.com/pool/.well-known/jwks.json",
    ] {
        assert!(production.check(url).is_ok(), "{url} refused");
    }
    for url in [
        "https://example.com/x.jpg",
        "https://www.google-analytics.com/collect",
        "https://connect.facebook.net/en_US/fbevents.js",
        "https://graph.facebook.com.evil.example/",
        "https://graph.facebook.com@evil.example/",
        "https://fbcdn.net/x.jpg",
        "http://graph.facebook.com/v23.0/me",
        "https://graph.facebook.com:8443/v23.0/me",
        "https://cognito-idp.us-east-1.amazonaws.com/pool",
        "http://127.0.0.1:9000/",
        "https://93.184.216.34/",
        "ftp://graph.facebook.com/",
    ] {
        assert!(production.check(url).is_err(), "{url} allowed");
    }
}

// ---- 12. data minimisation -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a6_only_what_features_need_is_stored() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    let text = "Do you deliver to Pune?";
    let mid = s.customer_writes(PAGE_A, "7501", text).await;
    let conv = s.conversation_with(&t, "7501").await;
    let cid = conv["id"].as_str().unwrap();

    // The message as the inbox shows it, plus its keys and what idempotence and sending need.
    const MESSAGE: &[&str] = &[
        "PK",
        "SK",
        "kind",
        "id",
        "merchant_id",
        "conversation_id",
        "mid",
        "attempts",
        "attempt_started_at", // bookkeeping
        "direction",
        "text",
        "attachments",
        "status",
        "author",
        "postback_payload",
        "reaction",
        "error",
        "created_at", // shown
    ];
    let messages: Vec<Item> = partition(&s, &format!("MERCHANT#{}", t.merchant_id))
        .await
        .into_iter()
        .filter(|i| s_attr(i, "SK").is_some_and(|sk| sk.starts_with(&format!("MSG#{cid}#"))))
        .collect();
    assert_eq!(messages.len(), 1);
    let item = &messages[0];
    assert_only(item, MESSAGE, "the inbound message");
    assert_eq!(s_attr(item, "text"), Some(text));
    assert_eq!(s_attr(item, "mid"), Some(mid.as_str()));

    // No item anywhere holds the webhook payload (or a piece of its JSON).
    let all = support::scan_table(s.stack.store.table()).await;
    assert!(
        all.iter()
            .any(|i| item_strings(i).iter().any(|v| v == text)),
        "the scan sees the stored text"
    );
    for i in &all {
        for v in item_strings(i) {
            for marker in [
                "\"entry\"",
                "\"messaging\"",
                "\"recipient\"",
                "\"sender\"",
                "\"object\"",
            ] {
                assert!(
                    !v.contains(marker),
                    "a stored value holds webhook JSON: {v}"
                );
            }
        }
    }
    // Nor the bucket: a text message leaves no object there (an attachment does, see E11).
    let objects = ecomdrive_aws::s3_client(&support::sdk().await)
        .list_objects_v2()
        .bucket(&s.stack.resources.bucket)
        .send()
        .await
        .unwrap();
    assert!(objects.contents().is_empty(), "{:?}", objects.contents());
}

/// The Facebook user token of whoever connected Facebook is kept only to pick Pages: it expires
/// with its authorization (an hour), and it goes as soon as that person leaves the merchant, so
/// the remaining admins cannot connect Pages with a former member's Facebook account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_members_facebook_authorization_cannot_connect_pages() {
    let s = stack().await;
    let (owner, raw) = authorized_by_an_admin(&s, "leaver.example").await;
    // The authorization lives an hour at most (DynamoDB TTL), not for the token's 60 days.
    let ttl = raw.expires_at - now();
    assert!((3000..=3600).contains(&ttl), "expires in {ttl} s");

    // While the admin is a member, the owner can connect a Page with that authorization...
    let (status, body) = s
        .call(
            Method::PUT,
            Some(&owner.token),
            &page_path(&owner, PAGE_A),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // ...once the admin is gone, the authorization (and its token) is gone too.
    let admin_id = raw.authorized_by.to_string();
    let (status, _) = s
        .call(
            Method::DELETE,
            Some(&owner.token),
            &format!("/v1/merchants/{}/members/{admin_id}", owner.merchant_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        s.stack
            .store
            .messenger_authorization(&merchant_id(&owner))
            .await
            .unwrap()
            .is_none()
    );
    let (status, body) = s
        .call(
            Method::PUT,
            Some(&owner.token),
            &page_path(&owner, PAGE_B),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/messenger-not-authorized"),
        "{body}"
    );
}

/// An authorizer demoted to agent no longer lends their Facebook account to the merchant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_who_lost_the_right_to_connect_pages_lends_no_token() {
    let s = stack().await;
    let (owner, auth) = authorized_by_an_admin(&s, "demoted.example").await;
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&owner.token),
            &format!(
                "/v1/merchants/{}/members/{}",
                owner.merchant_id, auth.authorized_by
            ),
            Some(json!({"role": "agent"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .call(
            Method::PUT,
            Some(&owner.token),
            &page_path(&owner, PAGE_A),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        s.stack
            .sandbox
            .subscribed_fields(PAGE_A)
            .is_none_or(|f| f.is_empty()),
        "nothing was subscribed"
    );
}

/// Two owners demoting each other at the same moment cannot leave the merchant without one: the
/// write that takes an owner away checks, in the same transaction, that another is still one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_stepping_down_at_once_leave_one_owner() {
    let s = stack().await;
    for round in 0..3 {
        let a = s.merchant(&format!("owner-a{round}@race.example")).await;
        let b_email = format!("owner-b{round}@race.example");
        let members = format!("/v1/merchants/{}/members", a.merchant_id);
        let (status, _) = s
            .post(
                &a.token,
                &members,
                json!({"email": b_email, "role": "owner"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let b_token = s.token(&b_email);
        let (_, list) = s.get(&b_token, &members).await; // B's first request: B becomes an owner
        let ids: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().expect("active").to_owned())
            .collect();
        assert_eq!(ids.len(), 2);
        let (a_id, b_id) = {
            let a_user = s.stack.idp.sub_for(&format!("owner-a{round}@race.example"));
            if ids[0] == a_user {
                (ids[0].clone(), ids[1].clone())
            } else {
                (ids[1].clone(), ids[0].clone())
            }
        };
        let demote = |token: String, target: String| {
            let path = format!("{members}/{target}");
            let s = &s;
            async move {
                s.call(
                    Method::PATCH,
                    Some(&token),
                    &path,
                    Some(json!({"role": "admin"})),
                )
                .await
            }
        };
        let (ra, rb) = tokio::join!(demote(a.token.clone(), b_id), demote(b_token.clone(), a_id));
        let ok = [&ra, &rb]
            .iter()
            .filter(|(st, _)| *st == StatusCode::OK)
            .count();
        assert!(ok <= 1, "round {round}: both succeeded: {ra:?} {rb:?}");
        let (_, after) = s.get(&a.token, &members).await;
        let owners = after["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "owner")
            .count();
        assert_eq!(owners, 1 + (1 - ok), "round {round}: {after}");
    }
}

/// The e-mail a token proves is the one invitations match: when a user's address changes at the
/// identity provider, invitations to the old address no longer reach them (they reach whoever
/// holds that address now), and invitations to the new one do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_follow_the_address_the_token_proves() {
    let s = stack().await;
    let idp = &s.stack.idp;
    let u = "7d1f2c3a-0000-4000-8000-00000000c0de";
    let (_, me) = s.get(&idp.mint(u, "old@moved.example"), "/v1/me").await;
    assert_eq!(me["email"], "old@moved.example");
    let moved = idp.mint(u, "new@moved.example");
    let (_, me) = s.get(&moved, "/v1/me").await;
    assert_eq!(me["email"], "new@moved.example");

    let owner = s.merchant("owner@inviter.example").await;
    let members = format!("/v1/merchants/{}/members", owner.merchant_id);
    for email in ["old@moved.example", "new@moved.example"] {
        let (status, _) = s
            .post(
                &owner.token,
                &members,
                json!({"email": email, "role": "agent"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // The moved user joins through the new address only...
    let (_, mine) = s.get(&moved, "/v1/merchants").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    let (_, list) = s.get(&owner.token, &members).await;
    let by_email = |e: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == e)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_email("new@moved.example")["user_id"], u);
    assert_eq!(by_email("old@moved.example")["status"], "pending");
    // ...and whoever holds the old address now gets the other invitation.
    let newcomer = idp.mint("7d1f2c3a-0000-4000-8000-0000000000ff", "old@moved.example");
    let (_, theirs) = s.get(&newcomer, "/v1/merchants").await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1, "{theirs}");
    let (_, list) = s.get(&owner.token, &members).await;
    let old = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "old@moved.example")
        .cloned()
        .unwrap();
    assert_eq!(old["user_id"], "7d1f2c3a-0000-4000-8000-0000000000ff");
}

/// A merchant whose admin (not the owner) connected Facebook; returns the owner and the stored
/// authorization.
async fn authorized_by_an_admin(
    s: &TestStack,
    domain: &str,
) -> (
    Tenant,
    ecomdrive_aws::store::connections::MessengerAuthorization,
) {
    let owner = s.merchant(&format!("owner@{domain}")).await;
    let admin_email = format!("admin@{domain}");
    let (status, body) = s.invite(&owner, &admin_email, "admin").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let admin = Tenant {
        token: s.token(&admin_email),
        merchant_id: owner.merchant_id.clone(),
    };
    s.authorize_messenger(&admin).await;
    let auth = s
        .stack
        .store
        .messenger_authorization(&merchant_id(&owner))
        .await
        .unwrap()
        .expect("authorized");
    (owner, auth)
}
