//! The stage loop: parallel agents → review → synthesis → QA, up to the gate.
//!
//! # Design
//! One dispatcher (this module) owns every decision and every event. Agent calls are futures
//! that only report; the dispatcher forwards their events to the sink in order and acts on a
//! call's result only after all of that call's events have been taken by the sink (so the
//! recorder has stored an outcome before anything depends on it).
//!
//! * Concurrency: the calls in flight are futures the dispatcher drives itself (a
//!   `FuturesUnordered`, as nextest drives its tests); a call takes its slot when it starts and
//!   holds it through its retries and backoff, so at most `concurrency` agents are in flight,
//!   10,000 queued agents cost nothing until they start, and a finished call wakes no other
//!   thread. Work that needs a CPU (the built-in analysts) goes to tokio's blocking pool.
//! * Quorum: counted as outcomes arrive; when every agent is done and it does not hold, one
//!   sequential pass gives each failed agent one more attempt, alone; if it still does not hold
//!   the stage fails.
//! * Deadline: the whole stage shares one deadline; when it passes, every call is cancelled
//!   (program agents' process groups are killed) and the stage fails.
//! * Synthesis: the artifacts of a round run concurrently under the same limit (required ones
//!   dispatched first); QA starts after the last of them.
//! * The gate is not here: the loop ends with a [`StageProduct`] for the caller to put before
//!   a person, and [`rework`] runs synthesis and QA again with a person's feedback.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adaptive::{Adjustment, LiveRules, humanize};
use crate::agent_call::{
    Call, CallEnvironment, CallResult, answer_from_cache, cache_key, millis, prompt_digest,
    run_call,
};
use crate::backend::{CallMaterials, Failure, Phase, TruncationHandling};
use crate::event::{
    AgentFailure, AttemptStatus, CallMemo, Event, EventSink, SinkError, Verdict, now_ms,
};
use crate::line_comment::LineComment;
use crate::prompt::{
    AgentOutputView, AgentView, NamedText, PromptContext, PromptError, Prompts, RenderedPrompt,
    SharedContext, StageView, TemplateInputs,
};
use crate::qa_check::{parse_verdict, structural_problems};
use crate::quorum::{Quorum, QuorumChange};
use crate::stage_plan::{AgentPlan, StagePlan};

/// What a stage runs against.
#[derive(Debug, Clone)]
pub struct StageContext {
    pub run_id: String,
    pub repo_root: PathBuf,
    pub feature_dir: PathBuf,
    /// The feature files the stage reads (spec.md, plan.md, …), already loaded.
    pub inputs: Arc<Vec<NamedText>>,
    pub prompts: Arc<Prompts>,
    /// Fires on Ctrl-C.
    pub cancel: CancellationToken,
}

/// What a stage produced for its gate.
#[derive(Debug, Clone)]
pub struct StageProduct {
    /// Successful agents' outputs, in the stage's agent order.
    pub outputs: Vec<AgentOutputView>,
    pub failures: Vec<AgentFailure>,
    pub review: String,
    /// The artifacts to stage, required ones first.
    pub artifacts: Vec<NamedText>,
    pub verdict: Verdict,
    pub qa_feedback: String,
    /// Synthesis rounds so far (1 + reworks).
    pub iterations: u32,
    /// The next attempt number of each call made so far, by (phase, agent, artifact), so that
    /// a later rework numbers its calls after them instead of over them.
    pub next_attempts: BTreeMap<(Phase, String, Option<String>), u32>,
}

/// Why a stage did not reach its gate.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("too few agents succeeded: {reason}")]
    QuorumNotMet {
        reason: String,
        failures: Vec<AgentFailure>,
    },
    #[error("the {phase} by {agent} failed: {failure}")]
    PhaseFailed {
        phase: &'static str,
        agent: String,
        failure: Failure,
    },
    #[error("the stage ran past its {} limit (timeouts.stage)", humanize(*.limit))]
    TimedOut { limit: Duration },
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("could not record the run: {0}")]
    Sink(#[from] SinkError),
}

/// Runs `plan` from its parallel agents to its QA verdict.
pub async fn run_stage<S: EventSink>(
    plan: &StagePlan,
    context: &StageContext,
    sink: &mut S,
) -> Result<StageProduct, StageError> {
    run_stage_memoized(plan, context, sink, None).await
}

/// Runs `plan` like [`run_stage`], answering every call whose cache key `memo` knows from it
/// instead of running the agent: the cache, and what a resumed run had already finished.
pub async fn run_stage_memoized<S: EventSink>(
    plan: &StagePlan,
    context: &StageContext,
    sink: &mut S,
    memo: Option<&dyn CallMemo>,
) -> Result<StageProduct, StageError> {
    let mut loop_state = StageLoop::new(plan, context, sink);
    loop_state.memo = memo;
    loop_state.emit_stage_started().await?;
    let result = loop_state.run().await;
    loop_state.finish(result)
}

/// Runs synthesis and QA again with a person's `feedback` and line `comments` over an earlier
/// product (an empty `feedback` is none: the comments may say it all).
pub async fn rework<S: EventSink>(
    plan: &StagePlan,
    context: &StageContext,
    sink: &mut S,
    previous: &StageProduct,
    feedback: &str,
    comments: &[LineComment],
) -> Result<StageProduct, StageError> {
    let mut loop_state = StageLoop::new(plan, context, sink);
    let result = loop_state.rework_from(previous, feedback, comments).await;
    loop_state.finish(result)
}

