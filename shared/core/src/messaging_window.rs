//! Meta's messaging window (POLICY E12): a Page may answer a customer with a standard `RESPONSE`
//! within 24 hours of the customer's last message, and with the `HUMAN_AGENT` tag (a person
//! answering) up to 7 days after it. After that, nothing may be sent until the customer writes again.

use time::{Duration, OffsetDateTime};

pub const STANDARD_WINDOW: Duration = Duration::hours(24);
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);

/// How a reply goes out: the Send API's `messaging_type` and `tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    Response,
    HumanAgent,
}

impl ReplyMode {
    pub fn messaging_type(self) -> &'static str {
        match self {
            ReplyMode::Response => "RESPONSE",
            ReplyMode::HumanAgent => "MESSAGE_TAG",
        }
    }

    pub fn tag(self) -> Option<&'static str> {
        match self {
            ReplyMode::Response => None,
            ReplyMode::HumanAgent => Some("HUMAN_AGENT"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowClosed {
    /// The customer never wrote: nobody may be messaged first.
    NeverWrote,
    /// More than 7 days since the customer's last message.
    Expired,
}

/// Decides how (and whether) a reply may be sent `now`, given the customer's last message.
/// The boundaries are inclusive of the start and exclusive of the end (exactly 24 h is too late
/// for `RESPONSE`), erring on the side of Meta's rules.
pub fn reply_mode(
    last_customer_message: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<ReplyMode, WindowClosed> {
    let last = last_customer_message.ok_or(WindowClosed::NeverWrote)?;
    let age = now - last;
    if age < STANDARD_WINDOW {
        Ok(ReplyMode::Response)
    } else if age < HUMAN_AGENT_WINDOW {
        Ok(ReplyMode::HumanAgent)
    } else {
        Err(WindowClosed::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-01 10:00 UTC);

    #[test]
    fn policy_e12_window_edges() {
        let at = |d: Duration| reply_mode(Some(T0), T0 + d);
        assert_eq!(at(Duration::ZERO), Ok(ReplyMode::Response));
        assert_eq!(
            at(Duration::hours(24) - Duration::SECOND),
            Ok(ReplyMode::Response)
        );
        assert_eq!(at(Duration::hours(24)), Ok(ReplyMode::HumanAgent));
        assert_eq!(
            at(Duration::days(7) - Duration::SECOND),
            Ok(ReplyMode::HumanAgent)
        );
        assert_eq!(at(Duration::days(7)), Err(WindowClosed::Expired));
        assert_eq!(reply_mode(None, T0), Err(WindowClosed::NeverWrote));
    }

    #[test]
    fn modes_map_to_send_api_fields() {
        assert_eq!(ReplyMode::Response.messaging_type(), "RESPONSE");
        assert_eq!(ReplyMode::Response.tag(), None);
        assert_eq!(ReplyMode::HumanAgent.messaging_type(), "MESSAGE_TAG");
        assert_eq!(ReplyMode::HumanAgent.tag(), Some("HUMAN_AGENT"));
    }

    proptest! {
        #[test]
        fn later_never_opens_a_wider_mode(a in 0i64..2_000_000, b in 0i64..2_000_000) {
            let (early, late) = (a.min(b), a.max(b));
            let rank = |s: i64| match reply_mode(Some(T0), T0 + Duration::seconds(s)) {
                Ok(ReplyMode::Response) => 0,
                Ok(ReplyMode::HumanAgent) => 1,
                Err(_) => 2,
            };
            prop_assert!(rank(early) <= rank(late));
        }
    }
}
