//! The `builtin` backend: answers every call with the analyst for its role, computed from the
//! call's structured materials. The analysis is CPU work (milliseconds for a usual spec, seconds
//! for a megabyte one), so it runs on tokio's blocking pool: several analysts use several cores,
//! and the stage's dispatcher, which drives the calls, is never blocked by one. It honours the
//! deadline and a cancellation (the analysis itself runs to its end in the background).

use stagegate_engine::backend::{AgentOutcome, AgentRequest, Backend, BoxFuture, Failure};

use crate::analysts;

/// The built-in offline analysts as a [`Backend`] of kind `builtin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinAgent;

impl BuiltinAgent {
    pub fn new() -> Self {
        BuiltinAgent
    }

    /// The answer for a request, synchronously: the same text [`Backend::run`] returns.
    pub fn answer(&self, request: &AgentRequest) -> String {
        analysts::answer(request)
    }
}

impl Backend for BuiltinAgent {
    fn kind(&self) -> &'static str {
        "builtin"
    }

    /// The analysts' version: a newer stagegate answers differently, so it never reuses the
    /// cached answers of an older one.
    fn fingerprint(&self) -> String {
        concat!("builtin ", env!("CARGO_PKG_VERSION")).to_owned()
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        Box::pin(async move {
            if request.cancel.is_cancelled() {
                return AgentOutcome::failure(Failure::Cancelled);
            }
            let cancel = request.cancel.clone();
            let deadline = request.deadline;
            let started = tokio::time::Instant::now();
            let analysis = tokio::task::spawn_blocking(move || analysts::answer(&request));
            tokio::select! {
                answered = analysis => match answered {
                    Ok(text) => AgentOutcome::success(text),
                    Err(error) => AgentOutcome::failure(Failure::permanent(format!(
                        "the built-in analyst failed: {error}"
                    ))),
                },
                () = cancel.cancelled() => AgentOutcome::failure(Failure::Cancelled),
                () = tokio::time::sleep_until(deadline) => AgentOutcome::failure(Failure::TimedOut {
                    after_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests;