struct StageLoop<'a, S> {
    plan: &'a StagePlan,
    context: &'a StageContext,
    sink: &'a mut S,
    environment: Arc<CallEnvironment>,
    stage_cancel: CancellationToken,
    /// The next attempt number per work item (agent, or synthesizer and artifact).
    next_attempt: BTreeMap<(Phase, String, Option<String>), u32>,
    timed_out: bool,
    memo: Option<&'a dyn CallMemo>,
    /// The discovery step's output, for the agents' prompts.
    discovery: Option<String>,
    /// Every adaptive adjustment made so far, for the summary artifact.
    adjustments_made: Vec<Adjustment>,
    /// Answers kept although the model stopped at its token limit (`on_truncation =
    /// "accept"`), by phase, agent and artifact: the later phases and the summary say so.
    truncated: BTreeSet<(Phase, String, Option<String>)>,
    /// The stage's inputs as the templates see them, converted once for all its prompts.
    template_inputs: TemplateInputs,
    /// The context the role agents' prompts share in the agent phase, converted at the first
    /// of them (after the discovery step, whose output it holds).
    role_agent_context: OnceLock<SharedContext>,
}

impl<'a, S: EventSink> StageLoop<'a, S> {
    fn new(plan: &'a StagePlan, context: &'a StageContext, sink: &'a mut S) -> Self {
        let stage_cancel = context.cancel.child_token();
        let environment = Arc::new(CallEnvironment {
            run_id: context.run_id.clone(),
            stage: plan.id.clone(),
            repo_root: context.repo_root.clone(),
            feature_dir: context.feature_dir.clone(),
            cancel: stage_cancel.clone(),
            stage_deadline: Instant::now() + plan.stage_timeout,
            output_cap_bytes: plan.output_cap_bytes,
            kill_grace: plan.kill_grace,
        });
        StageLoop {
            plan,
            context,
            sink,
            environment,
            stage_cancel,
            next_attempt: BTreeMap::new(),
            timed_out: false,
            memo: None,
            discovery: None,
            adjustments_made: Vec::new(),
            truncated: BTreeSet::new(),
            template_inputs: TemplateInputs::new(&context.inputs),
            role_agent_context: Default::default(),
        }
    }

    /// Maps a cancelled ending onto why it was cancelled.
    fn finish(
        &mut self,
        result: Result<StageProduct, StageError>,
    ) -> Result<StageProduct, StageError> {
        self.stage_cancel.cancel();
        // An attempt capped at the stage deadline can end at the very instant the deadline
        // passes, before the loop saw the deadline itself: that is still the stage timing out.
        if Instant::now() >= self.environment.stage_deadline {
            self.timed_out = true;
        }
        match result {
            Err(_) if self.timed_out => Err(StageError::TimedOut {
                limit: self.plan.stage_timeout,
            }),
            Err(_) if self.context.cancel.is_cancelled() => Err(StageError::Interrupted),
            other => other,
        }
    }

    async fn emit_stage_started(&mut self) -> Result<(), StageError> {
        let quorum_needed =
            crate::quorum::needed_successes(self.plan.agents.len(), self.plan.min_success_ratio);
        self.sink
            .emit(&Event::StageStarted {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                name: self.plan.name.clone(),
                agents: self
                    .plan
                    .agents
                    .iter()
                    .map(|agent| agent.id.clone())
                    .collect(),
                concurrency: self.plan.concurrency,
                quorum_needed,
                at_ms: now_ms(),
            })
            .await?;
        for adjustment in &self.plan.adaptation.adjustments {
            self.emit_adjustment(adjustment.clone()).await?;
        }
        Ok(())
    }

    async fn emit_adjustment(&mut self, adjustment: Adjustment) -> Result<(), StageError> {
        self.adjustments_made.push(adjustment.clone());
        self.sink
            .emit(&Event::Adjusted {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                setting: adjustment.setting,
                from: adjustment.from,
                to: adjustment.to,
                reason: adjustment.reason,
                at_ms: now_ms(),
            })
            .await?;
        Ok(())
    }

    async fn run(&mut self) -> Result<StageProduct, StageError> {
        self.run_discovery().await?;
        let (outputs, failures) = self.run_agents().await?;
        let prepared = PhaseOutputs::new(&outputs, &self.template_inputs);
        let review = self.run_review(&prepared, &failures).await?;
        let mut product = StageProduct {
            outputs,
            failures,
            review,
            artifacts: Vec::new(),
            verdict: Verdict::Rework,
            qa_feedback: String::new(),
            iterations: 0,
            next_attempts: BTreeMap::new(),
        };
        self.synthesize_and_check(&mut product, None, &[], &prepared)
            .await?;
        product.next_attempts = self.next_attempt.clone();
        Ok(product)
    }

    async fn rework_from(
        &mut self,
        previous: &StageProduct,
        feedback: &str,
        comments: &[LineComment],
    ) -> Result<StageProduct, StageError> {
        let mut product = previous.clone();
        self.next_attempt = previous.next_attempts.clone();
        let feedback = (!feedback.trim().is_empty()).then(|| feedback.to_owned());
        let prepared = PhaseOutputs::new(&product.outputs, &self.template_inputs);
        self.synthesize_and_check(&mut product, feedback, comments, &prepared)
            .await?;
        product.next_attempts = self.next_attempt.clone();
        Ok(product)
    }

    // ----- discovery and parallel agents -----------------------------------------------

    /// The discovery step of uncertain inputs: its unknowns and assumptions go to every agent.
    /// It informs; it does not gate: a failed discovery leaves the agents without it.
    async fn run_discovery(&mut self) -> Result<(), StageError> {
        let Some(discovery) = &self.plan.adaptation.discovery else {
            return Ok(());
        };
        let call = self.agent_call(discovery, None);
        let result = self.run_one(call).await?;
        self.discovery = result.result.ok();
        // Role agents' prompts hold the discovery step's output from now on.
        self.role_agent_context = Default::default();
        Ok(())
    }

