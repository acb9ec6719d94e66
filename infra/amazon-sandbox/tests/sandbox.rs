//! The sandbox checked against what Amazon documents, over real HTTP on loopback.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use amazon_sandbox::{
    AmazonSandbox, DEMO_SELLER_ID, DemoSettlement, Fault, FulfillmentChannel, INDIA_MARKETPLACE,
    Operation, OrderStatus, SETTLEMENT_HEADER, SETTLEMENT_REPORT_TYPE, SandboxConfig, SandboxItem,
    SandboxOrder, SandboxSeller, demo_settlement_files, local_routes,
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const CLIENT_ID: &str = "amzn1.application-oa2-client.sandbox0001";
const CLIENT_SECRET: &str = "local-fake-lwa-client-secret";
const APP_ID: &str = "amzn1.sp.solution.sandbox-0001";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/amazon/callback";
/// Amazon's static sandbox answers whatever the token.
const ANY_TOKEN: &str = "Atza|any-token-the-static-sandbox-accepts";

const SP_API_OPERATIONS: [Operation; 7] = [
    Operation::GetOrders,
    Operation::GetOrder,
    Operation::GetOrderItems,
    Operation::GetSolicitationActions,
    Operation::CreateSolicitation,
    Operation::GetReports,
    Operation::GetReportDocument,
];

/// One HTTP answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Setup {
    sandbox: AmazonSandbox,
    base: String,
    http: reqwest::Client,
}

async fn setup_with(config: SandboxConfig) -> Setup {
    let sandbox = AmazonSandbox::new(config);
    let base = sandbox.serve().await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Setup {
        sandbox,
        base,
        http,
    }
}

/// The demo seller, with Amazon's default rate limits.
async fn setup() -> Setup {
    setup_with(SandboxConfig::demo(CLIENT_ID, CLIENT_SECRET, APP_ID)).await
}

/// The demo seller, with rate limits high enough never to get in the way.
async fn setup_unlimited() -> Setup {
    let s = setup().await;
    for operation in SP_API_OPERATIONS {
        s.sandbox.set_rate_limit(operation, 1_000.0, 1_000);
    }
    s
}

async fn into_answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

