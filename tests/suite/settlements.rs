//! Settlements, costs of goods, the P&L and the reconciliation, end to end against the local
//! stack (POLICY A3, A8, A14): flat files uploaded through the API (directly or through a
//! presigned upload), imported from the Amazon sandbox's Reports API by the scheduled import, and
//! every number a merchant reads worked out by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration as StdDuration;

use ecomdrive_aws::settlement_import::{ImportOutcome, Origin, SettlementFile};
use ecomdrive_aws::store::settlements::SettlementSource;
use ecomdrive_core::ids::MerchantId;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::support::{Item, Tenant, TestStack, eventually_within, scan_table, stack};

const OWNER: &str = "owner@ledger.example";
const TSV: &str = "text/tab-separated-values";
const GZIP: &str = "application/gzip";
const PROBLEM_BASE: &str = "https://errors.ecomdrive.app/";
/// Every kind of item a settlement import writes.
const SETTLEMENT_KINDS: [&str; 4] = [
    "settlement",
    "settlement_day",
    "settlement_sku_day",
    "settlement_order",
];

// ---- flat files ------------------------------------------------------------------------------

/// The V2 flat file's columns, as `shared/bench/gen_settlement.py` (and Amazon) name them.
const HEAD: [&str; 24] = ecomdrive_core::settlement::AMAZON_V2_COLUMNS;

/// One detail line of a flat file.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    transaction_type: &'static str,
    order_id: &'static str,
    amount_type: &'static str,
    description: &'static str,
    amount: &'static str,
    /// `YYYY-MM-DD`, India's date.
    day: &'static str,
    sku: &'static str,
    quantity: &'static str,
}

/// An `Order` line of `order` for `sku` posted on `day`.
fn sale(
    day: &'static str,
    order: &'static str,
    sku: &'static str,
    (amount_type, description): (&'static str, &'static str),
    amount: &'static str,
) -> Line {
    Line {
        transaction_type: "Order",
        order_id: order,
        amount_type,
        description,
        amount,
        day,
        sku,
        quantity: "",
    }
}

/// A `Refund` line.
fn refund(
    day: &'static str,
    order: &'static str,
    sku: &'static str,
    charge: (&'static str, &'static str),
    amount: &'static str,
) -> Line {
    Line {
        transaction_type: "Refund",
        ..sale(day, order, sku, charge, amount)
    }
}

/// The line's `quantity-purchased` (on `ItemPrice` / `Principal` lines).
fn units(mut line: Line, quantity: &'static str) -> Line {
    line.quantity = quantity;
    line
}

const PRINCIPAL: (&str, &str) = ("ItemPrice", "Principal");
const PRODUCT_TAX: (&str, &str) = ("ItemPrice", "Product Tax");
const SHIPPING: (&str, &str) = ("ItemPrice", "Shipping");
const COMMISSION: (&str, &str) = ("ItemFees", "Commission");
const REFUND_COMMISSION: (&str, &str) = ("ItemFees", "RefundCommission");
const FBA_FEE: (&str, &str) = ("ItemFees", "FBAPerUnitFulfillmentFee");
const CLOSING_FEE: (&str, &str) = ("ItemFees", "FixedClosingFee");
const TCS_CGST: (&str, &str) = ("ItemWithheldTax", "TCS-CGST");
const TCS_SGST: (&str, &str) = ("ItemWithheldTax", "TCS-SGST");

