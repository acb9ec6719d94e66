//! Connecting a merchant's Facebook Pages (POLICY E1, E4, E14, E15).
//!
//! Start returns Meta's OAuth dialog URL with a signed single-use `state` and sets the nonce
//! cookie; the callback checks both, exchanges the code for a long-lived user token and lists the
//! user's Pages; selecting a Page stores its token (KMS, bound to merchant and Page) and subscribes
//! our app to its webhook. Tokens never leave the server: responses carry ids, names and statuses.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use crate::oauth_state::STATE_LIFETIME_SECS;
use crate::routes::oauth_flow;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ecomdrive_aws::TokenContext;
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_aws::store::connections::{
    AUTHORIZATION_LIFETIME, AvailablePage, ConnectionStatus, MessengerAuthorization, PageConnection,
};
use ecomdrive_aws::vault::{MESSENGER_PAGE, MESSENGER_USER};
use ecomdrive_core::ids::PageId;
use ecomdrive_core::role::{Action, allows};
use ecomdrive_platforms::meta::{MESSENGER_WEBHOOK_FIELDS, MetaClient};
use ecomdrive_runtime::client::ClientInfo;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

const CALLBACK_PATH: &str = "/oauth/messenger/callback";

fn platform(e: impl std::fmt::Display) -> ApiError {
    ApiError::Platform(e.to_string())
}

