//! `api`: the HTTPS API of the merchant SPA (routes under `/v1`, JSON, RFC 9457 problems), the
//! Messenger OAuth callback, `/healthz` and the OpenAPI document generated from this code.
//!
//! The same [`router`] runs in Lambda (`lambda_http`) and in the local stack (a TCP listener).

pub mod auth;
pub mod error;
pub mod oauth_state;
pub mod routes;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use ecomdrive_aws::settlement_import::SettlementImporter;
use ecomdrive_aws::{Blobs, Queue, Store, TokenVault};
use ecomdrive_platforms::outbound::OutboundHttp;
use ecomdrive_runtime::amazon::AmazonApi;
use ecomdrive_runtime::auth::JwtVerifier;
use ecomdrive_runtime::problem::Problem;
use ecomdrive_runtime::secrets::{MetaAppSecrets, MetaEndpoints, SecretCache};
use routes::{
    amazon, closing, deletion, exports, inbox, merchants, messenger, orders, settlements,
};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::OpenApi;

/// The most a JSON request body may be: every request of this API is small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Where this API is reached from outside (the OAuth redirect URI is built from it).
    pub public_base_url: String,
    /// Where the browser goes back after the OAuth callback; without it, the callback answers JSON.
    pub spa_origin: Option<String>,
    pub meta: MetaEndpoints,
}

