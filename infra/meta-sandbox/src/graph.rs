//! The Graph API router, token checks, and the Page endpoints (`/me`, `/me/accounts`,
//! `/{page-id}/subscribed_apps`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::MetaSandbox;
use crate::error::{GraphError, SandboxError};
use crate::record::GraphCall;
use crate::sandbox::{Grant, Subscription};
use crate::webhooks::hex_hmac;
use crate::{oauth, send};

/// Query (and form body) parameters of one Graph call, plus a token from `Authorization`.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
    header_token: Option<String>,
}

impl Params {
    pub fn new(query: HashMap<String, String>, headers: &HeaderMap) -> Self {
        // Graph API › Access tokens: a token may also come as `Authorization: Bearer|OAuth <t>`.
        let header_token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("OAuth "))
            })
            .map(|t| t.trim().to_owned());
        Self {
            values: query,
            header_token,
        }
    }

    /// Adds the fields of a `application/x-www-form-urlencoded` body (Graph accepts POST
    /// parameters in the query or the body).
    pub fn merge_form(mut self, headers: &HeaderMap, body: &[u8]) -> Self {
        if Self::is_form(headers) {
            for (key, value) in url::form_urlencoded::parse(body) {
                self.values.insert(key.into_owned(), value.into_owned());
            }
        }
        self
    }

    pub fn is_form(headers: &HeaderMap) -> bool {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn access_token(&self) -> Option<&str> {
        self.get("access_token").or(self.header_token.as_deref())
    }
}

/// Accepts `vN.N` path versions; Meta answers anything else as an unknown path.
pub(crate) fn check_version(version: &str) -> Result<(), GraphError> {
    let valid = version.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let numeric = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        };
        numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
    });
    if valid {
        Ok(())
    } else {
        Err(GraphError::unknown_path(version))
    }
}

/// The caller behind a valid token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub grant: Grant,
    pub expires_at: Option<OffsetDateTime>,
}

impl MetaSandbox {
    /// Validates the call's token and, when present, its `appsecret_proof`
    /// (Graph API › Securing Requests: hex HMAC-SHA256 of the token keyed by the app secret).
    pub(crate) fn authenticate(&self, params: &Params) -> Result<Caller, GraphError> {
        let token = params
            .access_token()
            .ok_or_else(GraphError::token_missing)?;
        let now = self.now();
        let grant = self
            .with_state(|s| s.tokens.get(token).cloned())
            .ok_or_else(GraphError::token_invalid)?;
        if grant.revoked {
            return Err(GraphError::token_revoked());
        }
        if grant.expires_at.is_some_and(|at| at <= now) {
            return Err(GraphError::token_expired());
        }
        if let Some(proof) = params.get("appsecret_proof") {
            let expected = hex_hmac(&self.config().app_secret, token.as_bytes());
            if !proof.eq_ignore_ascii_case(&expected) {
                return Err(GraphError::bad_appsecret_proof());
            }
        }
        Ok(Caller {
            grant: grant.grant,
            expires_at: grant.expires_at,
        })
    }

    /// A Page token for exactly that Page, else Meta's error.
    pub(crate) fn authenticate_page(
        &self,
        params: &Params,
        page_id: &str,
    ) -> Result<(), GraphError> {
        match self.authenticate(params)?.grant {
            Grant::Page { page_id: own } if own == page_id => Ok(()),
            // A Page token of another Page is not valid for this one.
            Grant::Page { .. } => Err(GraphError::new(
                190,
                None,
                "Invalid OAuth access token for this Page",
            )),
            Grant::User { .. } => Err(GraphError::page_token_required()),
        }
    }

    /// The Graph and dialog endpoints, every call recorded in [`MetaSandbox::calls`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{ver}/dialog/oauth", get(oauth::dialog))
            .route(
                "/{ver}/oauth/access_token",
                get(oauth::access_token).post(oauth::access_token),
            )
            .route("/{ver}/me", get(me))
            .route("/{ver}/me/accounts", get(me_accounts))
            .route("/{ver}/me/messages", post(send::send_as_token_page))
            .route("/{ver}/{page_id}/messages", post(send::send_as_path_page))
            .route(
                "/{ver}/{page_id}/subscribed_apps",
                get(list_subscribed_apps)
                    .post(subscribe_app)
                    .delete(unsubscribe_app),
            )
            .route("/_files/{id}", get(file))
            .fallback(unknown_path)
            .layer(middleware::from_fn_with_state(self.clone(), record_call))
            .with_state(self.clone())
    }
}

