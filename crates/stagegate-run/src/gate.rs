//! A stage's gate: pending until a person decides, then approved or rejected for good.
//!
//! A pending gate has a *round*: 1 for the artifacts the stage first staged, one more for each
//! modification (an edit in `$EDITOR` or a rework with feedback). A decider says which round it
//! saw; a decision on a round that was modified meanwhile is refused, so that nobody approves
//! artifacts they have not seen.
//!
//! ```text
//!            modify (round + 1)
//!              ┌────┐
//!              ▼    │
//!  open ──▶ Pending ─┴─ approve ──▶ Approved  (effect: publish the staged artifacts)
//!              │
//!              ├────── reject ───▶ Rejected  (nothing is published)
//!              │
//!              └── supersede ───▶ Superseded (a newer run of the same stage reached its gate;
//!                                             nothing is published)
//! ```

use std::fmt;

/// Where a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateStatus {
    Pending,
    Approved,
    Rejected,
    /// A newer run of the same feature and stage reached its gate: one pending gate per feature
    /// and stage, the newest.
    Superseded,
}

impl GateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pending => "pending",
            GateStatus::Approved => "approved",
            GateStatus::Rejected => "rejected",
            GateStatus::Superseded => "superseded",
        }
    }

    pub fn is_decided(self) -> bool {
        self != GateStatus::Pending
    }
}

impl fmt::Display for GateStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A gate's state: its status and the round of staged artifacts it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub status: GateStatus,
    pub round: u32,
}

impl Gate {
    /// A gate as a stage opens it: pending, its first round.
    pub fn opened() -> Gate {
        Gate {
            status: GateStatus::Pending,
            round: 1,
        }
    }
}

/// What a person asks of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Approve,
    Reject,
    /// Replace the staged artifacts with a new round (edited, or reworked by the synthesizer);
    /// the gate stays pending and asks again.
    Modify,
    /// Close the gate because a newer run of the same stage reached its own (stagegate asks
    /// this, not a person).
    Supersede,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Approve => "approve",
            Verb::Reject => "reject",
            Verb::Modify => "modify",
            Verb::Supersede => "supersede",
        }
    }
}

/// A decision request: the verb and the round the decider was shown (`None`: whatever is
/// staged now, as `stagegate approve RUN` means it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub verb: Verb,
    pub seen_round: Option<u32>,
}

/// Why a request changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The gate was decided before this request (by another process, person or page).
    AlreadyDecided { status: GateStatus },
    /// The staged artifacts were modified after the decider saw them.
    Superseded { seen: u32, current: u32 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::AlreadyDecided { status } => write!(formatter, "the gate is already {status}"),
            Refusal::Superseded { seen, current } => write!(
                formatter,
                "the staged artifacts were modified since they were shown (round {seen}, now round {current})"
            ),
        }
    }
}

/// What the run does once the gate's decision is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAfter {
    /// The last stage was approved: the run is complete.
    Completed,
    /// An earlier stage was approved: the run goes on (in this process, or with `resume`).
    Continues,
    /// Rejected: the run ends here.
    Rejected,
    /// Modified: the gate waits for a decision on the new round.
    AwaitsDecision,
    /// Superseded by a newer run: this run ends here.
    Superseded,
}

/// The result of an accepted request: the gate's new state, the run's next step, and whether
/// the staged artifacts are to be published (the effect of an approval, carried out after the
/// decision is committed, idempotently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub gate: Gate,
    pub run: RunAfter,
    pub publish: bool,
}

