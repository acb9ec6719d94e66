//! What every SP-API call goes through, in this order:
//! 1. Amazon's static sandbox cases: a call matching one is answered from the fixtures, for
//!    any `x-amz-access-token` (one must be present);
//! 2. otherwise the token must be a live LWA access token, which names the seller (else 403);
//! 3. the (seller, operation) token bucket (else 429 `QuotaExceeded`);
//! 4. an injected fault, if one is queued;
//! 5. the operation itself.
//!
//! Every answer carries `x-amzn-RateLimit-Limit` and `x-amzn-RequestId`, as Amazon's do.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::AmazonSandbox;
use crate::error::ApiError;
use crate::operation::{Fault, Operation};
use crate::rate_limit::header_value;
use crate::{ids, statics};

/// The header SP-API reads the LWA access token from.
pub(crate) const ACCESS_TOKEN_HEADER: &str = "x-amz-access-token";

/// A call's parameters by name: the query's, and the path's under the model's name
/// (`orderId`, `amazonOrderId`). A repeated query parameter is joined with commas, the form
/// SP-API uses for arrays.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_query(raw: Option<&str>) -> Self {
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match params.0.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => params.0.push((name.into_owned(), value.into_owned())),
            }
        }
        params
    }

    /// The same parameters with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The names of the parameters sent.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// The value as sent, even empty.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, when not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// A comma-separated list, without empty items.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.raw(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The caller of an SP-API operation: the seller behind the access token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub seller_id: String,
}

/// A successful answer: status and JSON body.
pub(crate) type Answer = (StatusCode, Value);

impl AmazonSandbox {
    /// Runs an SP-API call through the steps above; `work` is the operation itself.
    pub(crate) fn sp_api(
        &self,
        operation: Operation,
        headers: &HeaderMap,
        params: &Params,
        work: impl FnOnce(&Caller) -> Result<Answer, ApiError>,
    ) -> Response {
        let (status, body) = match self.answer(operation, headers, params, work) {
            Ok(answer) => answer,
            Err(error) => (
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                error.body(),
            ),
        };
        let rate = self
            .with_state(|s| s.rate_limit(operation))
            .map_or_else(String::new, |limit| header_value(limit.rate_per_sec));
        let mut response = (status, body.to_string()).into_response();
        let response_headers = response.headers_mut();
        response_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(operation.content_type()),
        );
        if let Ok(rate) = HeaderValue::from_str(&rate) {
            response_headers.insert("x-amzn-ratelimit-limit", rate);
        }
        if let Ok(id) = HeaderValue::from_str(&ids::request_id()) {
            response_headers.insert("x-amzn-requestid", id);
        }
        response
    }

    fn answer(
        &self,
        operation: Operation,
        headers: &HeaderMap,
        params: &Params,
        work: impl FnOnce(&Caller) -> Result<Answer, ApiError>,
    ) -> Result<Answer, ApiError> {
        let static_case = statics::find(operation, params);
        let token = headers
            .get(ACCESS_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let seller_id = self.with_state(|s| s.token_seller(token));
        let caller = match (seller_id, static_case) {
            (Some(seller_id), _) => Caller { seller_id },
            // The static sandbox takes any token; such callers share one bucket.
            (None, Some(_)) => Caller {
                seller_id: String::new(),
            },
            (None, None) => return Err(ApiError::unauthorized()),
        };

        let (allowed, fault) = self.with_state(|s| {
            let allowed = s.take_rate_token(&caller.seller_id, operation);
            (allowed, allowed.then(|| s.take_fault(operation)).flatten())
        });
        if !allowed {
            return Err(ApiError::quota_exceeded());
        }
        let process = || match static_case {
            Some(case) => Ok((
                StatusCode::from_u16(case.status).unwrap_or(StatusCode::OK),
                case.response.clone(),
            )),
            None => work(&caller),
        };
        match fault {
            None => process(),
            Some(Fault::Status(status)) => Err(ApiError::for_status(status)),
            Some(Fault::LwaError(_)) => Err(ApiError::unauthorized()),
            Some(Fault::ProcessThenFail(status)) => {
                // The work is done (or refused) and its answer lost on the way back.
                let _lost = process();
                Err(ApiError::for_status(status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_repeated_ones_joined_with_commas() {
        let params = Params::from_query(Some(
            "MarketplaceIds=A1&MarketplaceIds=A2&LastUpdatedAfter=2025-01-01T00%3A00%3A00Z&E=",
        ));
        assert_eq!(params.raw("MarketplaceIds"), Some("A1,A2"));
        assert_eq!(params.list("MarketplaceIds"), vec!["A1", "A2"]);
        assert_eq!(params.get("LastUpdatedAfter"), Some("2025-01-01T00:00:00Z"));
        assert_eq!(params.raw("E"), Some(""));
        assert_eq!(params.get("E"), None);
        assert_eq!(params.get("missing"), None);
        assert!(params.list("missing").is_empty());
        let with_path = params.with("orderId", "402-1").with("orderId", "402-2");
        assert_eq!(with_path.raw("orderId"), Some("402-2"));
    }
}
