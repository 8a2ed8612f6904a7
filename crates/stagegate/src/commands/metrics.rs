//! `stagegate metrics [--format prometheus|json]`: PRODUCT.md §7's fifteen metrics, computed from
//! the store over every recorded run.
//!
//! Nothing is kept beside the runs' records: every value is recomputed from the event log, the
//! attempts index and the decisions each time, so a metric whose definition changes applies to
//! old runs too. The computation ([`compute`]) takes plain records and touches no database.
//!
//! # Definitions
//!
//! A *stage run* is one stage of one run (`run_id`, `stage`). Rates whose denominator is zero are
//! left out (Prometheus) or `null` (JSON) rather than reported as 0.
//!
//! Stage (label `stage`):
//! - `stage_duration_ms`: per stage run, from `stage_started` to the next `gate_requested` (or to
//!   `stage_finished` when the stage reached no gate); a person's wait at the gate and any
//!   rework after it are excluded. A start that was never closed (a crash) counts nothing; when a
//!   stage run started more than once (resumed), its closed spans are added. Count, sum, average
//!   and maximum over the stage runs.
//! - `agent_success_rate`: agents in `agents_finished.succeeded` / all agents of that event
//!   (succeeded + failed), summed over stage runs (the last `agents_finished` of a stage run).
//! - `retry_count`: parallel-agent (`phase = agent`) attempts numbered above 1.
//! - `partial_failure_rate`: stage runs whose `agents_finished` lists at least one failed agent and
//!   that still reached a gate / stage runs with an `agents_finished`.
//! - `approval_rate`: approve decisions / (approve + reject decisions).
//! - `user_modification_rate`: decided gates (an approve or a reject) with at least one modify
//!   decision / decided gates.
//!
//! Agent (labels `stage`, `agent`, `backend`; `agent` is `<synthesizer>.<artifact>` for a
//! synthesis; every phase is included, and the JSON says which):
//! - `execution_time_ms`: finished attempts' `finished_at_ms - started_at_ms`; cache hits did not
//!   execute and are left out. Count, sum and average.
//! - `output_size_bytes`: average `output_bytes` of finished attempts.
//! - `confidence_score`: average of the confidences present.
//! - `retry_attempts`: attempts numbered above 1. Attempt numbers run on across a fallback, so
//!   summed over backends this is "attempts − 1" per call.
//! - `failure_reason`: failed `attempt_finished` events per reason code, the `kind` of their
//!   `failure` (`timed_out`, `cancelled`, `retryable`, `rate_limited`, `permanent`); a failed
//!   attempt without one counts under its status.
//!
//! Quality (label `stage`):
//! - `synthesis_coherence_score`: first-iteration QA verdicts that passed / first-iteration QA
//!   verdicts (0..1). Iteration 1 is a stage's first synthesis, and the first synthesis after a
//!   person's rework feedback; a pass there means the synthesizer reconciled the agents' outputs
//!   into artifacts QA found consistent and complete without being sent back. It is the one
//!   quality signal the engine can observe without judging the text itself.
//! - `review_coverage_percent`: of the stage runs that reached their review, the succeeded
//!   agents the review saw / all the stage's agents, × 100.
//! - `qa_modifications_count`: `rework` QA verdicts.
//! - `approval_first_attempt_rate`: approved gates whose first approve came with no modify
//!   decision before it / approved gates.

use stagegate_settings::Price;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{Map, Value, json};
use stagegate_engine::backend::Phase;
use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::{AttemptStatus, Event, Verdict};
use stagegate_store::{
    AttemptRecord, DecisionKind, DecisionRecord, EventRecord, RunRecord, Store, StoreError,
};

use crate::cli::MetricsFormat;
use crate::error::{AppError, Exit};
use crate::metric_names::{
    AGENT_SUCCESS_RATE, APPROVAL_FIRST_ATTEMPT_RATE, APPROVAL_RATE, CACHE_HITS, CONFIDENCE_SCORE,
    COST, EXECUTION_TIME_MS, FAILURE_REASON, INPUT_TOKENS, METRICS, MetricName, OUTPUT_SIZE_BYTES,
    OUTPUT_TOKENS, PARTIAL_FAILURE_RATE, PREFIX, QA_MODIFICATIONS_COUNT, RETRY_ATTEMPTS,
    RETRY_COUNT, REVIEW_COVERAGE_PERCENT, RUNS, STAGE_DURATION_MS, STAGE_DURATION_MS_MAX,
    SYNTHESIS_COHERENCE_SCORE, USER_MODIFICATION_RATE,
};
use crate::session::Session;

