//! Random identifiers shaped like Amazon's, and obviously fake (clients must not parse them).

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

fn alnum(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// An LWA access token: Amazon's start with `Atza|`.
pub fn access_token() -> String {
    format!("Atza|SANDBOX-{}", alnum(64))
}

/// An LWA refresh token: Amazon's start with `Atzr|`.
pub fn refresh_token() -> String {
    format!("Atzr|SANDBOX-{}", alnum(64))
}

/// The `spapi_oauth_code` of a consent redirect (single use, five minutes).
pub fn authorization_code() -> String {
    format!("SANDBOX{}", alnum(20))
}

/// An opaque getOrders `NextToken`.
pub fn next_token() -> String {
    alnum(48)
}

/// `x-amzn-RequestId`: Amazon's are UUIDs.
pub fn request_id() -> String {
    let mut rng = rand::rng();
    let mut hex = |len: usize| -> String {
        (0..len)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}
