//! Meta's app-level callbacks: "Data Deletion Request Callback" and "Deauthorize Callback".
//!
//! When a person removes the app (deauthorize) or asks for their data to be deleted from their
//! Facebook settings, Meta POSTs `signed_request=<sig>.<payload>` (form-encoded) to the URLs set in
//! the app dashboard. The payload is base64url JSON `{"algorithm":"HMAC-SHA256","issued_at",
//! "user_id"}`, the signature a base64url HMAC-SHA256 of the encoded payload keyed with the app
//! secret. Meta sends both parts without `=` padding.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::Mac;
use serde_json::{Value, json};

use crate::MetaSandbox;
use crate::error::SandboxError;
use crate::webhooks::mac;

/// Where the local stack serves the callbacks, relative to the webhook's origin.
pub const DATA_DELETION_PATH: &str = "/data-deletion/facebook";
pub const DEAUTHORIZE_PATH: &str = "/data-deletion/facebook/deauthorize";

/// A `signed_request` exactly as Meta builds it for `user_id`, unpadded.
pub fn signed_request(app_secret: &str, user_id: &str, issued_at: i64) -> String {
    sign_payload(
        app_secret,
        &json!({ "algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user_id }),
        false,
    )
}

/// Signs any payload the way Meta does, with or without `=` padding on both parts, so tests can
/// also send what Meta would not (another algorithm, a missing field). With padding, the HMAC
/// covers the padded payload: it is computed over the payload string as sent.
pub fn sign_payload(app_secret: &str, payload: &Value, padded: bool) -> String {
    let encode = |bytes: &[u8]| {
        if padded {
            URL_SAFE.encode(bytes)
        } else {
            URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    let encoded_payload = encode(payload.to_string().as_bytes());
    let mut mac = mac(app_secret.as_bytes());
    mac.update(encoded_payload.as_bytes());
    format!("{}.{encoded_payload}", encode(&mac.finalize().into_bytes()))
}

/// What our callback answered.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackAnswer {
    pub status: u16,
    /// The JSON body, or `Value::Null` when it was not JSON.
    pub body: Value,
}

impl MetaSandbox {
    /// Meta's data deletion request for `user_id` (the app-scoped id `/me` answers), POSTed to
    /// `<webhook origin>/data-deletion/facebook`.
    pub async fn request_data_deletion(
        &self,
        user_id: &str,
    ) -> Result<CallbackAnswer, SandboxError> {
        self.post_callback(DATA_DELETION_PATH, user_id).await
    }

    /// Meta's deauthorize callback for `user_id` (the person removed the app), POSTed to
    /// `<webhook origin>/data-deletion/facebook/deauthorize`.
    pub async fn deauthorize(&self, user_id: &str) -> Result<CallbackAnswer, SandboxError> {
        self.post_callback(DEAUTHORIZE_PATH, user_id).await
    }

    async fn post_callback(
        &self,
        path: &str,
        user_id: &str,
    ) -> Result<CallbackAnswer, SandboxError> {
        let mut url = url::Url::parse(&self.config().webhook_url).map_err(|e| {
            SandboxError::InvalidInput(format!("the webhook URL is not a URL: {e}"))
        })?;
        url.set_path(path);
        url.set_query(None);
        let signed = signed_request(
            &self.config().app_secret,
            user_id,
            self.now().unix_timestamp(),
        );
        let response = self
            .http()
            .post(url.as_str())
            .header(reqwest::header::USER_AGENT, "facebookexternalua")
            .form(&[("signed_request", signed)])
            .send()
            .await
            .map_err(|source| SandboxError::Webhook {
                url: url.to_string(),
                source,
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok(CallbackAnswer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with Python's hmac and base64 modules: `{"algorithm":"HMAC-SHA256","issued_at":
    /// 1291836800,"user_id":"218471"}` (serde_json writes the keys in this order) keyed with
    /// `local-fake-app-secret`.
    #[test]
    fn signed_requests_match_an_independent_implementation() {
        assert_eq!(
            signed_request("local-fake-app-secret", "218471", 1_291_836_800),
            "5UmiJqT2WFcg61lMNik47qQ16brLiU74ghVf-0-mP-8.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9"
        );
        let padded = sign_payload(
            "local-fake-app-secret",
            &json!({"algorithm": "HMAC-SHA256", "issued_at": 1291836800, "user_id": "2184712"}),
            true,
        );
        assert_eq!(
            padded,
            "EUnKA9DG21VFvzbdTDzGps8N9ddW5sXWbQqwU9Ngdlk=.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MTIifQ=="
        );
    }
}