impl Setup {
    /// Runs the consent page and returns where it redirects to.
    async fn consent(&self, query: &[(&str, &str)]) -> (u16, Option<url::Url>, String) {
        let response = self
            .http
            .get(format!("{}/apps/authorize/consent", self.base))
            .query(query)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap());
        (status, location, response.text().await.unwrap())
    }

    /// A fresh `spapi_oauth_code` for the demo seller.
    async fn code(&self) -> String {
        let (status, location, _) = self
            .consent(&[
                ("application_id", APP_ID),
                ("state", "st"),
                ("redirect_uri", REDIRECT),
            ])
            .await;
        assert_eq!(status, 302);
        query_value(&location.unwrap(), "spapi_oauth_code").unwrap()
    }

    async fn lwa(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(format!("{}/auth/o2/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        into_answer(response).await
    }

    async fn exchange(&self, code: &str, redirect_uri: &str, secret: &str) -> Answer {
        self.lwa(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.lwa(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await
    }

    async fn sp(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        token: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(token) = token {
            request = request.header("x-amz-access-token", token);
        }
        into_answer(request.send().await.unwrap()).await
    }

    async fn get(&self, path_and_query: &str, token: &str) -> Answer {
        self.sp(reqwest::Method::GET, path_and_query, Some(token))
            .await
    }

    async fn post(&self, path_and_query: &str, token: &str) -> Answer {
        self.sp(reqwest::Method::POST, path_and_query, Some(token))
            .await
    }

    /// Pins the sandbox clock and returns a demo seller access token live at that time.
    fn token_at(&self, now: OffsetDateTime) -> String {
        self.sandbox.set_now(now);
        self.sandbox.authorize(DEMO_SELLER_ID).unwrap().access_token
    }

    async fn actions(&self, order_id: &str, token: &str) -> Answer {
        self.get(
            &format!("/solicitations/v1/orders/{order_id}?marketplaceIds={INDIA_MARKETPLACE}"),
            token,
        )
        .await
    }

    async fn solicit(&self, order_id: &str, token: &str) -> Answer {
        self.post(
            &format!(
                "/solicitations/v1/orders/{order_id}/solicitations/productReviewAndSellerFeedback\
                 ?marketplaceIds={INDIA_MARKETPLACE}"
            ),
            token,
        )
        .await
    }

    /// Every page of a getOrders query, following `NextToken`.
    async fn all_pages(&self, first_query: &str, token: &str) -> Vec<Value> {
        let mut pages = vec![
            self.get(&format!("/orders/v0/orders?{first_query}"), token)
                .await,
        ];
        while let Some(next) = pages.last().unwrap().body["payload"]["NextToken"].as_str() {
            assert_eq!(pages.last().unwrap().status, 200);
            let next = url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
            let query = format!("MarketplaceIds={INDIA_MARKETPLACE}&NextToken={next}");
            pages.push(self.get(&format!("/orders/v0/orders?{query}"), token).await);
            assert!(pages.len() < 50, "paging does not end");
        }
        pages
            .into_iter()
            .map(|page| {
                assert_eq!(page.status, 200, "{}", page.body);
                page.body
            })
            .collect()
    }
}

fn query_value(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn iso(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

fn encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn assert_amazon_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let errors = answer.body["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 1, "{}", answer.body);
    assert_eq!(errors[0]["code"], code, "{}", answer.body);
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(errors[0]["details"], "");
}

fn assert_oauth_error(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert!(answer.body["error_description"].is_string());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

/// A Shipped India order delivered between `earliest` and `latest`.
fn shipped_order(order_id: &str, earliest: OffsetDateTime, latest: OffsetDateTime) -> SandboxOrder {
    SandboxOrder {
        order_id: order_id.to_owned(),
        purchase_date: earliest - Duration::days(3),
        last_update_date: None,
        status: OrderStatus::Shipped,
        fulfillment_channel: FulfillmentChannel::Mfn,
        marketplace_id: INDIA_MARKETPLACE.to_owned(),
        is_replacement_order: false,
        replaced_order_id: None,
        earliest_delivery_date: Some(earliest),
        latest_delivery_date: Some(latest),
        earliest_ship_date: Some(earliest - Duration::days(3)),
        latest_ship_date: Some(earliest - Duration::days(1)),
        order_total: Some(("INR".to_owned(), "799.00".to_owned())),
        items: vec![SandboxItem {
            order_item_id: "55500000000001".to_owned(),
            asin: "B0SBXKURTA".to_owned(),
            seller_sku: "KURTA-BLU-M".to_owned(),
            title: "Cotton Kurta for Women, Blue, M".to_owned(),
            quantity: 1,
            item_price: "799.00".to_owned(),
        }],
    }
}

const EARLIEST: OffsetDateTime = datetime!(2025-02-10 12:00 UTC);
const LATEST: OffsetDateTime = datetime!(2025-02-13 12:00 UTC);
const TEST_ORDER: &str = "403-5550001-0000001";

// ---------------------------------------------------------------- LWA and consent

#[tokio::test]
async fn the_consent_page_redirects_with_state_seller_and_code() {
    let s = setup().await;
    let (status, location, _) = s
        .consent(&[
            ("application_id", APP_ID),
            ("state", "csrf-42"),
            ("redirect_uri", REDIRECT),
            ("version", "beta"),
        ])
        .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    assert_eq!(query_value(&location, "state").as_deref(), Some("csrf-42"));
    assert_eq!(
        query_value(&location, "selling_partner_id").as_deref(),
        Some(DEMO_SELLER_ID)
    );
    assert!(query_value(&location, "spapi_oauth_code").is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn the_consent_page_refuses_unusable_requests_with_a_400_page() {
    let s = setup().await;
    let refused = [
        vec![
            ("application_id", "amzn1.sp.solution.other"),
            ("state", "s"),
            ("redirect_uri", REDIRECT),
        ],
        vec![("application_id", APP_ID), ("redirect_uri", REDIRECT)],
        vec![("application_id", APP_ID), ("state", "s")],
        vec![
            ("application_id", APP_ID),
            ("state", "s"),
            ("redirect_uri", "not a url"),
        ],
        vec![
            ("application_id", APP_ID),
            ("state", "s"),
            ("redirect_uri", REDIRECT),
            ("seller", "A0NOSUCHSELLER"),
        ],
    ];
    for query in refused {
        let (status, location, page) = s.consent(&query).await;
        assert_eq!(status, 400, "{query:?}");
        assert!(location.is_none(), "{query:?}");
        assert!(page.contains("<h1>"), "{page}");
    }
}

#[tokio::test]
async fn the_consent_page_lets_a_test_pick_the_seller() {
    let mut config = SandboxConfig::demo(CLIENT_ID, CLIENT_SECRET, APP_ID);
    config.sellers.push(SandboxSeller {
        selling_partner_id: "A2SECONDSELLER9".to_owned(),
        marketplace_id: INDIA_MARKETPLACE.to_owned(),
        orders: Vec::new(),
    });
    let s = setup_with(config).await;
    let (status, location, _) = s
        .consent(&[
            ("application_id", APP_ID),
            ("state", "s"),
            ("redirect_uri", REDIRECT),
            ("seller", "A2SECONDSELLER9"),
        ])
        .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert_eq!(
        query_value(&location, "selling_partner_id").as_deref(),
        Some("A2SECONDSELLER9")
    );

    // The tokens are that seller's: the demo seller's orders are not theirs.
    let code = query_value(&location, "spapi_oauth_code").unwrap();
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    let demo_order = &s.sandbox.orders(DEMO_SELLER_ID)[0].order_id;
    let token = tokens.body["access_token"].as_str().unwrap();
    let answer = s
        .get(&format!("/orders/v0/orders/{demo_order}"), token)
        .await;
    assert_amazon_error(&answer, 404, "NotFound");
}

#[tokio::test]
async fn a_code_exchanges_once_for_tokens_that_refresh() {
    let s = setup().await;
    let code = s.code().await;
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let body = &tokens.body;
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["access_token", "token_type", "expires_in", "refresh_token"])
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("Atza|"), "{access}");
    assert!(refresh.starts_with("Atzr|"), "{refresh}");

    // The access token is the demo seller's.
    let order_id = &s.sandbox.orders(DEMO_SELLER_ID)[0].order_id;
    let answer = s
        .get(&format!("/orders/v0/orders/{order_id}"), access)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Single use.
    let again = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    assert_oauth_error(&again, 400, "invalid_grant");

    // Refreshing gives a new access token and the same refresh token back.
    let refreshed = s.refresh(refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.header("cache-control"), Some("no-store"));
    assert_eq!(refreshed.body["refresh_token"], refresh);
    assert_eq!(refreshed.body["token_type"], "bearer");
    assert_eq!(refreshed.body["expires_in"], 3600);
    let new_access = refreshed.body["access_token"].as_str().unwrap();
    assert!(new_access.starts_with("Atza|") && new_access != access);
    let answer = s
        .get(&format!("/orders/v0/orders/{order_id}"), new_access)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn the_token_endpoint_answers_oauth_errors() {
    let s = setup().await;
    let code = s.code().await;

    let wrong_secret = s.exchange(&code, REDIRECT, "wrong-secret").await;
    assert_oauth_error(&wrong_secret, 401, "invalid_client");
    let other_redirect = s
        .exchange(&code, "http://127.0.0.1:9/elsewhere", CLIENT_SECRET)
        .await;
    assert_oauth_error(&other_redirect, 400, "invalid_grant");
    let unknown_code = s
        .exchange("SANDBOXnot-a-code", REDIRECT, CLIENT_SECRET)
        .await;
    assert_oauth_error(&unknown_code, 400, "invalid_grant");
    let unknown_refresh = s.refresh("Atzr|not-a-refresh-token").await;
    assert_oauth_error(&unknown_refresh, 400, "invalid_grant");

    let unsupported = s
        .lwa(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_oauth_error(&unsupported, 400, "unsupported_grant_type");
    let no_grant = s
        .lwa(&[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)])
        .await;
    assert_oauth_error(&no_grant, 400, "invalid_request");
    let no_code = s
        .lwa(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_oauth_error(&no_code, 400, "invalid_request");
    let json_body = s
        .http
        .post(format!("{}/auth/o2/token", s.base))
        .json(&json!({ "grant_type": "refresh_token" }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(&into_answer(json_body).await, 400, "invalid_request");

    // None of the refusals spent the code.
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
}

#[tokio::test]
async fn a_code_expires_after_five_minutes() {
    let s = setup().await;
    let start = datetime!(2025-03-01 10:00 UTC);
    s.sandbox.set_now(start);
    let fresh = s.code().await;
    let stale = s.code().await;
    s.sandbox.set_now(start + Duration::minutes(4));
    assert_eq!(
        s.exchange(&fresh, REDIRECT, CLIENT_SECRET).await.status,
        200
    );
    s.sandbox.set_now(start + Duration::minutes(5));
    let expired = s.exchange(&stale, REDIRECT, CLIENT_SECRET).await;
    assert_oauth_error(&expired, 400, "invalid_grant");
}

#[tokio::test]
async fn revoked_refresh_tokens_get_invalid_grant_until_the_seller_consents_again() {
    let s = setup().await;
    let code = s.code().await;
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    let refresh = tokens.body["refresh_token"].as_str().unwrap();
    s.sandbox.revoke_refresh_tokens(DEMO_SELLER_ID);
    assert_oauth_error(&s.refresh(refresh).await, 400, "invalid_grant");

    let code = s.code().await;
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    let new_refresh = tokens.body["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh(new_refresh).await.status, 200);
    assert_oauth_error(&s.refresh(refresh).await, 400, "invalid_grant");
}

#[tokio::test]
async fn lwa_faults_answer_as_told_and_a_lost_answer_still_spends_the_code() {
    let s = setup().await;
    let refresh = s.sandbox.authorize(DEMO_SELLER_ID).unwrap().refresh_token;
    s.sandbox
        .fail_next(Operation::LwaToken, Fault::LwaError("invalid_grant"), 1);
    s.sandbox
        .fail_next(Operation::LwaToken, Fault::LwaError("invalid_client"), 1);
    s.sandbox
        .fail_next(Operation::LwaToken, Fault::Status(503), 1);
    assert_oauth_error(&s.refresh(&refresh).await, 400, "invalid_grant");
    assert_oauth_error(&s.refresh(&refresh).await, 401, "invalid_client");
    assert_eq!(s.refresh(&refresh).await.status, 503);
    assert_eq!(s.refresh(&refresh).await.status, 200);

    let code = s.code().await;
    s.sandbox
        .fail_next(Operation::LwaToken, Fault::ProcessThenFail(500), 1);
    assert_eq!(s.exchange(&code, REDIRECT, CLIENT_SECRET).await.status, 500);
    let retry = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    assert_oauth_error(&retry, 400, "invalid_grant");
}

#[tokio::test]
async fn every_request_is_recorded_without_secrets_or_tokens() {
    let s = setup().await;
    let code = s.code().await;
    let tokens = s.exchange(&code, REDIRECT, CLIENT_SECRET).await;
    let access = tokens.body["access_token"].as_str().unwrap();
    let refresh = tokens.body["refresh_token"].as_str().unwrap();
    let wrong = s.exchange(&code, REDIRECT, "wrong-secret").await;
    assert_eq!(wrong.status, 401);
    // A secret sent in the query string is not kept either.
    let in_query = s
        .http
        .post(format!(
            "{}/auth/o2/token?client_secret={CLIENT_SECRET}&refresh_token={}",
            s.base,
            encoded(refresh)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 400);
    let order = s.get("/orders/v0/orders/402-0000000-0000000", access).await;
    assert_eq!(order.status, 404);

    let requests = s.sandbox.requests();
    let summary: Vec<(&str, &str, u16)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("GET", "/apps/authorize/consent", 302),
            ("POST", "/auth/o2/token", 200),
            ("POST", "/auth/o2/token", 401),
            ("POST", "/auth/o2/token", 400),
            ("GET", "/orders/v0/orders/402-0000000-0000000", 404),
        ]
    );
    assert!(
        requests[0].query.contains("state=st"),
        "{}",
        requests[0].query
    );
    assert!(requests[3].query.contains("client_secret=REDACTED"));
    let everything = serde_json::to_string(&requests).unwrap();
    for secret in [CLIENT_SECRET, access, refresh, code.as_str()] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into {everything}"
        );
    }
}

// ---------------------------------------------------------------- SP-API access

#[tokio::test]
async fn sp_api_calls_need_a_live_access_token() {
    let s = setup().await;
    let order_id = s.sandbox.orders(DEMO_SELLER_ID)[0].order_id.clone();
    let path = format!("/orders/v0/orders/{order_id}");
    let expected = json!({ "errors": [{
        "code": "Unauthorized",
        "message": "Access to requested resource is denied.",
        "details": "",
    }]});

    let missing = s.sp(reqwest::Method::GET, &path, None).await;
    let unknown = s.get(&path, "Atza|made-up").await;
    let start = datetime!(2025-03-01 10:00 UTC);
    let token = s.token_at(start);
    assert_eq!(s.get(&path, &token).await.status, 200);
    s.sandbox.set_now(start + Duration::seconds(3_600));
    let expired = s.get(&path, &token).await;
    for answer in [missing, unknown, expired] {
        assert_eq!(answer.status, 403);
        assert_eq!(answer.body, expected);
        assert!(
            answer
                .header("x-amzn-requestid")
                .is_some_and(|id| id.len() == 36)
        );
        assert_eq!(answer.header("x-amzn-ratelimit-limit"), Some("0.5"));
    }
}

#[tokio::test]
async fn over_the_burst_amazon_answers_429_quota_exceeded() {
    let s = setup().await;
    let token = s.sandbox.authorize(DEMO_SELLER_ID).unwrap().access_token;
    let order_id = s.sandbox.orders(DEMO_SELLER_ID)[0].order_id.clone();

    // getSolicitationActionsForOrder: 1 per second, burst 5.
    for _ in 0..5 {
        let answer = s.actions(&order_id, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-amzn-ratelimit-limit"), Some("1.0"));
    }
    let throttled = s.actions(&order_id, &token).await;
    assert_eq!(
        throttled.body,
        json!({ "errors": [{
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }]})
    );
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("x-amzn-ratelimit-limit"), Some("1.0"));

    // getOrders: 0.0167 per second, burst 20.
    let after = encoded(&iso(s.sandbox.now() - Duration::days(1)));
    let query =
        format!("/orders/v0/orders?MarketplaceIds={INDIA_MARKETPLACE}&LastUpdatedAfter={after}");
    for _ in 0..20 {
        let answer = s.get(&query, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-amzn-ratelimit-limit"), Some("0.0167"));
    }
    assert_amazon_error(&s.get(&query, &token).await, 429, "QuotaExceeded");
    let statuses: Vec<u16> = s.sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|&&st| st == 429).count(), 2);
}

#[tokio::test]
async fn a_throttled_solicitation_is_recorded_but_not_sent() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let token = s.token_at(EARLIEST + Duration::days(10));
    s.sandbox
        .set_rate_limit(Operation::CreateSolicitation, 1.0, 1);

    // Another order first uses up the bucket (and is refused: it is not in the window).
    let other = s.sandbox.orders(DEMO_SELLER_ID)[0].order_id.clone();
    assert_eq!(s.solicit(&other, &token).await.status, 403);
    let throttled = s.solicit(TEST_ORDER, &token).await;
    assert_amazon_error(&throttled, 429, "QuotaExceeded");
    assert_eq!(throttled.header("x-amzn-ratelimit-limit"), Some("1.0"));

    let recorded = s.sandbox.solicitations();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (recorded[1].order_id.as_str(), recorded[1].status),
        (TEST_ORDER, 429)
    );
    assert!(!s.sandbox.is_solicited(DEMO_SELLER_ID, TEST_ORDER));
}

// ---------------------------------------------------------------- Orders API

#[tokio::test]
async fn get_orders_pages_through_orders_updated_since_the_date_in_update_order() {
    let s = setup_unlimited().await;
    let token = s.sandbox.authorize(DEMO_SELLER_ID).unwrap().access_token;
    let now = s.sandbox.now();
    let since = now - Duration::days(30);
    let query = format!(
        "MarketplaceIds={INDIA_MARKETPLACE}&LastUpdatedAfter={}&MaxResultsPerPage=40",
        encoded(&iso(since))
    );
    let pages = s.all_pages(&query, &token).await;

    let expected: Vec<String> = s
        .sandbox
        .orders(DEMO_SELLER_ID)
        .into_iter()
        .filter(|o| o.last_update_date.unwrap() >= since)
        .map(|o| o.order_id)
        .collect();
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(pages.len(), expected.len().div_ceil(40));

    let mut seen = Vec::new();
    let mut previous = String::new();
    for (i, page) in pages.iter().enumerate() {
        let payload = &page["payload"];
        let orders = payload["Orders"].as_array().unwrap();
        assert!(orders.len() <= 40);
        assert_eq!(payload["NextToken"].is_string(), i + 1 < pages.len());
        let before = payload["LastUpdatedBefore"].as_str().unwrap();
        assert!(before.ends_with('Z'));
        for order in orders {
            let updated = order["LastUpdateDate"].as_str().unwrap().to_owned();
            assert!(updated >= previous, "sorted by LastUpdateDate");
            assert!(updated.as_str() <= before);
            previous = updated;
            seen.push(order["AmazonOrderId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn get_orders_writes_orders_as_amazon_does() {
    let s = setup_unlimited().await;
    let token = s.sandbox.authorize(DEMO_SELLER_ID).unwrap().access_token;
    let after = encoded(&iso(s.sandbox.now() - Duration::days(61)));
    let query = format!("MarketplaceIds={INDIA_MARKETPLACE}&CreatedAfter={after}");
    let pages = s.all_pages(&query, &token).await;
    assert_eq!(pages.len(), 3);
    assert!(pages[0]["payload"]["CreatedBefore"].is_string());
    let orders: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["payload"]["Orders"].as_array().unwrap())
        .collect();
    assert_eq!(orders.len(), 300);

    let shipped = orders
        .iter()
        .find(|o| o["OrderStatus"] == "Shipped")
        .unwrap();
    for field in [
        "AmazonOrderId",
        "PurchaseDate",
        "LastUpdateDate",
        "OrderStatus",
        "FulfillmentChannel",
        "SalesChannel",
        "OrderTotal",
        "NumberOfItemsShipped",
        "NumberOfItemsUnshipped",
        "IsReplacementOrder",
        "MarketplaceId",
        "EarliestShipDate",
        "LatestShipDate",
        "EarliestDeliveryDate",
        "LatestDeliveryDate",
        "OrderType",
        "IsPrime",
        "IsBusinessOrder",
    ] {
        assert!(
            shipped.get(field).is_some(),
            "{field} missing from {shipped}"
        );
    }
    assert_eq!(shipped["SalesChannel"], "Amazon.in");
    assert_eq!(shipped["MarketplaceId"], INDIA_MARKETPLACE);
    assert_eq!(shipped["OrderTotal"]["CurrencyCode"], "INR");
    let purchase = shipped["PurchaseDate"].as_str().unwrap();
    assert!(OffsetDateTime::parse(purchase, &Rfc3339).is_ok() && purchase.ends_with('Z'));
    let id = shipped["AmazonOrderId"].as_str().unwrap();
    assert!(id.starts_with("40") && id.len() == 19, "{id}");

    let replacement = orders
        .iter()
        .find(|o| o["IsReplacementOrder"] == true)
        .unwrap();
    assert!(replacement["ReplacedOrderId"].is_string());
    for status in ["Pending", "Unshipped", "Canceled"] {
        assert!(
            orders.iter().any(|o| o["OrderStatus"] == status),
            "{status}"
        );
    }
    for channel in ["AFN", "MFN"] {
        assert!(
            orders.iter().any(|o| o["FulfillmentChannel"] == channel),
            "{channel}"
        );
    }
}

#[tokio::test]
async fn get_orders_refuses_what_amazon_refuses() {
    let s = setup_unlimited().await;
    let token = s.token_at(datetime!(2025-03-01 10:00 UTC));
    let at = |minutes_ago: i64| {
        encoded(&iso(
            datetime!(2025-03-01 10:00 UTC) - Duration::minutes(minutes_ago)
        ))
    };
    let m = format!("MarketplaceIds={INDIA_MARKETPLACE}");
    let refused = [
        format!("LastUpdatedAfter={}", at(60)),
        m.clone(),
        format!("{m}&LastUpdatedAfter={}&CreatedAfter={}", at(60), at(60)),
        format!("{m}&LastUpdatedAfter=yesterday"),
        format!("{m}&LastUpdatedAfter={}", at(1)),
        format!("{m}&CreatedAfter={}", at(1)),
        format!(
            "{m}&LastUpdatedAfter={}&LastUpdatedBefore={}",
            at(60),
            at(1)
        ),
        format!(
            "{m}&LastUpdatedAfter={}&LastUpdatedBefore={}",
            at(60),
            at(90)
        ),
        format!("{m}&LastUpdatedAfter={}&CreatedBefore={}", at(60), at(30)),
        format!("{m}&LastUpdatedAfter={}&MaxResultsPerPage=0", at(60)),
        format!("{m}&LastUpdatedAfter={}&MaxResultsPerPage=101", at(60)),
        format!("{m}&LastUpdatedAfter={}&MaxResultsPerPage=ten", at(60)),
        format!("{m}&NextToken=not-a-token"),
    ];
    for query in refused {
        let answer = s.get(&format!("/orders/v0/orders?{query}"), &token).await;
        assert_amazon_error(&answer, 400, "InvalidInput");
    }
    // Two minutes before now is the latest "after" Amazon accepts.
    let accepted = s
        .get(
            &format!("/orders/v0/orders?{m}&LastUpdatedAfter={}", at(2)),
            &token,
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let accepted = s
        .get(
            &format!(
                "/orders/v0/orders?{m}&LastUpdatedAfter={}&MaxResultsPerPage=100",
                at(3)
            ),
            &token,
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}

#[tokio::test]
async fn an_order_updated_in_the_last_two_minutes_shows_once_the_horizon_passes() {
    let s = setup_unlimited().await;
    let start = datetime!(2025-03-01 10:00 UTC);
    let token = s.token_at(start);
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    assert_eq!(
        s.sandbox
            .order(DEMO_SELLER_ID, TEST_ORDER)
            .unwrap()
            .last_update_date,
        Some(start)
    );
    let query = format!(
        "/orders/v0/orders?MarketplaceIds={INDIA_MARKETPLACE}&LastUpdatedAfter={}",
        encoded(&iso(start - Duration::minutes(10)))
    );
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["payload"]["Orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["AmazonOrderId"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = s.get(&query, &token).await;
    assert_eq!(first.status, 200);
    assert!(ids(&first).is_empty());
    assert_eq!(
        first.body["payload"]["LastUpdatedBefore"],
        "2025-03-01T09:58:00Z"
    );

    s.sandbox.set_now(start + Duration::minutes(2));
    let later = s.get(&query, &token).await;
    assert_eq!(ids(&later), vec![TEST_ORDER.to_owned()]);

    // Another marketplace sees nothing.
    let other = s
        .get(&query.replace(INDIA_MARKETPLACE, "ATVPDKIKX0DER"), &token)
        .await;
    assert!(ids(&other).is_empty());
}

#[tokio::test]
async fn get_order_and_get_order_items_answer_the_sellers_order_or_404() {
    let s = setup().await;
    let token = s.sandbox.authorize(DEMO_SELLER_ID).unwrap().access_token;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));

    let order = s
        .get(&format!("/orders/v0/orders/{TEST_ORDER}"), &token)
        .await;
    assert_eq!(order.status, 200, "{}", order.body);
    assert_eq!(order.header("content-type"), Some("application/json"));
    let payload = &order.body["payload"];
    assert_eq!(payload["AmazonOrderId"], TEST_ORDER);
    assert_eq!(payload["OrderStatus"], "Shipped");
    assert_eq!(payload["EarliestDeliveryDate"], "2025-02-10T12:00:00Z");
    assert_eq!(payload["LatestDeliveryDate"], "2025-02-13T12:00:00Z");
    assert_eq!(
        payload["OrderTotal"],
        json!({ "CurrencyCode": "INR", "Amount": "799.00" })
    );

    let items = s
        .get(
            &format!("/orders/v0/orders/{TEST_ORDER}/orderItems"),
            &token,
        )
        .await;
    assert_eq!(items.status, 200, "{}", items.body);
    assert_eq!(
        items.body,
        json!({ "payload": {
            "AmazonOrderId": TEST_ORDER,
            "OrderItems": [{
                "ASIN": "B0SBXKURTA",
                "SellerSKU": "KURTA-BLU-M",
                "OrderItemId": "55500000000001",
                "Title": "Cotton Kurta for Women, Blue, M",
                "QuantityOrdered": 1,
                "QuantityShipped": 1,
                "ItemPrice": { "CurrencyCode": "INR", "Amount": "799.00" },
            }],
        }})
    );

    for path in [
        "/orders/v0/orders/402-9999999-9999999",
        "/orders/v0/orders/402-9999999-9999999/orderItems",
    ] {
        assert_amazon_error(&s.get(path, &token).await, 404, "NotFound");
    }
}

// ---------------------------------------------------------------- Amazon's static sandbox

const FIXTURES: [(&str, &str); 5] = [
    (
        include_str!("../fixtures/ordersV0.getOrders.sandbox.json"),
        "getOrders",
    ),
    (
        include_str!("../fixtures/ordersV0.getOrder.sandbox.json"),
        "getOrder",
    ),
    (
        include_str!("../fixtures/ordersV0.ALL_operations.sandbox.json"),
        "getOrderItems",
    ),
    (
        include_str!("../fixtures/solicitations.getSolicitationActionsForOrder.sandbox.json"),
        "getSolicitationActionsForOrder",
    ),
    (
        include_str!(
            "../fixtures/solicitations.createProductReviewAndSellerFeedbackSolicitation.sandbox.json"
        ),
        "createProductReviewAndSellerFeedbackSolicitation",
    ),
];

/// The operation object of a fixture file (which holds one, or an array of them).
fn fixture_operation(text: &str, operation_id: &str) -> Value {
    let file: Value = serde_json::from_str(text).unwrap();
    let entries = match file {
        Value::Array(entries) => entries,
        entry => vec![entry],
    };
    entries
        .into_iter()
        .find(|e| e["operationId"] == operation_id)
        .unwrap()
}

/// The request a static case describes: its path parameters in the path, the others in the
/// query (arrays comma-separated).
fn static_request(path_template: &str, parameters: &serde_json::Map<String, Value>) -> String {
    let mut path = path_template.to_owned();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, parameter) in parameters {
        let value = match &parameter["value"] {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(","),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let placeholder = format!("{{{name}}}");
        if path.contains(&placeholder) {
            path = path.replace(&placeholder, &value);
        } else {
            query.append_pair(name, &value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

#[tokio::test]
async fn every_static_case_is_answered_exactly_as_the_fixture_says_for_any_token() {
    let s = setup().await;
    let mut checked = 0;
    for (text, operation_id) in FIXTURES {
        let operation = fixture_operation(text, operation_id);
        let method: reqwest::Method = operation["method"].as_str().unwrap().parse().unwrap();
        let path = operation["path"].as_str().unwrap();
        for (status, block) in operation["x-amzn-api-sandbox_by_status"]
            .as_object()
            .unwrap()
        {
            for case in block["static"].as_array().unwrap() {
                let parameters = case["request"]["parameters"].as_object().unwrap();
                let request = static_request(path, parameters);
                let answer = s.sp(method.clone(), &request, Some(ANY_TOKEN)).await;
                assert_eq!(answer.status.to_string(), *status, "{request}");
                assert_eq!(answer.body, case["response"], "{request}");
                assert!(answer.header("x-amzn-ratelimit-limit").is_some());
                assert!(answer.header("x-amzn-requestid").is_some());
                checked += 1;
            }
        }
    }
    // getOrders 4, getOrder 3, getOrderItems 2, solicitations 1 + 1.
    assert_eq!(checked, 11);
}

#[tokio::test]
async fn the_documented_static_examples_work_and_still_need_a_token() {
    let s = setup().await;
    let get_orders = fixture_operation(FIXTURES[0].0, "getOrders");
    let answer = s
        .get(
            "/orders/v0/orders?CreatedAfter=TEST_CASE_200&MarketplaceIds=ATVPDKIKX0DER",
            ANY_TOKEN,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        get_orders["x-amzn-api-sandbox_by_status"]["200"]["static"][0]["response"]
    );

    let actions = fixture_operation(FIXTURES[3].0, "getSolicitationActionsForOrder");
    let answer = s
        .get(
            "/solicitations/v1/orders/123-1234567-1234567?marketplaceIds=ATVPDKIKX0DER",
            ANY_TOKEN,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/hal+json"));
    assert_eq!(
        answer.body,
        actions["x-amzn-api-sandbox_by_status"]["200"]["static"][0]["response"]
    );

    let no_token = s
        .sp(
            reqwest::Method::GET,
            "/solicitations/v1/orders/123-1234567-1234567?marketplaceIds=ATVPDKIKX0DER",
            None,
        )
        .await;
    assert_amazon_error(&no_token, 403, "Unauthorized");
}

#[tokio::test]
async fn the_static_solicitation_is_created_every_time_and_recorded() {
    let s = setup().await;
    let create = fixture_operation(
        FIXTURES[4].0,
        "createProductReviewAndSellerFeedbackSolicitation",
    );
    let expected = &create["x-amzn-api-sandbox_by_status"]["201"]["static"][0]["response"];
    for _ in 0..2 {
        let answer = s
            .post(
                "/solicitations/v1/orders/123-1234567-1234567/solicitations/\
                 productReviewAndSellerFeedback?marketplaceIds=ATVPDKIKX0DER",
                ANY_TOKEN,
            )
            .await;
        assert_eq!(answer.status, 201);
        assert_eq!(&answer.body, expected);
        assert_eq!(answer.body, json!({}));
    }
    let recorded = s.sandbox.solicitations();
    assert_eq!(recorded.len(), 2);
    for r in recorded {
        assert_eq!(
            (r.order_id.as_str(), r.marketplace_id.as_str(), r.status),
            ("123-1234567-1234567", "ATVPDKIKX0DER", 201)
        );
    }
}

// ---------------------------------------------------------------- Solicitations API

#[tokio::test]
async fn the_review_window_opens_on_day_5_after_earliest_delivery_and_closes_after_day_30() {
    let s = setup_unlimited().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let action_href = format!(
        "/solicitations/v1/orders/{TEST_ORDER}/solicitations/productReviewAndSellerFeedback\
         ?marketplaceIds={INDIA_MARKETPLACE}"
    );
    let self_href =
        format!("/solicitations/v1/orders/{TEST_ORDER}?marketplaceIds={INDIA_MARKETPLACE}");
    let expected_links = json!({ "_links": {
        "actions": [{ "href": action_href, "name": "productReviewAndSellerFeedback" }],
        "self": { "href": self_href },
    }});
    let mut no_actions = expected_links.clone();
    no_actions["_links"]["actions"] = json!([]);

    let cases = [
        (EARLIEST + Duration::days(4), false),
        (EARLIEST + Duration::days(5) - Duration::seconds(1), false),
        (EARLIEST + Duration::days(5), true),
        (LATEST + Duration::days(30), true),
        (LATEST + Duration::days(30) + Duration::seconds(1), false),
        (LATEST + Duration::days(31), false),
    ];
    for (now, eligible) in cases {
        let token = s.token_at(now);
        let answer = s.actions(TEST_ORDER, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/hal+json"));
        let expected = if eligible {
            &expected_links
        } else {
            &no_actions
        };
        assert_eq!(&answer.body, expected, "at {now}");
    }

    // Outside the window a solicitation is refused with Amazon's 403.
    let token = s.token_at(LATEST + Duration::days(31));
    assert_amazon_error(&s.solicit(TEST_ORDER, &token).await, 403, "Unauthorized");
    let token = s.token_at(EARLIEST + Duration::days(4));
    assert_amazon_error(&s.solicit(TEST_ORDER, &token).await, 403, "Unauthorized");
    assert!(!s.sandbox.is_solicited(DEMO_SELLER_ID, TEST_ORDER));
}

#[tokio::test]
async fn an_unshipped_order_offers_no_solicitation() {
    let s = setup().await;
    let mut order = shipped_order(TEST_ORDER, EARLIEST, LATEST);
    order.status = OrderStatus::Unshipped;
    s.sandbox.upsert_order(DEMO_SELLER_ID, order);
    let token = s.token_at(EARLIEST + Duration::days(10));
    let answer = s.actions(TEST_ORDER, &token).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["_links"]["actions"], json!([]));
    assert_amazon_error(&s.solicit(TEST_ORDER, &token).await, 403, "Unauthorized");
}

#[tokio::test]
async fn solicitations_need_marketplace_ids_and_a_known_order() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let token = s.token_at(EARLIEST + Duration::days(10));
    let missing = s
        .get(&format!("/solicitations/v1/orders/{TEST_ORDER}"), &token)
        .await;
    assert_amazon_error(&missing, 400, "InvalidInput");
    assert_amazon_error(
        &s.actions("402-9999999-9999999", &token).await,
        404,
        "NotFound",
    );
    assert_amazon_error(
        &s.solicit("402-9999999-9999999", &token).await,
        404,
        "NotFound",
    );
    let other_marketplace = s
        .get(
            &format!("/solicitations/v1/orders/{TEST_ORDER}?marketplaceIds=ATVPDKIKX0DER"),
            &token,
        )
        .await;
    assert_amazon_error(&other_marketplace, 404, "NotFound");
}

#[tokio::test]
async fn a_solicitation_is_sent_once_and_the_second_request_gets_403() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let now = EARLIEST + Duration::days(10);
    let token = s.token_at(now);

    let first = s.solicit(TEST_ORDER, &token).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body, json!({}));
    assert!(first.header("x-amzn-requestid").is_some());
    assert_eq!(first.header("x-amzn-ratelimit-limit"), Some("1.0"));
    assert!(s.sandbox.is_solicited(DEMO_SELLER_ID, TEST_ORDER));

    let second = s.solicit(TEST_ORDER, &token).await;
    assert_amazon_error(&second, 403, "Unauthorized");
    let actions = s.actions(TEST_ORDER, &token).await;
    assert_eq!(actions.body["_links"]["actions"], json!([]));

    let recorded = s.sandbox.solicitations();
    let summary: Vec<(&str, &str, u16)> = recorded
        .iter()
        .map(|r| (r.order_id.as_str(), r.marketplace_id.as_str(), r.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            (TEST_ORDER, INDIA_MARKETPLACE, 201),
            (TEST_ORDER, INDIA_MARKETPLACE, 403)
        ]
    );
    assert!(recorded.iter().all(|r| r.at == now));
}

#[tokio::test]
async fn a_lost_answer_still_sends_the_solicitation_once() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let token = s.token_at(EARLIEST + Duration::days(10));
    s.sandbox.fail_next(
        Operation::CreateSolicitation,
        Fault::ProcessThenFail(500),
        1,
    );

    let lost = s.solicit(TEST_ORDER, &token).await;
    assert_amazon_error(&lost, 500, "InternalFailure");
    assert!(s.sandbox.is_solicited(DEMO_SELLER_ID, TEST_ORDER));
    let recorded = s.sandbox.solicitations();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].order_id.as_str(), recorded[0].status),
        (TEST_ORDER, 500)
    );

    // A retry finds it already sent.
    assert_amazon_error(&s.solicit(TEST_ORDER, &token).await, 403, "Unauthorized");
}

#[tokio::test]
async fn a_status_fault_answers_without_sending() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let token = s.token_at(EARLIEST + Duration::days(10));
    s.sandbox
        .fail_next(Operation::CreateSolicitation, Fault::Status(503), 2);
    s.sandbox
        .fail_next(Operation::GetOrder, Fault::Status(500), 1);

    for _ in 0..2 {
        assert_amazon_error(&s.solicit(TEST_ORDER, &token).await, 503, "InternalFailure");
    }
    assert!(!s.sandbox.is_solicited(DEMO_SELLER_ID, TEST_ORDER));
    assert_eq!(s.solicit(TEST_ORDER, &token).await.status, 201);
    let statuses: Vec<u16> = s.sandbox.solicitations().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 201]);

    let path = format!("/orders/v0/orders/{TEST_ORDER}");
    assert_amazon_error(&s.get(&path, &token).await, 500, "InternalFailure");
    assert_eq!(s.get(&path, &token).await.status, 200);
}

// ---------------------------------------------------------------- local routes and handle

#[tokio::test]
async fn local_routes_list_solicitations_and_requests_as_json() {
    let s = setup().await;
    s.sandbox
        .upsert_order(DEMO_SELLER_ID, shipped_order(TEST_ORDER, EARLIEST, LATEST));
    let token = s.token_at(EARLIEST + Duration::days(10));
    assert_eq!(s.solicit(TEST_ORDER, &token).await.status, 201);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let app = local_routes(s.sandbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let body: Value = s
        .http
        .get(format!("{local}/_local/amazon/solicitations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "items": [{
            "order_id": TEST_ORDER,
            "marketplace_id": INDIA_MARKETPLACE,
            "status": 201,
            "at": "2025-02-20T12:00:00Z",
        }]})
    );

    let body: Value = s
        .http
        .get(format!("{local}/_local/amazon/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0].as_object().unwrap();
    let keys: HashSet<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from(["method", "path", "query", "status", "at"])
    );
    assert_eq!(item["method"], "POST");
    assert_eq!(item["query"], format!("marketplaceIds={INDIA_MARKETPLACE}"));
    assert_eq!(item["status"], 201);
    assert!(OffsetDateTime::parse(item["at"].as_str().unwrap(), &Rfc3339).is_ok());
}

#[tokio::test]
async fn the_handle_adds_and_replaces_orders_and_shares_state_between_clones() {
    let s = setup().await;
    assert_eq!(s.sandbox.orders(DEMO_SELLER_ID).len(), 300);
    let clone = s.sandbox.clone();
    let pinned = datetime!(2025-03-01 10:00 UTC);
    clone.set_now(pinned);
    assert_eq!(s.sandbox.now(), pinned);

    let given = datetime!(2025-02-01 00:00 UTC);
    let mut order = shipped_order(TEST_ORDER, EARLIEST, LATEST);
    order.last_update_date = Some(given);
    clone.upsert_order(DEMO_SELLER_ID, order.clone());
    assert_eq!(
        s.sandbox.order(DEMO_SELLER_ID, TEST_ORDER),
        Some(order.clone())
    );

    order.status = OrderStatus::Canceled;
    order.last_update_date = None;
    s.sandbox.upsert_order(DEMO_SELLER_ID, order);
    let stored = clone.order(DEMO_SELLER_ID, TEST_ORDER).unwrap();
    assert_eq!(stored.status, OrderStatus::Canceled);
    assert_eq!(stored.last_update_date, Some(pinned));
    assert_eq!(s.sandbox.orders(DEMO_SELLER_ID).len(), 301);
    assert!(
        s.sandbox
            .order(DEMO_SELLER_ID, "402-0000000-0000000")
            .is_none()
    );
    assert!(s.sandbox.authorize("A0NOSUCHSELLER").is_err());
}

// ---------------------------------------------------------------- Reports API: settlements

/// The sandbox clock of the settlement tests: the demo orders are placed before it too.
const SETTLED_NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);
const SETTLEMENT_TYPE: &str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2";

/// The demo seller with orders and clock at [`SETTLED_NOW`], no rate limits in the way, and a
/// token.
async fn setup_settled() -> (Setup, String) {
    let s = setup_with(SandboxConfig::demo_at(
        CLIENT_ID,
        CLIENT_SECRET,
        APP_ID,
        SETTLED_NOW,
    ))
    .await;
    for operation in SP_API_OPERATIONS {
        s.sandbox.set_rate_limit(operation, 1_000.0, 1_000);
    }
    let token = s.token_at(SETTLED_NOW);
    (s, token)
}

fn reports_query(extra: &str) -> String {
    format!(
        "/reports/2021-06-30/reports?reportTypes={SETTLEMENT_TYPE}&processingStatuses=DONE{extra}"
    )
}

/// An amount of the flat file in paise: `-12.30` → -1230.
fn paise(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap();
    assert_eq!(fraction.len(), 2, "{text}");
    let value = whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap();
    if negative { -value } else { value }
}

impl Setup {
    async fn download(&self, url: &str) -> (u16, Vec<u8>) {
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn document(&self, document_id: &str, token: &str) -> Answer {
        self.get(
            &format!("/reports/2021-06-30/documents/{document_id}"),
            token,
        )
        .await
    }
}

#[test]
fn the_demo_settlements_are_three_consecutive_fortnights_before_now() {
    let files = demo_settlement_files(SETTLED_NOW);
    let periods: Vec<(OffsetDateTime, OffsetDateTime)> =
        files.iter().map(|f| (f.start, f.end)).collect();
    assert_eq!(
        periods,
        [
            (
                datetime!(2025-05-18 00:00 UTC),
                datetime!(2025-06-01 00:00 UTC)
            ),
            (
                datetime!(2025-06-01 00:00 UTC),
                datetime!(2025-06-15 00:00 UTC)
            ),
            (
                datetime!(2025-06-15 00:00 UTC),
                datetime!(2025-06-29 00:00 UTC)
            ),
        ]
    );
    let ids: Vec<&str> = files.iter().map(|f| f.settlement_id.as_str()).collect();
    assert_eq!(ids, ["24000202400", "24000202541", "24000202682"]);
    assert_eq!(
        files.iter().map(|f| f.gzip).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(SETTLEMENT_REPORT_TYPE, SETTLEMENT_TYPE);
    assert_eq!(
        files[1].underpaid_order_id.as_deref(),
        Some("406-1791148-1120526")
    );
    assert_eq!(
        files[2].refunded_order_id.as_deref(),
        Some("406-7630381-5879102")
    );
}

#[tokio::test]
async fn settlement_reports_are_listed_newest_first_and_paged_with_the_next_token_alone() {
    let (s, token) = setup_settled().await;
    let expected = demo_settlement_files(SETTLED_NOW);
    assert_eq!(s.sandbox.settlements(DEMO_SELLER_ID), expected);

    let mut pages = vec![s.get(&reports_query("&pageSize=1"), &token).await];
    while let Some(next) = pages.last().unwrap().body["nextToken"].as_str() {
        let next = encoded(next);
        // Amazon: with a nextToken, any other parameter is refused.
        let mixed = s
            .get(&reports_query(&format!("&nextToken={next}")), &token)
            .await;
        assert_amazon_error(&mixed, 400, "InvalidInput");
        pages.push(
            s.get(
                &format!("/reports/2021-06-30/reports?nextToken={next}"),
                &token,
            )
            .await,
        );
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages.len(), 3);
    let mut listed = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.header("x-amzn-ratelimit-limit"), Some("1000.0"));
        let reports = page.body["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 1);
        listed.push(reports[0].clone());
    }
    let newest_first: Vec<&DemoSettlement> = expected.iter().rev().collect();
    for (report, settlement) in listed.iter().zip(newest_first) {
        assert_eq!(report["reportId"], settlement.report_id.as_str());
        assert_eq!(report["reportType"], SETTLEMENT_TYPE);
        assert_eq!(report["processingStatus"], "DONE");
        assert_eq!(report["marketplaceIds"], json!([INDIA_MARKETPLACE]));
        assert_eq!(report["dataStartTime"], iso(settlement.start));
        assert_eq!(report["dataEndTime"], iso(settlement.end));
        assert_eq!(report["createdTime"], iso(settlement.created));
        assert_eq!(
            report["reportDocumentId"],
            settlement.report_document_id.as_str()
        );
    }

    // One page of 100 holds them all; the default page is 10.
    for extra in ["&pageSize=100", ""] {
        let all = s.get(&reports_query(extra), &token).await;
        assert_eq!(all.body["reports"].as_array().unwrap().len(), 3);
        assert!(all.body.get("nextToken").is_none());
    }
    // Other report types, statuses or marketplaces: none.
    for query in [
        "/reports/2021-06-30/reports?reportTypes=GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        &reports_query("&processingStatuses=FATAL").replace("processingStatuses=DONE&", ""),
        &reports_query("&marketplaceIds=ATVPDKIKX0DER"),
    ] {
        let none = s.get(query, &token).await;
        assert_eq!(none.status, 200, "{query}: {}", none.body);
        assert_eq!(none.body, json!({ "reports": [] }), "{query}");
    }
}

#[tokio::test]
async fn created_since_picks_the_newer_settlement_reports() {
    let (s, token) = setup_settled().await;
    let files = demo_settlement_files(SETTLED_NOW);
    let listed = |answer: &Answer| -> Vec<String> {
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reportId"].as_str().unwrap().to_owned())
            .collect()
    };
    let since = |at: OffsetDateTime| format!("&createdSince={}", encoded(&iso(at)));

    let newer = s
        .get(&reports_query(&since(files[1].created)), &token)
        .await;
    assert_eq!(
        listed(&newer),
        [files[2].report_id.clone(), files[1].report_id.clone()]
    );
    let none = s
        .get(
            &reports_query(&since(files[2].created + Duration::seconds(1))),
            &token,
        )
        .await;
    assert!(listed(&none).is_empty());
    let until = format!("&createdUntil={}", encoded(&iso(files[0].created)));
    let oldest = s.get(&reports_query(&until), &token).await;
    assert_eq!(listed(&oldest), [files[0].report_id.clone()]);
    // The periods follow the sandbox clock (they end before its now).
    s.sandbox.set_now(SETTLED_NOW + Duration::days(100));
    let moved = s.sandbox.settlements(DEMO_SELLER_ID);
    assert_eq!(moved.len(), 3);
    assert!(moved[0].start > files[2].end);
}

#[tokio::test]
async fn get_reports_refuses_what_amazon_refuses() {
    let (s, token) = setup_settled().await;
    for query in [
        "/reports/2021-06-30/reports".to_owned(),
        "/reports/2021-06-30/reports?processingStatuses=DONE".to_owned(),
        "/reports/2021-06-30/reports?reportTypes=".to_owned(),
        format!(
            "/reports/2021-06-30/reports?reportTypes={}",
            ["A"; 11].join(",")
        ),
        reports_query("&pageSize=0"),
        reports_query("&pageSize=101"),
        reports_query("&pageSize=ten"),
        reports_query("&processingStatuses=FINISHED"),
        reports_query("&createdSince=yesterday"),
        reports_query("&createdUntil=2025-13-01T00:00:00Z"),
        reports_query("&createdSince=2025-06-02T00:00:00Z&createdUntil=2025-06-01T00:00:00Z"),
        "/reports/2021-06-30/reports?nextToken=made-up".to_owned(),
    ] {
        let answer = s.get(&query, &token).await;
        assert_amazon_error(&answer, 400, "InvalidInput");
        assert!(answer.header("x-amzn-requestid").is_some(), "{query}");
    }
    let missing = s.sp(reqwest::Method::GET, &reports_query(""), None).await;
    assert_amazon_error(&missing, 403, "Unauthorized");
    let unknown_document = s.document("amzn1.spdoc.1.4.eu.nothing", &token).await;
    assert_amazon_error(&unknown_document, 404, "NotFound");
}

#[tokio::test]
async fn get_reports_and_get_report_document_have_amazon_s_rate_limits() {
    let s = setup_with(SandboxConfig::demo_at(
        CLIENT_ID,
        CLIENT_SECRET,
        APP_ID,
        SETTLED_NOW,
    ))
    .await;
    let token = s.token_at(SETTLED_NOW);
    // getReports: 0.0222 per second, burst 10.
    for _ in 0..10 {
        let answer = s.get(&reports_query(""), &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-amzn-ratelimit-limit"), Some("0.0222"));
    }
    assert_amazon_error(
        &s.get(&reports_query(""), &token).await,
        429,
        "QuotaExceeded",
    );
    // getReportDocument: 0.0167 per second, burst 15.
    let document = &demo_settlement_files(SETTLED_NOW)[0].report_document_id;
    for _ in 0..15 {
        let answer = s.document(document, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-amzn-ratelimit-limit"), Some("0.0167"));
    }
    assert_amazon_error(&s.document(document, &token).await, 429, "QuotaExceeded");
}

#[tokio::test]
async fn a_report_document_is_a_presigned_url_to_the_exact_file_gzipped_when_it_says_so() {
    let (s, token) = setup_settled().await;
    let files = demo_settlement_files(SETTLED_NOW);
    for file in &files {
        let answer = s.document(&file.report_document_id, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.body["reportDocumentId"],
            file.report_document_id.as_str()
        );
        let url = answer.body["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/_documents/", s.base)), "{url}");
        let expected_keys: HashSet<&str> = if file.gzip {
            assert_eq!(answer.body["compressionAlgorithm"], "GZIP");
            HashSet::from(["reportDocumentId", "url", "compressionAlgorithm"])
        } else {
            HashSet::from(["reportDocumentId", "url"])
        };
        let keys: HashSet<&str> = answer
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected_keys);

        // The presigned URL needs no access token.
        let (status, bytes) = s.download(url).await;
        assert_eq!(status, 200);
        let text = if file.gzip {
            assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzip magic");
            let mut text = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut text)
                .unwrap();
            text
        } else {
            String::from_utf8(bytes).unwrap()
        };
        assert_eq!(text, file.tsv);
    }

    // A signature the sandbox did not issue, or for another document: S3's 403.
    let answer = s.document(&files[0].report_document_id, &token).await;
    let url = answer.body["url"].as_str().unwrap().to_owned();
    let forged = format!("{}x", url);
    let (status, body) = s.download(&forged).await;
    assert_eq!(status, 403);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("<Code>AccessDenied</Code>")
    );
    let other = url.replace(&files[0].report_document_id, &files[2].report_document_id);
    assert_eq!(s.download(&other).await.0, 403);
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(s.download(&unsigned).await.0, 403);
    // A fault answers S3's error; the next download works again.
    s.sandbox
        .fail_next(Operation::DownloadReportDocument, Fault::Status(500), 1);
    assert_eq!(s.download(&url).await.0, 500);
    assert_eq!(s.download(&url).await.0, 200);
    // Five minutes later the URL has expired.
    s.sandbox.set_now(SETTLED_NOW + Duration::minutes(6));
    let (status, body) = s.download(&url).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8(body).unwrap().contains("expired"));

    // The signature is a credential: the record keeps it out.
    let downloads: Vec<_> = s
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/_documents/"))
        .collect();
    assert!(!downloads.is_empty());
    let signature = query_value(&url::Url::parse(&url).unwrap(), "X-Amz-Signature").unwrap();
    for request in downloads {
        assert!(!request.query.contains(&signature), "{}", request.query);
    }
}

