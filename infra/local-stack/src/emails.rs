//! `GET /_local/emails`: the e-mails the functions sent through SES, as the emulator recorded
//! them, newest last. Locally nothing leaves the machine; this is how a person (or a test) reads
//! the deletion form's confirmation links.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Where the emulator's own state can be read (`/moto-api/data.json`).
#[derive(Clone)]
pub struct SentMail {
    pub emulator: String,
    pub http: reqwest::Client,
}

impl SentMail {
    /// Every message SES accepted, oldest first.
    pub async fn list(&self) -> Result<Vec<Value>, String> {
        let url = format!("{}/moto-api/data.json", self.emulator.trim_end_matches('/'));
        let data: Value = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(emails_of(&data))
    }
}

/// The emulator's SES messages as `{to, from, subject, body}`.
fn emails_of(data: &Value) -> Vec<Value> {
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            json!({
                "to": m["destinations"]["ToAddresses"],
                "from": m["source"],
                "subject": m["subject"],
                "body": m["body"],
            })
        })
        .collect()
}

pub async fn list_emails(State(mail): State<SentMail>) -> Response {
    match mail.list().await {
        Ok(emails) => Json(json!({ "emails": emails })).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(
                json!({ "error": format!("the emulator's recorded mail could not be read: {e}") }),
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_listed_in_the_order_they_were_sent() {
        let data = json!({"ses": {"Message": [
            {"body": "first", "destinations": {"ToAddresses": ["a@x.test"]}, "id": "1", "source": "p@x.test", "subject": "s1"},
            {"body": "second", "destinations": {"ToAddresses": ["b@x.test"]}, "id": "2", "source": "p@x.test", "subject": "s2"}
        ]}});
        let emails = emails_of(&data);
        assert_eq!(emails.len(), 2);
        assert_eq!(emails[0]["to"][0], "a@x.test");
        assert_eq!(emails[1]["body"], "second");
        assert!(emails_of(&json!({})).is_empty());
    }
}