async fn record_call(State(sandbox): State<MetaSandbox>, request: Request, next: Next) -> Response {
    // The path only: the query string may hold an access token.
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let call = GraphCall {
        method,
        path,
        status: response.status().as_u16(),
        at: sandbox.now(),
    };
    sandbox.with_state(|s| s.calls.push(call));
    response
}

async fn unknown_path(uri: Uri) -> SandboxError {
    GraphError::unknown_path(uri.path()).into()
}

/// `GET /me`: the user (user token) or the Page (Page token), `{id, name}`.
async fn me(
    State(sandbox): State<MetaSandbox>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    let caller = sandbox.authenticate(&Params::new(query, &headers))?;
    let body = match caller.grant {
        Grant::User { .. } => {
            let user = &sandbox.config().user;
            json!({ "id": user.id, "name": user.name })
        }
        Grant::Page { page_id } => {
            let name = sandbox.page(&page_id).map(|p| p.name.clone());
            json!({ "id": page_id, "name": name })
        }
    };
    Ok(Json(body))
}

/// What `/me/accounts` says the user can do on each Page ("Pages API › Getting Started").
const PAGE_TASKS: [&str; 6] = [
    "ADVERTISE",
    "ANALYZE",
    "CREATE_CONTENT",
    "MESSAGING",
    "MODERATE",
    "MANAGE",
];

/// Graph's default page size for edges ("Graph API › Paginated Results").
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;

/// Cursors are opaque to clients ("Graph API › Paginated Results"); here: hex of the Page id.
fn cursor(page_id: &str) -> String {
    hex::encode(page_id)
}

/// `GET /me/accounts`: the user's Pages with a Page token each, paged by cursors
/// ("User Accounts" reference and "Graph API › Paginated Results").
async fn me_accounts(
    State(sandbox): State<MetaSandbox>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    let params = Params::new(query, &headers);
    let caller = sandbox.authenticate(&params)?;
    let Grant::User { long_lived } = caller.grant else {
        return Err(GraphError::invalid_parameter(
            "Tried accessing nonexisting field (accounts) on node type (Page)",
        )
        .into());
    };
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                return Err(GraphError::invalid_parameter(
                    "Param limit must be a positive integer",
                )
                .into());
            }
        },
    };
    let pages = &sandbox.config().pages;
    let start = match (params.get("after"), params.get("before")) {
        (Some(after), _) => match pages.iter().position(|p| cursor(&p.id) == after) {
            Some(i) => i + 1,
            None => return Err(GraphError::invalid_parameter("Invalid cursor (after)").into()),
        },
        (None, Some(before)) => match pages.iter().position(|p| cursor(&p.id) == before) {
            Some(i) => i.saturating_sub(limit),
            None => return Err(GraphError::invalid_parameter("Invalid cursor (before)").into()),
        },
        (None, None) => 0,
    };
    let end = (start + limit).min(pages.len());
    let slice = pages.get(start..end).unwrap_or_default();

    // Page tokens from a long-lived user token do not expire ("Long-Lived Access Tokens");
    // from a short-lived one they expire with it.
    let page_token_expiry = if long_lived { None } else { caller.expires_at };
    let data: Vec<Value> = slice
        .iter()
        .map(|page| {
            let token = sandbox.issue_token(
                Grant::Page {
                    page_id: page.id.clone(),
                },
                page_token_expiry,
            );
            json!({
                "access_token": token,
                "category": "Shopping & Retail",
                "category_list": [ { "id": "200600219953504", "name": "Shopping & Retail" } ],
                "name": page.name,
                "id": page.id,
                "tasks": PAGE_TASKS,
            })
        })
        .collect();
    let (Some(first), Some(last)) = (slice.first(), slice.last()) else {
        return Ok(Json(json!({ "data": [] })));
    };

    let base = sandbox
        .base_url()
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!("http://{h}"))
        })
        .unwrap_or_default();
    // Like Meta's, the paging links carry the caller's token so they can be followed as is.
    let link = |direction: &str, at: &str| {
        let mut url = format!("{base}/{version}/me/accounts?");
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(token) = params.access_token() {
            query.append_pair("access_token", token);
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair(direction, at);
        url.push_str(&query.finish());
        url
    };
    let mut paging = json!({
        "cursors": { "before": cursor(&first.id), "after": cursor(&last.id) },
    });
    if end < pages.len() {
        paging["next"] = json!(link("after", &cursor(&last.id)));
    }
    if start > 0 {
        paging["previous"] = json!(link("before", &cursor(&first.id)));
    }
    Ok(Json(json!({ "data": data, "paging": paging })))
}