/// Prints the metrics of every run in the store.
pub async fn metrics(session: &Session, format: MetricsFormat) -> Result<Exit, AppError> {
    let metrics = gather(&session.store, &session.settings.prices).await?;
    let text = match format {
        MetricsFormat::Prometheus => render_prometheus(&metrics),
        MetricsFormat::Json => {
            let mut text = serde_json::to_string_pretty(&render_json(&metrics))
                .map_err(|error| AppError::internal(format!("cannot print metrics: {error}")))?;
            text.push('\n');
            text
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(Exit::Done),
        // `stagegate metrics | head` is not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Done),
        Err(error) => Err(error.into()),
    }
}

// ----- the computed values ----------------------------------------------------------------

/// Every metric, aggregated over the runs given to [`compute`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Metrics {
    pub(crate) runs: usize,
    pub(crate) stages: BTreeMap<String, StageMetrics>,
    /// By `(stage, agent, backend)`.
    pub(crate) agents: BTreeMap<AgentKey, AgentMetrics>,
    pub(crate) quality: BTreeMap<String, QualityMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StageMetrics {
    pub(crate) stage_duration_ms: DurationSummary,
    pub(crate) agent_success_rate: Ratio,
    pub(crate) retry_count: u64,
    pub(crate) partial_failure_rate: Ratio,
    pub(crate) approval_rate: Ratio,
    pub(crate) user_modification_rate: Ratio,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AgentKey {
    pub(crate) stage: String,
    pub(crate) agent: String,
    pub(crate) backend: String,
}

impl AgentKey {
    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("stage", self.stage.as_str()),
            ("agent", self.agent.as_str()),
            ("backend", self.backend.as_str()),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AgentMetrics {
    /// `agent`, `review`, `synthesis` or `qa` (the first seen, should an id serve in two).
    pub(crate) phase: String,
    pub(crate) execution_time_ms: DurationSummary,
    pub(crate) output_size_bytes: Average,
    pub(crate) confidence_score: Average,
    pub(crate) retry_attempts: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    /// By `[prices.BACKEND]`; see [`add_costs`].
    pub(crate) cost: f64,
    pub(crate) cache_hits: u64,
    pub(crate) failure_reason: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct QualityMetrics {
    pub(crate) synthesis_coherence_score: Ratio,
    /// Succeeded agents the review saw / all agents; reported × 100.
    pub(crate) review_coverage: Ratio,
    pub(crate) qa_modifications_count: u64,
    pub(crate) approval_first_attempt_rate: Ratio,
}

/// A share, kept as its two counts so that stages and runs add up exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ratio {
    pub(crate) part: u64,
    pub(crate) whole: u64,
}

impl Ratio {
    fn add(&mut self, part: u64, whole: u64) {
        self.part += part;
        self.whole += whole;
    }

    fn count(&mut self, counted: bool) {
        self.add(u64::from(counted), 1);
    }

    /// `None` when there was nothing to count.
    pub(crate) fn value(self) -> Option<f64> {
        (self.whole > 0).then(|| self.part as f64 / self.whole as f64)
    }
}

/// Count, sum and maximum of durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DurationSummary {
    pub(crate) count: u64,
    pub(crate) sum: u64,
    pub(crate) max: Option<u64>,
}

impl DurationSummary {
    fn observe(&mut self, milliseconds: u64) {
        self.count += 1;
        self.sum = self.sum.saturating_add(milliseconds);
        self.max = Some(self.max.map_or(milliseconds, |max| max.max(milliseconds)));
    }

    pub(crate) fn average(self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Average {
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Average {
    fn observe(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
    }

    pub(crate) fn value(self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

// ----- computation --------------------------------------------------------------------------

/// Computes every metric from the records of `runs` (the attempts, events and decisions of all
/// of them, in any run order; each run's events in sequence order, its decisions in the order
/// recorded, as the store returns them).
/// The metrics over every run in the store, with costs by `prices`.
pub(crate) async fn gather(
    store: &Store,
    prices: &BTreeMap<String, Price>,
) -> Result<Metrics, StoreError> {
    let runs = store.runs().await?;
    let mut attempts = Vec::new();
    let mut events = Vec::new();
    let mut decisions = Vec::new();
    for run in &runs {
        attempts.extend(store.attempts(&run.id).await?);
        events.extend(readable(&store.events(&run.id).await?));
        decisions.extend(store.decisions(&run.id).await?);
    }
    let mut metrics = compute(&runs, &attempts, &events, &decisions);
    add_costs(&mut metrics, &attempts, prices);
    Ok(metrics)
}

/// What one attempt cost: what the agent reported, else its tokens at the backend's price;
/// `None` when neither is known.
pub(crate) fn attempt_cost(
    attempt: &AttemptRecord,
    prices: &BTreeMap<String, Price>,
) -> Option<f64> {
    if let Some(reported) = attempt.cost_usd {
        return Some(reported);
    }
    let price = prices.get(&attempt.backend)?;
    Some(price.cost(attempt.input_tokens?, attempt.output_tokens?))
}

/// Adds what each agent's attempts cost ([`attempt_cost`]). Kept apart from [`compute`]
/// because prices are configuration, not part of the record.
pub(crate) fn add_costs(
    metrics: &mut Metrics,
    attempts: &[AttemptRecord],
    prices: &BTreeMap<String, Price>,
) {
    for attempt in attempts {
        let Some(cost) = attempt_cost(attempt, prices) else {
            continue;
        };
        let key = AgentKey {
            stage: attempt.stage.clone(),
            agent: attempt.agent.clone(),
            backend: attempt.backend.clone(),
        };
        if let Some(entry) = metrics.agents.get_mut(&key) {
            entry.cost += cost;
        }
    }
}

/// Computes every metric from the records of `runs` (the attempts, events and decisions of all
/// of them, in any run order; each run's events in sequence order, its decisions in the order
/// recorded, as the store returns them).
pub(crate) fn compute(
    runs: &[RunRecord],
    attempts: &[AttemptRecord],
    envelopes: &[Envelope],
    decisions: &[DecisionRecord],
) -> Metrics {
    let mut metrics = Metrics {
        runs: runs.len(),
        ..Metrics::default()
    };
    add_stage_runs(&mut metrics, envelopes);
    add_retry_counts(&mut metrics, attempts);
    add_decisions(&mut metrics, decisions);
    add_attempts(&mut metrics, attempts);
    add_failure_reasons(&mut metrics, envelopes);
    add_qa_verdicts(&mut metrics, envelopes);
    // Every stage that appears anywhere has both entries, so the two maps list the same stages.
    let stages: BTreeSet<String> = metrics
        .stages
        .keys()
        .chain(metrics.quality.keys())
        .chain(metrics.agents.keys().map(|key| &key.stage))
        .cloned()
        .collect();
    for stage in stages {
        metrics.stages.entry(stage.clone()).or_default();
        metrics.quality.entry(stage).or_default();
    }
    metrics
}

/// The events a metrics report reads: an event this version cannot read is left out of the
/// metrics rather than failing the whole report.
pub(crate) fn readable(records: &[EventRecord]) -> impl Iterator<Item = Envelope> + '_ {
    records
        .iter()
        .filter_map(|record| crate::run_log::envelope(record).ok())
}

/// What one stage run contributed, read from its events.
#[derive(Default)]
struct StageRun {
    /// The `at_ms` of a `stage_started` not yet followed by a gate request or the stage's end.
    open_since: Option<i64>,
    duration_ms: Option<u64>,
    /// `(succeeded, failed)` of the last `agents_finished`.
    agents: Option<(u64, u64)>,
    /// `agents` when the review started.
    agents_at_review: Option<(u64, u64)>,
    reached_gate: bool,
}

impl StageRun {
    fn close(&mut self, at_ms: i64) {
        if let Some(start) = self.open_since.take() {
            let span = u64::try_from(at_ms.saturating_sub(start)).unwrap_or(0);
            self.duration_ms = Some(self.duration_ms.unwrap_or(0).saturating_add(span));
        }
    }

    /// Takes one event of the stage run into account; `at_ms` is the envelope's time.
    fn apply(&mut self, event: &Event, at_ms: i64) {
        match event {
            // A start left open means the earlier try never got anywhere.
            Event::StageStarted { .. } => self.open_since = Some(at_ms),
            Event::GateRequested { .. } => {
                self.close(at_ms);
                self.reached_gate = true;
            }
            Event::StageFinished { .. } => self.close(at_ms),
            Event::AgentsFinished {
                succeeded, failed, ..
            } => self.agents = Some((succeeded.len() as u64, failed.len() as u64)),
            Event::AttemptStarted { identity, .. } if identity.phase == Phase::Review => {
                self.agents_at_review = self.agents;
            }
            _ => {}
        }
    }

    fn add_to(&self, metrics: &mut Metrics, stage: &str) {
        let quality = metrics.quality.entry(stage.to_owned()).or_default();
        if let Some((succeeded, failed)) = self.agents_at_review {
            quality.review_coverage.add(succeeded, succeeded + failed);
        }
        let stage_metrics = metrics.stages.entry(stage.to_owned()).or_default();
        if let Some(duration) = self.duration_ms {
            stage_metrics.stage_duration_ms.observe(duration);
        }
        if let Some((succeeded, failed)) = self.agents {
            stage_metrics
                .agent_success_rate
                .add(succeeded, succeeded + failed);
            stage_metrics
                .partial_failure_rate
                .count(failed > 0 && self.reached_gate);
        }
    }
}

/// The stage an event counts for in a stage run, when it counts for one.
fn stage_run_stage(event: &Event) -> Option<&str> {
    match event {
        Event::StageStarted { stage, .. }
        | Event::GateRequested { stage, .. }
        | Event::StageFinished { stage, .. }
        | Event::AgentsFinished { stage, .. } => Some(stage),
        Event::AttemptStarted { identity, .. } if identity.phase == Phase::Review => {
            Some(&identity.stage)
        }
        _ => None,
    }
}

fn add_stage_runs(metrics: &mut Metrics, envelopes: &[Envelope]) {
    let mut by_run: BTreeMap<&str, Vec<&Envelope>> = BTreeMap::new();
    for envelope in envelopes {
        by_run.entry(&envelope.run_id).or_default().push(envelope);
    }
    let mut stage_runs: BTreeMap<(&str, &str), StageRun> = BTreeMap::new();
    for (run_id, mut run_envelopes) in by_run {
        run_envelopes.sort_by_key(|envelope| envelope.seq);
        for envelope in run_envelopes {
            if let Some(stage) = stage_run_stage(&envelope.event) {
                stage_runs
                    .entry((run_id, stage))
                    .or_default()
                    .apply(&envelope.event, envelope.at_ms);
            }
        }
    }
    for ((_, stage), stage_run) in stage_runs {
        stage_run.add_to(metrics, stage);
    }
}

fn add_retry_counts(metrics: &mut Metrics, attempts: &[AttemptRecord]) {
    for attempt in attempts {
        if attempt.phase == "agent" {
            let stage = metrics.stages.entry(attempt.stage.clone()).or_default();
            stage.retry_count += u64::from(attempt.attempt > 1);
        }
    }
}

/// What the decisions at one gate (one stage run) add up to.
#[derive(Default)]
struct GateDecisions {
    approved: bool,
    rejected: bool,
    modified: bool,
    modified_before_approval: bool,
}

fn add_decisions(metrics: &mut Metrics, decisions: &[DecisionRecord]) {
    let mut gates: BTreeMap<(&str, &str), GateDecisions> = BTreeMap::new();
    for decision in decisions {
        let stage = metrics.stages.entry(decision.stage.clone()).or_default();
        let gate = gates
            .entry((&decision.run_id, &decision.stage))
            .or_default();
        match decision.kind {
            DecisionKind::Approve => {
                stage.approval_rate.count(true);
                if !gate.approved {
                    gate.approved = true;
                    gate.modified_before_approval = gate.modified;
                }
            }
            DecisionKind::Reject => {
                stage.approval_rate.count(false);
                gate.rejected = true;
            }
            DecisionKind::Modify => gate.modified = true,
            // No person decided: it counts neither way.
            DecisionKind::Supersede => {}
        }
    }
    for ((_, stage), gate) in gates {
        if gate.approved || gate.rejected {
            let stage_metrics = metrics.stages.entry(stage.to_owned()).or_default();
            stage_metrics.user_modification_rate.count(gate.modified);
        }
        if gate.approved {
            let quality = metrics.quality.entry(stage.to_owned()).or_default();
            quality
                .approval_first_attempt_rate
                .count(!gate.modified_before_approval);
        }
    }
}

fn agent_entry<'m>(
    metrics: &'m mut Metrics,
    stage: &str,
    agent: &str,
    backend: &str,
    phase: &str,
) -> &'m mut AgentMetrics {
    let key = AgentKey {
        stage: stage.to_owned(),
        agent: agent.to_owned(),
        backend: backend.to_owned(),
    };
    metrics.agents.entry(key).or_insert_with(|| AgentMetrics {
        phase: phase.to_owned(),
        ..AgentMetrics::default()
    })
}

/// Time, size, confidence, retries, tokens and cache hits, from the attempts index.
fn add_attempts(metrics: &mut Metrics, attempts: &[AttemptRecord]) {
    for attempt in attempts {
        let entry = agent_entry(
            metrics,
            &attempt.stage,
            &attempt.agent,
            &attempt.backend,
            &attempt.phase,
        );
        entry.retry_attempts += u64::from(attempt.attempt > 1);
        entry.cache_hits += u64::from(attempt.outcome.as_deref() == Some("cached"));
        let tokens = |value: Option<i64>| value.and_then(|value| u64::try_from(value).ok());
        entry.input_tokens += tokens(attempt.input_tokens).unwrap_or(0);
        entry.output_tokens += tokens(attempt.output_tokens).unwrap_or(0);
        let Some(finished_at_ms) = attempt.finished_at_ms else {
            continue;
        };
        if attempt.outcome.as_deref() != Some("cached") {
            let span = finished_at_ms.saturating_sub(attempt.started_at_ms);
            entry
                .execution_time_ms
                .observe(u64::try_from(span).unwrap_or(0));
        }
        if let Some(bytes) = attempt.output_bytes {
            entry.output_size_bytes.observe(bytes as f64);
        }
        if let Some(confidence) = attempt.confidence {
            entry.confidence_score.observe(confidence);
        }
    }
}

/// Failed attempts by reason code: the attempts index keeps a failure's message, the event its
/// kind. A failed attempt without a failure (an older event) counts under its status.
fn add_failure_reasons(metrics: &mut Metrics, envelopes: &[Envelope]) {
    for envelope in envelopes {
        let Event::AttemptFinished {
            identity,
            backend,
            status,
            failure,
            ..
        } = &envelope.event
        else {
            continue;
        };
        let reason = match (failure, status) {
            (Some(failure), _) => failure.reason_code(),
            (None, AttemptStatus::Ok) => continue,
            (None, status) => status.as_str(),
        };
        // Filed as the recorder files the attempt, so both land in one entry.
        let agent = match &identity.artifact {
            Some(artifact) => format!("{}.{artifact}", identity.agent),
            None => identity.agent.clone(),
        };
        let phase = identity.phase.as_str();
        let entry = agent_entry(metrics, &identity.stage, &agent, backend, phase);
        *entry.failure_reason.entry(reason.to_owned()).or_default() += 1;
    }
}

fn add_qa_verdicts(metrics: &mut Metrics, envelopes: &[Envelope]) {
    for envelope in envelopes {
        let Event::QaVerdict {
            stage,
            iteration,
            verdict,
            ..
        } = &envelope.event
        else {
            continue;
        };
        let quality = metrics.quality.entry(stage.clone()).or_default();
        if *iteration <= 1 {
            quality
                .synthesis_coherence_score
                .count(*verdict == Verdict::Pass);
        }
        if *verdict == Verdict::Rework {
            quality.qa_modifications_count += 1;
        }
    }
}

// ----- JSON ------------------------------------------------------------------------------

/// `{"runs": N, "stages": {...}, "agents": [...], "quality": {...}}`, keyed by the table's names.
pub(crate) fn render_json(metrics: &Metrics) -> Value {
    let stages: Map<String, Value> = metrics
        .stages
        .iter()
        .map(|(stage, values)| {
            let mut object = Map::new();
            let duration = values.stage_duration_ms;
            object.insert(
                STAGE_DURATION_MS.name.to_owned(),
                json!({
                    "count": duration.count,
                    "sum": duration.sum,
                    "avg": duration.average(),
                    "max": duration.max,
                }),
            );
            object.insert(
                AGENT_SUCCESS_RATE.name.to_owned(),
                json!(values.agent_success_rate.value()),
            );
            object.insert(RETRY_COUNT.name.to_owned(), json!(values.retry_count));
            object.insert(
                PARTIAL_FAILURE_RATE.name.to_owned(),
                json!(values.partial_failure_rate.value()),
            );
            object.insert(
                APPROVAL_RATE.name.to_owned(),
                json!(values.approval_rate.value()),
            );
            object.insert(
                USER_MODIFICATION_RATE.name.to_owned(),
                json!(values.user_modification_rate.value()),
            );
            (stage.clone(), Value::Object(object))
        })
        .collect();
    let agents: Vec<Value> = metrics
        .agents
        .iter()
        .map(|(key, values)| {
            let mut object = Map::new();
            object.insert("stage".to_owned(), json!(key.stage));
            object.insert("agent".to_owned(), json!(key.agent));
            object.insert("backend".to_owned(), json!(key.backend));
            object.insert("phase".to_owned(), json!(values.phase));
            let time = values.execution_time_ms;
            object.insert(
                EXECUTION_TIME_MS.name.to_owned(),
                json!({"count": time.count, "sum": time.sum, "avg": time.average()}),
            );
            object.insert(
                OUTPUT_SIZE_BYTES.name.to_owned(),
                json!(values.output_size_bytes.value()),
            );
            object.insert(
                CONFIDENCE_SCORE.name.to_owned(),
                json!(values.confidence_score.value()),
            );
            object.insert(RETRY_ATTEMPTS.name.to_owned(), json!(values.retry_attempts));
            object.insert(INPUT_TOKENS.name.to_owned(), json!(values.input_tokens));
            object.insert(OUTPUT_TOKENS.name.to_owned(), json!(values.output_tokens));
            object.insert(COST.name.to_owned(), json!(values.cost));
            object.insert(CACHE_HITS.name.to_owned(), json!(values.cache_hits));
            object.insert(FAILURE_REASON.name.to_owned(), json!(values.failure_reason));
            Value::Object(object)
        })
        .collect();
    let quality: Map<String, Value> = metrics
        .quality
        .iter()
        .map(|(stage, values)| {
            let mut object = Map::new();
            object.insert(
                SYNTHESIS_COHERENCE_SCORE.name.to_owned(),
                json!(values.synthesis_coherence_score.value()),
            );
            object.insert(
                REVIEW_COVERAGE_PERCENT.name.to_owned(),
                json!(values.review_coverage.value().map(|share| share * 100.0)),
            );
            object.insert(
                QA_MODIFICATIONS_COUNT.name.to_owned(),
                json!(values.qa_modifications_count),
            );
            object.insert(
                APPROVAL_FIRST_ATTEMPT_RATE.name.to_owned(),
                json!(values.approval_first_attempt_rate.value()),
            );
            (stage.clone(), Value::Object(object))
        })
        .collect();
    json!({
        RUNS.name: metrics.runs,
        "stages": stages,
        "agents": agents,
        "quality": quality,
    })
}

// ----- Prometheus text format ------------------------------------------------------------

/// A sample's value: counts print as integers, the rest as Prometheus floats.
#[derive(Debug, Clone, Copy)]
enum SampleValue {
    Integer(u64),
    Float(f64),
}

/// The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` for every
/// metric of the table, then its samples. A family with nothing to report keeps its header.
pub(crate) fn render_prometheus(metrics: &Metrics) -> String {
    let mut writer = PrometheusWriter::default();
    for metric in METRICS {
        writer.header(metric);
        write_samples(&mut writer, metrics, metric);
    }
    writer.text
}

fn write_samples(writer: &mut PrometheusWriter, metrics: &Metrics, metric: &MetricName) {
    use SampleValue::{Float, Integer};
    let rate = |ratio: Ratio| ratio.value().map(Float);
    match *metric {
        RUNS => writer.sample(metric, "", &[], Integer(metrics.runs as u64)),
        STAGE_DURATION_MS => {
            for (stage, values) in &metrics.stages {
                let labels = [("stage", stage.as_str())];
                let duration = values.stage_duration_ms;
                writer.sample(metric, "_sum", &labels, Integer(duration.sum));
                writer.sample(metric, "_count", &labels, Integer(duration.count));
            }
        }
        STAGE_DURATION_MS_MAX => writer.per_stage(metric, &metrics.stages, |values| {
            values.stage_duration_ms.max.map(Integer)
        }),
        AGENT_SUCCESS_RATE => writer.per_stage(metric, &metrics.stages, |values| {
            rate(values.agent_success_rate)
        }),
        RETRY_COUNT => writer.per_stage(metric, &metrics.stages, |values| {
            Some(Integer(values.retry_count))
        }),
        PARTIAL_FAILURE_RATE => writer.per_stage(metric, &metrics.stages, |values| {
            rate(values.partial_failure_rate)
        }),
        APPROVAL_RATE => {
            writer.per_stage(metric, &metrics.stages, |values| rate(values.approval_rate))
        }
        USER_MODIFICATION_RATE => writer.per_stage(metric, &metrics.stages, |values| {
            rate(values.user_modification_rate)
        }),
        EXECUTION_TIME_MS => {
            for (key, values) in &metrics.agents {
                let time = values.execution_time_ms;
                writer.sample(metric, "_sum", &key.labels(), Integer(time.sum));
                writer.sample(metric, "_count", &key.labels(), Integer(time.count));
            }
        }
        OUTPUT_SIZE_BYTES => writer.per_agent(metric, &metrics.agents, |values| {
            values.output_size_bytes.value().map(Float)
        }),
        CONFIDENCE_SCORE => writer.per_agent(metric, &metrics.agents, |values| {
            values.confidence_score.value().map(Float)
        }),
        RETRY_ATTEMPTS => writer.per_agent(metric, &metrics.agents, |values| {
            Some(Integer(values.retry_attempts))
        }),
        INPUT_TOKENS => writer.per_agent(metric, &metrics.agents, |values| {
            Some(Integer(values.input_tokens))
        }),
        OUTPUT_TOKENS => writer.per_agent(metric, &metrics.agents, |values| {
            Some(Integer(values.output_tokens))
        }),
        COST => writer.per_agent(metric, &metrics.agents, |values| Some(Float(values.cost))),
        CACHE_HITS => writer.per_agent(metric, &metrics.agents, |values| {
            Some(Integer(values.cache_hits))
        }),
        FAILURE_REASON => {
            for (key, values) in &metrics.agents {
                for (reason, count) in &values.failure_reason {
                    let [stage, agent, backend] = key.labels();
                    let labels = [stage, agent, backend, ("reason", reason.as_str())];
                    writer.sample(metric, "", &labels, Integer(*count));
                }
            }
        }
        SYNTHESIS_COHERENCE_SCORE => writer.per_stage(metric, &metrics.quality, |values| {
            rate(values.synthesis_coherence_score)
        }),
        REVIEW_COVERAGE_PERCENT => writer.per_stage(metric, &metrics.quality, |values| {
            values
                .review_coverage
                .value()
                .map(|share| Float(share * 100.0))
        }),
        QA_MODIFICATIONS_COUNT => writer.per_stage(metric, &metrics.quality, |values| {
            Some(Integer(values.qa_modifications_count))
        }),
        APPROVAL_FIRST_ATTEMPT_RATE => writer.per_stage(metric, &metrics.quality, |values| {
            rate(values.approval_first_attempt_rate)
        }),
        // A metric added to the table but not here still gets its header; the test that
        // every metric has a sample catches it.
        _ => {}
    }
}

#[derive(Default)]
struct PrometheusWriter {
    text: String,
}

impl PrometheusWriter {
    fn header(&mut self, metric: &MetricName) {
        let _ = writeln!(
            self.text,
            "# HELP {PREFIX}{} {}",
            metric.name,
            escape_help(metric.help)
        );
        let _ = writeln!(
            self.text,
            "# TYPE {PREFIX}{} {}",
            metric.name,
            metric.kind.as_str()
        );
    }

    /// One sample per stage that has a value (`None`: nothing to report, e.g. a rate of 0/0).
    fn per_stage<T>(
        &mut self,
        metric: &MetricName,
        stages: &BTreeMap<String, T>,
        value: impl Fn(&T) -> Option<SampleValue>,
    ) {
        for (stage, values) in stages {
            if let Some(value) = value(values) {
                self.sample(metric, "", &[("stage", stage.as_str())], value);
            }
        }
    }

    /// One sample per `(stage, agent, backend)` that has a value.
    fn per_agent(
        &mut self,
        metric: &MetricName,
        agents: &BTreeMap<AgentKey, AgentMetrics>,
        value: impl Fn(&AgentMetrics) -> Option<SampleValue>,
    ) {
        for (key, values) in agents {
            if let Some(value) = value(values) {
                self.sample(metric, "", &key.labels(), value);
            }
        }
    }

    fn sample(
        &mut self,
        metric: &MetricName,
        suffix: &str,
        labels: &[(&str, &str)],
        value: SampleValue,
    ) {
        let _ = write!(self.text, "{PREFIX}{}{suffix}", metric.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, label_value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label_value(label_value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
    }
}

/// A label value in the text format: backslash, double quote and line feed escaped.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A `# HELP` text: backslash and line feed escaped (quotes stay as they are).
pub(crate) fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(value: SampleValue) -> String {
    match value {
        SampleValue::Integer(integer) => integer.to_string(),
        SampleValue::Float(float) if float.is_nan() => "NaN".to_owned(),
        SampleValue::Float(float) if float.is_infinite() => {
            if float > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
        }
        SampleValue::Float(float) => float.to_string(),
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use std::sync::Arc;

    use stagegate_engine::backend::{CallIdentity, Failure};
    use stagegate_engine::event::{AgentFailure, StageEnd};
    use stagegate_store::RunState;

    use super::*;

    fn run(id: &str) -> RunRecord {
        RunRecord {
            id: id.to_owned(),
            feature_dir: "specs/001-demo".to_owned(),
            stages: vec!["plan".to_owned()],
            state: RunState::Completed,
            current_stage: None,
            settings_json: json!({}),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    /// Events of one run, numbered in the order given.
    fn events(run_id: &str, list: &[Event]) -> Vec<Envelope> {
        list.iter()
            .enumerate()
            .map(|(index, event)| Envelope {
                version: 1,
                run_id: run_id.to_owned(),
                seq: index as i64 + 1,
                at_ms: event.at_ms().unwrap_or(0),
                event: event.clone(),
            })
            .collect()
    }

    fn stage_started(stage: &str, at_ms: i64) -> Event {
        Event::StageStarted {
            run_id: "r1".into(),
            stage: stage.into(),
            name: format!("Stage {stage}"),
            agents: vec!["a".into()],
            concurrency: 1,
            quorum_needed: 1,
            at_ms,
        }
    }

    fn gate_requested(stage: &str, at_ms: i64) -> Event {
        Event::GateRequested {
            run_id: "r1".into(),
            stage: stage.into(),
            question: "Approve?".into(),
            artifacts: vec![],
            at_ms,
        }
    }

    fn gate_waiting(stage: &str, at_ms: i64) -> Event {
        Event::GateWaiting {
            run_id: "r1".into(),
            stage: stage.into(),
            commands: vec![],
            creates: vec![],
            replaces: vec![],
            at_ms,
        }
    }

    fn stage_finished(stage: &str, at_ms: i64) -> Event {
        Event::StageFinished {
            run_id: "r1".into(),
            stage: stage.into(),
            end: StageEnd::Approved,
            duration_ms: 0,
            reason: None,
            at_ms,
        }
    }

    fn agents_finished(stage: &str, succeeded: &[&str], failed: &[&str]) -> Event {
        Event::AgentsFinished {
            run_id: "r1".into(),
            stage: stage.into(),
            succeeded: succeeded.iter().map(|agent| (*agent).to_owned()).collect(),
            failed: failed
                .iter()
                .map(|agent| AgentFailure {
                    agent: (*agent).to_owned(),
                    reason: "timed out".into(),
                })
                .collect(),
            at_ms: 0,
        }
    }

    fn identity(stage: &str, phase: Phase, agent: &str, artifact: Option<&str>) -> CallIdentity {
        CallIdentity {
            run_id: "r1".into(),
            stage: stage.into(),
            phase,
            agent: agent.into(),
            attempt: 1,
            artifact: artifact.map(str::to_owned),
        }
    }

    fn attempt_started(stage: &str, phase: Phase, agent: &str) -> Event {
        Event::AttemptStarted {
            identity: identity(stage, phase, agent, None),
            backend: "mock".into(),
            at_ms: 0,
            prompt: Arc::default(),
            prompt_joints: Arc::default(),
        }
    }

    fn attempt_finished(
        identity: CallIdentity,
        backend: &str,
        status: AttemptStatus,
        failure: Option<Failure>,
    ) -> Event {
        Event::AttemptFinished {
            identity,
            backend: backend.into(),
            status,
            failure,
            duration_ms: 5,
            output_bytes: 0,
            output_hash: None,
            confidence: None,
            usage: None,
            cache_key: None,
            at_ms: 0,
            output: Arc::default(),
            stderr: Arc::default(),
        }
    }

    fn qa_verdict(stage: &str, iteration: u32, verdict: Verdict) -> Event {
        Event::QaVerdict {
            run_id: "r1".into(),
            stage: stage.into(),
            iteration,
            verdict,
            feedback: String::new(),
            at_ms: 0,
        }
    }

    struct Attempt<'a> {
        stage: &'a str,
        phase: &'a str,
        agent: &'a str,
        attempt: u32,
        backend: &'a str,
    }

    fn attempt(spec: Attempt<'_>, window: Option<(i64, i64)>, outcome: &str) -> AttemptRecord {
        AttemptRecord {
            run_id: "r1".to_owned(),
            stage: spec.stage.to_owned(),
            phase: spec.phase.to_owned(),
            agent: spec.agent.to_owned(),
            attempt: spec.attempt,
            backend: spec.backend.to_owned(),
            started_at_ms: window.map_or(0, |(start, _)| start),
            finished_at_ms: window.map(|(_, end)| end),
            outcome: window.map(|_| outcome.to_owned()),
            failure_reason: None,
            output_hash: None,
            output_bytes: None,
            confidence: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        }
    }

    fn agent_attempt<'a>(agent: &'a str, number: u32, backend: &'a str) -> Attempt<'a> {
        Attempt {
            stage: "plan",
            phase: "agent",
            agent,
            attempt: number,
            backend,
        }
    }

    fn decision(run_id: &str, stage: &str, kind: DecisionKind) -> DecisionRecord {
        DecisionRecord {
            id: None,
            run_id: run_id.to_owned(),
            stage: stage.to_owned(),
            kind,
            reason: None,
            note: None,
            diff: None,
            decided_by: "test".to_owned(),
            decided_at_ms: 0,
        }
    }

    fn key(stage: &str, agent: &str, backend: &str) -> AgentKey {
        AgentKey {
            stage: stage.to_owned(),
            agent: agent.to_owned(),
            backend: backend.to_owned(),
        }
    }

    #[test]
    fn stage_duration_runs_to_the_gate_request_or_to_the_end() {
        let mut all = events(
            "r1",
            &[
                stage_started("plan", 1_000),
                gate_requested("plan", 1_600),
                gate_waiting("plan", 1_601),
                // Decided an hour later: the wait is not the stage's time.
                stage_finished("plan", 3_601_600),
            ],
        );
        all.extend(events(
            "r2",
            &[stage_started("plan", 0), stage_finished("plan", 250)],
        ));
        all.extend(events(
            "r3",
            &[
                // A start that never finished (a crash), then the resumed try.
                stage_started("plan", 0),
                stage_started("plan", 5_000),
                gate_requested("plan", 5_100),
            ],
        ));
        let metrics = compute(&[run("r1"), run("r2"), run("r3")], &[], &all, &[]);
        let duration = metrics.stages["plan"].stage_duration_ms;
        assert_eq!(
            duration,
            DurationSummary {
                count: 3,
                sum: 950,
                max: Some(600)
            }
        );
        assert_eq!(duration.average(), Some(950.0 / 3.0));
        assert_eq!(metrics.runs, 3);
    }

    #[test]
    fn agent_success_partial_failure_and_review_coverage() {
        let mut all = events(
            "r1",
            &[
                stage_started("plan", 0),
                agents_finished("plan", &["a", "b", "c"], &["d"]),
                attempt_started("plan", Phase::Review, "lead"),
                gate_requested("plan", 10),
            ],
        );
        all.extend(events(
            "r2",
            &[
                stage_started("plan", 0),
                agents_finished("plan", &["a"], &["b", "c", "d"]),
                stage_finished("plan", 10),
            ],
        ));
        all.extend(events(
            "r3",
            &[
                stage_started("plan", 0),
                agents_finished("plan", &["a", "b", "c", "d"], &[]),
                attempt_started("plan", Phase::Review, "lead"),
                gate_requested("plan", 10),
            ],
        ));
        let metrics = compute(&[], &[], &all, &[]);
        let plan = &metrics.stages["plan"];
        // 8 of 12 agents.
        assert_eq!(plan.agent_success_rate, Ratio { part: 8, whole: 12 });
        // r1 failed partly and reached its gate; r2 failed partly and stopped; r3 had no failure.
        assert_eq!(plan.partial_failure_rate, Ratio { part: 1, whole: 3 });
        // Only r1 and r3 reached a review: 7 of 8 agents.
        let quality = &metrics.quality["plan"];
        assert_eq!(quality.review_coverage, Ratio { part: 7, whole: 8 });
        let json = render_json(&metrics);
        assert_eq!(json["quality"]["plan"]["review_coverage_percent"], 87.5);
        assert_eq!(
            json["stages"]["plan"]["agent_success_rate"].as_f64(),
            Some(8.0 / 12.0)
        );
    }

    #[test]
    fn retries_count_attempts_beyond_the_first() {
        let attempts = [
            attempt(agent_attempt("a", 1, "claude"), Some((0, 10)), "failed"),
            attempt(agent_attempt("a", 2, "claude"), Some((20, 30)), "failed"),
            attempt(agent_attempt("a", 3, "claude"), Some((40, 50)), "timed_out"),
            // The fallback goes on numbering.
            attempt(agent_attempt("a", 4, "ollama"), Some((60, 70)), "ok"),
            attempt(agent_attempt("b", 1, "claude"), Some((0, 10)), "ok"),
            attempt(
                Attempt {
                    stage: "plan",
                    phase: "review",
                    agent: "lead",
                    attempt: 2,
                    backend: "claude",
                },
                Some((80, 90)),
                "ok",
            ),
        ];
        let metrics = compute(&[], &attempts, &[], &[]);
        // Parallel agents only: a's three retries.
        assert_eq!(metrics.stages["plan"].retry_count, 3);
        assert_eq!(
            metrics.agents[&key("plan", "a", "claude")].retry_attempts,
            2
        );
        assert_eq!(
            metrics.agents[&key("plan", "a", "ollama")].retry_attempts,
            1
        );
        assert_eq!(
            metrics.agents[&key("plan", "b", "claude")].retry_attempts,
            0
        );
        assert_eq!(
            metrics.agents[&key("plan", "lead", "claude")].retry_attempts,
            1
        );
        assert_eq!(
            metrics.agents[&key("plan", "lead", "claude")].phase,
            "review"
        );
    }

    #[test]
    fn decisions_give_the_approval_and_modification_rates() {
        use DecisionKind::{Approve, Modify, Reject};
        let decisions = [
            // r1: approved at once.
            decision("r1", "plan", Approve),
            // r2: modified twice, then approved.
            decision("r2", "plan", Modify),
            decision("r2", "plan", Modify),
            decision("r2", "plan", Approve),
            // r3: rejected.
            decision("r3", "plan", Reject),
            // r4: modified, still pending: not a decided gate.
            decision("r4", "plan", Modify),
            // r5: approved at once.
            decision("r5", "plan", Approve),
        ];
        let metrics = compute(&[], &[], &[], &decisions);
        let plan = &metrics.stages["plan"];
        assert_eq!(plan.approval_rate, Ratio { part: 3, whole: 4 });
        assert_eq!(plan.approval_rate.value(), Some(0.75));
        assert_eq!(plan.user_modification_rate, Ratio { part: 1, whole: 4 });
        let quality = &metrics.quality["plan"];
        assert_eq!(
            quality.approval_first_attempt_rate,
            Ratio { part: 2, whole: 3 }
        );
    }

    #[test]
    fn tokens_add_up_and_cache_hits_are_counted() {
        let mut first = attempt(agent_attempt("a", 1, "claude"), Some((0, 100)), "ok");
        first.input_tokens = Some(1_200);
        first.output_tokens = Some(300);
        let mut second = attempt(agent_attempt("a", 2, "claude"), Some((200, 300)), "ok");
        second.input_tokens = Some(800);
        second.output_tokens = Some(100);
        let cached = attempt(agent_attempt("a", 1, "claude"), Some((400, 400)), "cached");
        let metrics = compute(&[], &[first, second, cached], &[], &[]);
        let agent = &metrics.agents[&key("plan", "a", "claude")];
        assert_eq!((agent.input_tokens, agent.output_tokens), (2_000, 400));
        assert_eq!(agent.cache_hits, 1);
        let mut priced = metrics.clone();
        let prices = BTreeMap::from([(
            "claude".to_owned(),
            Price {
                input_per_mtok: 3.0,
                output_per_mtok: 15.0,
            },
        )]);
        let attempts = {
            let mut first = attempt(agent_attempt("a", 1, "claude"), Some((0, 100)), "ok");
            first.input_tokens = Some(1_000_000);
            first.output_tokens = Some(100_000);
            // The second attempt's agent said what it cost: that, not the price, counts.
            let mut second = attempt(agent_attempt("a", 2, "claude"), Some((200, 300)), "ok");
            second.input_tokens = Some(1_000_000);
            second.output_tokens = Some(100_000);
            second.cost_usd = Some(0.25);
            vec![first, second]
        };
        add_costs(&mut priced, &attempts, &prices);
        let cost = priced.agents[&key("plan", "a", "claude")].cost;
        assert!((cost - (4.5 + 0.25)).abs() < 1e-9, "{cost}");
        let text = render_prometheus(&metrics);
        assert!(
            text.contains("stagegate_cache_hits{stage=\"plan\",agent=\"a\",backend=\"claude\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn agent_time_size_and_confidence_averages() {
        let mut first = attempt(agent_attempt("a", 1, "claude"), Some((100, 400)), "ok");
        first.output_bytes = Some(1_000);
        first.confidence = Some(0.9);
        let mut second = attempt(agent_attempt("a", 1, "claude"), Some((0, 100)), "ok");
        second.run_id = "r2".to_owned();
        second.output_bytes = Some(3_000);
        // No CONFIDENCE: line: left out of the average, not counted as 0.
        let mut cached = attempt(agent_attempt("a", 1, "claude"), Some((0, 0)), "cached");
        cached.run_id = "r3".to_owned();
        cached.output_bytes = Some(2_000);
        cached.confidence = Some(0.6);
        // Still running: nothing to measure yet.
        let running = attempt(agent_attempt("a", 1, "claude"), None, "");
        let metrics = compute(&[], &[first, second, cached, running], &[], &[]);
        let agent = &metrics.agents[&key("plan", "a", "claude")];
        assert_eq!(
            agent.execution_time_ms,
            DurationSummary {
                count: 2,
                sum: 400,
                max: Some(300)
            }
        );
        assert_eq!(agent.execution_time_ms.average(), Some(200.0));
        assert_eq!(agent.output_size_bytes.value(), Some(2_000.0));
        assert_eq!(agent.confidence_score.value(), Some(0.75));
    }

    #[test]
    fn failure_reasons_come_from_the_events_kind() {
        let finished = |agent: &str, artifact: Option<&str>, status, failure| {
            let phase = if artifact.is_some() {
                Phase::Synthesis
            } else {
                Phase::Agent
            };
            attempt_finished(
                identity("plan", phase, agent, artifact),
                "claude",
                status,
                failure,
            )
        };
        let rate_limited = || Failure::RateLimited {
            message: "429".into(),
            retry_after_ms: None,
        };
        let all = events(
            "r1",
            &[
                finished(
                    "a",
                    None,
                    AttemptStatus::TimedOut,
                    Some(Failure::TimedOut { after_ms: 5 }),
                ),
                finished("a", None, AttemptStatus::Failed, Some(rate_limited())),
                finished("a", None, AttemptStatus::Failed, Some(rate_limited())),
                finished("a", None, AttemptStatus::Ok, None),
                finished(
                    "lead-synthesizer-a",
                    Some("plan.md"),
                    AttemptStatus::Failed,
                    Some(Failure::permanent("no such program")),
                ),
                // An older event without a failure object counts under its status.
                finished("b", None, AttemptStatus::Cancelled, None),
            ],
        );
        let metrics = compute(&[], &[], &all, &[]);
        let a = &metrics.agents[&key("plan", "a", "claude")];
        assert_eq!(
            a.failure_reason,
            BTreeMap::from([("rate_limited".to_owned(), 2), ("timed_out".to_owned(), 1)])
        );
        let synthesizer = &metrics.agents[&key("plan", "lead-synthesizer-a.plan.md", "claude")];
        assert_eq!(
            synthesizer.failure_reason,
            BTreeMap::from([("permanent".to_owned(), 1)])
        );
        assert_eq!(synthesizer.phase, "synthesis");
        let b = &metrics.agents[&key("plan", "b", "claude")];
        assert_eq!(
            b.failure_reason,
            BTreeMap::from([("cancelled".to_owned(), 1)])
        );
    }

    #[test]
    fn coherence_is_the_first_iteration_pass_share_and_reworks_are_counted() {
        let mut all = events(
            "r1",
            &[
                qa_verdict("plan", 1, Verdict::Rework),
                qa_verdict("plan", 2, Verdict::Pass),
                // A person's feedback starts a new round at iteration 1.
                qa_verdict("plan", 1, Verdict::Pass),
            ],
        );
        all.extend(events(
            "r2",
            &[
                qa_verdict("plan", 1, Verdict::Pass),
                qa_verdict("prep", 1, Verdict::Rework),
                qa_verdict("prep", 2, Verdict::Rework),
                qa_verdict("prep", 3, Verdict::Rework),
            ],
        ));
        let metrics = compute(&[], &[], &all, &[]);
        let plan = &metrics.quality["plan"];
        assert_eq!(plan.synthesis_coherence_score, Ratio { part: 2, whole: 3 });
        assert_eq!(plan.qa_modifications_count, 1);
        let prep = &metrics.quality["prep"];
        assert_eq!(prep.synthesis_coherence_score.value(), Some(0.0));
        assert_eq!(prep.qa_modifications_count, 3);
        // Every stage seen anywhere is listed in both maps.
        assert!(metrics.stages.contains_key("prep"));
    }

    #[test]
    fn unreadable_events_are_left_out() {
        let record = |seq: i64, kind: &str, payload: Value| EventRecord {
            seq,
            run_id: "r1".to_owned(),
            kind: kind.to_owned(),
            payload,
            recorded_at_ms: 0,
        };
        let records = [
            record(1, "stage_started", json!({"no": "stage"})),
            record(2, "agents_finished", json!("not an object")),
            record(3, "qa_verdict", json!({"stage": "plan"})),
            record(
                4,
                "qa_verdict",
                json!({"run_id": "r1", "stage": "plan", "iteration": 1, "verdict": "pass",
                       "feedback": "", "at_ms": 0}),
            ),
        ];
        let unreadable: Vec<Envelope> = readable(&records[..3]).collect();
        assert_eq!(compute(&[], &[], &unreadable, &[]), Metrics::default());
        let all: Vec<Envelope> = readable(&records).collect();
        let metrics = compute(&[], &[], &all, &[]);
        assert_eq!(
            metrics.quality["plan"].synthesis_coherence_score,
            Ratio { part: 1, whole: 1 }
        );
    }

    #[test]
    fn label_values_and_help_texts_are_escaped() {
        assert_eq!(
            escape_label_value("a\\b \"quoted\"\nnext"),
            "a\\\\b \\\"quoted\\\"\\nnext"
        );
        assert_eq!(escape_label_value("plain-id.md"), "plain-id.md");
        assert_eq!(
            escape_help("one \\ \"two\"\nthree"),
            "one \\\\ \"two\"\\nthree"
        );

        let metrics = compute(
            &[],
            &[attempt(
                Attempt {
                    stage: "pl\"an",
                    phase: "agent",
                    agent: "a\\b",
                    attempt: 2,
                    backend: "x\ny",
                },
                None,
                "",
            )],
            &[],
            &[],
        );
        let text = render_prometheus(&metrics);
        assert!(
            text.contains(
                "stagegate_retry_attempts{stage=\"pl\\\"an\",agent=\"a\\\\b\",backend=\"x\\ny\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn prometheus_output_has_headers_types_and_samples() {
        let mut all = events(
            "r1",
            &[
                stage_started("plan", 0),
                agents_finished("plan", &["a", "b", "c"], &["d"]),
                attempt_started("plan", Phase::Review, "lead"),
                qa_verdict("plan", 1, Verdict::Rework),
                qa_verdict("plan", 2, Verdict::Pass),
                gate_requested("plan", 1_500),
            ],
        );
        all.push(Envelope {
            version: 1,
            run_id: "r1".to_owned(),
            seq: 100,
            at_ms: 0,
            event: attempt_finished(
                identity("plan", Phase::Agent, "d", None),
                "mock",
                AttemptStatus::TimedOut,
                Some(Failure::TimedOut { after_ms: 30000 }),
            ),
        });
        let mut finished = attempt(agent_attempt("a", 1, "mock"), Some((0, 120)), "ok");
        finished.output_bytes = Some(64);
        finished.confidence = Some(0.5);
        let decisions = [decision("r1", "plan", DecisionKind::Approve)];
        let metrics = compute(&[run("r1")], &[finished], &all, &decisions);
        let text = render_prometheus(&metrics);

        for metric in METRICS {
            let help = format!("# HELP stagegate_{} {}\n", metric.name, metric.help);
            let kind = format!(
                "# TYPE stagegate_{} {}\n",
                metric.name,
                metric.kind.as_str()
            );
            assert!(text.contains(&help), "{help}");
            assert!(text.contains(&kind), "{kind}");
            // Every metric of the table has a sample here, so none is forgotten by the writer.
            let sample = format!("\nstagegate_{}", metric.name);
            assert!(
                text.contains(&sample),
                "no sample of {}:\n{text}",
                metric.name
            );
        }
        for line in [
            "# TYPE stagegate_stage_duration_ms summary",
            "# TYPE stagegate_retry_count counter",
            "# TYPE stagegate_agent_success_rate gauge",
            "stagegate_runs 1",
            "stagegate_stage_duration_ms_sum{stage=\"plan\"} 1500",
            "stagegate_stage_duration_ms_count{stage=\"plan\"} 1",
            "stagegate_stage_duration_ms_max{stage=\"plan\"} 1500",
            "stagegate_agent_success_rate{stage=\"plan\"} 0.75",
            "stagegate_retry_count{stage=\"plan\"} 0",
            "stagegate_partial_failure_rate{stage=\"plan\"} 1",
            "stagegate_approval_rate{stage=\"plan\"} 1",
            "stagegate_user_modification_rate{stage=\"plan\"} 0",
            "stagegate_execution_time_ms_sum{stage=\"plan\",agent=\"a\",backend=\"mock\"} 120",
            "stagegate_execution_time_ms_count{stage=\"plan\",agent=\"a\",backend=\"mock\"} 1",
            "stagegate_output_size_bytes{stage=\"plan\",agent=\"a\",backend=\"mock\"} 64",
            "stagegate_confidence_score{stage=\"plan\",agent=\"a\",backend=\"mock\"} 0.5",
            "stagegate_failure_reason{stage=\"plan\",agent=\"d\",backend=\"mock\",reason=\"timed_out\"} 1",
            "stagegate_synthesis_coherence_score{stage=\"plan\"} 0",
            "stagegate_review_coverage_percent{stage=\"plan\"} 75",
            "stagegate_qa_modifications_count{stage=\"plan\"} 1",
            "stagegate_approval_first_attempt_rate{stage=\"plan\"} 1",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "{line}\n{text}"
            );
        }
        // A family's samples directly follow its header.
        let type_line = text
            .lines()
            .position(|line| line == "# TYPE stagegate_approval_rate gauge")
            .unwrap();
        assert_eq!(
            text.lines().nth(type_line + 1),
            Some("stagegate_approval_rate{stage=\"plan\"} 1")
        );
        // Agent d is known only from its failed event: it is listed, with nothing measured.
        assert!(text.contains(
            "stagegate_execution_time_ms_count{stage=\"plan\",agent=\"d\",backend=\"mock\"} 0\n"
        ));
    }

    #[test]
    fn rates_with_nothing_to_count_are_left_out() {
        let metrics = compute(
            &[],
            &[attempt(agent_attempt("a", 1, "mock"), None, "")],
            &[],
            &[],
        );
        let text = render_prometheus(&metrics);
        assert!(!text.contains("stagegate_approval_rate{"), "{text}");
        assert!(!text.contains("stagegate_confidence_score{"), "{text}");
        assert!(
            text.contains("stagegate_retry_count{stage=\"plan\"} 0\n"),
            "{text}"
        );
        let json = render_json(&metrics);
        assert_eq!(json["stages"]["plan"]["approval_rate"], Value::Null);
        assert_eq!(json["agents"][0]["confidence_score"], Value::Null);
    }

    #[test]
    fn json_report_has_the_contract_shape_and_the_table_names() {
        let mut finished = attempt(agent_attempt("a", 2, "mock"), Some((0, 100)), "ok");
        finished.output_bytes = Some(10);
        let all = events(
            "r1",
            &[
                stage_started("plan", 0),
                gate_requested("plan", 40),
                qa_verdict("plan", 1, Verdict::Pass),
            ],
        );
        let metrics = compute(&[run("r1"), run("r2")], &[finished], &all, &[]);
        let json = render_json(&metrics);
        assert_eq!(json["runs"], 2);
        let plan = json["stages"]["plan"].as_object().unwrap();
        let stage_names: BTreeSet<&str> = [
            STAGE_DURATION_MS,
            AGENT_SUCCESS_RATE,
            RETRY_COUNT,
            PARTIAL_FAILURE_RATE,
            APPROVAL_RATE,
            USER_MODIFICATION_RATE,
        ]
        .iter()
        .map(|metric| metric.name)
        .collect();
        assert_eq!(
            plan.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            stage_names
        );
        assert_eq!(
            plan["stage_duration_ms"],
            json!({"count": 1, "sum": 40, "avg": 40.0, "max": 40})
        );
        assert_eq!(plan["retry_count"], 1);
        assert_eq!(
            json["agents"],
            json!([{
                "stage": "plan", "agent": "a", "backend": "mock", "phase": "agent",
                "execution_time_ms": {"count": 1, "sum": 100, "avg": 100.0},
                "output_size_bytes": 10.0,
                "confidence_score": null,
                "retry_attempts": 1,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": 0.0,
                "cache_hits": 0,
                "failure_reason": {},
            }])
        );
        assert_eq!(
            json["quality"]["plan"],
            json!({
                "synthesis_coherence_score": 1.0,
                "review_coverage_percent": null,
                "qa_modifications_count": 0,
                "approval_first_attempt_rate": null,
            })
        );
    }
}
