//! Connecting a merchant's Amazon seller account (POLICY A2, A11): Amazon's website
//! authorization workflow.
//!
//! Start returns Seller Central's consent URL with a signed single-use `state` (and sets the
//! nonce cookie); the callback checks both, exchanges `spapi_oauth_code` at LWA for the refresh
//! token, keeps it only as KMS ciphertext bound to merchant and selling partner, and queues the
//! first order sync. Disconnect deletes the token at once; every queued job of the connection
//! then finds it gone and does nothing.

use crate::AppState;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult};
use crate::oauth_state::STATE_LIFETIME_SECS;
use crate::routes::oauth_flow;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use ecomdrive_aws::TokenContext;
use ecomdrive_aws::store::amazon::AmazonConnection;
use ecomdrive_aws::store::audit::Actor;
use ecomdrive_core::amazon::SellingPartnerId;
use ecomdrive_core::amazon::jobs::MerchantJob;
use ecomdrive_core::ids::AmazonConnectionId;
use ecomdrive_core::role::Action;
use ecomdrive_platforms::amazon::consent_url;
use ecomdrive_runtime::client::ClientInfo;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

const CALLBACK_PATH: &str = "/oauth/amazon/callback";

impl AppState {
    fn amazon_callback_url(&self) -> String {
        format!(
            "{}{CALLBACK_PATH}",
            self.config.public_base_url.trim_end_matches('/')
        )
    }

    pub(crate) async fn amazon_client(
        &self,
    ) -> ApiResult<ecomdrive_platforms::amazon::AmazonClient> {
        self.amazon.client().await.map_err(ApiError::internal)
    }
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/integrations/amazon/connect", tag = "amazon", params(("merchant_id" = String, Path)), responses((status = 200, description = "`{authorize_url}`: Seller Central's consent page; a nonce cookie is set")))]
pub async fn connect(State(state): State<AppState>, member: Member) -> ApiResult<Response> {
    member.require(Action::ManageIntegrations)?;
    let (signed, nonce) = oauth_flow::start(&state, &member, "amazon").await?;
    let client = state.amazon_client().await?;
    let url = consent_url(client.config(), &signed, &state.amazon_callback_url());
    member.audit(&state, "amazon.connect.start", None).await?;
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
    state: Option<String>,
    selling_partner_id: Option<String>,
    spapi_oauth_code: Option<String>,
}

/// Seller Central's redirect back. Not under `/v1`: the browser arrives here, authenticated by
/// the state and the nonce cookie.
#[utoipa::path(get, path = "/oauth/amazon/callback", tag = "amazon", responses((status = 200, description = "Connected"), (status = 303, description = "Back to the SPA"), (status = 400, description = "Bad, expired or reused state, no nonce cookie, or LWA refused the code")))]
pub async fn callback(
    State(state): State<AppState>,
    caller: ClientInfo,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let (m, user) = oauth_flow::redeem(&state, &headers, q.state.as_deref(), "amazon").await?;
    let seller = q
        .selling_partner_id
        .as_deref()
        .and_then(SellingPartnerId::parse)
        .ok_or_else(|| oauth_flow::refused("missing or malformed selling_partner_id"))?;
    let code = q
        .spapi_oauth_code
        .ok_or_else(|| oauth_flow::refused("missing spapi_oauth_code"))?;
    let client = state.amazon_client().await?;
    let refresh = client
        .exchange_code(&code, &state.amazon_callback_url())
        .await
        .map_err(|e| match e {
            ecomdrive_platforms::PlatformError::Lwa { error, .. } => {
                oauth_flow::refused(&format!("Login with Amazon answered {error}"))
            }
            other => ApiError::Platform(other.to_string()),
        })?;
    let sealed = state
        .vault
        .seal(&TokenContext::amazon_seller(&m, &seller), &refresh)
        .await
        .map_err(ApiError::internal)?;
    let conn = AmazonConnection {
        merchant_id: m.clone(),
        connection_id: AmazonConnectionId::generate(),
        selling_partner_id: seller.clone(),
        marketplace_id: state.amazon.endpoints.marketplace_id.clone(),
        refresh_token_ciphertext: sealed,
        token_valid: true,
        connected_by: user.clone(),
        connected_at: OffsetDateTime::now_utc(),
    };
    state
        .store
        .connect_amazon(&conn)
        .await
        .map_err(|e| match e {
            // Another connection of this merchant was being written at the same moment.
            ecomdrive_aws::AwsError::Conflict(_) => ApiError::conflict(
                "connection-changed",
                "another Amazon connection of this merchant was completed at the same time; connect again",
            ),
            other => other.into(),
        })?;
    state
        .store
        .audit(
            &m,
            &Actor::User {
                id: user.clone(),
                ip: caller.ip,
                user_agent: caller.user_agent,
            },
            "amazon.connect",
            Some(seller.as_str()),
        )
        .await?;
    // The first sync right away; the hourly schedule takes over from there.
    let job = MerchantJob {
        merchant_id: m.clone(),
        connection_id: conn.connection_id.clone(),
    };
    if let Err(e) = state
        .order_sync
        .send(
            None,
            serde_json::to_string(&job).map_err(ApiError::internal)?,
        )
        .await
    {
        tracing::warn!(error = %e, "could not queue the first order sync; the schedule will run it");
    }

    let clear = state.nonce_cookie(CALLBACK_PATH, "", 0);
    let mut response = match &state.config.spa_origin {
        Some(spa) => Redirect::to(&format!(
            "{}/integrations/amazon?connected=1",
            spa.trim_end_matches('/')
        ))
        .into_response(),
        None => Json(status_view(Some(&conn))).into_response(),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(ApiError::internal)?,
    );
    Ok(response)
}

fn status_view(conn: Option<&AmazonConnection>) -> Value {
    match conn {
        Some(c) => json!({
            "connected": true,
            "status": if c.token_valid { "active" } else { "reconnect_needed" },
            "selling_partner_id": c.selling_partner_id,
            "marketplace_id": c.marketplace_id,
            "connected_at": crate::rfc3339(c.connected_at),
        }),
        None => json!({ "connected": false }),
    }
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/integrations/amazon", tag = "amazon", params(("merchant_id" = String, Path)), responses((status = 200, description = "Connected or not, marketplace, since when; never a token")))]
pub async fn status(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ReadIntegrations)?;
    let conn = state.store.amazon_connection(&member.merchant).await?;
    let mut view = status_view(conn.as_ref());
    if conn.is_some()
        && let Some(sync) = state.store.sync_state(&member.merchant).await?
    {
        view["last_sync_at"] = json!(crate::rfc3339(sync.last_run_at));
    }
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/v1/merchants/{merchant_id}/integrations/amazon", tag = "amazon", params(("merchant_id" = String, Path)), responses((status = 200, description = "Disconnected: the refresh token is deleted and every queued job stops")))]
pub async fn disconnect(State(state): State<AppState>, member: Member) -> ApiResult<Json<Value>> {
    member.require(Action::ManageIntegrations)?;
    let removed = state.store.disconnect_amazon(&member.merchant).await?;
    if let Some(conn) = removed {
        member
            .audit(
                &state,
                "amazon.disconnect",
                Some(conn.selling_partner_id.as_str()),
            )
            .await?;
    }
    Ok(Json(status_view(None)))
}