/// The one transition function of a gate. `stage_is_last` says whether the gate is the run's
/// last stage.
pub fn decide(gate: Gate, request: Request, stage_is_last: bool) -> Result<Transition, Refusal> {
    if gate.status.is_decided() {
        return Err(Refusal::AlreadyDecided {
            status: gate.status,
        });
    }
    if let Some(seen) = request.seen_round
        && seen != gate.round
    {
        return Err(Refusal::Superseded {
            seen,
            current: gate.round,
        });
    }
    Ok(match request.verb {
        Verb::Approve => Transition {
            gate: Gate {
                status: GateStatus::Approved,
                ..gate
            },
            run: if stage_is_last {
                RunAfter::Completed
            } else {
                RunAfter::Continues
            },
            publish: true,
        },
        Verb::Reject => Transition {
            gate: Gate {
                status: GateStatus::Rejected,
                ..gate
            },
            run: RunAfter::Rejected,
            publish: false,
        },
        Verb::Supersede => Transition {
            gate: Gate {
                status: GateStatus::Superseded,
                ..gate
            },
            run: RunAfter::Superseded,
            publish: false,
        },
        Verb::Modify => Transition {
            gate: Gate {
                status: GateStatus::Pending,
                round: gate.round.saturating_add(1),
            },
            run: RunAfter::AwaitsDecision,
            publish: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERBS: [Verb; 4] = [Verb::Approve, Verb::Reject, Verb::Modify, Verb::Supersede];

    fn request(verb: Verb) -> Request {
        Request {
            verb,
            seen_round: None,
        }
    }

    #[test]
    fn approving_publishes_and_completes_or_continues_the_run() {
        let last = decide(Gate::opened(), request(Verb::Approve), true);
        assert_eq!(
            last,
            Ok(Transition {
                gate: Gate {
                    status: GateStatus::Approved,
                    round: 1
                },
                run: RunAfter::Completed,
                publish: true,
            })
        );
        let earlier = decide(Gate::opened(), request(Verb::Approve), false);
        assert_eq!(
            earlier.map(|transition| transition.run),
            Ok(RunAfter::Continues)
        );
    }

    #[test]
    fn rejecting_never_publishes() {
        for last in [false, true] {
            let transition = decide(Gate::opened(), request(Verb::Reject), last);
            assert_eq!(
                transition,
                Ok(Transition {
                    gate: Gate {
                        status: GateStatus::Rejected,
                        round: 1
                    },
                    run: RunAfter::Rejected,
                    publish: false,
                })
            );
        }
    }

    #[test]
    fn superseding_closes_the_gate_without_publishing() {
        let transition = decide(Gate::opened(), request(Verb::Supersede), true);
        assert_eq!(
            transition,
            Ok(Transition {
                gate: Gate {
                    status: GateStatus::Superseded,
                    round: 1
                },
                run: RunAfter::Superseded,
                publish: false,
            })
        );
    }

    #[test]
    fn modifying_opens_the_next_round_of_the_same_pending_gate() {
        let transition = decide(Gate::opened(), request(Verb::Modify), false);
        assert_eq!(
            transition,
            Ok(Transition {
                gate: Gate {
                    status: GateStatus::Pending,
                    round: 2
                },
                run: RunAfter::AwaitsDecision,
                publish: false,
            })
        );
    }

    #[test]
    fn a_decided_gate_refuses_every_request_and_says_how_it_was_decided() {
        for status in [
            GateStatus::Approved,
            GateStatus::Rejected,
            GateStatus::Superseded,
        ] {
            for verb in VERBS {
                let gate = Gate { status, round: 3 };
                assert_eq!(
                    decide(gate, request(verb), false),
                    Err(Refusal::AlreadyDecided { status })
                );
            }
        }
    }

    #[test]
    fn a_request_on_a_round_that_was_modified_since_is_refused() {
        let gate = Gate {
            status: GateStatus::Pending,
            round: 2,
        };
        for verb in VERBS {
            let stale = Request {
                verb,
                seen_round: Some(1),
            };
            assert_eq!(
                decide(gate, stale, false),
                Err(Refusal::Superseded {
                    seen: 1,
                    current: 2
                })
            );
            let current = Request {
                verb,
                seen_round: Some(2),
            };
            assert!(decide(gate, current, false).is_ok());
        }
    }

    /// Any sequence of requests on one gate: at most one approve or reject is ever accepted,
    /// and after it nothing is.
    #[test]
    fn at_most_one_final_decision_in_any_sequence() {
        // Every sequence of up to 5 requests over the three verbs.
        for length in 1..=5u32 {
            for code in 0..4u32.pow(length) {
                let mut gate = Gate::opened();
                let mut finals = 0;
                let mut code = code;
                for _ in 0..length {
                    let verb = VERBS[(code % 4) as usize];
                    code /= 4;
                    if let Ok(transition) = decide(gate, request(verb), false) {
                        if transition.gate.status.is_decided() {
                            finals += 1;
                        }
                        gate = transition.gate;
                    }
                }
                assert!(finals <= 1);
            }
        }
    }
}
