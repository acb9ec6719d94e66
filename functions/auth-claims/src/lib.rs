//! `auth-claims`: Cognito's pre-token-generation trigger (event version 2).
//!
//! Cognito access tokens carry no e-mail, but the API needs it on a user's first request to accept
//! the invitations waiting for that address. This trigger adds the `email` claim to access tokens,
//! only when Cognito has verified the address (an unverified one could claim someone's invite).

use serde_json::{Value, json};

/// Returns the event with the claim override set, as Cognito expects the answer.
pub fn add_email_claim(mut event: Value) -> Value {
    let attributes = &event["request"]["userAttributes"];
    let verified = attributes["email_verified"] == "true" || attributes["email_verified"] == true;
    let email = attributes["email"].as_str().map(str::to_owned);
    if let (true, Some(email)) = (verified, email) {
        event["response"] = json!({
            "claimsAndScopeOverrideDetails": {
                "accessTokenGeneration": { "claimsToAddOrOverride": { "email": email } }
            }
        });
    } else if event["response"].is_null() {
        event["response"] = json!({});
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(email_verified: &str) -> Value {
        json!({
            "version": "2",
            "triggerSource": "TokenGeneration_Authentication",
            "region": "ap-south-1",
            "userPoolId": "ap-south-1_Example",
            "userName": "9f1c0a52-0000-4000-8000-000000000001",
            "request": {
                "userAttributes": {"sub": "9f1c0a52-0000-4000-8000-000000000001", "email": "a@b.in", "email_verified": email_verified},
                "groupConfiguration": {},
                "scopes": ["aws.cognito.signin.user.admin"]
            },
            "response": {"claimsAndScopeOverrideDetails": null}
        })
    }

    #[test]
    fn a_verified_email_goes_into_the_access_token() {
        let out = add_email_claim(event("true"));
        assert_eq!(
            out["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["claimsToAddOrOverride"]
                ["email"],
            "a@b.in"
        );
    }

    #[test]
    fn an_unverified_email_does_not() {
        let out = add_email_claim(event("false"));
        assert!(out["response"]["claimsAndScopeOverrideDetails"].is_null());
    }
}
