//! The local identity provider: mints access tokens shaped exactly like Cognito's, signed with an
//! RSA key generated at start, and publishes the public key as a JWKS at Cognito's path.
//!
//! The API verifies these tokens with the very same `ecomdrive_runtime::JwtVerifier` it uses in
//! the cloud; only the issuer URL differs. Mount [`LocalIdp::router`] under the issuer's path, e.g.
//! issuer `http://127.0.0.1:4000/local-pool` → `Router::new().nest("/local-pool", idp.router())`,
//! so the keys are at `<issuer>/.well-known/jwks.json`, as with Cognito.
//!
//! Test equipment: production code never links it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// Cognito's scope on access tokens from its own sign-in.
const SCOPE: &str = "aws.cognito.signin.user.admin";
/// Cognito's default access-token lifetime, and ours (POLICY A18: ≤ 1 hour).
const ACCESS_TOKEN_SECS: i64 = 3600;

/// Changes to a minted token, for tests that need a bad one.
#[derive(Debug, Clone, Default)]
pub struct MintOverrides {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// `id` makes it look like an ID token.
    pub token_use: Option<String>,
    /// Seconds since the epoch; `iat` and `auth_time`.
    pub issued_at: Option<i64>,
    /// Seconds since the epoch. In the past for an expired token.
    pub expires_at: Option<i64>,
    /// Any claim, set last (a `Value::Null` removes the claim).
    pub claims: Map<String, Value>,
}

impl MintOverrides {
    /// A token that expired `seconds_ago` seconds ago.
    pub fn expired(seconds_ago: i64) -> Self {
        let now = now();
        Self {
            issued_at: Some(now - seconds_ago - ACCESS_TOKEN_SECS),
            expires_at: Some(now - seconds_ago),
            ..Self::default()
        }
    }
}

pub struct LocalIdp {
    issuer: String,
    client_id: String,
    kid: String,
    key: KeyPair,
    rng: SystemRandom,
    /// e-mail (lower case) → sub, so an e-mail always logs in as the same user.
    users: Mutex<HashMap<String, String>>,
}

