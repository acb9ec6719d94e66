//! Verifying Cognito access tokens inside the API, so the same code protects it behind API Gateway,
//! on the local stack, and in tests.
//!
//! A token is accepted only if all of these hold: the header says RS256 (never `none` or HMAC),
//! the signature verifies with the identity provider's key named by `kid`, `iss` is exactly the
//! configured issuer, `exp` has not passed (30 s leeway for clock skew), `token_use` is `access`
//! and `client_id` is one of our app clients.
//!
//! The keys (JWKS) are fetched on first use and cached. A token naming an unknown `kid` (the
//! provider rotated its keys) triggers a refetch, at most once a minute, so garbage tokens cannot
//! make us hammer the provider.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::RuntimeError;
use crate::problem::Problem;
use ecomdrive_platforms::PlatformError;
use ecomdrive_platforms::outbound::OutboundHttp;
#[cfg(test)]
use ecomdrive_platforms::outbound::{AllowList, LoopbackPorts, Timeouts};

/// Clock skew we tolerate on `exp`.
const LEEWAY_SECS: u64 = 30;
/// An unknown `kid` refetches the JWKS at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Exactly the `iss` of the tokens, e.g. `https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_AbC`.
    pub issuer: String,
    /// Where the signing keys are published, normally `<issuer>/.well-known/jwks.json`.
    pub jwks_url: String,
    /// The app clients whose tokens we accept (the SPA's client id).
    pub client_ids: Vec<String>,
}

impl JwtConfig {
    /// The usual layout of Cognito (and of the local identity provider): keys under the issuer.
    pub fn for_issuer(issuer: impl Into<String>, client_ids: Vec<String>) -> Self {
        let issuer = issuer.into();
        let jwks_url = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        Self {
            issuer,
            jwks_url,
            client_ids,
        }
    }
}

/// Who is calling, as proven by a verified access token.
///
/// It is also an axum extractor: a handler taking `Claims` gets 401 problems for free, as long
/// as the router's state gives a [`JwtVerifier`] (`impl FromRef<AppState> for JwtVerifier`).
#[derive(Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user's stable id in the identity provider.
    pub sub: String,
    /// Added to access tokens by our Cognito pre-token-generation trigger.
    pub email: Option<String>,
    pub client_id: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

// The e-mail is personal data: keep it out of any log line that prints claims with `?`.
impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.sub)
            .field("email", &self.email.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id)
            .field("exp", &self.exp)
            .finish()
    }
}

/// The claims as they are in the token; checked, then turned into [`Claims`].
#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
}

/// The token from `Authorization: Bearer <token>`, if there is a non-empty one.
pub fn bearer_from_headers(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Verifies access tokens. Cheap to clone (one shared key cache).
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwtConfig,
    validation: Validation,
    source: KeySource,
    keys: RwLock<KeyCache>,
    /// Held while fetching, so concurrent requests with a new `kid` share one fetch.
    fetching: tokio::sync::Mutex<()>,
    refetch_interval: Duration,
}

enum KeySource {
    Remote {
        client: OutboundHttp,
    },
    /// Keys given at construction (tests, local tools): never fetched.
    Fixed,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

impl JwtVerifier {
    /// A verifier that fetches the keys from `config.jwks_url` with `client` when first needed.
    pub fn new(config: JwtConfig, client: OutboundHttp) -> Self {
        Self::build(
            config,
            KeySource::Remote { client },
            KeyCache::default(),
            REFETCH_INTERVAL,
        )
    }

    /// A verifier with the keys given here, which never fetches (unit tests, local tools).
    pub fn with_jwks(config: JwtConfig, jwks: &serde_json::Value) -> Result<Self, RuntimeError> {
        let keys = KeyCache {
            keys: parse_jwks(jwks)?,
            fetched_at: Some(Instant::now()),
        };
        Ok(Self::build(
            config,
            KeySource::Fixed,
            keys,
            REFETCH_INTERVAL,
        ))
    }

