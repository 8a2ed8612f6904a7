//! The complexity and uncertainty scores of a stage's inputs, for the adaptive rules.

use stagegate_engine::adaptive::InputScores;
use stagegate_engine::prompt::NamedText;

/// The scores of `inputs`; `None` until the built-in analysts compute them.
pub fn input_scores(_inputs: &[NamedText]) -> Option<InputScores> {
    None
}
