//! Connecting a merchant's Amazon seller account (SP-API website authorization) and syncing its
//! orders, end to end against the local stack and the Amazon sandbox (POLICY A2, A10, A11, E9).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration as StdDuration;

use amazon_sandbox::{Fault, Operation};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ecomdrive_api::oauth_state::{NONCE_COOKIE, StateClaims, nonce_hash, sign};
use ecomdrive_aws::store::connections::OAuthState;
use ecomdrive_aws::{AwsError, TokenContext, TokenVault};
use ecomdrive_core::amazon::jobs::MerchantJob;
use ecomdrive_core::amazon::order::OrderStatus;
use ecomdrive_core::amazon::{AmazonOrderId, SellingPartnerId};
use ecomdrive_core::ids::{AmazonConnectionId, MerchantId, UserId};
use ecomdrive_local::stack::{LOCAL_AMAZON_APP_ID, LOCAL_LWA_CLIENT_ID, LOCAL_LWA_CLIENT_SECRET};
use order_sync::{BACKFILL, OVERLAP, SyncError, SyncOutcome};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::support::{
    self, PAGE_A, Tenant, TestStack, eventually, eventually_within, queue_depth, stack,
};

const OWNER: &str = "owner@acme.example";
const RIVAL: &str = "owner@rival.example";
/// The state signing key of the local stack's secret (infra/local-stack/src/stack.rs).
const STATE_KEY: &[u8] = b"local-fake-state-signing-key";
const CALLBACK_PATH: &str = "/oauth/amazon/callback";
/// Amazon.in.
const INDIA: &str = amazon_sandbox::INDIA_MARKETPLACE;
const ORDERS_PATH: &str = "/orders/v0/orders";
const LWA_PATH: &str = "/auth/o2/token";
const PROBLEM_BASE: &str = "https://errors.ecomdrive.app/";

type Item = HashMap<String, AttributeValue>;

// ---- helpers -------------------------------------------------------------------------------

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

fn connect_path(t: &Tenant) -> String {
    format!(
        "/v1/merchants/{}/integrations/amazon/connect",
        t.merchant_id
    )
}

fn status_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/integrations/amazon", t.merchant_id)
}

fn orders_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/orders", t.merchant_id)
}

fn order_path(t: &Tenant, order_id: &str) -> String {
    format!("/v1/merchants/{}/orders/{order_id}", t.merchant_id)
}

/// The sandbox's demo seller, the one its consent page picks.
fn demo_seller(s: &TestStack) -> String {
    let demo = amazon_sandbox::DEMO_SELLER_ID;
    assert_eq!(s.stack.amazon.config().sellers[0].selling_partner_id, demo);
    demo.to_owned()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whole seconds, as Amazon writes dates.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("0 ns is valid")
}

fn rfc3339(raw: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(raw.as_str().expect("a date string"), &Rfc3339)
        .unwrap_or_else(|e| panic!("{raw} is not RFC 3339: {e}"))
}

/// A client without cookies that never follows redirects: every hop is seen and every cookie is
/// sent by hand.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(StdDuration::from_secs(30))
        .build()
        .expect("client builds")
}

/// Another person's browser: its own cookie jar, follows redirects.
fn other_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(StdDuration::from_secs(30))
        .build()
        .expect("client builds")
}

/// The start of a connection as the SPA makes it: the consent URL and the nonce of the cookie.
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
    for part in ["HttpOnly", "SameSite=Lax", "Path=/oauth/amazon/callback"] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
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

/// The seller consents on the sandbox's Seller Central page: where Amazon sends the browser back.
async fn consent(authorize_url: &str) -> String {
    let res = bare_client()
        .get(authorize_url)
        .send()
        .await
        .expect("the consent page answers");
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
    text: String,
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
        text,
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

/// A refused callback: 400 problem whose detail says why.
fn assert_refused(a: &Answer, why: &str) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["type"], format!("{PROBLEM_BASE}bad-request"));
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(why),
        "expected a refusal saying {why:?}, got {detail:?}"
    );
}

/// Not connected, by the API and in the store.
async fn assert_not_connected(s: &TestStack, t: &Tenant) {
    let (status, body) = s.get(&t.token, &status_path(t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"connected": false}));
    assert!(
        s.stack
            .store
            .amazon_connection(&merchant_id(t))
            .await
            .expect("store answers")
            .is_none(),
        "a connection is stored"
    );
}

async fn connection_id(s: &TestStack, t: &Tenant) -> AmazonConnectionId {
    s.stack
        .store
        .amazon_connection(&merchant_id(t))
        .await
        .expect("store answers")
        .expect("a connection")
        .connection_id
}

/// The queue message the schedule (or the callback) would send for the merchant's connection.
async fn job_of(s: &TestStack, t: &Tenant) -> MerchantJob {
    MerchantJob {
        merchant_id: merchant_id(t),
        connection_id: connection_id(s, t).await,
    }
}

/// Runs one merchant's sync now, as the queue function does.
async fn run_sync(s: &TestStack, job: &MerchantJob) -> Result<SyncOutcome, SyncError> {
    s.stack.order_sync.sync(job, now()).await
}

/// [`run_sync`] for a sync that must not fail.
async fn sync_outcome(s: &TestStack, job: &MerchantJob) -> SyncOutcome {
    run_sync(s, job)
        .await
        .unwrap_or_else(|e| panic!("the sync failed: {e}"))
}

/// A sync that read Amazon and wrote what it got.
#[track_caller]
fn assert_synced(outcome: &Result<SyncOutcome, SyncError>) {
    assert!(
        matches!(outcome, Ok(SyncOutcome::Synced { .. })),
        "{outcome:?}"
    );
}

/// `POST /_local/run/order-sync`: the hourly schedule's fan-out, now. How many merchants it queued.
async fn fan_out(s: &TestStack) -> u64 {
    let (status, body) = s
        .call(Method::POST, None, "/_local/run/order-sync", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["merchants"].as_u64().expect("a count")
}

/// One request the Amazon sandbox received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    status: u16,
}

fn seen(s: &TestStack) -> Vec<Seen> {
    s.stack
        .amazon
        .requests()
        .into_iter()
        .map(|r| Seen {
            method: r.method,
            path: r.path,
            query: r.query,
            status: r.status,
        })
        .collect()
}

/// The getOrders calls received, oldest first.
fn get_orders_calls(s: &TestStack) -> Vec<Seen> {
    seen(s)
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == ORDERS_PATH)
        .collect()
}

/// Requests that read seller data or mint tokens: SP-API and LWA.
fn amazon_reads(s: &TestStack) -> Vec<Seen> {
    seen(s)
        .into_iter()
        .filter(|r| {
            r.path == LWA_PATH
                || r.path.starts_with("/orders/")
                || r.path.starts_with("/solicitations/")
        })
        .collect()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    param(&format!("http://sandbox.invalid/?{query}"), name)
}

/// The `LastUpdatedAfter` a getOrders call asked for.
fn last_updated_after(call: &Seen) -> OffsetDateTime {
    let raw = query_param(&call.query, "LastUpdatedAfter")
        .unwrap_or_else(|| panic!("no LastUpdatedAfter in {}", call.query));
    OffsetDateTime::parse(&raw, &Rfc3339).expect("an ISO 8601 date")
}

