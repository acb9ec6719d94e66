//! Where a request came from: the caller's IP address and user agent, for the audit log
//! (POLICY A14, A5) and for rate limits of public endpoints.
//!
//! In Lambda the address is API Gateway's `sourceIp` from the request context (a header such as
//! `X-Forwarded-For` is the caller's to write, so it is never trusted). The local stack serves the
//! same routers on a TCP listener with [`axum::extract::ConnectInfo`].

use axum::extract::ConnectInfo;
use http::request::Parts;
use lambda_http::request::RequestContext;
use std::net::SocketAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn from_parts(parts: &Parts) -> Self {
        let ip = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
            _ => parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        };
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self { ip, user_agent }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_the_connection_never_from_a_header() {
        let (mut parts, ()) = http::Request::builder()
            .header("x-forwarded-for", "203.0.113.9")
            .header("user-agent", "Mozilla/5.0 test")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(ClientInfo::from_parts(&parts).ip, None);
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 4000))));
        let info = ClientInfo::from_parts(&parts);
        assert_eq!(info.ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(info.user_agent.as_deref(), Some("Mozilla/5.0 test"));
    }
}