    async fn run_agents(
        &mut self,
    ) -> Result<(Vec<AgentOutputView>, Vec<AgentFailure>), StageError> {
        let plan = self.plan;
        let required: BTreeSet<String> = plan
            .agents
            .iter()
            .filter(|agent| agent.required)
            .map(|agent| agent.id.clone())
            .collect();
        let mut quorum = Quorum::new(plan.agents.len(), plan.min_success_ratio, required);
        let mut results: BTreeMap<String, CallResult> = BTreeMap::new();

        let calls = plan
            .agents
            .iter()
            .map(|agent| self.agent_call(agent, None))
            .collect::<VecDeque<_>>();
        let finished = self
            .run_parallel_unsettled(calls, plan.concurrency, Some(&mut quorum))
            .await?;
        // Kept while the writer commits the last outcomes (at 10,000 agents it is about 10 ms
        // behind): nothing below acts on them before the sink settles.
        for result in finished {
            self.note_attempts(Phase::Agent, &result, None);
            results.insert(result.agent.clone(), result);
        }
        self.sink.settle().await?;

        if !quorum.is_met() && !self.stage_cancel.is_cancelled() {
            let failed: Vec<&AgentPlan> = plan
                .agents
                .iter()
                .filter(|agent| {
                    // A permanent failure (not logged in, out of quota, over its memory cap)
                    // would only fail again, alone or not.
                    results.get(&agent.id).is_none_or(|result| {
                        result
                            .result
                            .as_ref()
                            .is_err_and(|failure| !matches!(failure, Failure::Permanent { .. }))
                    })
                })
                .collect();
            if !failed.is_empty() {
                self.sink
                    .emit(&Event::SequentialPassStarted {
                        run_id: self.context.run_id.clone(),
                        stage: plan.id.clone(),
                        agents: failed.iter().map(|agent| agent.id.clone()).collect(),
                        at_ms: now_ms(),
                    })
                    .await?;
                for agent in failed {
                    let mut call = self.agent_call(agent, Some(1));
                    call.use_fallback = false;
                    let result = self.run_one(call).await?;
                    self.count(&mut quorum, &result).await?;
                    results.insert(result.agent.clone(), result);
                    if self.stage_cancel.is_cancelled() {
                        break;
                    }
                }
            }
        }

        let mut outputs = Vec::new();
        let mut failures = Vec::new();
        for agent in &plan.agents {
            match results.get(&agent.id).map(|result| &result.result) {
                Some(Ok(output)) => outputs.push(AgentOutputView {
                    agent: agent.id.clone(),
                    role: agent.role.clone(),
                    output: output.clone(),
                }),
                Some(Err(failure)) => failures.push(AgentFailure {
                    agent: agent.id.clone(),
                    reason: failure.to_string(),
                }),
                None => failures.push(AgentFailure {
                    agent: agent.id.clone(),
                    reason: "not run: the stage was stopped".into(),
                }),
            }
        }
        self.sink
            .emit(&Event::AgentsFinished {
                run_id: self.context.run_id.clone(),
                stage: plan.id.clone(),
                succeeded: outputs.iter().map(|output| output.agent.clone()).collect(),
                failed: failures.clone(),
                at_ms: now_ms(),
            })
            .await?;
        if self.stage_cancel.is_cancelled() {
            return Err(StageError::Interrupted);
        }
        if !quorum.is_met() {
            let reason = quorum
                .lost_reason()
                .unwrap_or_else(|| "the quorum was not met".to_owned());
            return Err(StageError::QuorumNotMet { reason, failures });
        }
        Ok((outputs, failures))
    }

    async fn count(&mut self, quorum: &mut Quorum, result: &CallResult) -> Result<(), StageError> {
        let change = quorum.record(&result.agent, result.result.is_ok());
        let event = match change {
            Some(QuorumChange::Met) => Event::QuorumMet {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                succeeded: quorum.succeeded(),
                needed: quorum.needed(),
                total: self.plan.agents.len(),
                at_ms: now_ms(),
            },
            Some(QuorumChange::Lost(reason)) => Event::QuorumLost {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                reason,
                at_ms: now_ms(),
            },
            None => return Ok(()),
        };
        // Queued like the outcomes it counts: the phase acts on the quorum only once it ends,
        // after the sink has settled.
        self.sink.queue_all(vec![event]).await?;
        Ok(())
    }

    /// Runs `calls` with at most `limit` in flight, counting the quorum as results arrive; the
    /// results are stored (and shown) before they are returned.
    async fn run_parallel(
        &mut self,
        calls: VecDeque<Call>,
        limit: usize,
        quorum: Option<&mut Quorum>,
    ) -> Result<Vec<CallResult>, StageError> {
        let finished = self.run_parallel_unsettled(calls, limit, quorum).await?;
        // Whoever takes these results acts on them: they are stored (and shown) first.
        self.sink.settle().await?;
        Ok(finished)
    }

