//! When to try an agent again, and how long to wait first.
//!
//! Retry k (1-based) waits `backoff × 2^(k−1)`, plus up to 10 % jitter so that agents failing
//! together do not come back together. The jitter only ever lengthens the wait: a user who
//! configured `backoff = "1s"` can count on at least one second. A rate limit's `Retry-After`
//! lengthens it further.

use std::time::Duration;

use crate::backend::Failure;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Further attempts after the first.
    pub retries: u32,
    pub backoff: Duration,
    /// Largest extra share added as jitter (0.1 = up to 10 %).
    pub jitter: f64,
}

impl RetryPolicy {
    pub fn new(retries: u32, backoff: Duration) -> Self {
        RetryPolicy {
            retries,
            backoff,
            jitter: 0.1,
        }
    }

    /// Total attempts on the primary backend.
    pub fn max_attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The wait before retry `k` (1-based), without jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        self.backoff.saturating_mul(1u32 << exponent)
    }

    /// The wait before retry `k` after `failure`, with jitter drawn from `unit` (in `0.0..1.0`).
    pub fn delay(&self, retry: u32, failure: &Failure, unit: f64) -> Duration {
        let base = self.base_delay(retry);
        let jittered = base.mul_f64(1.0 + self.jitter * unit.clamp(0.0, 1.0));
        match failure {
            Failure::RateLimited {
                retry_after_ms: Some(after),
                ..
            } => jittered.max(Duration::from_millis(*after)),
            _ => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_backoff_is_one_then_two_seconds() {
        let policy = RetryPolicy::new(2, Duration::from_secs(1));
        assert_eq!(policy.base_delay(1), Duration::from_secs(1));
        assert_eq!(policy.base_delay(2), Duration::from_secs(2));
        assert_eq!(policy.base_delay(3), Duration::from_secs(4));
        assert_eq!(policy.max_attempts(), 3);
    }

    #[test]
    fn jitter_only_lengthens_and_stays_within_ten_percent() {
        let policy = RetryPolicy::new(2, Duration::from_secs(1));
        let failure = Failure::retryable("x");
        assert_eq!(policy.delay(1, &failure, 0.0), Duration::from_secs(1));
        let most = policy.delay(2, &failure, 1.0);
        assert_eq!(most, Duration::from_millis(2200));
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let policy = RetryPolicy::new(2, Duration::from_secs(1));
        let limited = Failure::RateLimited {
            message: "slow down".into(),
            retry_after_ms: Some(7000),
        };
        assert_eq!(policy.delay(1, &limited, 0.0), Duration::from_secs(7));
    }
}
