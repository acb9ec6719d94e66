//! The form's signed, expiring tokens: the CSRF token in the page and the token of the e-mailed
//! confirmation link, both signed with the form's own key (`FormSecrets::form_signing_key`).
//!
//! Both are `ecomdrive_core::signed_token`s (as the API's OAuth `state` is), each with its own
//! purpose in the MAC: a CSRF token handed to every visitor can never pass as a link, nor a link
//! as a CSRF token.

use ecomdrive_core::signed_token::{self, Expiring};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use ecomdrive_core::signed_token::random_token;

/// How long a page of the form may be left open before it must be reloaded.
pub const CSRF_LIFETIME_SECS: i64 = 2 * 60 * 60;
/// How long an e-mailed confirmation link works (the issue: 24 hours).
pub const LINK_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// The double-submit cookie: the random half of the CSRF check.
pub const CSRF_COOKIE: &str = "ecomdrive_deletion_csrf";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Csrf,
    Link,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Csrf => "ecomdrive/deletion-form/csrf",
            Purpose::Link => "ecomdrive/deletion-form/link",
        }
    }
}

/// The signed half of the CSRF check: the cookie's value and an expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrfClaims {
    pub nonce: String,
    pub exp: i64,
}

/// What a confirmation link names: only the stored link's id (whose account it is stays in the
/// store, so the e-mail's URL holds no personal data) and its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub lid: String,
    pub exp: i64,
}

impl Expiring for CsrfClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}
impl Expiring for LinkClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    /// CSRF only: the cookie is missing or is not the one the page was made for.
    #[error("the token does not match this browser's cookie")]
    CookieMismatch,
}

impl From<signed_token::TokenError> for TokenError {
    fn from(e: signed_token::TokenError) -> Self {
        match e {
            signed_token::TokenError::Malformed => TokenError::Malformed,
            signed_token::TokenError::BadSignature => TokenError::BadSignature,
            signed_token::TokenError::Expired => TokenError::Expired,
        }
    }
}

fn sign<T: Serialize>(key: &[u8], purpose: Purpose, claims: &T) -> String {
    signed_token::sign(key, purpose.label(), claims)
}

fn verify<T: serde::de::DeserializeOwned + Expiring>(
    key: &[u8],
    purpose: Purpose,
    token: &str,
    now_unix: i64,
) -> Result<T, TokenError> {
    Ok(signed_token::verify(key, purpose.label(), token, now_unix)?)
}

/// The hidden field for a page whose browser holds `nonce` in the CSRF cookie.
pub fn csrf_token(key: &[u8], nonce: &str, now_unix: i64) -> String {
    sign(
        key,
        Purpose::Csrf,
        &CsrfClaims {
            nonce: nonce.to_owned(),
            exp: now_unix + CSRF_LIFETIME_SECS,
        },
    )
}

/// The double-submit check of a POST: the field is ours, unexpired, and made for the cookie this
/// browser sends. Another site can make a browser post, but can neither read nor set the cookie
/// (HttpOnly, SameSite=Strict), nor sign a field for a value of its own.
pub fn check_csrf(
    key: &[u8],
    cookie: Option<&str>,
    field: Option<&str>,
    now_unix: i64,
) -> Result<(), TokenError> {
    let field = field.ok_or(TokenError::Malformed)?;
    let claims: CsrfClaims = verify(key, Purpose::Csrf, field, now_unix)?;
    let cookie = cookie.ok_or(TokenError::CookieMismatch)?;
    if bool::from(cookie.as_bytes().ct_eq(claims.nonce.as_bytes())) {
        Ok(())
    } else {
        Err(TokenError::CookieMismatch)
    }
}

/// The token of a confirmation link for the stored link `link_id`, valid until `exp` (epoch
/// seconds; the stored link expires at the same time).
pub fn link_token(key: &[u8], link_id: &str, exp: i64) -> String {
    sign(
        key,
        Purpose::Link,
        &LinkClaims {
            lid: link_id.to_owned(),
            exp,
        },
    )
}

pub fn verify_link(key: &[u8], token: &str, now_unix: i64) -> Result<LinkClaims, TokenError> {
    verify(key, Purpose::Link, token, now_unix)
}

/// What the rate limits count by, for a guessable value (an IP address, an e-mail): keyed with
/// the form's secret, so the hash the store keeps cannot be reversed by trying every address.
pub fn rate_key(key: &[u8], value: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"ecomdrive/deletion-form/rate.");
    m.update(value.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn a_link_verifies_until_it_expires() {
        let t = link_token(b"k", "lnk", 100);
        let claims = verify_link(b"k", &t, 99).unwrap();
        assert_eq!(claims.lid, "lnk");
        assert_eq!(verify_link(b"k", &t, 100), Err(TokenError::Expired));
    }

    #[test]
    fn forged_tampered_or_malformed_links_are_refused() {
        let t = link_token(b"k", "lnk", 100);
        assert_eq!(verify_link(b"other", &t, 1), Err(TokenError::BadSignature));
        let (_, sig) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"lid":"someone-else","exp":100}"#);
        assert_eq!(
            verify_link(b"k", &format!("{forged}.{sig}"), 1),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "abc", "a.b.c", "!!.!!", &"a".repeat(600)] {
            assert!(
                matches!(
                    verify_link(b"k", bad, 1),
                    Err(TokenError::Malformed | TokenError::BadSignature)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_csrf_token_is_no_link_and_a_link_is_no_csrf_token() {
        let csrf = csrf_token(b"k", "nonce", 0);
        assert_eq!(verify_link(b"k", &csrf, 1), Err(TokenError::BadSignature));
        let link = link_token(b"k", "nonce", 100);
        assert_eq!(
            check_csrf(b"k", Some("nonce"), Some(&link), 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn csrf_needs_the_matching_cookie_a_valid_field_and_time() {
        let field = csrf_token(b"k", "nonce", 1_000);
        assert_eq!(check_csrf(b"k", Some("nonce"), Some(&field), 1_001), Ok(()));
        assert_eq!(
            check_csrf(b"k", Some("other"), Some(&field), 1_001),
            Err(TokenError::CookieMismatch)
        );
        assert_eq!(
            check_csrf(b"k", None, Some(&field), 1_001),
            Err(TokenError::CookieMismatch)
        );
        assert_eq!(
            check_csrf(b"k", Some("nonce"), None, 1_001),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            check_csrf(
                b"k",
                Some("nonce"),
                Some(&field),
                1_000 + CSRF_LIFETIME_SECS
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check_csrf(b"other-key", Some("nonce"), Some(&field), 1_001),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn random_tokens_differ_and_rate_keys_hide_the_value() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        let k = rate_key(b"k", "192.0.2.7");
        assert_eq!(k, rate_key(b"k", "192.0.2.7"));
        assert_ne!(k, rate_key(b"k2", "192.0.2.7"));
        assert!(!k.contains("192"));
    }
}
