//! `stagegate status [RUN] [--json]`: where runs stand, failed agents with reasons, the
//! pending gate and the commands that decide it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;
use stagegate_engine::event::Event;
use stagegate_settings::Price;
use stagegate_store::{AttemptRecord, GateState, RunRecord, RunState};

use crate::error::{AppError, Exit};
use crate::output_style::{Stream, Tone, paint, state_tone};
use crate::run_view::RunView;
use crate::runner::{decide_commands, find_run};
use crate::session::Session;
use crate::terminal_text::neutralise;
use crate::text_table::TextTable;

pub async fn status(session: &Session, run_id: Option<&str>, json: bool) -> Result<Exit, AppError> {
    match run_id {
        Some(run_id) => one_run(session, run_id, json).await,
        None => all_runs(session, json).await,
    }
}

/// A run recorded as running whose process is gone was interrupted (killed, or the machine
/// stopped); the record cannot say so itself.
async fn effective_states(session: &Session, runs: &mut [RunRecord]) -> Result<(), AppError> {
    let locks = session.store.locks().await?;
    for run in runs.iter_mut().filter(|run| run.state == RunState::Running) {
        let alive = locks
            .iter()
            .any(|lock| lock.run_id == run.id && crate::run_lock::holder_is_alive(lock));
        if !alive {
            run.state = RunState::Interrupted;
        }
    }
    Ok(())
}

async fn all_runs(session: &Session, json: bool) -> Result<Exit, AppError> {
    let mut runs = session.store.runs().await?;
    effective_states(session, &mut runs).await?;
    let views = RunView::load_all(&session.store, &runs).await?;
    if json {
        let values: Vec<_> = runs
            .iter()
            .zip(&views)
            .map(|(run, view)| run_json(run, view))
            .collect();
        stdout_line!(
            "{}",
            crate::terminal_text::escape_json(
                serde_json::to_string_pretty(&json!({ "runs": values })).unwrap_or_default()
            )
        );
        return Ok(Exit::Done);
    }
    if runs.is_empty() {
        stdout_line!("no runs yet\nhint: `stagegate run plan` starts one");
        return Ok(Exit::Done);
    }
    // Failure reasons and decisions quote agents and people: shown, never acted on. The state
    // word is coloured after that, in the header line `run ID  STATE  feature …`.
    let blocks: Vec<String> = runs
        .iter()
        .zip(&views)
        .map(|(run, view)| {
            let block = neutralise(&run_block(run, view)).into_owned();
            let state = run.state.as_str();
            match state_tone(state) {
                Some(tone) => block.replacen(
                    &format!("  {state}  "),
                    &format!("  {}  ", paint(Stream::Stdout, tone, state)),
                    1,
                ),
                None => block,
            }
        })
        .collect();
    stdout_text!("{}", blocks.join("\n"));
    Ok(Exit::Done)
}

/// One run of `status --json`: the record, and where it stands by its log.
fn run_json(run: &RunRecord, view: &RunView) -> serde_json::Value {
    json!({
        "id": run.id,
        "feature_dir": run.feature_dir,
        "stages": run.stages,
        "state": run.state.as_str(),
        "current_stage": run.current_stage,
        "created_at_ms": run.created_at_ms,
        "updated_at_ms": run.updated_at_ms,
        "pending_gate": view.pending_gate.as_ref().map(|gate| json!({
            "stage": gate.stage,
            "question": gate.question,
            "artifacts": gate.artifacts,
            "commands": decide_commands(&run.id),
        })),
        "partial_failures": view.failures().iter().map(|failure| json!({
            "stage": failure.stage,
            "agent": failure.failure.agent,
            "reason": failure.failure.reason,
        })).collect::<Vec<_>>(),
        "last_decision": view.last_decision.as_ref().map(|decision| json!({
            "stage": decision.stage,
            "kind": decision.kind.as_str(),
            "by": decision.by,
            "reason": decision.reason,
            "note": decision.note,
            "at_ms": decision.at_ms,
        })),
        "stage_states": view.stages.iter().map(|stage| json!({
            "stage": stage.id,
            "state": stage.standing.as_str(),
            "cache_hits": stage.cache_hits,
        })).collect::<Vec<_>>(),
        "cache_hits": view.cache_hits(),
    })
}