impl AppState {
    fn callback_url(&self) -> String {
        format!(
            "{}{CALLBACK_PATH}",
            self.config.public_base_url.trim_end_matches('/')
        )
    }
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/integrations/messenger/connect", tag = "messenger", params(("merchant_id" = String, Path)), responses((status = 200, description = "`{authorize_url}`: send the browser there; a nonce cookie is set")))]
pub async fn connect(State(state): State<AppState>, member: Member) -> ApiResult<Response> {
    member.require(Action::ManageIntegrations)?;
    let (signed, nonce) = oauth_flow::start(&state, &member, "messenger").await?;
    let meta = state.meta().await?;
    let url = meta.authorize_url(&state.callback_url(), &signed);
    member
        .audit(&state, "messenger.connect.start", None)
        .await?;
    let mut response = Json(json!({ "authorize_url": url })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&state.nonce_cookie(CALLBACK_PATH, &nonce, STATE_LIFETIME_SECS))
            .map_err(ApiError::internal)?,
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Meta's redirect back. Not under `/v1`: the browser arrives here, authenticated by the state
/// and the nonce cookie, not by a bearer token.
#[utoipa::path(get, path = "/oauth/messenger/callback", tag = "messenger", responses((status = 200, description = "Authorized; the Pages are listed"), (status = 303, description = "Back to the SPA"), (status = 400, description = "Bad, expired or reused state, or no nonce cookie")))]
pub async fn callback(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let (m, user) = oauth_flow::redeem(&state, &headers, q.state.as_deref(), "messenger").await?;
    if let Some(error) = q.error {
        return Err(oauth_flow::refused(&format!("Meta answered {error}")));
    }
    let code = q.code.ok_or_else(|| oauth_flow::refused("missing code"))?;

    let meta = state.meta().await?;
    let short = meta
        .exchange_code(&code, &state.callback_url())
        .await
        .map_err(platform)?;
    let long = meta.long_lived_user_token(&short).await.map_err(platform)?;
    // Who the token belongs to at Facebook: Meta's data deletion and deauthorize callbacks name
    // this app-scoped id, so it is kept with the authorization and the Pages it connects.
    let facebook_user = meta.me(&long).await.map_err(platform)?;
    let pages = meta.pages(&long).await.map_err(platform)?;
    let sealed = state
        .vault
        .seal(
            &TokenContext {
                merchant: &m,
                integration: MESSENGER_USER,
                resource: user.as_str(),
            },
            &long,
        )
        .await
        .map_err(ApiError::internal)?;
    let available: Vec<AvailablePage> = pages
        .iter()
        .filter_map(|p| {
            PageId::parse(&p.id).map(|id| AvailablePage {
                id,
                name: p.name.clone(),
            })
        })
        .collect();
    state
        .store
        .save_messenger_authorization(&MessengerAuthorization {
            merchant_id: m.clone(),
            authorized_by: user.clone(),
            user_token_ciphertext: sealed,
            facebook_user_id: Some(facebook_user.id),
            facebook_user_name: Some(facebook_user.name),
            pages: available.clone(),
            authorized_at: OffsetDateTime::now_utc(),
            expires_at: (OffsetDateTime::now_utc() + AUTHORIZATION_LIFETIME).unix_timestamp(),
        })
        .await?;
    state
        .store
        .audit(
            &m,
            &Actor::User {
                id: user.clone(),
                ip: client.ip,
                user_agent: client.user_agent,
            },
            "messenger.authorize",
            None,
        )
        .await?;

    let clear = state.nonce_cookie(CALLBACK_PATH, "", 0);
    let mut response = match &state.config.spa_origin {
        Some(spa) => Redirect::to(&format!("{}/integrations/messenger?authorized=1", spa.trim_end_matches('/'))).into_response(),
        None => Json(json!({
            "status": "authorized",
            "merchant_id": m,
            "pages": available.iter().map(|p| json!({"id": p.id, "name": p.name})).collect::<Vec<_>>(),
        }))
        .into_response(),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(ApiError::internal)?,
    );
    Ok(response)
}

fn page_view(p: &PageConnection) -> Value {
    json!({
        "id": p.page_id,
        "name": p.name,
        "connected": p.status != ConnectionStatus::Disconnected,
        "status": p.status,
        "connected_at": crate::rfc3339(p.connected_at),
    })
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/integrations/messenger", tag = "messenger", params(("merchant_id" = String, Path)), responses((status = 200, description = "Connection status (never a token)")))]
pub async fn status(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadIntegrations)?;
    let auth = state
        .store
        .messenger_authorization(&member.merchant)
        .await?;
    let pages = state.store.page_connections(&member.merchant).await?;
    Ok(Json(json!({
        "authorized": auth.is_some(),
        "authorized_at": auth.as_ref().map(|a| crate::rfc3339(a.authorized_at)),
        "pages": pages.iter().map(page_view).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/integrations/messenger/pages", tag = "messenger", params(("merchant_id" = String, Path)), responses((status = 200, description = "The authorizing user's Pages and which are connected")))]
pub async fn pages(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadIntegrations)?;
    let auth = state
        .store
        .messenger_authorization(&member.merchant)
        .await?;
    let connected = state.store.page_connections(&member.merchant).await?;
    let mut items: Vec<Value> = Vec::new();
    for p in auth.map(|a| a.pages).unwrap_or_default() {
        let conn = connected.iter().find(|c| c.page_id == p.id);
        items.push(json!({
            "id": p.id,
            "name": p.name,
            "connected": conn.is_some_and(|c| c.status != ConnectionStatus::Disconnected),
            "status": conn.map(|c| c.status),
        }));
    }
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(put, path = "/v1/merchants/{merchant_id}/integrations/messenger/pages/{page_id}", tag = "messenger", params(("merchant_id" = String, Path), ("page_id" = String, Path)), responses((status = 200, description = "Connected"), (status = 409, description = "Held by another merchant, or not authorized yet")))]
pub async fn connect_page(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let page_id = path.1;
    member.require(Action::ManageIntegrations)?;
    let m = &member.merchant;
    let page_id = PageId::parse(&page_id).ok_or(ApiError::NotFound)?;
    let auth = state
        .store
        .messenger_authorization(m)
        .await?
        .ok_or_else(|| {
            ApiError::conflict("messenger-not-authorized", "connect with Facebook first")
        })?;
    // The user whose Facebook token this is must still be allowed to connect Pages here.
    let authorizer = state.store.membership(m, &auth.authorized_by).await?;
    if !authorizer.is_some_and(|a| allows(a.role, Action::ManageIntegrations)) {
        return Err(ApiError::conflict(
            "messenger-not-authorized",
            "the person who connected Facebook is no longer allowed to; connect with Facebook again",
        ));
    }
    let available = auth
        .pages
        .iter()
        .find(|p| p.id == page_id)
        .ok_or(ApiError::NotFound)?;
    if let Some(owner) = state.store.page_owner(&page_id).await?
        && &owner != m
    {
        return Err(ApiError::conflict(
            "page-held-by-another-merchant",
            "this Page is connected to another merchant",
        ));
    }
    let user_token = state
        .vault
        .open(
            &TokenContext {
                merchant: m,
                integration: MESSENGER_USER,
                resource: auth.authorized_by.as_str(),
            },
            &auth.user_token_ciphertext,
        )
        .await
        .map_err(ApiError::internal)?;
    let meta = state.meta().await?;
    let access = meta
        .pages(&user_token)
        .await
        .map_err(platform)?
        .into_iter()
        .find(|p| p.id == page_id.as_str())
        .ok_or_else(|| {
            ApiError::conflict(
                "page-no-longer-managed",
                "the authorizing user no longer manages this Page",
            )
        })?;
    meta.subscribe_page(
        page_id.as_str(),
        &access.access_token,
        MESSENGER_WEBHOOK_FIELDS,
    )
    .await
    .map_err(platform)?;
    let sealed = state
        .vault
        .seal(
            &TokenContext {
                merchant: m,
                integration: MESSENGER_PAGE,
                resource: page_id.as_str(),
            },
            &access.access_token,
        )
        .await
        .map_err(ApiError::internal)?;
    let now = OffsetDateTime::now_utc();
    let conn = PageConnection {
        merchant_id: m.clone(),
        page_id: page_id.clone(),
        name: available.name.clone(),
        status: ConnectionStatus::Active,
        token_ciphertext: Some(sealed),
        connected_by: member.id().clone(),
        facebook_user_id: auth.facebook_user_id.clone(),
        connected_at: now,
        updated_at: now,
    };
    state.store.connect_page(&conn).await.map_err(|e| match e {
        ecomdrive_aws::AwsError::Conflict(_) => ApiError::conflict(
            "page-held-by-another-merchant",
            "this Page is connected to another merchant",
        ),
        other => other.into(),
    })?;
    member
        .audit(&state, "messenger.page.connect", Some(page_id.as_str()))
        .await?;
    Ok(Json(page_view(&conn)))
}

#[utoipa::path(delete, path = "/v1/merchants/{merchant_id}/integrations/messenger/pages/{page_id}", tag = "messenger", params(("merchant_id" = String, Path), ("page_id" = String, Path)), responses((status = 200, description = "Disconnected; the token is deleted")))]
pub async fn disconnect_page(
    State(state): State<AppState>,
    member: Member,
    Path(path): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let page_id = path.1;
    member.require(Action::ManageIntegrations)?;
    let m = &member.merchant;
    let page_id = PageId::parse(&page_id).ok_or(ApiError::NotFound)?;
    let conn = state
        .store
        .page_connection(m, &page_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(sealed) = &conn.token_ciphertext {
        // Unsubscribing is a courtesy to Meta; the token is deleted whatever Meta answers.
        let ctx = TokenContext {
            merchant: m,
            integration: MESSENGER_PAGE,
            resource: page_id.as_str(),
        };
        match (state.vault.open(&ctx, sealed).await, state.meta().await) {
            (Ok(token), Ok(meta)) => {
                if let Err(e) = meta.unsubscribe_page(page_id.as_str(), &token).await {
                    tracing::warn!(error = %e, "could not unsubscribe the Page; disconnecting anyway");
                }
            }
            _ => {
                tracing::warn!("could not open the Page token to unsubscribe; disconnecting anyway")
            }
        }
    }
    state.store.disconnect_page(m, &page_id).await?;
    member
        .audit(&state, "messenger.page.disconnect", Some(page_id.as_str()))
        .await?;
    let conn = state
        .store
        .page_connection(m, &page_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::OK, Json(page_view(&conn))))
}

impl AppState {
    pub(crate) async fn meta(&self) -> ApiResult<MetaClient> {
        self.config
            .meta
            .client(&self.http, &self.secrets)
            .await
            .map_err(ApiError::internal)
    }
}
