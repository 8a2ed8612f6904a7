//! Runs stages in order, each up to its gate, and the gate itself; wires the engine's events to
//! the recorder, the display and the `--json` printer; maps how it ended to an exit code.

use std::collections::HashMap;
use std::sync::Arc;

use stagegate_analysts::BuiltinAgent;
use stagegate_analysts::scores::Scores;
use stagegate_engine::adaptive::{Resources, adapt};
use stagegate_engine::backend::Backend;
use stagegate_engine::event::{Event, EventSink, StageEnd, now_ms};
use stagegate_engine::prompt::{NamedText, Prompts};
use stagegate_engine::stage::{
    StageContext, StageError, StageProduct, duration_ms, rework, run_stage_memoized,
};
use stagegate_engine::stage_plan::{BackendFactory, BackendRegistry, StagePlan, plan_stage};
use stagegate_run::{GateStatus, ResumePoint, RunAfter, Verb, resume_point};
use stagegate_settings::BackendSettings;
use stagegate_store::{NewRun, RunRecord, RunState};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::editor::edit_files;
use crate::effects;
use crate::error::{AppError, Exit};
use crate::event_log::EventLog;
use crate::gate_decision::{self, Ask, Decided, Place, artifact_diff};
use crate::history::load_product;
use crate::json_lines::JsonLines;
use crate::line_comments::CommentTarget;
use crate::progress::{Progress, ProgressMode};
use crate::publication_preview;
use crate::recorder::Recorder;
use crate::run_lock::lock_stage;
use crate::scores::{input_scores, score_inputs, scored_event};
use crate::session::Session;
use crate::settings_summary::settings_summary;
use crate::stage_inputs::check_stage_inputs;
use crate::subscribers::Subscribers;
use crate::terminal_gate::{self, Decision, GateArtifact, GateView};
use crate::workspace::Feature;

/// How a run talks to the person.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub no_input: bool,
    pub json: bool,
    /// Ignore the cache (a run still reuses its own finished work when resumed).
    pub refresh: bool,
    /// Structured logs of every event on stderr (`--log-format`).
    pub logs: bool,
}

/// `stagegate run STAGE...`
pub async fn start_run(
    session: &Session,
    stage_names: &[String],
    options: RunOptions,
) -> Result<Exit, AppError> {
    let stages = resolve_stage_ids(session, stage_names)?;
    // Summarised beside the checks that come before the run exists: with thousands of agents
    // it is milliseconds of formatting every setting's origin.
    let summary = {
        let settings = Arc::clone(&session.settings);
        let stages = stages.clone();
        std::thread::spawn(move || settings_summary(&settings, &stages))
    };
    if session.settings.cluster.is_some() {
        crate::cluster::ensure_built()?;
    }
    let plans = plan_stages(session, &stages)?;
    let feature = session.feature()?;
    let prompts = Arc::new(Prompts::load(Some(&session.repo_root))?);
    // The first stage's inputs are checked before the run exists, so that a refused run leaves
    // no trace in the state database.
    let first = session
        .settings
        .stage(&stages[0])
        .ok_or_else(|| AppError::usage(format!("unknown stage {}", stages[0])))?;
    let first_inputs =
        check_stage_inputs(&session.store, &session.settings, &feature, first).await?;
    let run_id = new_run_id();
    lock_stage(session, &feature, &stages[0], &run_id).await?;

    let run = session
        .store
        .create_run(&NewRun {
            id: run_id,
            feature_dir: feature.key.clone(),
            stages: stages.clone(),
            settings_json: summary
                .join()
                .map_err(|_| AppError::internal("summarising the settings panicked"))?,
            created_at_ms: now_ms(),
        })
        .await?;
    if let Some(cluster) = &session.settings.cluster {
        crate::cluster::ClusterMarker::from_settings(cluster)
            .write(session.store.run_dir(&run.id).path())?;
    }
    session.store.prune_cache(now_ms()).await?;
    let mut sink = subscribers(session, &run, options);
    emit(
        &mut sink,
        Event::RunStarted {
            run_id: run.id.clone(),
            feature_dir: feature.key.clone(),
            stages: stages.clone(),
            at_ms: now_ms(),
        },
    )
    .await?;
    sink.progress
        .line(&format!("run {} on {}", run.id, feature.key));
    let runner = Runner {
        session,
        run,
        feature,
        prompts,
        options,
        cancel: interrupt_token(),
    };
    // The first stage is locked and its inputs read: it starts from them.
    let outcome = runner
        .continue_from(&plans, 0, Some(first_inputs), &mut sink)
        .await;
    save_view(session, &runner.run.id, &mut sink, outcome).await
}

