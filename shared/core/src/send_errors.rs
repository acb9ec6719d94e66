//! What to do when Meta's Send API refuses a reply (Messenger Platform error codes).

/// The decision agent-reply takes on a Send API error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendErrorAction {
    /// Sending again cannot succeed: the reply fails with Meta's error.
    Fail,
    /// Temporary (rate limits, transient errors): back off and try again.
    Retry,
    /// The Page token is no longer valid: the connection needs the merchant, the reply fails.
    TokenInvalid,
}

/// `code`/`subcode` as Meta's error object carries them; `http_status` for errors without a known code.
pub fn classify_send_error(http_status: u16, code: i64, subcode: Option<i64>) -> SendErrorAction {
    match (code, subcode) {
        (190, _) => SendErrorAction::TokenInvalid,
        // 10/2018278: outside the allowed window; 551: the person is unavailable;
        // 100: invalid parameter (e.g. no matching user).
        (10, _) | (551, _) | (100, _) => SendErrorAction::Fail,
        // 613: calls to this API exceeded the rate limit; 4: app rate limit; 32: page rate limit;
        // 2: temporary service issue; 1200: temporary send failure.
        (613, _) | (4, _) | (32, _) | (2, _) | (1200, _) => SendErrorAction::Retry,
        _ if http_status >= 500 => SendErrorAction::Retry,
        _ => SendErrorAction::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_map_as_the_issue_says() {
        use SendErrorAction::*;
        assert_eq!(classify_send_error(400, 10, Some(2018278)), Fail);
        assert_eq!(classify_send_error(400, 551, None), Fail);
        assert_eq!(classify_send_error(400, 100, Some(2018001)), Fail);
        for code in [613, 4, 32, 2, 1200] {
            assert_eq!(classify_send_error(400, code, None), Retry, "code {code}");
        }
        assert_eq!(classify_send_error(400, 190, None), TokenInvalid);
        assert_eq!(classify_send_error(503, 0, None), Retry);
        assert_eq!(classify_send_error(400, 12345, None), Fail);
    }
}
