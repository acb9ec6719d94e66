//! SQS queues between functions.

use crate::AwsError;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::Serialize;

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

    /// Sends many messages of the queue's main kind, ten per call (SQS's batch limit). Entries
    /// SQS did not take are sent again once; an error names how many were still refused.
    pub async fn send_all(&self, bodies: Vec<String>) -> Result<(), AwsError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in bodies.chunks(10) {
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
                    break;
                }
                if attempt == 1 {
                    return Err(AwsError::Queue(format!(
                        "{} messages were refused twice",
                        pending.len()
                    )));
                }
            }
        }
        Ok(())
    }

    pub async fn send_json<T: Serialize>(&self, kind: &str, job: &T) -> Result<(), AwsError> {
        let body = serde_json::to_string(job).map_err(|e| AwsError::Queue(e.to_string()))?;
        self.send(Some(kind), body).await
    }
}
