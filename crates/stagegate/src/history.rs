//! A stage's product rebuilt from what the run recorded: the successful agents' outputs, the
//! review, the staged artifacts and the last QA verdict. Used when a gate is decided or
//! reworked by a later process than the one that ran the stage.

use std::collections::BTreeMap;

use stagegate_engine::backend::Phase;
use stagegate_engine::event::{AgentFailure, Verdict};
use stagegate_engine::prompt::{AgentOutputView, NamedText};
use stagegate_engine::stage::StageProduct;
use stagegate_engine::stage_plan::StagePlan;
use stagegate_store::{AttemptRecord, Store};

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
    let read_output = |attempt: &AttemptRecord| -> Result<String, AppError> {
        let path = run_dir
            .attempt_dir(
                &attempt.stage,
                &attempt.phase,
                &attempt.agent,
                attempt.attempt,
            )
            .join("output.md");
        std::fs::read_to_string(&path).map_err(|error| {
            AppError::internal(format!(
                "cannot read {}: {error}\nhint: the run directory may have been changed by hand; run the stage again",
                path.display()
            ))
        })
    };
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
                output: read_output(attempt)?,
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
        Some(attempt) => read_output(attempt)?,
        None => String::new(),
    };
    let mut artifacts = Vec::new();
    for (name, path) in run_dir.staged_artifacts(&plan.id)? {
        let content = std::fs::read_to_string(&path)?;
        artifacts.push(NamedText { name, content });
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
    let events = store.events(run_id).await?;
    let last = events.iter().rev().find(|event| {
        event.kind == "qa_verdict"
            && event.payload.get("stage").and_then(|v| v.as_str()) == Some(stage)
    });
    let Some(event) = last else {
        return Ok((Verdict::Rework, String::new(), 1));
    };
    let verdict = match event.payload.get("verdict").and_then(|v| v.as_str()) {
        Some("pass") => Verdict::Pass,
        _ => Verdict::Rework,
    };
    let feedback = event
        .payload
        .get("feedback")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let iteration = event
        .payload
        .get("iteration")
        .and_then(serde_json::Value::as_u64)
        .and_then(|value| u32::try_from(value).ok())
        .unwrap_or(1);
    Ok((verdict, feedback, iteration))
}
