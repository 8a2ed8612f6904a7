//! The `CONFIDENCE:` line every analyst ends with, computed rather than asserted.
//!
//! Formula: start at 0.90; subtract 0.05 per open `[NEEDS CLARIFICATION]` (at most 0.30),
//! 0.02 per reading note on the inputs (at most 0.20), 0.15 when the spec has no functional
//! requirements, plus what the analyst itself adds (untraced requirements, failed agents …);
//! the result is clamped to 0.10–0.95. The basis is written above the line so a person can see
//! why an analysis is unsure.

use crate::speckit::Feature;
use crate::text;

/// A confidence under construction.
pub(crate) struct Confidence {
    value: f64,
    reasons: Vec<String>,
}

impl Confidence {
    /// The common part of the formula for a feature.
    pub(crate) fn for_feature(feature: &Feature) -> Confidence {
        let mut confidence = Confidence {
            value: 0.90,
            reasons: Vec::new(),
        };
        let open = feature.spec.open_questions.len();
        confidence.subtract(
            (0.05 * open as f64).min(0.30),
            format!("{open} open [NEEDS CLARIFICATION] marker(s)"),
        );
        let notes = feature.notes().len();
        confidence.subtract(
            (0.02 * notes as f64).min(0.20),
            format!("{notes} reading note(s) on the inputs"),
        );
        if feature.spec.requirements.is_empty() {
            confidence.subtract(0.15, "no functional requirements to work from".to_owned());
        }
        confidence
    }

    /// Lowers the confidence by `amount` (nothing when `amount` is zero).
    pub(crate) fn subtract(&mut self, amount: f64, reason: String) {
        if amount > 0.0 {
            self.value -= amount;
            self.reasons.push(format!("−{:.2} for {reason}", amount));
        }
    }

    pub(crate) fn value(&self) -> f64 {
        self.value.clamp(0.10, 0.95)
    }

    /// The basis line and the `CONFIDENCE:` line, each ending with a newline.
    pub(crate) fn render(&self) -> String {
        let basis = if self.reasons.is_empty() {
            "0.90 base, nothing lowered it".to_owned()
        } else {
            format!("0.90 base, {}", self.reasons.join(", "))
        };
        format!(
            "_Confidence basis: {basis}._\n\nCONFIDENCE: {}\n",
            text::two_decimals(self.value())
        )
    }
}
