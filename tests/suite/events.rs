//! The sample events in `events/` are real: each reads as the event type AWS delivers and drives
//! its function in the local stack. A new file without a check here fails `every_sample_event_is_checked`.

use crate::support::{PAGE_A, stack};
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use ecomdrive_core::amazon::jobs::{MerchantJob, SettlementJob, SolicitationJob};
use ecomdrive_core::data_rights::{DeletionJob, ExportJob};
use ecomdrive_core::ids::{AmazonConnectionId, DeletionId, ExportId, MerchantId};
use ecomdrive_local::provision::repo_root;
use reqwest::StatusCode;
use serde_json::Value;

const CHECKED: &[&str] = &[
    "api/healthz.json",
    "api/list-conversations.json",
    "messenger-webhook/verify.json",
    "messenger-webhook/delivery.json",
    "messenger-ingest/sqs-delivery.json",
    "agent-reply/sqs-reply.json",
    "auth-claims/pre-token-generation-v2.json",
    "order-sync/schedule.json",
    "order-sync/sqs-merchant.json",
    "solicitation-scheduler/schedule.json",
    "solicitation-scheduler/sqs-merchant.json",
    "solicitation-sender/sqs-order.json",
    "settlement-import/schedule.json",
    "settlement-import/sqs-reports.json",
    "settlement-import/sqs-upload.json",
    "data-export/sqs-export.json",
    "data-deletion/form.json",
    "data-deletion-job/sqs-deletion.json",
    "retention-sweeper/schedule.json",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join("events").join(path))
        .unwrap_or_else(|e| panic!("events/{path}: {e}"))
}

fn http_event(path: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("events/{path} is not an HTTP API event: {e}"))
}

/// Sends an HTTP API event to the local stack as API Gateway would forward it.
async fn send(s: &crate::support::TestStack, e: &ApiGatewayV2httpRequest) -> (StatusCode, String) {
    let path = e.raw_path.clone().unwrap_or_default();
    let query = e
        .raw_query_string
        .clone()
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut req = s.browser.request(
        e.request_context.http.method.clone(),
        s.url(&format!("{path}{query}")),
    );
    for (name, value) in e.headers.iter() {
        if name != "host" {
            req = req.header(name, value);
        }
    }
    if let Some(body) = &e.body {
        req = req.body(body.clone());
    }
    let res = req.send().await.expect("the stack answers");
    (res.status(), res.text().await.unwrap_or_default())
}

