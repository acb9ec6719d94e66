//! The Amazon client against a tiny LWA + SP-API shaped server on loopback: the consent URL, token
//! exchange and caching, request shapes, Amazon's own order JSON, retries, errors, and that no token
//! or secret ever shows in an error.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ecomdrive_core::Secret;
use ecomdrive_platforms::{
    AllowList, AmazonClient, AmazonConfig, INDIA_MARKETPLACE_ID, LoopbackPorts, Money, OrdersQuery,
    OutboundHttp, PlatformError, RetryPolicy, Timeouts, consent_url,
};
use serde_json::{Value, json};
use time::macros::datetime;
use tokio::net::TcpListener;

const CLIENT_ID: &str = "amzn1.application-oa2-client.fake";
const CLIENT_SECRET: &str = "amzn1.oa2-cs.v1.fake-client-secret";
const REFRESH_TOKEN: &str = "Atzr|IQEBLzAtAhRPpMJxdwVz2Nn6f2y-tpJX2DeXfake";
const REVOKED_REFRESH_TOKEN: &str = "Atzr|IQEBLzAtAhRevokedRevokedRevoked-fake";
const AUTH_CODE: &str = "ANDkxSBmzgmmvSNxwqWb";
/// Access tokens the fake LWA issues are this plus a counter.
const ACCESS_PREFIX: &str = "Atza|IQEBLjAsAhRmHjNgHpi0U-Dme37rR6CuUpSR-";
/// A NextToken with characters that must be URL-encoded.
const NEXT_TOKEN: &str = "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4+/=";
const REVIEW_PATH: &str =
    "/solicitations/v1/orders/402-1234567-1234567/solicitations/productReviewAndSellerFeedback";

/// One request as the fake Amazon saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
    headers: HeaderMap,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// An answer queued for a path, used before the path's normal answer.
struct Scripted {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

#[derive(Clone)]
struct Amazon {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<Scripted>>>>,
    issued: Arc<AtomicU64>,
    /// `expires_in` of the access tokens LWA gives.
    expires_in: u64,
}

impl Amazon {
    fn new(expires_in: u64) -> Self {
        Self {
            seen: Arc::default(),
            script: Arc::default(),
            issued: Arc::default(),
            expires_in,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    fn lwa_calls(&self) -> usize {
        self.seen_at("/auth/o2/token").len()
    }

    fn then(&self, path: &str, status: u16, headers: &[(&'static str, &str)], body: Value) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back(Scripted {
                status: StatusCode::from_u16(status).unwrap(),
                headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
                body,
            });
    }
}

fn pairs(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn amazon_errors(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    let body = json!({ "errors": [{ "code": code, "message": message, "details": details }] });
    (status, axum::Json(body)).into_response()
}

fn hal(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/hal+json")],
        body.to_string(),
    )
        .into_response()
}

/// Amazon's sandbox orders (ordersV0.json, getOrder's static 200 cases), copied as they are.
fn sandbox_orders() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/amazon-sandbox/fixtures/ordersV0.getOrder.sandbox.json"
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fixture["x-amzn-api-sandbox_by_status"]["200"]["static"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["response"]["payload"].clone())
        .collect()
}

/// Answers like LWA and the SP-API do, for the few endpoints the client uses.
async fn answer(
    State(amazon): State<Amazon>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: pairs(uri.query().unwrap_or_default()),
        form: pairs(std::str::from_utf8(&body).unwrap_or_default()),
        headers,
    };
    amazon.seen.lock().unwrap().push(seen.clone());