impl ApiConfig {
    /// Cookies are `Secure` except when the API itself is plain-HTTP localhost (the local stack).
    pub fn cookie_secure(&self) -> bool {
        !(self.public_base_url.starts_with("http://127.0.0.1")
            || self.public_base_url.starts_with("http://localhost"))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub vault: TokenVault,
    pub replies: Queue,
    /// The order-sync queue: the first sync right after a merchant connects Amazon.
    pub order_sync: Queue,
    pub amazon: AmazonApi,
    /// Imports settlement files (direct uploads) and signs upload URLs for large ones.
    pub settlements: SettlementImporter,
    /// The settlement-import queue: imports of large uploaded files.
    pub settlement_import: Queue,
    /// The exports queue (`data-export`).
    pub exports: Queue,
    /// The deletions queue (`data-deletion`'s job side).
    pub deletions: Queue,
    /// The data bucket: export files (presigned download links).
    pub blobs: Blobs,
    pub secrets: SecretCache<MetaAppSecrets>,
    pub http: OutboundHttp,
    pub jwt: JwtVerifier,
    pub config: Arc<ApiConfig>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "EcomDrive API",
        description = "The merchant SPA's API. Bearer: a Cognito access token."
    ),
    paths(
        merchants::me,
        merchants::create_merchant,
        merchants::list_merchants,
        merchants::get_merchant,
        merchants::update_merchant,
        merchants::list_members,
        merchants::invite_member,
        merchants::change_role,
        merchants::remove_member,
        merchants::audit_log,
        messenger::connect,
        messenger::callback,
        messenger::status,
        messenger::pages,
        messenger::connect_page,
        messenger::disconnect_page,
        inbox::list_conversations,
        inbox::get_conversation,
        inbox::update_conversation,
        inbox::list_messages,
        inbox::create_reply,
        inbox::link_order,
        inbox::get_customer,
        inbox::update_customer,
        amazon::connect,
        amazon::callback,
        amazon::status,
        amazon::disconnect,
        orders::list_orders,
        orders::get_order,
        orders::update_order,
        orders::link_conversation,
        orders::list_solicitations,
        orders::summary,
        orders::get_settings,
        orders::put_settings,
        settlements::upload_settlement,
        settlements::list_settlements,
        settlements::get_settlement,
        settlements::create_upload,
        settlements::import_upload,
        settlements::get_upload,
        settlements::put_cogs,
        settlements::get_cogs,
        settlements::pnl_by_period,
        settlements::pnl_by_sku,
        settlements::pnl_by_order,
        settlements::reconciliation,
        deletion::delete_merchant,
        deletion::delete_customer,
        closing::close_merchant,
        closing::reopen_merchant,
        exports::create_export,
        exports::get_export,
    )
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/me", get(merchants::me))
        .route(
            "/merchants",
            post(merchants::create_merchant).get(merchants::list_merchants),
        )
        .route(
            "/merchants/{merchant_id}",
            get(merchants::get_merchant)
                .patch(merchants::update_merchant)
                .delete(deletion::delete_merchant),
        )
        .route(
            "/merchants/{merchant_id}/members",
            get(merchants::list_members).post(merchants::invite_member),
        )
        .route(
            "/merchants/{merchant_id}/members/{user_id}",
            axum::routing::patch(merchants::change_role).delete(merchants::remove_member),
        )
        .route("/merchants/{merchant_id}/audit", get(merchants::audit_log))
        .route(
            "/merchants/{merchant_id}/exports",
            post(exports::create_export),
        )
        .route(
            "/merchants/{merchant_id}/exports/{export_id}",
            get(exports::get_export),
        )
        .route(
            "/merchants/{merchant_id}/close",
            post(closing::close_merchant),
        )
        .route(
            "/merchants/{merchant_id}/reopen",
            post(closing::reopen_merchant),
        )
        .route(
            "/merchants/{merchant_id}/integrations/messenger",
            get(messenger::status),
        )
        .route(
            "/merchants/{merchant_id}/integrations/messenger/connect",
            post(messenger::connect),
        )
        .route(
            "/merchants/{merchant_id}/integrations/messenger/pages",
            get(messenger::pages),
        )
        .route(
            "/merchants/{merchant_id}/integrations/messenger/pages/{page_id}",
            put(messenger::connect_page).delete(messenger::disconnect_page),
        )
        .route(
            "/merchants/{merchant_id}/conversations",
            get(inbox::list_conversations),
        )
        .route(
            "/merchants/{merchant_id}/conversations/{conversation_id}",
            get(inbox::get_conversation).patch(inbox::update_conversation),
        )
        .route(
            "/merchants/{merchant_id}/conversations/{conversation_id}/messages",
            get(inbox::list_messages),
        )
        .route(
            "/merchants/{merchant_id}/conversations/{conversation_id}/replies",
            post(inbox::create_reply),
        )
        .route(
            "/merchants/{merchant_id}/conversations/{conversation_id}/orders",
            post(inbox::link_order),
        )
        .route(
            "/merchants/{merchant_id}/customers/{customer_id}",
            get(inbox::get_customer)
                .patch(inbox::update_customer)
                .delete(deletion::delete_customer),
        )
        .route(
            "/merchants/{merchant_id}/integrations/amazon",
            get(amazon::status).delete(amazon::disconnect),
        )
        .route(
            "/merchants/{merchant_id}/integrations/amazon/connect",
            post(amazon::connect),
        )
        .route("/merchants/{merchant_id}/orders", get(orders::list_orders))
        .route(
            "/merchants/{merchant_id}/orders/{order_id}",
            get(orders::get_order).patch(orders::update_order),
        )
        .route(
            "/merchants/{merchant_id}/orders/{order_id}/conversations",
            post(orders::link_conversation),
        )
        .route(
            "/merchants/{merchant_id}/solicitations",
            get(orders::list_solicitations),
        )
        .route(
            "/merchants/{merchant_id}/solicitations/summary",
            get(orders::summary),
        )
        .route(
            "/merchants/{merchant_id}/solicitations/settings",
            get(orders::get_settings).put(orders::put_settings),
        )
        .route(
            "/merchants/{merchant_id}/settlements",
            post(settlements::upload_settlement)
                .layer(DefaultBodyLimit::max(settlements::MAX_UPLOAD_BYTES))
                .get(settlements::list_settlements),
        )
        .route(
            "/merchants/{merchant_id}/settlements/uploads",
            post(settlements::create_upload),
        )
        .route(
            "/merchants/{merchant_id}/settlements/uploads/{upload_id}",
            get(settlements::get_upload),
        )
        .route(
            "/merchants/{merchant_id}/settlements/uploads/{upload_id}/import",
            post(settlements::import_upload),
        )
        .route(
            "/merchants/{merchant_id}/settlements/{settlement_id}",
            get(settlements::get_settlement),
        )
        .route(
            "/merchants/{merchant_id}/cogs",
            put(settlements::put_cogs)
                .layer(DefaultBodyLimit::max(settlements::MAX_UPLOAD_BYTES))
                .get(settlements::get_cogs),
        )
        .route(
            "/merchants/{merchant_id}/pnl",
            get(settlements::pnl_by_period),
        )
        .route(
            "/merchants/{merchant_id}/pnl/skus",
            get(settlements::pnl_by_sku),
        )
        .route(
            "/merchants/{merchant_id}/pnl/orders",
            get(settlements::pnl_by_order),
        )
        .route(
            "/merchants/{merchant_id}/reconciliation",
            get(settlements::reconciliation),
        );
    Router::new()
        .nest("/v1", v1)
        .route("/oauth/messenger/callback", get(messenger::callback))
        .route("/oauth/amazon/callback", get(amazon::callback))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .fallback(|| async { Problem::not_found().into_response() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed().into_response() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// PATCH semantics: a missing field is `None` (unchanged), `null` is `Some(None)` (cleared).
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}
