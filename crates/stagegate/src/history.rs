//! A stage's product rebuilt from what the run recorded: the successful agents' outputs, the
//! review, the staged artifacts and the last QA verdict. Used when a gate is decided or
//! reworked by a later process than the one that ran the stage.

use std::collections::BTreeMap;

use stagegate_engine::backend::Phase;
use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::{AgentFailure, Event, Verdict};
use stagegate_engine::prompt::{AgentOutputView, NamedText};
use stagegate_engine::stage::StageProduct;
use stagegate_engine::stage_plan::StagePlan;
use stagegate_store::{AttemptKey, AttemptRecord, Store, TextKind};

use crate::error::AppError;

pub async fn load_product(
    store: &Store,
    run_id: &str,
    plan: &StagePlan,
) -> Result<StageProduct, AppError> {
    let attempts = store.attempts(run_id).await?;
    let run_dir = store.run_dir(run_id);
    let of_stage: Vec<&AttemptRecord> = attempts
        .iter()
        .filter(|attempt| attempt.stage == plan.id)
        .collect();
    let last_ok = |phase: &str, agent: &str| {
        of_stage
            .iter()
            .rev()
            .find(|attempt| {
                attempt.phase == phase
                    && attempt.agent == agent
                    && matches!(attempt.outcome.as_deref(), Some("ok" | "cached"))
            })
            .copied()
    };

    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for agent in &plan.agents {
        match last_ok("agent", &agent.id) {
            Some(attempt) => outputs.push(AgentOutputView {
                agent: agent.id.clone(),
                role: agent.role.clone(),
                output: read_output(store, attempt).await?,
            }),
            None => {
                let reason = of_stage
                    .iter()
                    .rev()
                    .find(|attempt| attempt.phase == "agent" && attempt.agent == agent.id)
                    .and_then(|attempt| attempt.failure_reason.clone())
                    .unwrap_or_else(|| "did not run".to_owned());
                failures.push(AgentFailure {
                    agent: agent.id.clone(),
                    reason,
                });
            }
        }
    }
    let review = match last_ok("review", &plan.reviewer.id) {
        Some(attempt) => read_output(store, attempt).await?,
        None => String::new(),
    };
    let mut artifacts = Vec::new();
    for (name, path) in run_dir.staged_artifacts(&plan.id)? {
        let content = std::fs::read_to_string(&path)?;
        artifacts.push(NamedText { name, content });
    }
    // The gate opened only once every required artifact was staged.
    if let Some(missing) = plan
        .required
        .iter()
        .find(|name| !artifacts.iter().any(|artifact| &artifact.name == *name))
    {
        return Err(AppError::internal(format!(
            "the staged {missing} of stage {} is missing from {}\nhint: the run directory may have been changed by hand; run the stage again",
            plan.id,
            run_dir.staged_dir(&plan.id).display()
        )));
    }
    let (verdict, qa_feedback, iterations) = last_verdict(store, run_id, &plan.id).await?;
    let next_attempts = next_attempts(&of_stage, plan);
    Ok(StageProduct {
        next_attempts,
        outputs,
        failures,
        review,
        artifacts,
        verdict,
        qa_feedback,
        iterations,
    })
}

/// The output a successful attempt recorded.
async fn read_output(store: &Store, attempt: &AttemptRecord) -> Result<String, AppError> {
    let missing = || {
        AppError::internal(format!(
            "the database holds no output of {}'s attempt {} in stage {}, although it succeeded\nhint: run the stage again",
            attempt.agent, attempt.attempt, attempt.stage
        ))
    };
    let bytes = store
        .attempt_text(&attempt_key(attempt), TextKind::Output)
        .await?
        .ok_or_else(missing)?;
    // Outputs are recorded from text, so they are UTF-8 unless the database was changed.
    String::from_utf8(bytes).map_err(|_| missing())
}

