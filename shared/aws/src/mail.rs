//! E-mail through Amazon SES (v2): the public deletion form's confirmation links. Locally the
//! emulator records what was sent (`GET /_local/emails`).

use crate::AwsError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

#[derive(Clone)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    /// The verified SES identity mail is sent from (template.yaml `SenderIdentity`).
    from: String,
}

impl Mailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }

    /// Sends a plain-text e-mail to one address.
    pub async fn send_text(&self, to: &str, subject: &str, text: &str) -> Result<(), AwsError> {
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .expect("data is set")
        };
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(
                EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(content(subject))
                            .body(Body::builder().text(content(text)).build())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                AwsError::Mail(aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(())
    }
}
