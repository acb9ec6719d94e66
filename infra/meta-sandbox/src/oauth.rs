//! Facebook Login, manual flow ("Manually Build a Login Flow"): the login dialog, the code
//! exchange, and the exchange for a long-lived user token ("Long-Lived Access Tokens").

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use time::Duration;

use crate::MetaSandbox;
use crate::error::{GraphError, SandboxError};
use crate::graph::{Params, check_version};
use crate::ids;
use crate::sandbox::{AuthCode, Grant};

/// An authorization code must be exchanged soon; Meta's live for minutes.
const CODE_LIFETIME: Duration = Duration::minutes(10);
/// Web login gives a short-lived user token, "about an hour or two" ("Access Tokens").
const SHORT_LIVED_SECONDS: i64 = 5_400;
/// A long-lived user token "generally lasts about 60 days" ("Long-Lived Access Tokens").
const LONG_LIVED_SECONDS: i64 = 60 * 24 * 3_600;

fn error_page(message: &str) -> Response {
    // The dialog is a web page: an unusable request gets an error page, never a redirect.
    let body = format!(
        "<!doctype html><title>Error</title><h1>Sorry, something went wrong.</h1><p>{}</p>",
        message.replace('<', "&lt;")
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// `GET /{ver}/dialog/oauth`: the user consents at once (or declines, when a test asked for it)
/// and is sent to `redirect_uri?code=...&state=...`.
pub(crate) async fn dialog(
    State(sandbox): State<MetaSandbox>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if check_version(&version).is_err() {
        return error_page("Unknown Graph API version.");
    }
    let get = |key: &str| query.get(key).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id") != Some(sandbox.config().app_id.as_str()) {
        return error_page(
            "Invalid App ID: The provided app ID does not look like a valid app ID.",
        );
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page("The redirect_uri parameter is missing.");
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return error_page("URL blocked: the redirect_uri is not a valid URL.");
    };
    match get("response_type") {
        None | Some("code") => {}
        Some(_) => return error_page("The sandbox supports response_type=code only."),
    }

    let declined = sandbox.with_state(|s| std::mem::take(&mut s.deny_next_consent));
    {
        let mut pairs = target.query_pairs_mut();
        if declined {
            // "Manually Build a Login Flow › Canceled Login": the documented declined redirect.
            pairs
                .append_pair("error_reason", "user_denied")
                .append_pair("error", "access_denied")
                .append_pair("error_description", "Permissions error.");
        } else {
            let code = ids::auth_code();
            let expires_at = sandbox.now() + CODE_LIFETIME;
            sandbox.with_state(|s| {
                s.codes.insert(
                    code.clone(),
                    AuthCode {
                        redirect_uri: redirect_uri.to_owned(),
                        expires_at,
                        used: false,
                    },
                )
            });
            pairs.append_pair("code", &code);
        }
        if let Some(state) = get("state") {
            pairs.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// `GET|POST /{ver}/oauth/access_token`: a code for a short-lived user token, or
/// `grant_type=fb_exchange_token` for a long-lived one.
pub(crate) async fn access_token(
    State(sandbox): State<MetaSandbox>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    let params = Params::new(query, &headers).merge_form(&headers, &body);
    if params.get("client_id") != Some(sandbox.config().app_id.as_str()) {
        return Err(GraphError::new(
            101,
            None,
            "Error validating application. Invalid application ID.",
        )
        .into());
    }
    if params.get("client_secret") != Some(sandbox.config().app_secret.as_str()) {
        return Err(GraphError::new(1, None, "Error validating client secret.").into());
    }
    let (token, expires_in) = if params.get("grant_type") == Some("fb_exchange_token") {
        exchange_for_long_lived(&sandbox, &params)?
    } else {
        exchange_code(&sandbox, &params)?
    };
    // Shape from "Manually Build a Login Flow › Exchanging Code for an Access Token".
    Ok(Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
    })))
}

fn exchange_code(sandbox: &MetaSandbox, params: &Params) -> Result<(String, i64), GraphError> {
    let code = params
        .get("code")
        .ok_or_else(|| GraphError::new(100, None, "Invalid verification code format."))?;
    let redirect_uri = params.get("redirect_uri").unwrap_or_default();
    let now = sandbox.now();
    // Check and spend the code in one step so two concurrent exchanges cannot both win.
    sandbox.with_state(|s| {
        let entry = s
            .codes
            .get_mut(code)
            .ok_or_else(|| GraphError::new(100, None, "Invalid verification code format."))?;
        if entry.used {
            return Err(GraphError::new(
                100,
                Some(36009),
                "This authorization code has been used.",
            ));
        }
        if entry.expires_at <= now {
            return Err(GraphError::new(
                100,
                Some(36007),
                "This authorization code has expired.",
            ));
        }
        if entry.redirect_uri != redirect_uri {
            return Err(GraphError::new(
                100,
                Some(36008),
                "Error validating verification code. Please make sure your redirect_uri is \
                 identical to the one you used in the OAuth dialog request",
            ));
        }
        entry.used = true;
        Ok(())
    })?;
    let expires_at = now + Duration::seconds(SHORT_LIVED_SECONDS);
    let token = sandbox.issue_token(Grant::User { long_lived: false }, Some(expires_at));
    Ok((token, SHORT_LIVED_SECONDS))
}

fn exchange_for_long_lived(
    sandbox: &MetaSandbox,
    params: &Params,
) -> Result<(String, i64), GraphError> {
    let short = params
        .get("fb_exchange_token")
        .ok_or_else(|| GraphError::invalid_parameter("Missing fb_exchange_token parameter"))?;
    let mut lookup = HashMap::new();
    lookup.insert("access_token".to_owned(), short.to_owned());
    let caller = sandbox.authenticate(&Params::new(lookup, &HeaderMap::new()))?;
    match caller.grant {
        Grant::User { .. } => {
            let expires_at = sandbox.now() + Duration::seconds(LONG_LIVED_SECONDS);
            let token = sandbox.issue_token(Grant::User { long_lived: true }, Some(expires_at));
            Ok((token, LONG_LIVED_SECONDS))
        }
        Grant::Page { .. } => Err(GraphError::invalid_parameter(
            "The sandbox exchanges user access tokens only",
        )),
    }
}
