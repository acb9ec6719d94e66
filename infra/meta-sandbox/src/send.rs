//! The Send API ("Send API Reference": `POST /{ver}/me/messages` or `/{ver}/{page-id}/messages`)
//! with the window rules Meta enforces ("Messenger Platform › Policy Overview", "Message Tags"):
//! - `RESPONSE` / `UPDATE`: within 24 hours of the customer's last message to that Page;
//! - `MESSAGE_TAG` with `HUMAN_AGENT`: within 7 days;
//! - anything else, or later: 400, code 10, subcode 2018278.
//!
//! An accepted message is echoed to the webhook (`message_echoes`), signed, as Meta does.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::Duration;

use crate::MetaSandbox;
use crate::error::GraphError;
use crate::graph::{Params, check_version};
use crate::ids;
use crate::payloads::{self, EchoContent};
use crate::record::SentMessage;
use crate::sandbox::{Grant, SendFault};

/// Standard messaging window ("Policy Overview › 24-hour standard messaging window").
pub const STANDARD_WINDOW: Duration = Duration::hours(24);
/// `HUMAN_AGENT` tag window ("Message Tags › Human Agent": up to 7 days).
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);
/// "Send API Reference": `message.text` is limited to 2000 characters.
const MAX_TEXT_CHARS: usize = 2000;

const MESSAGING_TYPES: [&str; 3] = ["RESPONSE", "UPDATE", "MESSAGE_TAG"];
/// Tags the Send API accepts ("Message Tags"); only `HUMAN_AGENT` reaches past 24 hours here.
const MESSAGE_TAGS: [&str; 5] = [
    "HUMAN_AGENT",
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "CUSTOMER_FEEDBACK",
];
const SENDER_ACTIONS: [&str; 3] = ["typing_on", "typing_off", "mark_seen"];

/// Meta's wording for the codes a Send API client must handle ("Common Error Codes",
/// "Send API Error Codes"), used for injected failures too.
fn message_for(code: i64, subcode: Option<i64>) -> &'static str {
    match (code, subcode) {
        (1, _) => "An unknown error occurred.",
        (2, _) => "An unexpected error has occurred. Please retry your request later.",
        (4, _) => "(#4) Application request limit reached",
        (10, _) => {
            "(#10) This message is sent outside of allowed window. Learn more about the new \
             policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview"
        }
        (32, _) => "(#32) Page request limit reached",
        (100, Some(2_018_001)) => "(#100) No matching user found",
        (100, _) => "(#100) Invalid parameter",
        (190, _) => "Invalid OAuth access token.",
        (200, _) => "(#200) Permissions error",
        (551, _) => "(#551) This person isn't available right now.",
        (613, _) => "(#613) Calls to this API have exceeded the rate limit.",
        (1200, _) => "(#1200) Temporary send message failure. Please try again later",
        _ => "An error occurred while processing this request.",
    }
}

fn graph_error(code: i64, subcode: Option<i64>) -> GraphError {
    GraphError::new(code, subcode, message_for(code, subcode))
}

/// The fields of a Send API body, read leniently so even a refused call can be recorded.
#[derive(Debug, Default, Clone)]
struct SendBody {
    /// The body was a JSON object or form fields.
    readable: bool,
    recipient: Option<String>,
    messaging_type: Option<String>,
    tag: Option<String>,
    has_message: bool,
    text: Option<String>,
    metadata: Option<String>,
    attachment: Option<Value>,
    sender_action: Option<String>,
}

/// Graph takes POST parameters as a JSON body or as form fields; in a form, `recipient` and
/// `message` are JSON strings ("Send API Reference", curl samples with `-F`/`-d`).
fn form_to_json(body: &[u8]) -> Value {
    let mut object = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        let value = match key.as_ref() {
            "recipient" | "message" => {
                serde_json::from_str(&value).unwrap_or(Value::String(value.into_owned()))
            }
            _ => Value::String(value.into_owned()),
        };
        object.insert(key.into_owned(), value);
    }
    Value::Object(object)
}

