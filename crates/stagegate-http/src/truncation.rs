//! An answer cut at the model's output-token limit, handled as `on_truncation` says: asked to
//! go on (`continue`, at most [`MAX_CONTINUATIONS`] times), failed (`fail`), or kept (`accept`).
//!
//! A cut answer used to count as a plain success and was synthesised as if it were whole.
//! Whatever the setting, the cut is reported (the engine's `answer_truncated` event), so that
//! `status`, the summary artifact and the later phases can say the answer is incomplete.
//!
//! A continuation is the same conversation with the answer so far as the assistant's turn and
//! a user turn asking to go on exactly where it stopped: both APIs accept that shape, and unlike
//! Anthropic's prefill it also works for reasoning models and OpenAI-compatible servers.

use serde_json::{Value, json};
use stagegate_engine::backend::{
    AgentOutcome, AnswerNotes, Failure, NotedOutcome, Reasoning, Truncation, TruncationHandling,
    Usage,
};
use stagegate_settings::OnTruncation;

use crate::answer::Answer;

/// Continuation requests after the first cut; one more cut after them fails the attempt.
pub(crate) const MAX_CONTINUATIONS: u32 = 3;

/// What the user turn of a continuation asks.
const CONTINUE_PROMPT: &str = "Your answer was cut off by the output limit. Continue exactly where it stopped, without repeating anything and without any preamble.";

/// The answer over one request and its continuations.
#[derive(Debug, Default)]
pub(crate) struct Assembled {
    pub(crate) text: String,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    reasoning_chars: u64,
    /// How many answers were cut at the token limit.
    cuts: u32,
    /// The last request failed.
    pub(crate) failure: Option<Failure>,
}

impl Assembled {
    /// Adds one request's answer; whether another request should continue it.
    pub(crate) fn add(&mut self, answer: Answer, on_truncation: OnTruncation) -> bool {
        self.text.push_str(&answer.text);
        add_tokens(&mut self.input_tokens, answer.input_tokens);
        add_tokens(&mut self.output_tokens, answer.output_tokens);
        add_tokens(&mut self.reasoning_tokens, answer.reasoning_tokens);
        self.reasoning_chars += answer.reasoning_chars;
        if !answer.is_cut() {
            return false;
        }
        self.cuts += 1;
        on_truncation == OnTruncation::Continue && self.cuts <= MAX_CONTINUATIONS
    }

    /// The attempt's outcome and notes; `advice` says what to change about cut answers.
    pub(crate) fn into_outcome(self, on_truncation: OnTruncation, advice: &str) -> NotedOutcome {
        let handling = match (self.cuts, on_truncation, &self.failure) {
            (0, _, _) => None,
            (_, OnTruncation::Accept, None) => Some(TruncationHandling::Accepted),
            (cuts, OnTruncation::Continue, None) if cuts <= MAX_CONTINUATIONS => {
                Some(TruncationHandling::Continued)
            }
            _ => Some(TruncationHandling::Failed),
        };
        let notes = AnswerNotes {
            truncation: handling.map(|handling| Truncation {
                cuts: self.cuts,
                handling,
            }),
            reasoning: (self.reasoning_chars > 0 || self.reasoning_tokens.is_some_and(|n| n > 0))
                .then_some(Reasoning {
                    tokens: self.reasoning_tokens,
                    chars: self.reasoning_chars,
                }),
        };
        // The APIs report tokens, not what they cost: `[prices]` estimates that.
        let usage = (self.input_tokens.is_some() || self.output_tokens.is_some()).then(|| Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cost_usd: None,
        });
        let result = match self.failure {
            Some(failure) => Err(failure),
            None if handling == Some(TruncationHandling::Failed) => {
                Err(Failure::permanent(cut_message(self.cuts, advice)))
            }
            None if self.text.trim().is_empty() => Err(Failure::retryable(
                "the model returned no text before its output-token limit",
            )),
            None => Ok(self.text),
        };
        let mut outcome = match result {
            Ok(text) => AgentOutcome::success(text),
            Err(failure) => AgentOutcome::failure(failure),
        };
        outcome.usage = usage;
        NotedOutcome { outcome, notes }
    }
}