/// `stagegate resume RUN`: continues after the last approved gate; asks again at a pending one.
pub async fn resume_run(
    session: &Session,
    run_id: &str,
    options: RunOptions,
) -> Result<Exit, AppError> {
    let run = find_run(session, run_id).await?;
    let plans = plan_stages(session, &run.stages)?;
    let feature = session.feature_of_run(&run.feature_dir);
    let prompts = Arc::new(Prompts::load(Some(&session.repo_root))?);
    let mut sink = subscribers(session, &run, options);
    sink.follow_view(&session.store, &run.id).await?;
    let runner = Runner {
        session,
        run: run.clone(),
        feature,
        prompts,
        options,
        cancel: interrupt_token(),
    };
    let outcome: Result<Exit, AppError> = async {
        let mut gates = Vec::with_capacity(plans.len());
        for plan in &plans {
            let gate = session.store.gate(&run.id, &plan.id).await?;
            gates.push(gate.map(|gate| GateStatus::from(gate.state)));
        }
        match resume_point(&gates) {
            ResumePoint::RunFrom(index) => {
                runner.continue_from(&plans, index, None, &mut sink).await
            }
            ResumePoint::AskAt(index) => {
                let plan = &plans[index];
                let product = load_product(&session.store, &run.id, plan).await?;
                match runner.gate(plan, product, &mut sink, false).await? {
                    GateEnd::Approved => {
                        runner
                            .continue_from(&plans, index + 1, None, &mut sink)
                            .await
                    }
                    other => runner.end_at_gate(plan, other, &mut sink).await,
                }
            }
            ResumePoint::RejectedAt(index) => {
                let stage = &plans[index].id;
                eprintln!(
                    "run {} was rejected at the {stage} gate; nothing more to do\nhint: start a new run with `stagegate run {stage}`",
                    run.id
                );
                Ok(Exit::Rejected)
            }
            ResumePoint::SupersededAt(index) => Err(AppError::AlreadyDecided {
                status: Some(GateStatus::Superseded),
                message: format!(
                    "run {}'s {} gate was superseded by a newer run of the same stage; nothing more to do\nhint: `stagegate status` shows the newer run",
                    run.id, plans[index].id
                ),
            }),
            ResumePoint::Complete => runner.finish(&mut sink).await,
        }
    }
    .await;
    save_view(session, &run.id, &mut sink, outcome).await
}

/// How a gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateEnd {
    Approved,
    Rejected,
    Waiting,
}

struct Runner<'a> {
    session: &'a Session,
    run: RunRecord,
    feature: Feature,
    prompts: Arc<Prompts>,
    options: RunOptions,
    cancel: CancellationToken,
}