/// Posts a grant to the sandbox's LWA token endpoint, as the app would (its fake credentials).
async fn lwa_grant(s: &TestStack, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut fields = vec![
        ("client_id", LOCAL_LWA_CLIENT_ID),
        ("client_secret", LOCAL_LWA_CLIENT_SECRET),
    ];
    fields.extend_from_slice(form);
    let res = reqwest::Client::new()
        .post(&s.stack.order_sync.amazon.endpoints.lwa_token_url)
        .form(&fields)
        .send()
        .await
        .expect("LWA answers");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn vault_for(s: &TestStack) -> TokenVault {
    // Built from the emulator config, not taken from the stack: as another process would.
    let sdk = support::sdk().await;
    TokenVault::new(
        aws_sdk_kms::Client::new(&sdk),
        s.stack.resources.token_key_id.clone(),
    )
}

/// The merchant's stored ciphertext and the refresh token it opens to (with the right context).
async fn sealed_and_token(s: &TestStack, t: &Tenant) -> (String, String) {
    let m = merchant_id(t);
    let conn = s
        .stack
        .store
        .amazon_connection(&m)
        .await
        .expect("store answers")
        .expect("a connection");
    let token = vault_for(s)
        .await
        .open(
            &TokenContext::amazon_seller(&m, &conn.selling_partner_id),
            &conn.refresh_token_ciphertext,
        )
        .await
        .expect("the ciphertext opens in its own context")
        .expose()
        .to_owned();
    (conn.refresh_token_ciphertext, token)
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

async fn audit_log(s: &TestStack, t: &Tenant) -> Vec<Value> {
    let (status, body) = s
        .get(&t.token, &format!("/v1/merchants/{}/audit", t.merchant_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn audited<'a>(log: &'a [Value], action: &str) -> Vec<&'a Value> {
    log.iter().filter(|r| r["action"] == action).collect()
}

/// Invites `email` as `role` and lets that user make their first request.
async fn join(s: &TestStack, t: &Tenant, email: &str, role: &str) -> Tenant {
    let (status, body) = s.invite(t, email, role).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = s.token(email);
    let (status, body) = s.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tenant {
        token,
        merchant_id: t.merchant_id.clone(),
    }
}

/// Waits for the first order sync of a merchant whose connection was just made (queued by the
/// callback, run by the stack's poller).
async fn first_sync(s: &TestStack, t: &Tenant) {
    let m = merchant_id(t);
    eventually_within(
        "the first order sync",
        StdDuration::from_secs(120),
        || async { s.stack.store.sync_state(&m).await.expect("store answers") },
    )
    .await;
}

/// Amazon changes one of the demo seller's orders: the status becomes `status` (the name of a
/// status some demo order has) and `LastUpdateDate` becomes `at`.
fn amazon_updates(s: &TestStack, order_id: &str, status: &str, at: OffsetDateTime) {
    let seller = demo_seller(s);
    let all = s.stack.amazon.orders(&seller);
    let new_status = all
        .iter()
        .find(|o| o.status.as_str() == status)
        .unwrap_or_else(|| panic!("no demo order is {status}"))
        .status;
    let mut order = all
        .into_iter()
        .find(|o| o.order_id == order_id)
        .unwrap_or_else(|| panic!("the sandbox has no order {order_id}"));
    order.status = new_status;
    order.last_update_date = Some(whole_seconds(at));
    s.stack.amazon.upsert_order(&seller, order);
}

/// A new order of `seller` at Amazon, copied from the demo seller's first order.
fn amazon_new_order(s: &TestStack, seller: &str, order_id: &str, at: OffsetDateTime) {
    let mut order = s.stack.amazon.orders(&demo_seller(s))[0].clone();
    order.order_id = order_id.to_owned();
    order.purchase_date = whole_seconds(at - Duration::minutes(2));
    order.last_update_date = Some(whole_seconds(at));
    order.is_replacement_order = false;
    order.replaced_order_id = None;
    s.stack.amazon.upsert_order(seller, order);
}

/// Reads every page of an order listing; fails on a repeated cursor.
async fn all_pages(s: &TestStack, t: &Tenant, query: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut cursors = BTreeSet::new();
    loop {
        let mut path = format!("{}?{query}", orders_path(t));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = s.get(&t.token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        pages += 1;
        items.extend(body["items"].as_array().cloned().expect("items"));
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert!(cursors.insert(c.to_owned()), "a cursor came back twice");
                cursor = Some(c.to_owned());
            }
            None => return (items, pages),
        }
        assert!(pages < 100, "the listing never ends");
    }
}

// ---- 1-2. the website authorization workflow and what it allows ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a2_connect_uses_amazon_website_authorization_with_a_checked_state() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let m = merchant_id(&t);
    assert_not_connected(&s, &t).await;

    // Start, in the SPA's browser (it keeps the nonce cookie).
    let res = s
        .browser
        .post(s.url(&connect_path(&t)))
        .bearer_auth(&t.token)
        .json(&json!({}))
        .send()
        .await
        .expect("the API answers");
    let start = answer(res).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let cookie = start.set_cookie.clone().expect("the nonce cookie is set");
    assert!(
        cookie.starts_with(&format!("{NONCE_COOKIE}="))
            && cookie.contains("Path=/oauth/amazon/callback")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let url = start.body["authorize_url"]
        .as_str()
        .expect("authorize_url")
        .to_owned();

    // Seller Central's consent page, with our application, a state and our callback.
    let consent_base = s
        .stack
        .order_sync
        .amazon
        .endpoints
        .consent_base
        .trim_end_matches('/')
        .to_owned();
    assert!(
        url.starts_with(&format!("{consent_base}/apps/authorize/consent?")),
        "{url}"
    );
    assert_eq!(
        param(&url, "application_id").as_deref(),
        Some(LOCAL_AMAZON_APP_ID)
    );
    assert_eq!(
        param(&url, "redirect_uri"),
        Some(s.url(CALLBACK_PATH)),
        "{url}"
    );
    assert_eq!(param(&url, "version"), None, "a published app: no beta");
    let state = param(&url, "state").expect("a state");
    let claims = claims_of(&state);
    assert_eq!(claims.mid, t.merchant_id);
    assert!(claims.exp > now().unix_timestamp(), "{claims:?}");
    assert!(
        claims.exp <= now().unix_timestamp() + 3600,
        "a state lives minutes, not days: {claims:?}"
    );

    // The browser follows it: consent, then back to our callback, which connects.
    let res = s.browser.get(&url).send().await.expect("consent answers");
    let landed = res.url().clone();
    let done = answer(res).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(landed.path(), CALLBACK_PATH);
    let landed = landed.to_string();
    assert_eq!(param(&landed, "state"), Some(state.clone()));
    assert_eq!(param(&landed, "selling_partner_id"), Some(demo_seller(&s)));
    let code = param(&landed, "spapi_oauth_code").expect("a code");
    assert_eq!(done.body["connected"], true, "{}", done.body);
    assert_eq!(done.body["status"], "active");
    assert_eq!(done.body["selling_partner_id"], demo_seller(&s));
    assert_eq!(done.body["marketplace_id"], INDIA);
    let connected_at = rfc3339(&done.body["connected_at"]);
    assert!(
        (now() - connected_at).abs() < Duration::minutes(1),
        "{connected_at}"
    );
    let cleared = done
        .set_cookie
        .clone()
        .expect("the nonce cookie is cleared");
    assert!(
        cleared.starts_with(&format!("{NONCE_COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // Amazon saw the consent, then the app's exchange of that code at LWA.
    let requests = seen(&s);
    let consent_at = requests
        .iter()
        .position(|r| r.path == "/apps/authorize/consent")
        .expect("the consent page was opened");
    let exchanges: Vec<&Seen> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == LWA_PATH)
        .collect();
    assert_eq!(exchanges.len(), 1, "{requests:?}");
    assert_eq!(exchanges[0].status, 200);
    assert!(
        requests
            .iter()
            .position(|r| r.path == LWA_PATH)
            .is_some_and(|i| i > consent_at)
    );
    // That exchange was the `authorization_code` grant of this very code: it is spent.
    let redirect = s.url(CALLBACK_PATH);
    let (status, body) = lwa_grant(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // The stored connection: who connected it, and the refresh token LWA issued (a live one).
    let conn = s
        .stack
        .store
        .amazon_connection(&m)
        .await
        .unwrap()
        .expect("a connection");
    assert_eq!(conn.selling_partner_id.as_str(), demo_seller(&s));
    assert_eq!(conn.marketplace_id, INDIA);
    assert!(conn.token_valid);
    assert_eq!(conn.connected_by.as_str(), s.stack.idp.sub_for(OWNER));
    let (sealed, refresh) = sealed_and_token(&s, &t).await;
    assert!(refresh.starts_with("Atzr|"), "an LWA refresh token");
    let (status, body) = lwa_grant(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stored token is the live one: {body}"
    );

    // The status, and no answer of the whole flow carries a token or the ciphertext.
    let (status, status_body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(status, StatusCode::OK, "{status_body}");
    assert_eq!(status_body["connected"], true);
    assert_eq!(status_body["status"], "active");
    assert_eq!(status_body["marketplace_id"], INDIA);
    assert_eq!(status_body["selling_partner_id"], demo_seller(&s));
    assert_eq!(status_body["connected_at"], done.body["connected_at"]);
    for (what, text) in [
        ("start", start.text.as_str()),
        ("callback", done.text.as_str()),
        ("status", &status_body.to_string()),
    ] {
        assert!(
            !text.contains(&refresh),
            "the {what} answer holds the refresh token"
        );
        assert!(
            !text.contains("Atzr|") && !text.contains("Atza|"),
            "{what}: {text}"
        );
        assert!(
            !text.contains(&sealed),
            "the {what} answer holds the ciphertext"
        );
        assert!(
            !text.contains("refresh_token") && !text.contains("ciphertext"),
            "{what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a2_nothing_is_fetched_without_a_live_connection() {
    let s = stack().await;
    let never = s.merchant(RIVAL).await;

    // Nobody is connected: the schedule queues nothing and Amazon is asked nothing.
    assert_eq!(fan_out(&s).await, 0);
    assert_eq!(
        queue_depth(&s.stack.resources.order_sync_queue_url).await,
        0
    );
    // A job naming a merchant that never connected (forged, or from a bug) fetches nothing.
    let forged = MerchantJob {
        merchant_id: merchant_id(&never),
        connection_id: AmazonConnectionId::generate(),
    };
    assert_eq!(sync_outcome(&s, &forged).await, SyncOutcome::NotConnected);
    assert!(seen(&s).is_empty(), "{:?}", seen(&s));

    // A connected merchant is synced; its job works while the connection lives.
    let t = s.amazon_merchant(OWNER).await;
    let old_job = job_of(&s, &t).await;
    assert_eq!(fan_out(&s).await, 1, "the connected merchant only");
    let live = run_sync(&s, &old_job).await;
    assert_synced(&live);
    eventually("the fanned-out job to be done", || async {
        (queue_depth(&s.stack.resources.order_sync_queue_url).await == 0).then_some(())
    })
    .await;

    // Disconnected: the job queued before (same connection id) fetches nothing at all.
    let (status, body) = s
        .call(Method::DELETE, Some(&t.token), &status_path(&t), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = amazon_reads(&s).len();
    let orders_before = get_orders_calls(&s).len();
    assert_eq!(sync_outcome(&s, &old_job).await, SyncOutcome::NotConnected);
    assert_eq!(sync_outcome(&s, &forged).await, SyncOutcome::NotConnected);
    assert_eq!(
        fan_out(&s).await,
        0,
        "a disconnected merchant is not scheduled"
    );
    assert_eq!(
        queue_depth(&s.stack.resources.order_sync_queue_url).await,
        0
    );
    assert_eq!(
        get_orders_calls(&s).len(),
        orders_before,
        "getOrders was called"
    );
    assert_eq!(amazon_reads(&s).len(), before, "LWA or SP-API was called");

    // Connected again, the job of the old connection still does nothing.
    let again = s.connect_amazon(&t).await;
    assert_eq!(again["connected"], true, "{again}");
    assert_ne!(connection_id(&s, &t).await, old_job.connection_id);
    assert_eq!(sync_outcome(&s, &old_job).await, SyncOutcome::NotConnected);
}

// ---- 3. the state, the cookie, LWA and roles -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_tampered_amazon_state_is_refused() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let other = s.merchant(RIVAL).await;
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

    // Our signature, the payload changed to another merchant.
    let (_, signature) = real.split_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&StateClaims {
            mid: other.merchant_id.clone(),
            ..claims.clone()
        })
        .unwrap(),
    );
    let a = callback(
        &with_param(&back, "state", Some(&format!("{payload}.{signature}"))),
        nonce,
    )
    .await;
    assert_refused(&a, "signature does not match");

    let a = callback(&with_param(&back, "state", Some("not-a-state")), nonce).await;
    assert_refused(&a, "malformed");

    assert_not_connected(&s, &t).await;
    assert_not_connected(&s, &other).await;
    assert!(
        !seen(&s).iter().any(|r| r.path == LWA_PATH),
        "a refused callback reached LWA"
    );

    // The forgeries neither used up nor spoilt the real state: it still completes, for `t` only.
    let a = callback(&back, nonce).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["connected"], true);
    assert!(
        s.stack
            .store
            .amazon_connection(&merchant_id(&t))
            .await
            .unwrap()
            .is_some()
    );
    assert_not_connected(&s, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_amazon_state_is_refused_and_used_up() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let m = merchant_id(&t);
    let owner = UserId::parse(&s.stack.idp.sub_for(OWNER)).unwrap();
    let started = begin(&s, &t).await;
    let unix_now = || now().unix_timestamp();

    // The signed expiry has passed.
    let back = consent(&started.authorize_url).await;
    let claims = claims_of(&param(&back, "state").unwrap());
    let stale = sign(
        STATE_KEY,
        &StateClaims {
            exp: unix_now() - 1,
            ..claims
        },
    );
    let a = callback(
        &with_param(&back, "state", Some(&stale)),
        Some(&started.nonce),
    )
    .await;
    assert_refused(&a, "expired");

    // The signature is in date, but the stored state has expired (TTL not applied yet).
    let browser_nonce = "nonce-of-this-test-browser";
    let hand_made = |sid: &str, stored_expiry: i64| {
        (
            OAuthState {
                state_id: sid.to_owned(),
                integration: "amazon".into(),
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
                    exp: unix_now() + 600,
                },
            ),
        )
    };
    let (expired, signed) = hand_made("expired-amazon-state-of-this-test", unix_now() - 5);
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
    assert_not_connected(&s, &t).await;
    assert!(
        !seen(&s).iter().any(|r| r.path == LWA_PATH),
        "an expired state reached LWA"
    );

    // The same hand-made state, in date, is accepted: the refusals above were the expiry.
    let (fresh, signed) = hand_made("fresh-amazon-state-of-this-test", unix_now() + 600);
    s.stack.store.save_oauth_state(&fresh).await.unwrap();
    let back = consent(&with_param(&started.authorize_url, "state", Some(&signed))).await;
    let a = callback(&back, Some(browser_nonce)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["connected"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_amazon_callback_is_refused_and_connects_once() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let started = begin(&s, &t).await;
    let back = consent(&started.authorize_url).await;
    let sid = claims_of(&param(&back, "state").unwrap()).sid;

    let first = callback(&back, Some(&started.nonce)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let connection = connection_id(&s, &t).await;
    let (sealed, _) = sealed_and_token(&s, &t).await;

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
    // Still the one connection, with its token; the replay never reached LWA.
    assert_eq!(connection_id(&s, &t).await, connection);
    assert_eq!(sealed_and_token(&s, &t).await.0, sealed);
    let exchanges = seen(&s)
        .iter()
        .filter(|r| r.method == "POST" && r.path == LWA_PATH)
        .count();
    assert_eq!(exchanges, 1);
    assert_eq!(audited(&audit_log(&s, &t).await, "amazon.connect").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_callback_without_the_nonce_cookie_is_refused() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let (status, body) = s.post(&t.token, &connect_path(&t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["authorize_url"].as_str().unwrap().to_owned();

    // Someone else's browser (no cookie jar) opens the merchant's consent link.
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(StdDuration::from_secs(30))
        .build()
        .unwrap();
    let a = answer(cookieless.get(&url).send().await.unwrap()).await;
    assert_refused(&a, "nonce cookie is missing");
    assert_not_connected(&s, &t).await;
    assert!(
        !seen(&s).iter().any(|r| r.path == LWA_PATH),
        "the code was exchanged"
    );

    // The merchant's own browser, with its cookie, still completes.
    let a = answer(s.browser.get(&url).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["connected"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_state_opened_in_another_browser_or_made_for_messenger_is_refused() {
    let s = stack().await;
    let a_owner = s.merchant(OWNER).await;
    let b_owner = s.merchant(RIVAL).await;

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

    // A's link opened in B's browser: B's cookie does not match A's state.
    let a = answer(b_browser.get(&url_a).send().await.unwrap()).await;
    assert_refused(&a, "does not belong to this browser");
    assert_not_connected(&s, &a_owner).await;
    assert_not_connected(&s, &b_owner).await;
    // The attempt used the state up: not even A's own browser can finish with it.
    let a = answer(s.browser.get(&url_a).send().await.unwrap()).await;
    assert_refused(&a, "already used");
    assert_not_connected(&s, &a_owner).await;

    // A Messenger state, with its own nonce, is no Amazon state.
    let res = bare_client()
        .post(s.url(&format!(
            "/v1/merchants/{}/integrations/messenger/connect",
            a_owner.merchant_id
        )))
        .bearer_auth(&a_owner.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let messenger_nonce = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.strip_prefix(&format!("{NONCE_COOKIE}=")))
        .and_then(|rest| rest.split(';').next())
        .expect("a nonce")
        .to_owned();
    let messenger_url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let messenger_state = param(&messenger_url, "state").expect("a state");
    let started = begin(&s, &a_owner).await;
    let back = consent(&started.authorize_url).await;
    let a = callback(
        &with_param(&back, "state", Some(&messenger_state)),
        Some(&messenger_nonce),
    )
    .await;
    assert_refused(&a, "does not belong to this browser");
    assert_not_connected(&s, &a_owner).await;
    assert!(
        !seen(&s).iter().any(|r| r.path == LWA_PATH),
        "a code was exchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_lwa_refuses_or_a_malformed_callback_connects_nothing() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;

    // LWA refuses the code (here: one Amazon never issued): 400, nothing stored, nothing queued.
    let started = begin(&s, &t).await;
    let back = consent(&started.authorize_url).await;
    let tampered = with_param(
        &back,
        "spapi_oauth_code",
        Some("SANDBOXnotacodeamazonissued"),
    );
    let a = callback(&tampered, Some(&started.nonce)).await;
    assert_refused(&a, "invalid_grant");
    assert!(
        seen(&s)
            .iter()
            .any(|r| r.method == "POST" && r.path == LWA_PATH && r.status == 400),
        "LWA was asked and refused"
    );
    assert_not_connected(&s, &t).await;
    assert_eq!(
        queue_depth(&s.stack.resources.order_sync_queue_url).await,
        0
    );
    assert!(audited(&audit_log(&s, &t).await, "amazon.connect").is_empty());
    assert!(
        !a.text.contains("Atzr|") && !a.text.contains("client_secret"),
        "{}",
        a.text
    );
    // The state went with the attempt: the real code cannot be slipped in afterwards.
    let a = callback(&back, Some(&started.nonce)).await;
    assert_refused(&a, "already used");
    assert_not_connected(&s, &t).await;

    // LWA refuses even a code Amazon did issue (it answers `invalid_grant` this once).
    let started = begin(&s, &t).await;
    let back = consent(&started.authorize_url).await;
    s.stack
        .amazon
        .fail_next(Operation::LwaToken, Fault::LwaError("invalid_grant"), 1);
    let a = callback(&back, Some(&started.nonce)).await;
    assert_refused(&a, "invalid_grant");
    assert_not_connected(&s, &t).await;

    // A callback without a (valid) seller id or code connects nothing either.
    for (name, value, why) in [
        ("selling_partner_id", None, "selling_partner_id"),
        (
            "selling_partner_id",
            Some("A2/../EVIL"),
            "selling_partner_id",
        ),
        ("spapi_oauth_code", None, "spapi_oauth_code"),
    ] {
        let started = begin(&s, &t).await;
        let back = consent(&started.authorize_url).await;
        let a = callback(&with_param(&back, name, value), Some(&started.nonce)).await;
        assert_refused(&a, why);
        assert_not_connected(&s, &t).await;
    }
    assert_eq!(
        queue_depth(&s.stack.resources.order_sync_queue_url).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_cannot_connect_or_disconnect_amazon_and_admins_can() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    s.connect_amazon(&t).await;
    let connection = connection_id(&s, &t).await;
    let agent = join(&s, &t, "agent@acme.example", "agent").await;

    let res = bare_client()
        .post(s.url(&connect_path(&agent)))
        .bearer_auth(&agent.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.set_cookie.is_none(), "no nonce for an agent");
    assert!(a.body.get("authorize_url").is_none());
    let (status, body) = s
        .call(
            Method::DELETE,
            Some(&agent.token),
            &status_path(&agent),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(connection_id(&s, &t).await, connection, "still connected");

    // An admin may.
    let admin = join(&s, &t, "admin@acme.example", "admin").await;
    let (status, body) = s
        .call(
            Method::DELETE,
            Some(&admin.token),
            &status_path(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_not_connected(&s, &t).await;
    let log = audit_log(&s, &t).await;
    let disconnects = audited(&log, "amazon.disconnect");
    assert_eq!(disconnects.len(), 1, "{log:?}");
    assert_eq!(
        disconnects[0]["actor"],
        s.stack.idp.sub_for("admin@acme.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_demoted_before_the_callback_connects_nothing() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let admin = join(&s, &t, "admin@acme.example", "admin").await;
    let admin_browser = other_browser();
    let res = admin_browser
        .post(s.url(&connect_path(&admin)))
        .bearer_auth(&admin.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();

    // The owner demotes the admin while Seller Central's page is open.
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &format!(
                "/v1/merchants/{}/members/{}",
                t.merchant_id,
                s.stack.idp.sub_for("admin@acme.example")
            ),
            Some(json!({"role": "agent"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let a = answer(admin_browser.get(&url).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_not_connected(&s, &t).await;
}

// ---- 4-6. the refresh token: KMS-bound, deleted on disconnect, each merchant's own -------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a11_refresh_token_is_kms_ciphertext_bound_to_merchant_and_seller() {
    let s = stack().await;
    let a = s.amazon_merchant(OWNER).await;
    let ma = merchant_id(&a);
    let demo = SellingPartnerId::parse(&demo_seller(&s)).unwrap();

    // B is the merchant of a second seller account the sandbox knows.
    let second = "A2SECONDSELLER09";
    amazon_new_order(
        &s,
        second,
        "403-0000001-0000001",
        now() - Duration::minutes(10),
    );
    let b = s.merchant(RIVAL).await;
    let mb = merchant_id(&b);
    let b_browser = other_browser();
    let res = b_browser
        .post(s.url(&connect_path(&b)))
        .bearer_auth(&b.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = answer(
        b_browser
            .get(with_param(&url, "seller", Some(second)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["selling_partner_id"], second);
    first_sync(&s, &b).await;
    assert_eq!(s.stack.store.all_orders(&mb).await.unwrap().len(), 1);

    // A's token is stored as KMS ciphertext, not as the token.
    let (sealed, token) = sealed_and_token(&s, &a).await;
    assert_ne!(sealed, token);
    assert!(!sealed.contains(&token) && !sealed.contains("Atzr|"));
    let raw = STANDARD.decode(&sealed).expect("base64 ciphertext");
    assert!(
        !String::from_utf8_lossy(&raw).contains(&token),
        "the ciphertext holds the token in clear"
    );
    let vault = vault_for(&s).await;
    let right = TokenContext::amazon_seller(&ma, &demo);
    assert_eq!(vault.open(&right, &sealed).await.unwrap().expose(), token);
    // Any other context is refused: another merchant, another seller, another integration.
    let second_id = SellingPartnerId::parse(second).unwrap();
    for wrong in [
        TokenContext::amazon_seller(&mb, &demo),
        TokenContext::amazon_seller(&ma, &second_id),
        TokenContext {
            integration: "messenger_page",
            ..right.clone()
        },
    ] {
        assert!(
            matches!(
                vault.open(&wrong, &sealed).await,
                Err(AwsError::TokenRefused)
            ),
            "{wrong:?}"
        );
    }

    // A's ciphertext copied into B's connection item: it does not open for B...
    let b_item_key = [
        ("PK".to_owned(), AttributeValue::S(format!("MERCHANT#{mb}"))),
        (
            "SK".to_owned(),
            AttributeValue::S("AMAZON#CONNECTION".to_owned()),
        ),
    ];
    s.stack
        .store
        .client()
        .update_item()
        .table_name(&s.stack.resources.table)
        .set_key(Some(b_item_key.into_iter().collect()))
        .update_expression("SET refresh_token_ciphertext = :c")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":c", AttributeValue::S(sealed.clone()))
        .send()
        .await
        .expect("B's connection item is overwritten");
    let b_conn = s.stack.store.amazon_connection(&mb).await.unwrap().unwrap();
    assert_eq!(b_conn.refresh_token_ciphertext, sealed);
    for ctx in [
        TokenContext::amazon_seller(&mb, &b_conn.selling_partner_id),
        TokenContext::amazon_seller(&mb, &demo),
    ] {
        assert!(
            matches!(vault.open(&ctx, &sealed).await, Err(AwsError::TokenRefused)),
            "{ctx:?}"
        );
    }

    // ... and B's order sync cannot use it: it fails before asking Amazon anything.
    let before = amazon_reads(&s).len();
    let outcome = run_sync(&s, &job_of(&s, &b).await).await;
    assert!(
        matches!(outcome, Err(SyncError::Store(AwsError::TokenRefused))),
        "{outcome:?}"
    );
    assert_eq!(
        amazon_reads(&s).len(),
        before,
        "Amazon was asked with A's token"
    );
    let b_orders: Vec<String> = s
        .stack
        .store
        .all_orders(&mb)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.facts.order_id.as_str().to_owned())
        .collect();
    assert_eq!(
        b_orders,
        vec!["403-0000001-0000001".to_owned()],
        "B got A's orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a11_disconnect_deletes_the_token_at_once_and_is_audited() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let (sealed, token) = sealed_and_token(&s, &t).await;
    let (_, status_body) = s.get(&t.token, &status_path(&t)).await;
    assert!(status_body["last_sync_at"].is_string(), "{status_body}");

    let (status, body) = s
        .call(Method::DELETE, Some(&t.token), &status_path(&t), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], false);

    // At once (no TTL, no sweeper): no item anywhere holds the token or its ciphertext.
    for item in support::scan_table(s.stack.store.table()).await {
        assert!(
            !item.contains_key("refresh_token_ciphertext"),
            "an item still holds a refresh token ciphertext: {:?} {:?}",
            item.get("PK"),
            item.get("SK")
        );
        for value in item_strings(&item) {
            assert!(
                !value.contains(&sealed) && !value.contains(&token) && !value.contains("Atzr|"),
                "{:?} {:?} holds the token",
                item.get("PK"),
                item.get("SK")
            );
        }
    }
    assert!(s.stack.store.amazon_connection(&m).await.unwrap().is_none());
    assert!(s.stack.store.sync_state(&m).await.unwrap().is_none());
    let (status, body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"connected": false}));
    assert_eq!(fan_out(&s).await, 0, "no job for a disconnected merchant");

    // Audited: who, what, which seller account.
    let log = audit_log(&s, &t).await;
    let records = audited(&log, "amazon.disconnect");
    assert_eq!(records.len(), 1, "{log:?}");
    assert_eq!(records[0]["actor"], s.stack.idp.sub_for(OWNER));
    assert_eq!(records[0]["target"], demo_seller(&s));
    assert!(!serde_json::to_string(&log).unwrap().contains("Atzr|"));

    // Disconnecting again changes nothing and audits nothing.
    let (status, _) = s
        .call(Method::DELETE, Some(&t.token), &status_path(&t), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audited(&audit_log(&s, &t).await, "amazon.disconnect").len(),
        1
    );

    // The seller account is free again: another merchant connects it.
    let b = s.merchant(RIVAL).await;
    let b_browser = other_browser();
    let res = b_browser
        .post(s.url(&connect_path(&b)))
        .bearer_auth(&b.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = answer(b_browser.get(&url).send().await.unwrap()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["selling_partner_id"], demo_seller(&s));
    assert_not_connected(&s, &t).await;
}

/// The `selling_partner_id` of Amazon's redirect is not signed: a merchant can change it. Were a
/// seller account reserved by that id for the first merchant naming it, anyone could block a
/// seller account they do not own. What a connection reads is what its own token grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_selling_partner_id_cannot_block_the_real_seller() {
    let s = stack().await;
    let demo = SellingPartnerId::parse(&demo_seller(&s)).unwrap();

    // A's owner consents with A's own seller account, then changes the callback's
    // selling_partner_id to the demo seller's id (someone else's account).
    let own = "A2SECONDSELLER09";
    amazon_new_order(
        &s,
        own,
        "403-0000001-0000001",
        now() - Duration::minutes(10),
    );
    let a = s.merchant(OWNER).await;
    let ma = merchant_id(&a);
    let started = begin(&s, &a).await;
    let back = consent(&with_param(&started.authorize_url, "seller", Some(own))).await;
    assert_eq!(param(&back, "selling_partner_id").as_deref(), Some(own));
    let tampered = with_param(&back, "selling_partner_id", Some(demo.as_str()));
    let claimed = callback(&tampered, Some(&started.nonce)).await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    first_sync(&s, &a).await;

    // B's owner, whose account the demo seller is, connects it normally: not blocked.
    let b = s.merchant(RIVAL).await;
    let mb = merchant_id(&b);
    let b_browser = other_browser();
    let res = b_browser
        .post(s.url(&connect_path(&b)))
        .bearer_auth(&b.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = answer(b_browser.get(&url).send().await.unwrap()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["connected"], true, "{}", done.body);
    assert_eq!(done.body["status"], "active");
    assert_eq!(done.body["selling_partner_id"], demo.as_str());
    first_sync(&s, &b).await;
    let (status, body) = s.get(&b.token, &status_path(&b)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], true);
    assert_eq!(body["status"], "active");
    assert_eq!(audited(&audit_log(&s, &b).await, "amazon.connect").len(), 1);

    // Each connection keeps its own token under its own ciphertext, bound to its own merchant:
    // it opens in that merchant's context only.
    let (sealed_a, token_a) = sealed_and_token(&s, &a).await;
    let (sealed_b, token_b) = sealed_and_token(&s, &b).await;
    assert_ne!(sealed_a, sealed_b);
    assert_ne!(token_a, token_b);
    let vault = vault_for(&s).await;
    let context_a = TokenContext::amazon_seller(&ma, &demo);
    let context_b = TokenContext::amazon_seller(&mb, &demo);
    assert_eq!(
        vault.open(&context_a, &sealed_a).await.unwrap().expose(),
        token_a
    );
    assert_eq!(
        vault.open(&context_b, &sealed_b).await.unwrap().expose(),
        token_b
    );
    for (context, sealed) in [(&context_b, &sealed_a), (&context_a, &sealed_b)] {
        assert!(
            matches!(
                vault.open(context, sealed).await,
                Err(AwsError::TokenRefused)
            ),
            "{context:?}"
        );
    }

    // The claimed id gave A nothing of the demo seller: A's token reads A's own account.
    let a_orders: Vec<String> = s
        .stack
        .store
        .all_orders(&ma)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.facts.order_id.as_str().to_owned())
        .collect();
    assert_eq!(a_orders, vec!["403-0000001-0000001".to_owned()]);
    let b_orders = s.stack.store.all_orders(&mb).await.unwrap();
    assert_eq!(b_orders.len(), s.stack.amazon.orders(demo.as_str()).len());
    assert!(
        !b_orders
            .iter()
            .any(|o| o.facts.order_id.as_str() == "403-0000001-0000001")
    );
    // Both connections live on, each scheduled.
    assert_eq!(fan_out(&s).await, 2);
}

// ---- 7-8. order sync -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a10_order_sync_is_incremental_by_last_updated_after() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let seller = demo_seller(&s);
    let state1 = s.stack.store.sync_state(&m).await.unwrap().expect("synced");

    // The first sync: getOrders by LastUpdatedAfter, 60 days back, then NextToken page by page.
    let calls = get_orders_calls(&s);
    assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
    let first = &calls[0];
    assert_eq!(
        query_param(&first.query, "MarketplaceIds").as_deref(),
        Some(INDIA)
    );
    assert_eq!(
        query_param(&first.query, "CreatedAfter"),
        None,
        "{}",
        first.query
    );
    let since1 = last_updated_after(first);
    let backfill_from = state1.last_run_at - BACKFILL;
    assert!(
        since1 <= backfill_from && since1 > backfill_from - Duration::seconds(2),
        "the first sync asked from {since1}, not {backfill_from}"
    );
    for next in &calls[1..] {
        assert!(
            query_param(&next.query, "NextToken").is_some(),
            "{}",
            next.query
        );
        assert_eq!(query_param(&next.query, "LastUpdatedAfter"), None);
    }

    // Every order Amazon has updated since then is stored, with Amazon's facts.
    let at_amazon = s.stack.amazon.orders(&seller);
    let expected: BTreeMap<String, _> = at_amazon
        .iter()
        .filter(|o| {
            o.last_update_date
                .is_some_and(|d| d >= since1 && d <= state1.synced_until)
        })
        .map(|o| (o.order_id.clone(), o.clone()))
        .collect();
    assert_eq!(
        expected.len(),
        at_amazon.len(),
        "every demo order is within 60 days"
    );
    assert_eq!(
        calls.len(),
        expected.len().div_ceil(100),
        "one call per 100 orders"
    );
    let stored = s.stack.store.all_orders(&m).await.unwrap();
    let stored_ids: BTreeSet<String> = stored
        .iter()
        .map(|o| o.facts.order_id.as_str().to_owned())
        .collect();
    assert_eq!(
        stored_ids,
        expected.keys().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(state1.orders_seen, expected.len() as u64);
    for o in &stored {
        let amazon = &expected[o.facts.order_id.as_str()];
        assert_eq!(format!("{:?}", o.facts.status), amazon.status.as_str());
        assert_eq!(Some(o.facts.last_update_date), amazon.last_update_date);
        assert_eq!(o.facts.purchase_date, amazon.purchase_date);
        assert_eq!(o.facts.marketplace_id, INDIA);
    }

    // The second sync starts where the first ended, less the overlap: not 60 days back.
    let outcome = run_sync(&s, &job_of(&s, &t).await).await;
    assert_synced(&outcome);
    let calls2 = get_orders_calls(&s);
    assert_eq!(calls2.len(), calls.len() + 1, "one page is enough");
    let since2 = last_updated_after(&calls2[calls.len()]);
    assert!(
        since2 >= state1.synced_until - OVERLAP - Duration::seconds(1)
            && since2 < state1.synced_until,
        "the second sync asked from {since2}; the first ended at {}",
        state1.synced_until
    );
    assert!(since2 > now() - Duration::hours(1), "{since2}");
    let state2 = s.stack.store.sync_state(&m).await.unwrap().unwrap();
    assert!(state2.synced_until > state1.synced_until);

    // Amazon updates an order and a new one is placed: the next sync brings both.
    let changed = at_amazon
        .iter()
        .find(|o| o.status.as_str() == "Unshipped")
        .expect("an unshipped demo order")
        .order_id
        .clone();
    let updated_at = now() - Duration::minutes(3);
    amazon_updates(&s, &changed, "Canceled", updated_at);
    amazon_new_order(
        &s,
        &seller,
        "404-1111111-2222222",
        now() - Duration::minutes(3),
    );
    let (_, body) = s.get(&t.token, &order_path(&t, &changed)).await;
    assert_eq!(body["status"], "Unshipped", "not synced yet");

    let outcome = run_sync(&s, &job_of(&s, &t).await).await;
    assert_synced(&outcome);
    let calls3 = get_orders_calls(&s);
    let since3 = last_updated_after(&calls3[calls2.len()]);
    assert!(since3 >= state2.synced_until - OVERLAP - Duration::seconds(1));
    let (status, body) = s.get(&t.token, &order_path(&t, &changed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Canceled", "{body}");
    assert_eq!(
        rfc3339(&body["last_update_date"]),
        whole_seconds(updated_at)
    );
    let (status, body) = s
        .get(&t.token, &order_path(&t, "404-1111111-2222222"))
        .await;
    assert_eq!(status, StatusCode::OK, "the new order is synced: {body}");
    assert_eq!(
        s.stack.store.all_orders(&m).await.unwrap().len(),
        expected.len() + 1
    );
    let (_, status_body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(
        rfc3339(&status_body["last_sync_at"]),
        s.stack
            .store
            .sync_state(&m)
            .await
            .unwrap()
            .unwrap()
            .last_run_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a10_order_upserts_never_go_backwards_and_keep_the_merchants_marks() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let seller = demo_seller(&s);
    let shipped: Vec<String> = s
        .stack
        .amazon
        .orders(&seller)
        .into_iter()
        .filter(|o| o.status.as_str() == "Shipped")
        .map(|o| o.order_id)
        .take(3)
        .collect();
    let (o, p, q) = (&shipped[0], &shipped[1], &shipped[2]);
    let id = |raw: &str| AmazonOrderId::parse(raw).unwrap();

    // Older facts than the stored ones are not written.
    let stored = s.stack.store.order(&m, &id(o)).await.unwrap().unwrap();
    let mut older = stored.facts.clone();
    older.status = OrderStatus::Pending;
    older.last_update_date = stored.facts.last_update_date - Duration::days(1);
    assert!(!s.stack.store.upsert_order(&m, &older).await.unwrap());
    assert_eq!(
        s.stack
            .store
            .order(&m, &id(o))
            .await
            .unwrap()
            .unwrap()
            .facts,
        stored.facts
    );

    // We already hold a newer version of P than the one Amazon serves next: it stays.
    let mut newer = s
        .stack
        .store
        .order(&m, &id(p))
        .await
        .unwrap()
        .unwrap()
        .facts;
    newer.status = OrderStatus::Canceled;
    newer.last_update_date = whole_seconds(now() - Duration::minutes(1));
    assert!(s.stack.store.upsert_order(&m, &newer).await.unwrap());
    amazon_updates(&s, p, "Shipped", now() - Duration::minutes(3));

    // The merchant marks Q; then Amazon updates Q.
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &order_path(&t, q),
            Some(json!({"do_not_solicit": true, "refunded_or_returned": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    amazon_updates(&s, q, "Canceled", now() - Duration::minutes(3));

    let outcome = run_sync(&s, &job_of(&s, &t).await).await;
    assert_synced(&outcome);
    let last = get_orders_calls(&s).pop().unwrap();
    assert!(
        last.query.contains("LastUpdatedAfter"),
        "an incremental sync that saw P and Q"
    );

    let p_now = s.stack.store.order(&m, &id(p)).await.unwrap().unwrap();
    assert_eq!(
        p_now.facts, newer,
        "older facts from Amazon replaced newer ones"
    );
    let (status, body) = s.get(&t.token, &order_path(&t, q)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Canceled", "Amazon's update is taken");
    assert_eq!(
        body["do_not_solicit"], true,
        "the merchant's mark survives: {body}"
    );
    assert_eq!(body["refunded_or_returned"], true, "{body}");
    // Same facts again (a repeated page) write the same thing.
    let q_facts = s.stack.store.order(&m, &id(q)).await.unwrap().unwrap();
    assert!(
        s.stack
            .store
            .upsert_order(&m, &q_facts.facts)
            .await
            .unwrap()
    );
    assert_eq!(
        s.stack
            .store
            .order(&m, &id(q))
            .await
            .unwrap()
            .unwrap()
            .marks,
        q_facts.marks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a10_switching_to_another_seller_account_backfills_its_orders() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let before = s.stack.store.sync_state(&m).await.unwrap().unwrap();

    // The merchant's other seller account has orders Amazon last updated days ago.
    let second = "A2SECONDSELLER09";
    amazon_new_order(&s, second, "406-0000001-0000001", now() - Duration::days(2));
    amazon_new_order(
        &s,
        second,
        "406-0000002-0000002",
        now() - Duration::days(20),
    );

    // The owner connects that account instead (no disconnect in between).
    let (status, body) = s.post(&t.token, &connect_path(&t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = with_param(
        body["authorize_url"].as_str().unwrap(),
        "seller",
        Some(second),
    );
    let done = answer(s.browser.get(&url).send().await.unwrap()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["selling_partner_id"], second);

    // The new connection's first sync reaches back 60 days for the new account.
    eventually_within(
        "the new connection's first sync",
        StdDuration::from_secs(120),
        || async {
            let state = s.stack.store.sync_state(&m).await.expect("store answers");
            state
                .filter(|st| st.last_run_at > before.last_run_at)
                .map(|_| ())
        },
    )
    .await;
    let last = get_orders_calls(&s)
        .into_iter()
        .rev()
        .find(|c| c.query.contains("LastUpdatedAfter"))
        .expect("a getOrders call");
    let since = last_updated_after(&last);
    for id in ["406-0000001-0000001", "406-0000002-0000002"] {
        let (status, body) = s.get(&t.token, &order_path(&t, id)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{id} of the new seller account is missing: the first sync of the new account asked \
             only from {since} (the old account's watermark), not 60 days back: {body}"
        );
    }

    // The old account is released: another merchant can connect it.
    let b = s.merchant(RIVAL).await;
    let b_browser = other_browser();
    let res = b_browser
        .post(s.url(&connect_path(&b)))
        .bearer_auth(&b.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let url = res.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = answer(b_browser.get(&url).send().await.unwrap()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["selling_partner_id"], demo_seller(&s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a2_a_token_lwa_refuses_stops_the_sync_until_the_seller_reconnects() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let job = job_of(&s, &t).await;
    let seller = demo_seller(&s);

    // The seller withdraws the app; an hour later the last access token has expired too.
    s.stack.amazon.revoke_refresh_tokens(&seller);
    s.stack.amazon.set_now(now() + Duration::minutes(61));
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let outcome = run_sync(&s, &job).await;
        let refused = matches!(outcome, Ok(SyncOutcome::TokenRefused));
        outcomes.push(outcome);
        if refused {
            break;
        }
    }
    assert!(
        matches!(outcomes.last(), Some(Ok(SyncOutcome::TokenRefused))),
        "{outcomes:?}"
    );
    assert!(
        seen(&s)
            .iter()
            .any(|r| r.path == LWA_PATH && r.status == 400),
        "LWA refused the refresh token"
    );

    // The merchant sees it must reconnect; nothing is fetched any more.
    let (status, body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connected"], true);
    assert_eq!(body["status"], "reconnect_needed");
    let before = amazon_reads(&s).len();
    assert_eq!(
        fan_out(&s).await,
        0,
        "a refused connection is not scheduled"
    );
    assert_eq!(sync_outcome(&s, &job).await, SyncOutcome::NotConnected);
    assert_eq!(
        queue_depth(&s.stack.resources.order_sync_queue_url).await,
        0
    );
    assert_eq!(amazon_reads(&s).len(), before, "Amazon was asked again");

    // A new consent makes it live again.
    s.stack.amazon.set_now(now());
    let again = s.connect_amazon(&t).await;
    assert_eq!(again["status"], "active", "{again}");
    let (_, body) = s.get(&t.token, &status_path(&t)).await;
    assert_eq!(body["status"], "active");
    assert_eq!(fan_out(&s).await, 1);
}

// ---- 9. the orders API -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_list_is_newest_first_pages_once_through_every_order_and_filters() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let stored = s.stack.store.all_orders(&m).await.unwrap();
    assert!(stored.len() > 200, "{}", stored.len());

    // Newest purchase first, 50 a page, every order exactly once.
    let (items, pages) = all_pages(&s, &t, "limit=50").await;
    assert!(pages >= stored.len().div_ceil(50), "{pages} pages");
    let ids: Vec<&str> = items
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an order came twice");
    assert_eq!(unique.len(), stored.len());
    let dates: Vec<OffsetDateTime> = items.iter().map(|o| rfc3339(&o["purchase_date"])).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    let (status, body) = s
        .get(&t.token, &format!("{}?limit=50", orders_path(&t)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 50);

    // By status: exactly the shipped ones.
    let shipped: BTreeSet<String> = stored
        .iter()
        .filter(|o| o.facts.status == OrderStatus::Shipped)
        .map(|o| o.facts.order_id.as_str().to_owned())
        .collect();
    assert!(!shipped.is_empty() && shipped.len() < stored.len());
    let (items, _) = all_pages(&s, &t, "status=Shipped&limit=100").await;
    assert!(items.iter().all(|o| o["status"] == "Shipped"));
    let listed: BTreeSet<String> = items
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, shipped);
    assert_eq!(listed.len(), items.len());

    // By marketplace: one order from Amazon.com next to the Indian ones.
    let mut us = stored[0].facts.clone();
    us.order_id = AmazonOrderId::parse("111-2222222-3333333").unwrap();
    us.marketplace_id = "ATVPDKIKX0DER".into();
    assert!(s.stack.store.upsert_order(&m, &us).await.unwrap());
    let (items, _) = all_pages(&s, &t, "marketplace_id=ATVPDKIKX0DER&limit=100").await;
    let listed: Vec<&str> = items
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["111-2222222-3333333"]);
    let (items, _) = all_pages(&s, &t, &format!("marketplace_id={INDIA}&limit=100")).await;
    assert_eq!(items.len(), stored.len());
    assert!(items.iter().all(|o| o["marketplace_id"] == INDIA));
    let (items, _) = all_pages(&s, &t, &format!("marketplace_id={INDIA}&status=Shipped")).await;
    assert_eq!(items.len(), shipped.len());

    // Bad paging input is a 4xx, never a 500; another merchant's cursor is refused.
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=not-a-cursor",
        "cursor=",
    ] {
        let (status, body) = s
            .get(&t.token, &format!("{}?{query}", orders_path(&t)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    for query in [
        "status=",
        "marketplace_id=",
        "status=%00",
        "status=NoSuchStatus",
    ] {
        let (status, body) = s
            .get(&t.token, &format!("{}?{query}", orders_path(&t)))
            .await;
        assert!(
            status.is_success() || status.is_client_error(),
            "{query}: {status} {body}"
        );
    }
    let (_, body) = s
        .get(&t.token, &format!("{}?limit=5", orders_path(&t)))
        .await;
    let cursor = body["next_cursor"].as_str().expect("a cursor").to_owned();
    let b = s.merchant(RIVAL).await;
    let (status, body) = s
        .get(&b.token, &format!("{}?cursor={cursor}", orders_path(&b)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_shows_amazons_facts_and_is_hidden_from_other_merchants() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let b = s.merchant(RIVAL).await;
    let amazon = s
        .stack
        .amazon
        .orders(&demo_seller(&s))
        .into_iter()
        .find(|o| o.status.as_str() == "Shipped" && o.order_total.is_some())
        .expect("a shipped demo order");
    let id = amazon.order_id.clone();

    let (status, body) = s.get(&t.token, &order_path(&t, &id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_id"], id);
    assert_eq!(body["marketplace_id"], INDIA);
    assert_eq!(body["status"], "Shipped");
    assert_eq!(
        body["fulfillment_channel"],
        amazon.fulfillment_channel.as_str()
    );
    assert_eq!(rfc3339(&body["purchase_date"]), amazon.purchase_date);
    assert_eq!(
        Some(rfc3339(&body["last_update_date"])),
        amazon.last_update_date
    );
    let (currency, amount) = amazon.order_total.clone().unwrap();
    assert_eq!(
        body["total"],
        json!({"currency": currency, "amount": amount})
    );
    assert_eq!(body["do_not_solicit"], false);
    assert_eq!(body["conversation_ids"], json!([]));
    assert_eq!(body["customer_ids"], json!([]));
    assert!(body.get("solicitation").is_some(), "{body}");

    for missing in [
        "402-0000000-0000000",
        "not-an-order",
        "402-1234567-123456",
        "..%2F..%2Fx",
    ] {
        let (status, body) = s.get(&t.token, &order_path(&t, missing)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {body}");
    }

    // Another merchant: its own scope has no such order; A's scope is not theirs.
    let (status, _) = s.get(&b.token, &order_path(&b, &id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [orders_path(&t), order_path(&t, &id)] {
        let (status, body) = s.get(&b.token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = s
        .call(
            Method::PATCH,
            Some(&b.token),
            &order_path(&t, &id),
            Some(json!({"do_not_solicit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::GET, None, &order_path(&t, &id), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, body) = s.get(&t.token, &order_path(&t, &id)).await;
    assert_eq!(body["do_not_solicit"], false, "B changed A's order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_marks_are_set_by_owners_and_admins_not_agents() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let id = s.stack.store.all_orders(&merchant_id(&t)).await.unwrap()[0]
        .facts
        .order_id
        .as_str()
        .to_owned();
    let path = order_path(&t, &id);
    let agent = join(&s, &t, "agent@acme.example", "agent").await;
    let admin = join(&s, &t, "admin@acme.example", "admin").await;

    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &path,
            Some(json!({"do_not_solicit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["do_not_solicit"], true);
    assert_eq!(body["refunded_or_returned"], false);
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&admin.token),
            &path,
            Some(json!({"refunded_or_returned": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["do_not_solicit"], true, "a mark left out is kept");
    assert_eq!(body["refunded_or_returned"], true);

    // Agents read orders but do not mark them.
    let (status, body) = s
        .call(
            Method::PATCH,
            Some(&agent.token),
            &path,
            Some(json!({"do_not_solicit": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = s.get(&agent.token, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["do_not_solicit"], true,
        "the agent's change was applied"
    );

    let log = audit_log(&s, &t).await;
    let updates = audited(&log, "order.update");
    assert_eq!(updates.len(), 2, "{log:?}");
    assert!(updates.iter().all(|r| r["target"] == id.as_str()));

    // Bad bodies are a 4xx and change nothing.
    for bad in [
        json!({"do_not_solicit": "yes"}),
        json!({"do_not_solicit": 1}),
        json!({"solicited": true}),
        json!([]),
        json!("do_not_solicit"),
    ] {
        let (status, body) = s
            .call(Method::PATCH, Some(&t.token), &path, Some(bad.clone()))
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    let res = s
        .browser
        .patch(s.url(&path))
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let (status, _) = s
        .call(
            Method::PATCH,
            Some(&t.token),
            &order_path(&t, "402-0000000-0000000"),
            Some(json!({"do_not_solicit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = s.get(&t.token, &path).await;
    assert_eq!(
        (
            body["do_not_solicit"].clone(),
            body["refunded_or_returned"].clone()
        ),
        (json!(true), json!(true))
    );
}

// ---- 10. orders and conversations (E9) -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e9_an_order_linked_to_a_conversation_shows_on_both_sides() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    s.connect_amazon(&t).await;
    first_sync(&s, &t).await;
    let m = merchant_id(&t);
    let stored = s.stack.store.all_orders(&m).await.unwrap();
    let (o1, o2, o3) = (
        stored[0].facts.order_id.as_str().to_owned(),
        stored[1].facts.order_id.as_str().to_owned(),
        stored[2].facts.order_id.as_str().to_owned(),
    );
    s.customer_writes(PAGE_A, "7301", "Where is my order?")
        .await;
    let conv = s.conversation_with(&t, "7301").await;
    let cid = conv["id"].as_str().unwrap().to_owned();
    let customer = conv["customer"]["id"].as_str().unwrap().to_owned();
    let conv_path = format!("/v1/merchants/{}/conversations/{cid}", t.merchant_id);
    let customer_path = format!("/v1/merchants/{}/customers/{customer}", t.merchant_id);
    let agent = join(&s, &t, "agent@acme.example", "agent").await;

    // An agent links order 1 from the order's side.
    let link = format!("{}/conversations", order_path(&t, &o1));
    let (status, body) = s
        .post(&agent.token, &link, json!({"conversation_id": cid}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conversation_ids"], json!([cid]));
    assert_eq!(body["customer_ids"], json!([customer]));
    // Again: no duplicates.
    let (status, body) = s
        .post(&agent.token, &link, json!({"conversation_id": cid}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conversation_ids"], json!([cid]));

    let (_, body) = s.get(&t.token, &order_path(&t, &o1)).await;
    assert_eq!(body["conversation_ids"], json!([cid]), "{body}");
    assert_eq!(body["customer_ids"], json!([customer]));
    let (status, body) = s.get(&t.token, &conv_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!([o1]));
    let (status, body) = s.get(&t.token, &customer_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!([o1]));

    // Order 2 linked from the conversation's side shows on the order too.
    let (status, body) = s
        .post(
            &agent.token,
            &format!("{conv_path}/orders"),
            json!({"order_ref": o2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!([o1, o2]));
    let (_, body) = s.get(&t.token, &order_path(&t, &o2)).await;
    assert_eq!(body["conversation_ids"], json!([cid]), "{body}");
    assert_eq!(body["customer_ids"], json!([customer]));
    let (_, body) = s.get(&t.token, &customer_path).await;
    assert_eq!(body["order_refs"], json!([o1, o2]));

    // Links to what does not exist are refused whole: nothing half-linked.
    let (status, _) = s
        .post(
            &agent.token,
            &format!("{}/conversations", order_path(&t, "402-0000000-0000000")),
            json!({"conversation_id": cid}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let ghost = ecomdrive_core::ids::ConversationId::generate();
    let o3_link = format!("{}/conversations", order_path(&t, &o3));
    let (status, _) = s
        .post(
            &agent.token,
            &o3_link,
            json!({"conversation_id": ghost.as_str()}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .post(
            &agent.token,
            &o3_link,
            json!({"conversation_id": "not a conversation"}),
        )
        .await;
    assert!(status.is_client_error());
    let (_, body) = s.get(&t.token, &order_path(&t, &o3)).await;
    assert_eq!(body["conversation_ids"], json!([]));
    let (_, body) = s.get(&t.token, &conv_path).await;
    assert_eq!(body["order_refs"], json!([o1, o2]));

    // The links survive Amazon updating the order.
    amazon_updates(&s, &o1, "Canceled", now() - Duration::minutes(3));
    let outcome = run_sync(&s, &job_of(&s, &t).await).await;
    assert_synced(&outcome);
    let (_, body) = s.get(&t.token, &order_path(&t, &o1)).await;
    assert_eq!(body["status"], "Canceled", "{body}");
    assert_eq!(body["conversation_ids"], json!([cid]));
    assert_eq!(body["customer_ids"], json!([customer]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e9_an_order_linked_before_it_was_synced_shows_the_conversation_once_synced() {
    let s = stack().await;
    let t = s.connected_merchant(OWNER, PAGE_A).await;
    s.connect_amazon(&t).await;
    first_sync(&s, &t).await;
    s.customer_writes(PAGE_A, "7302", "I just ordered 405-1234567-7654321")
        .await;
    let conv = s.conversation_with(&t, "7302").await;
    let cid = conv["id"].as_str().unwrap().to_owned();
    let customer = conv["customer"]["id"].as_str().unwrap().to_owned();

    // The agent links the order the customer names; order sync has not seen it yet (Amazon
    // shows an order to getOrders only minutes after it changes).
    let new_order = "405-1234567-7654321";
    let (status, body) = s
        .post(
            &t.token,
            &format!("/v1/merchants/{}/conversations/{cid}/orders", t.merchant_id),
            json!({"order_ref": new_order}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_refs"], json!([new_order]));

    // The order arrives with the next sync: it shows the conversation already linked to it.
    amazon_new_order(
        &s,
        &demo_seller(&s),
        new_order,
        now() - Duration::minutes(3),
    );
    let outcome = run_sync(&s, &job_of(&s, &t).await).await;
    assert_synced(&outcome);
    let (status, body) = s.get(&t.token, &order_path(&t, new_order)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["conversation_ids"],
        json!([cid]),
        "the conversation shows the order but the order does not show the conversation"
    );
    assert_eq!(body["customer_ids"], json!([customer]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a10_a_sync_stopped_by_amazons_rate_limit_goes_on_where_it_stopped() {
    let s = support::stack_with(|o| o.run_pollers = false).await;
    let t = s.merchant(OWNER).await;
    s.connect_amazon(&t).await;
    let m = MerchantId::parse(&t.merchant_id).expect("merchant id");
    let conn = s
        .stack
        .store
        .amazon_connection(&m)
        .await
        .expect("store answers")
        .expect("connected");
    let job = MerchantJob {
        merchant_id: m.clone(),
        connection_id: conn.connection_id,
    };
    let get_orders = |s: &TestStack| -> Vec<(String, u16)> {
        s.stack
            .amazon
            .requests()
            .into_iter()
            .filter(|r| r.path == "/orders/v0/orders")
            .map(|r| (r.query, r.status))
            .collect()
    };
    // Two pages, then Amazon's minute-long wait: the sync stops and keeps its place.
    s.stack
        .amazon
        .set_rate_limit(Operation::GetOrders, 0.0001, 2);
    let now = OffsetDateTime::now_utc();
    let stopped = s.stack.order_sync.sync(&job, now).await;
    assert!(stopped.is_err(), "{stopped:?}");
    let seen = get_orders(&s);
    assert_eq!(
        seen.iter().map(|(_, st)| *st).collect::<Vec<_>>(),
        vec![200, 200, 429],
        "{seen:?}"
    );
    let state = s
        .stack
        .store
        .sync_state(&m)
        .await
        .expect("store answers")
        .expect("progress kept");
    let resume = state.resume.expect("where to go on");

    // The next try (the queue's) goes on from the third page, not from the start.
    s.stack
        .amazon
        .set_rate_limit(Operation::GetOrders, 100.0, 100);
    let done = s
        .stack
        .order_sync
        .sync(&job, now + Duration::minutes(1))
        .await
        .expect("the sync finishes");
    assert!(matches!(done, SyncOutcome::Synced { .. }), "{done:?}");
    let seen = get_orders(&s);
    let (first_of_second_run, status) = &seen[3];
    assert_eq!(*status, 200);
    assert!(
        first_of_second_run.contains("NextToken=")
            && !first_of_second_run.contains("LastUpdatedAfter"),
        "went on with the saved page token: {first_of_second_run}"
    );
    assert_eq!(seen.len(), 4, "no page was read twice: {seen:?}");
    let stored = s.stack.store.all_orders(&m).await.expect("store answers");
    let expected = s
        .stack
        .amazon
        .orders(amazon_sandbox::DEMO_SELLER_ID)
        .into_iter()
        .filter(|o| {
            o.last_update_date
                .is_some_and(|d| d >= resume.since && d <= resume.until)
        })
        .count();
    assert_eq!(
        stored.len(),
        expected,
        "every order of the window is stored"
    );
    assert!(expected > 200, "the window spans three pages: {expected}");
    let state = s
        .stack
        .store
        .sync_state(&m)
        .await
        .expect("store answers")
        .expect("watermark");
    assert_eq!(state.resume, None);
    assert_eq!(state.synced_until, resume.until);
}