    if seen.path == "/auth/o2/token" {
        return lwa(&amazon, &seen.form);
    }
    if !seen.header("x-amz-access-token").starts_with(ACCESS_PREFIX) {
        return amazon_errors(
            StatusCode::FORBIDDEN,
            "Unauthorized",
            "Access to requested resource is denied.",
            "The access token you provided is revoked, malformed or invalid.",
        );
    }
    let scripted = amazon
        .script
        .lock()
        .unwrap()
        .get_mut(&seen.path)
        .and_then(VecDeque::pop_front);
    if let Some(reply) = scripted {
        let mut response = (reply.status, axum::Json(reply.body)).into_response();
        for (name, value) in reply.headers {
            let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }

    let param = |name: &str| seen.query.get(name).map(String::as_str);
    match (method, seen.path.as_str()) {
        (Method::GET, "/orders/v0/orders") => match param("NextToken") {
            None => axum::Json(json!({ "payload": {
                "Orders": [sandbox_orders()[0]],
                "NextToken": NEXT_TOKEN,
                "CreatedBefore": "1.569521782042E9"
            }}))
            .into_response(),
            Some(NEXT_TOKEN) => axum::Json(json!({ "payload": {
                "Orders": [sandbox_orders()[1]],
                "LastUpdatedBefore": "2026-03-01T09:58:00Z"
            }}))
            .into_response(),
            Some(_) => amazon_errors(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "Invalid NextToken",
                "",
            ),
        },
        (Method::GET, "/orders/v0/orders/402-1234567-1234567/orderItems") => {
            let (item, next) = match param("NextToken") {
                None => (
                    json!({ "ASIN": "B00551Q3CS", "OrderItemId": "05015851154158", "SellerSKU": "CHAI-250G",
                            "Title": "Masala chai 250 g", "QuantityOrdered": 2, "QuantityShipped": 0,
                            "ItemPrice": { "CurrencyCode": "INR", "Amount": "598.00" }, "IsGift": "false" }),
                    Some("ITEMS-2"),
                ),
                _ => (
                    json!({ "ASIN": "B0TEAPOT01", "OrderItemId": "05015851154159", "QuantityOrdered": 1 }),
                    None,
                ),
            };
            axum::Json(json!({ "payload": {
                "AmazonOrderId": "402-1234567-1234567", "OrderItems": [item], "NextToken": next
            }}))
            .into_response()
        }
        (Method::GET, "/solicitations/v1/orders/402-1234567-1234567") => hal(
            StatusCode::OK,
            json!({
                "_links": {
                    "actions": [{
                        "href": "/solicitations/v1/orders/402-1234567-1234567/solicitations/productReviewAndSellerFeedback?marketplaceIds=A21TJRUUN4KGV",
                        "name": "productReviewAndSellerFeedback"
                    }],
                    "self": { "href": "/solicitations/v1/orders/402-1234567-1234567?marketplaceIds=A21TJRUUN4KGV" }
                },
                "_embedded": { "actions": [{ "_links": { "schema": {
                    "href": "/solicitations/v1/orders/402-1234567-1234567/solicitations/productReviewAndSellerFeedback/schema",
                    "name": "productReviewAndSellerFeedback"
                }}}]}
            }),
        ),
        (Method::POST, REVIEW_PATH) => hal(StatusCode::CREATED, json!({})),
        _ => amazon_errors(StatusCode::NOT_FOUND, "NotFound", "Resource not found", ""),
    }
}

/// Login with Amazon's token endpoint.
fn lwa(amazon: &Amazon, form: &HashMap<String, String>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        let body = json!({ "error": "invalid_client", "error_description": "Client authentication failed" });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let granted = match field("grant_type") {
        "authorization_code" => field("code") == AUTH_CODE,
        "refresh_token" => field("refresh_token") == REFRESH_TOKEN,
        _ => false,
    };
    if !granted {
        // A (hypothetical) description repeating what it was sent.
        let description = format!(
            "The request has an invalid grant parameter : {}{}",
            field("refresh_token"),
            field("code")
        );
        let body = json!({ "error": "invalid_grant", "error_description": description });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let n = amazon.issued.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({
        "access_token": format!("{ACCESS_PREFIX}{n}"),
        "refresh_token": REFRESH_TOKEN,
        "token_type": "bearer",
        "expires_in": amazon.expires_in
    }))
    .into_response()
}

async fn serve(router: Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_throttle_wait: Duration::from_secs(2),
    }
}

/// A client whose LWA lives on `lwa_port` and SP-API on `spapi_port`.
fn client_on(lwa_port: u16, spapi_port: u16, total_timeout: Duration) -> AmazonClient {
    let http = OutboundHttp::new(
        AllowList::production().with_loopback(LoopbackPorts::Any),
        Timeouts {
            connect: Duration::from_secs(1),
            total: total_timeout,
        },
    )
    .unwrap();
    let config = AmazonConfig {
        lwa_token_url: format!("http://127.0.0.1:{lwa_port}/auth/o2/token"),
        spapi_base: format!("http://127.0.0.1:{spapi_port}"),
        consent_base: format!("http://127.0.0.1:{lwa_port}"),
        ..AmazonConfig::india(
            "amzn1.sp.solution.fake",
            CLIENT_ID,
            Secret::new(CLIENT_SECRET),
        )
    };
    AmazonClient::new(http, config)
        .unwrap()
        .with_retry_policy(fast_retries())
}

async fn fake_amazon_with(expires_in: u64) -> (AmazonClient, Amazon) {
    let state = Amazon::new(expires_in);
    let port = serve(Router::new().fallback(answer).with_state(state.clone())).await;
    (client_on(port, port, Duration::from_secs(5)), state)
}

async fn fake_amazon() -> (AmazonClient, Amazon) {
    fake_amazon_with(3600).await
}

fn refresh() -> Secret {
    Secret::new(REFRESH_TOKEN)
}

fn first_page() -> OrdersQuery {
    OrdersQuery {
        marketplace_ids: vec![INDIA_MARKETPLACE_ID.into()],
        last_updated_after: datetime!(2026-03-01 05:30:07.250 +05:30),
        next_token: None,
    }
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_consent_url_carries_the_app_state_and_redirect_encoded_and_beta_only_for_drafts() {
    let mut config = AmazonConfig::india(
        "amzn1.sp.solution.1a2b",
        CLIENT_ID,
        Secret::new(CLIENT_SECRET),
    );
    let redirect = "https://app.example.in/v1/integrations/amazon/callback?x=1&y=2";
    let url = consent_url(&config, "st&te=01JD/+", redirect);
    assert!(
        url.starts_with("https://sellercentral.amazon.in/apps/authorize/consent?"),
        "{url}"
    );
    // Encoded: the state's `&`, `=` and `/` cannot add or cut parameters.
    assert!(url.contains("state=st%26te%3D01JD%2F%2B"), "{url}");
    assert!(
        url.contains("redirect_uri=https%3A%2F%2Fapp.example.in%2Fv1%2Fintegrations%2Famazon%2Fcallback%3Fx%3D1%26y%3D2"),
        "{url}"
    );
    let parsed = url::Url::parse(&url).unwrap();
    let query: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        strings(&[
            ("application_id", "amzn1.sp.solution.1a2b"),
            ("state", "st&te=01JD/+"),
            ("redirect_uri", redirect),
        ])
    );
    assert!(!url.contains(CLIENT_SECRET) && !url.contains(CLIENT_ID));

    config.draft_app = true;
    let draft = url::Url::parse(&consent_url(&config, "s", redirect)).unwrap();
    let query: HashMap<String, String> = draft.query_pairs().into_owned().collect();
    assert_eq!(query["version"], "beta");
}

#[tokio::test]
async fn the_code_is_exchanged_with_the_documented_form_and_its_access_token_is_used() {
    let (amazon, fake) = fake_amazon().await;
    let redirect = "https://app.example.in/v1/integrations/amazon/callback";

    let refresh_token = amazon.exchange_code(AUTH_CODE, redirect).await.unwrap();
    assert_eq!(refresh_token.expose(), REFRESH_TOKEN);

    let exchange = &fake.seen()[0];
    assert_eq!(exchange.method, Method::POST);
    assert_eq!(exchange.path, "/auth/o2/token");
    assert!(exchange.query.is_empty(), "credentials travel in the body");
    assert!(
        exchange
            .header("content-type")
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(
        exchange.form,
        strings(&[
            ("grant_type", "authorization_code"),
            ("code", AUTH_CODE),
            ("redirect_uri", redirect),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );

    // The access token that came with the refresh token serves the first SP-API call.
    amazon
        .solicitation_actions(&refresh_token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();
    assert_eq!(fake.lwa_calls(), 1);
}

#[tokio::test]
async fn an_access_token_is_fetched_once_for_two_calls_and_sent_with_amazon_s_headers() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    amazon.get_orders(&token, &first_page()).await.unwrap();
    // A clone shares the cache.
    amazon
        .clone()
        .solicitation_actions(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();

    let seen = fake.seen();
    assert_eq!(fake.lwa_calls(), 1, "one LWA call for two SP-API calls");
    assert_eq!(
        seen[0].form,
        strings(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH_TOKEN),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );
    let expected_token = format!("{ACCESS_PREFIX}1");
    for call in &seen[1..] {
        assert_eq!(call.header("x-amz-access-token"), expected_token);
        assert_eq!(call.header("user-agent"), "EcomDrive/0.1.0 (Language=Rust)");
        assert!(call.header("authorization").is_empty());
    }
    assert_eq!(seen[1].header("accept"), "application/json");
    assert_eq!(seen[2].header("accept"), "application/hal+json");
}

#[tokio::test]
async fn an_access_token_within_a_minute_of_expiry_is_refreshed() {
    // Tokens that expire in 60 s are already inside the 60 s margin.
    let (amazon, fake) = fake_amazon_with(60).await;
    let token = refresh();
    let first = amazon.access_token(&token).await.unwrap();
    let second = amazon.access_token(&token).await.unwrap();
    assert_eq!(fake.lwa_calls(), 2);
    assert_ne!(first, second);
    assert_eq!(second.expose(), format!("{ACCESS_PREFIX}2"));
}

#[tokio::test]
async fn concurrent_callers_for_one_seller_share_one_lwa_call() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    let (a, b, c) = tokio::join!(
        amazon.access_token(&token),
        amazon.access_token(&token),
        amazon.access_token(&token)
    );
    assert_eq!(fake.lwa_calls(), 1);
    assert_eq!(a.unwrap(), b.unwrap());
    assert!(c.is_ok());
}

#[tokio::test]
async fn get_orders_sends_utc_times_and_follows_the_next_token_with_marketplaces_only() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    let mut query = first_page();
    query.marketplace_ids.push("A1F83G8C2ARO7P".into());

    let first = amazon.get_orders(&token, &query).await.unwrap();
    assert_eq!(first.next_token.as_deref(), Some(NEXT_TOKEN));
    assert_eq!(first.last_updated_before, None);
    assert_eq!(first.orders[0].amazon_order_id, "902-1845936-5435065");

    query.next_token = first.next_token;
    let second = amazon.get_orders(&token, &query).await.unwrap();
    assert_eq!(second.next_token, None);
    assert_eq!(
        second.last_updated_before,
        Some(datetime!(2026-03-01 09:58:00 UTC))
    );
    assert_eq!(second.orders[0].amazon_order_id, "921-3175655-0452641");

    let calls = fake.seen_at("/orders/v0/orders");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].query,
        strings(&[
            ("MarketplaceIds", "A21TJRUUN4KGV,A1F83G8C2ARO7P"),
            // 05:30:07.250 in India is 00:00:07 UTC, to the second.
            ("LastUpdatedAfter", "2026-03-01T00:00:07Z"),
            ("MaxResultsPerPage", "100"),
        ])
    );
    assert_eq!(
        calls[1].query,
        strings(&[
            ("MarketplaceIds", "A21TJRUUN4KGV,A1F83G8C2ARO7P"),
            ("NextToken", NEXT_TOKEN),
        ])
    );
}

#[tokio::test]
async fn amazon_s_sandbox_orders_parse_field_by_field() {
    let (amazon, _) = fake_amazon().await;
    let token = refresh();
    let mut query = first_page();
    let first = amazon.get_orders(&token, &query).await.unwrap();
    query.next_token = first.next_token;
    let second = amazon.get_orders(&token, &query).await.unwrap();

    let order = &first.orders[0];
    assert_eq!(order.amazon_order_id, "902-1845936-5435065");
    assert_eq!(order.purchase_date, datetime!(1970-01-19 03:58:30 UTC));
    assert_eq!(order.last_update_date, datetime!(1970-01-19 03:58:32 UTC));
    assert_eq!(order.order_status, "Unshipped");
    assert_eq!(order.fulfillment_channel.as_deref(), Some("MFN"));
    assert_eq!(order.sales_channel.as_deref(), Some("Amazon.com"));
    assert_eq!(order.marketplace_id.as_deref(), Some("ATVPDKIKX0DER"));
    assert_eq!(
        order.order_total,
        Some(Money {
            currency_code: "USD".into(),
            amount: "11.01".into()
        })
    );
    assert_eq!(order.is_replacement_order, Some(false));
    assert_eq!(order.replaced_order_id, None);
    assert_eq!(
        order.earliest_ship_date,
        Some(datetime!(1970-01-19 03:59:27 UTC))
    );
    assert_eq!(
        order.latest_ship_date,
        Some(datetime!(1970-01-19 04:05:13 UTC))
    );
    assert_eq!(
        order.earliest_delivery_date,
        Some(datetime!(1970-01-19 04:06:39 UTC))
    );
    assert_eq!(
        order.latest_delivery_date,
        Some(datetime!(1970-01-19 04:15:17 UTC))
    );
    assert_eq!(order.number_of_items_shipped, Some(0));
    assert_eq!(order.number_of_items_unshipped, Some(1));
    assert_eq!(order.order_type.as_deref(), Some("StandardOrder"));

    // The second case has fractional seconds and another marketplace.
    let iba = &second.orders[0];
    assert_eq!(iba.purchase_date, datetime!(2019-05-07 15:42:57.058 UTC));
    assert_eq!(iba.order_status, "Shipped");
    assert_eq!(iba.fulfillment_channel.as_deref(), Some("AFN"));
    assert_eq!(iba.order_total.as_ref().unwrap().currency_code, "EUR");
    assert_eq!(iba.number_of_items_shipped, Some(1));
}

#[tokio::test]
async fn order_items_follow_the_next_token() {
    let (amazon, fake) = fake_amazon().await;
    let items = amazon
        .get_order_items(&refresh(), "402-1234567-1234567")
        .await
        .unwrap();

    assert_eq!(items.len(), 2);
    assert_eq!(items[0].asin, "B00551Q3CS");
    assert_eq!(items[0].seller_sku.as_deref(), Some("CHAI-250G"));
    assert_eq!(items[0].order_item_id, "05015851154158");
    assert_eq!(items[0].title.as_deref(), Some("Masala chai 250 g"));
    assert_eq!(items[0].quantity_ordered, 2);
    assert_eq!(items[0].item_price.as_ref().unwrap().amount, "598.00");
    assert_eq!(items[1].asin, "B0TEAPOT01");
    assert_eq!(items[1].seller_sku, None);

    let calls = fake.seen_at("/orders/v0/orders/402-1234567-1234567/orderItems");
    assert_eq!(calls.len(), 2);
    assert!(calls[0].query.is_empty());
    assert_eq!(calls[1].query, strings(&[("NextToken", "ITEMS-2")]));
}

#[tokio::test]
async fn solicitation_actions_are_read_from_the_hal_links_and_the_review_is_requested() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    let actions = amazon
        .solicitation_actions(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();
    assert_eq!(actions, ["productReviewAndSellerFeedback"]);

    amazon
        .request_review(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();

    let get = &fake.seen_at("/solicitations/v1/orders/402-1234567-1234567")[0];
    assert_eq!(get.method, Method::GET);
    assert_eq!(get.query, strings(&[("marketplaceIds", "A21TJRUUN4KGV")]));
    let post = &fake.seen_at(REVIEW_PATH)[0];
    assert_eq!(post.method, Method::POST);
    assert_eq!(post.query, strings(&[("marketplaceIds", "A21TJRUUN4KGV")]));
}

#[tokio::test]
async fn a_429_is_waited_out_at_the_announced_rate_then_retried() {
    let (amazon, fake) = fake_amazon().await;
    let path = "/solicitations/v1/orders/402-1234567-1234567";
    // 10 requests a second: one request's share is 100 ms.
    fake.then(
        path,
        429,
        &[("x-amzn-RateLimit-Limit", "10.0")],
        json!({ "errors": [{ "code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource." }] }),
    );

    let started = Instant::now();
    let actions = amazon
        .solicitation_actions(&refresh(), "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();
    let waited = started.elapsed();

    assert_eq!(actions, ["productReviewAndSellerFeedback"]);
    assert_eq!(fake.seen_at(path).len(), 2, "one retry");
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}

#[tokio::test]
async fn a_throttled_review_request_is_retried_because_amazon_did_not_process_it() {
    let (amazon, fake) = fake_amazon().await;
    fake.then(
        REVIEW_PATH,
        429,
        &[("x-amzn-RateLimit-Limit", "50")],
        json!({ "errors": [{ "code": "QuotaExceeded", "message": "You exceeded your quota." }] }),
    );
    amazon
        .request_review(&refresh(), "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();
    assert_eq!(fake.seen_at(REVIEW_PATH).len(), 2);
}

#[tokio::test]
async fn a_throttled_get_orders_is_handed_back_instead_of_sleeping_a_minute() {
    let (amazon, fake) = fake_amazon().await;
    // No rate header: getOrders' documented 0.0167 requests a second is one a minute.
    fake.then(
        "/orders/v0/orders",
        429,
        &[],
        json!({ "errors": [{ "code": "QuotaExceeded", "message": "You exceeded your quota." }] }),
    );
    let started = Instant::now();
    let error = amazon
        .get_orders(&refresh(), &first_page())
        .await
        .unwrap_err();
    match error {
        PlatformError::RateLimited { retry_after_ms } => {
            assert!(
                (59_000..=61_000).contains(&retry_after_ms),
                "{retry_after_ms}"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.seen_at("/orders/v0/orders").len(), 1);
}

#[tokio::test]
async fn a_5xx_on_a_get_is_retried_with_backoff_until_the_attempts_run_out() {
    let (amazon, fake) = fake_amazon().await;
    let path = "/orders/v0/orders/402-1234567-1234567/orderItems";
    let failure = json!({ "errors": [{ "code": "InternalFailure", "message": "We encountered an internal error." }] });
    fake.then(path, 503, &[], failure.clone());
    fake.then(path, 500, &[], failure.clone());
    let items = amazon
        .get_order_items(&refresh(), "402-1234567-1234567")
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    // Two failures, then the two pages.
    assert_eq!(fake.seen_at(path).len(), 4);

    // Three failures in a row: the last one is the answer.
    for _ in 0..3 {
        fake.then(path, 500, &[], failure.clone());
    }
    let error = amazon
        .get_order_items(&refresh(), "402-1234567-1234567")
        .await
        .unwrap_err();
    match &error {
        PlatformError::SpApi {
            http_status, code, ..
        } => assert_eq!((*http_status, code.as_str()), (500, "InternalFailure")),
        other => panic!("expected SpApi, got {other:?}"),
    }
    assert_eq!(fake.seen_at(path).len(), 7);
}

#[tokio::test]
async fn a_5xx_on_the_review_request_is_not_retried_and_its_outcome_is_unknown() {
    let (amazon, fake) = fake_amazon().await;
    fake.then(
        REVIEW_PATH,
        503,
        &[],
        json!({ "errors": [{ "code": "ServiceUnavailable", "message": "Service temporarily unavailable." }] }),
    );
    let error = amazon
        .request_review(&refresh(), "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            PlatformError::SpApi {
                http_status: 503,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.outcome_unknown());
    assert_eq!(fake.seen_at(REVIEW_PATH).len(), 1, "sent once only");
}

#[tokio::test]
async fn a_review_request_that_times_out_is_not_retried_and_its_outcome_is_unknown() {
    let lwa = Amazon::new(3600);
    let lwa_port = serve(Router::new().fallback(answer).with_state(lwa)).await;
    let posts = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&posts);
    let slow = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::CREATED
        }
    });
    let slow_port = serve(slow).await;
    let amazon = client_on(lwa_port, slow_port, Duration::from_millis(300));

    let error = amazon
        .request_review(&refresh(), "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Timeout), "{error:?}");
    assert!(error.outcome_unknown());
    assert_eq!(posts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_review_request_that_could_not_connect_was_not_sent() {
    let lwa = Amazon::new(3600);
    let lwa_port = serve(Router::new().fallback(answer).with_state(lwa)).await;
    let amazon = client_on(lwa_port, closed_port().await, Duration::from_secs(2));
    let error = amazon
        .request_review(&refresh(), "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Connect(_)), "{error:?}");
    assert!(!error.outcome_unknown());
}

#[tokio::test]
async fn a_403_is_amazon_s_error_not_retried_and_the_token_is_refetched_next_time() {
    let (amazon, fake) = fake_amazon().await;
    let path = "/solicitations/v1/orders/402-1234567-1234567";
    fake.then(
        path,
        403,
        &[],
        json!({ "errors": [{ "code": "Unauthorized", "message": "Access to requested resource is denied.", "details": "The access token you provided has expired." }] }),
    );
    let token = refresh();
    let error = amazon
        .solicitation_actions(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap_err();
    match &error {
        PlatformError::SpApi {
            http_status,
            code,
            message,
        } => {
            assert_eq!((*http_status, code.as_str()), (403, "Unauthorized"));
            assert_eq!(
                message,
                "Access to requested resource is denied. (The access token you provided has expired.)"
            );
        }
        other => panic!("expected SpApi, got {other:?}"),
    }
    assert!(!error.outcome_unknown());
    assert_eq!(fake.seen_at(path).len(), 1, "not retried");

    amazon
        .solicitation_actions(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
        .await
        .unwrap();
    assert_eq!(fake.lwa_calls(), 2, "the refused token was forgotten");
    let last = fake.seen_at(path).pop().unwrap();
    assert_eq!(
        last.header("x-amz-access-token"),
        format!("{ACCESS_PREFIX}2")
    );
}

#[tokio::test]
async fn forget_access_token_makes_the_next_call_ask_lwa_again() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    amazon.access_token(&token).await.unwrap();
    amazon.forget_access_token(&token);
    amazon.access_token(&token).await.unwrap();
    assert_eq!(fake.lwa_calls(), 2);
}

#[tokio::test]
async fn a_revoked_refresh_token_is_lwa_s_invalid_grant_and_not_retried() {
    let (amazon, fake) = fake_amazon().await;
    let error = amazon
        .get_orders(&Secret::new(REVOKED_REFRESH_TOKEN), &first_page())
        .await
        .unwrap_err();
    match &error {
        PlatformError::Lwa {
            http_status,
            error,
            description,
        } => {
            assert_eq!((*http_status, error.as_str()), (400, "invalid_grant"));
            assert_eq!(
                description,
                "The request has an invalid grant parameter : ***"
            );
        }
        other => panic!("expected Lwa, got {other:?}"),
    }
    assert_eq!(fake.lwa_calls(), 1);
    assert!(fake.seen_at("/orders/v0/orders").is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_before_any_call() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    let no_marketplace = OrdersQuery {
        marketplace_ids: vec![],
        ..first_page()
    };
    for error in [
        amazon
            .get_orders(&token, &no_marketplace)
            .await
            .unwrap_err(),
        amazon
            .get_order_items(&token, "../../auth")
            .await
            .unwrap_err(),
        amazon
            .request_review(&token, "402-1234567-1234567", "A21TJ?x=1")
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(error, PlatformError::InvalidInput(_)), "{error:?}");
    }
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn policy_e14_amazon_errors_never_contain_tokens_or_secrets() {
    let (amazon, fake) = fake_amazon().await;
    let token = refresh();
    let mut errors = Vec::new();

    // LWA repeating the refresh token and the code it was sent.
    errors.push(
        amazon
            .access_token(&Secret::new(REVOKED_REFRESH_TOKEN))
            .await
            .unwrap_err(),
    );
    errors.push(
        amazon
            .exchange_code(
                "ANDkxSBmzgmmvSNxwqWbUsedAlreadyUsedAlready",
                "https://x.example/cb",
            )
            .await
            .unwrap_err(),
    );
    // The SP-API repeating the access token it was sent, in the message and the details.
    let access = amazon.access_token(&token).await.unwrap();
    fake.then(
        "/solicitations/v1/orders/402-1234567-1234567",
        400,
        &[],
        json!({ "errors": [{ "code": "InvalidInput", "message": format!("bad token {}", access.expose()), "details": access.expose() }] }),
    );
    errors.push(
        amazon
            .solicitation_actions(&token, "402-1234567-1234567", INDIA_MARKETPLACE_ID)
            .await
            .unwrap_err(),
    );
    // Throttled, unreachable and slow.
    fake.then("/orders/v0/orders", 429, &[], json!({ "errors": [] }));
    errors.push(amazon.get_orders(&token, &first_page()).await.unwrap_err());
    let closed = closed_port().await;
    errors.push(
        client_on(closed, closed, Duration::from_secs(2))
            .get_orders(&token, &first_page())
            .await
            .unwrap_err(),
    );
    let slow_port = serve(Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        "late"
    }))
    .await;
    errors.push(
        client_on(slow_port, slow_port, Duration::from_millis(200))
            .access_token(&token)
            .await
            .unwrap_err(),
    );

    let kinds: Vec<String> = errors
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["Lwa", "Lwa", "SpApi", "RateLimited", "Connect", "Timeout"]
    );
    for error in &errors {
        let text = format!("{error} | {error:?}");
        for secret in [
            REFRESH_TOKEN,
            REVOKED_REFRESH_TOKEN,
            CLIENT_SECRET,
            "ANDkxSBmzgmmvSNxwqWbUsedAlreadyUsedAlready",
            access.expose(),
            ACCESS_PREFIX,
        ] {
            assert!(!text.contains(secret), "{text} contains a secret");
        }
    }
}

#[tokio::test]
async fn policy_e11_amazon_off_the_allow_list_is_refused_at_start_up() {
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default()).unwrap();
    let india = || {
        AmazonConfig::india(
            "amzn1.sp.solution.fake",
            CLIENT_ID,
            Secret::new(CLIENT_SECRET),
        )
    };
    let bad_configs = [
        AmazonConfig {
            spapi_base: "https://sellingpartnerapi-eu.amazon.com.evil.com".into(),
            ..india()
        },
        AmazonConfig {
            lwa_token_url: "http://api.amazon.com/auth/o2/token".into(),
            ..india()
        },
        AmazonConfig {
            consent_base: "https://sellercentral.example.com".into(),
            ..india()
        },
    ];
    for config in bad_configs {
        let error = AmazonClient::new(http.clone(), config).unwrap_err();
        assert!(matches!(error, PlatformError::Refused(_)), "{error:?}");
    }
    assert!(AmazonClient::new(http, india()).is_ok());
}

// ---------------------------------------------------------------- Reports API: settlement reports

const REPORTS_PATH: &str = "/reports/2021-06-30/reports";
const DOCUMENT_ID: &str =
    "amzn1.spdoc.1.4.eu.46e350c8-1e6f-4cc4-8721-3165f5bd4744.T2ISMRNPULE4S7.107";
/// The signature of the presigned download URLs: a credential that must never show.
const SIGNATURE: &str = "f3a9c1d2e4b5a6978877665544332211presigned";

fn report_json(id: &str, created: &str) -> Value {
    json!({
        "reportType": "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2",
        "processingEndTime": "2026-03-16T02:10:00+00:00",
        "processingStatus": "DONE",
        "marketplaceIds": [INDIA_MARKETPLACE_ID],
        "reportDocumentId": format!("amzn1.spdoc.1.4.eu.{id}"),
        "reportId": id,
        "dataEndTime": "2026-03-15T00:00:00+00:00",
        "createdTime": created,
        "dataStartTime": "2026-03-01T00:00:00+00:00"
    })
}

#[tokio::test]
async fn settlement_reports_are_asked_with_amazon_s_filters_then_with_the_next_token_alone() {
    let (amazon, fake) = fake_amazon().await;
    fake.then(
        REPORTS_PATH,
        200,
        &[],
        json!({ "reports": [report_json("51234019876", "2026-03-16T02:04:32.123Z")], "nextToken": NEXT_TOKEN }),
    );
    fake.then(
        REPORTS_PATH,
        200,
        &[],
        json!({ "reports": [report_json("51234019875", "2026-03-02T02:04:32+00:00")] }),
    );
    fake.then(REPORTS_PATH, 200, &[], json!({ "reports": [] }));

    let since = datetime!(2026-01-01 05:30:07.250 +05:30);
    let first = amazon
        .get_settlement_reports(&refresh(), Some(since), None)
        .await
        .unwrap();
    assert_eq!(first.next_token.as_deref(), Some(NEXT_TOKEN));
    let report = &first.reports[0];
    assert_eq!(report.report_id, "51234019876");
    assert_eq!(
        report.report_type,
        "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
    );
    assert_eq!(report.created_time, datetime!(2026-03-16 02:04:32.123 UTC));
    assert_eq!(
        report.data_start_time,
        Some(datetime!(2026-03-01 00:00 UTC))
    );
    assert_eq!(report.data_end_time, Some(datetime!(2026-03-15 00:00 UTC)));
    assert_eq!(report.processing_status, "DONE");
    assert_eq!(
        report.report_document_id.as_deref(),
        Some("amzn1.spdoc.1.4.eu.51234019876")
    );

    let second = amazon
        .get_settlement_reports(&refresh(), Some(since), first.next_token.as_deref())
        .await
        .unwrap();
    assert_eq!(second.next_token, None);
    assert_eq!(second.reports[0].report_id, "51234019875");
    let empty = amazon
        .get_settlement_reports(&refresh(), None, None)
        .await
        .unwrap();
    assert_eq!(
        empty,
        ecomdrive_platforms::amazon::ReportsPage {
            reports: vec![],
            next_token: None
        }
    );

    let seen = fake.seen_at(REPORTS_PATH);
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.method == Method::GET));
    assert!(
        seen[0]
            .header("x-amz-access-token")
            .starts_with(ACCESS_PREFIX)
    );
    assert_eq!(
        seen[0].query,
        strings(&[
            ("reportTypes", "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"),
            ("processingStatuses", "DONE"),
            ("pageSize", "100"),
            ("createdSince", "2026-01-01T00:00:07Z"),
        ])
    );
    // Amazon: "call getReports with this token as the only parameter".
    assert_eq!(seen[1].query, strings(&[("nextToken", NEXT_TOKEN)]));
    // Without a date, Amazon's default (90 days back) applies.
    assert!(!seen[2].query.contains_key("createdSince"));
    assert_eq!(seen[2].query.len(), 3);
}

#[tokio::test]
async fn get_reports_errors_and_throttles_like_the_other_operations() {
    let (amazon, fake) = fake_amazon().await;
    fake.then(
        REPORTS_PATH,
        400,
        &[],
        json!({ "errors": [{ "code": "InvalidInput", "message": "pageSize must be an integer from 1 to 100" }] }),
    );
    let error = amazon
        .get_settlement_reports(&refresh(), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PlatformError::SpApi { http_status: 400, code, .. } if code == "InvalidInput"),
        "{error:?}"
    );
    // getReports allows one request in 45 s: a 429 is handed back, not slept.
    fake.then(REPORTS_PATH, 429, &[], json!({ "errors": [] }));
    let error = amazon
        .get_settlement_reports(&refresh(), None, None)
        .await
        .unwrap_err();
    match error {
        PlatformError::RateLimited { retry_after_ms } => {
            assert!(
                (45_000..=45_100).contains(&retry_after_ms),
                "{retry_after_ms}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_report_document_s_location_is_read_and_its_debug_hides_the_presigned_url() {
    let (amazon, fake) = fake_amazon().await;
    let path = format!("/reports/2021-06-30/documents/{DOCUMENT_ID}");
    let url = format!(
        "https://tortuga-prod-eu.s3-eu-west-1.amazonaws.com/%2FNinetyDays/amzn1.tortuga.4.eu.T3DLC2UAW3MUK6?X-Amz-Signature={SIGNATURE}"
    );
    fake.then(
        &path,
        200,
        &[],
        json!({ "reportDocumentId": DOCUMENT_ID, "url": url, "compressionAlgorithm": "GZIP" }),
    );
    fake.then(
        &path,
        200,
        &[],
        json!({ "reportDocumentId": DOCUMENT_ID, "url": url }),
    );
    let document = amazon
        .get_report_document(&refresh(), DOCUMENT_ID)
        .await
        .unwrap();
    assert_eq!(document.report_document_id, DOCUMENT_ID);
    assert_eq!(document.url, url);
    assert_eq!(document.compression_algorithm.as_deref(), Some("GZIP"));
    let debug = format!("{document:?}");
    assert!(debug.contains(DOCUMENT_ID), "{debug}");
    assert!(
        !debug.contains(SIGNATURE) && !debug.contains("tortuga"),
        "{debug}"
    );
    let plain = amazon
        .get_report_document(&refresh(), DOCUMENT_ID)
        .await
        .unwrap();
    assert_eq!(plain.compression_algorithm, None);
    let seen = fake.seen_at(&path);
    assert_eq!(seen.len(), 2);
    assert!(seen[0].query.is_empty());

    // The id goes into the path: one that could leave it is refused before any call.
    for bad in ["", "..", "../orders/v0/orders", "a/b", "a?b=1"] {
        let error = amazon
            .get_report_document(&refresh(), bad)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PlatformError::InvalidInput(_)),
            "{bad}: {error:?}"
        );
    }
    assert_eq!(
        fake.seen()
            .iter()
            .filter(|s| s.path.starts_with("/reports"))
            .count(),
        2
    );
}

/// An S3-like server for presigned downloads: `/plain`, `/gzip`, `/broken-gzip`, `/forbidden`,
/// `/failing`. Records the headers of every request.
#[derive(Clone, Default)]
struct DocumentStore {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

/// A settlement-like flat file of about `lines` lines.
fn flat_file(lines: usize) -> String {
    let mut text = String::from("settlement-id\tsettlement-start-date\ttotal-amount\tamount\n");
    for i in 0..lines {
        text.push_str(&format!("24000202682\t\t\t{}.{:02}\n", i % 5000, i % 100));
    }
    text
}

fn gzipped(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

async fn serve_document(
    State(store): State<DocumentStore>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    store.seen.lock().unwrap().push(headers);
    let s3_error = |status: StatusCode, code: &str| {
        (
            status,
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code></Error>"),
        )
            .into_response()
    };
    if !uri.query().unwrap_or_default().contains(SIGNATURE) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied");
    }
    match uri.path() {
        "/plain" => flat_file(50_000).into_response(),
        "/gzip" => gzipped(&flat_file(50_000)).into_response(),
        "/broken-gzip" => {
            let mut bytes = gzipped(&flat_file(1_000));
            bytes.truncate(bytes.len() / 2);
            bytes.into_response()
        }
        "/not-gzip" => flat_file(10).into_response(),
        "/failing" => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        _ => s3_error(StatusCode::NOT_FOUND, "NoSuchKey"),
    }
}

async fn document_store() -> (DocumentStore, u16) {
    let store = DocumentStore::default();
    let port = serve(
        Router::new()
            .fallback(serve_document)
            .with_state(store.clone()),
    )
    .await;
    (store, port)
}

fn document_at(port: u16, path: &str, gzip: bool) -> ecomdrive_platforms::amazon::ReportDocument {
    ecomdrive_platforms::amazon::ReportDocument {
        report_document_id: DOCUMENT_ID.into(),
        url: format!(
            "http://127.0.0.1:{port}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIGNATURE}"
        ),
        compression_algorithm: gzip.then(|| "GZIP".to_owned()),
    }
}

#[tokio::test]
async fn report_documents_stream_plain_or_gunzipped_and_without_the_access_token() {
    let (amazon, _fake) = fake_amazon().await;
    let (store, port) = document_store().await;
    // A token is cached: the download must still not send it.
    amazon.access_token(&refresh()).await.unwrap();
    let expected = flat_file(50_000);
    assert!(expected.len() > 1_000_000);

    let mut plain = Vec::new();
    let written = amazon
        .download_report_document(&document_at(port, "/plain", false), &mut plain)
        .await
        .unwrap();
    assert_eq!(written, expected.len() as u64);
    assert_eq!(plain, expected.as_bytes());

    let mut unzipped = Vec::new();
    let written = amazon
        .download_report_document(&document_at(port, "/gzip", true), &mut unzipped)
        .await
        .unwrap();
    assert_eq!(written, expected.len() as u64);
    assert_eq!(unzipped, expected.as_bytes());

    let seen = store.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for headers in seen {
        assert!(headers.get("x-amz-access-token").is_none());
        assert!(headers.get(header::REFERER).is_none());
    }
}

/// A sink that refuses to be written (a full disk).
struct FullDisk;

impl std::io::Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_broken_or_oversized_download_is_an_error_that_never_shows_the_url() {
    let (amazon, _fake) = fake_amazon().await;
    let (_store, port) = document_store().await;
    let mut errors = Vec::new();
    let mut sink = Vec::new();

    let forbidden = ecomdrive_platforms::amazon::ReportDocument {
        url: format!("http://127.0.0.1:{port}/plain?X-Amz-Signature=expired-or-forged"),
        ..document_at(port, "/plain", false)
    };
    let error = amazon
        .download_report_document(&forbidden, &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PlatformError::UnexpectedStatus(403)),
        "{error:?}"
    );
    errors.push(error);

    let error = amazon
        .download_report_document(&document_at(port, "/failing", false), &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PlatformError::UnexpectedStatus(500)),
        "{error:?}"
    );
    assert!(error.outcome_unknown());
    errors.push(error);

    for path in ["/broken-gzip", "/not-gzip"] {
        let error = amazon
            .download_report_document(&document_at(port, path, true), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(error, PlatformError::Decode(_)),
            "{path}: {error:?}"
        );
        errors.push(error);
    }

    let unknown = ecomdrive_platforms::amazon::ReportDocument {
        compression_algorithm: Some("ZSTD".into()),
        ..document_at(port, "/plain", false)
    };
    let error = amazon
        .download_report_document(&unknown, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Decode(_)), "{error:?}");
    errors.push(error);

