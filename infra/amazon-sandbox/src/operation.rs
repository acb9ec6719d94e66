//! The operations the sandbox serves, their documented rate limits, and the faults a test can
//! inject into them.

/// One endpoint of the sandbox, for rate limits and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /auth/o2/token` (Login with Amazon).
    LwaToken,
    /// `GET /orders/v0/orders`.
    GetOrders,
    /// `GET /orders/v0/orders/{orderId}`.
    GetOrder,
    /// `GET /orders/v0/orders/{orderId}/orderItems`.
    GetOrderItems,
    /// `GET /solicitations/v1/orders/{amazonOrderId}`.
    GetSolicitationActions,
    /// `POST /solicitations/v1/orders/{amazonOrderId}/solicitations/productReviewAndSellerFeedback`
    CreateSolicitation,
    /// `GET /reports/2021-06-30/reports`.
    GetReports,
    /// `GET /reports/2021-06-30/documents/{reportDocumentId}`.
    GetReportDocument,
    /// `GET /_documents/{reportDocumentId}`: the presigned document URL (S3 at Amazon). No rate
    /// limit; a fault answers S3's XML error.
    DownloadReportDocument,
}

/// A token bucket's settings: `rate_per_sec` tokens come back each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rate_per_sec: f64,
    pub burst: u32,
}

impl Operation {
    /// Amazon's `operationId` (the names used in the API models and fixture files).
    pub fn operation_id(self) -> &'static str {
        match self {
            Self::LwaToken => "lwaToken",
            Self::GetOrders => "getOrders",
            Self::GetOrder => "getOrder",
            Self::GetOrderItems => "getOrderItems",
            Self::GetSolicitationActions => "getSolicitationActionsForOrder",
            Self::CreateSolicitation => "createProductReviewAndSellerFeedbackSolicitation",
            Self::GetReports => "getReports",
            Self::GetReportDocument => "getReportDocument",
            Self::DownloadReportDocument => "downloadReportDocument",
        }
    }

    /// The default usage plan from the Orders v0, Solicitations v1 and Reports 2021-06-30
    /// references. LWA and S3 document none, so the token endpoint and document downloads are
    /// unlimited unless a test sets a limit.
    pub fn default_rate_limit(self) -> Option<RateLimit> {
        let limit = |rate_per_sec, burst| {
            Some(RateLimit {
                rate_per_sec,
                burst,
            })
        };
        match self {
            Self::LwaToken | Self::DownloadReportDocument => None,
            Self::GetOrders => limit(0.0167, 20),
            Self::GetOrder | Self::GetOrderItems => limit(0.5, 30),
            Self::GetSolicitationActions | Self::CreateSolicitation => limit(1.0, 5),
            Self::GetReports => limit(0.0222, 10),
            Self::GetReportDocument => limit(0.0167, 15),
        }
    }

    /// The Solicitations API answers `application/hal+json`, the Orders API `application/json`.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::GetSolicitationActions | Self::CreateSolicitation => "application/hal+json",
            _ => "application/json",
        }
    }
}

/// What the next call(s) of an operation suffer (see [`crate::AmazonSandbox::fail_next`]).
///
/// Faults apply after the caller's token is checked and the rate limit is passed, so a
/// refused call (403, 429) does not use one up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with Amazon's error body (`InternalFailure` for 5xx); nothing is
    /// processed.
    Status(u16),
    /// Process the call (a solicitation is sent, a code is spent) but answer this status:
    /// Amazon did the work and the answer was lost.
    ProcessThenFail(u16),
    /// For [`Operation::LwaToken`]: answer this OAuth error, e.g. `invalid_grant` (400) or
    /// `invalid_client` (401). On an SP-API operation it is answered as 403 `Unauthorized`.
    LwaError(&'static str),
}