fn cut_message(cuts: u32, advice: &str) -> String {
    let continued = match cuts {
        1 => String::new(),
        cuts => format!(" (and again after {} continuations)", cuts - 1),
    };
    format!(
        "the model stopped at its output-token limit{continued}, so the answer is incomplete; {advice}"
    )
}

fn add_tokens(total: &mut Option<u64>, more: Option<u64>) {
    if let Some(more) = more {
        *total = Some(total.unwrap_or(0) + more);
    }
}

/// `messages` followed by the answer so far and the request to continue it.
pub(crate) fn continuation_messages(messages: &Value, partial: &str) -> Value {
    let mut messages = messages.as_array().cloned().unwrap_or_default();
    messages.push(json!({"role": "assistant", "content": partial}));
    messages.push(json!({"role": "user", "content": CONTINUE_PROMPT}));
    Value::Array(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Stop;

    fn answer(text: &str, stop: Stop) -> Answer {
        Answer {
            text: text.to_owned(),
            output_tokens: Some(10),
            stop: Some(stop),
            ..Answer::default()
        }
    }

    #[test]
    fn continued_answers_are_joined_and_their_usage_summed() {
        let mut assembled = Assembled::default();
        assert!(assembled.add(answer("Hel", Stop::TokenLimit), OnTruncation::Continue));
        assert!(!assembled.add(answer("lo", Stop::Ended), OnTruncation::Continue));
        let noted = assembled.into_outcome(OnTruncation::Continue, "advice");
        assert_eq!(noted.outcome.result, Ok("Hello".to_owned()));
        assert_eq!(
            noted.outcome.usage.map(|usage| usage.output_tokens),
            Some(20)
        );
        assert_eq!(
            noted.notes.truncation,
            Some(Truncation {
                cuts: 1,
                handling: TruncationHandling::Continued
            })
        );
    }

    #[test]
    fn an_answer_still_cut_after_the_continuations_fails_permanently() {
        let mut assembled = Assembled::default();
        let mut more = true;
        while more {
            more = assembled.add(answer("x", Stop::TokenLimit), OnTruncation::Continue);
        }
        let noted = assembled.into_outcome(OnTruncation::Continue, "raise max_tokens");
        let Err(Failure::Permanent { message }) = noted.outcome.result else {
            panic!("a permanent failure: {:?}", noted.outcome.result);
        };
        assert!(message.contains("again after 3 continuations"), "{message}");
        assert!(message.ends_with("raise max_tokens"), "{message}");
        assert_eq!(
            noted.notes.truncation.map(|truncation| truncation.handling),
            Some(TruncationHandling::Failed)
        );
    }

    #[test]
    fn fail_and_accept_stop_at_the_first_cut() {
        let mut failing = Assembled::default();
        assert!(!failing.add(answer("cut", Stop::TokenLimit), OnTruncation::Fail));
        assert!(
            failing
                .into_outcome(OnTruncation::Fail, "")
                .outcome
                .result
                .is_err()
        );
        let mut accepting = Assembled::default();
        assert!(!accepting.add(answer("cut", Stop::TokenLimit), OnTruncation::Accept));
        let noted = accepting.into_outcome(OnTruncation::Accept, "");
        assert_eq!(noted.outcome.result, Ok("cut".to_owned()));
        assert_eq!(
            noted.notes.truncation.map(|truncation| truncation.handling),
            Some(TruncationHandling::Accepted)
        );
    }

    #[test]
    fn a_whole_answer_has_no_truncation_note() {
        let mut assembled = Assembled::default();
        assert!(!assembled.add(answer("whole", Stop::Ended), OnTruncation::Continue));
        let noted = assembled.into_outcome(OnTruncation::Continue, "");
        assert_eq!(noted.notes, AnswerNotes::default());
    }

    #[test]
    fn a_continuation_repeats_the_conversation_with_the_partial_answer() {
        let messages = json!([{"role": "user", "content": "write"}]);
        let continued = continuation_messages(&messages, "so far");
        assert_eq!(continued[0]["content"], "write");
        assert_eq!(
            continued[1],
            json!({"role": "assistant", "content": "so far"})
        );
        assert_eq!(continued[2]["role"], "user");
    }
}