    let error = amazon
        .download_report_document(&document_at(port, "/plain", false), &mut FullDisk)
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Transport(_)), "{error:?}");
    errors.push(error);

    // The cap: the body (plain), or what the gzip stream expands to, past the limit.
    let capped = amazon.clone().with_report_document_limit(200_000);
    let compressed_size = gzipped(&flat_file(50_000)).len();
    assert!(compressed_size < 200_000, "{compressed_size}");
    for (path, gzip) in [("/plain", false), ("/gzip", true)] {
        let mut sink = Vec::new();
        let error = capped
            .download_report_document(&document_at(port, path, gzip), &mut sink)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PlatformError::TooLarge { limit: 200_000 }),
            "{path}: {error:?}"
        );
        assert!(sink.len() <= 200_000);
        errors.push(error);
    }

    // Off the allow-list: refused before any connection, naming the host only.
    let elsewhere = ecomdrive_platforms::amazon::ReportDocument {
        url: format!("https://reports.example.com/doc?X-Amz-Signature={SIGNATURE}"),
        ..document_at(port, "/plain", false)
    };
    let error = amazon
        .download_report_document(&elsewhere, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Refused(_)), "{error:?}");
    errors.push(error);

    let closed = closed_port().await;
    let error = amazon
        .download_report_document(&document_at(closed, "/plain", false), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Connect(_)), "{error:?}");
    errors.push(error);

    for error in &errors {
        let text = format!("{error} | {error:?}");
        for secret in [
            SIGNATURE,
            "X-Amz",
            "/plain",
            "/gzip",
            "/doc",
            "expired-or-forged",
        ] {
            assert!(!text.contains(secret), "{text} shows the URL");
        }
    }
}
