//! The `builtin` backend: answers every call with the analyst for its role, computed from the
//! call's structured materials. It does no I/O and no waiting, so it answers at once, well
//! within any deadline; it still honours a cancellation that fired before it was asked.

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

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        // The analysis is CPU work measured in milliseconds; doing it here rather than in the
        // future keeps the future trivially `Send` and the result independent of scheduling.
        let outcome = if request.cancel.is_cancelled() {
            AgentOutcome::failure(Failure::Cancelled)
        } else {
            AgentOutcome::success(analysts::answer(&request))
        };
        Box::pin(async move { outcome })
    }
}

#[cfg(test)]
mod tests;
