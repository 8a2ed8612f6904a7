//! The answer being assembled from a stream (or read from one JSON body), in any wire format.

use stagegate_engine::backend::Failure;

use crate::reasoning::strip_think_blocks;

/// Why the model stopped, as far as the format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It finished its answer (`stop`, `end_turn`, `completed`, or any reason but the limit).
    Ended,
    /// It reached its output-token limit (`length`, `max_tokens`, `max_output_tokens`): the text
    /// is cut off.
    TokenLimit,
}

/// Text and usage so far, and how far the server got.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    /// Reasoning tokens, when the server reports them (they are part of `output_tokens`).
    pub(crate) reasoning_tokens: Option<u64>,
    /// Characters of reasoning the server sent apart from the text (`reasoning_content`,
    /// thinking blocks) or inside it (`<think>` blocks), none of which is kept.
    pub(crate) reasoning_chars: u64,
    /// The model said why it stopped (`finish_reason`, `stop_reason`): the text is whole or
    /// cut, even if the stream's end marker never comes.
    pub(crate) stop: Option<Stop>,
    /// The stream's end marker (`[DONE]`, `message_stop`): nothing more will come.
    pub(crate) complete: bool,
}

impl Answer {
    /// Notes reasoning text that arrived apart from the answer.
    pub(crate) fn add_reasoning(&mut self, reasoning: &str) {
        self.reasoning_chars += reasoning.chars().count() as u64;
    }

    /// The answer as read: `<think>` blocks taken out of the text, or why there is no usable
    /// answer. A cut answer (`Stop::TokenLimit`) is usable: the caller decides what to do; so is
    /// an empty one that `continues` an earlier cut (the model had nothing left to say).
    pub(crate) fn finish(mut self, continues: bool) -> Result<Answer, Failure> {
        if self.stop.is_none() && !self.complete {
            return Err(Failure::retryable(
                "the stream ended before the answer was complete",
            ));
        }
        let (text, think_chars) = strip_think_blocks(&self.text);
        self.text = text;
        self.reasoning_chars += think_chars;
        if self.text.trim().is_empty() && self.stop != Some(Stop::TokenLimit) && !continues {
            let detail = if self.reasoning_chars > 0 {
                " (only reasoning)"
            } else {
                ""
            };
            return Err(Failure::retryable(format!(
                "the model returned no text{detail}"
            )));
        }
        Ok(self)
    }

    /// Whether the model stopped at its token limit.
    pub(crate) fn is_cut(&self) -> bool {
        self.stop == Some(Stop::TokenLimit)
    }
}

/// A body or event that is not what the format promises: worth another try, since a proxy or
/// an overloaded server can garble one answer and not the next.
pub(crate) fn unreadable(detail: impl std::fmt::Display) -> Failure {
    Failure::retryable(format!("the server's answer could not be read: {detail}"))
}
