//! The Meta client against a tiny Graph-API-shaped server on loopback: request shapes, paging,
//! error parsing, timeouts, and that no token ever shows in an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ecomdrive_core::Secret;
use ecomdrive_platforms::meta::MESSENGER_WEBHOOK_FIELDS;
use ecomdrive_platforms::{
    AllowList, LoopbackPorts, MessageTag, MessagingType, MetaClient, MetaConfig, OutboundHttp,
    OutgoingMessage, PlatformError, Timeouts,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

const APP_SECRET: &str = "local-fake-app-secret";
const USER_TOKEN: &str = "EAAB-long-user-token-fake";
const PAGE_TOKEN: &str = "EAAB-page-token-fake-0001";

/// One request as the fake Graph API saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
    user_agent: String,
}

#[derive(Clone, Default)]
struct Graph {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Graph {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn pairs(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn proof_of(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn meta_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({ "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf" });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// Answers like the Graph API does, for the few endpoints the client uses.
async fn graph(
    State(graph): State<Graph>,
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
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    graph.seen.lock().unwrap().push(seen.clone());
    // Parameters may come in the query or the form body, as on the real Graph API.
    let mut params = seen.query.clone();
    params.extend(seen.form.clone());
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();

    // Like an app with "Require App Secret" on: a call with a token needs the right proof.
    if !param("access_token").is_empty()
        && param("appsecret_proof") != proof_of(param("access_token"))
    {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
        );
    }

    match (method, seen.path.as_str()) {
        (Method::GET, "/v23.0/oauth/access_token") => {
            if param("grant_type") == "fb_exchange_token" && param("fb_exchange_token") == "EAAB-short" {
                axum::Json(json!({ "access_token": USER_TOKEN, "token_type": "bearer", "expires_in": 5183944 })).into_response()
            } else if param("code") == "good-code" && param("client_secret") == APP_SECRET {
                axum::Json(json!({ "access_token": "EAAB-short", "token_type": "bearer", "expires_in": 3600 })).into_response()
            } else {
                meta_error(StatusCode::BAD_REQUEST, 100, Some(36008), "Error validating verification code.")
            }
        }
        (Method::GET, "/v23.0/me/accounts") => match param("after") {
            "" => axum::Json(json!({
                "data": [{ "id": "1001", "name": "Chai Corner", "access_token": PAGE_TOKEN, "category": "Shop" }],
                "paging": {
                    "cursors": { "before": "B1", "after": "CURSOR-2" },
                    "next": format!("https://graph.facebook.com/v23.0/me/accounts?access_token={USER_TOKEN}&after=CURSOR-2")
                }
            }))
            .into_response(),
            "CURSOR-2" => axum::Json(json!({
                "data": [
                    { "id": "1002", "name": "Chai Corner Outlet", "access_token": "EAAB-page-token-fake-0002" },
                    // A Page the user cannot get a token for: nothing we can connect.
                    { "id": "1003", "name": "Someone Else's Page" }
                ],
                "paging": { "cursors": { "before": "B2", "after": "END" } }
            }))
            .into_response(),
            _ => meta_error(StatusCode::BAD_REQUEST, 100, None, "Invalid cursor"),
        },
        (Method::POST | Method::DELETE, "/v23.0/1001/subscribed_apps") => {
            axum::Json(json!({ "success": true })).into_response()
        }
        (Method::POST, "/v23.0/me/messages") => {
            let recipient: Value = serde_json::from_str(param("recipient")).unwrap_or_default();
            match recipient["id"].as_str().unwrap_or_default() {
                "psid-outside-window" => meta_error(
                    StatusCode::BAD_REQUEST,
                    10,
                    Some(2018278),
                    "(#10) This message is sent outside of allowed window.",
                ),
                // A (hypothetical) Meta message that repeats the token it was sent.
                "psid-echo-token" => meta_error(
                    StatusCode::BAD_REQUEST,
                    190,
                    None,
                    &format!("Malformed access token {}", param("access_token")),
                ),
                psid => axum::Json(json!({ "recipient_id": psid, "message_id": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM" })).into_response(),
            }
        }
        _ => meta_error(StatusCode::NOT_FOUND, 803, None, "Unknown path"),
    }
}

async fn serve(router: Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

fn client(port: u16, total_timeout: Duration) -> MetaClient {
    let http = OutboundHttp::new(
        AllowList::production().with_loopback(LoopbackPorts::Only(vec![port])),
        Timeouts {
            connect: Duration::from_secs(1),
            total: total_timeout,
        },
    )
    .unwrap();
    let config = MetaConfig {
        graph_base: format!("http://127.0.0.1:{port}"),
        dialog_base: format!("http://127.0.0.1:{port}"),
        version: "v23.0".into(),
        app_id: "424242".into(),
        app_secret: Secret::new(APP_SECRET),
    };
    MetaClient::new(http, config).unwrap()
}

async fn fake_graph() -> (MetaClient, Graph) {
    let state = Graph::default();
    let port = serve(Router::new().fallback(graph).with_state(state.clone())).await;
    (client(port, Duration::from_secs(5)), state)
}

fn reply(psid: &str) -> OutgoingMessage {
    OutgoingMessage {
        recipient_psid: psid.into(),
        messaging_type: MessagingType::Response,
        tag: None,
        text: "Your order ships today".into(),
        metadata: Some("01JD-outgoing-1".into()),
    }
}

#[tokio::test]
async fn the_login_code_is_exchanged_as_meta_documents_then_made_long_lived() {
    let (meta, graph) = fake_graph().await;
    let redirect = "https://app.example.in/v1/integrations/messenger/callback";

    let short = meta.exchange_code("good-code", redirect).await.unwrap();
    assert_eq!(short.expose(), "EAAB-short");
    let long = meta.long_lived_user_token(&short).await.unwrap();
    assert_eq!(long.expose(), USER_TOKEN);

    let seen = graph.seen();
    assert_eq!(seen.len(), 2);
    let exchange = &seen[0];
    assert_eq!(exchange.method, Method::GET);
    assert_eq!(exchange.path, "/v23.0/oauth/access_token");
    assert_eq!(exchange.user_agent, "EcomDrive/0.1");
    let expected: HashMap<String, String> = [
        ("client_id", "424242"),
        ("redirect_uri", redirect),
        ("client_secret", APP_SECRET),
        ("code", "good-code"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(exchange.query, expected);
    let upgrade = &seen[1].query;
    assert_eq!(upgrade["grant_type"], "fb_exchange_token");
    assert_eq!(upgrade["fb_exchange_token"], "EAAB-short");
    assert_eq!(upgrade["client_secret"], APP_SECRET);
}

#[tokio::test]
async fn a_bad_code_is_meta_s_error_and_the_code_is_not_in_it() {
    let (meta, _) = fake_graph().await;
    let error = meta
        .exchange_code("stolen-code", "https://x.example/cb")
        .await
        .unwrap_err();
    match &error {
        PlatformError::Api {
            http_status,
            code,
            subcode,
            ..
        } => {
            assert_eq!((*http_status, *code, *subcode), (400, 100, Some(36008)));
        }
        other => panic!("expected Meta's error, got {other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains(APP_SECRET));
}

#[tokio::test]
async fn pages_follow_the_cursor_across_two_pages_with_the_appsecret_proof() {
    let (meta, graph) = fake_graph().await;
    let pages = meta.pages(&Secret::new(USER_TOKEN)).await.unwrap();

    let listed: Vec<(&str, &str, &str)> = pages
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str(), p.access_token.expose()))
        .collect();
    assert_eq!(
        listed,
        [
            ("1001", "Chai Corner", PAGE_TOKEN),
            ("1002", "Chai Corner Outlet", "EAAB-page-token-fake-0002"),
        ]
    );
    let seen = graph.seen();
    assert_eq!(seen.len(), 2, "one request per page of results");
    assert!(!seen[0].query.contains_key("after"));
    assert_eq!(seen[1].query["after"], "CURSOR-2");
    for request in &seen {
        assert_eq!(request.path, "/v23.0/me/accounts");
        assert_eq!(request.query["fields"], "id,name,access_token");
        assert_eq!(request.query["access_token"], USER_TOKEN);
        assert_eq!(request.query["appsecret_proof"], proof_of(USER_TOKEN));
    }
}

#[tokio::test]
async fn a_page_is_subscribed_to_the_messenger_fields_and_unsubscribed() {
    let (meta, graph) = fake_graph().await;
    let token = Secret::new(PAGE_TOKEN);
    meta.subscribe_page("1001", &token, MESSENGER_WEBHOOK_FIELDS)
        .await
        .unwrap();
    meta.unsubscribe_page("1001", &token).await.unwrap();

    let seen = graph.seen();
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/v23.0/1001/subscribed_apps");
    assert_eq!(
        seen[0].form["subscribed_fields"],
        "messages,message_echoes,message_deliveries,message_reads,messaging_postbacks,message_reactions"
    );
    assert_eq!(seen[0].form["appsecret_proof"], proof_of(PAGE_TOKEN));
    assert!(
        seen[0].query.is_empty(),
        "the token travels in the body of a POST"
    );
    assert_eq!(seen[1].method, Method::DELETE);
    assert_eq!(seen[1].path, "/v23.0/1001/subscribed_apps");
    assert_eq!(seen[1].query["appsecret_proof"], proof_of(PAGE_TOKEN));
}

#[tokio::test]
async fn a_page_id_cannot_point_the_request_elsewhere() {
    let (meta, graph) = fake_graph().await;
    let error = meta
        .subscribe_page("../me", &Secret::new(PAGE_TOKEN), &["messages"])
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::InvalidInput(_)), "{error:?}");
    assert!(graph.seen().is_empty());
}

#[tokio::test]
async fn a_reply_is_sent_with_the_send_api_fields() {
    let (meta, graph) = fake_graph().await;
    let token = Secret::new(PAGE_TOKEN);
    let sent = meta
        .send_message(&token, &reply("psid-24001"))
        .await
        .unwrap();
    assert_eq!(sent.recipient_id, "psid-24001");
    assert_eq!(sent.message_id, "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM");

    let tagged = OutgoingMessage {
        messaging_type: MessagingType::MessageTag,
        tag: Some(MessageTag::HumanAgent),
        metadata: None,
        ..reply("psid-24001")
    };
    meta.send_message(&token, &tagged).await.unwrap();

    let seen = graph.seen();
    let first = &seen[0].form;
    assert_eq!(seen[0].path, "/v23.0/me/messages");
    assert_eq!(
        serde_json::from_str::<Value>(&first["recipient"]).unwrap(),
        json!({ "id": "psid-24001" })
    );
    assert_eq!(first["messaging_type"], "RESPONSE");
    assert_eq!(
        serde_json::from_str::<Value>(&first["message"]).unwrap(),
        json!({ "text": "Your order ships today", "metadata": "01JD-outgoing-1" })
    );
    assert!(!first.contains_key("tag"));
    assert_eq!(first["appsecret_proof"], proof_of(PAGE_TOKEN));
    let second = &seen[1].form;
    assert_eq!(second["messaging_type"], "MESSAGE_TAG");
    assert_eq!(second["tag"], "HUMAN_AGENT");
    assert_eq!(
        serde_json::from_str::<Value>(&second["message"]).unwrap(),
        json!({ "text": "Your order ships today" })
    );
}

#[tokio::test]
async fn outside_the_window_meta_s_10_2018278_is_parsed() {
    let (meta, _) = fake_graph().await;
    let error = meta
        .send_message(&Secret::new(PAGE_TOKEN), &reply("psid-outside-window"))
        .await
        .unwrap_err();
    match error {
        PlatformError::Api {
            http_status,
            code,
            subcode,
            message,
        } => {
            assert_eq!((http_status, code, subcode), (400, 10, Some(2018278)));
            assert_eq!(
                message,
                "(#10) This message is sent outside of allowed window."
            );
        }
        other => panic!("expected Meta's error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_meta_is_a_timeout_not_a_refusal() {
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        axum::Json(json!({ "recipient_id": "x", "message_id": "m" }))
    });
    let port = serve(slow).await;
    let meta = client(port, Duration::from_millis(300));
    let error = meta
        .send_message(&Secret::new(PAGE_TOKEN), &reply("psid-24001"))
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Timeout), "{error:?}");
}

#[tokio::test]
async fn policy_e14_meta_errors_never_contain_tokens() {
    let (meta, _) = fake_graph().await;
    let token = Secret::new(PAGE_TOKEN);

    // Meta's own message repeating the token.
    let echoed = meta
        .send_message(&token, &reply("psid-echo-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(echoed, PlatformError::Api { code: 190, .. }),
        "{echoed:?}"
    );

    // A transport failure on a URL that carries the token in its query.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = client(closed_port, Duration::from_secs(2))
        .pages(&Secret::new(USER_TOKEN))
        .await
        .unwrap_err();
    // A closed port: nothing was sent, and the error says so.
    assert!(
        matches!(unreachable, PlatformError::Connect(_)),
        "{unreachable:?}"
    );

    // A timeout.
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        "late"
    });
    let slow_port = serve(slow).await;
    let timed_out = client(slow_port, Duration::from_millis(200))
        .pages(&Secret::new(USER_TOKEN))
        .await
        .unwrap_err();

    for error in [echoed, unreachable, timed_out] {
        let text = format!("{error} | {error:?}");
        for secret in [
            PAGE_TOKEN,
            USER_TOKEN,
            APP_SECRET,
            &proof_of(PAGE_TOKEN),
            &proof_of(USER_TOKEN),
        ] {
            assert!(!text.contains(secret), "{text} contains a secret");
        }
    }
}

#[tokio::test]
async fn policy_e11_meta_off_the_allow_list_is_refused_at_start_up() {
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default()).unwrap();
    for graph_base in [
        "https://example.com",
        "http://graph.facebook.com",
        "https://graph.facebook.com.evil.com",
    ] {
        let config = MetaConfig {
            graph_base: graph_base.into(),
            ..MetaConfig::production("424242", Secret::new(APP_SECRET))
        };
        let error = MetaClient::new(http.clone(), config).unwrap_err();
        assert!(
            matches!(error, PlatformError::Refused(_)),
            "{graph_base}: {error:?}"
        );
    }
    assert!(
        MetaClient::new(
            http,
            MetaConfig::production("424242", Secret::new(APP_SECRET))
        )
        .is_ok()
    );
}

#[tokio::test]
async fn the_login_dialog_url_asks_for_the_inbox_scopes_and_carries_the_state() {
    let http = OutboundHttp::new(AllowList::production(), Timeouts::default()).unwrap();
    let meta = MetaClient::new(
        http,
        MetaConfig::production("424242", Secret::new(APP_SECRET)),
    )
    .unwrap();
    let redirect = "https://app.example.in/v1/integrations/messenger/callback";
    let url = url::Url::parse(&meta.authorize_url(redirect, "state-01JD")).unwrap();

    assert_eq!(url.host_str(), Some("www.facebook.com"));
    assert_eq!(url.path(), "/v23.0/dialog/oauth");
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "424242");
    assert_eq!(query["redirect_uri"], redirect);
    assert_eq!(query["state"], "state-01JD");
    assert_eq!(query["response_type"], "code");
    assert_eq!(
        query["scope"],
        "pages_show_list,pages_manage_metadata,pages_messaging"
    );
    assert!(!url.as_str().contains(APP_SECRET));
}
