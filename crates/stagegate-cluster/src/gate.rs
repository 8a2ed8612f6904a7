//! The gate as the workflow keeps it: a product waits for one decision, and a decision arrives
//! once. The update that delivers it is the compare-and-set: a second decision, or one that
//! names a round the gate is no longer at, is answered with what the gate holds, not applied.

use serde::{Deserialize, Serialize};

/// Where a stage's workflow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GatePhase {
    /// The stage's activity has not returned yet.
    #[default]
    Running,
    /// The product is at the gate, waiting for a decision.
    Waiting,
    /// The gate was decided (or the stage ended without reaching it).
    Closed,
}

/// The verb that sends the gate to its next round instead of closing it: the product was
/// modified on the user's machine and waits again, for a decision on the new round.
pub const NEXT_ROUND: &str = "modify";

/// A decision sent to the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    /// `approve`, `reject`, … (the binary's verbs, as text: this crate interprets only
    /// [`NEXT_ROUND`]).
    pub verb: String,
    /// The round the decider saw; `None` takes whatever round the gate is at.
    pub seen_round: Option<u32>,
}

/// How the gate answered a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum DecisionReply {
    Accepted,
    /// Not applied: the gate was already decided with `decided` (or never reached, `None`).
    Refused {
        decided: Option<String>,
        reason: String,
    },
}

/// What a stage's workflow shows: its phase, its product once the stage returned, and the
/// decision once there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GateView {
    pub phase: GatePhase,
    pub round: u32,
    /// The stage's product (JSON text written by the executor).
    pub product: Option<String>,
    pub decision: Option<String>,
    /// Why the stage never produced anything (its activity failed every attempt).
    #[serde(default)]
    pub failure: Option<String>,
}

/// Applies `decision` to `view` if the gate can take it: the pure compare-and-set.
pub(crate) fn decide(view: &mut GateView, decision: GateDecision) -> DecisionReply {
    match view.phase {
        GatePhase::Running => DecisionReply::Refused {
            decided: None,
            reason: "the stage has not reached its gate yet".to_owned(),
        },
        GatePhase::Closed => DecisionReply::Refused {
            decided: view.decision.clone(),
            reason: match &view.decision {
                Some(verb) => format!("the gate was already decided ({verb})"),
                None => "the stage ended without reaching its gate".to_owned(),
            },
        },
        GatePhase::Waiting => {
            if decision.seen_round.is_some_and(|round| round != view.round) {
                return DecisionReply::Refused {
                    decided: None,
                    reason: format!(
                        "the gate is at round {}, not the round that was seen",
                        view.round
                    ),
                };
            }
            if decision.verb == NEXT_ROUND {
                view.round += 1;
            } else {
                view.decision = Some(decision.verb);
                view.phase = GatePhase::Closed;
            }
            DecisionReply::Accepted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> GateView {
        GateView {
            phase: GatePhase::Waiting,
            round: 1,
            product: Some("{}".into()),
            decision: None,
            failure: None,
        }
    }

    fn verb(verb: &str) -> GateDecision {
        GateDecision {
            verb: verb.into(),
            seen_round: Some(1),
        }
    }

    #[test]
    fn the_first_decision_wins_and_the_second_is_told_which() {
        let mut view = waiting();
        assert_eq!(decide(&mut view, verb("approve")), DecisionReply::Accepted);
        let second = decide(&mut view, verb("reject"));
        assert!(matches!(
            second,
            DecisionReply::Refused { decided: Some(ref verb), .. } if verb == "approve"
        ));
        assert_eq!(view.decision.as_deref(), Some("approve"));
    }

    #[test]
    fn a_modification_moves_the_gate_to_its_next_round_and_keeps_it_open() {
        let mut view = waiting();
        assert_eq!(decide(&mut view, verb(NEXT_ROUND)), DecisionReply::Accepted);
        assert_eq!((view.phase, view.round), (GatePhase::Waiting, 2));
        // A decider that saw round 1 is refused; one that saw round 2 closes the gate.
        assert!(matches!(
            decide(&mut view, verb("approve")),
            DecisionReply::Refused { decided: None, .. }
        ));
        let current = GateDecision {
            verb: "approve".into(),
            seen_round: Some(2),
        };
        assert_eq!(decide(&mut view, current), DecisionReply::Accepted);
        assert_eq!(view.decision.as_deref(), Some("approve"));
    }

    #[test]
    fn a_gate_not_reached_or_at_another_round_takes_nothing() {
        let mut running = GateView::default();
        assert!(matches!(
            decide(&mut running, verb("approve")),
            DecisionReply::Refused { decided: None, .. }
        ));
        let mut view = waiting();
        let stale = GateDecision {
            verb: "approve".into(),
            seen_round: Some(2),
        };
        assert!(matches!(
            decide(&mut view, stale),
            DecisionReply::Refused { .. }
        ));
        assert_eq!(view.phase, GatePhase::Waiting);
    }
}