/// One run of `status`: what it is, then what waits on a person, what failed and what was
/// decided last.
fn run_block(run: &RunRecord, view: &RunView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  {}  feature {}  stage {}  {}",
        run.id,
        run.state.as_str(),
        run.feature_dir,
        run.current_stage.as_deref().unwrap_or("-"),
        when(run.updated_at_ms)
    );
    if let Some(gate) = &view.pending_gate {
        let _ = writeln!(
            out,
            "  waiting: run {} at the {} gate: {}",
            run.id, gate.stage, gate.question
        );
        if !gate.artifacts.is_empty() {
            let _ = writeln!(out, "    artifacts: {}", gate.artifacts.join(", "));
        }
        let _ = writeln!(
            out,
            "    stagegate approve {id} | stagegate reject {id} --reason \"...\" | stagegate modify {id} --feedback \"...\"",
            id = run.id
        );
    }
    let failures = view.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "  partial failures:");
        for failure in &failures {
            let _ = writeln!(
                out,
                "    {} {}: {}",
                failure.stage,
                failure.failure.agent,
                one_line(&failure.failure.reason)
            );
        }
    }
    if let Some(decision) = &view.last_decision {
        let _ = writeln!(
            out,
            "  last decision: {} {}{}{}",
            decision.stage,
            decision.kind.as_str(),
            decision
                .by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default(),
            decision
                .why()
                .map(|why| format!(": {}", one_line(why)))
                .unwrap_or_default()
        );
    }
    if matches!(run.state, RunState::Interrupted | RunState::Paused) {
        let _ = writeln!(
            out,
            "  {} run {}: continue with `stagegate resume {}`",
            run.state.as_str(),
            run.id,
            run.id
        );
    }
    out
}

/// The first line of a text, cut to fit one line of a terminal.
fn one_line(text: &str) -> String {
    const WIDTH: usize = 100;
    let first = text.lines().next().unwrap_or_default().trim_end();
    let more_lines = text.trim_end().lines().nth(1).is_some();
    if first.chars().count() > WIDTH {
        let cut: String = first.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    } else if more_lines {
        format!("{first} …")
    } else {
        first.to_owned()
    }
}