    /// [`Self::run_parallel`] without waiting for the results to be stored, for a caller with
    /// bookkeeping to do meanwhile: it settles the sink before it acts on them.
    async fn run_parallel_unsettled(
        &mut self,
        mut calls: VecDeque<Call>,
        limit: usize,
        mut quorum: Option<&mut Quorum>,
    ) -> Result<Vec<CallResult>, StageError> {
        let mut limit = limit.max(1);
        let (sender, mut receiver) = unbounded_channel();
        // The calls in flight, driven by this task itself (as nextest drives its tests): a slot
        // is taken when a call starts and held through its retries and backoff, and finishing
        // one wakes nothing on another thread.
        let mut running = FuturesUnordered::new();
        let mut finished = Vec::with_capacity(calls.len());
        let deadline = self.environment.stage_deadline;
        // The live adaptive rules watch the parallel agents only (the phase with a quorum).
        let mut live = quorum
            .is_some()
            .then_some(self.plan.adaptation.live)
            .flatten()
            .map(|rules| LiveState::new(rules, limit));
        loop {
            // Start what may start: cached calls are answered at once, the others while a
            // slot is free. Nothing new starts once the stage is cancelled.
            let mut hits = Vec::new();
            while !self.stage_cancel.is_cancelled() {
                let Some(front) = calls.front_mut() else {
                    break;
                };
                self.prepare(front)?;
                if front.cached.is_none() && running.len() >= limit {
                    break;
                }
                let Some(mut call) = calls.pop_front() else {
                    break;
                };
                self.report_cuts(&call).await?;
                match call.cached.take() {
                    Some(output) => hits.push(answer_from_cache(&self.environment, &call, output)),
                    None => running.push(
                        AssertUnwindSafe(run_call(self.environment.clone(), call, sender.clone()))
                            .catch_unwind(),
                    ),
                }
            }
            if !hits.is_empty() {
                self.take_hits(hits, &mut quorum, &mut finished).await?;
            }
            if self.stage_cancel.is_cancelled() {
                calls.clear();
            }
            if calls.is_empty() && running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some(event) = receiver.recv() => {
                    // Every event already sent goes to the sink at once (one group commit),
                    // with every call that has already ended: the slots they free are refilled
                    // together, so the next commit holds many calls' events, not one call's.
                    let ended = ended_calls(&mut running, None);
                    let mut events = vec![event];
                    while let Ok(event) = receiver.try_recv() {
                        events.push(event);
                    }
                    self.take_events(events, live.as_mut(), &mut calls).await?;
                    for joined in ended {
                        self.call_ended(joined, &mut quorum, &mut live, &mut limit, &calls, &mut finished)
                            .await?;
                    }
                }
                Some(joined) = running.next(), if !running.is_empty() => {
                    let ended = ended_calls(&mut running, Some(joined));
                    // A call's events are all sent before it ends: take them first.
                    let mut events = Vec::new();
                    while let Ok(event) = receiver.try_recv() {
                        events.push(event);
                    }
                    if !events.is_empty() {
                        self.take_events(events, live.as_mut(), &mut calls).await?;
                    }
                    for joined in ended {
                        self.call_ended(joined, &mut quorum, &mut live, &mut limit, &calls, &mut finished)
                            .await?;
                    }
                }
                () = tokio::time::sleep_until(deadline), if !self.timed_out => {
                    self.timed_out = true;
                    self.stage_cancel.cancel();
                    calls.clear();
                }
                () = self.stage_cancel.cancelled(), if !calls.is_empty() => {
                    calls.clear();
                }
                // Outcomes queued while slots were refilled are shown once they are stored.
                () = self.sink.stored() => {
                    self.sink.show_stored().await?;
                }
            }
        }
        self.drain(&mut receiver).await?;
        Ok(finished)
    }

    /// Takes calls answered from the cache: their events go to the sink together, then each
    /// counts towards the quorum (whose change, if any, is stored after them).
    async fn take_hits(
        &mut self,
        hits: Vec<(CallResult, Event)>,
        quorum: &mut Option<&mut Quorum>,
        finished: &mut Vec<CallResult>,
    ) -> Result<(), StageError> {
        let (results, events): (Vec<CallResult>, Vec<Event>) = hits.into_iter().unzip();
        self.sink.queue_all(events).await?;
        for result in results {
            if let Some(quorum) = quorum.as_deref_mut() {
                self.count(quorum, &result).await?;
            }
            finished.push(result);
        }
        Ok(())
    }

    /// Takes an ended call's result: counts it towards the quorum and the live rules, then keeps
    /// it. Its events are already in the sink.
    async fn call_ended(
        &mut self,
        joined: std::thread::Result<CallResult>,
        quorum: &mut Option<&mut Quorum>,
        live: &mut Option<LiveState>,
        limit: &mut usize,
        calls: &VecDeque<Call>,
        finished: &mut Vec<CallResult>,
    ) -> Result<(), StageError> {
        let result = joined.map_err(|_| StageError::PhaseFailed {
            phase: "agent call",
            agent: "engine".into(),
            failure: Failure::permanent("an agent call panicked"),
        })?;
        if let Some(quorum) = quorum.as_deref_mut() {
            self.count(quorum, &result).await?;
        }
        if let Some(live) = live.as_mut() {
            live.calls += 1;
            live.failures += usize::from(result.result.is_err());
            if let Some(adjustment) = live.lower_concurrency(limit, !calls.is_empty()) {
                self.emit_adjustment(adjustment).await?;
            }
        }
        finished.push(result);
        Ok(())
    }

    /// Passes calls' events on together, letting the live timeout rule see each first (an
    /// adjustment it makes is reported after them).
    async fn take_events(
        &mut self,
        events: Vec<Event>,
        live: Option<&mut LiveState>,
        calls: &mut VecDeque<Call>,
    ) -> Result<(), StageError> {
        self.note_truncations(&events);
        // Queued, not awaited: freeing and refilling slots does not act on an outcome, so the
        // next calls start while these are stored. The quorum, the live rules' adjustments
        // and the end of the phase wait for them (see `run_parallel`).
        let Some(live) = live else {
            self.sink.queue_all(events).await?;
            return Ok(());
        };
        let mut adjustments = Vec::new();
        for event in &events {
            if let Event::AttemptFinished { status, .. } = event {
                live.attempts += 1;
                live.timeouts += usize::from(*status == AttemptStatus::TimedOut);
            }
            adjustments.extend(live.raise_timeouts(calls));
        }
        self.sink.queue_all(events).await?;
        for adjustment in adjustments {
            self.emit_adjustment(adjustment).await?;
        }
        Ok(())
    }

    /// Says, once per call, what its prompt had to leave out to fit the backend's context.
    async fn report_cuts(&mut self, call: &Call) -> Result<(), StageError> {
        if call.cuts.is_empty() {
            return Ok(());
        }
        self.sink
            .emit(&Event::ContextCut {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                phase: call.phase,
                agent: call.agent.id.clone(),
                artifact: call.artifact.clone(),
                cuts: call.cuts.clone(),
                at_ms: now_ms(),
            })
            .await?;
        Ok(())
    }

    /// Runs one call alone (review, synthesis, QA, the sequential pass).
    async fn run_one(&mut self, call: Call) -> Result<CallResult, StageError> {
        let phase = call.phase;
        let artifact = call.artifact.clone();
        let mut results = self.run_parallel(VecDeque::from([call]), 1, None).await?;
        let result = results.pop().ok_or(StageError::Interrupted)?;
        self.note_attempts(phase, &result, artifact);
        Ok(result)
    }

    async fn drain(&mut self, receiver: &mut UnboundedReceiver<Event>) -> Result<(), StageError> {
        let mut events = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            events.push(event);
        }
        if !events.is_empty() {
            self.note_truncations(&events);
            self.sink.emit_all(&events).await?;
        }
        Ok(())
    }

    fn note_truncations(&mut self, events: &[Event]) {
        for event in events {
            if let Event::AnswerTruncated {
                identity,
                handling: TruncationHandling::Accepted,
                ..
            } = event
            {
                self.truncated.insert((
                    identity.phase,
                    identity.agent.clone(),
                    identity.artifact.clone(),
                ));
            }
        }
    }

    fn note_attempts(&mut self, phase: Phase, result: &CallResult, artifact: Option<String>) {
        self.next_attempt.insert(
            (phase, result.agent.clone(), artifact),
            result.last_attempt + 1,
        );
    }

    fn first_attempt(&self, phase: Phase, agent: &str, artifact: Option<&str>) -> u32 {
        self.next_attempt
            .get(&(phase, agent.to_owned(), artifact.map(str::to_owned)))
            .copied()
            .unwrap_or(1)
    }

    /// A role agent's call, its prompt not rendered yet (see [`Self::prepare`]).
    fn agent_call(&self, agent: &AgentPlan, max_tries: Option<u32>) -> Call {
        Call {
            agent: agent.clone(),
            phase: Phase::Agent,
            artifact: None,
            prompt: Arc::from(""),
            prompt_joints: Arc::default(),
            unrendered: true,
            cuts: Vec::new(),
            materials: self.materials(Phase::Agent, agent, &PhaseInputs::default()),
            cache_key: String::new(),
            cached: None,
            first_attempt: self.first_attempt(Phase::Agent, &agent.id, None),
            max_tries,
            use_fallback: true,
        }
    }

    /// Renders a role agent's prompt and looks it up in the memo, once, just before the call
    /// may start: whether it is answered from the cache decides whether it needs a slot.
    fn prepare(&self, call: &mut Call) -> Result<(), StageError> {
        if !call.unrendered {
            return Ok(());
        }
        let rendered = self.render_role_agent(call.phase, &call.agent)?;
        let (cache_key, cached) = self.look_up(call.phase, &call.agent, None, &rendered);
        call.prompt = Arc::from(rendered.text);
        call.prompt_joints = Arc::from(rendered.joints);
        call.cuts = rendered.cuts.iter().map(ToString::to_string).collect();
        call.cache_key = cache_key;
        call.cached = cached;
        call.unrendered = false;
        Ok(())
    }

    // ----- review, synthesis, QA -------------------------------------------------------

    async fn run_review(
        &mut self,
        outputs: &PhaseOutputs,
        failures: &[AgentFailure],
    ) -> Result<String, StageError> {
        let reviewer = &self.plan.reviewer;
        let inputs = PhaseInputs {
            failures,
            ..outputs.inputs()
        };
        let call = self.phase_call(Phase::Review, reviewer, None, &inputs)?;
        self.expect_success(call, "review").await
    }

    async fn synthesize_and_check(
        &mut self,
        product: &mut StageProduct,
        mut feedback: Option<String>,
        comments: &[LineComment],
        outputs: &PhaseOutputs,
    ) -> Result<(), StageError> {
        // A person's line comments go to the first synthesis only; QA's reworks judge its answer.
        let mut comments = comments;
        // Each call (the first synthesis, or a person's feedback) earns its own QA reworks;
        // `product.iterations` keeps counting across them for the events and the record.
        let mut rounds = 0;
        loop {
            rounds += 1;
            product.iterations += 1;
            product.artifacts = self
                .synthesize(product, feedback.as_deref(), comments, outputs)
                .await?;
            comments = &[];
            let (verdict, qa_feedback) = self.check(product, outputs).await?;
            product.verdict = verdict;
            product.qa_feedback = qa_feedback;
            if verdict == Verdict::Pass || rounds > self.plan.synthesis_iterations {
                return Ok(());
            }
            feedback = Some(product.qa_feedback.clone());
        }
    }

    /// Synthesizes every artifact of the round. They all depend only on the review (and the
    /// feedback), so they run concurrently under the stage's concurrency limit, dispatched
    /// required ones first; their `ArtifactSynthesized` events follow in the order of the
    /// artifacts once all of them are back, and QA starts only after that.
    async fn synthesize(
        &mut self,
        product: &StageProduct,
        feedback: Option<&str>,
        comments: &[LineComment],
        outputs: &PhaseOutputs,
    ) -> Result<Vec<NamedText>, StageError> {
        let plan = self.plan;
        let wanted: Vec<(&str, bool)> = plan.artifacts_to_synthesize().collect();
        let mut calls = VecDeque::with_capacity(wanted.len());
        for &(name, _) in &wanted {
            let previous = product
                .artifacts
                .iter()
                .find(|artifact| artifact.name == name)
                .map(|artifact| artifact.content.as_str());
            let comments: Vec<LineComment> = comments
                .iter()
                .filter(|comment| comment.artifact == name)
                .cloned()
                .collect();
            let inputs = PhaseInputs {
                failures: &product.failures,
                review: Some(&product.review),
                artifact: Some(name),
                feedback,
                comments: &comments,
                previous,
                ..outputs.inputs()
            };
            calls.push_back(self.phase_call(
                Phase::Synthesis,
                &plan.synthesizer,
                Some(name),
                &inputs,
            )?);
        }
        let finished = self.run_parallel(calls, plan.concurrency, None).await?;
        let mut results: BTreeMap<String, CallResult> = BTreeMap::new();
        for result in finished {
            let artifact = result.artifact.clone();
            self.note_attempts(Phase::Synthesis, &result, artifact.clone());
            if let Some(artifact) = artifact {
                results.insert(artifact, result);
            }
        }
        if Instant::now() >= self.environment.stage_deadline {
            self.timed_out = true;
        }
        if self.timed_out || self.context.cancel.is_cancelled() {
            return Err(StageError::Interrupted);
        }

        let mut artifacts = Vec::new();
        let mut synthesized = Vec::new();
        for (name, required) in wanted {
            let result = results.remove(name).ok_or(StageError::Interrupted)?;
            let content = match result.result {
                Ok(content) if !required && is_skip(&content) => continue,
                Ok(content) => content,
                Err(_) if !required => continue,
                Err(failure) => {
                    return Err(StageError::PhaseFailed {
                        phase: "synthesis",
                        agent: result.agent,
                        failure,
                    });
                }
            };
            let content = if name == plan.summary_artifact {
                append_agent_outcomes(
                    &content,
                    plan,
                    product,
                    &self.adjustments_made,
                    &self.truncated,
                )
            } else {
                content
            };
            synthesized.push(Event::ArtifactSynthesized {
                run_id: self.context.run_id.clone(),
                stage: plan.id.clone(),
                artifact: name.to_owned(),
                iteration: product.iterations,
                bytes: content.len(),
                hash: blake3::hash(content.as_bytes()).to_hex().to_string(),
                at_ms: now_ms(),
                content: Arc::from(content.as_str()),
            });
            artifacts.push(NamedText {
                name: name.to_owned(),
                content,
            });
        }
        // Together: one commit, and the sink stages the files side by side.
        self.sink.emit_all(&synthesized).await?;
        Ok(artifacts)
    }

    /// QA of `product`, whose outputs `outputs` are.
    async fn check(
        &mut self,
        product: &StageProduct,
        outputs: &PhaseOutputs,
    ) -> Result<(Verdict, String), StageError> {
        let inputs = PhaseInputs {
            failures: &product.failures,
            review: Some(&product.review),
            artifacts: &product.artifacts,
            ..outputs.inputs()
        };
        let call = self.phase_call(Phase::Qa, &self.plan.qa, None, &inputs)?;
        let output = self.expect_success(call, "QA").await?;
        let (mut verdict, mut feedback) = parse_verdict(&output);
        let problems = structural_problems(&self.plan.required, &product.artifacts);
        if !problems.is_empty() {
            verdict = Verdict::Rework;
            for problem in problems {
                feedback.push_str(&format!("\n- {problem} (stagegate's structural check)"));
            }
        }
        self.sink
            .emit(&Event::QaVerdict {
                run_id: self.context.run_id.clone(),
                stage: self.plan.id.clone(),
                iteration: product.iterations,
                verdict,
                feedback: feedback.clone(),
                at_ms: now_ms(),
            })
            .await?;
        Ok((verdict, feedback))
    }

    fn phase_call(
        &self,
        phase: Phase,
        agent: &AgentPlan,
        artifact: Option<&str>,
        inputs: &PhaseInputs<'_>,
    ) -> Result<Call, StageError> {
        let rendered = self.render(phase, agent, inputs)?;
        let (cache_key, cached) = self.look_up(phase, agent, artifact, &rendered);
        Ok(Call {
            agent: agent.clone(),
            phase,
            artifact: artifact.map(str::to_owned),
            prompt: Arc::from(rendered.text),
            prompt_joints: Arc::from(rendered.joints),
            unrendered: false,
            cuts: rendered.cuts.iter().map(ToString::to_string).collect(),
            materials: self.materials(phase, agent, inputs),
            cache_key,
            cached,
            first_attempt: self.first_attempt(phase, &agent.id, artifact),
            max_tries: None,
            use_fallback: true,
        })
    }

    async fn expect_success(
        &mut self,
        call: Call,
        phase: &'static str,
    ) -> Result<String, StageError> {
        let result = self.run_one(call).await?;
        if Instant::now() >= self.environment.stage_deadline {
            self.timed_out = true;
        }
        if self.timed_out || self.context.cancel.is_cancelled() {
            return Err(StageError::Interrupted);
        }
        result.result.map_err(|failure| StageError::PhaseFailed {
            phase,
            agent: result.agent,
            failure,
        })
    }

    /// The call's cache key, and its cached output when the memo has one.
    fn look_up(
        &self,
        phase: Phase,
        agent: &AgentPlan,
        artifact: Option<&str>,
        prompt: &RenderedPrompt,
    ) -> (String, Option<Arc<str>>) {
        // Without a memo nobody caches: skip hashing every prompt.
        let Some(memo) = self.memo else {
            return (String::new(), None);
        };
        let digest = prompt.digest.unwrap_or_else(|| prompt_digest(&prompt.text));
        let key = cache_key(
            &agent.backend.backend.fingerprint(),
            phase,
            &agent.id,
            artifact,
            &digest,
        );
        let cached = memo.lookup(&key);
        (key, cached)
    }

    fn materials(
        &self,
        phase: Phase,
        agent: &AgentPlan,
        inputs: &PhaseInputs<'_>,
    ) -> Arc<CallMaterials> {
        Arc::new(CallMaterials {
            stage_name: self.plan.name.clone(),
            role: agent.role.clone(),
            task: agent.task.clone(),
            required: self.plan.required.clone(),
            inputs: self.context.inputs.clone(),
            outputs: inputs
                .prepared
                .map(|prepared| prepared.views.clone())
                .unwrap_or_default(),
            failures: inputs.failures.to_vec(),
            review: inputs.review.map(str::to_owned),
            artifact: inputs.artifact.map(str::to_owned),
            artifacts: inputs.artifacts.to_vec(),
            feedback: inputs.feedback.map(str::to_owned),
            comments: inputs.comments.to_vec(),
            previous: inputs.previous.map(str::to_owned),
            guidance: self.guidance(phase),
            discovery: self.discovery_for(phase).map(str::to_owned),
        })
    }

    /// The adaptive rules' guidance for `phase`, and a warning about every earlier answer that
    /// was kept although cut at its token limit.
    fn guidance(&self, phase: Phase) -> Vec<String> {
        let guidance = &self.plan.adaptation.guidance;
        let mut lines = match phase {
            Phase::Agent => guidance.agent.clone(),
            Phase::Review => guidance.review.clone(),
            Phase::Synthesis => guidance.synthesis.clone(),
            Phase::Qa => guidance.qa.clone(),
        };
        for (earlier, agent, artifact) in &self.truncated {
            if *earlier >= phase {
                continue;
            }
            let what = match artifact {
                Some(artifact) => format!("The synthesis of {artifact} by {agent}"),
                None => format!("The {} output of {agent}", earlier.as_str()),
            };
            lines.push(format!(
                "{what} was cut off at its model's output-token limit and is incomplete: treat what it leaves out as unknown, not as settled, and say so."
            ));
        }
        lines
    }

    fn discovery_for(&self, phase: Phase) -> Option<&str> {
        (phase == Phase::Agent)
            .then_some(self.discovery.as_deref())
            .flatten()
    }

    /// Renders a role agent's prompt: in the agent phase, its context but for the agent is
    /// the same for every role agent of the stage, and converted once.
    fn render_role_agent(
        &self,
        phase: Phase,
        agent: &AgentPlan,
    ) -> Result<RenderedPrompt, StageError> {
        self.render_with(phase, agent, &PhaseInputs::default(), phase == Phase::Agent)
    }

    fn render(
        &self,
        phase: Phase,
        agent: &AgentPlan,
        inputs: &PhaseInputs<'_>,
    ) -> Result<RenderedPrompt, StageError> {
        self.render_with(phase, agent, inputs, false)
    }

    /// Renders `agent`'s prompt; `shared_by_role_agents` says that this is the agent phase and
    /// `inputs` are the role agents' (none), so that the context they share may be converted
    /// once and reused (the guidance of the agent phase never changes during a stage).
    fn render_with(
        &self,
        phase: Phase,
        agent: &AgentPlan,
        inputs: &PhaseInputs<'_>,
        shared_by_role_agents: bool,
    ) -> Result<RenderedPrompt, StageError> {
        let plan = self.plan;
        let guidance = self.guidance(phase);
        let context = PromptContext {
            stage: StageView {
                id: &plan.id,
                name: &plan.name,
                question: &plan.question,
                required: &plan.required,
                optional: &plan.optional,
            },
            agent: AgentView {
                id: &agent.id,
                role: &agent.role,
                task: &agent.task,
            },
            inputs: &self.context.inputs,
            outputs: inputs.outputs(),
            failures: inputs.failures,
            review: inputs.review,
            artifact: inputs.artifact,
            artifacts: inputs.artifacts,
            feedback: inputs.feedback,
            comments: inputs.comments,
            previous: inputs.previous,
            guidance: &guidance,
            discovery: self.discovery_for(phase),
            cuts: &[],
        };
        // One prompt goes to the backend and to its fallback: fit the tighter budget.
        let budget = crate::context_budget::tightest(
            std::iter::once(agent.backend.backend.kind()).chain(
                agent
                    .fallback
                    .iter()
                    .map(|fallback| fallback.backend.kind()),
            ),
        );
        let shared = shared_by_role_agents.then(|| {
            self.role_agent_context
                .get_or_init(|| SharedContext::new(&context, &self.template_inputs))
        });
        let rendered = self.context.prompts.render_within(
            phase,
            &agent.id,
            &context,
            budget,
            Some(
                inputs
                    .prepared
                    .map_or(&self.template_inputs, |prepared| &prepared.converted),
            ),
            shared,
        )?;
        Ok(rendered)
    }
}