impl Runner<'_> {
    /// Runs the stages from `from` on. `checked`: the inputs of the first of them, already
    /// read (and the stage locked) by the caller.
    async fn continue_from(
        &self,
        plans: &[StagePlan],
        from: usize,
        mut checked: Option<Vec<NamedText>>,
        sink: &mut Subscribers,
    ) -> Result<Exit, AppError> {
        gate_decision::prefetch_identity();
        for plan in &plans[from..] {
            let inputs = checked.take();
            if inputs.is_none() {
                lock_stage(self.session, &self.feature, &plan.id, &self.run.id).await?;
            }
            let step = self.run_one_stage(plan, inputs, sink).await;
            self.session
                .store
                .release_lock(&self.feature.key, &plan.id, &self.run.id)
                .await?;
            if let Some(exit) = step? {
                return Ok(exit);
            }
        }
        self.finish(sink).await
    }

    /// Runs one stage through its gate: `None` to go on with the next stage, or how the run
    /// ends here.
    async fn run_one_stage(
        &self,
        plan: &StagePlan,
        checked: Option<Vec<NamedText>>,
        sink: &mut Subscribers,
    ) -> Result<Option<Exit>, AppError> {
        let store = &self.session.store;
        let stage_settings = self
            .session
            .settings
            .stage(&plan.id)
            .ok_or_else(|| AppError::usage(format!("unknown stage {}", plan.id)))?;
        let started = Instant::now();
        let checked = match checked {
            Some(inputs) => Ok(inputs),
            None => {
                check_stage_inputs(store, &self.session.settings, &self.feature, stage_settings)
                    .await
            }
        };
        let inputs = match checked {
            Ok(inputs) => inputs,
            Err(error) => {
                self.stage_finished(
                    plan,
                    StageEnd::Failed,
                    started,
                    Some(error.to_string()),
                    sink,
                )
                .await?;
                store
                    .update_run(&self.run.id, RunState::Failed, Some(&plan.id))
                    .await?;
                return Err(error);
            }
        };
        store
            .update_run(&self.run.id, RunState::Running, Some(&plan.id))
            .await?;
        let inputs = with_project_context(&self.session.repo_root, plan, inputs);
        let scores = score_inputs(&inputs);
        emit(sink, scored_event(&self.run.id, &plan.id, &scores)).await?;
        let adapted = self.adapted(plan, &scores);
        let plan = &adapted;
        let context = self.context(inputs);
        let product = match self.produce(plan, &context, sink).await? {
            Ok(product) => product,
            Err(error) => return self.stage_error(plan, error, started, sink).await.map(Some),
        };
        match self.gate(plan, product, sink, true).await? {
            GateEnd::Approved => {
                self.stage_finished(plan, StageEnd::Approved, started, None, sink)
                    .await?;
            }
            other => return self.end_at_gate(plan, other, sink).await.map(Some),
        }
        Ok(None)
    }

    /// Runs the stage to its gate: here, or on the run's Temporal cluster.
    async fn produce(
        &self,
        plan: &StagePlan,
        context: &StageContext,
        sink: &mut Subscribers,
    ) -> Result<Result<StageProduct, StageError>, AppError> {
        let run_dir = self.session.store.run_dir(&self.run.id);
        match crate::cluster::ClusterMarker::read(run_dir.path())? {
            None => {
                let memo = self.memo().await?;
                Ok(run_stage_memoized(plan, context, sink, Some(&memo)).await)
            }
            Some(marker) => self.produce_on_cluster(&marker, plan, context, sink).await,
        }
    }

    #[cfg(feature = "cluster")]
    async fn produce_on_cluster(
        &self,
        marker: &crate::cluster::ClusterMarker,
        plan: &StagePlan,
        context: &StageContext,
        sink: &mut Subscribers,
    ) -> Result<Result<StageProduct, StageError>, AppError> {
        sink.progress.line(&format!(
            "stage {} of run {} goes to the Temporal cluster at {}",
            plan.id, self.run.id, marker.temporal
        ));
        let config_file = self.session.config_file();
        let run_dir = self.session.store.run_dir(&self.run.id);
        let stage = crate::cluster::RemoteStage {
            marker,
            run_dir: run_dir.path(),
            repo_root: &self.session.repo_root,
            config_file: config_file.as_deref(),
            settings: &self.session.settings,
            run_id: &self.run.id,
            stage: &plan.id,
            feature_key: &self.feature.key,
            inputs: &context.inputs,
        };
        crate::cluster::produce_remotely(&stage, sink).await
    }

    #[cfg(not(feature = "cluster"))]
    async fn produce_on_cluster(
        &self,
        _marker: &crate::cluster::ClusterMarker,
        _plan: &StagePlan,
        _context: &StageContext,
        _sink: &mut Subscribers,
    ) -> Result<Result<StageProduct, StageError>, AppError> {
        Err(crate::cluster::not_built())
    }

    async fn finish(&self, sink: &mut Subscribers) -> Result<Exit, AppError> {
        self.session
            .store
            .update_run(&self.run.id, RunState::Completed, None)
            .await?;
        emit(
            sink,
            Event::RunFinished {
                run_id: self.run.id.clone(),
                end: StageEnd::Approved,
                at_ms: now_ms(),
            },
        )
        .await?;
        sink.progress
            .line(&format!("run {}: every gate approved", self.run.id));
        Ok(Exit::Done)
    }

    async fn end_at_gate(
        &self,
        plan: &StagePlan,
        end: GateEnd,
        sink: &mut Subscribers,
    ) -> Result<Exit, AppError> {
        let store = &self.session.store;
        match end {
            GateEnd::Approved => Ok(Exit::Done),
            GateEnd::Rejected => {
                store
                    .update_run(&self.run.id, RunState::Rejected, Some(&plan.id))
                    .await?;
                self.stage_finished(plan, StageEnd::Rejected, Instant::now(), None, sink)
                    .await?;
                emit(
                    sink,
                    Event::RunFinished {
                        run_id: self.run.id.clone(),
                        end: StageEnd::Rejected,
                        at_ms: now_ms(),
                    },
                )
                .await?;
                Ok(Exit::Rejected)
            }
            GateEnd::Waiting => {
                store
                    .update_run(&self.run.id, RunState::AwaitingDecision, Some(&plan.id))
                    .await?;
                let commands = decide_commands(&self.run.id);
                let staged = store.run_dir(&self.run.id).staged_artifacts(&plan.id)?;
                let changes = publication_preview::preview(&staged, &self.feature.dir);
                emit(
                    sink,
                    Event::GateWaiting {
                        run_id: self.run.id.clone(),
                        stage: plan.id.clone(),
                        commands: commands.clone(),
                        creates: publication_preview::named(&changes, |kind| {
                            kind == publication_preview::ChangeKind::Create
                        }),
                        replaces: publication_preview::named(&changes, |kind| {
                            matches!(kind, publication_preview::ChangeKind::Replace { .. })
                        }),
                        at_ms: now_ms(),
                    },
                )
                .await?;
                if !self.options.json {
                    if let Some(changes) = publication_preview::describe(&changes) {
                        eprintln!("\n{}", changes.replace("RUN", &self.run.id));
                    }
                    eprintln!(
                        "\n{}\nrun {} is waiting at the {} gate; staged artifacts: {}\ndecide with:\n{}",
                        plan.question,
                        self.run.id,
                        plan.id,
                        self.session
                            .relative(&store.run_dir(&self.run.id).staged_dir(&plan.id))
                            .display(),
                        commands
                            .iter()
                            .map(|command| format!("  {command}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                Ok(Exit::AwaitingDecision)
            }
        }
    }

    async fn stage_error(
        &self,
        plan: &StagePlan,
        error: StageError,
        started: Instant,
        sink: &mut Subscribers,
    ) -> Result<Exit, AppError> {
        let store = &self.session.store;
        let (end, state) = match error {
            StageError::Interrupted => (StageEnd::Interrupted, RunState::Interrupted),
            _ => (StageEnd::Failed, RunState::Failed),
        };
        // A sink error means the store could not record: try to say so, but do not mask it.
        let _ = self
            .stage_finished(plan, end, started, Some(error.to_string()), sink)
            .await;
        store
            .update_run(&self.run.id, state, Some(&plan.id))
            .await?;
        match error {
            StageError::Interrupted => Err(AppError::internal(format!(
                "interrupted; the run stopped cleanly\nhint: continue it with `stagegate resume {}`",
                self.run.id
            ))),
            StageError::Prompt(error) => Err(error.into()),
            StageError::Sink(error) => Err(AppError::internal(error.to_string())),
            StageError::QuorumNotMet { ref failures, .. } => {
                let details = failures
                    .iter()
                    .map(|failure| format!("  {}: {}", failure.agent, failure.reason))
                    .collect::<Vec<_>>()
                    .join("\n");
                Err(AppError::StageFailed {
                    stage: plan.id.clone(),
                    message: format!(
                        "{error}\n{details}\nhint: every attempt's prompt, output and stderr are kept: `stagegate show {}` lists them",
                        self.run.id
                    ),
                })
            }
            other => Err(AppError::StageFailed {
                stage: plan.id.clone(),
                message: other.to_string(),
            }),
        }
    }

    async fn stage_finished(
        &self,
        plan: &StagePlan,
        end: StageEnd,
        started: Instant,
        reason: Option<String>,
        sink: &mut Subscribers,
    ) -> Result<(), AppError> {
        emit(
            sink,
            Event::StageFinished {
                run_id: self.run.id.clone(),
                stage: plan.id.clone(),
                end,
                duration_ms: duration_ms(started.elapsed()),
                reason,
                at_ms: now_ms(),
            },
        )
        .await
    }

    /// The plan with the adaptive rules applied to these inputs and this machine.
    fn adapted(&self, plan: &StagePlan, scores: &Scores) -> StagePlan {
        let mut plan = plan.clone();
        adapt(
            &mut plan,
            &self.session.settings.adaptive,
            Some(input_scores(scores)),
            Resources::detect(),
        );
        plan
    }

    /// Earlier answers to reuse: the unexpired cache (unless `--refresh`) and everything this
    /// run already finished (so a resumed run redoes nothing).
    async fn memo(&self) -> Result<HashMap<String, Arc<str>>, AppError> {
        let store = &self.session.store;
        // With `--refresh` only this run's own entries count: reading the whole cache to drop
        // it was most of what a wide stage spent before its first agent.
        let entries = if self.options.refresh {
            store.cache_entries_of_run(&self.run.id).await?
        } else {
            store.cache_entries(now_ms(), Some(&self.run.id)).await?
        };
        let mut memo: HashMap<String, Arc<str>> = entries
            .into_iter()
            .map(|entry| (entry.key, Arc::from(entry.output)))
            .collect();
        // The run's own answers, whatever the cache kept: a resumed run calls nothing twice.
        for (key, output) in self.session.store.answers(&self.run.id).await? {
            memo.insert(key, Arc::from(output));
        }
        Ok(memo)
    }

    fn context(&self, inputs: Vec<NamedText>) -> StageContext {
        StageContext {
            run_id: self.run.id.clone(),
            repo_root: self.session.repo_root.clone(),
            feature_dir: self.feature.dir.clone(),
            inputs: Arc::new(inputs),
            prompts: self.prompts.clone(),
            cancel: self.cancel.clone(),
        }
    }

    /// Puts the product before the person until they approve, reject or stop. Every decision
    /// goes through [`gate_decision::decide`], so a decision taken meanwhile elsewhere (another
    /// terminal, a command, the dashboard) wins or loses cleanly against this one.
    async fn gate(
        &self,
        plan: &StagePlan,
        mut product: StageProduct,
        sink: &mut Subscribers,
        newly_requested: bool,
    ) -> Result<GateEnd, AppError> {
        if newly_requested {
            self.request_gate(plan, &product, sink).await?;
            self.supersede_older_gates(plan).await?;
        }
        let mut round = self.current_round(plan).await?;
        loop {
            if !terminal_gate::can_prompt(self.options.no_input) {
                return Ok(GateEnd::Waiting);
            }
            sink.progress.clear();
            let staged = self
                .session
                .store
                .run_dir(&self.run.id)
                .staged_artifacts(&plan.id)?;
            let changes = publication_preview::preview(&staged, &self.feature.dir);
            let view = GateView {
                run_id: &self.run.id,
                stage: &plan.id,
                question: &plan.question,
                verdict: product.verdict,
                qa_feedback: &product.qa_feedback,
                artifacts: product
                    .artifacts
                    .iter()
                    .map(|artifact| GateArtifact {
                        name: artifact.name.clone(),
                        content: artifact.content.clone(),
                        published: std::fs::read(self.feature.dir.join(&artifact.name))
                            .ok()
                            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
                    })
                    .collect(),
                publication: publication_preview::describe(&changes),
            };
            let seen = Ask {
                seen_round: Some(round),
                ..Ask::default()
            };
            let decided = match terminal_gate::ask(&view) {
                Decision::Approve => self.decide(plan, Verb::Approve, seen, sink).await,
                Decision::Reject { reason } => {
                    let ask = Ask {
                        reason: Some(reason),
                        ..seen
                    };
                    self.decide(plan, Verb::Reject, ask, sink).await
                }
                Decision::Edit => {
                    let files = self
                        .session
                        .store
                        .run_dir(&self.run.id)
                        .begin_next_round(&plan.id)?;
                    let diff = edit_files(&files)?;
                    if diff.is_empty() {
                        eprintln!("no changes");
                        continue;
                    }
                    let ask = Ask {
                        diff: Some(diff),
                        ..seen
                    };
                    self.decide(plan, Verb::Modify, ask, sink).await
                }
                Decision::Rework { feedback } => {
                    self.rework(plan, &product, &feedback, Vec::new(), round, sink)
                        .await
                }
                Decision::Stop => return Ok(GateEnd::Waiting),
            };
            match decided {
                Ok(decided) => match decided.transition.run {
                    RunAfter::Completed | RunAfter::Continues => {
                        sink.progress.line(&format!(
                            "approved: published {} into {}",
                            decided
                                .published
                                .iter()
                                .map(|file| file.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            self.feature.key
                        ));
                        return Ok(GateEnd::Approved);
                    }
                    RunAfter::Rejected | RunAfter::Superseded => return Ok(GateEnd::Rejected),
                    RunAfter::AwaitsDecision => round = decided.transition.gate.round,
                },
                // Someone else decided first: their decision stands, and this run follows it.
                Err(AppError::AlreadyDecided { status, message }) => {
                    eprintln!("{}", crate::terminal_text::neutralise(&message));
                    match status {
                        Some(GateStatus::Rejected) => return Ok(GateEnd::Rejected),
                        Some(GateStatus::Approved) => {
                            effects::finish_publication(
                                &self.session.store,
                                &self.feature,
                                &self.run.id,
                                &plan.id,
                            )
                            .await?;
                            return Ok(GateEnd::Approved);
                        }
                        _ => round = self.current_round(plan).await?,
                    }
                }
                Err(other) => return Err(other),
            }
            product = load_product(&self.session.store, &self.run.id, plan).await?;
        }
    }

    /// One pending gate per feature and stage: this run's gate just opened, so an older run's
    /// gate of the same stage on the same feature, still pending, is closed as superseded (and
    /// nothing of it published). Someone deciding it at this very moment wins or loses cleanly.
    async fn supersede_older_gates(&self, plan: &StagePlan) -> Result<(), AppError> {
        gate_decision::supersede_pending(
            &self.session.store,
            &self.session.settings,
            &self.feature,
            &plan.id,
            Some(&self.run.id),
            &format!("superseded by run {}", self.run.id),
        )
        .await
    }

    /// The round of staged artifacts the stage's gate shows now.
    async fn current_round(&self, plan: &StagePlan) -> Result<u32, AppError> {
        Ok(self
            .session
            .store
            .gate(&self.run.id, &plan.id)
            .await?
            .map_or(1, |gate| gate.round))
    }

    /// Decides this run's gate of `plan` and shows the recorded decision live.
    async fn decide(
        &self,
        plan: &StagePlan,
        verb: Verb,
        ask: Ask,
        sink: &mut Subscribers,
    ) -> Result<Decided, AppError> {
        let place = Place {
            store: &self.session.store,
            settings: &self.session.settings,
            run: &self.run,
            feature: &self.feature,
            stage: &plan.id,
        };
        let decided = gate_decision::decide(&place, verb, ask).await?;
        sink.announce(&decided.event)
            .await
            .map_err(|error| AppError::internal(error.to_string()))?;
        Ok(decided)
    }

    async fn request_gate(
        &self,
        plan: &StagePlan,
        product: &StageProduct,
        sink: &mut Subscribers,
    ) -> Result<(), AppError> {
        emit(
            sink,
            Event::GateRequested {
                run_id: self.run.id.clone(),
                stage: plan.id.clone(),
                question: plan.question.clone(),
                artifacts: product
                    .artifacts
                    .iter()
                    .map(|artifact| artifact.name.clone())
                    .collect(),
                at_ms: now_ms(),
            },
        )
        .await
    }

    /// Sends the artifacts back through synthesis and QA with `feedback` and line `comments`
    /// (recorded with the modification), into the next round
    /// prepared beside the staged one; the modification is recorded (and the round switched)
    /// only once QA has seen all of it, and the gate asks again.
    async fn rework(
        &self,
        plan: &StagePlan,
        product: &StageProduct,
        feedback: &str,
        comments: Vec<stagegate_store::LineComment>,
        round: u32,
        sink: &mut Subscribers,
    ) -> Result<Decided, AppError> {
        let inputs = check_stage_inputs(
            &self.session.store,
            &self.session.settings,
            &self.feature,
            self.session
                .settings
                .stage(&plan.id)
                .ok_or_else(|| AppError::usage(format!("unknown stage {}", plan.id)))?,
        )
        .await?;
        let inputs = with_project_context(&self.session.repo_root, plan, inputs);
        let adapted = self.adapted(plan, &score_inputs(&inputs));
        let context = self.context(inputs);
        self.session
            .store
            .run_dir(&self.run.id)
            .begin_next_round(&plan.id)?;
        sink.recorder
            .stage_next_round(true)
            .map_err(AppError::internal)?;
        let engine_comments: Vec<_> = comments
            .iter()
            .map(crate::line_comments::engine_comment)
            .collect();
        let reworked = rework(
            &adapted,
            &context,
            sink,
            product,
            feedback,
            &engine_comments,
        )
        .await;
        let staged = sink.recorder.stage_next_round(false);
        let reworked = reworked.map_err(|error| AppError::StageFailed {
            stage: plan.id.clone(),
            message: format!("the rework failed: {error}"),
        })?;
        staged.map_err(AppError::internal)?;
        let mut diff = String::new();
        for artifact in &reworked.artifacts {
            let before = product
                .artifacts
                .iter()
                .find(|old| old.name == artifact.name)
                .map(|old| old.content.as_str())
                .unwrap_or_default();
            diff.push_str(&artifact_diff(&artifact.name, before, &artifact.content));
        }
        let ask = Ask {
            seen_round: Some(round),
            note: (!feedback.trim().is_empty()).then(|| feedback.to_owned()),
            diff: Some(diff),
            comments,
            ..Ask::default()
        };
        let decided = self.decide(plan, Verb::Modify, ask, sink).await?;
        self.request_gate(plan, &reworked, sink).await?;
        Ok(decided)
    }
}

/// `stagegate modify RUN --feedback TEXT --comment FILE:LINES TEXT`, or in $EDITOR without
/// feedback or comments.
///
/// `seen_round` is the round of staged artifacts the person was shown (the dashboard's page);
/// `None` modifies whatever is staged now. Comments name lines of that round.
pub async fn modify_gate(
    session: &Session,
    run_id: Option<&str>,
    feedback: Option<String>,
    comments: &[(CommentTarget, String)],
    seen_round: Option<u32>,
    options: RunOptions,
) -> Result<Exit, AppError> {
    let (run, stage) = crate::pending::pending_gate(session, run_id).await?;
    let plans = plan_stages(session, std::slice::from_ref(&stage))?;
    let plan = &plans[0];
    let mut sink = subscribers(session, &run, options);
    sink.follow_view(&session.store, &run.id).await?;
    let runner = Runner {
        session,
        feature: session.feature_of_run(&run.feature_dir),
        run: run.clone(),
        prompts: Arc::new(Prompts::load(Some(&session.repo_root))?),
        options,
        cancel: interrupt_token(),
    };
    let outcome: Result<Exit, AppError> = async {
        let product = load_product(&session.store, &run.id, plan).await?;
        let round = match seen_round {
            Some(round) => round,
            None => runner.current_round(plan).await?,
        };
        let run_dir = session.store.run_dir(&run.id);
        let comments = crate::line_comments::resolve(comments, &run_dir.staged_artifacts(&stage)?)?;
        match feedback {
            Some(feedback) => {
                runner
                    .rework(plan, &product, &feedback, comments, round, &mut sink)
                    .await?;
            }
            None if !comments.is_empty() => {
                runner
                    .rework(plan, &product, "", comments, round, &mut sink)
                    .await?;
            }
            None => {
                let files = session.store.run_dir(&run.id).begin_next_round(&stage)?;
                let diff = edit_files(&files)?;
                if diff.is_empty() {
                    eprintln!("no changes; nothing recorded");
                } else {
                    let ask = Ask {
                        seen_round: Some(round),
                        diff: Some(diff),
                        ..Ask::default()
                    };
                    runner.decide(plan, Verb::Modify, ask, &mut sink).await?;
                }
            }
        }
        let product = load_product(&session.store, &run.id, plan).await?;
        let end = runner.gate(plan, product, &mut sink, false).await?;
        match end {
            GateEnd::Approved => {
                eprintln!("hint: continue the run with `stagegate resume {}`", run.id);
                Ok(Exit::Done)
            }
            other => runner.end_at_gate(plan, other, &mut sink).await,
        }
    }
    .await;
    save_view(session, &run.id, &mut sink, outcome).await
}

/// Saves the run's view for `status` ([`Subscribers::save_view`]) as a command that ran the
/// run ends, whatever its outcome, and passes the outcome on.
///
/// A snapshot only saves `status` time: a failure to save one is a warning after an outcome
/// that succeeded, and says nothing after one that failed (the failure is the news, and
/// often the same one: a full disk).
async fn save_view(
    session: &Session,
    run_id: &str,
    sink: &mut Subscribers,
    outcome: Result<Exit, AppError>,
) -> Result<Exit, AppError> {
    let saved = sink.save_view(&session.store, run_id).await;
    if let (Ok(_), Err(error)) = (&outcome, saved) {
        eprintln!(
            "warning: run {run_id}'s view was not saved for `stagegate status`, which will read the run's whole log instead: {error}"
        );
    }
    outcome
}

fn subscribers(session: &Session, run: &RunRecord, options: RunOptions) -> Subscribers {
    #[allow(unused_mut, reason = "only the otel build sets the exporter")]
    let mut subscribers = Subscribers::new(
        Recorder::new(session.store.clone(), &run.id).caching(session.settings.cache.clone()),
        Progress::new(ProgressMode::detect(options.json || options.logs)),
        options.json.then_some(JsonLines),
        options.logs.then_some(EventLog),
    );
    #[cfg(feature = "otel")]
    {
        subscribers.otel = crate::otel_export::OtelExport::from_env(&run.id);
    }
    subscribers
}

async fn emit<S: EventSink>(sink: &mut S, event: Event) -> Result<(), AppError> {
    sink.emit(&event)
        .await
        .map_err(|error| AppError::internal(error.to_string()))
}

pub async fn find_run(session: &Session, run_id: &str) -> Result<RunRecord, AppError> {
    session
        .store
        .run(run_id)
        .await?
        .ok_or_else(|| no_such_run(session, run_id))
}

/// [`find_run`], with the settings the run ran with (for the report, which shows them).
pub async fn find_run_with_settings(
    session: &Session,
    run_id: &str,
) -> Result<RunRecord, AppError> {
    session
        .store
        .run_with_settings(run_id)
        .await?
        .ok_or_else(|| no_such_run(session, run_id))
}

fn no_such_run(session: &Session, run_id: &str) -> AppError {
    AppError::usage(format!(
        "no run {run_id} in {}\nhint: `stagegate status` lists the runs",
        session.relative(session.store.state_dir()).display()
    ))
}

/// `all` → the pipeline; aliases → ids; unknown names → a usage error listing the stages.
pub fn resolve_stage_ids(session: &Session, names: &[String]) -> Result<Vec<String>, AppError> {
    let settings = &session.settings;
    let mut stages = Vec::new();
    for name in names {
        if name == "all" {
            stages.extend(settings.pipeline.iter().cloned());
            continue;
        }
        let stage = settings.stage(name).ok_or_else(|| {
            AppError::usage(format!(
                "unknown stage `{name}`\nhint: the stages are {} (or `all`)",
                settings
                    .stages
                    .values()
                    .map(|stage| match &stage.alias {
                        Some(alias) => format!("{} ({alias})", stage.id),
                        None => stage.id.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        stages.push(stage.id.clone());
    }
    Ok(stages)
}

fn plan_stages(session: &Session, stages: &[String]) -> Result<Vec<StagePlan>, AppError> {
    let mut registry = backend_registry();
    stages
        .iter()
        .map(|stage| plan_stage(&session.settings, stage, &mut registry).map_err(AppError::from))
        .collect()
}

/// Where spec-kit keeps the project's constitution, relative to the repository root.
const CONSTITUTION: &str = ".specify/memory/constitution.md";

/// Where spec-kit keeps its document templates (`plan-template.md`, …).
const SPECKIT_TEMPLATES: &str = ".specify/templates";

/// The stage's inputs plus the project's context when it has one: its constitution (every agent
/// works within its principles) and spec-kit's own template of each artifact the stage writes
/// (`plan-template.md` for `plan.md`), so that the synthesizer follows the project's headings.
/// They are context, not stage inputs that could be missing.
fn with_project_context(
    repo_root: &std::path::Path,
    plan: &StagePlan,
    mut inputs: Vec<NamedText>,
) -> Vec<NamedText> {
    let templates = plan
        .required
        .iter()
        .chain(&plan.optional)
        .filter_map(|artifact| artifact.strip_suffix(".md"))
        .map(|stem| {
            (
                format!("{stem}-template.md"),
                std::path::Path::new(SPECKIT_TEMPLATES).join(format!("{stem}-template.md")),
            )
        });
    let context =
        std::iter::once(("constitution.md".to_owned(), CONSTITUTION.into())).chain(templates);
    for (name, path) in context {
        let already = inputs.iter().any(|input| input.name.ends_with(&name));
        if let (false, Some(content)) = (already, crate::input_file::read_context(repo_root, &path))
        {
            inputs.push(NamedText { name, content });
        }
    }
    inputs
}

/// The engine's own backends (`command`, `mock`) plus the built-in analysts and the HTTP
/// model backends, which live in their own crates.
pub fn backend_registry() -> BackendRegistry {
    let builtin: BackendFactory = Box::new(|_name, settings| {
        matches!(settings, BackendSettings::Builtin)
            .then(|| Ok(Arc::new(BuiltinAgent::new()) as Arc<dyn Backend>))
    });
    BackendRegistry::new()
        .with_factory(builtin)
        .with_factory(Box::new(stagegate_http::backend_from_settings))
}

/// The commands that decide a pending gate.
pub fn decide_commands(run_id: &str) -> Vec<String> {
    vec![
        format!("stagegate approve {run_id}"),
        format!("stagegate reject {run_id} --reason \"...\""),
        format!("stagegate modify {run_id} --feedback \"...\""),
        format!("stagegate resume {run_id}"),
    ]
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable, readable, and a plain directory name.
fn new_run_id() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(8.min(digits.len()));
    format!("{date}-{time}-{:04x}", fastrand_u16())
}

fn fastrand_u16() -> u16 {
    // blake3 of the time and pid: unique enough for two runs started in the same second.
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let hash = blake3::hash(seed.as_bytes());
    u16::from_le_bytes([hash.as_bytes()[0], hash.as_bytes()[1]])
}

/// Ctrl-C cancels the run cleanly (agents' process groups are killed); a second Ctrl-C exits
/// at once.
fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            // The gate's prompt may have hidden the cursor; and at a gate no agent runs, so the
            // message names no agents.
            crate::terminal_gate::show_cursor();
            eprintln!("\ninterrupted: stopping (Ctrl-C again to quit at once)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                crate::terminal_gate::show_cursor();
                std::process::exit(130);
            }
        }
    });
    token
}
