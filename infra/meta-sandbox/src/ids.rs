//! Random identifiers that look like Meta's (opaque strings; clients must not parse them).

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

fn alnum(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// A message id: Meta's current ids start with `m_` (Send API reference, sample response).
pub fn mid() -> String {
    format!("m_{}", alnum(40))
}

/// A Page-scoped user id: numeric, 16 digits, like Meta's PSIDs.
pub fn psid() -> String {
    let mut rng = rand::rng();
    let first: u8 = rng.random_range(1..=9);
    let rest: String = (0..15)
        .map(|_| char::from(b'0' + rng.random_range(0..=9u8)))
        .collect();
    format!("{first}{rest}")
}

/// An access token: Meta's start with `EAA`.
pub fn access_token() -> String {
    format!("EAA{}", alnum(96))
}

/// An OAuth authorization code (single use, short-lived).
pub fn auth_code() -> String {
    format!("AQ{}", alnum(64))
}

pub fn fbtrace_id() -> String {
    alnum(11)
}

/// The id of a file served at `/_files/{id}`, standing in for a Meta CDN URL.
pub fn file_id() -> String {
    alnum(24)
}