/// What the live adaptive rules have seen of the parallel agents so far; each rule acts once.
struct LiveState {
    rules: LiveRules,
    limit: usize,
    calls: usize,
    failures: usize,
    attempts: usize,
    timeouts: usize,
    lowered: bool,
    raised: bool,
}

impl LiveState {
    fn new(rules: LiveRules, limit: usize) -> Self {
        LiveState {
            rules,
            limit,
            calls: 0,
            failures: 0,
            attempts: 0,
            timeouts: 0,
            lowered: false,
            raised: false,
        }
    }

    /// More failures than the threshold, with agents still waiting: one fewer at once.
    fn lower_concurrency(&mut self, limit: &mut usize, agents_waiting: bool) -> Option<Adjustment> {
        let rate = self.failures as f64 / self.calls.max(1) as f64;
        if self.lowered || !agents_waiting || self.limit <= 1 || rate <= self.rules.failure_rate {
            return None;
        }
        self.lowered = true;
        *limit = self.limit - 1;
        Some(Adjustment {
            setting: "concurrency".into(),
            from: self.limit.to_string(),
            to: (self.limit - 1).to_string(),
            reason: format!(
                "failure rate {:.2} > {:.2} ({} of {} agents failed)",
                rate, self.rules.failure_rate, self.failures, self.calls
            ),
        })
    }

