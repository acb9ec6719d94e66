//! The SQS partial-batch helper: run a handler on each record of a batch and report exactly the
//! records that failed, so SQS redelivers those (and, after `maxReceiveCount`, moves them to the
//! DLQ) while the others are deleted. Needs `FunctionResponseTypes: [ReportBatchItemFailures]`
//! on the event source mapping.
//!
//! How records run:
//! - A record fails if its handler returns `Err` **or panics**: the panic is caught, so one poison
//!   record fails only itself (the release profile keeps `panic = "unwind"` for this).
//! - Records run concurrently, at most [`MAX_CONCURRENT_RECORDS`] at a time: handlers mostly wait
//!   on DynamoDB or the Graph API, and a batch of 10 done one by one would take 10 round trips.
//! - Records of one FIFO message group (`MessageGroupId`) run one after another, in order, and once
//!   one fails the rest of its group is reported failed without running, so a FIFO queue never
//!   sees its order broken. Records of standard queues have no group and run independently.
//! - A failed record without a message id (never seen from SQS) is reported with an empty
//!   identifier, which makes Lambda retry the whole batch: nothing is lost.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};

/// How many records (or FIFO groups) of one batch run at the same time.
pub const MAX_CONCURRENT_RECORDS: usize = 4;

/// Runs `handler` on every record of `event` and lists the failed ones in the response.
pub async fn process_batch<F, Fut, E>(event: SqsEvent, handler: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let handler = &handler;
    let failed: Vec<Vec<String>> = futures::stream::iter(lanes(event.records))
        .map(|lane| run_lane(lane, handler))
        .buffer_unordered(MAX_CONCURRENT_RECORDS)
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    for message_id in failed.into_iter().flatten() {
        response.add_failure(message_id);
    }
    response
}

/// Splits the batch into lanes that may run concurrently: one per FIFO message group (in arrival
/// order), one per record without a group.
fn lanes(records: Vec<SqsMessage>) -> Vec<Vec<SqsMessage>> {
    let mut lanes: Vec<Vec<SqsMessage>> = Vec::new();
    let mut lane_of_group: HashMap<String, usize> = HashMap::new();
    for record in records {
        match record.attributes.get("MessageGroupId").cloned() {
            Some(group) => match lane_of_group.get(&group) {
                Some(&index) => lanes[index].push(record),
                None => {
                    lane_of_group.insert(group, lanes.len());
                    lanes.push(vec![record]);
                }
            },
            None => lanes.push(vec![record]),
        }
    }
    lanes
}

/// Runs one lane in order; returns the ids to report as failed.
async fn run_lane<F, Fut, E>(lane: Vec<SqsMessage>, handler: &F) -> Vec<String>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut failed = Vec::new();
    for record in lane {
        let message_id = record.message_id.clone().unwrap_or_default();
        if !failed.is_empty() {
            tracing::warn!(
                message_id,
                "SQS record not processed: an earlier record of its message group failed"
            );
            failed.push(message_id);
            continue;
        }
        if let Err(error) = run_one(record, handler).await {
            tracing::warn!(message_id, %error, "SQS record failed");
            failed.push(message_id);
        }
    }
    failed
}

/// Runs the handler on one record, turning a panic (when the future is made or polled) into an
/// error message.
async fn run_one<F, Fut, E>(record: SqsMessage, handler: &F) -> Result<(), String>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let future = std::panic::catch_unwind(AssertUnwindSafe(|| handler(record)))
        .map_err(|panic| panic_message(panic.as_ref()))?;
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic_message(panic.as_ref())),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload");
    format!("handler panicked: {text}")
}