impl LocalIdp {
    /// A provider for `issuer` (the exact `iss` of its tokens) whose tokens are for `client_id`.
    /// Generates a fresh RSA-2048 key (a few milliseconds with aws-lc).
    pub fn new(issuer: String, client_id: String) -> Self {
        // Key generation only fails if the OS has no randomness, and then nothing can run.
        let key = KeyPair::generate(KeySize::Rsa2048).expect("the OS random source works");
        let kid = format!("local-{}", &hex_digest(key.public_key().as_ref())[..16]);
        Self {
            issuer,
            client_id,
            kid,
            key,
            rng: SystemRandom::new(),
            users: Mutex::new(HashMap::new()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The URL where [`router`](Self::router) publishes the keys, if mounted under the issuer.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}/.well-known/jwks.json",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The user id of `email`: the same for the same address (any case), for the life of this
    /// provider and across restarts (it is derived from the address and the issuer).
    pub fn sub_for(&self, email: &str) -> String {
        let email = email.trim().to_lowercase();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .entry(email)
            .or_insert_with_key(|email| {
                uuid_like(&digest::digest(
                    &digest::SHA256,
                    format!("{}\n{email}", self.issuer).as_bytes(),
                ))
            })
            .clone()
    }

    /// Signs in `email`: an access token for its user (see [`sub_for`](Self::sub_for)).
    pub fn login(&self, email: &str) -> String {
        let sub = self.sub_for(email);
        self.mint(&sub, email)
    }

    /// An access token for `sub`, valid for an hour, exactly as Cognito would issue it.
    pub fn mint(&self, sub: &str, email: &str) -> String {
        self.mint_with(sub, email, MintOverrides::default())
    }

    /// A token with some claims changed (expired, another issuer, another client...).
    pub fn mint_with(&self, sub: &str, email: &str, overrides: MintOverrides) -> String {
        let issued_at = overrides.issued_at.unwrap_or_else(now);
        let mut claims = json!({
            "sub": sub,
            "iss": overrides.issuer.as_deref().unwrap_or(&self.issuer),
            "client_id": overrides.client_id.as_deref().unwrap_or(&self.client_id),
            "origin_jti": self.random_id(),
            "event_id": self.random_id(),
            "token_use": overrides.token_use.as_deref().unwrap_or("access"),
            "scope": SCOPE,
            "auth_time": issued_at,
            "exp": overrides.expires_at.unwrap_or(issued_at + ACCESS_TOKEN_SECS),
            "iat": issued_at,
            "jti": self.random_id(),
            "username": sub,
            "email": email,
        });
        if let Some(object) = claims.as_object_mut() {
            for (name, value) in overrides.claims {
                if value.is_null() {
                    object.remove(&name);
                } else {
                    object.insert(name, value);
                }
            }
        }
        self.sign(&claims)
    }

    /// The public key set, as Cognito publishes it.
    pub fn jwks(&self) -> Value {
        let public = self.key.public_key();
        json!({"keys": [{
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }]})
    }

    /// `GET /.well-known/jwks.json`. Mount it under the issuer's path.
    pub fn router(&self) -> Router {
        let jwks = self.jwks();
        Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        )
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"kid": self.kid, "alg": "RS256"});
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        // Signing with a key we generated into a buffer of the key's size cannot fail.
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                message.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing with our own key");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn random_id(&self) -> String {
        let mut bytes = [0u8; 32];
        // Only fails if the OS has no randomness (see `new`).
        self.rng
            .fill(&mut bytes)
            .expect("the OS random source works");
        uuid_like(&bytes)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn hex_digest(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Formats the first 16 bytes as a version-4-style UUID, like Cognito's `sub`.
fn uuid_like(bytes: &impl AsRef<[u8]>) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_runtime::{JwtConfig, JwtVerifier, RuntimeError};

    const CLIENT: &str = "local-spa-client";

    /// The provider served on 127.0.0.1 under its issuer path, and a verifier that fetches its
    /// keys over HTTP like the API does.
    async fn served_idp() -> (LocalIdp, JwtVerifier) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let idp = LocalIdp::new(format!("http://{addr}/local-pool"), CLIENT.into());
        let app = Router::new().nest("/local-pool", idp.router());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = JwtConfig::for_issuer(idp.issuer(), vec![CLIENT.into()]);
        assert_eq!(config.jwks_url, idp.jwks_url());
        let http = ecomdrive_platforms::outbound::OutboundHttp::new(
            ecomdrive_platforms::outbound::AllowList::production()
                .with_loopback(ecomdrive_platforms::outbound::LoopbackPorts::Any),
            Default::default(),
        )
        .expect("client builds");
        let verifier = JwtVerifier::new(config, http);
        (idp, verifier)
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).expect("payload part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    }

    #[tokio::test]
    async fn a_minted_token_is_accepted_by_the_api_verifier() {
        let (idp, verifier) = served_idp().await;
        let token = idp.login("Asha@Example.com");
        let claims = verifier.verify(&token).await.expect("accepted");
        assert_eq!(claims.sub, idp.sub_for("asha@example.com"));
        assert_eq!(claims.email.as_deref(), Some("Asha@Example.com"));
        assert_eq!(claims.client_id, CLIENT);
    }

    #[tokio::test]
    async fn tokens_have_cognito_access_token_claims_and_header() {
        let idp = LocalIdp::new("http://127.0.0.1:1/pool".into(), CLIENT.into());
        let token = idp.mint("sub-1", "asha@example.com");
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().expect("header"))
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(header, json!({"kid": idp.kid(), "alg": "RS256"}));

        let claims = payload(&token);
        let mut names: Vec<&str> = claims
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "auth_time",
                "client_id",
                "email",
                "event_id",
                "exp",
                "iat",
                "iss",
                "jti",
                "origin_jti",
                "scope",
                "sub",
                "token_use",
                "username"
            ]
        );
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["username"], "sub-1");
        assert_eq!(claims["iss"], "http://127.0.0.1:1/pool");
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
        assert!((iat - now()).abs() < 5);
        assert_ne!(claims["jti"], payload(&idp.mint("sub-1", "a@b.c"))["jti"]);
    }

    #[test]
    fn the_same_email_is_always_the_same_user() {
        let idp = LocalIdp::new("http://127.0.0.1:1/pool".into(), CLIENT.into());
        let asha = idp.sub_for("asha@example.com");
        assert_eq!(idp.sub_for(" ASHA@example.com "), asha);
        assert_ne!(idp.sub_for("ravi@example.com"), asha);
        // UUID-shaped, version 4 nibble.
        let groups: Vec<usize> = asha.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&asha[14..15], "4");
        // Stable across restarts: a new provider (new key) for the same issuer agrees.
        let restarted = LocalIdp::new("http://127.0.0.1:1/pool".into(), CLIENT.into());
        assert_eq!(restarted.sub_for("asha@example.com"), asha);
        assert_eq!(
            payload(&idp.login("asha@example.com"))["sub"],
            asha.as_str()
        );
    }

    #[test]
    fn the_jwks_publishes_one_rs256_signing_key() {
        let idp = LocalIdp::new("http://127.0.0.1:1/pool".into(), CLIENT.into());
        let jwks = idp.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], idp.kid());
        assert_eq!(key["e"], "AQAB");
        let n = URL_SAFE_NO_PAD
            .decode(key["n"].as_str().expect("n"))
            .expect("n is unpadded base64url");
        assert_eq!(n.len(), 256, "2048-bit modulus");
    }

    #[tokio::test]
    async fn overridden_tokens_are_refused_for_the_right_reason() {
        let (idp, verifier) = served_idp().await;
        let sub = idp.sub_for("asha@example.com");
        let mint = |overrides| idp.mint_with(&sub, "asha@example.com", overrides);
        let cases = [
            (MintOverrides::expired(120), RuntimeError::Expired),
            (
                MintOverrides {
                    issuer: Some("https://cognito-idp.ap-south-1.amazonaws.com/other".into()),
                    ..Default::default()
                },
                RuntimeError::WrongIssuer,
            ),
            (
                MintOverrides {
                    client_id: Some("another-client".into()),
                    ..Default::default()
                },
                RuntimeError::WrongClient,
            ),
            (
                MintOverrides {
                    token_use: Some("id".into()),
                    ..Default::default()
                },
                RuntimeError::NotAnAccessToken,
            ),
        ];
        for (overrides, expected) in cases {
            let token = mint(overrides.clone());
            assert_eq!(
                verifier.verify(&token).await.expect_err("refused"),
                expected,
                "{overrides:?}"
            );
        }

        // Claims can be removed too.
        let mut claims = Map::new();
        claims.insert("client_id".into(), Value::Null);
        let token = mint(MintOverrides {
            claims,
            ..Default::default()
        });
        assert!(payload(&token).get("client_id").is_none());
        assert_eq!(
            verifier.verify(&token).await.expect_err("refused"),
            RuntimeError::WrongClient
        );
    }

    #[tokio::test]
    async fn a_token_of_another_local_idp_is_refused() {
        let (_, verifier) = served_idp().await;
        let other = LocalIdp::new("unused".into(), CLIENT.into());
        let token = other.mint_with(
            "sub-1",
            "a@b.c",
            MintOverrides {
                issuer: Some(verifier.config().issuer.clone()),
                ..Default::default()
            },
        );
        assert_eq!(
            verifier.verify(&token).await.expect_err("refused"),
            RuntimeError::UnknownKey
        );
    }
}
