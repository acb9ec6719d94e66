//! The OAuth `state` of a platform connection: signed, expiring, single use, bound to the user,
//! the merchant and a browser nonce (the nonce itself travels in an HttpOnly cookie, its hash in
//! the stored state). An attacker's callback link therefore cannot attach the attacker's platform
//! account to a victim's merchant, nor a victim's to the attacker's.

use ecomdrive_core::signed_token::{self, Expiring, TokenError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a merchant has to finish the platform's consent dialog.
pub const STATE_LIFETIME_SECS: i64 = 600;
pub const NONCE_COOKIE: &str = "ecomdrive_oauth_nonce";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// The stored state's id (single use).
    pub sid: String,
    pub mid: String,
    pub sub: String,
    pub exp: i64,
}

impl Expiring for StateClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// Why a state was refused.
pub type StateError = TokenError;

/// The purpose label in the state's MAC (see [`ecomdrive_core::signed_token`]).
const PURPOSE: &str = "ecomdrive/oauth-state";

pub fn sign(key: &[u8], claims: &StateClaims) -> String {
    signed_token::sign(key, PURPOSE, claims)
}

pub fn verify(key: &[u8], state: &str, now_unix: i64) -> Result<StateClaims, StateError> {
    signed_token::verify(key, PURPOSE, state, now_unix)
}

pub use signed_token::random_token;

pub fn nonce_hash(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(exp: i64) -> StateClaims {
        StateClaims {
            sid: "s".into(),
            mid: "mer_1".into(),
            sub: "u".into(),
            exp,
        }
    }

    #[test]
    fn a_signed_state_verifies_until_it_expires() {
        let s = sign(b"k", &claims(100));
        assert_eq!(verify(b"k", &s, 99), Ok(claims(100)));
        assert_eq!(verify(b"k", &s, 100), Err(StateError::Expired));
    }

    #[test]
    fn forged_or_tampered_states_are_refused() {
        let s = sign(b"k", &claims(100));
        assert_eq!(verify(b"other", &s, 1), Err(StateError::BadSignature));
        let (payload, sig) = s.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&StateClaims {
                mid: "mer_attacker".into(),
                ..claims(100)
            })
            .unwrap(),
        );
        assert_eq!(
            verify(b"k", &format!("{forged_payload}.{sig}"), 1),
            Err(StateError::BadSignature)
        );
        assert_eq!(verify(b"k", payload, 1), Err(StateError::Malformed));
        assert_eq!(verify(b"k", "", 1), Err(StateError::Malformed));
    }

    #[test]
    fn nonces_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(nonce_hash(&a).len(), 64);
        assert_ne!(nonce_hash(&a), nonce_hash(&b));
    }
}
