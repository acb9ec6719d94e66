//! Signed, expiring tokens handed to a browser (the OAuth `state`, the deletion form's CSRF token
//! and its e-mailed link): `base64url(JSON claims) "." base64url(HMAC-SHA256)`.
//!
//! The MAC covers a purpose label, so a token made for one purpose never passes for another (a
//! CSRF token every visitor gets is no confirmation link). The signature is checked, in constant
//! time, before anything of the payload is parsed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Longer than any token we make: refused before any decoding work.
const MAX_TOKEN_LEN: usize = 1024;

/// Claims that say until when (epoch seconds) their token is good.
pub trait Expiring {
    fn expires_at(&self) -> i64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

fn mac(key: &[u8], purpose: &str, payload: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(purpose.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    m
}

pub fn sign<T: Serialize>(key: &[u8], purpose: &str, claims: &T) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let sig = URL_SAFE_NO_PAD.encode(mac(key, purpose, &payload).finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// The claims of a token signed with `key` for `purpose`, if it has not expired at `now_unix`.
pub fn verify<T: DeserializeOwned + Expiring>(
    key: &[u8],
    purpose: &str,
    token: &str,
    now_unix: i64,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    mac(key, purpose, payload)
        .verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: T = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if claims.expires_at() <= now_unix {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// 256 random bits, base64url: nonces and single-use ids.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        id: String,
        exp: i64,
    }
    impl Expiring for Claims {
        fn expires_at(&self) -> i64 {
            self.exp
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            id: "a".into(),
            exp,
        }
    }

    #[test]
    fn a_token_verifies_for_its_purpose_until_it_expires() {
        let t = sign(b"k", "p", &claims(100));
        assert_eq!(verify(b"k", "p", &t, 99), Ok(claims(100)));
        assert_eq!(
            verify::<Claims>(b"k", "p", &t, 100),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify::<Claims>(b"k", "other purpose", &t, 1),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify::<Claims>(b"other key", "p", &t, 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_malformed_or_oversized_tokens_are_refused() {
        let t = sign(b"k", "p", &claims(100));
        let (_, sig) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(9_999)).unwrap());
        assert_eq!(
            verify::<Claims>(b"k", "p", &format!("{forged}.{sig}"), 1),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "no-dot", "a.!!", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(
                verify::<Claims>(b"k", "p", bad, 1),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        assert_ne!(random_token(), random_token());
    }
}