/// One detail row of a flat file, by column name.
struct Row<'a>(HashMap<&'a str, &'a str>);

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.0[column]
    }
    fn paise(&self) -> i64 {
        paise(self.get("amount"))
    }
    fn is_item_price(&self) -> bool {
        self.get("amount-type") == "ItemPrice"
    }
}

#[tokio::test]
async fn each_demo_settlement_adds_up_and_pays_the_shipped_demo_orders_exactly() {
    let (s, token) = setup_settled().await;
    let files = demo_settlement_files(SETTLED_NOW);

    // What getOrders says the orders are.
    let created_after = encoded(&iso(SETTLED_NOW - Duration::days(61)));
    let query = format!("MarketplaceIds={INDIA_MARKETPLACE}&CreatedAfter={created_after}");
    let mut orders: HashMap<String, Value> = HashMap::new();
    for page in s.all_pages(&query, &token).await {
        for order in page["payload"]["Orders"].as_array().unwrap() {
            let id = order["AmazonOrderId"].as_str().unwrap().to_owned();
            orders.insert(id, order.clone());
        }
    }
    assert_eq!(orders.len(), 300);
    let underpaid = files[1].underpaid_order_id.clone().unwrap();
    let refunded = files[2].refunded_order_id.clone().unwrap();
    let mut sold_in: HashMap<String, usize> = HashMap::new();

    for (index, file) in files.iter().enumerate() {
        let lines: Vec<&str> = file.tsv.lines().collect();
        assert!(file.tsv.ends_with('\n') && !file.tsv.contains('\r'));
        let header: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(header, SETTLEMENT_HEADER);
        let summary: Vec<&str> = lines[1].split('\t').collect();
        assert_eq!(summary.len(), 24);
        assert_eq!(summary[0], file.settlement_id);
        assert_eq!(summary[0].len(), 11);
        assert!(summary[0].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            summary[1],
            file.start.format(&Rfc3339).unwrap().replace('Z', "+00:00")
        );
        assert_eq!(
            summary[2],
            file.end.format(&Rfc3339).unwrap().replace('Z', "+00:00")
        );
        assert!(summary[3].ends_with("T00:00:00+00:00"));
        assert_eq!(summary[5], "INR");
        assert!(summary[6..].iter().all(|f| f.is_empty()));

        let rows: Vec<Row> = lines[2..]
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 24, "{line}");
                assert_eq!(fields[0], file.settlement_id);
                assert!(fields[1..6].iter().all(|f| f.is_empty()), "{line}");
                Row(header.iter().copied().zip(fields).collect())
            })
            .collect();
        // The total is the exact sum of the detail amounts.
        let total: i64 = rows.iter().map(Row::paise).sum();
        assert_eq!(paise(summary[4]), total);
        assert_eq!(file.total_paise, total);

        let mut by_order: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut storage_fees = 0;
        for row in &rows {
            let posted = OffsetDateTime::parse(row.get("posted-date-time"), &Rfc3339).unwrap();
            assert!(row.get("posted-date-time").ends_with("+00:00"));
            assert_eq!(row.get("posted-date"), &row.get("posted-date-time")[..10]);
            assert!(
                (file.start..file.end).contains(&posted),
                "posted in the period"
            );
            assert_eq!(row.get("marketplace-name"), "Amazon.in");
            let principal = row.is_item_price() && row.get("amount-description") == "Principal";
            assert_eq!(!row.get("quantity-purchased").is_empty(), principal);
            match row.get("transaction-type") {
                "Order" => {
                    let entry = by_order.entry(row.get("order-id")).or_default();
                    if row.is_item_price() {
                        entry.0 += row.paise();
                    }
                    assert!(!row.get("sku").is_empty());
                }
                "Refund" => {
                    assert_eq!(row.get("order-id"), refunded);
                    let entry = by_order.entry(row.get("order-id")).or_default();
                    if row.is_item_price() {
                        entry.1 += row.paise();
                    }
                }
                "other-transaction" => {
                    assert_eq!(row.get("order-id"), "");
                    assert_eq!(row.get("amount-description"), "Storage Fee");
                    storage_fees += 1;
                }
                other => panic!("unexpected transaction type {other}"),
            }
        }
        assert_eq!(storage_fees, usize::from(index == 2));

        // An order's lines are contiguous.
        let mut seen: Vec<&str> = Vec::new();
        for row in &rows {
            let id = row.get("order-id");
            if !id.is_empty() && seen.last() != Some(&id) {
                assert!(!seen.contains(&id), "{id} comes back later");
                seen.push(id);
            }
        }

        for (order_id, (sold, refund)) in by_order {
            let order = &orders[order_id];
            let order_total = paise(order["OrderTotal"]["Amount"].as_str().unwrap());
            if refund != 0 {
                assert_eq!(refund, -order_total, "{order_id} refunded in full");
                assert_eq!(sold_in.get(order_id), Some(&0));
                continue;
            }
            assert_eq!(order["OrderStatus"], "Shipped", "{order_id}");
            let purchase =
                OffsetDateTime::parse(order["PurchaseDate"].as_str().unwrap(), &Rfc3339).unwrap();
            assert!((file.start..file.end).contains(&purchase));
            let expected = if order_id == underpaid {
                order_total - 100
            } else {
                order_total
            };
            assert_eq!(sold, expected, "{order_id}");
            assert!(sold_in.insert(order_id.to_owned(), index).is_none());
        }
    }

    // Every shipped, paid demo order of the three periods is in its period's settlement.
    for (id, order) in &orders {
        let purchase =
            OffsetDateTime::parse(order["PurchaseDate"].as_str().unwrap(), &Rfc3339).unwrap();
        let paid = order["OrderTotal"]["Amount"]
            .as_str()
            .is_some_and(|amount| paise(amount) > 0);
        let in_periods = (files[0].start..files[2].end).contains(&purchase);
        let shipped = order["OrderStatus"] == "Shipped";
        assert_eq!(
            sold_in.contains_key(id),
            in_periods && shipped && paid,
            "{id}"
        );
    }
    assert!(sold_in.len() > 100, "{}", sold_in.len());
    assert_ne!(underpaid, refunded);
}