    fn build(
        config: JwtConfig,
        source: KeySource,
        keys: KeyCache,
        refetch_interval: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        // Cognito access tokens carry `client_id`, not `aud`; we check `client_id` ourselves.
        validation.validate_aud = false;
        Self {
            inner: Arc::new(Inner {
                config,
                validation,
                source,
                keys: RwLock::new(keys),
                fetching: tokio::sync::Mutex::new(()),
                refetch_interval,
            }),
        }
    }

    pub fn config(&self) -> &JwtConfig {
        &self.inner.config
    }

    /// Verifies `bearer` (the token alone, without `Bearer `) and returns who it proves.
    pub async fn verify(&self, bearer: &str) -> Result<Claims, RuntimeError> {
        let header = jsonwebtoken::decode_header(bearer).map_err(|_| RuntimeError::Malformed)?;
        // Checked before any key is looked at: `none` and HMAC tokens never reach verification.
        if header.alg != Algorithm::RS256 {
            return Err(RuntimeError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(RuntimeError::UnknownKey)?;
        let key = self.key_for(&kid).await?;

        let token = jsonwebtoken::decode::<TokenClaims>(bearer, &key, &self.inner.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => RuntimeError::BadSignature,
                ErrorKind::ExpiredSignature => RuntimeError::Expired,
                ErrorKind::InvalidIssuer => RuntimeError::WrongIssuer,
                ErrorKind::InvalidAlgorithm => RuntimeError::UnsupportedAlgorithm,
                // Everything else (bad base64, claims of the wrong type...) is a malformed token.
                // The library's message is dropped on purpose: it may quote claim values.
                _ => RuntimeError::Malformed,
            })?
            .claims;

        if token.token_use.as_deref() != Some("access") {
            return Err(RuntimeError::NotAnAccessToken);
        }
        let client_id = token.client_id.ok_or(RuntimeError::WrongClient)?;
        if !self.inner.config.client_ids.contains(&client_id) {
            return Err(RuntimeError::WrongClient);
        }
        Ok(Claims {
            sub: token.sub,
            email: token.email,
            client_id,
            exp: token.exp,
        })
    }

    fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let cache = self.inner.keys.read().unwrap_or_else(|p| p.into_inner());
        cache.keys.get(kid).cloned()
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, RuntimeError> {
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let KeySource::Remote { client } = &self.inner.source else {
            return Err(RuntimeError::UnknownKey);
        };

        let _fetching = self.inner.fetching.lock().await;
        // Someone may have fetched while we waited for the lock.
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let fetched_at = self
            .inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .fetched_at;
        if fetched_at.is_some_and(|at| at.elapsed() < self.inner.refetch_interval) {
            return Err(RuntimeError::UnknownKey);
        }

        let keys = fetch_jwks(client, &self.inner.config.jwks_url).await?;
        tracing::info!(
            keys = keys.len(),
            "fetched the identity provider's signing keys"
        );
        let mut cache = self.inner.keys.write().unwrap_or_else(|p| p.into_inner());
        // Replace, not merge: a key the provider withdrew must stop being accepted.
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache.keys.get(kid).cloned().ok_or(RuntimeError::UnknownKey)
    }
}

/// A JWKS document is a few keys; anything bigger is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Fetched through the allow-listed client like every outbound call (POLICY E11): the
/// identity provider (Cognito in ap-south-1) is on the list.
async fn fetch_jwks(
    client: &OutboundHttp,
    url: &str,
) -> Result<HashMap<String, DecodingKey>, RuntimeError> {
    let unavailable = |e: PlatformError| RuntimeError::KeysUnavailable(e.to_string());
    let response = client
        .get(url)
        .map_err(unavailable)?
        .timeout(JWKS_FETCH_TIMEOUT)
        .send()
        .await
        .map_err(unavailable)?;
    if !response.status().is_success() {
        return Err(RuntimeError::KeysUnavailable(format!(
            "the key set answered HTTP {}",
            response.status()
        )));
    }
    let body = response
        .bytes_bounded(MAX_JWKS_BYTES)
        .await
        .map_err(unavailable)?;
    let jwks: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| RuntimeError::KeysUnavailable(format!("the key set is not JSON: {e}")))?;
    parse_jwks(&jwks)
}

/// The RS256 signing keys of a JWKS document, by `kid`. Keys of other types are skipped.
fn parse_jwks(jwks: &serde_json::Value) -> Result<HashMap<String, DecodingKey>, RuntimeError> {
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        kid: String,
        alg: Option<String>,
        #[serde(rename = "use")]
        use_: Option<String>,
        n: String,
        e: String,
    }