async fn one_run(session: &Session, run_id: &str, json: bool) -> Result<Exit, AppError> {
    let mut run = find_run(session, run_id).await?;
    effective_states(session, std::slice::from_mut(&mut run)).await?;
    let store = &session.store;
    let attempts = store.attempts(&run.id).await?;
    let decisions = store.decisions(&run.id).await?;
    let comments = store.line_comments(&run.id).await?;
    let mut gates = Vec::new();
    for stage in &run.stages {
        if let Some(gate) = store.gate(&run.id, stage).await? {
            gates.push(gate);
        }
    }
    let agents = agent_summaries(&attempts, &session.settings.prices);
    // What shaped each stage: its input scores, the adaptive adjustments, the cut contexts and
    // answers, and the reasoning taken out of answers, from the log.
    // Read by kind: a wide stage's thousands of attempt events are neither read nor parsed.
    let mut shaping: Vec<Event> = Vec::new();
    for record in store.events_of_kinds(&run.id, SHAPING_KINDS).await? {
        let event = crate::run_log::typed(&record)?.event;
        // An event a newer stagegate wrote reads as `Event::Unknown`, and is not shown.
        if matches!(
            event,
            Event::InputsScored { .. }
                | Event::Adjusted { .. }
                | Event::ContextCut { .. }
                | Event::AnswerTruncated { .. }
                | Event::ReasoningStripped { .. }
        ) {
            shaping.push(event);
        }
    }
    if json {
        let value = json!({
            "run": run,
            "agents": agents.iter().map(|summary| json!({
                "stage": summary.stage, "phase": summary.phase, "agent": summary.agent,
                "attempts": summary.attempts, "outcome": summary.outcome, "failure_reason": summary.failure_reason,
                "duration_ms": summary.duration_ms, "confidence": summary.confidence,
                "input_tokens": summary.tokens.map(|tokens| tokens.0),
                "output_tokens": summary.tokens.map(|tokens| tokens.1),
                "cost": summary.cost,
            })).collect::<Vec<_>>(),
            "gates": gates,
            "decisions": decisions,
            "line_comments": comments,
            "scores_and_adjustments": shaping,
            "commands": pending_commands(&run, &gates),
        });
        stdout_line!(
            "{}",
            crate::terminal_text::escape_json(
                serde_json::to_string_pretty(&value).unwrap_or_default()
            )
        );
        return Ok(Exit::Done);
    }
    // `out` collects lines to neutralise; `shown` what is ready to print (tables are
    // neutralised cell by cell, then coloured).
    let mut shown = String::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  {}  feature {}",
        run.id,
        run.state.as_str(),
        run.feature_dir
    );
    let _ = writeln!(out, "stages: {}", run.stages.join(" → "));
    for stage in &run.stages {
        let gate = gates.iter().find(|gate| &gate.stage == stage);
        let _ = writeln!(
            out,
            "\n{stage}: {}",
            match gate.map(|gate| gate.state) {
                Some(GateState::Approved) => "approved",
                Some(GateState::Rejected) => "rejected",
                Some(GateState::Superseded) => "superseded by a newer run",
                Some(GateState::Pending) => "waiting at the gate",
                None if run.current_stage.as_deref() == Some(stage) => run.state.as_str(),
                None => "not started",
            }
        );
        for event in &shaping {
            if let Some(line) = shaping_line(event, stage) {
                let _ = writeln!(out, "{line}");
            }
        }
        // Agent names and failure reasons vary in length: a table keeps the columns apart.
        let mut table = TextTable::new();
        for summary in agents.iter().filter(|summary| &summary.stage == stage) {
            let outcome_tone = if summary.outcome == "ok" {
                Tone::Good
            } else {
                Tone::Bad
            };
            table.toned_row([
                (summary.phase.to_string(), None),
                (summary.agent.clone(), None),
                (summary.outcome.to_string(), Some(outcome_tone)),
                (format!("attempts {}", summary.attempts), None),
                (details(summary), None),
            ]);
        }
        shown.push_str(&neutralise(&std::mem::take(&mut out)));
        shown.push_str(&table.render("  ", Stream::Stdout));
        let failed: Vec<_> = agents
            .iter()
            .filter(|summary| {
                &summary.stage == stage && summary.phase == "agent" && summary.outcome != "ok"
            })
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "  partial failure: {} agent(s) failed", failed.len());
        }
    }
    if !decisions.is_empty() {
        let _ = writeln!(out, "\ndecisions:");
        for decision in &decisions {
            let _ = writeln!(
                out,
                "  {} {} {} by {}{}",
                when(decision.decided_at_ms),
                decision.stage,
                decision.kind.as_str(),
                decision.decided_by,
                decision
                    .reason
                    .as_deref()
                    .or(decision.note.as_deref())
                    .map(|text| format!(": {text}"))
                    .unwrap_or_default()
            );
            for comment in comments
                .iter()
                .filter(|comment| Some(comment.decision_id) == decision.id)
            {
                let _ = writeln!(
                    out,
                    "    {}: {}",
                    crate::line_comments::location(&comment.comment),
                    comment.comment.comment
                );
            }
        }
    }
    let commands = pending_commands(&run, &gates);
    if !commands.is_empty() {
        let _ = writeln!(out, "\nnext:");
        for command in commands {
            let _ = writeln!(out, "  {command}");
        }
    }
    shown.push_str(&neutralise(&out));
    stdout_text!("{shown}");
    Ok(Exit::Done)
}

/// The kinds of the events [`shaping_line`] shows.
const SHAPING_KINDS: &[&str] = &[
    "inputs_scored",
    "adjusted",
    "context_cut",
    "answer_truncated",
    "reasoning_stripped",
];

fn pending_commands(run: &RunRecord, gates: &[stagegate_store::GateRecord]) -> Vec<String> {
    if gates.iter().any(|gate| gate.state == GateState::Pending) {
        return decide_commands(&run.id);
    }
    match run.state {
        RunState::Interrupted | RunState::Paused => vec![format!("stagegate resume {}", run.id)],
        _ => Vec::new(),
    }
}

/// The last column of an agent's row: tokens, cost and why it failed, where known.
fn details(summary: &AgentSummary) -> String {
    let tokens = summary
        .tokens
        .map(|(input, output)| format!("tokens {input} in / {output} out"));
    let cost = summary.cost.map(|cost| format!("cost {cost:.4}"));
    let reason = summary
        .failure_reason
        .as_deref()
        .map(|reason| format!("({reason})"));
    [tokens, cost, reason]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("  ")
}

