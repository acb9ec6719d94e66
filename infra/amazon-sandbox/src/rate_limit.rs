//! Token buckets, as Amazon's usage plans describe them: a bucket holds up to `burst` tokens,
//! each call takes one, and `rate_per_sec` tokens come back each second. They run on real
//! elapsed time ([`Instant`]), not on the settable business clock.

use std::time::Instant;

use crate::operation::RateLimit;

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    pub fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            refilled_at: now,
        }
    }

    /// Takes a token if there is one; `false` means the call is over the limit (429).
    pub fn try_take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.rate_per_sec).min(f64::from(limit.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The `x-amzn-RateLimit-Limit` value: the rate per second as Amazon writes it (`0.0167`,
/// `0.5`, `1.0`). Rust's `Debug` for `f64` gives exactly that: shortest form, always a dot.
pub(crate) fn header_value(rate_per_sec: f64) -> String {
    format!("{rate_per_sec:?}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const ONE_PER_SECOND_BURST_TWO: RateLimit = RateLimit {
        rate_per_sec: 1.0,
        burst: 2,
    };

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let limit = ONE_PER_SECOND_BURST_TWO;
        let mut bucket = Bucket::full(limit, start);
        assert!(bucket.try_take(limit, start));
        assert!(bucket.try_take(limit, start));
        assert!(!bucket.try_take(limit, start));
        assert!(!bucket.try_take(limit, start + Duration::from_millis(900)));
        assert!(bucket.try_take(limit, start + Duration::from_millis(1_000)));
        // Refill never exceeds the burst.
        let later = start + Duration::from_secs(60);
        assert!(bucket.try_take(limit, later));
        assert!(bucket.try_take(limit, later));
        assert!(!bucket.try_take(limit, later));
    }

    #[test]
    fn the_header_writes_rates_as_amazon_does() {
        assert_eq!(header_value(0.0167), "0.0167");
        assert_eq!(header_value(0.5), "0.5");
        assert_eq!(header_value(1.0), "1.0");
    }
}