#[tokio::test]
async fn local_routes_list_the_demo_settlements_and_serve_their_files() {
    let (s, _) = setup_settled().await;
    let files = demo_settlement_files(SETTLED_NOW);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let app = local_routes(s.sandbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let body: Value = s
        .http
        .get(format!("{local}/_local/amazon/settlements"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["settlementId"], files[1].settlement_id.as_str());
    assert_eq!(items[1]["gzip"], true);
    assert_eq!(
        items[1]["underpaidOrderId"],
        files[1].underpaid_order_id.as_deref().unwrap()
    );
    assert_eq!(
        items[2]["refundedOrderId"],
        files[2].refunded_order_id.as_deref().unwrap()
    );
    let (status, tsv) = s
        .download(&format!(
            "{local}/_local/amazon/settlements/{}",
            files[1].settlement_id
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(tsv).unwrap(), files[1].tsv);
    let (status, _) = s
        .download(&format!("{local}/_local/amazon/settlements/12345678901"))
        .await;
    assert_eq!(status, 404);
}

#[test]
fn the_project_s_parser_reads_each_demo_settlement_and_finds_it_reconciles() {
    for file in demo_settlement_files(SETTLED_NOW) {
        let mut orders = HashSet::new();
        let parsed = ecomdrive_core::settlement::parse_settlement(file.tsv.as_bytes(), |sums| {
            orders.insert(sums.order_id);
        })
        .unwrap_or_else(|rejection| panic!("{}: {rejection:?}", file.settlement_id));
        assert!(
            parsed.reconciles,
            "{}: {}",
            file.settlement_id, parsed.difference
        );
        assert_eq!(parsed.summary.settlement_id.as_str(), file.settlement_id);
        assert_eq!(parsed.summary.currency, "INR");
        assert_eq!(parsed.summary.start, Some(file.start));
        assert_eq!(parsed.summary.end, Some(file.end));
        assert_eq!(
            parsed.summary.total_amount.to_string(),
            file.tsv.lines().nth(1).unwrap().split('\t').nth(4).unwrap()
        );
        assert_eq!(parsed.detail_lines, file.tsv.lines().count() as u64 - 2);
        assert_eq!(parsed.marketplace.as_deref(), Some("Amazon.in"));
        if let Some(underpaid) = &file.underpaid_order_id {
            assert!(orders.contains(underpaid));
        }
        if let Some(refunded) = &file.refunded_order_id {
            assert!(orders.contains(refunded));
        }
    }
}