/// The Page webhook fields an app can subscribe to ("Webhook Events Reference").
const PAGE_FIELDS: [&str; 19] = [
    "messages",
    "message_echoes",
    "message_deliveries",
    "message_reads",
    "message_reactions",
    "message_edits",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_optouts",
    "messaging_referrals",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "messaging_account_linking",
    "messaging_feedback",
    "messaging_customer_information",
    "messaging_game_plays",
    "standby",
    "inbox_labels",
    "feed",
];

/// `subscribed_fields` as a comma list or a JSON array (Graph accepts both).
fn parse_fields(raw: &str) -> Result<Vec<String>, GraphError> {
    let fields: Vec<String> = if raw.trim_start().starts_with('[') {
        serde_json::from_str(raw).map_err(|_| {
            GraphError::invalid_parameter("Param subscribed_fields must be an array of strings")
        })?
    } else {
        raw.split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect()
    };
    if fields.is_empty() {
        return Err(GraphError::invalid_parameter(
            "The parameter subscribed_fields is required",
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        if !PAGE_FIELDS.contains(&field.as_str()) {
            return Err(GraphError::invalid_parameter(format!(
                "Param subscribed_fields[{i}] must be one of {{{}}} - got \"{field}\"",
                PAGE_FIELDS.join(", ")
            )));
        }
    }
    Ok(fields)
}

/// `POST /{page-id}/subscribed_apps` ("Page Subscribed Apps" reference): `{"success":true}`.
async fn subscribe_app(
    State(sandbox): State<MetaSandbox>,
    Path((version, page_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    let params = Params::new(query, &headers).merge_form(&headers, &body);
    sandbox.authenticate_page(&params, &page_id)?;
    let fields = parse_fields(params.get("subscribed_fields").unwrap_or_default())?;
    sandbox.with_state(|s| {
        s.subscriptions
            .insert(page_id.clone(), Subscription::Fields(fields))
    });
    Ok(Json(json!({ "success": true })))
}

/// `DELETE /{page-id}/subscribed_apps`: the app stops getting the Page's webhooks.
async fn unsubscribe_app(
    State(sandbox): State<MetaSandbox>,
    Path((version, page_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    let params = Params::new(query, &headers).merge_form(&headers, &body);
    sandbox.authenticate_page(&params, &page_id)?;
    sandbox.with_state(|s| {
        s.subscriptions
            .insert(page_id.clone(), Subscription::Removed)
    });
    Ok(Json(json!({ "success": true })))
}

/// `GET /{page-id}/subscribed_apps`: the app and its fields, or an empty list.
async fn list_subscribed_apps(
    State(sandbox): State<MetaSandbox>,
    Path((version, page_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, SandboxError> {
    check_version(&version)?;
    sandbox.authenticate_page(&Params::new(query, &headers), &page_id)?;
    let data = match sandbox.subscribed_fields(&page_id) {
        Some(fields) => json!([{
            "category": "Business",
            "name": "EcomDrive (sandbox)",
            "id": sandbox.config().app_id,
            "subscribed_fields": fields,
        }]),
        None => json!([]),
    };
    Ok(Json(json!({ "data": data })))
}

/// `GET /_files/{id}`: an attachment's bytes, standing in for Meta's CDN URL.
async fn file(State(sandbox): State<MetaSandbox>, Path(id): Path<String>) -> Response {
    match sandbox.with_state(|s| s.files.get(&id).cloned()) {
        Some(file) => ([(header::CONTENT_TYPE, file.content_type)], file.bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_look_like_graph_versions() {
        assert!(check_version("v23.0").is_ok());
        assert!(check_version("v9.12").is_ok());
        for bad in ["23.0", "v23", "v23.", "vX.0", "v23.0.1", "me"] {
            assert_eq!(check_version(bad).map_err(|e| e.code), Err(2500), "{bad}");
        }
    }

    #[test]
    fn subscribed_fields_parse_as_list_or_array_and_reject_unknown_fields() {
        assert_eq!(
            parse_fields("messages, message_echoes").ok(),
            Some(vec!["messages".to_owned(), "message_echoes".to_owned()])
        );
        assert_eq!(
            parse_fields(r#"["messaging_postbacks"]"#).ok(),
            Some(vec!["messaging_postbacks".to_owned()])
        );
        assert_eq!(parse_fields("").map_err(|e| e.code), Err(100));
        let unknown = parse_fields("messages,likes").unwrap_err();
        assert_eq!(unknown.code, 100);
        assert!(unknown.message.contains("subscribed_fields[1]"));
    }
}