    /// More timeouts than the threshold: the agents not started yet get 50 % longer.
    fn raise_timeouts(&mut self, calls: &mut VecDeque<Call>) -> Option<Adjustment> {
        let rate = self.timeouts as f64 / self.attempts.max(1) as f64;
        if self.raised || calls.is_empty() || rate <= self.rules.timeout_rate {
            return None;
        }
        self.raised = true;
        let before = calls.front().map(|call| call.agent.timeout)?;
        for call in calls.iter_mut() {
            call.agent.timeout = call.agent.timeout.mul_f64(1.5);
        }
        Some(Adjustment {
            setting: "remaining timeouts".into(),
            from: humanize(before),
            to: humanize(before.mul_f64(1.5)),
            reason: format!(
                "timeout rate {:.2} > {:.2} ({} of {} attempts timed out)",
                rate, self.rules.timeout_rate, self.timeouts, self.attempts
            ),
        })
    }
}

/// The earlier phases' results a prompt may include.
#[derive(Default)]
struct PhaseInputs<'a> {
    /// The role agents' outputs, shared and converted; none before the review.
    prepared: Option<&'a PhaseOutputs>,
    failures: &'a [AgentFailure],
    review: Option<&'a str>,
    artifact: Option<&'a str>,
    artifacts: &'a [NamedText],
    feedback: Option<&'a str>,
    comments: &'a [LineComment],
    previous: Option<&'a str>,
}

