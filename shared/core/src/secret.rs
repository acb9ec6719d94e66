//! A value that must never be printed: platform tokens, app secrets, ciphertexts.
//!
//! `Debug` and `Display` print a fixed placeholder, and there is no `Serialize`, so a secret cannot
//! reach a log line or a response by accident (POLICY E14). Read it with [`Secret::expose`] at the one
//! place that needs the raw value.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Call it only where the value leaves for its rightful destination
    /// (an HTTPS request to the platform, KMS), never to log or to answer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("EAAB-very-secret");
        assert!(!format!("{s:?}").contains("EAAB"));
        assert!(!format!("{s}").contains("EAAB"));
        assert_eq!(s.expose(), "EAAB-very-secret");
    }
}