/// The key of a recorded attempt's texts.
pub fn attempt_key(attempt: &AttemptRecord) -> AttemptKey {
    AttemptKey {
        run_id: attempt.run_id.clone(),
        stage: attempt.stage.clone(),
        phase: attempt.phase.clone(),
        agent: attempt.agent.clone(),
        attempt: attempt.attempt,
    }
}

/// The next attempt number of every call the stage made, so that a rework numbers its calls
/// after them (their files and records are never overwritten).
fn next_attempts(
    attempts: &[&AttemptRecord],
    plan: &StagePlan,
) -> BTreeMap<(Phase, String, Option<String>), u32> {
    let mut next = BTreeMap::new();
    for attempt in attempts {
        let phase = match attempt.phase.as_str() {
            "agent" => Phase::Agent,
            "review" => Phase::Review,
            "synthesis" => Phase::Synthesis,
            _ => Phase::Qa,
        };
        // Syntheses are filed as `<synthesizer>.<artifact>` (see the recorder).
        let (agent, artifact) = match attempt
            .agent
            .strip_prefix(&format!("{}.", plan.synthesizer.id))
        {
            Some(artifact) if phase == Phase::Synthesis => {
                (plan.synthesizer.id.clone(), Some(artifact.to_owned()))
            }
            _ => (attempt.agent.clone(), None),
        };
        let entry = next.entry((phase, agent, artifact)).or_insert(1);
        *entry = (*entry).max(attempt.attempt + 1);
    }
    next
}

/// The stage's last QA verdict from the event log.
async fn last_verdict(
    store: &Store,
    run_id: &str,
    stage: &str,
) -> Result<(Verdict, String, u32), AppError> {
    let envelopes = crate::run_log::read(store, run_id).await?;
    Ok(last_verdict_in(&envelopes, stage))
}

/// The last QA verdict on `stage` in a log: a rework at iteration 1 when QA never ran.
fn last_verdict_in(envelopes: &[Envelope], stage: &str) -> (Verdict, String, u32) {
    envelopes
        .iter()
        .rev()
        .find_map(|envelope| match &envelope.event {
            Event::QaVerdict {
                stage: of,
                iteration,
                verdict,
                feedback,
                ..
            } if of == stage => Some((*verdict, feedback.clone(), *iteration)),
            _ => None,
        })
        .unwrap_or((Verdict::Rework, String::new(), 1))
}

#[cfg(test)]
mod tests {
    use stagegate_engine::event::StageEnd;

    use super::*;

    fn envelope(seq: i64, event: Event) -> Envelope {
        Envelope {
            version: 1,
            run_id: "r1".into(),
            seq,
            at_ms: seq,
            event,
        }
    }

    fn verdict(seq: i64, stage: &str, iteration: u32, verdict: Verdict) -> Envelope {
        envelope(
            seq,
            Event::QaVerdict {
                run_id: "r1".into(),
                stage: stage.into(),
                iteration,
                verdict,
                feedback: format!("feedback {seq}"),
                at_ms: seq,
            },
        )
    }

    #[test]
    fn the_last_verdict_of_the_stage_counts() {
        let log = [
            verdict(1, "plan", 1, Verdict::Rework),
            verdict(2, "plan", 2, Verdict::Pass),
            verdict(3, "prep", 1, Verdict::Rework),
            envelope(4, Event::Unknown),
            envelope(
                5,
                Event::RunFinished {
                    run_id: "r1".into(),
                    end: StageEnd::AwaitingDecision,
                    at_ms: 5,
                },
            ),
        ];
        assert_eq!(
            last_verdict_in(&log, "plan"),
            (Verdict::Pass, "feedback 2".to_owned(), 2)
        );
    }

    #[test]
    fn a_stage_without_qa_is_a_rework_at_iteration_1() {
        let log = [verdict(1, "prep", 3, Verdict::Pass)];
        assert_eq!(
            last_verdict_in(&log, "plan"),
            (Verdict::Rework, String::new(), 1)
        );
    }
}
