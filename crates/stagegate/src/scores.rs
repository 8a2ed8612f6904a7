//! The complexity and uncertainty scores of a stage's inputs, for the adaptive rules: computed
//! by the built-in analysts from spec.md, plan.md, tasks.md and the rest.

use stagegate_analysts::scores::{Scores, explain, scores};
use stagegate_engine::adaptive::InputScores;
use stagegate_engine::event::{Event, now_ms};
use stagegate_engine::prompt::NamedText;

/// The scores of `inputs`, with their parts.
pub fn score_inputs(inputs: &[NamedText]) -> Scores {
    scores(inputs)
}

/// The two numbers the adaptive rules look at.
pub fn input_scores(scores: &Scores) -> InputScores {
    InputScores {
        complexity: u32::from(scores.complexity.value),
        uncertainty: u32::from(scores.uncertainty.value),
    }
}

/// The event that records them, so that `status` can show them with their parts.
pub fn scored_event(run_id: &str, stage: &str, scores: &Scores) -> Event {
    Event::InputsScored {
        run_id: run_id.to_owned(),
        stage: stage.to_owned(),
        complexity: u32::from(scores.complexity.value),
        uncertainty: u32::from(scores.uncertainty.value),
        complexity_parts: explain(&scores.complexity),
        uncertainty_parts: explain(&scores.uncertainty),
        at_ms: now_ms(),
    }
}