#[test]
fn every_sample_event_is_checked() {
    let root = repo_root().join("events");
    let mut found = Vec::new();
    for dir in std::fs::read_dir(&root).expect("events/ exists").flatten() {
        if dir.path().is_dir() {
            for f in std::fs::read_dir(dir.path()).expect("readable").flatten() {
                found.push(format!(
                    "{}/{}",
                    dir.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ));
            }
        }
    }
    found.sort();
    let mut checked: Vec<String> = CHECKED.iter().map(|s| s.to_string()).collect();
    checked.sort();
    assert_eq!(
        found, checked,
        "every file in events/ needs a check in tests/suite/events.rs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sample_events_drive_their_functions() {
    let s = stack().await;
    let (status, body) = send(&s, &http_event("api/healthz.json")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    // Its bearer is a placeholder: the API refuses it as it would any bad token.
    let (status, _) = send(&s, &http_event("api/list-conversations.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The public deletion form answers a browser with its page (no account, no token needed).
    let (status, body) = send(&s, &http_event("data-deletion/form.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<form"), "the form page: {body}");
    let (status, body) = send(&s, &http_event("messenger-webhook/verify.json")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1158201444"));

    let t = s.connected_merchant("owner@events.example", PAGE_A).await;
    let (status, _) = send(&s, &http_event("messenger-webhook/delivery.json")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the sample delivery is signed with the local fake secret"
    );
    let conv = s.conversation_with(&t, "24000000000001").await;
    let msgs = s.messages(&t, conv["id"].as_str().unwrap()).await;
    assert_eq!(msgs[0]["text"], "Hello, where is my order?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_sample_events_drive_their_functions() {
    let s = crate::support::stack_with(|o| o.run_pollers = false).await;
    let t = s
        .connected_merchant("owner@events-sqs.example", PAGE_A)
        .await;
    let event: SqsEvent =
        serde_json::from_str(&read("messenger-ingest/sqs-delivery.json")).expect("an SQS event");
    let out = s.stack.ingest.handle_batch(event).await;
    assert!(out.batch_item_failures.is_empty());
    let conv = s.conversation_with(&t, "24000000000001").await;
    assert_eq!(conv["status"], "open");

    // A reply job for a reply this stack never had: handled (nothing to send), not failed.
    let event: SqsEvent =
        serde_json::from_str(&read("agent-reply/sqs-reply.json")).expect("an SQS event");
    let out = s.stack.agent_reply.handle_batch(event).await;
    assert!(out.batch_item_failures.is_empty());
    assert!(s.stack.sandbox.sent().is_empty());
}

#[test]
fn cognito_sample_event_gets_the_email_claim() {
    let event: Value =
        serde_json::from_str(&read("auth-claims/pre-token-generation-v2.json")).expect("JSON");
    let out = auth_claims::add_email_claim(event);
    assert_eq!(
        out["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["claimsToAddOrOverride"]
            ["email"],
        "owner@example.com"
    );
}

/// The Amazon jobs' sample events read as what AWS delivers (an EventBridge scheduled event from
/// the template's schedule rule, an SQS batch from the template's queue) and carry exactly the
/// job message the function reads (`ecomdrive_core::amazon::jobs`).
#[test]
fn amazon_job_sample_events_have_the_shapes_their_functions_read() {
    // SAM names a schedule's rule `<stack>-<FunctionLogicalId><EventName>-<suffix>`.
    for (path, rule) in [
        ("order-sync/schedule.json", "OrderSyncFunctionHourly"),
        (
            "solicitation-scheduler/schedule.json",
            "SolicitationSchedulerFunctionDaily",
        ),
        (
            "settlement-import/schedule.json",
            "SettlementImportFunctionEverySixHours",
        ),
        (
            "retention-sweeper/schedule.json",
            "RetentionSweeperFunctionDaily",
        ),
    ] {
        let event: EventBridgeEvent = serde_json::from_str(&read(path))
            .unwrap_or_else(|e| panic!("events/{path} is not an EventBridge event: {e}"));
        assert_eq!(event.source, "aws.events", "{path}");
        assert_eq!(event.detail_type, "Scheduled Event", "{path}");
        assert_eq!(event.region.as_deref(), Some("ap-south-1"), "{path}");
        let resources = event.resources.unwrap_or_default();
        assert!(
            resources
                .iter()
                .any(|arn| arn.contains(&format!(":rule/ecomdrive-{rule}-"))),
            "{path} comes from the {rule} rule: {resources:?}"
        );
    }

    let sqs_body = |path: &str, queue: &str| -> Value {
        let event: SqsEvent = serde_json::from_str(&read(path))
            .unwrap_or_else(|e| panic!("events/{path} is not an SQS event: {e}"));
        assert_eq!(event.records.len(), 1, "{path}");
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"), "{path}");
        assert!(
            record
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(&format!(":ecomdrive-{queue}"))),
            "{path} comes from {queue}"
        );
        serde_json::from_str(record.body.as_deref().expect("a body"))
            .unwrap_or_else(|e| panic!("events/{path}: the body is not JSON: {e}"))
    };
    for (path, queue) in [
        ("order-sync/sqs-merchant.json", "OrderSyncQueue"),
        (
            "solicitation-scheduler/sqs-merchant.json",
            "SolicitationPlanQueue",
        ),
    ] {
        let body = sqs_body(path, queue);
        let job: MerchantJob = serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("events/{path}: not a MerchantJob: {e}"));
        assert!(
            MerchantId::parse(job.merchant_id.as_str()).is_some(),
            "{path}"
        );
        assert!(
            AmazonConnectionId::parse(job.connection_id.as_str()).is_some(),
            "{path}"
        );
        assert_eq!(
            serde_json::to_value(&job).expect("serializes"),
            body,
            "{path} holds exactly a MerchantJob"
        );
    }

    let path = "solicitation-sender/sqs-order.json";
    let body = sqs_body(path, "SolicitationsQueue");
    let job: SolicitationJob = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("events/{path}: not a SolicitationJob: {e}"));
    assert!(MerchantId::parse(job.merchant_id.as_str()).is_some());
    assert!(AmazonConnectionId::parse(job.connection_id.as_str()).is_some());
    assert_eq!(job.order_id.as_str(), "402-1234567-7654321");
    assert_eq!(
        serde_json::to_value(&job).expect("serializes"),
        body,
        "{path} holds exactly a SolicitationJob"
    );

    for (path, upload) in [
        ("settlement-import/sqs-reports.json", false),
        ("settlement-import/sqs-upload.json", true),
    ] {
        let body = sqs_body(path, "SettlementImportQueue");
        let job: SettlementJob = serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("events/{path}: not a SettlementJob: {e}"));
        assert_eq!(
            matches!(job, SettlementJob::Upload { .. }),
            upload,
            "{path}"
        );
        assert_eq!(
            serde_json::to_value(&job).expect("serializes"),
            body,
            "{path} holds exactly a SettlementJob"
        );
    }

    let path = "data-export/sqs-export.json";
    let body = sqs_body(path, "ExportsQueue");
    let job: ExportJob = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("events/{path}: not an ExportJob: {e}"));
    assert!(ExportId::parse(job.export_id.as_str()).is_some(), "{path}");
    assert_eq!(serde_json::to_value(&job).expect("serializes"), body);

    let path = "data-deletion-job/sqs-deletion.json";
    let body = sqs_body(path, "DeletionsQueue");
    let job: DeletionJob = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("events/{path}: not a DeletionJob: {e}"));
    assert!(
        DeletionId::parse(job.deletion_id.as_str()).is_some(),
        "{path}"
    );
    assert_eq!(serde_json::to_value(&job).expect("serializes"), body);
}