/// One agent's attempts in one phase of one stage, summarized.
struct AgentSummary {
    stage: String,
    phase: String,
    agent: String,
    attempts: usize,
    outcome: String,
    failure_reason: Option<String>,
    duration_ms: i64,
    confidence: Option<f64>,
    /// Tokens read and written over every attempt, when the backend reported them.
    tokens: Option<(i64, i64)>,
    /// What the attempts cost: as the agent reported it, else by `[prices.BACKEND]`; none
    /// when neither is known.
    cost: Option<f64>,
}

fn agent_summaries(
    attempts: &[AttemptRecord],
    prices: &BTreeMap<String, Price>,
) -> Vec<AgentSummary> {
    let mut grouped: BTreeMap<(usize, String, String, String), Vec<&AttemptRecord>> =
        BTreeMap::new();
    let phase_order = |phase: &str| match phase {
        "agent" => 0,
        "review" => 1,
        "synthesis" => 2,
        _ => 3,
    };
    for attempt in attempts {
        grouped
            .entry((
                phase_order(&attempt.phase),
                attempt.stage.clone(),
                attempt.phase.clone(),
                attempt.agent.clone(),
            ))
            .or_default()
            .push(attempt);
    }
    grouped
        .into_iter()
        .map(|((_, stage, phase, agent), attempts)| {
            let last = attempts
                .iter()
                .max_by_key(|attempt| attempt.attempt)
                .copied();
            AgentSummary {
                stage,
                phase,
                agent,
                attempts: attempts.len(),
                outcome: last
                    .and_then(|attempt| attempt.outcome.clone())
                    .unwrap_or_else(|| "running".to_owned()),
                failure_reason: last.and_then(|attempt| attempt.failure_reason.clone()),
                duration_ms: attempts
                    .iter()
                    .filter_map(|attempt| Some(attempt.finished_at_ms? - attempt.started_at_ms))
                    .sum(),
                confidence: last.and_then(|attempt| attempt.confidence),
                cost: attempts
                    .iter()
                    .filter_map(|attempt| super::metrics::attempt_cost(attempt, prices))
                    .reduce(|total, cost| total + cost),
                tokens: attempts
                    .iter()
                    .filter_map(|attempt| Some((attempt.input_tokens?, attempt.output_tokens?)))
                    .reduce(|(input, output), (more_in, more_out)| {
                        (input + more_in, output + more_out)
                    }),
            }
        })
        .collect()
}

fn when(at_ms: i64) -> String {
    let Ok(millis) = u64::try_from(at_ms) else {
        return "-".to_owned();
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A call as `status` names it: the agent, and the artifact of a synthesis.
fn call_name(identity: &stagegate_engine::backend::CallIdentity) -> String {
    match &identity.artifact {
        Some(artifact) => format!("{} ({artifact})", identity.agent),
        None => identity.agent.clone(),
    }
}

/// How an input score, an adaptive adjustment, a context cut, a cut answer or stripped
/// reasoning of `stage` reads in `status RUN`.
fn shaping_line(event: &Event, stage: &str) -> Option<String> {
    match event {
        Event::InputsScored {
            stage: of,
            complexity_parts,
            uncertainty_parts,
            ..
        } if of == stage => Some(format!(
            "  complexity  {complexity_parts}\n  uncertainty {uncertainty_parts}"
        )),
        Event::Adjusted {
            stage: of,
            setting,
            from,
            to,
            reason,
            ..
        } if of == stage => Some(format!("  adjusted {setting} {from} → {to}: {reason}")),
        Event::ContextCut {
            stage: of,
            agent,
            cuts,
            ..
        } if of == stage => Some(format!("  context of {agent} cut: {}", cuts.join("; "))),
        Event::AnswerTruncated {
            identity,
            cuts,
            handling,
            ..
        } if identity.stage == stage => Some(format!(
            "  answer of {} truncated at the output-token limit ({cuts}×, attempt {}): {}",
            call_name(identity),
            identity.attempt,
            handling.describe()
        )),
        Event::ReasoningStripped {
            identity,
            reasoning,
            ..
        } if identity.stage == stage => Some(format!(
            "  reasoning of {} left out of its answer: {}{} characters",
            call_name(identity),
            reasoning
                .tokens
                .map(|tokens| format!("{tokens} tokens, "))
                .unwrap_or_default(),
            reasoning.chars
        )),
        _ => None,
    }
}
