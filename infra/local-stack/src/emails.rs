//! `GET /_local/emails`: the e-mails the functions sent through SES, newest last. Locally nothing
//! leaves the machine; this is how a person (or a test) reads the deletion form's links.
//!
//! The functions' SES client is the real one, sending to the emulator; the local stack adds an
//! SDK interceptor to it that keeps each message SES accepted (the emulator's own state dump
//! lists every object of every test and grows too slow to read).

use aws_sdk_sesv2::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_sesv2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sesv2::error::BoxError;
use aws_sdk_sesv2::operation::send_email::SendEmailInput;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The messages SES accepted from this stack, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Outbox(Arc<Mutex<Vec<Value>>>);

impl Outbox {
    pub fn emails(&self) -> Vec<Value> {
        self.0.lock().expect("the outbox lock").clone()
    }

    /// An SES client that sends through `sdk` and records what SES accepted here.
    pub fn ses_client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_sesv2::Client {
        let conf = aws_sdk_sesv2::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_sesv2::Client::from_conf(conf)
    }
}

/// The message of the request under way, until SES has answered.
#[derive(Clone, Debug)]
struct Sending(Value);

impl Storable for Sending {
    type Storer = StoreReplace<Self>;
}

/// `{to, from, subject, body}` of a simple text message.
fn email_of(input: &SendEmailInput) -> Value {
    let simple = input.content().and_then(|c| c.simple());
    json!({
        "to": input.destination().map(|d| d.to_addresses()).unwrap_or_default(),
        "from": input.from_email_address(),
        "subject": simple.and_then(|m| m.subject()).map(|s| s.data()),
        "body": simple
            .and_then(|m| m.body())
            .and_then(|b| b.text())
            .map(|t| t.data()),
    })
}

impl Intercept for Outbox {
    fn name(&self) -> &'static str {
        "LocalOutbox"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<SendEmailInput>() {
            cfg.interceptor_state().store_put(Sending(email_of(input)));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let accepted = matches!(context.output_or_error(), Some(Ok(_)));
        if let (true, Some(Sending(email))) = (accepted, cfg.load::<Sending>()) {
            self.0.lock().expect("the outbox lock").push(email.clone());
        }
        Ok(())
    }
}

pub async fn list_emails(State(outbox): State<Outbox>) -> Json<Value> {
    Json(json!({ "emails": outbox.emails() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

    #[test]
    fn a_message_reads_as_to_from_subject_and_body() {
        let content = |d: &str| Content::builder().data(d).build().unwrap();
        let input = SendEmailInput::builder()
            .from_email_address("privacy@x.test")
            .destination(Destination::builder().to_addresses("a@x.test").build())
            .content(
                EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(content("Confirm"))
                            .body(Body::builder().text(content("Open the link")).build())
                            .build(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        let email = email_of(&input);
        assert_eq!(email["to"][0], "a@x.test");
        assert_eq!(email["from"], "privacy@x.test");
        assert_eq!(email["subject"], "Confirm");
        assert_eq!(email["body"], "Open the link");
    }
}