/// A flat file: the header, the summary row (a period in October 2026, INR) and `lines`.
pub(crate) fn flat_file(settlement_id: &str, total_amount: &str, lines: &[Line]) -> String {
    let mut out = HEAD.join("\t") + "\n";
    let mut summary = vec![
        settlement_id,
        "2026-10-01T00:00:00+00:00",
        "2026-10-15T00:00:00+00:00",
        "2026-10-17T00:00:00+00:00",
        total_amount,
        "INR",
    ];
    summary.resize(HEAD.len(), "");
    out += &(summary.join("\t") + "\n");
    for l in lines {
        let posted_time = format!("{}T10:00:00+05:30", l.day);
        let shipment = if l.order_id.is_empty() {
            String::new()
        } else {
            format!("S{}", &l.order_id[l.order_id.len() - 6..])
        };
        let row = [
            settlement_id,
            "",
            "",
            "",
            "",
            "",
            l.transaction_type,
            l.order_id,
            l.order_id,
            "",
            &shipment,
            "Amazon.in",
            l.amount_type,
            l.description,
            l.amount,
            if l.order_id.is_empty() { "" } else { "AFN" },
            l.day,
            &posted_time,
            if l.sku.is_empty() {
                ""
            } else {
                "12345678901234"
            },
            "",
            "",
            l.sku,
            l.quantity,
            "",
        ];
        out += &(row.join("\t") + "\n");
    }
    out
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

const ORDER_1: &str = "171-1111111-1111111";
const ORDER_2: &str = "171-2222222-2222222";
const KURTA: &str = "KURTA-RED-M";
const MUG: &str = "MUG-BLUE";

/// One order of one kurta, four lines: 1000.00 + 180.00 − 120.00 − 54.50 = 1005.50.
fn one_order_lines(commission: &'static str) -> Vec<Line> {
    let d = "2026-10-03";
    vec![
        units(sale(d, ORDER_1, KURTA, PRINCIPAL, "1000.00"), "1"),
        sale(d, ORDER_1, KURTA, PRODUCT_TAX, "180.00"),
        sale(d, ORDER_1, KURTA, COMMISSION, commission),
        sale(d, ORDER_1, KURTA, FBA_FEE, "-54.50"),
    ]
}

/// A small settlement that reconciles: its lines add up to 1005.50 (see [`one_order_lines`]).
pub(crate) fn small_settlement(settlement_id: &str) -> String {
    flat_file(settlement_id, "1005.50", &one_order_lines("-120.00"))
}

/// The settlement of the P&L test: two orders on two days, a refund and a storage fee.
///
/// 2026-10-03, order 1, 2 × KURTA:  Principal 2000.00, Product Tax 360.00, Shipping 80.00,
///   Commission −240.00, FBA fee −90.00, closing fee −30.00, TCS-CGST −5.00, TCS-SGST −5.00
///   → lines 2070.00
/// 2026-10-07, order 2, 1 × KURTA: Principal 1000.00, Product Tax 180.00, Commission −120.00,
///   FBA fee −45.00, closing fee −15.00, TCS-CGST −2.50, TCS-SGST −2.50 → 995.00
///   and 3 × MUG: Principal 600.00, Product Tax 108.00, Commission −72.00, FBA fee −135.00,
///   closing fee −15.00, TCS-CGST −1.50, TCS-SGST −1.50 → 483.00
/// 2026-10-07, order 1 refunded one kurta: Principal −1000.00, Product Tax −180.00, Commission
///   +120.00, RefundCommission −24.00, TCS-CGST +2.50, TCS-SGST +2.50 → −1079.00
/// 2026-10-07, Storage Fee −75.50 (no order, no SKU)
/// total = 2070.00 + 995.00 + 483.00 − 1079.00 − 75.50 = 2393.50
fn pnl_settlement(settlement_id: &str) -> String {
    let (d1, d2) = ("2026-10-03", "2026-10-07");
    let lines = vec![
        units(sale(d1, ORDER_1, KURTA, PRINCIPAL, "2000.00"), "2"),
        sale(d1, ORDER_1, KURTA, PRODUCT_TAX, "360.00"),
        sale(d1, ORDER_1, KURTA, SHIPPING, "80.00"),
        sale(d1, ORDER_1, KURTA, COMMISSION, "-240.00"),
        sale(d1, ORDER_1, KURTA, FBA_FEE, "-90.00"),
        sale(d1, ORDER_1, KURTA, CLOSING_FEE, "-30.00"),
        sale(d1, ORDER_1, KURTA, TCS_CGST, "-5.00"),
        sale(d1, ORDER_1, KURTA, TCS_SGST, "-5.00"),
        units(sale(d2, ORDER_2, KURTA, PRINCIPAL, "1000.00"), "1"),
        sale(d2, ORDER_2, KURTA, PRODUCT_TAX, "180.00"),
        sale(d2, ORDER_2, KURTA, COMMISSION, "-120.00"),
        sale(d2, ORDER_2, KURTA, FBA_FEE, "-45.00"),
        sale(d2, ORDER_2, KURTA, CLOSING_FEE, "-15.00"),
        sale(d2, ORDER_2, KURTA, TCS_CGST, "-2.50"),
        sale(d2, ORDER_2, KURTA, TCS_SGST, "-2.50"),
        units(sale(d2, ORDER_2, MUG, PRINCIPAL, "600.00"), "3"),
        sale(d2, ORDER_2, MUG, PRODUCT_TAX, "108.00"),
        sale(d2, ORDER_2, MUG, COMMISSION, "-72.00"),
        sale(d2, ORDER_2, MUG, FBA_FEE, "-135.00"),
        sale(d2, ORDER_2, MUG, CLOSING_FEE, "-15.00"),
        sale(d2, ORDER_2, MUG, TCS_CGST, "-1.50"),
        sale(d2, ORDER_2, MUG, TCS_SGST, "-1.50"),
        units(refund(d2, ORDER_1, KURTA, PRINCIPAL, "-1000.00"), "1"),
        refund(d2, ORDER_1, KURTA, PRODUCT_TAX, "-180.00"),
        refund(d2, ORDER_1, KURTA, COMMISSION, "120.00"),
        refund(d2, ORDER_1, KURTA, REFUND_COMMISSION, "-24.00"),
        refund(d2, ORDER_1, KURTA, TCS_CGST, "2.50"),
        refund(d2, ORDER_1, KURTA, TCS_SGST, "2.50"),
        Line {
            transaction_type: "other-transaction",
            order_id: "",
            amount_type: "other-transaction",
            description: "Storage Fee",
            amount: "-75.50",
            day: d2,
            sku: "",
            quantity: "",
        },
    ];
    flat_file(settlement_id, "2393.50", &lines)
}

/// The costs of the P&L test: the kurta costs 400.00 from 1 October and 450.00 from 5 October
/// (so order 1's day counts 400.00 a unit, order 2's day 450.00); the mug 120.00.
const PNL_COGS: &str = "sku,unit_cost,currency,effective_from\n\
                        KURTA-RED-M,400.00,INR,2026-10-01\n\
                        KURTA-RED-M,450.00,INR,2026-10-05\n\
                        MUG-BLUE,120.00,INR,2026-09-01\n";

// ---- HTTP helpers ----------------------------------------------------------------------------

fn settlements_path(t: &Tenant) -> String {
    format!("/v1/merchants/{}/settlements", t.merchant_id)
}

fn merchant_id(t: &Tenant) -> MerchantId {
    MerchantId::parse(&t.merchant_id).expect("a merchant id")
}

/// An answer: status, content type and body text.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// Any request with a raw body and content type.
async fn send_raw(
    s: &TestStack,
    method: Method,
    token: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut req = s.browser.request(method, s.url(path)).bearer_auth(token);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let res = req
        .body(body)
        .send()
        .await
        .expect("the local stack answers");
    let status = res.status();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    Answer {
        status,
        content_type,
        text,
    }
}

/// POSTs a settlement flat file.
async fn upload(
    s: &TestStack,
    token: &str,
    t: &Tenant,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Answer {
    send_raw(
        s,
        Method::POST,
        token,
        &settlements_path(t),
        Some(content_type),
        body.into(),
    )
    .await
}

/// PUTs a COGS file.
async fn put_cogs(s: &TestStack, token: &str, t: &Tenant, csv: &str) -> Answer {
    send_raw(
        s,
        Method::PUT,
        token,
        &format!("/v1/merchants/{}/cogs", t.merchant_id),
        Some("text/csv"),
        csv.as_bytes().to_vec(),
    )
    .await
}

/// GET as the owner, asserting 200.
async fn read(s: &TestStack, t: &Tenant, path: &str) -> Value {
    let (status, body) = s.get(&t.token, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn settlements(s: &TestStack, t: &Tenant) -> Vec<Value> {
    read(s, t, &settlements_path(t)).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The P&L views of October 2026 (every one the API has), to compare before and after.
async fn october_pnl(s: &TestStack, t: &Tenant) -> Value {
    let m = &t.merchant_id;
    let q = "from=2026-10-01&to=2026-10-31";
    json!({
        "days": read(s, t, &format!("/v1/merchants/{m}/pnl?{q}&granularity=day")).await,
        "months": read(s, t, &format!("/v1/merchants/{m}/pnl?{q}&granularity=month")).await,
        "skus": read(s, t, &format!("/v1/merchants/{m}/pnl/skus?{q}")).await,
        "orders": read(s, t, &format!("/v1/merchants/{m}/pnl/orders?{q}")).await,
    })
}

/// The line of a P&L answer with this key.
fn pnl_line<'a>(body: &'a Value, key: &str) -> &'a Value {
    body["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["key"] == key))
        .unwrap_or_else(|| panic!("no P&L line {key}: {body}"))
}

/// Asserts the named amounts of a P&L line (amounts as the exact decimal strings).
#[track_caller]
fn assert_amounts(line: &Value, expected: &[(&str, &str)]) {
    for (field, value) in expected {
        let found = field
            .split('.')
            .fold(line, |v, part| &v[part])
            .as_str()
            .unwrap_or_default();
        assert_eq!(found, *value, "{} of {}: {line}", field, line["key"]);
    }
}

#[track_caller]
fn assert_problem(answer: &Answer, status: StatusCode, kind: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = answer.json();
    assert_eq!(
        body["type"],
        format!("{PROBLEM_BASE}{kind}"),
        "{}",
        answer.text
    );
}

/// The lines of a `file-rejected` problem.
fn problem_lines(body: &Value) -> BTreeSet<u64> {
    body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["line"].as_u64().expect("a line number"))
        .collect()
}

fn kind(item: &Item) -> &str {
    item.get("kind")
        .and_then(|k| k.as_s().ok())
        .map_or("", String::as_str)
}

/// Keys of the bucket's objects under `prefix`.
async fn objects_under(s: &TestStack, prefix: &str) -> Vec<String> {
    let s3 = ecomdrive_aws::s3_client(&crate::support::sdk().await);
    let out = s3
        .list_objects_v2()
        .bucket(&s.stack.resources.bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("the bucket lists");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Invites `email` as `role` and answers the member's token (the first request activates it).
async fn member(s: &TestStack, t: &Tenant, email: &str, role: &str) -> String {
    let (status, body) = s.invite(t, email, role).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = s.token(email);
    let (status, me) = s.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    token
}

/// India's date today.
fn india_today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(UtcOffset::from_hms(5, 30, 0).expect("+05:30"))
        .date()
}

/// Paise as the API writes amounts: `12345` → `"123.45"`.
fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", paise.abs() / 100, paise.abs() % 100)
}

// ---- 1–3: direct uploads -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_upload_of_a_settlement_answers_its_summary_and_a_repeat_answers_200_with_the_same()
 {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let file = small_settlement("12000000001");

    let first = upload(&s, &t.token, &t, TSV, file.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let summary = first.json();
    assert_eq!(summary["settlement_id"], "12000000001");
    assert_eq!(summary["currency"], "INR");
    // total-amount as written; the lines: 1000.00 + 180.00 − 120.00 − 54.50 = 1005.50.
    assert_eq!(summary["total_amount"], "1005.50");
    assert_eq!(summary["lines_total"], "1005.50");
    assert_eq!(summary["reconciles"], true);
    assert_eq!(summary["detail_lines"], 4);
    assert_eq!(summary["marketplace"], "Amazon.in");
    assert_eq!(summary["source"], "upload");
    assert_eq!(summary["status"], "imported");

    // The same file again: nothing new, the same settlement.
    let again = upload(&s, &t.token, &t, TSV, file.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json(), summary);

    // The same file saved with Windows line ends: the same content.
    let crlf = upload(
        &s,
        &t.token,
        &t,
        "text/tab-separated-values; charset=utf-8",
        file.replace('\n', "\r\n"),
    )
    .await;
    assert_eq!(crlf.status, StatusCode::OK, "{}", crlf.text);
    assert_eq!(crlf.json(), summary);

    // The same file gzip-compressed (line ends and compression aside, the same content).
    let zipped = upload(&s, &t.token, &t, GZIP, gzip(&file)).await;
    assert_eq!(zipped.status, StatusCode::OK, "{}", zipped.text);
    assert_eq!(zipped.json(), summary);

    let listed = settlements(&s, &t).await;
    assert_eq!(listed, vec![summary.clone()]);
    let shown = read(&s, &t, &format!("{}/12000000001", settlements_path(&t))).await;
    assert_eq!(shown, summary);
    // An id that is not one, and one that is not stored: 404.
    for id in ["99999999999", "not-an-id"] {
        let (status, body) = s
            .get(&t.token, &format!("{}/{id}", settlements_path(&t)))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    // The file is archived once, under the settlement.
    let archived = objects_under(
        &s,
        &format!("merchants/{}/settlements/12000000001/", t.merchant_id),
    )
    .await;
    assert_eq!(archived.len(), 1, "{archived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_a_settlement_whose_lines_do_not_add_up_is_stored_and_says_by_how_much() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    // The lines add up to 1005.50 (see one_order_lines); the summary says 1010.00.
    let file = flat_file("12000000002", "1010.00", &one_order_lines("-120.00"));
    let answer = upload(&s, &t.token, &t, TSV, file).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let summary = answer.json();
    assert_eq!(summary["total_amount"], "1010.00");
    assert_eq!(summary["lines_total"], "1005.50");
    // 1010.00 − 1005.50 = 4.50
    assert_eq!(summary["difference"], "4.50");
    assert_eq!(summary["reconciles"], false);
    let listed = settlements(&s, &t).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["reconciles"], false);
    assert_eq!(listed[0]["difference"], "4.50");

    // A period without sales: Amazon charges the storage fee (a negative deposit), which adds up.
    let fee_only = flat_file(
        "12000000009",
        "-75.50",
        &[Line {
            transaction_type: "other-transaction",
            order_id: "",
            amount_type: "other-transaction",
            description: "Storage Fee",
            amount: "-75.50",
            day: "2026-10-09",
            sku: "",
            quantity: "",
        }],
    );
    let answer = upload(&s, &t.token, &t, TSV, fee_only).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let summary = answer.json();
    assert_eq!(summary["total_amount"], "-75.50");
    assert_eq!(summary["lines_total"], "-75.50");
    assert_eq!(summary["reconciles"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_the_same_settlement_id_with_other_content_is_refused_and_the_stored_one_stays() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let first = upload(&s, &t.token, &t, TSV, small_settlement("12000000003")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let stored = first.json();
    let pnl_before = october_pnl(&s, &t).await;
    // Order 1's principal 1000.00 counts on 3 October.
    assert_amounts(
        pnl_line(&pnl_before["days"], "2026-10-03"),
        &[("principal", "1000.00")],
    );

    // Commission −130.00 instead of −120.00: 1000.00 + 180.00 − 130.00 − 54.50 = 995.50.
    let other = flat_file("12000000003", "995.50", &one_order_lines("-130.00"));
    let answer = upload(&s, &t.token, &t, TSV, other.clone()).await;
    assert_problem(&answer, StatusCode::CONFLICT, "settlement-differs");
    // Gzip-compressed, the same.
    let answer = upload(&s, &t.token, &t, GZIP, gzip(&other)).await;
    assert_problem(&answer, StatusCode::CONFLICT, "settlement-differs");

    let shown = read(&s, &t, &format!("{}/12000000003", settlements_path(&t))).await;
    assert_eq!(shown, stored);
    assert_eq!(shown["total_amount"], "1005.50");
    assert_eq!(settlements(&s, &t).await, vec![stored]);
    assert_eq!(
        october_pnl(&s, &t).await,
        pnl_before,
        "the P&L is unchanged"
    );
    let archived = objects_under(
        &s,
        &format!("merchants/{}/settlements/12000000003/", t.merchant_id),
    )
    .await;
    assert_eq!(
        archived.len(),
        1,
        "only the first file is kept: {archived:?}"
    );
}

// ---- 4: malformed and refused uploads ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_malformed_file_is_rejected_whole_with_line_numbers_and_nothing_stored() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let d = "2026-10-03";
    // Line 1 the header, line 2 the summary, the details from line 3: bad amounts on 4 and 7.
    let lines = vec![
        units(sale(d, ORDER_1, KURTA, PRINCIPAL, "1000.00"), "1"), // 3
        sale(d, ORDER_1, KURTA, PRODUCT_TAX, "1,80.00"),           // 4
        sale(d, ORDER_1, KURTA, COMMISSION, "-120.00"),            // 5
        units(sale(d, ORDER_2, MUG, PRINCIPAL, "600.00"), "3"),    // 6
        sale(d, ORDER_2, MUG, COMMISSION, "twelve"),               // 7
        sale(d, ORDER_2, MUG, FBA_FEE, "-135.00"),                 // 8
    ];
    let file = flat_file("12000000004", "1345.00", &lines);
    let answer = upload(&s, &t.token, &t, TSV, file.clone()).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
    assert!(
        answer.content_type.starts_with("application/problem+json"),
        "{}",
        answer.content_type
    );
    let body = answer.json();
    assert_eq!(problem_lines(&body), BTreeSet::from([4, 7]), "{body}");
    for p in body["problems"].as_array().unwrap() {
        let reason = p["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("amount"), "a reason names the amount: {p}");
    }
    // Compressed, the line numbers are the same.
    let answer = upload(&s, &t.token, &t, GZIP, gzip(&file)).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
    assert_eq!(problem_lines(&answer.json()), BTreeSet::from([4, 7]));

    // Refused before anything is read.
    let answer = upload(
        &s,
        &t.token,
        &t,
        "application/json",
        small_settlement("12000000005"),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        answer.text
    );
    let answer = send_raw(
        &s,
        Method::POST,
        &t.token,
        &settlements_path(&t),
        None,
        small_settlement("12000000005").into_bytes(),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type: {}",
        answer.text
    );
    let answer = upload(&s, &t.token, &t, TSV, Vec::new()).await;
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "empty: {}",
        answer.text
    );
    // 5 MB + 1 byte: too large for a direct upload.
    let mut big = small_settlement("12000000006").into_bytes();
    big.resize(5 * 1024 * 1024 + 1, b'\n');
    let answer = upload(&s, &t.token, &t, TSV, big).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );

    // An agent may not upload nor read; another merchant's owner does not see the merchant.
    let agent = member(&s, &t, "agent@ledger.example", "agent").await;
    let answer = upload(&s, &agent, &t, TSV, small_settlement("12000000007")).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = s.get(&agent, &settlements_path(&t)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rival = s.merchant("owner@rival-ledger.example").await;
    let answer = upload(&s, &rival.token, &t, TSV, small_settlement("12000000008")).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    let (status, _) = s.get(&rival.token, &settlements_path(&t)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nothing of any of them was stored: no settlement, no sums, no archive.
    assert!(settlements(&s, &t).await.is_empty());
    let pnl = october_pnl(&s, &t).await;
    for view in ["days", "months", "skus", "orders"] {
        assert_eq!(pnl[view]["lines"], json!([]), "{view}: {pnl}");
        assert_eq!(pnl[view]["totals"]["net_revenue"], "0", "{view}: {pnl}");
    }
    let stored: Vec<String> = scan_table(&s.stack.resources.table)
        .await
        .iter()
        .map(|i| kind(i).to_owned())
        .filter(|k| SETTLEMENT_KINDS.contains(&k.as_str()))
        .collect();
    assert!(
        stored.is_empty(),
        "settlement items were stored: {stored:?}"
    );
    let archived = objects_under(&s, &format!("merchants/{}/settlements/", t.merchant_id)).await;
    assert!(archived.is_empty(), "{archived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_a_small_gzip_that_unpacks_past_the_limit_is_rejected_and_nothing_stored() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    // 1 MiB of valid detail lines (each padded to 8 KiB in the promotion-id column, which is
    // not read), as one gzip member; 70 members one after the other unpack to 70 MiB, past the
    // 16 MiB a direct upload may unpack to, while the body stays far below 5 MB.
    let padded = |line: Line| {
        let row = flat_file("12000000060", "1.00", &[line]);
        let detail = row.lines().nth(2).expect("a detail row").to_owned();
        format!("{detail}{}\n", "x".repeat(8 * 1024 - detail.len() - 1))
    };
    let one = padded(sale("2026-10-03", ORDER_1, KURTA, COMMISSION, "-1.00"));
    let chunk = gzip(&one.repeat(1024 * 1024 / one.len()));
    let mut body = gzip(&small_settlement("12000000060"));
    for _ in 0..70 {
        body.extend_from_slice(&chunk);
    }
    assert!(body.len() < 5 * 1024 * 1024, "{} bytes", body.len());
    let answer = upload(&s, &t.token, &t, GZIP, body).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
    // Refused for its size (its lines alone would import, not reconciling).
    assert!(
        answer.json()["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["reason"].to_string().contains("size"))),
        "{}",
        answer.text
    );
    assert!(settlements(&s, &t).await.is_empty());
    let archived = objects_under(&s, &format!("merchants/{}/", t.merchant_id)).await;
    assert!(archived.is_empty(), "{archived:?}");
}

// ---- 5: the P&L -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_pnl_by_day_month_sku_and_order_is_the_one_worked_out_by_hand() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let answer = upload(&s, &t.token, &t, TSV, pnl_settlement("12000000010")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["total_amount"], "2393.50");
    assert_eq!(answer.json()["lines_total"], "2393.50");
    assert_eq!(answer.json()["reconciles"], true);
    let costs = put_cogs(&s, &t.token, &t, PNL_COGS).await;
    assert_eq!(costs.status, StatusCode::OK, "{}", costs.text);
    assert_eq!(costs.json()["saved"], 3);

    let pnl = october_pnl(&s, &t).await;
    assert_eq!(pnl["days"]["currency"], "INR");

    // 3 October (order 1):
    //   principal 2000.00, shipping 80.00 → net_revenue 2080.00 (taxes not in it)
    //   fees: Commission −240.00, FBA −90.00, closing −30.00 → −360.00
    //   taxes: Product Tax 360.00, TCS-CGST −5.00, TCS-SGST −5.00 → 350.00
    //   cogs 2 × 400.00 = 800.00
    //   net_profit 2080.00 − 360.00 − 800.00 = 920.00; margin 920 / 2080 = 0.44230… → 0.4423
    let oct3 = pnl_line(&pnl["days"], "2026-10-03");
    assert_amounts(
        oct3,
        &[
            ("principal", "2000.00"),
            ("shipping", "80.00"),
            ("refunds", "0"),
            ("net_revenue", "2080.00"),
            ("fees.Commission", "-240.00"),
            ("fees.FBAPerUnitFulfillmentFee", "-90.00"),
            ("fees.FixedClosingFee", "-30.00"),
            ("fees_total", "-360.00"),
            ("taxes.Product Tax", "360.00"),
            ("taxes.TCS-CGST", "-5.00"),
            ("taxes.TCS-SGST", "-5.00"),
            ("taxes_total", "350.00"),
            ("cogs", "800.00"),
            ("net_profit", "920.00"),
            ("margin", "0.4423"),
        ],
    );
    assert_eq!(oct3["units_sold"], 2);
    assert_eq!(oct3["units_without_cost"], 0);

    // 7 October (order 2, the refund of one kurta of order 1, the storage fee):
    //   principal 1000.00 + 600.00 = 1600.00; refunds −1000.00 → net_revenue 600.00
    //   fees: Commission −120.00 − 72.00 + 120.00 = −72.00; FBA −45.00 − 135.00 = −180.00;
    //         closing −15.00 − 15.00 = −30.00; RefundCommission −24.00; Storage Fee −75.50
    //         → −381.50
    //   taxes: Product Tax 180.00 + 108.00 − 180.00 = 108.00;
    //          TCS-CGST −2.50 − 1.50 + 2.50 = −1.50, TCS-SGST the same → 105.00
    //   cogs: 1 kurta × 450.00 (the cost from 5 October) + 3 mugs × 120.00 = 810.00
    //   net_profit 600.00 − 381.50 − 810.00 = −591.50; margin −591.50 / 600 = −0.98583… → −0.9858
    let oct7 = pnl_line(&pnl["days"], "2026-10-07");
    assert_amounts(
        oct7,
        &[
            ("principal", "1600.00"),
            ("shipping", "0"),
            ("refunds", "-1000.00"),
            ("net_revenue", "600.00"),
            ("fees.Commission", "-72.00"),
            ("fees.FBAPerUnitFulfillmentFee", "-180.00"),
            ("fees.FixedClosingFee", "-30.00"),
            ("fees.RefundCommission", "-24.00"),
            ("fees.Storage Fee", "-75.50"),
            ("fees_total", "-381.50"),
            ("taxes.Product Tax", "108.00"),
            ("taxes.TCS-CGST", "-1.50"),
            ("taxes.TCS-SGST", "-1.50"),
            ("taxes_total", "105.00"),
            ("cogs", "810.00"),
            ("net_profit", "-591.50"),
            ("margin", "-0.9858"),
        ],
    );
    assert_eq!(oct7["units_sold"], 4);
    assert_eq!(oct7["units_refunded"], 1);
    assert_eq!(pnl["days"]["lines"].as_array().map(Vec::len), Some(2));

    // October: principal 3600.00, shipping 80.00, refunds −1000.00 → net_revenue 2680.00
    //   fees −360.00 − 381.50 = −741.50; taxes 350.00 + 105.00 = 455.00; cogs 1610.00
    //   net_profit 2680.00 − 741.50 − 1610.00 = 328.50 (= 920.00 − 591.50)
    //   margin 328.50 / 2680 = 0.12257… → 0.1226
    //   (net_revenue + fees + taxes = 2680.00 − 741.50 + 455.00 = 2393.50: the deposit)
    let october = [
        ("principal", "3600.00"),
        ("shipping", "80.00"),
        ("refunds", "-1000.00"),
        ("net_revenue", "2680.00"),
        ("fees.Commission", "-312.00"),
        ("fees.FBAPerUnitFulfillmentFee", "-270.00"),
        ("fees.FixedClosingFee", "-60.00"),
        ("fees.RefundCommission", "-24.00"),
        ("fees.Storage Fee", "-75.50"),
        ("fees_total", "-741.50"),
        ("taxes.Product Tax", "468.00"),
        ("taxes_total", "455.00"),
        ("cogs", "1610.00"),
        ("net_profit", "328.50"),
        ("margin", "0.1226"),
    ];
    assert_eq!(pnl["months"]["lines"].as_array().map(Vec::len), Some(1));
    assert_amounts(pnl_line(&pnl["months"], "2026-10-01"), &october);
    assert_amounts(&pnl["months"]["totals"], &october);
    assert_amounts(&pnl["days"]["totals"], &october);

    // Per SKU (the storage fee names no SKU, so it is in no SKU's line):
    //   KURTA: principal 2000.00 + 1000.00 = 3000.00, shipping 80.00, refunds −1000.00
    //     → net_revenue 2080.00; fees: Commission −240.00 − 120.00 + 120.00 = −240.00,
    //     FBA −90.00 − 45.00 = −135.00, closing −45.00, RefundCommission −24.00 → −444.00
    //     cogs 2 × 400.00 + 1 × 450.00 = 1250.00; net_profit 2080.00 − 444.00 − 1250.00 = 386.00
    //     margin 386 / 2080 = 0.18557… → 0.1856
    //   MUG: net_revenue 600.00; fees −72.00 − 135.00 − 15.00 = −222.00; cogs 360.00
    //     net_profit 18.00; margin 18 / 600 = 0.0300
    let skus = &pnl["skus"];
    assert_amounts(
        pnl_line(skus, KURTA),
        &[
            ("principal", "3000.00"),
            ("shipping", "80.00"),
            ("refunds", "-1000.00"),
            ("net_revenue", "2080.00"),
            ("fees.Commission", "-240.00"),
            ("fees_total", "-444.00"),
            ("cogs", "1250.00"),
            ("net_profit", "386.00"),
            ("margin", "0.1856"),
        ],
    );
    assert_eq!(pnl_line(skus, KURTA)["units_sold"], 3);
    assert_eq!(pnl_line(skus, KURTA)["units_refunded"], 1);
    assert_amounts(
        pnl_line(skus, MUG),
        &[
            ("principal", "600.00"),
            ("net_revenue", "600.00"),
            ("fees_total", "-222.00"),
            ("cogs", "360.00"),
            ("net_profit", "18.00"),
            ("margin", "0.0300"),
        ],
    );
    assert_eq!(skus["lines"].as_array().map(Vec::len), Some(2));

    // Per order (both runs of order 1 added up):
    //   order 1: principal 2000.00, shipping 80.00, refunds −1000.00 → 1080.00; fees
    //     Commission −240.00 + 120.00 = −120.00, FBA −90.00, closing −30.00, RefundCommission
    //     −24.00 → −264.00; cogs 2 × 400.00 = 800.00 (refunded units give none back)
    //     net_profit 1080.00 − 264.00 − 800.00 = 16.00; margin 16 / 1080 = 0.01481… → 0.0148
    //   order 2: principal 1600.00; fees −192.00 − 180.00 − 30.00 = −402.00; cogs 810.00
    //     net_profit 1600.00 − 402.00 − 810.00 = 388.00; margin 388 / 1600 = 0.2425
    let orders = &pnl["orders"];
    assert_amounts(
        pnl_line(orders, ORDER_1),
        &[
            ("principal", "2000.00"),
            ("refunds", "-1000.00"),
            ("net_revenue", "1080.00"),
            ("fees_total", "-264.00"),
            ("cogs", "800.00"),
            ("net_profit", "16.00"),
            ("margin", "0.0148"),
        ],
    );
    assert_amounts(
        pnl_line(orders, ORDER_2),
        &[
            ("principal", "1600.00"),
            ("net_revenue", "1600.00"),
            ("fees_total", "-402.00"),
            ("cogs", "810.00"),
            ("net_profit", "388.00"),
            ("margin", "0.2425"),
        ],
    );
    // The orders' profit 16.00 + 388.00 = 404.00; with the storage fee −75.50: 328.50.
    assert_amounts(&orders["totals"], &[("net_profit", "404.00")]);

    // The same as CSV: a header row, one row per day and the total.
    let m = &t.merchant_id;
    let csv = send_raw(
        &s,
        Method::GET,
        &t.token,
        &format!("/v1/merchants/{m}/pnl?from=2026-10-01&to=2026-10-31&granularity=day&format=csv"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let rows = csv_rows(&csv.text);
    let header = &rows[0];
    assert_eq!(header[0], "key");
    assert_eq!(rows.len(), 4, "header, 2 days, total: {}", csv.text);
    let cell = |key: &str, column: &str| -> String {
        let at = header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column}: {header:?}"));
        let row = rows
            .iter()
            .find(|r| r[0] == key)
            .unwrap_or_else(|| panic!("no row {key}: {}", csv.text));
        row[at].clone()
    };
    for (key, column, value) in [
        ("2026-10-03", "principal", "2000.00"),
        ("2026-10-03", "net_revenue", "2080.00"),
        ("2026-10-03", "cogs", "800.00"),
        ("2026-10-03", "net_profit", "920.00"),
        ("2026-10-03", "margin", "0.4423"),
        ("2026-10-03", "fee:Commission", "-240.00"),
        ("2026-10-03", "tax:Product Tax", "360.00"),
        ("2026-10-07", "refunds", "-1000.00"),
        ("2026-10-07", "fee:Storage Fee", "-75.50"),
        ("2026-10-07", "net_profit", "-591.50"),
        ("total", "net_revenue", "2680.00"),
        ("total", "fees_total", "-741.50"),
        ("total", "taxes_total", "455.00"),
        ("total", "net_profit", "328.50"),
        ("total", "margin", "0.1226"),
    ] {
        assert_eq!(cell(key, column), value, "{key} {column}");
    }

    // Questions the P&L cannot answer: 422, never a guess.
    for query in [
        "pnl?from=2026-10-31&to=2026-10-01",
        "pnl?from=2025-01-01&to=2026-10-31",
        "pnl?from=2026-10-01&to=2026-10-31&granularity=year",
        "pnl?from=2026-10-01&to=2026-10-31&format=xml",
        "pnl?from=2026-10-01&to=2026-10-31&currency=rupees",
        "pnl?from=01.10.2026",
        "pnl/orders?from=2026-01-01&to=2026-10-31",
    ] {
        let (status, body) = s.get(&t.token, &format!("/v1/merchants/{m}/{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
}

/// A CSV without quoted commas, BOM and CRLF aside.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end_matches('\r')
                .split(',')
                .map(|c| c.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

// ---- 6: costs of goods (A3) -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a3_cogs_upload_reports_every_bad_row_by_line_and_stores_no_other_financial_fields()
{
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let cogs_path = format!("/v1/merchants/{}/cogs", t.merchant_id);

    // Lines 3, 4 and 5 are bad (a cost that is no number, no SKU, a 13th month); 2 and 6 good.
    let bad = "sku,unit_cost,currency,effective_from\n\
               KURTA-RED-M,400.00,INR,2026-10-01\n\
               MUG-BLUE,abc,INR,2026-10-01\n\
               ,100.00,INR,2026-10-01\n\
               TEE-1,100.00,INR,2026-13-01\n\
               TEE-2,150.00,INR,2026-10-01\n";
    let answer = put_cogs(&s, &t.token, &t, bad).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
    assert_eq!(
        problem_lines(&answer.json()),
        BTreeSet::from([3, 4, 5]),
        "{}",
        answer.text
    );
    assert_eq!(
        read(&s, &t, &cogs_path).await["items"],
        json!([]),
        "nothing saved"
    );

    // Columns beyond the four: refused whole, whatever they hold.
    for extra in ["card_number", "bank_account"] {
        let csv = format!(
            "sku,unit_cost,currency,effective_from,{extra}\n\
             KURTA-RED-M,400.00,INR,2026-10-01,4111111111111111\n"
        );
        let answer = put_cogs(&s, &t.token, &t, &csv).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
        assert!(
            !answer.text.contains("4111111111111111"),
            "the number is not echoed: {}",
            answer.text
        );
    }
    // A value that looks like a card number in a known column: refused, not echoed.
    let answer = put_cogs(
        &s,
        &t.token,
        &t,
        "sku,unit_cost,currency,effective_from\n4111111111111111,400.00,INR,2026-10-01\n",
    )
    .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "file-rejected");
    assert!(!answer.text.contains("4111111111111111"), "{}", answer.text);
    assert_eq!(read(&s, &t, &cogs_path).await["items"], json!([]));
    // Not CSV: 415.
    let answer = send_raw(
        &s,
        Method::PUT,
        &t.token,
        &cogs_path,
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        answer.text
    );

    // A good file as Excel saves "CSV UTF-8": a byte order mark, CRLF, a blank row at the end;
    // and the columns in another order.
    let good = "\u{feff}effective_from,sku,currency,unit_cost\r\n\
                2026-10-01,KURTA-RED-M,INR,400.00\r\n\
                2026-09-01,MUG-BLUE,INR,120.00\r\n\
                ,,,\r\n";
    let answer = put_cogs(&s, &t.token, &t, good).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json(), json!({"saved": 2}));
    let listed = read(&s, &t, &cogs_path).await;
    let costs: BTreeMap<String, (String, String, String)> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["sku"].as_str().unwrap().to_owned(),
                (
                    c["unit_cost"].as_str().unwrap().to_owned(),
                    c["currency"].as_str().unwrap().to_owned(),
                    c["effective_from"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        costs,
        BTreeMap::from([
            (
                KURTA.into(),
                ("400.00".into(), "INR".into(), "2026-10-01".into())
            ),
            (
                MUG.into(),
                ("120.00".into(), "INR".into(), "2026-09-01".into())
            ),
        ]),
        "{listed}"
    );

    // The same (SKU, date) again replaces the cost; the other stays.
    let answer = put_cogs(
        &s,
        &t.token,
        &t,
        "sku,unit_cost,currency,effective_from\nKURTA-RED-M,420.00,INR,2026-10-01\n",
    )
    .await;
    assert_eq!(answer.json(), json!({"saved": 1}), "{}", answer.text);
    let listed = read(&s, &t, &cogs_path).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{listed}");
    let kurta = items.iter().find(|c| c["sku"] == KURTA).expect("the kurta");
    assert_eq!(kurta["unit_cost"], "420.00");

    // After the whole flow, no item anywhere has a field for card or bank details.
    let sensitive = ["card", "iban", "account_number", "bank"];
    for item in scan_table(&s.stack.resources.table).await {
        for name in item.keys() {
            let lower = name.to_ascii_lowercase();
            assert!(
                !sensitive.iter().any(|w| lower.contains(w)),
                "{} item has attribute {name}",
                kind(&item)
            );
        }
        for value in item.values() {
            if let Ok(text) = value.as_s() {
                assert!(!text.contains("4111111111111111"), "stored: {text}");
            }
        }
    }
}

// ---- 7: the scheduled import from Amazon and the reconciliation --------------------------------

/// `POST /_local/run/settlement-import`: the schedule's fan-out, now.
async fn run_settlement_import(s: &TestStack) {
    let (status, body) = s
        .call(Method::POST, None, "/_local/run/settlement-import", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["merchants"], 1, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_scheduled_import_brings_the_sandbox_settlements_once_and_reconciles_orders() {
    let s = stack().await;
    let t = s.amazon_merchant(OWNER).await;
    let m = merchant_id(&t);
    let expected = s.stack.amazon.settlements(amazon_sandbox::DEMO_SELLER_ID);
    assert_eq!(expected.len(), 3, "the sandbox serves three settlements");
    assert!(expected.iter().any(|e| e.gzip), "one of them gzip");

    // The merchant uploaded the newest one by hand before the schedule ran: the schedule takes
    // it as imported (same content), no conflict, no second copy.
    let newest = expected.last().expect("the newest settlement");
    let answer = upload(&s, &t.token, &t, TSV, newest.tsv.clone()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["source"], "upload");

    run_settlement_import(&s).await;
    let imported = eventually_within(
        "the three sandbox settlements imported",
        StdDuration::from_secs(90),
        || async {
            let items = settlements(&s, &t).await;
            (items.len() == 3 && items.iter().all(|i| i["status"] == "imported")).then_some(items)
        },
    )
    .await;
    for e in &expected {
        let got = imported
            .iter()
            .find(|i| i["settlement_id"] == e.settlement_id.as_str())
            .unwrap_or_else(|| panic!("settlement {} imported: {imported:?}", e.settlement_id));
        // The sandbox writes total-amount as the exact sum of its lines, in paise.
        assert_eq!(got["total_amount"], rupees(e.total_paise), "{got}");
        assert_eq!(got["lines_total"], rupees(e.total_paise), "{got}");
        assert_eq!(got["reconciles"], true, "{got}");
        assert_eq!(got["currency"], "INR");
        let source = if e.settlement_id == newest.settlement_id {
            "upload"
        } else {
            "amazon"
        };
        assert_eq!(got["source"], source, "{got}");
    }
    // Newest first.
    let listed: Vec<&str> = imported
        .iter()
        .filter_map(|i| i["settlement_id"].as_str())
        .collect();
    let newest_first: Vec<&str> = expected
        .iter()
        .rev()
        .map(|e| e.settlement_id.as_str())
        .collect();
    assert_eq!(listed, newest_first);
    // The run is over once it saved where it got to.
    let first_run = eventually_within(
        "the first run's state",
        StdDuration::from_secs(60),
        || async { s.stack.store.settlement_import_state(&m).await.ok()? },
    )
    .await
    .last_run_at;
    // Every report is marked imported, the uploaded one too (the next runs skip them).
    for e in &expected {
        let marked = s
            .stack
            .store
            .imported_report(&m, &e.report_id)
            .await
            .expect("store answers");
        assert_eq!(
            marked.as_ref().map(|id| id.as_str()),
            Some(e.settlement_id.as_str()),
            "report {}",
            e.report_id
        );
    }

    // Again: the run ends (its state moves on) and nothing is imported twice.
    run_settlement_import(&s).await;
    eventually_within("the second run", StdDuration::from_secs(60), || async {
        let state = s.stack.store.settlement_import_state(&m).await.ok()??;
        (state.last_run_at > first_run).then_some(())
    })
    .await;
    let mut again = settlements(&s, &t).await;
    let mut before = imported.clone();
    let by_id = |v: &Value| v["settlement_id"].as_str().unwrap_or_default().to_owned();
    again.sort_by_key(by_id);
    before.sort_by_key(by_id);
    assert_eq!(again, before, "the same three, unchanged");

    // The reconciliation of the last 60 days (the sandbox's orders and settlements).
    let today = india_today();
    let from = today - Duration::days(60);
    let rec = read(
        &s,
        &t,
        &format!(
            "/v1/merchants/{}/reconciliation?from={from}&to={today}",
            t.merchant_id
        ),
    )
    .await;
    let deposits: BTreeSet<&str> = rec["deposits"]
        .as_array()
        .expect("deposits")
        .iter()
        .filter_map(|d| d["settlement_id"].as_str())
        .collect();
    let settlement_ids: BTreeSet<&str> =
        expected.iter().map(|e| e.settlement_id.as_str()).collect();
    assert_eq!(deposits, settlement_ids, "{rec}");
    let flagged = |order: &str| -> Value {
        rec["orders"]["flagged"]
            .as_array()
            .expect("flagged")
            .iter()
            .find(|f| f["order_id"] == order)
            .cloned()
            .unwrap_or_else(|| panic!("order {order} flagged: {rec}"))
    };
    let underpaid = expected
        .iter()
        .find_map(|e| e.underpaid_order_id.clone())
        .expect("the sandbox underpays an order");
    let refunded = expected
        .iter()
        .find_map(|e| e.refunded_order_id.clone())
        .expect("the sandbox refunds an order");
    let u = flagged(&underpaid);
    assert_eq!(u["status"], "underpaid", "{u}");
    // Its principal is settled ₹1.00 short.
    let short: f64 = u["difference"].as_str().unwrap().parse().unwrap();
    assert_eq!(short, -1.0, "{u}");
    assert_eq!(flagged(&refunded)["status"], "refunded");
    assert_eq!(rec["orders"]["counts"]["underpaid"], 1, "{rec}");
    assert_eq!(rec["orders"]["counts"]["refunded"], 1, "{rec}");
    assert!(
        rec["orders"]["counts"]["paid"].as_u64().unwrap_or(0) > 0,
        "{rec}"
    );
}

// ---- 8: large files through a presigned upload -------------------------------------------------

/// Creates an upload; answers its view.
async fn create_upload(s: &TestStack, t: &Tenant) -> Value {
    let (status, body) = s
        .post(
            &t.token,
            &format!("{}/uploads", settlements_path(t)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// PUTs `bytes` to the upload's presigned URL with the headers it names.
async fn put_to_upload_url(upload: &Value, bytes: Vec<u8>) {
    let mut req = reqwest::Client::new().put(upload["upload_url"].as_str().expect("upload_url"));
    for (name, value) in upload["headers"].as_object().expect("headers") {
        req = req.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let res = req.body(bytes).send().await.expect("the bucket answers");
    assert!(
        res.status().is_success(),
        "PUT to the upload URL: {}",
        res.status()
    );
}

async fn start_import(s: &TestStack, t: &Tenant, id: &str) -> (StatusCode, Value) {
    s.post(
        &t.token,
        &format!("{}/uploads/{id}/import", settlements_path(t)),
        json!({}),
    )
    .await
}

/// Waits until the upload's import is finished; answers its view.
async fn finished_upload(s: &TestStack, t: &Tenant, id: &str) -> Value {
    let what = format!("upload {id} finished");
    eventually_within(&what, StdDuration::from_secs(60), || async {
        let body = read(s, t, &format!("{}/uploads/{id}", settlements_path(t))).await;
        let running = ["awaiting_file", "queued", "running"];
        (!running.contains(&body["status"].as_str().unwrap_or_default())).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_large_files_go_through_a_presigned_upload_and_are_imported_in_the_background() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;

    let up = create_upload(&s, &t).await;
    let id = up["id"].as_str().expect("an upload id").to_owned();
    assert_eq!(up["status"], "awaiting_file");
    assert_eq!(up["method"], "PUT");
    assert_eq!(up["headers"]["content-type"], "application/octet-stream");
    assert!(up["expires_at"].is_string(), "{up}");
    put_to_upload_url(&up, gzip(&pnl_settlement("12000000020"))).await;
    let (status, body) = start_import(&s, &t, &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = finished_upload(&s, &t, &id).await;
    assert_eq!(done["status"], "imported", "{done}");
    assert_eq!(done["settlement_id"], "12000000020");
    let shown = read(&s, &t, &format!("{}/12000000020", settlements_path(&t))).await;
    // The same totals as the direct upload of the same file (worked out at pnl_settlement).
    assert_eq!(shown["total_amount"], "2393.50");
    assert_eq!(shown["lines_total"], "2393.50");
    assert_eq!(shown["reconciles"], true);
    assert_eq!(shown["source"], "upload");
    // Finished: a second import is refused.
    let (status, body) = start_import(&s, &t, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], format!("{PROBLEM_BASE}upload-finished"));

    // A malformed file: rejected with its problems, nothing stored.
    let up = create_upload(&s, &t).await;
    let bad_id = up["id"].as_str().unwrap().to_owned();
    let d = "2026-10-03";
    let bad = flat_file(
        "12000000021",
        "1000.00",
        &[
            units(sale(d, ORDER_1, KURTA, PRINCIPAL, "1000.00"), "1"),
            sale(d, ORDER_1, KURTA, COMMISSION, "ten"),
        ],
    );
    put_to_upload_url(&up, bad.into_bytes()).await;
    let (status, body) = start_import(&s, &t, &bad_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = finished_upload(&s, &t, &bad_id).await;
    assert_eq!(done["status"], "rejected", "{done}");
    assert_eq!(problem_lines(&done), BTreeSet::from([4]), "{done}");
    let archived = objects_under(
        &s,
        &format!("merchants/{}/settlements/12000000021/", t.merchant_id),
    )
    .await;
    assert!(
        archived.is_empty(),
        "nothing of a rejected file is kept: {archived:?}"
    );

    // An upload whose file never came: failed, saying so.
    let up = create_upload(&s, &t).await;
    let empty_id = up["id"].as_str().unwrap().to_owned();
    let (status, body) = start_import(&s, &t, &empty_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = finished_upload(&s, &t, &empty_id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["error"].is_string(), "{done}");
    let (status, body) = start_import(&s, &t, &empty_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The same file once more: already imported, pointing at the settlement.
    let up = create_upload(&s, &t).await;
    let same_id = up["id"].as_str().unwrap().to_owned();
    put_to_upload_url(&up, pnl_settlement("12000000020").into_bytes()).await;
    let (status, body) = start_import(&s, &t, &same_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = finished_upload(&s, &t, &same_id).await;
    assert_eq!(done["status"], "already_imported", "{done}");
    assert_eq!(done["settlement_id"], "12000000020");
    // Other content under the same settlement id: conflict, the stored one stays.
    let up = create_upload(&s, &t).await;
    let other_id = up["id"].as_str().unwrap().to_owned();
    put_to_upload_url(&up, small_settlement("12000000020").into_bytes()).await;
    let (status, body) = start_import(&s, &t, &other_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = finished_upload(&s, &t, &other_id).await;
    assert_eq!(done["status"], "conflict", "{done}");
    let shown = read(&s, &t, &format!("{}/12000000020", settlements_path(&t))).await;
    assert_eq!(shown["total_amount"], "2393.50");

    // Only the good file's settlement is there.
    let ids: Vec<Value> = settlements(&s, &t)
        .await
        .iter()
        .map(|s| s["settlement_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("12000000020")]);
    // Unknown upload ids: 404.
    let unknown = ecomdrive_core::ids::SettlementUploadId::generate();
    for path in [
        format!("{}/uploads/{unknown}", settlements_path(&t)),
        format!("{}/uploads/not-an-id", settlements_path(&t)),
    ] {
        let (status, body) = s.get(&t.token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, body) = start_import(&s, &t, unknown.as_str()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---- 9: concurrent imports of the same file ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_a8_the_same_settlement_imported_concurrently_is_one_settlement_with_the_sums_of_one()
 {
    let s = stack().await;
    // The reference: one import through the API.
    let once = s.merchant("once@ledger.example").await;
    let answer = upload(&s, &once.token, &once, TSV, pnl_settlement("12000000030")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    // Four imports of the same file at once, straight into the importer.
    let raced = s.merchant("raced@ledger.example").await;
    let m = merchant_id(&raced);
    let importer = &s.stack.settlement_import.importer;
    let file = || SettlementFile::Bytes(pnl_settlement("12000000030").into_bytes().into());
    let origin = || Origin {
        source: SettlementSource::Upload,
        report_id: None,
    };
    let now = OffsetDateTime::now_utc();
    let (a, b, c, d) = tokio::join!(
        importer.import(&m, file(), origin(), now),
        importer.import(&m, file(), origin(), now),
        importer.import(&m, file(), origin(), now),
        importer.import(&m, file(), origin(), now),
    );
    for outcome in [a, b, c, d] {
        let outcome = outcome.expect("the import reaches AWS");
        assert!(
            matches!(
                outcome,
                ImportOutcome::Imported(_) | ImportOutcome::AlreadyImported(_)
            ),
            "{outcome:?}"
        );
    }

    let listed = settlements(&s, &raced).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "imported");
    assert_eq!(listed[0]["total_amount"], "2393.50");
    assert_eq!(
        october_pnl(&s, &raced).await,
        october_pnl(&s, &once).await,
        "four concurrent imports add up like one"
    );
    let archived = objects_under(
        &s,
        &format!("merchants/{}/settlements/12000000030/", raced.merchant_id),
    )
    .await;
    assert_eq!(archived.len(), 1, "{archived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_a_half_finished_import_counts_for_nothing_and_a_retry_finishes_it() {
    let s = stack().await;
    let reference = s.merchant("reference@ledger.example").await;
    let answer = upload(
        &s,
        &reference.token,
        &reference,
        TSV,
        pnl_settlement("12000000031"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    // An import that stopped after its summary and day sums (a crash, a timeout).
    let t = s.merchant(OWNER).await;
    let m = merchant_id(&t);
    let file = pnl_settlement("12000000031");
    let parsed = ecomdrive_core::settlement::parse_settlement(file.as_bytes(), |_| {})
        .expect("the file parses");
    let record = ecomdrive_aws::store::settlements::SettlementRecord::importing(
        &parsed,
        SettlementSource::Upload,
        format!(
            "merchants/{}/settlements/12000000031/{}",
            t.merchant_id, parsed.fingerprint
        ),
        None,
        OffsetDateTime::now_utc(),
    );
    let store = &s.stack.store;
    store
        .begin_settlement_import(&m, &record)
        .await
        .expect("the import starts");
    store
        .put_settlement_days(&m, &record, &parsed.by_day, &parsed.by_sku_day)
        .await
        .expect("the day sums are written");

    let empty = s.merchant("empty@ledger.example").await;
    assert_eq!(
        october_pnl(&s, &t).await,
        october_pnl(&s, &empty).await,
        "an unfinished import is in no P&L"
    );
    let listed = settlements(&s, &t).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "importing");

    // The same file again finishes it: exactly the sums of one import.
    let answer = upload(&s, &t.token, &t, TSV, file).await;
    assert!(
        answer.status.is_success(),
        "{} {}",
        answer.status,
        answer.text
    );
    assert_eq!(answer.json()["status"], "imported", "{}", answer.text);
    assert_eq!(october_pnl(&s, &t).await, october_pnl(&s, &reference).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_settlements_with_lines_on_the_same_day_add_up_in_the_pnl() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    // Two settlements, each with order 1's kurta on 3 October (1005.50 each, see one_order_lines).
    for id in ["12000000050", "12000000051"] {
        let answer = upload(&s, &t.token, &t, TSV, small_settlement(id)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{id}: {}", answer.text);
    }
    let pnl = october_pnl(&s, &t).await;
    // principal 2 × 1000.00 = 2000.00; fees 2 × (−120.00 − 54.50) = −349.00;
    // taxes 2 × 180.00 = 360.00; no costs: net_profit 2000.00 − 349.00 = 1651.00,
    // margin 1651 / 2000 = 0.8255; 2 units sold without a cost.
    let oct3 = pnl_line(&pnl["days"], "2026-10-03");
    assert_amounts(
        oct3,
        &[
            ("principal", "2000.00"),
            ("fees_total", "-349.00"),
            ("taxes_total", "360.00"),
            ("cogs", "0"),
            ("net_profit", "1651.00"),
            ("margin", "0.8255"),
        ],
    );
    assert_eq!(oct3["units_sold"], 2);
    assert_eq!(oct3["units_without_cost"], 2);
    assert_amounts(
        pnl_line(&pnl["orders"], ORDER_1),
        &[("principal", "2000.00"), ("net_profit", "1651.00")],
    );
}

/// The one-order settlement of [`one_order_lines`] in another currency and marketplace.
fn dirham_settlement(settlement_id: &str) -> String {
    flat_file(settlement_id, "1005.50", &one_order_lines("-120.00"))
        .replace("\tINR\t", "\tAED\t")
        .replace("Amazon.in", "Amazon.ae")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_a_pnl_in_one_currency_counts_only_the_settlements_in_that_currency() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    // The same sale on the same day, once settled in rupees (Amazon.in), once in dirhams
    // (Amazon.ae): principal 1000.00 each.
    let answer = upload(&s, &t.token, &t, TSV, small_settlement("12000000070")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let answer = upload(&s, &t.token, &t, TSV, dirham_settlement("12000000071")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["currency"], "AED");

    let m = &t.merchant_id;
    for currency in ["INR", "AED"] {
        for (view, key) in [
            ("pnl", "2026-10-03"),
            ("pnl/skus", KURTA),
            ("pnl/orders", ORDER_1),
        ] {
            let path = format!(
                "/v1/merchants/{m}/{view}?from=2026-10-01&to=2026-10-31&currency={currency}"
            );
            let pnl = read(&s, &t, &path).await;
            assert_eq!(pnl["currency"], currency);
            // Only that currency's 1000.00, never 1000.00 rupees + 1000.00 dirhams.
            assert_amounts(
                pnl_line(&pnl, key),
                &[("principal", "1000.00"), ("net_revenue", "1000.00")],
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_pnl_csv_never_hands_a_spreadsheet_a_formula() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let d = "2026-10-03";
    let sku = "=SUM(A1:A9)";
    let lines = [
        units(sale(d, ORDER_1, sku, PRINCIPAL, "500.00"), "1"),
        sale(d, ORDER_1, sku, COMMISSION, "-50.00"),
    ];
    // 500.00 − 50.00 = 450.00
    let answer = upload(
        &s,
        &t.token,
        &t,
        TSV,
        flat_file("12000000080", "450.00", &lines),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let csv = send_raw(
        &s,
        Method::GET,
        &t.token,
        &format!(
            "/v1/merchants/{}/pnl/skus?from=2026-10-01&to=2026-10-31&format=csv",
            t.merchant_id
        ),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    let rows = csv_rows(&csv.text);
    let keys: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(keys, vec!["key", "'=SUM(A1:A9)", "total"], "{}", csv.text);
    let at = rows[0]
        .iter()
        .position(|h| h == "net_revenue")
        .expect("net_revenue");
    assert_eq!(rows[1][at], "500.00");
}

// ---- 10: audit (A14) --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a14_settlement_and_cogs_uploads_are_audited_with_who_did_them() {
    let s = stack().await;
    let t = s.merchant(OWNER).await;
    let admin = member(&s, &t, "admin@ledger.example", "admin").await;

    let answer = upload(&s, &t.token, &t, TSV, small_settlement("12000000040")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    // A repeat changes nothing, and is no new record.
    let answer = upload(&s, &t.token, &t, TSV, small_settlement("12000000040")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let answer = put_cogs(&s, &admin, &t, PNL_COGS).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    // A refused file stores nothing, and is no record either.
    let answer = put_cogs(
        &s,
        &admin,
        &t,
        "sku,unit_cost,currency,effective_from\nX,abc,INR,2026-10-01\n",
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);

    let log = read(&s, &t, &format!("/v1/merchants/{}/audit", t.merchant_id)).await;
    let items = log["items"].as_array().expect("items");
    let of =
        |action: &str| -> Vec<&Value> { items.iter().filter(|i| i["action"] == action).collect() };
    let imports = of("settlement.import");
    assert_eq!(imports.len(), 1, "{log}");
    assert_eq!(imports[0]["actor"], s.stack.idp.sub_for(OWNER).as_str());
    assert_eq!(imports[0]["target"], "12000000040");
    let cogs = of("cogs.upload");
    assert_eq!(cogs.len(), 1, "{log}");
    assert_eq!(
        cogs[0]["actor"],
        s.stack.idp.sub_for("admin@ledger.example").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_an_import_of_other_content_that_stopped_long_ago_gives_way_and_its_sums_never_count()
 {
    let s = stack().await;
    // What the P&L of the new content alone looks like, from a merchant of its own.
    let reference = s.merchant("reference@ledger.example").await;
    let new_content = small_settlement("12000000070");
    let answer = upload(&s, &reference.token, &reference, TSV, new_content.clone()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    // Other content under the same id stopped half-way (summary and day sums written).
    let t = s.merchant(OWNER).await;
    let m = merchant_id(&t);
    let old_content = pnl_settlement("12000000070");
    let parsed = ecomdrive_core::settlement::parse_settlement(old_content.as_bytes(), |_| {})
        .expect("the file parses");
    let importing = |started: OffsetDateTime| {
        ecomdrive_aws::store::settlements::SettlementRecord::importing(
            &parsed,
            SettlementSource::Upload,
            format!("merchants/{}/settlements/x", t.merchant_id),
            None,
            started,
        )
    };
    let store = &s.stack.store;
    let recent = importing(OffsetDateTime::now_utc());
    store
        .begin_settlement_import(&m, &recent)
        .await
        .expect("starts");
    store
        .put_settlement_days(&m, &recent, &parsed.by_day, &parsed.by_sku_day)
        .await
        .expect("the day sums are written");

    // While it may still be running, other content is refused.
    let answer = upload(&s, &t.token, &t, TSV, new_content.clone()).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);

    // Two hours later it has stopped for good (a function runs at most 15 minutes): the new
    // content takes its place, and the old content's day sums, still in the table, count for
    // nothing.
    let stopped = importing(OffsetDateTime::now_utc() - time::Duration::hours(2));
    store
        .begin_settlement_import(&m, &stopped)
        .await
        .expect("restarts");
    let answer = upload(&s, &t.token, &t, TSV, new_content).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["total_amount"], "1005.50");
    assert_eq!(october_pnl(&s, &t).await, october_pnl(&s, &reference).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_a8_the_same_lines_with_blank_lines_between_are_the_same_settlement_and_count_once()
{
    let s = stack().await;
    let reference = s.merchant("reference@ledger.example").await;
    let file = pnl_settlement("12000000071");
    let answer = upload(&s, &reference.token, &reference, TSV, file.clone()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    let t = s.merchant(OWNER).await;
    let answer = upload(&s, &t.token, &t, TSV, file.clone()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    // The same lines with a blank line after the summary: every line number moves by one.
    let mut lines: Vec<&str> = file.lines().collect();
    lines.insert(2, "");
    let spaced = lines.join("\n") + "\n";
    let answer = upload(&s, &t.token, &t, TSV, spaced).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the same settlement: {}",
        answer.text
    );
    assert_eq!(
        october_pnl(&s, &t).await,
        october_pnl(&s, &reference).await,
        "its orders count once"
    );
}
