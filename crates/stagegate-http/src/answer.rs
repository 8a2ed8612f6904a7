//! The answer being assembled from a stream (or read from one JSON body), in either wire format.

use stagegate_engine::backend::{AgentOutcome, Failure, Usage};

/// Text and usage so far, and how far the server got.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    /// The model said why it stopped (`finish_reason`, `stop_reason`): the text is whole even if
    /// the stream's end marker never comes.
    pub(crate) finished: bool,
    /// The stream's end marker (`[DONE]`, `message_stop`): nothing more will come.
    pub(crate) complete: bool,
}

impl Answer {
    /// The attempt's outcome: the text and usage, or why there is no usable text.
    pub(crate) fn into_outcome(self) -> AgentOutcome {
        if !(self.finished || self.complete) {
            return AgentOutcome::failure(Failure::retryable(
                "the stream ended before the answer was complete",
            ));
        }
        if self.text.trim().is_empty() {
            return AgentOutcome::failure(Failure::retryable("the model returned no text"));
        }
        let usage = (self.input_tokens.is_some() || self.output_tokens.is_some()).then(|| Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
        });
        let mut outcome = AgentOutcome::success(self.text);
        outcome.usage = usage;
        outcome
    }
}

/// A body or event that is not what the format promises: worth another try, since a proxy or
/// an overloaded server can garble one answer and not the next.
pub(crate) fn unreadable(detail: impl std::fmt::Display) -> Failure {
    Failure::retryable(format!("the server's answer could not be read: {detail}"))
}
