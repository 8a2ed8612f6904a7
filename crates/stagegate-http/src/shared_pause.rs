//! A pause shared by every attempt on one backend after the server said "too many requests".
//!
//! Without it, each of a stage's parallel agents would find out about the rate limit on its own
//! and retry on its own schedule, hammering a server that asked for quiet. With it, the first 429
//! (or 529) sets `paused_until` from the `Retry-After` header and every later attempt on the same
//! backend, already queued or newly started, waits until then before it sends anything. The wait
//! itself is bounded by each attempt's cancellation, which the caller races it with; an attempt
//! whose deadline falls inside the pause does not wait at all but fails at once as rate limited
//! with the rest of the pause as its `retry_after_ms` (see `client`), so that the engine's retry
//! policy or the fallback backend can act without sitting out a doomed attempt. Without a
//! `Retry-After` header there is no pause: the engine's own backoff spaces the retries.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// When new requests on this backend may be sent again. Cloning shares the pause.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedPause {
    paused_until: Arc<Mutex<Option<Instant>>>,
}

impl SharedPause {
    /// Holds new requests back for `duration` from now, unless a longer pause already runs.
    pub(crate) fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut paused_until = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused_until.is_none_or(|current| current < until) {
            *paused_until = Some(until);
        }
    }

    /// The end of the pause, if one is running now.
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        let paused_until = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        paused_until.filter(|until| *until > Instant::now())
    }

    /// Returns once no pause runs; a pause extended meanwhile is waited out too.
    pub(crate) async fn wait(&self) {
        while let Some(until) = self.paused_until() {
            sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiting_lasts_until_the_longest_pause() {
        let pause = SharedPause::default();
        let started = Instant::now();
        pause.wait().await;
        assert_eq!(started.elapsed(), Duration::ZERO);

        pause.pause_for(Duration::from_secs(3));
        pause.pause_for(Duration::from_secs(1)); // shorter: does not cut the pause
        let other = pause.clone();
        let waiter = tokio::spawn(async move { other.wait().await });
        tokio::time::sleep(Duration::from_secs(2)).await;
        pause.pause_for(Duration::from_secs(2)); // extended while someone waits
        waiter.await.expect("waiter");
        assert_eq!(started.elapsed(), Duration::from_secs(4));
        assert_eq!(pause.paused_until(), None);
    }
}
