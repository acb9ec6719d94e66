//! Meta's data deletion and deauthorize callbacks (POLICY E15, A19, A11; issue 5 §5), called the
//! way Meta calls them: the Meta sandbox signs a `signed_request` for its Facebook user and POSTs
//! it, form-encoded, to the local stack, where a merchant connected Pages through that user.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use ecomdrive_aws::store::connections::{
    AvailablePage, ConnectionStatus, MessengerAuthorization, PageConnection,
};
use ecomdrive_core::data_rights::DeletionStatus;
use ecomdrive_core::ids::{DeletionId, MerchantId, PageId, UserId};
use meta_sandbox::{sign_payload, signed_request};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PAGE_A, PAGE_B, Tenant, TestStack, eventually, queue_depth, stack};

const OWNER: &str = "owner@acme.example";
const DELETION: &str = "/data-deletion/facebook";
const DEAUTHORIZE: &str = "/data-deletion/facebook/deauthorize";
/// A Page and a Facebook user of another merchant, outside the sandbox's own.
const OTHER_PAGE: &str = "200000000000201";
const OTHER_FB_USER: &str = "200000000000009";

type Item = std::collections::HashMap<String, AttributeValue>;

// ---- helpers -------------------------------------------------------------------------------

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

fn page(id: &str) -> PageId {
    PageId::parse(id).expect("a page id")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The sandbox's Facebook user (the one who logs in) and the app secret Meta signs with.
fn fb_user(s: &TestStack) -> (String, String) {
    let config = s.stack.sandbox.config();
    (config.user.id.clone(), config.user.name.clone())
}

fn app_secret(s: &TestStack) -> String {
    s.stack.sandbox.config().app_secret.clone()
}

/// POSTs a form body to a callback; answers status, content type and JSON (or Null).
async fn post_form(
    s: &TestStack,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let res = reqwest::Client::new()
        .post(s.url(path))
        .form(fields)
        .send()
        .await
        .expect("the local stack answers");
    answer(res).await
}

async fn answer(res: reqwest::Response) -> (StatusCode, String, Value) {
    let status = res.status();
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// A merchant whose owner authorized Messenger through the sandbox and connected `pages`.
async fn merchant_with_pages(s: &TestStack, owner: &str, pages: &[&str]) -> Tenant {
    let t = s.merchant(owner).await;
    s.authorize_messenger(&t).await;
    for p in pages {
        let (status, body) = s
            .call(
                Method::PUT,
                Some(&t.token),
                &format!(
                    "/v1/merchants/{}/integrations/messenger/pages/{p}",
                    t.merchant_id
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    t
}

/// Another merchant whose Page came through another Facebook user's authorization, written
/// through the store's own methods (the sandbox has one Facebook user only).
async fn other_merchant(s: &TestStack) -> MerchantId {
    let other = s.merchant("owner@other.example").await;
    let m = merchant_id(&other);
    let user = UserId::parse(&s.stack.idp.sub_for("owner@other.example")).expect("a user id");
    let at = time::OffsetDateTime::now_utc();
    let store = &s.stack.store;
    store
        .save_messenger_authorization(&MessengerAuthorization {
            merchant_id: m.clone(),
            authorized_by: user.clone(),
            user_token_ciphertext: "sealed-user-token".into(),
            facebook_user_id: Some(OTHER_FB_USER.into()),
            facebook_user_name: Some("Other Person".into()),
            pages: vec![AvailablePage {
                id: page(OTHER_PAGE),
                name: "Other Shop".into(),
            }],
            authorized_at: at,
            expires_at: at.unix_timestamp() + 3600,
        })
        .await
        .expect("authorization saved");
    store
        .connect_page(&PageConnection {
            merchant_id: m.clone(),
            page_id: page(OTHER_PAGE),
            name: "Other Shop".into(),
            status: ConnectionStatus::Active,
            token_ciphertext: Some("sealed-page-token".into()),
            connected_by: user,
            facebook_user_id: Some(OTHER_FB_USER.into()),
            connected_at: at,
            updated_at: at,
        })
        .await
        .expect("page connected");
    m
}

/// Every item of the table (a fresh table per stack: only this test's data), sorted by key.
async fn sorted_table(s: &TestStack) -> Vec<Item> {
    let mut out = crate::support::scan_table(s.stack.store.table()).await;
    let key = |i: &Item| {
        let s = |k: &str| {
            i.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        (s("PK"), s("SK"))
    };
    out.sort_by_key(key);
    out
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

/// The items holding `needle` anywhere (a key, a value, a nested value).
fn items_holding<'a>(items: &'a [Item], needle: &str) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| {
            let mut all = Vec::new();
            i.values().for_each(|v| strings(v, &mut all));
            all.iter().any(|v| v.contains(needle))
        })
        .collect()
}

async fn receipt(s: &TestStack, code: &str) -> ecomdrive_core::data_rights::DeletionReceipt {
    let id = DeletionId::parse(code).expect("the confirmation code is a deletion id");
    s.stack
        .store
        .deletion(&id)
        .await
        .expect("store answers")
        .expect("a receipt for the code")
}

/// Meta's answer to a data deletion request: `{url, confirmation_code}`, the URL our status page.
fn confirmation(s: &TestStack, body: &Value) -> String {
    let code = body["confirmation_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no confirmation_code in {body}"))
        .to_owned();
    assert!(
        code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "{code}"
    );
    assert_eq!(
        body["url"],
        s.url(&format!("/data-deletion/status/{code}")),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    code
}

async fn assert_disconnected(s: &TestStack, m: &MerchantId, p: &str) {
    let conn = s
        .stack
        .store
        .page_connection(m, &page(p))
        .await
        .unwrap()
        .expect("the connection record stays");
    assert_eq!(conn.status, ConnectionStatus::Disconnected, "{p}");
    assert_eq!(conn.token_ciphertext, None, "{p}: the token is deleted");
    assert_eq!(
        s.stack.store.page_owner(&page(p)).await.unwrap(),
        None,
        "{p}: webhooks no longer route"
    );
    assert!(
        s.stack
            .sandbox
            .subscribed_fields(p)
            .is_none_or(|f| f.is_empty()),
        "{p}: the app is still subscribed at Meta"
    );
}

// ---- the data deletion callback ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_e15_meta_data_deletion_forgets_the_facebook_user_and_their_pages() {
    let s = stack().await;
    let t = merchant_with_pages(&s, OWNER, &[PAGE_A, PAGE_B]).await;
    let m = merchant_id(&t);
    let other = other_merchant(&s).await;
    let (fb_id, fb_name) = fb_user(&s);

    // Connecting kept who the Facebook user is: on the authorization, the Pages and the index.
    let auth = s
        .stack
        .store
        .messenger_authorization(&m)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.facebook_user_id.as_deref(), Some(fb_id.as_str()));
    assert_eq!(auth.facebook_user_name.as_deref(), Some(fb_name.as_str()));
    for p in [PAGE_A, PAGE_B] {
        let conn = s
            .stack
            .store
            .page_connection(&m, &page(p))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conn.facebook_user_id.as_deref(), Some(fb_id.as_str()));
    }
    assert_eq!(
        s.stack.store.facebook_user_merchants(&fb_id).await.unwrap(),
        vec![m.clone()]
    );
    let before = sorted_table(&s).await;
    assert!(
        items_holding(&before, &fb_id).len() >= 4,
        "auth, 2 Pages, index"
    );
    assert!(!items_holding(&before, &fb_name).is_empty());

    // Meta calls, as when the person asks for their data to be deleted.
    let answer = s.stack.sandbox.request_data_deletion(&fb_id).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = confirmation(&s, &answer.body);

    for p in [PAGE_A, PAGE_B] {
        assert_disconnected(&s, &m, p).await;
    }
    assert!(
        s.stack
            .store
            .messenger_authorization(&m)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.stack
            .sandbox
            .calls()
            .iter()
            .filter(|c| c.method == "DELETE"
                && c.path.ends_with("/subscribed_apps")
                && c.status == 200)
            .count()
            == 2,
        "both Pages unsubscribed at Meta"
    );
    // Nothing anywhere in the table names the person any more.
    let after = sorted_table(&s).await;
    assert!(
        items_holding(&after, &fb_id).is_empty(),
        "{:?}",
        items_holding(&after, &fb_id)
    );
    assert!(
        items_holding(&after, &fb_name).is_empty(),
        "{:?}",
        items_holding(&after, &fb_name)
    );
    // The receipt is the proof: done, counts only.
    let r = receipt(&s, &code).await;
    assert_eq!(r.status, DeletionStatus::Done);
    assert_eq!(r.subject, None);
    assert_eq!(r.subject_kind, "facebook_user");
    assert_eq!(r.counts["disconnected:page_connection"], 2);
    assert_eq!(r.counts["erased:page_connection"], 2);
    assert_eq!(r.counts["messenger_authorization"], 1);
    assert_eq!(r.counts["facebook_user_index"], 1);
    // The merchant's audit log says what happened, naming the Pages, not the person.
    let (status, log) = s
        .get(&t.token, &format!("/v1/merchants/{}/audit", t.merchant_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    for p in [PAGE_A, PAGE_B] {
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "messenger.page.disconnect" && e["target"] == p),
            "{log}"
        );
    }

    // The status URL Meta shows the person answers with that code.
    let (status, _, body) = answer_of(
        reqwest::Client::new()
            .get(answer.body["url"].as_str().unwrap())
            .header(reqwest::header::ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains(&code), "{body}");
    let (status, _, _) =
        answer_of(reqwest::Client::new().get(answer.body["url"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "the HTML status page");

    // The other merchant's Page came through someone else: untouched.
    let theirs = s
        .stack
        .store
        .page_connection(&other, &page(OTHER_PAGE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.status, ConnectionStatus::Active);
    assert!(theirs.token_ciphertext.is_some());
    assert_eq!(
        s.stack.store.page_owner(&page(OTHER_PAGE)).await.unwrap(),
        Some(other.clone())
    );
    assert!(
        s.stack
            .store
            .messenger_authorization(&other)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.stack
            .store
            .facebook_user_merchants(OTHER_FB_USER)
            .await
            .unwrap(),
        vec![other]
    );

    // A customer writing to a forgotten Page no longer reaches the merchant.
    s.customer_writes(PAGE_A, "9301", "Anyone there?").await;
    eventually("the inbound queue drained", || async {
        (queue_depth(&s.stack.resources.inbound_queue_url).await == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.conversations(&t).await.is_empty());

    // Meta may ask again: nothing left to do, still a receipt, the same shape.
    let settled = sorted_table(&s).await;
    let again = s.stack.sandbox.request_data_deletion(&fb_id).await.unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    let second = confirmation(&s, &again.body);
    assert_ne!(second, code);
    assert!(receipt(&s, &second).await.counts.values().all(|n| *n == 0));
    assert_eq!(
        sorted_table(&s).await.len(),
        settled.len() + 1,
        "only the new receipt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a19_a_deletion_request_for_someone_unknown_answers_the_same() {
    let s = stack().await;
    merchant_with_pages(&s, OWNER, &[PAGE_A]).await;
    let before = sorted_table(&s).await;

    let answer = s
        .stack
        .sandbox
        .request_data_deletion("100000000000404")
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = confirmation(&s, &answer.body);
    let r = receipt(&s, &code).await;
    assert_eq!(r.status, DeletionStatus::Done);
    assert_eq!(r.counts.len(), 4, "{:?}", r.counts);
    assert!(r.counts.values().all(|n| *n == 0));
    // Only the receipt was written.
    let after = sorted_table(&s).await;
    assert_eq!(after.len(), before.len() + 1);
    let is_receipt = |i: &Item| {
        i.get("kind")
            .and_then(|k| k.as_s().ok())
            .map(String::as_str)
            == Some("deletion_receipt")
    };
    assert!(after.iter().all(|i| before.contains(i) || is_receipt(i)));

    // A person at the local stack plays Meta the same way: `/_local/meta/data-deletion`.
    let (status, body) = s
        .call(
            Method::POST,
            None,
            "/_local/meta/data-deletion?user_id=100000000000405",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], 200, "{body}");
    confirmation(&s, &body["body"]);
}

// ---- the deauthorize callback --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a11_meta_deauthorize_deletes_the_tokens_and_keeps_the_conversations() {
    let s = stack().await;
    let t = merchant_with_pages(&s, OWNER, &[PAGE_A, PAGE_B]).await;
    let m = merchant_id(&t);
    let (fb_id, fb_name) = fb_user(&s);
    s.customer_writes(PAGE_A, "9401", "Is the blue kurta in stock?")
        .await;
    let conv = s.conversation_with(&t, "9401").await;

    let answer = s.stack.sandbox.deauthorize(&fb_id).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);

    for p in [PAGE_A, PAGE_B] {
        assert_disconnected(&s, &m, p).await;
    }
    assert!(
        s.stack
            .store
            .messenger_authorization(&m)
            .await
            .unwrap()
            .is_none()
    );
    let after = sorted_table(&s).await;
    for i in &after {
        assert!(
            !i.contains_key("token_ciphertext") && !i.contains_key("user_token_ciphertext"),
            "a token survived: {i:?}"
        );
    }
    assert!(
        items_holding(&after, &fb_name).is_empty(),
        "the name went with the authorization"
    );
    // The merchant's conversations are the merchant's: they stay.
    let conversations = s.conversations(&t).await;
    assert_eq!(conversations.len(), 1);
    let messages = s.messages(&t, conv["id"].as_str().unwrap()).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["text"], "Is the blue kurta in stock?");

    // Deauthorizing again has nothing left to do.
    let again = s.stack.sandbox.deauthorize(&fb_id).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(sorted_table(&s).await, after);

    // The id stayed on the disconnected Pages, so the deletion request Meta may send next still
    // finds them, and removes it.
    assert!(!items_holding(&after, &fb_id).is_empty());
    let deletion = s.stack.sandbox.request_data_deletion(&fb_id).await.unwrap();
    assert_eq!(deletion.status, 200, "{}", deletion.body);
    let r = receipt(&s, &confirmation(&s, &deletion.body)).await;
    assert_eq!(r.counts["erased:page_connection"], 2);
    assert_eq!(r.counts["disconnected:page_connection"], 0);
    assert!(items_holding(&sorted_table(&s).await, &fb_id).is_empty());
}

// ---- what is refused -----------------------------------------------------------------------

async fn answer_of(req: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
    answer(req.send().await.expect("the local stack answers")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_signed_requests_change_nothing_and_valid_ones_may_be_padded_or_not() {
    let s = stack().await;
    let t = merchant_with_pages(&s, OWNER, &[PAGE_A]).await;
    let m = merchant_id(&t);
    let (fb_id, _) = fb_user(&s);
    let secret = app_secret(&s);
    let claims =
        |algorithm: &str| json!({"algorithm": algorithm, "issued_at": now(), "user_id": fb_id});

    let valid = signed_request(&secret, &fb_id, now());
    let (sig, payload) = valid.split_once('.').unwrap();
    let other_user = signed_request(&secret, "100000000000002", now());
    let (other_sig, other_payload) = other_user.split_once('.').unwrap();
    let mut flipped = sig.to_owned();
    flipped.replace_range(..1, if sig.starts_with('A') { "B" } else { "A" });
    let mut no_user = claims("HMAC-SHA256");
    no_user.as_object_mut().unwrap().remove("user_id");
    let cases: Vec<(&str, String)> = vec![
        (
            "this payload under another's signature",
            format!("{other_sig}.{payload}"),
        ),
        (
            "another payload under this signature",
            format!("{sig}.{other_payload}"),
        ),
        ("a tampered signature", format!("{flipped}.{payload}")),
        (
            "signed with another secret",
            signed_request("not-our-secret", &fb_id, now()),
        ),
        (
            "a wrong algorithm",
            sign_payload(&secret, &claims("HMAC-SHA1"), false),
        ),
        ("no user_id", sign_payload(&secret, &no_user, false)),
        (
            "issued in the future",
            signed_request(&secret, &fb_id, now() + 86_400),
        ),
        ("no signature part", payload.to_owned()),
        ("garbage", "not a signed request".to_owned()),
    ];

    let before = sorted_table(&s).await;
    for path in [DELETION, DEAUTHORIZE] {
        for (what, raw) in &cases {
            let (status, content_type, body) =
                post_form(&s, path, &[("signed_request", raw.as_str())]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {what}: {body}");
            assert_eq!(content_type, "application/problem+json", "{path}: {what}");
            assert!(!body.to_string().contains(&secret), "{body}");
        }
        let (status, _, body) = post_form(&s, path, &[("user_id", fb_id.as_str())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "missing field: {body}");
        let (status, _, _) = answer_of(
            reqwest::Client::new()
                .post(s.url(path))
                .json(&json!({ "signed_request": valid })),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON body");
        let huge = format!("{valid}{}", "A".repeat(64 * 1024));
        let (status, content_type, _) =
            post_form(&s, path, &[("signed_request", huge.as_str())]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(content_type, "application/problem+json");
    }
    assert_eq!(
        sorted_table(&s).await,
        before,
        "a refused request changed the table"
    );
    let conn = s
        .stack
        .store
        .page_connection(&m, &page(PAGE_A))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conn.status, ConnectionStatus::Active);

    // Padded base64url (both parts, `=` and all) is Meta's scheme too.
    let padded = sign_payload(&secret, &claims("HMAC-SHA256"), true);
    assert!(padded.contains('='), "{padded}");
    let (status, _, body) =
        post_form(&s, DEAUTHORIZE, &[("signed_request", padded.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_disconnected(&s, &m, PAGE_A).await;

    // Unpadded, as Meta sends it, with the algorithm in another case.
    let unpadded = sign_payload(&secret, &claims("hmac-sha256"), false);
    assert!(!unpadded.contains('='));
    let (status, _, body) = post_form(&s, DELETION, &[("signed_request", unpadded.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = receipt(&s, &confirmation(&s, &body)).await;
    assert_eq!(r.counts["erased:page_connection"], 1);
    assert!(items_holding(&sorted_table(&s).await, &fb_id).is_empty());
}
