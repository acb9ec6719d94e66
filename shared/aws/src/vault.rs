//! The token vault: platform tokens encrypted with KMS (POLICY A11, E14).
//!
//! Every ciphertext is bound by its encryption context to the merchant and to what it is for
//! (integration and resource), so a ciphertext copied into another merchant's record does not
//! decrypt. Plaintext tokens exist only in memory, as [`Secret`].

use crate::AwsError;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use ecomdrive_core::Secret;
use ecomdrive_core::ids::MerchantId;

/// What a token belongs to; it becomes the KMS encryption context.
#[derive(Clone, Debug)]
pub struct TokenContext<'a> {
    pub merchant: &'a MerchantId,
    /// e.g. `messenger_page`, `messenger_user`, `amazon_seller`
    pub integration: &'a str,
    /// e.g. the Page id, the selling partner id
    pub resource: &'a str,
}

impl<'a> TokenContext<'a> {
    /// A Page's token: bound to the merchant and the Page (POLICY E14).
    pub fn messenger_page(merchant: &'a MerchantId, page: &'a ecomdrive_core::ids::PageId) -> Self {
        Self {
            merchant,
            integration: MESSENGER_PAGE,
            resource: page.as_str(),
        }
    }

    /// A seller's LWA refresh token: bound to the merchant and the selling partner (POLICY A11).
    pub fn amazon_seller(
        merchant: &'a MerchantId,
        seller: &'a ecomdrive_core::amazon::SellingPartnerId,
    ) -> Self {
        Self {
            merchant,
            integration: AMAZON_SELLER,
            resource: seller.as_str(),
        }
    }
}

/// The integration names tokens are sealed under (template.yaml grants KMS use by them).
pub const AMAZON_SELLER: &str = "amazon_seller";
pub const MESSENGER_PAGE: &str = "messenger_page";
/// The long-lived token of the user who authorized Pages (kept an hour, to pick Pages).
pub const MESSENGER_USER: &str = "messenger_user";

#[derive(Clone)]
pub struct TokenVault {
    kms: Client,
    key_id: String,
}

impl TokenVault {
    pub fn new(kms: Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
        }
    }

    /// Encrypts a token; the result (base64) is what the store keeps.
    pub async fn seal(&self, ctx: &TokenContext<'_>, token: &Secret) -> Result<String, AwsError> {
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(token.expose().as_bytes()))
            .encryption_context("merchant_id", ctx.merchant.as_str())
            .encryption_context("integration", ctx.integration)
            .encryption_context("resource", ctx.resource)
            .send()
            .await
            .map_err(|e| AwsError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| AwsError::Kms("no ciphertext returned".into()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
    }

    pub async fn open(&self, ctx: &TokenContext<'_>, sealed: &str) -> Result<Secret, AwsError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| AwsError::TokenRefused)?;
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(bytes))
            .encryption_context("merchant_id", ctx.merchant.as_str())
            .encryption_context("integration", ctx.integration)
            .encryption_context("resource", ctx.resource)
            .send()
            .await;
        match out {
            Ok(o) => {
                let plain = o.plaintext.ok_or(AwsError::TokenRefused)?;
                String::from_utf8(plain.into_inner())
                    .map(Secret::new)
                    .map_err(|_| AwsError::TokenRefused)
            }
            Err(e) => {
                let refused = e.as_service_error().is_some_and(|s| {
                    s.is_invalid_ciphertext_exception() || s.is_incorrect_key_exception()
                });
                if refused {
                    Err(AwsError::TokenRefused)
                } else {
                    Err(AwsError::Kms(
                        aws_sdk_kms::error::DisplayErrorContext(e).to_string(),
                    ))
                }
            }
        }
    }
}
