//! Pacing calls to Amazon per seller: a token bucket (Amazon's own model: a rate and a burst).
//!
//! The bucket's state lives in the store so every Lambda instance shares it; this is the pure
//! arithmetic. Tokens are counted in thousandths so the state is a pair of integers.

use serde::{Deserialize, Serialize};

/// A documented usage plan: `per_second` sustained, `burst` at most at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// Solicitations API, both operations: Amazon allows 1 request per second, burst 5. We keep a
/// margin on both (0.9 per second, burst 4): a request leaves a few milliseconds after its token
/// is taken and reaches Amazon with jitter, and Amazon's own bucket must never run dry.
pub const SOLICITATIONS: Rate = Rate {
    per_second: 0.9,
    burst: 4,
};

const MILLI: i64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Thousandths of a request available at `at_ms`.
    pub milli_tokens: i64,
    /// Unix milliseconds of the last update.
    pub at_ms: i64,
}

impl TokenBucket {
    pub fn full(rate: Rate, now_ms: i64) -> Self {
        Self {
            milli_tokens: i64::from(rate.burst) * MILLI,
            at_ms: now_ms,
        }
    }

    /// Takes one request's token at `now_ms`: the new state, or how many milliseconds to wait
    /// before one is there. A clock that went backwards refills nothing.
    pub fn take(self, rate: Rate, now_ms: i64) -> Result<Self, u64> {
        let elapsed = (now_ms - self.at_ms).max(0);
        let refill = (elapsed as f64 * rate.per_second) as i64; // milli-tokens per ms = per second
        let cap = i64::from(rate.burst) * MILLI;
        let available = (self.milli_tokens.max(0) + refill).min(cap);
        if available >= MILLI {
            Ok(Self {
                milli_tokens: available - MILLI,
                at_ms: now_ms.max(self.at_ms),
            })
        } else {
            let missing = (MILLI - available) as f64;
            Err((missing / rate.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_full_bucket_allows_the_burst_then_one_per_second() {
        let mut b = TokenBucket::full(SOLICITATIONS, 0);
        for _ in 0..4 {
            b = b.take(SOLICITATIONS, 0).expect("burst");
        }
        // 1000 thousandths at 0.9 per ms: 1112 ms until the next request.
        assert_eq!(b.take(SOLICITATIONS, 0), Err(1112));
        assert_eq!(b.take(SOLICITATIONS, 400), Err(712));
        let b = b.take(SOLICITATIONS, 1112).expect("1.112 seconds later");
        assert!(b.take(SOLICITATIONS, 1112).is_err());
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let b = TokenBucket {
            milli_tokens: 0,
            at_ms: 10_000,
        };
        assert!(b.take(SOLICITATIONS, 5_000).is_err());
    }

    proptest! {
        /// Whatever the timing of the attempts, no window of T seconds admits more than
        /// burst + T·rate requests.
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(gaps in proptest::collection::vec(0i64..1500, 1..200)) {
            let mut b = TokenBucket::full(SOLICITATIONS, 0);
            let mut now = 0;
            let mut admitted = 0u64;
            for g in gaps {
                now += g;
                if let Ok(next) = b.take(SOLICITATIONS, now) {
                    b = next;
                    admitted += 1;
                }
            }
            let bound = u64::from(SOLICITATIONS.burst) + (now as f64 / 1000.0 * SOLICITATIONS.per_second).floor() as u64;
            prop_assert!(admitted <= bound, "{admitted} > {bound} in {now} ms");
        }
    }
}
