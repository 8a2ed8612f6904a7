//! How the workflows run their activities: within a limit, heartbeating, and run again by the
//! cluster only a bounded number of times (each lost worker costs one run).

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::ActivityOptions;

/// A worker that stops heartbeating for this long is taken for dead and its activity handed to
/// another.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// An activity that may run `limit_ms` and at most `runs` times.
pub(crate) fn heartbeating(limit_ms: u64, runs: u32) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_millis(limit_ms))
        .heartbeat_timeout(HEARTBEAT_TIMEOUT)
        .retry_policy(RetryPolicy::builder().maximum_attempts(runs).build())
        .build()
}