/// Queue bodies of serializable jobs (JSON).
pub fn to_bodies<T: serde::Serialize>(jobs: &[T]) -> Vec<String> {
    jobs.iter()
        .map(|j| serde_json::to_string(j).expect("jobs serialize"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::capture::with_captured_logs;
    use std::sync::{Arc, Mutex};

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(body.into());
        message
    }

    fn fifo_record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut message = record(id, body);
        message
            .attributes
            .insert("MessageGroupId".into(), group.into());
        message
    }

    fn batch(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
        let mut ids: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        ids.sort();
        ids
    }

    async fn by_body(message: SqsMessage) -> Result<(), String> {
        match message.body.as_deref() {
            Some("error") => Err("the store refused the write".into()),
            Some("panic") => panic!("poison record"),
            _ => Ok(()),
        }
    }

    #[tokio::test]
    async fn one_error_and_one_panic_fail_exactly_those_two_records() {
        let event = batch(vec![
            record("m-ok", "fine"),
            record("m-err", "error"),
            record("m-panic", "panic"),
        ]);
        let (response, logs) = with_captured_logs(process_batch(event, by_body)).await;
        assert_eq!(failed_ids(&response), ["m-err", "m-panic"]);

        let warnings: Vec<_> = logs
            .events()
            .into_iter()
            .filter(|e| e["level"] == "WARN")
            .collect();
        assert_eq!(
            warnings.len(),
            2,
            "one warning per failure: {:?}",
            logs.lines()
        );
        assert!(
            warnings
                .iter()
                .any(|w| w["message_id"] == "m-err" && w["error"] == "the store refused the write")
        );
        assert!(warnings.iter().any(|w| w["message_id"] == "m-panic"
            && w["error"].as_str().unwrap_or("").contains("poison record")));
    }

    #[tokio::test]
    async fn a_handler_that_panics_before_returning_its_future_fails_only_its_record() {
        let event = batch(vec![record("a", "panic-now"), record("b", "fine")]);
        let response = process_batch(event, |message: SqsMessage| {
            if message.body.as_deref() == Some("panic-now") {
                panic!("panicked while building the future");
            }
            async { Ok::<(), String>(()) }
        })
        .await;
        assert_eq!(failed_ids(&response), ["a"]);
    }

    #[tokio::test]
    async fn an_all_good_batch_reports_no_failure() {
        let event = batch(vec![record("a", "x"), record("b", "y")]);
        let response = process_batch(event, by_body).await;
        assert!(response.batch_item_failures.is_empty());
        // The Lambda wire format: an empty list, never a missing field.
        assert_eq!(
            serde_json::to_value(&response).expect("json"),
            serde_json::json!({"batchItemFailures": []})
        );
    }

    #[tokio::test]
    async fn a_failed_record_without_a_message_id_fails_the_whole_batch() {
        let mut nameless = record("", "error");
        nameless.message_id = None;
        let response = process_batch(batch(vec![nameless]), by_body).await;
        assert_eq!(failed_ids(&response), [""]);
    }

    #[tokio::test]
    async fn records_run_concurrently_up_to_the_limit() {
        let running = Arc::new(Mutex::new((0usize, 0usize))); // (now, most ever)
        let records = (0..10).map(|i| record(&format!("m-{i}"), "x")).collect();
        let handler = |_message: SqsMessage| {
            let running = running.clone();
            async move {
                {
                    let mut r = running.lock().expect("lock");
                    r.0 += 1;
                    r.1 = r.1.max(r.0);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                running.lock().expect("lock").0 -= 1;
                Ok::<(), String>(())
            }
        };
        let response = process_batch(batch(records), handler).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(running.lock().expect("lock").1, MAX_CONCURRENT_RECORDS);
    }

    #[tokio::test]
    async fn a_fifo_group_runs_in_order_and_stops_at_its_first_failure() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let event = batch(vec![
            fifo_record("g1-a", "conv-1", "fine"),
            fifo_record("g2-a", "conv-2", "fine"),
            fifo_record("g1-b", "conv-1", "error"),
            fifo_record("g2-b", "conv-2", "fine"),
            fifo_record("g1-c", "conv-1", "fine"),
        ]);
        let handler = |message: SqsMessage| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .expect("lock")
                    .push(message.message_id.clone().unwrap_or_default());
                by_body(message).await
            }
        };
        let response = process_batch(event, handler).await;
        // g1-c was never run, yet reported: it must not overtake g1-b.
        assert_eq!(failed_ids(&response), ["g1-b", "g1-c"]);
        let seen = seen.lock().expect("lock").clone();
        assert!(!seen.contains(&"g1-c".to_string()));
        let position = |id: &str| seen.iter().position(|s| s == id);
        assert!(position("g1-a") < position("g1-b"));
        assert!(position("g2-a") < position("g2-b"));
    }
}