impl SendBody {
    fn parse(body: &[u8], is_form: bool) -> Self {
        let value = if is_form {
            form_to_json(body)
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => value,
                Err(_) => return Self::default(),
            }
        };
        let string = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let message = value.get("message");
        Self {
            readable: value.is_object(),
            recipient: value.pointer("/recipient/id").and_then(string),
            messaging_type: value.get("messaging_type").and_then(string),
            tag: value.get("tag").and_then(string),
            has_message: message.is_some_and(|m| !m.is_null()),
            text: message.and_then(|m| m.get("text")).and_then(string),
            metadata: message.and_then(|m| m.get("metadata")).and_then(string),
            attachment: message
                .and_then(|m| m.get("attachment"))
                .filter(|a| !a.is_null())
                .cloned(),
            sender_action: value.get("sender_action").and_then(string),
        }
    }
}

/// `POST /{ver}/me/messages`: the Page is the one the token belongs to.
pub(crate) async fn send_as_token_page(
    State(sandbox): State<MetaSandbox>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = Params::is_form(&headers);
    let params = Params::new(query, &headers).merge_form(&headers, &body);
    sandbox
        .handle_send(version, None, params, SendBody::parse(&body, is_form))
        .await
}

/// `POST /{ver}/{page-id}/messages`: the token must be that Page's.
pub(crate) async fn send_as_path_page(
    State(sandbox): State<MetaSandbox>,
    Path((version, page_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = Params::is_form(&headers);
    let params = Params::new(query, &headers).merge_form(&headers, &body);
    sandbox
        .handle_send(
            version,
            Some(page_id),
            params,
            SendBody::parse(&body, is_form),
        )
        .await
}

impl MetaSandbox {
    async fn handle_send(
        &self,
        version: String,
        path_page: Option<String>,
        params: Params,
        body: SendBody,
    ) -> Response {
        // Processed in its own task: a client that times out (drops the connection) must not
        // cancel a send the sandbox is still going to accept, as Meta would.
        let sandbox = self.clone();
        let task = tokio::spawn(async move {
            sandbox
                .process_send(&version, path_page.as_deref(), &params, body)
                .await
        });
        match task.await {
            Ok((status, body)) => (status, Json(body)).into_response(),
            Err(_) => {
                let error = graph_error(2, None).with_status(500);
                (StatusCode::INTERNAL_SERVER_ERROR, Json(error.body())).into_response()
            }
        }
    }

    async fn process_send(
        &self,
        version: &str,
        path_page: Option<&str>,
        params: &Params,
        body: SendBody,
    ) -> (StatusCode, Value) {
        let page_hint = path_page
            .map(str::to_owned)
            .or_else(|| self.token_page(params))
            .unwrap_or_default();
        let fault = self.with_state(|s| s.faults.pop_front());
        match fault {
            Some(SendFault::Delay { delay, then_accept }) => {
                tokio::time::sleep(delay).await;
                if !then_accept {
                    return self.refuse(&page_hint, &body, graph_error(2, None).with_status(500));
                }
            }
            Some(SendFault::Fail {
                http_status,
                code,
                subcode,
            }) => {
                let error = graph_error(code, subcode).with_status(http_status);
                return self.refuse(&page_hint, &body, error);
            }
            None => {}
        }
        match self.check_send(version, path_page, params, &body) {
            Ok(page_id) => self.accept(&page_id, &body),
            Err((page_id, error)) => self.refuse(&page_id, &body, error),
        }
    }

    /// The Page of a valid Page token, for recording a call that fails before it is checked.
    fn token_page(&self, params: &Params) -> Option<String> {
        let token = params.access_token()?;
        self.with_state(|s| match &s.tokens.get(token)?.grant {
            Grant::Page { page_id } => Some(page_id.clone()),
            Grant::User { .. } => None,
        })
    }

    /// Every rule Meta applies, in Meta's order: auth, parameters, recipient, window.
    /// Ok: the Page to send as. Err: the Page (for the record) and Meta's error.
    fn check_send(
        &self,
        version: &str,
        path_page: Option<&str>,
        params: &Params,
        body: &SendBody,
    ) -> Result<String, (String, GraphError)> {
        let hint = path_page.unwrap_or_default().to_owned();
        check_version(version).map_err(|e| (hint.clone(), e))?;
        let caller = self.authenticate(params).map_err(|e| (hint.clone(), e))?;
        let page_id = match (caller.grant, path_page) {
            (Grant::User { .. }, _) => return Err((hint, GraphError::page_token_required())),
            (Grant::Page { page_id }, Some(path)) if page_id != path => {
                return Err((
                    hint,
                    GraphError::new(190, None, "Invalid OAuth access token for this Page"),
                ));
            }
            (Grant::Page { page_id }, _) => page_id,
        };
        let fail = |error: GraphError| Err((page_id.clone(), error));

        if !body.readable {
            return fail(GraphError::invalid_parameter(
                "The request body must be a JSON object",
            ));
        }
        let Some(psid) = body.recipient.as_deref() else {
            return fail(GraphError::invalid_parameter(
                "The parameter recipient is required",
            ));
        };
        let tag_extends_window = match (&body.sender_action, body.has_message) {
            (Some(_), true) => {
                return fail(GraphError::invalid_parameter(
                    "Cannot send both message and state at the same time.",
                ));
            }
            (None, false) => {
                return fail(GraphError::invalid_parameter(
                    "The parameter message is required",
                ));
            }
            (Some(action), false) => {
                if !SENDER_ACTIONS.contains(&action.as_str()) {
                    return fail(GraphError::invalid_parameter(format!(
                        "Param sender_action must be one of {{{}}}",
                        SENDER_ACTIONS.join(", ")
                    )));
                }
                false
            }
            (None, true) => match self.check_message_fields(body) {
                Ok(extends) => extends,
                Err(error) => return fail(error),
            },
        };

        let now = self.now();
        let customer = self.with_state(|s| {
            s.customers
                .get(&(page_id.clone(), psid.to_owned()))
                .cloned()
        });
        let Some(customer) = customer else {
            return fail(graph_error(100, Some(2_018_001)));
        };
        if customer.unavailable {
            return fail(graph_error(551, Some(1_545_041)));
        }
        let elapsed = now - customer.last_message_at;
        let in_window =
            elapsed <= STANDARD_WINDOW || (tag_extends_window && elapsed <= HUMAN_AGENT_WINDOW);
        if !in_window {
            return fail(graph_error(10, Some(2_018_278)));
        }
        Ok(page_id)
    }

    /// `messaging_type`, `tag` and `message` checks. Ok(true): the `HUMAN_AGENT` tag applies.
    fn check_message_fields(&self, body: &SendBody) -> Result<bool, GraphError> {
        let messaging_type = body.messaging_type.as_deref().unwrap_or_default();
        if !MESSAGING_TYPES.contains(&messaging_type) {
            return Err(GraphError::invalid_parameter(format!(
                "Param messaging_type must be one of {{{}}}",
                MESSAGING_TYPES.join(", ")
            )));
        }
        let is_tagged = messaging_type == "MESSAGE_TAG";
        if is_tagged {
            match body.tag.as_deref() {
                Some(tag) if MESSAGE_TAGS.contains(&tag) => {}
                _ => {
                    return Err(GraphError::invalid_parameter(format!(
                        "Param tag must be one of {{{}}} when messaging_type is MESSAGE_TAG",
                        MESSAGE_TAGS.join(", ")
                    )));
                }
            }
        }
        let text = body.text.as_deref().unwrap_or_default();
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(GraphError::invalid_parameter(format!(
                "Length of param message[text] must be less than or equal to {MAX_TEXT_CHARS}"
            )));
        }
        if text.is_empty() && body.attachment.is_none() {
            return Err(GraphError::invalid_parameter(
                "param message must be non-empty: text or attachment is required",
            ));
        }
        Ok(is_tagged && body.tag.as_deref() == Some("HUMAN_AGENT"))
    }

    fn record_send(
        &self,
        page_id: &str,
        body: &SendBody,
        status: u16,
        error: Option<&GraphError>,
        message_id: Option<String>,
    ) {
        let record = SentMessage {
            page_id: page_id.to_owned(),
            recipient_id: body.recipient.clone().unwrap_or_default(),
            messaging_type: body.messaging_type.clone().unwrap_or_default(),
            tag: body.tag.clone(),
            text: body.text.clone().unwrap_or_default(),
            metadata: body.metadata.clone(),
            sender_action: body.sender_action.clone(),
            status,
            error_code: error.map(|e| e.code),
            error_subcode: error.and_then(|e| e.subcode),
            message_id,
            at: self.now(),
        };
        self.with_state(|s| s.sent.push(record));
    }

    fn refuse(&self, page_id: &str, body: &SendBody, error: GraphError) -> (StatusCode, Value) {
        self.record_send(page_id, body, error.http_status, Some(&error), None);
        let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, error.body())
    }

    fn accept(&self, page_id: &str, body: &SendBody) -> (StatusCode, Value) {
        let psid = body.recipient.clone().unwrap_or_default();
        if body.sender_action.is_some() {
            // "Sender Actions": answered with the recipient only, and nothing is echoed.
            self.record_send(page_id, body, 200, None, None);
            return (StatusCode::OK, json!({ "recipient_id": psid }));
        }
        let mid = ids::mid();
        self.record_send(page_id, body, 200, None, Some(mid.clone()));
        if self.echoes_enabled(page_id) {
            let now_ms = self.now_ms();
            let content = EchoContent {
                text: body.text.as_deref().filter(|t| !t.is_empty()),
                metadata: body.metadata.as_deref(),
                attachment: body.attachment.as_ref(),
            };
            let event = payloads::echo_event(
                page_id,
                &psid,
                now_ms,
                &self.config().app_id,
                &mid,
                &content,
            );
            let delivery = payloads::single(page_id, now_ms, event);
            let sandbox = self.clone();
            tokio::spawn(async move {
                if let Err(error) = sandbox.post_webhook("message_echoes", &delivery).await {
                    tracing::warn!(%error, "echo webhook not delivered");
                }
            });
        }
        // "Send API Reference › Response".
        (
            StatusCode::OK,
            json!({ "recipient_id": psid, "message_id": mid }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_fields_are_read_even_from_partial_bodies() {
        let body = SendBody::parse(
            br#"{"recipient":{"id":123},"message":{"text":"hi","metadata":"r:1"}}"#,
            false,
        );
        assert!(body.readable);
        assert_eq!(body.recipient.as_deref(), Some("123"));
        assert_eq!(body.text.as_deref(), Some("hi"));
        assert_eq!(body.metadata.as_deref(), Some("r:1"));
        assert!(body.messaging_type.is_none());
        let garbage = SendBody::parse(b"recipient=1", false);
        assert!(!garbage.readable);
        let form = SendBody::parse(
            b"recipient=%7B%22id%22%3A%2242%22%7D&messaging_type=RESPONSE\
              &message=%7B%22text%22%3A%22yo%22%7D",
            true,
        );
        assert_eq!(form.recipient.as_deref(), Some("42"));
        assert_eq!(form.messaging_type.as_deref(), Some("RESPONSE"));
        assert_eq!(form.text.as_deref(), Some("yo"));
    }

    #[test]
    fn known_codes_keep_meta_wording() {
        assert!(message_for(10, Some(2_018_278)).contains("outside of allowed window"));
        assert_eq!(
            message_for(100, Some(2_018_001)),
            "(#100) No matching user found"
        );
        assert!(message_for(551, None).contains("isn't available"));
    }
}
