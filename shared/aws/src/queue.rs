//! SQS queues between functions.

use crate::AwsError;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::Serialize;

/// `SendMessageBatch` calls in flight at once in [`Queue::send_all`].
const BATCHES_IN_FLIGHT: usize = 8;

/// The message attribute that says what a queue message is (one queue may carry a few kinds).
pub const KIND_ATTRIBUTE: &str = "kind";

#[derive(Clone)]
pub struct Queue {
    sqs: Client,
    url: String,
}

impl Queue {
    pub fn new(sqs: Client, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a body as it is, tagged with its kind. Without a kind the message is the queue's
    /// main kind, and the whole of SQS's 1 MiB message limit is left to the body (attributes
    /// count toward it).
    pub async fn send(&self, kind: Option<&str>, body: String) -> Result<(), AwsError> {
        let kind_attr = kind
            .map(|k| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(k)
                    .build()
                    .map_err(|e| AwsError::Queue(e.to_string()))
            })
            .transpose()?;
        let mut req = self
            .sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body);
        if let Some(a) = kind_attr {
            req = req.message_attributes(KIND_ATTRIBUTE, a);
        }
        req.send()
            .await
            .map_err(|e| AwsError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// Sends many messages of the queue's main kind, ten per call (SQS's batch limit), a few
    /// calls at once. Entries SQS did not take are sent again once; an error names how many
    /// were still refused.
    pub async fn send_all(&self, bodies: Vec<String>) -> Result<(), AwsError> {
        use futures::StreamExt;
        // Owned chunks: a stream over borrowed slices makes the future not `Send` for callers
        // such as axum handlers (a higher-ranked lifetime the compiler cannot prove).
        let chunks: Vec<Vec<String>> = bodies.chunks(10).map(<[String]>::to_vec).collect();
        let results: Vec<Result<(), AwsError>> = futures::stream::iter(chunks)
            .map(|chunk| async move { self.send_batch(&chunk).await })
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn send_batch(&self, chunk: &[String]) -> Result<(), AwsError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let mut pending: Vec<(String, &String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| (i.to_string(), b))
            .collect();
        for attempt in 0..2 {
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body.as_str())
                        .build()
                        .map_err(|e| AwsError::Queue(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    AwsError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
                })?;
            let failed: Vec<String> = out.failed().iter().map(|f| f.id().to_owned()).collect();
            pending.retain(|(id, _)| failed.contains(id));
            if pending.is_empty() {
                return Ok(());
            }
            if attempt == 1 {
                break;
            }
        }
        Err(AwsError::Queue(format!(
            "{} messages were refused twice",
            pending.len()
        )))
    }

    pub async fn send_json<T: Serialize>(&self, kind: &str, job: &T) -> Result<(), AwsError> {
        let body = serde_json::to_string(job).map_err(|e| AwsError::Queue(e.to_string()))?;
        self.send(Some(kind), body).await
    }
}