impl PhaseInputs<'_> {
    fn outputs(&self) -> &[AgentOutputView] {
        self.prepared.map_or(&[], |prepared| &prepared.views)
    }
}

/// The role agents' outputs as the review, every synthesis and QA of a stage take them: one
/// copy that every call's materials share, converted for templates once (with the stage's
/// inputs). At 10,000 agents each call had copied and converted them all again.
struct PhaseOutputs {
    views: Arc<[AgentOutputView]>,
    converted: TemplateInputs,
}

impl PhaseOutputs {
    fn new(outputs: &[AgentOutputView], inputs: &TemplateInputs) -> Self {
        PhaseOutputs {
            views: Arc::from(outputs),
            converted: inputs.with_outputs(outputs),
        }
    }

    /// The inputs of a call that reads these outputs.
    fn inputs(&self) -> PhaseInputs<'_> {
        PhaseInputs {
            prepared: Some(self),
            ..PhaseInputs::default()
        }
    }
}

/// An optional artifact the synthesizer chose not to write.
fn is_skip(content: &str) -> bool {
    let trimmed = content.trim();
    trimmed.is_empty() || trimmed.eq_ignore_ascii_case("SKIP")
}

/// The engine's own section in the stage's summary artifact: every agent's outcome, so that a
/// partial failure is visible to the person at the gate.
fn append_agent_outcomes(
    content: &str,
    plan: &StagePlan,
    product: &StageProduct,
    adjustments: &[Adjustment],
    truncated: &BTreeSet<(Phase, String, Option<String>)>,
) -> String {
    let mut section =
        String::from("\n\n## Agent outcomes\n\n| agent | role | outcome |\n|---|---|---|\n");
    for agent in &plan.agents {
        let outcome = match product
            .failures
            .iter()
            .find(|failure| failure.agent == agent.id)
        {
            Some(failure) => format!("failed: {}", failure.reason.replace('|', "/")),
            None if truncated.contains(&(Phase::Agent, agent.id.clone(), None)) => {
                "succeeded, but its answer was cut at the model's output-token limit (incomplete)"
                    .to_owned()
            }
            None => "succeeded".to_owned(),
        };
        section.push_str(&format!(
            "| {} | {} | {} |\n",
            agent.id, agent.role, outcome
        ));
    }
    let total = plan.agents.len();
    let failed = product.failures.len();
    if failed > 0 {
        section.push_str(&format!(
            "\nPartial failure: {failed} of {total} agents failed; the quorum ({} of {total}) held and the review was told which.\n",
            crate::quorum::needed_successes(total, plan.min_success_ratio)
        ));
    }
    if !adjustments.is_empty() {
        section.push_str("\n## Adaptive adjustments\n\n");
        for adjustment in adjustments {
            section.push_str(&format!("- {adjustment}\n"));
        }
    }
    format!("{}{}", content.trim_end(), section)
}

/// Milliseconds of a duration, for callers that time stages.
pub fn duration_ms(duration: Duration) -> u64 {
    millis(duration)
}

/// `first` (a call that just ended, if any) and every other call in `running` that has ended
/// by now, without waiting for one.
fn ended_calls<F: std::future::Future>(
    running: &mut FuturesUnordered<F>,
    first: Option<F::Output>,
) -> Vec<F::Output> {
    let mut ended: Vec<F::Output> = first.into_iter().collect();
    while let Some(Some(joined)) = running.next().now_or_never() {
        ended.push(joined);
    }
    ended
}
