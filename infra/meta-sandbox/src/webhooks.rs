//! Signing and posting webhooks the way Meta does.
//!
//! "Webhooks for Messenger" / "Getting Started › Validating Payloads": Meta signs the raw body
//! with the app secret and sends `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::MetaSandbox;
use crate::error::SandboxError;
use crate::record::WebhookDelivery;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs webhook deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// `"sha256=" + hex(HMAC-SHA256(app_secret, body))`, the value of `X-Hub-Signature-256`.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex_hmac(app_secret, body))
}

/// Checks a `X-Hub-Signature-256` value against the body, in constant time.
pub fn verify(app_secret: &str, body: &[u8], header_value: &str) -> bool {
    let Some(hex_sig) = header_value.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = mac(app_secret.as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Hex HMAC-SHA256: also the Graph API's `appsecret_proof` (key: app secret, message: token).
pub(crate) fn hex_hmac(key: &str, message: &[u8]) -> String {
    let mut mac = mac(key.as_bytes());
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

impl MetaSandbox {
    /// POSTs `body` to the webhook URL, signed, and records the delivery.
    /// Returns the webhook's HTTP status once it answered.
    pub(crate) async fn post_webhook(
        &self,
        field: &str,
        body: &serde_json::Value,
    ) -> Result<u16, SandboxError> {
        let bytes = body.to_string().into_bytes();
        let signature = sign(&self.config().app_secret, &bytes);
        let result = self.post_bytes(bytes, Some(&signature)).await;
        let (status, error) = match &result {
            Ok(status) => (Some(*status), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let at = self.now();
        self.with_state(|s| {
            s.webhooks.push(WebhookDelivery {
                field: field.to_owned(),
                body: body.clone(),
                status,
                error,
                at,
            });
        });
        result
    }

    /// POSTs raw bytes with the given signature header (or none): for tests of a webhook's
    /// signature check. Not recorded.
    pub async fn post_raw_with_signature(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<u16, SandboxError> {
        self.post_bytes(body.to_vec(), signature).await
    }

    async fn post_bytes(
        &self,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> Result<u16, SandboxError> {
        let url = &self.config().webhook_url;
        let mut request = self
            .http()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // Meta's webhook requests carry this user agent (Meta crawler documentation).
            .header(reqwest::header::USER_AGENT, "facebookexternalua")
            .body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request
            .send()
            .await
            .map_err(|source| SandboxError::Webhook {
                url: url.clone(),
                source,
            })?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_the_rfc_4231_style_known_answer() {
        // Widely published HMAC-SHA256 known answer (key "key", the quick brown fox).
        let signature = sign("key", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            signature,
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn verify_accepts_the_right_signature_only() {
        let body = br#"{"object":"page"}"#;
        let good = sign("local-fake-app-secret", body);
        assert!(verify("local-fake-app-secret", body, &good));
        assert!(!verify("another-secret", body, &good));
        assert!(!verify("local-fake-app-secret", b"{}", &good));
        assert!(!verify(
            "local-fake-app-secret",
            body,
            good.trim_start_matches("sha256=")
        ));
        assert!(!verify("local-fake-app-secret", body, "sha256=zz"));
    }
}
