//! Login with Amazon's token endpoint (`POST /auth/o2/token`, as `api.amazon.com`) and Seller
//! Central's consent page (`GET /apps/authorize/consent`), the two halves of the SP-API
//! "website authorization workflow".
//!
//! The consent page consents at once: it redirects to the app with `state`,
//! `selling_partner_id` and a single-use `spapi_oauth_code` valid five minutes, which the token
//! endpoint exchanges for a refresh token and a one-hour access token.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::Duration;

use crate::AmazonSandbox;
use crate::error::{OAuthError, SandboxError};
use crate::ids;
use crate::operation::{Fault, Operation};
use crate::sandbox::{ACCESS_TOKEN_SECONDS, AuthCode};

/// "The authorization code expires after five minutes" (SP-API website authorization workflow).
const CODE_LIFETIME: Duration = Duration::minutes(5);

/// `POST /auth/o2/token`: `authorization_code` or `refresh_token` grants.
pub(crate) async fn token(
    State(sandbox): State<AmazonSandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sandbox.token_answer(&headers, &body) {
        Ok(answer) => (
            StatusCode::OK,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(answer),
        )
            .into_response(),
        Err(error) => SandboxError::from(error).into_response(),
    }
}

impl AmazonSandbox {
    fn token_answer(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(OAuthError::invalid_request(
                "The request must be application/x-www-form-urlencoded",
            ));
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let get = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let missing = |name: &str| {
            OAuthError::invalid_request(format!(
                "The request is missing a required parameter : {name}"
            ))
        };

        let grant_type = get("grant_type").ok_or_else(|| missing("grant_type"))?;
        let config = self.config();
        if get("client_id") != Some(config.client_id.as_str())
            || get("client_secret") != Some(config.client_secret.as_str())
        {
            return Err(OAuthError::invalid_client());
        }
        let grant = || match grant_type {
            "authorization_code" => {
                let code = get("code").ok_or_else(|| missing("code"))?;
                self.exchange_code(code, get("redirect_uri"))
            }
            "refresh_token" => {
                let refresh_token = get("refresh_token").ok_or_else(|| missing("refresh_token"))?;
                self.refresh(refresh_token)
            }
            _ => Err(OAuthError::new(
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            )),
        };

        let (allowed, fault) = self.with_state(|s| {
            let allowed = s.take_rate_token("", Operation::LwaToken);
            (
                allowed,
                allowed.then(|| s.take_fault(Operation::LwaToken)).flatten(),
            )
        });
        if !allowed {
            return Err(OAuthError::for_status(429));
        }
        match fault {
            None => grant(),
            Some(Fault::Status(status)) => Err(OAuthError::for_status(status)),
            Some(Fault::LwaError(error)) => Err(OAuthError::new(
                error,
                "The sandbox was told to refuse this request.",
            )),
            Some(Fault::ProcessThenFail(status)) => {
                // The code is spent (or the token issued) and the answer lost on the way back.
                let _lost = grant();
                Err(OAuthError::for_status(status))
            }
        }
    }

    /// Spends a consent code: a new refresh token and access token for its seller.
    fn exchange_code(&self, code: &str, redirect_uri: Option<&str>) -> Result<Value, OAuthError> {
        let invalid =
            || OAuthError::invalid_grant("The request has an invalid grant parameter : code");
        self.with_state(|s| {
            let now = s.now();
            // Checked and spent in one step, so two concurrent exchanges cannot both win.
            let entry = s.codes.get_mut(code).ok_or_else(invalid)?;
            // LWA's documented request may leave redirect_uri out; when sent, it must match.
            let redirect_matches = redirect_uri.is_none_or(|uri| uri == entry.redirect_uri);
            if entry.used || entry.expires_at <= now || !redirect_matches {
                return Err(invalid());
            }
            entry.used = true;
            let seller_id = entry.seller_id.clone();
            let refresh_token = s.issue_refresh_token(&seller_id);
            let access_token = s.issue_access_token(&seller_id);
            Ok(token_body(&access_token, &refresh_token))
        })
    }

    /// A new access token; the refresh token comes back unchanged (as LWA documents).
    fn refresh(&self, refresh_token: &str) -> Result<Value, OAuthError> {
        self.with_state(|s| {
            let seller_id = s
                .refresh_tokens
                .get(refresh_token)
                .filter(|grant| !grant.revoked)
                .map(|grant| grant.seller_id.clone())
                .ok_or_else(|| {
                    OAuthError::invalid_grant(
                        "The request has an invalid grant parameter : refresh_token",
                    )
                })?;
            let access_token = s.issue_access_token(&seller_id);
            Ok(token_body(&access_token, refresh_token))
        })
    }
}

/// The documented answer (`fixtures/lwa_token_response.examples.json`).
fn token_body(access_token: &str, refresh_token: &str) -> Value {
    json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "refresh_token": refresh_token,
    })
}

/// `GET /apps/authorize/consent?application_id&state&redirect_uri[&version=beta][&seller=ID]`:
/// the seller (the first one, or `seller`) consents at once and is sent to
/// `redirect_uri?state&selling_partner_id&spapi_oauth_code`.
pub(crate) async fn consent(
    State(sandbox): State<AmazonSandbox>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, SandboxError> {
    let get = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    if get("application_id") != Some(sandbox.config().application_id.as_str()) {
        return Err(SandboxError::Consent(
            "The application_id is not a known application.".to_owned(),
        ));
    }
    let state = get("state")
        .ok_or_else(|| SandboxError::Consent("The state parameter is missing.".to_owned()))?;
    let redirect_uri = get("redirect_uri").ok_or_else(|| {
        SandboxError::Consent("The redirect_uri parameter is missing.".to_owned())
    })?;
    let mut target = url::Url::parse(redirect_uri)
        .map_err(|_| SandboxError::Consent("The redirect_uri is not a valid URL.".to_owned()))?;

    let code = ids::authorization_code();
    let seller_id = sandbox.with_state(|s| {
        let seller_id = match get("seller") {
            Some(wanted) => s.seller(wanted).map(|seller| seller.id.clone()),
            None => s.sellers.first().map(|seller| seller.id.clone()),
        }
        .ok_or_else(|| {
            SandboxError::Consent("No such seller account in the sandbox.".to_owned())
        })?;
        let expires_at = s.now() + CODE_LIFETIME;
        s.codes.insert(
            code.clone(),
            AuthCode {
                seller_id: seller_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                expires_at,
                used: false,
            },
        );
        Ok::<_, SandboxError>(seller_id)
    })?;
    target
        .query_pairs_mut()
        .append_pair("state", state)
        .append_pair("selling_partner_id", &seller_id)
        .append_pair("spapi_oauth_code", &code);
    Ok((StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response())
}