    let entries = jwks
        .get("keys")
        .and_then(|keys| keys.as_array())
        .ok_or_else(|| RuntimeError::KeysUnavailable("the JWKS has no `keys` array".into()))?;
    let keys: HashMap<String, DecodingKey> = entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .filter(|jwk| {
            jwk.kty == "RSA"
                && jwk.alg.as_deref().is_none_or(|alg| alg == "RS256")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig")
        })
        .filter_map(|jwk| {
            let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?;
            Some((jwk.kid, key))
        })
        .collect();
    if keys.is_empty() {
        return Err(RuntimeError::KeysUnavailable(
            "the JWKS has no usable RS256 signing key".into(),
        ));
    }
    Ok(keys)
}

impl<S> FromRequestParts<S> for Claims
where
    JwtVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = JwtVerifier::from_ref(state);
        let result = match bearer_from_headers(&parts.headers) {
            Some(token) => verifier.verify(token).await,
            None => Err(RuntimeError::MissingToken),
        };
        result.map_err(|error| {
            match &error {
                RuntimeError::KeysUnavailable(_) => tracing::error!(%error, "cannot verify tokens"),
                _ => tracing::info!(%error, "request refused: bad access token"),
            }
            Problem::from(error)
        })
    }
}

#[cfg(test)]
pub(crate) mod test_tokens {
    //! Mints tokens for tests with a key generated at run time (no key in the repo).
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::{Value, json};

    pub const ISSUER: &str = "http://127.0.0.1:9/local-pool";
    pub const CLIENT_ID: &str = "local-spa-client";

