//! RFC 9457 problem responses: every error the API answers is `application/problem+json`.
//!
//! A [`Problem`] carries a stable `kind` slug (the last part of the `type` URL), so the SPA and
//! tests match on `type`, never on the human `title`. [`JsonBody`] is the JSON extractor to use in
//! handlers: a malformed body, a wrong content type or an oversized body answers 400/415/413 as a
//! problem, never a 500 and never axum's plain-text rejection.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every problem `type` is this prefix followed by the problem's kind.
pub const TYPE_PREFIX: &str = "https://errors.ecomdrive.app/";

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One RFC 9457 problem. Build it with a constructor (`Problem::not_found(..)`), add details with
/// [`Problem::with_detail`] / [`Problem::with_extra`], and return it from a handler.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: String,
    detail: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
    headers: HeaderMap,
}

/// One invalid field of a request, listed under `errors` in a 422 problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field as the client sent it, e.g. `gstin` or `items[2].quantity`.
    pub field: String,
    /// What is wrong with it, for a person to read.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl Problem {
    /// A problem of any status. `kind` is a stable slug such as `outside-messaging-window`.
    pub fn new(status: StatusCode, kind: &'static str, title: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            title: title.into(),
            detail: None,
            extra: serde_json::Map::new(),
            headers: HeaderMap::new(),
        }
    }

    /// A human explanation of this occurrence. Never put a token, secret or message text here.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// An extension member of the body. The standard members (`type`, `title`, `status`,
    /// `detail`) cannot be overridden this way.
    pub fn with_extra(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The `type` member: [`TYPE_PREFIX`] + kind.
    pub fn type_url(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.kind)
    }

    /// The JSON body exactly as it is sent.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        for (key, value) in &self.extra {
            if !matches!(key.as_str(), "type" | "title" | "status" | "detail") {
                body.insert(key.clone(), value.clone());
            }
        }
        body.insert("type".into(), self.type_url().into());
        body.insert("title".into(), self.title.clone().into());
        body.insert("status".into(), self.status.as_u16().into());
        if let Some(detail) = &self.detail {
            body.insert("detail".into(), detail.clone().into());
        }
        serde_json::Value::Object(body)
    }

    // The common problems. Their kinds are part of the API contract: do not rename them.

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").with_detail(detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks, so clients know to (re)authenticate.
    pub fn unauthorized() -> Self {
        let mut problem = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        );
        problem
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        problem
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You do not have permission to do this",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
    }

    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", "Gone").with_detail(detail)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail(detail)
    }

    /// 422 with the list of invalid fields under `errors`.
    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        let errors = serde_json::to_value(errors).unwrap_or_else(|_| serde_json::json!([]));
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "The request has invalid fields",
        )
        .with_extra("errors", errors)
    }

    /// 429 with `Retry-After` in seconds (also in the body as `retry_after`).
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        )
        .with_extra("retry_after", retry_after_secs);
        problem
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        problem
    }

    /// 500. Takes no detail on purpose: what went wrong belongs in the log, not in the answer.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side",
        )
    }

    /// 503: a dependency (Secrets Manager, the identity provider's keys) is unreachable right now.
    pub fn service_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service temporarily unavailable",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Problem::unsupported_media_type("Send the body as application/json")
            }
            StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(),
            // Valid JSON of the wrong shape. serde's message names the field and what it
            // expected; it only ever echoes the caller's own input back to the caller.
            StatusCode::UNPROCESSABLE_ENTITY => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "The body does not have the expected shape",
            )
            .with_detail(rejection.body_text()),
            _ => Problem::bad_request("The body is not valid JSON"),
        }
    }
}

/// `axum::Json` whose rejection is a [`Problem`]. Use it instead of `Json<T>` in every handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn parts(response: Response) -> (StatusCode, HeaderMap, serde_json::Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes).expect("problem body is JSON");
        (status, headers, json)
    }

    #[tokio::test]
    async fn a_problem_is_problem_json_with_type_title_status_and_detail() {
        let problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside-messaging-window",
            "Outside the messaging window",
        )
        .with_detail("The customer last wrote 8 days ago")
        .with_extra("last_customer_message_at", "2025-01-01T00:00:00Z")
        .with_extra("status", 200); // must not override the real status

        let (status, headers, body) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://errors.ecomdrive.app/outside-messaging-window",
                "title": "Outside the messaging window",
                "status": 422,
                "detail": "The customer last wrote 8 days ago",
                "last_customer_message_at": "2025-01-01T00:00:00Z",
            })
        );
    }

    #[tokio::test]
    async fn unauthorized_asks_for_a_bearer_token() {
        let (status, headers, body) = parts(Problem::unauthorized().into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["type"], "https://errors.ecomdrive.app/unauthorized");
        assert!(body.get("detail").is_none());
    }

    #[tokio::test]
    async fn too_many_requests_says_when_to_retry() {
        let (status, headers, body) = parts(Problem::too_many_requests(17).into_response()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "17");
        assert_eq!(body["retry_after"], 17);
    }

    #[tokio::test]
    async fn unprocessable_lists_the_invalid_fields() {
        let problem = Problem::unprocessable(vec![FieldError::new("gstin", "bad check digit")]);
        let (status, _, body) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body["errors"],
            serde_json::json!([{"field": "gstin", "detail": "bad check digit"}])
        );
    }

    #[tokio::test]
    async fn internal_has_no_detail() {
        let (status, _, body) = parts(Problem::internal().into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(3),
            "only type, title, status: {body}"
        );
    }

    #[derive(serde::Deserialize)]
    struct NewNote {
        text: String,
    }

    fn notes_app() -> Router {
        Router::new()
            .route(
                "/notes",
                post(|JsonBody(note): JsonBody<NewNote>| async move { note.text }),
            )
            .layer(DefaultBodyLimit::max(64))
    }

    async fn post_notes(content_type: Option<&str>, body: &str) -> Response {
        let mut request = http::Request::post("/notes");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        notes_app()
            .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn json_body_accepts_good_json() {
        let response = post_notes(Some("application/json"), r#"{"text":"hi"}"#).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_problem() {
        let (status, headers, body) =
            parts(post_notes(Some("application/json"), r#"{"text": "#).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(body["type"], "https://errors.ecomdrive.app/bad-request");
    }

    #[tokio::test]
    async fn wrong_content_type_is_a_415_problem() {
        let (status, headers, body) =
            parts(post_notes(Some("text/plain"), r#"{"text":"hi"}"#).await).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(headers[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(body["status"], 415);

        let (status, _, _) = parts(post_notes(None, r#"{"text":"hi"}"#).await).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn oversized_body_is_a_413_problem() {
        let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(200));
        let (status, headers, body) = parts(post_notes(Some("application/json"), &big).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(headers[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(
            body["type"],
            "https://errors.ecomdrive.app/payload-too-large"
        );
    }

    #[tokio::test]
    async fn json_of_the_wrong_shape_is_a_422_problem() {
        let (status, _, body) =
            parts(post_notes(Some("application/json"), r#"{"text": 5}"#).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["type"], "https://errors.ecomdrive.app/invalid-body");
        assert!(body["detail"].as_str().unwrap_or("").contains("text"));
    }
}
