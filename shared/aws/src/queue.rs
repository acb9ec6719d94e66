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

    pub async fn send_json<T: Serialize>(&self, kind: &str, job: &T) -> Result<(), AwsError> {
        let body = serde_json::to_string(job).map_err(|e| AwsError::Queue(e.to_string()))?;
        self.send(Some(kind), body).await
    }
}