    pub struct TestSigner {
        pub kid: String,
        key: KeyPair,
    }

    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    }

    pub fn b64(bytes: &[u8]) -> String {
        B64.encode(bytes)
    }

    impl TestSigner {
        pub fn new(kid: &str) -> Self {
            Self {
                kid: kid.into(),
                key: KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key"),
            }
        }

        pub fn jwks(&self) -> Value {
            let public = self.key.public_key();
            json!({"keys": [{
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            }]})
        }

        /// The public key as DER bytes: what an attacker would use as an HMAC secret.
        pub fn public_key_der(&self) -> Vec<u8> {
            self.key
                .public_key()
                .as_der()
                .expect("public key DER")
                .as_ref()
                .to_vec()
        }

        /// Cognito-shaped access-token claims, valid for an hour.
        pub fn claims(&self, sub: &str) -> Value {
            let now = now();
            json!({
                "sub": sub, "iss": ISSUER, "client_id": CLIENT_ID, "token_use": "access",
                "scope": "aws.cognito.signin.user.admin", "auth_time": now, "iat": now,
                "exp": now + 3600, "jti": "jti-1", "username": sub, "email": "asha@example.com",
            })
        }

        pub fn sign(&self, header: &Value, claims: &Value) -> String {
            let message = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let mut signature = vec![0; self.key.public_modulus_len()];
            self.key
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message.as_bytes(),
                    &mut signature,
                )
                .expect("sign");
            format!("{message}.{}", b64(&signature))
        }

        pub fn mint(&self, claims: &Value) -> String {
            self.sign(&json!({"alg": "RS256", "kid": self.kid}), claims)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_tokens::*;
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn config() -> JwtConfig {
        JwtConfig::for_issuer(ISSUER, vec![CLIENT_ID.into()])
    }

    fn verifier(signer: &TestSigner) -> JwtVerifier {
        JwtVerifier::with_jwks(config(), &signer.jwks()).expect("jwks")
    }

    async fn refused(verifier: &JwtVerifier, token: &str) -> RuntimeError {
        let error = verifier
            .verify(token)
            .await
            .expect_err("token must be refused");
        if !token.is_empty() {
            assert!(
                !error.to_string().contains(token),
                "error message quotes the token"
            );
        }
        error
    }

    #[tokio::test]
    async fn a_valid_access_token_passes() {
        let signer = TestSigner::new("key-1");
        let claims = signer.claims("user-1");
        let verified = verifier(&signer)
            .verify(&signer.mint(&claims))
            .await
            .expect("valid");
        assert_eq!(verified.sub, "user-1");
        assert_eq!(verified.email.as_deref(), Some("asha@example.com"));
        assert_eq!(verified.client_id, CLIENT_ID);
        assert_eq!(verified.exp, claims["exp"].as_i64().expect("exp"));
        assert!(!format!("{verified:?}").contains("asha@example.com"));
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_refused() {
        let ours = TestSigner::new("key-1");
        let forger = TestSigner::new("key-1"); // same kid, different key
        let token = forger.mint(&forger.claims("user-1"));
        assert_eq!(
            refused(&verifier(&ours), &token).await,
            RuntimeError::BadSignature
        );
    }

    #[tokio::test]
    async fn a_token_with_a_tampered_payload_is_refused() {
        let signer = TestSigner::new("key-1");
        let token = signer.mint(&signer.claims("user-1"));
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged_claims = signer.claims("user-1");
        forged_claims["sub"] = json!("admin");
        let forged_payload = b64(forged_claims.to_string().as_bytes());
        parts[1] = &forged_payload;
        assert_eq!(
            refused(&verifier(&signer), &parts.join(".")).await,
            RuntimeError::BadSignature
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_beyond_a_small_leeway() {
        let signer = TestSigner::new("key-1");
        let verifier = verifier(&signer);
        let mut claims = signer.claims("user-1");

        claims["exp"] = json!(now() - 90);
        assert_eq!(
            refused(&verifier, &signer.mint(&claims)).await,
            RuntimeError::Expired
        );

        claims["exp"] = json!(now() - 5);
        verifier
            .verify(&signer.mint(&claims))
            .await
            .expect("5 s of clock skew is tolerated");
    }

    #[tokio::test]
    async fn a_token_of_another_issuer_is_refused() {
        let signer = TestSigner::new("key-1");
        let mut claims = signer.claims("user-1");
        claims["iss"] = json!(format!("{ISSUER}-other"));
        assert_eq!(
            refused(&verifier(&signer), &signer.mint(&claims)).await,
            RuntimeError::WrongIssuer
        );
    }

    #[tokio::test]
    async fn a_token_for_another_client_is_refused() {
        let signer = TestSigner::new("key-1");
        let mut claims = signer.claims("user-1");
        claims["client_id"] = json!("someone-elses-client");
        assert_eq!(
            refused(&verifier(&signer), &signer.mint(&claims)).await,
            RuntimeError::WrongClient
        );
        claims.as_object_mut().expect("object").remove("client_id");
        assert_eq!(
            refused(&verifier(&signer), &signer.mint(&claims)).await,
            RuntimeError::WrongClient
        );
    }

    #[tokio::test]
    async fn an_id_token_is_refused() {
        let signer = TestSigner::new("key-1");
        let mut claims = signer.claims("user-1");
        claims["token_use"] = json!("id");
        assert_eq!(
            refused(&verifier(&signer), &signer.mint(&claims)).await,
            RuntimeError::NotAnAccessToken
        );
    }

    #[tokio::test]
    async fn an_unsigned_alg_none_token_is_refused() {
        let signer = TestSigner::new("key-1");
        let header = b64(json!({"alg": "none", "kid": "key-1"})
            .to_string()
            .as_bytes());
        let claims = b64(signer.claims("user-1").to_string().as_bytes());
        let token = format!("{header}.{claims}.");
        let error = refused(&verifier(&signer), &token).await;
        assert!(
            matches!(
                error,
                RuntimeError::Malformed | RuntimeError::UnsupportedAlgorithm
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_hs256_token_keyed_with_the_public_key_is_refused() {
        let signer = TestSigner::new("key-1");
        let header = b64(json!({"alg": "HS256", "kid": "key-1"})
            .to_string()
            .as_bytes());
        let claims = b64(signer.claims("user-1").to_string().as_bytes());
        let message = format!("{header}.{claims}");
        let hmac_key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &signer.public_key_der());
        let tag = aws_lc_rs::hmac::sign(&hmac_key, message.as_bytes());
        let token = format!("{message}.{}", b64(tag.as_ref()));
        assert_eq!(
            refused(&verifier(&signer), &token).await,
            RuntimeError::UnsupportedAlgorithm
        );
    }

    #[tokio::test]
    async fn garbage_is_refused() {
        let signer = TestSigner::new("key-1");
        let verifier = verifier(&signer);
        for garbage in [
            "",
            "not-a-jwt",
            "a.b.c",
            "....",
            "eyJhbGciOiJSUzI1NiJ9.e30.",
        ] {
            let error = refused(&verifier, garbage).await;
            assert!(
                matches!(
                    error,
                    RuntimeError::Malformed | RuntimeError::UnknownKey | RuntimeError::BadSignature
                ),
                "{garbage:?} gave {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_with_an_unknown_kid_is_refused_without_a_fetch_when_keys_are_fixed() {
        let signer = TestSigner::new("key-1");
        let other = TestSigner::new("key-2");
        assert_eq!(
            refused(&verifier(&signer), &other.mint(&other.claims("u"))).await,
            RuntimeError::UnknownKey
        );
    }

    #[test]
    fn bearer_is_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_from_headers(&headers), None);
        headers.insert("authorization", "Bearer abc.def.ghi".parse().expect("hv"));
        assert_eq!(bearer_from_headers(&headers), Some("abc.def.ghi"));
        headers.insert("authorization", "bearer   abc".parse().expect("hv"));
        assert_eq!(bearer_from_headers(&headers), Some("abc"));
        headers.insert("authorization", "Basic abc".parse().expect("hv"));
        assert_eq!(bearer_from_headers(&headers), None);
        headers.insert("authorization", "Bearer ".parse().expect("hv"));
        assert_eq!(bearer_from_headers(&headers), None);
    }

    #[test]
    fn a_jwks_without_rsa_signing_keys_is_refused() {
        let only_ec =
            json!({"keys": [{"kty": "EC", "kid": "k", "crv": "P-256", "x": "AA", "y": "AA"}]});
        assert!(matches!(
            JwtVerifier::with_jwks(config(), &only_ec),
            Err(RuntimeError::KeysUnavailable(_))
        ));
        assert!(matches!(
            JwtVerifier::with_jwks(config(), &json!({"nokeys": []})),
            Err(RuntimeError::KeysUnavailable(_))
        ));
    }

    /// A JWKS endpoint on 127.0.0.1 whose document can be swapped and whose hits are counted.
    struct JwksServer {
        url: String,
        hits: Arc<AtomicUsize>,
        document: Arc<std::sync::Mutex<serde_json::Value>>,
    }

    async fn serve_jwks(document: serde_json::Value) -> JwksServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let document = Arc::new(std::sync::Mutex::new(document));
        let (h, d) = (hits.clone(), document.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                let body = d.lock().expect("lock").clone();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer {
            url: format!("http://{addr}/.well-known/jwks.json"),
            hits,
            document,
        }
    }

    fn remote_verifier(url: &str, refetch_interval: Duration) -> JwtVerifier {
        let config = JwtConfig {
            jwks_url: url.into(),
            ..config()
        };
        JwtVerifier::build(
            config,
            KeySource::Remote {
                client: OutboundHttp::new(
                    AllowList::production().with_loopback(LoopbackPorts::Any),
                    Timeouts::default(),
                )
                .expect("client builds"),
            },
            KeyCache::default(),
            refetch_interval,
        )
    }

    #[tokio::test]
    async fn keys_are_fetched_once_and_refetched_for_a_new_kid_at_most_once_per_interval() {
        let key_1 = TestSigner::new("key-1");
        let key_2 = TestSigner::new("key-2");
        let key_3 = TestSigner::new("key-3");
        let server = serve_jwks(key_1.jwks()).await;
        let verifier = remote_verifier(&server.url, Duration::from_millis(300));

        // Lazy: nothing fetched before the first token.
        assert_eq!(server.hits.load(Ordering::SeqCst), 0);
        for _ in 0..3 {
            verifier
                .verify(&key_1.mint(&key_1.claims("u")))
                .await
                .expect("valid");
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), 1, "keys are cached");

        // The provider rotates to key-2, but we fetched less than an interval ago.
        *server.document.lock().expect("lock") = key_2.jwks();
        assert_eq!(
            verifier
                .verify(&key_2.mint(&key_2.claims("u")))
                .await
                .expect_err("too soon to refetch"),
            RuntimeError::UnknownKey
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);

        // After the interval, the unknown kid triggers one refetch and the new key works.
        tokio::time::sleep(Duration::from_millis(350)).await;
        verifier
            .verify(&key_2.mint(&key_2.claims("u")))
            .await
            .expect("rotated key accepted");
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);

        // A flood of tokens with an unknown kid right after costs no more fetches.
        for _ in 0..5 {
            assert_eq!(
                verifier
                    .verify(&key_3.mint(&key_3.claims("u")))
                    .await
                    .expect_err("unknown"),
                RuntimeError::UnknownKey
            );
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);

        // The withdrawn key-1 is no longer accepted.
        assert_eq!(
            verifier
                .verify(&key_1.mint(&key_1.claims("u")))
                .await
                .expect_err("withdrawn"),
            RuntimeError::UnknownKey
        );
    }

    #[tokio::test]
    async fn unreachable_keys_are_a_503_not_a_401() {
        let signer = TestSigner::new("key-1");
        // Port 9 (discard) on loopback: nothing listens there.
        let verifier = remote_verifier("http://127.0.0.1:9/jwks.json", REFETCH_INTERVAL);
        let error = verifier
            .verify(&signer.mint(&signer.claims("u")))
            .await
            .expect_err("no keys");
        assert!(
            matches!(error, RuntimeError::KeysUnavailable(_)),
            "{error:?}"
        );
        assert_eq!(
            Problem::from(error).status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[derive(Clone)]
    struct AppState {
        verifier: JwtVerifier,
    }

    impl FromRef<AppState> for JwtVerifier {
        fn from_ref(state: &AppState) -> Self {
            state.verifier.clone()
        }
    }

    #[tokio::test]
    async fn handlers_taking_claims_answer_401_problems_and_log_no_token() {
        use tower::ServiceExt;
        let signer = TestSigner::new("key-1");
        let app = axum::Router::new()
            .route(
                "/me",
                axum::routing::get(|claims: Claims| async move { claims.sub }),
            )
            .with_state(AppState {
                verifier: verifier(&signer),
            });
        let call = |authorization: Option<String>| {
            let app = app.clone();
            async move {
                let mut request = http::Request::get("/me");
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                app.oneshot(request.body(axum::body::Body::empty()).expect("req"))
                    .await
                    .expect("infallible")
            }
        };

        let good = signer.mint(&signer.claims("user-7"));
        let response = call(Some(format!("Bearer {good}"))).await;
        assert_eq!(response.status(), http::StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"user-7");

        let response = call(None).await;
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");

        let mut expired_claims = signer.claims("user-7");
        expired_claims["exp"] = json!(now() - 3600);
        let expired = signer.mint(&expired_claims);
        let (response, logs) =
            crate::logging::capture::with_captured_logs(call(Some(format!("Bearer {expired}"))))
                .await;
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["content-type"],
            crate::problem::CONTENT_TYPE
        );
        assert!(
            logs.contains("request refused"),
            "the refusal is logged: {:?}",
            logs.lines()
        );
        logs.assert_absent(&expired);
        logs.assert_absent("asha@example.com");
    }
}
