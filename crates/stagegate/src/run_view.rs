//! Where one run stands, as a fold over its log: its stages and how far each got, the gate
//! waiting for a person, the agents that failed for good (and why), the calls answered from the
//! cache, and the last decision with its reason.
//!
//! A view is built by applying envelopes one at a time ([`RunView::apply`]), so a reader that
//! follows a run live can keep one and feed it what is new; [`RunView::fold`] does it for a
//! whole log.
//!
//! Partial failures are the parallel agents whose last call ended failed: an agent that failed
//! and then succeeded on a retry, a fallback or the sequential pass (or was answered from the
//! cache when the run resumed) did not fail. One whose last attempt is still running (or was
//! cut short by a crash) has not failed either.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use stagegate_engine::backend::Phase;
use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::{AgentFailure, AttemptStatus, DecisionKind, Event, StageEnd};
use stagegate_store::{DecisionRecord, RunRecord, Store};

use crate::error::AppError;

/// One run as its log tells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub feature_dir: Option<String>,
    /// In the order the run named them, then any the log mentions later.
    pub stages: Vec<StageView>,
    pub pending_gate: Option<PendingGate>,
    pub last_decision: Option<LastDecision>,
    /// How many decisions were taken at the run's gates (the decision records).
    pub decisions: usize,
}

/// How far one stage got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageView {
    pub id: String,
    /// `Stage A: Planning/Spec`, once the stage started.
    pub name: Option<String>,
    pub standing: StageStanding,
    /// Calls (of every phase) answered from the cache.
    pub cache_hits: usize,
    /// The parallel agents in the order they were first heard of, with how each stands.
    agents: Vec<(String, AgentStanding)>,
    /// Where each agent is in `agents`: rebuilt when a snapshot is read, not stored.
    #[serde(skip)]
    agent_index: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStanding {
    NotStarted,
    Running,
    AwaitingDecision,
    Approved,
    Rejected,
    /// A newer run of the same stage reached its gate.
    Superseded,
    Failed,
    Interrupted,
}

impl StageStanding {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStanding::NotStarted => "not_started",
            StageStanding::Running => "running",
            StageStanding::AwaitingDecision => "awaiting_decision",
            StageStanding::Approved => "approved",
            StageStanding::Rejected => "rejected",
            StageStanding::Superseded => "superseded",
            StageStanding::Failed => "failed",
            StageStanding::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AgentStanding {
    Running,
    Succeeded,
    /// Why its last attempt failed.
    Failed(String),
}

/// The gate a person has to decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingGate {
    pub stage: String,
    pub question: String,
    pub artifacts: Vec<String>,
}

/// The last decision taken at one of the run's gates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastDecision {
    pub stage: String,
    pub kind: DecisionKind,
    /// Who decided, from the decision's record; `None` when the record is missing.
    pub by: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub at_ms: i64,
}

impl LastDecision {
    /// The reason of a rejection, or the note of an approval or modification.
    pub fn why(&self) -> Option<&str> {
        self.reason.as_deref().or(self.note.as_deref())
    }
}

/// A parallel agent that failed for good, in which stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFailure<'view> {
    pub stage: &'view str,
    pub failure: AgentFailure,
}

impl StageView {
    fn new(id: &str) -> Self {
        StageView {
            id: id.to_owned(),
            name: None,
            standing: StageStanding::NotStarted,
            cache_hits: 0,
            agents: Vec::new(),
            agent_index: BTreeMap::new(),
        }
    }

    /// The parallel agents that failed for good, with the reason of their last attempt.
    pub fn failures(&self) -> Vec<AgentFailure> {
        self.agents
            .iter()
            .filter_map(|(agent, standing)| match standing {
                AgentStanding::Failed(reason) => Some(AgentFailure {
                    agent: agent.clone(),
                    reason: reason.clone(),
                }),
                AgentStanding::Running | AgentStanding::Succeeded => None,
            })
            .collect()
    }

    fn set_agent(&mut self, agent: &str, standing: AgentStanding) {
        match self.agent_index.get(agent) {
            Some(&index) => self.agents[index].1 = standing,
            None => {
                self.agent_index.insert(agent.to_owned(), self.agents.len());
                self.agents.push((agent.to_owned(), standing));
            }
        }
    }
}

/// The version of a view's serialisation in the store's `run_views` snapshots. Raise it with
/// any change to what [`RunView`] holds or how it serialises: a snapshot of another version is
/// not read (the run's whole log is folded instead), so no view is ever read wrongly.
pub const SNAPSHOT_FORMAT: i64 = 1;

impl RunView {
    /// The view of run `run_id` from the store: its snapshot and the events after it (or its
    /// whole log), and its decision records. (Commands read every run at once with
    /// [`RunView::load_all`]; the tests check the two agree.)
    #[cfg(test)]
    pub async fn load(store: &Store, run_id: &str) -> Result<RunView, AppError> {
        let (mut view, _) = RunView::load_events(store, run_id).await?;
        view.attribute(&store.decisions(run_id).await?);
        Ok(view)
    }

    /// The fold of run `run_id`'s events alone (no decision records taken into account), and
    /// the sequence number of the last event it covers (0 for none): from the run's snapshot
    /// and the events after it, or from the whole log when there is no snapshot that reads.
    pub async fn load_events(store: &Store, run_id: &str) -> Result<(RunView, i64), AppError> {
        let (snapshot, tail) = store.run_view_with_tail(run_id, SNAPSHOT_FORMAT).await?;
        let (mut view, mut through_seq, tail) = match snapshot {
            None => (RunView::default(), 0, tail),
            Some(snapshot) => match RunView::from_snapshot(&snapshot.view_json) {
                Some(view) => (view, snapshot.through_seq, tail),
                // Unreadable: the events after it are not enough, the whole log is folded.
                None => (RunView::default(), 0, store.events(run_id).await?),
            },
        };
        for record in &tail {
            view.apply(&crate::run_log::typed(record)?.event);
            through_seq = record.seq;
        }
        Ok((view, through_seq))
    }

    /// The views of `runs`, in their order, each attributed to its decision records: every
    /// snapshot, every event after them and every decision in three queries, however many runs
    /// there are (`status` lists them all).
    pub async fn load_all(store: &Store, runs: &[RunRecord]) -> Result<Vec<RunView>, AppError> {
        let (snapshots, tails) = store.run_views_with_tails(SNAPSHOT_FORMAT).await?;
        let mut views: HashMap<String, RunView> = HashMap::with_capacity(runs.len());
        for snapshot in snapshots {
            match RunView::from_snapshot(&snapshot.view_json) {
                Some(view) => {
                    views.insert(snapshot.run_id, view);
                }
                // The tail read starts after this snapshot: fold this run's whole log.
                None => {
                    let mut view = RunView::default();
                    let covered = store.events(&snapshot.run_id).await?;
                    for record in covered
                        .iter()
                        .filter(|record| record.seq <= snapshot.through_seq)
                    {
                        view.apply(&crate::run_log::typed(record)?.event);
                    }
                    views.insert(snapshot.run_id, view);
                }
            }
        }
        for record in &tails {
            let event = crate::run_log::typed(record)?.event;
            match views.get_mut(&record.run_id) {
                Some(view) => view.apply(&event),
                None => {
                    let mut view = RunView::default();
                    view.apply(&event);
                    views.insert(record.run_id.clone(), view);
                }
            }
        }
        let mut decisions: HashMap<String, Vec<DecisionRecord>> = HashMap::new();
        for record in store.all_decisions().await? {
            decisions
                .entry(record.run_id.clone())
                .or_default()
                .push(record);
        }
        Ok(runs
            .iter()
            .map(|run| {
                let mut view = views.remove(&run.id).unwrap_or_default();
                view.attribute(decisions.get(&run.id).map_or(&[], Vec::as_slice));
                view
            })
            .collect())
    }

    /// The view as a snapshot stores it (in [`SNAPSHOT_FORMAT`]). Only a view of events alone
    /// belongs in a snapshot: decision records are taken into account when it is read.
    pub fn to_snapshot(&self) -> Result<String, AppError> {
        serde_json::to_string(self)
            .map_err(|error| AppError::internal(format!("serialising a run's view: {error}")))
    }

    /// A view from a snapshot in [`SNAPSHOT_FORMAT`]; `None` when it does not read (the caller
    /// folds the log instead: a snapshot only saves time, it is never the only record).
    pub fn from_snapshot(json: &str) -> Option<RunView> {
        let mut view: RunView = serde_json::from_str(json).ok()?;
        for stage in &mut view.stages {
            stage.agent_index = stage
                .agents
                .iter()
                .enumerate()
                .map(|(index, (agent, _))| (agent.clone(), index))
                .collect();
            // Two entries for one agent: not something `apply` writes.
            if stage.agent_index.len() != stage.agents.len() {
                return None;
            }
        }
        Some(view)
    }

    /// The view of a whole log; `decisions` (the run's decision records) say who decided.
    /// The definition the stored views are checked against: a snapshot and the events after
    /// it fold to what this gives for the whole log.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the readers fold from snapshots; tests compare with this"
        )
    )]
    pub fn fold(envelopes: &[Envelope], decisions: &[DecisionRecord]) -> RunView {
        let mut view = RunView::default();
        for envelope in envelopes {
            view.apply(&envelope.event);
        }
        view.attribute(decisions);
        view
    }

    /// Takes one more event of the run into account.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                feature_dir,
                stages,
                ..
            } => {
                self.feature_dir = Some(feature_dir.clone());
                for stage in stages {
                    self.stage(stage);
                }
            }
            Event::StageStarted { stage, name, .. } => {
                let stage = self.stage(stage);
                stage.name = Some(name.clone());
                stage.standing = StageStanding::Running;
            }
            Event::AttemptStarted { identity, .. } if identity.phase == Phase::Agent => {
                self.stage(&identity.stage)
                    .set_agent(&identity.agent, AgentStanding::Running);
            }
            Event::AttemptFinished {
                identity,
                status,
                failure,
                ..
            } if identity.phase == Phase::Agent => {
                let standing = match (status, failure) {
                    (AttemptStatus::Ok, _) => AgentStanding::Succeeded,
                    (_, Some(failure)) => AgentStanding::Failed(failure.to_string()),
                    (status, None) => AgentStanding::Failed(status.as_str().to_owned()),
                };
                self.stage(&identity.stage)
                    .set_agent(&identity.agent, standing);
            }
            Event::CacheHit { identity, .. } => {
                let stage = self.stage(&identity.stage);
                stage.cache_hits += 1;
                if identity.phase == Phase::Agent {
                    stage.set_agent(&identity.agent, AgentStanding::Succeeded);
                }
            }
            Event::GateRequested {
                stage,
                question,
                artifacts,
                ..
            } => {
                self.stage(stage).standing = StageStanding::AwaitingDecision;
                self.pending_gate = Some(PendingGate {
                    stage: stage.clone(),
                    question: question.clone(),
                    artifacts: artifacts.clone(),
                });
            }
            Event::GateDecided {
                stage,
                decision,
                reason,
                note,
                at_ms,
                ..
            } => {
                let closes = match decision {
                    DecisionKind::Approve => Some(StageStanding::Approved),
                    DecisionKind::Reject => Some(StageStanding::Rejected),
                    DecisionKind::Supersede => Some(StageStanding::Superseded),
                    // The modified artifacts need a decision of their own.
                    DecisionKind::Modify => None,
                };
                if let Some(standing) = closes {
                    self.stage(stage).standing = standing;
                    if self
                        .pending_gate
                        .as_ref()
                        .is_some_and(|gate| &gate.stage == stage)
                    {
                        self.pending_gate = None;
                    }
                }
                self.last_decision = Some(LastDecision {
                    stage: stage.clone(),
                    kind: *decision,
                    by: None,
                    reason: reason.clone(),
                    note: note.clone(),
                    at_ms: *at_ms,
                });
            }
            Event::StageFinished { stage, end, .. } => {
                let waiting = self
                    .pending_gate
                    .as_ref()
                    .is_some_and(|gate| &gate.stage == stage);
                let stage = self.stage(stage);
                // A gate left open (the run stopped or was interrupted at the prompt) can
                // still be decided: the stage waits for it.
                if !waiting {
                    stage.standing = match end {
                        StageEnd::Approved => StageStanding::Approved,
                        StageEnd::Rejected => StageStanding::Rejected,
                        StageEnd::AwaitingDecision => StageStanding::AwaitingDecision,
                        StageEnd::Failed => StageStanding::Failed,
                        StageEnd::Interrupted => StageStanding::Interrupted,
                    };
                }
            }
            Event::RunFinished {
                end: StageEnd::Interrupted,
                ..
            } => {
                for stage in &mut self.stages {
                    if stage.standing == StageStanding::Running {
                        stage.standing = StageStanding::Interrupted;
                    }
                }
            }
            _ => {}
        }
    }

    /// Who took the last decision, from the decision records (the events do not say); a log
    /// without decision events (none were written for it) takes the last record.
    pub fn attribute(&mut self, decisions: &[DecisionRecord]) {
        self.decisions = decisions.len();
        match &mut self.last_decision {
            Some(last) => {
                last.by = decisions
                    .iter()
                    .rev()
                    .find(|record| {
                        record.stage == last.stage
                            && record.kind.as_str() == last.kind.as_str()
                            && record.decided_at_ms == last.at_ms
                    })
                    .map(|record| record.decided_by.clone());
            }
            None => {
                self.last_decision = decisions.last().map(|record| LastDecision {
                    stage: record.stage.clone(),
                    kind: match record.kind {
                        stagegate_store::DecisionKind::Approve => DecisionKind::Approve,
                        stagegate_store::DecisionKind::Reject => DecisionKind::Reject,
                        stagegate_store::DecisionKind::Modify => DecisionKind::Modify,
                        stagegate_store::DecisionKind::Supersede => DecisionKind::Supersede,
                    },
                    by: Some(record.decided_by.clone()),
                    reason: record.reason.clone(),
                    note: record.note.clone(),
                    at_ms: record.decided_at_ms,
                });
            }
        }
    }

    /// Every parallel agent that failed for good, stage by stage.
    pub fn failures(&self) -> Vec<StageFailure<'_>> {
        self.stages
            .iter()
            .flat_map(|stage| {
                stage.failures().into_iter().map(|failure| StageFailure {
                    stage: &stage.id,
                    failure,
                })
            })
            .collect()
    }

    /// Calls answered from the cache, over every stage.
    pub fn cache_hits(&self) -> usize {
        self.stages.iter().map(|stage| stage.cache_hits).sum()
    }

    fn stage(&mut self, id: &str) -> &mut StageView {
        let index = match self.stages.iter().position(|stage| stage.id == id) {
            Some(index) => index,
            None => {
                self.stages.push(StageView::new(id));
                self.stages.len() - 1
            }
        };
        &mut self.stages[index]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stagegate_engine::backend::{CallIdentity, Failure};
    use stagegate_engine::event::Verdict;

    use super::*;

    /// Builds a log one event at a time, numbering and timing them.
    #[derive(Default)]
    struct Log(Vec<Envelope>);

    impl Log {
        fn push(mut self, event: Event) -> Self {
            let seq = i64::try_from(self.0.len()).unwrap_or(i64::MAX) + 1;
            self.0.push(Envelope {
                version: 1,
                run_id: "r1".into(),
                seq,
                at_ms: event.at_ms().unwrap_or(seq),
                event,
            });
            self
        }

        fn run_started(self, stages: &[&str]) -> Self {
            self.push(Event::RunStarted {
                run_id: "r1".into(),
                feature_dir: "specs/001-demo".into(),
                stages: stages.iter().map(|stage| (*stage).to_owned()).collect(),
                at_ms: 1,
            })
        }

        fn stage_started(self, stage: &str) -> Self {
            self.push(Event::StageStarted {
                run_id: "r1".into(),
                stage: stage.into(),
                name: format!("Stage {stage}"),
                agents: vec!["a".into(), "b".into(), "c".into()],
                concurrency: 3,
                quorum_needed: 2,
                at_ms: 2,
            })
        }

        fn attempt(
            self,
            phase: Phase,
            agent: &str,
            attempt: u32,
            failure: Option<Failure>,
        ) -> Self {
            let identity = identity(phase, agent, attempt);
            self.push(Event::AttemptStarted {
                identity: identity.clone(),
                backend: "mock".into(),
                at_ms: 3,
                prompt: Arc::default(),
                prompt_joints: Arc::default(),
            })
            .push(Event::AttemptFinished {
                identity,
                backend: "mock".into(),
                status: match &failure {
                    None => AttemptStatus::Ok,
                    Some(Failure::TimedOut { .. }) => AttemptStatus::TimedOut,
                    Some(_) => AttemptStatus::Failed,
                },
                failure,
                duration_ms: 1,
                output_bytes: 0,
                output_hash: None,
                confidence: None,
                usage: None,
                cache_key: None,
                at_ms: 4,
                output: Arc::default(),
                stderr: Arc::default(),
            })
        }

        fn cache_hit(self, phase: Phase, agent: &str) -> Self {
            self.push(Event::CacheHit {
                identity: identity(phase, agent, 1),
                backend: "mock".into(),
                cache_key: "key".into(),
                output_bytes: 1,
                output_hash: "hash".into(),
                confidence: None,
                at_ms: 5,
                prompt: Arc::default(),
                prompt_joints: Arc::default(),
                output: Arc::default(),
            })
        }

        fn gate(self, stage: &str) -> Self {
            self.push(Event::QaVerdict {
                run_id: "r1".into(),
                stage: stage.into(),
                iteration: 1,
                verdict: Verdict::Pass,
                feedback: String::new(),
                at_ms: 6,
            })
            .push(Event::GateRequested {
                run_id: "r1".into(),
                stage: stage.into(),
                question: "Approve to proceed?".into(),
                artifacts: vec!["plan.md".into()],
                at_ms: 7,
            })
            .push(Event::StageFinished {
                run_id: "r1".into(),
                stage: stage.into(),
                end: StageEnd::AwaitingDecision,
                duration_ms: 6,
                reason: None,
                at_ms: 8,
            })
        }

        fn decided(
            self,
            stage: &str,
            decision: DecisionKind,
            reason: Option<&str>,
            at_ms: i64,
        ) -> Self {
            self.push(Event::GateDecided {
                run_id: "r1".into(),
                stage: stage.into(),
                decision,
                reason: reason.map(str::to_owned),
                note: None,
                diff: None,
                at_ms,
            })
        }

        fn view(&self) -> RunView {
            RunView::fold(&self.0, &[])
        }
    }

    fn identity(phase: Phase, agent: &str, attempt: u32) -> CallIdentity {
        CallIdentity {
            run_id: "r1".into(),
            stage: "plan".into(),
            phase,
            agent: agent.into(),
            attempt,
            artifact: None,
        }
    }

    fn failure(agent: &str, reason: &str) -> AgentFailure {
        AgentFailure {
            agent: agent.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn a_run_at_its_gate_has_it_pending_with_its_question_and_artifacts() {
        let view = Log::default()
            .run_started(&["plan", "prep"])
            .stage_started("plan")
            .attempt(Phase::Agent, "a", 1, None)
            .gate("plan")
            .view();
        assert_eq!(view.feature_dir.as_deref(), Some("specs/001-demo"));
        assert_eq!(
            view.pending_gate,
            Some(PendingGate {
                stage: "plan".into(),
                question: "Approve to proceed?".into(),
                artifacts: vec!["plan.md".into()],
            })
        );
        let standings: Vec<_> = view
            .stages
            .iter()
            .map(|stage| (stage.id.as_str(), stage.standing))
            .collect();
        assert_eq!(
            standings,
            [
                ("plan", StageStanding::AwaitingDecision),
                ("prep", StageStanding::NotStarted)
            ]
        );
        assert_eq!(view.stages[0].name.as_deref(), Some("Stage plan"));
        assert!(view.failures().is_empty());
        assert_eq!(view.last_decision, None);
    }

    #[test]
    fn an_agent_whose_last_attempt_failed_is_a_partial_failure_with_that_reason() {
        let view = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .attempt(Phase::Agent, "a", 1, None)
            .attempt(
                Phase::Agent,
                "b",
                1,
                Some(Failure::retryable("exit status 1")),
            )
            .attempt(
                Phase::Agent,
                "b",
                2,
                Some(Failure::TimedOut { after_ms: 3000 }),
            )
            .attempt(
                Phase::Agent,
                "c",
                1,
                Some(Failure::retryable("exit status 1")),
            )
            .attempt(Phase::Agent, "c", 2, None)
            .view();
        let failures: Vec<_> = view
            .failures()
            .into_iter()
            .map(|failure| (failure.stage.to_owned(), failure.failure))
            .collect();
        assert_eq!(
            failures,
            [("plan".to_owned(), failure("b", "timed out after 3000 ms"))]
        );
    }

    #[test]
    fn failures_of_other_phases_and_unfinished_retries_are_not_partial_failures() {
        let view = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .attempt(
                Phase::Review,
                "reviewer",
                1,
                Some(Failure::permanent("bad")),
            )
            .attempt(
                Phase::Agent,
                "b",
                1,
                Some(Failure::retryable("exit status 1")),
            )
            .push(Event::AttemptStarted {
                identity: identity(Phase::Agent, "b", 2),
                backend: "mock".into(),
                at_ms: 9,
                prompt: Arc::default(),
                prompt_joints: Arc::default(),
            })
            .view();
        assert!(view.failures().is_empty(), "{:?}", view.failures());
        assert_eq!(view.stages[0].standing, StageStanding::Running);
    }

    #[test]
    fn an_agent_answered_from_the_cache_on_resume_did_not_fail() {
        let view = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .attempt(
                Phase::Agent,
                "b",
                1,
                Some(Failure::retryable("exit status 1")),
            )
            .stage_started("plan")
            .cache_hit(Phase::Agent, "b")
            .cache_hit(Phase::Review, "reviewer")
            .view();
        assert!(view.failures().is_empty(), "{:?}", view.failures());
        assert_eq!(view.cache_hits(), 2);
    }

    #[test]
    fn a_rejection_closes_the_gate_and_is_the_last_decision_with_its_reason_and_who() {
        let log = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .gate("plan")
            .decided("plan", DecisionKind::Modify, None, 20)
            .decided("plan", DecisionKind::Reject, Some("too vague"), 30);
        let decisions = [DecisionRecord {
            id: Some(2),
            run_id: "r1".into(),
            stage: "plan".into(),
            kind: stagegate_store::DecisionKind::Reject,
            reason: Some("too vague".into()),
            note: None,
            diff: None,
            decided_by: "ada".into(),
            decided_at_ms: 30,
        }];
        let view = RunView::fold(&log.0, &decisions);
        assert_eq!(view.pending_gate, None);
        assert_eq!(view.stages[0].standing, StageStanding::Rejected);
        assert_eq!(
            view.last_decision,
            Some(LastDecision {
                stage: "plan".into(),
                kind: DecisionKind::Reject,
                by: Some("ada".into()),
                reason: Some("too vague".into()),
                note: None,
                at_ms: 30,
            })
        );
        assert_eq!(
            view.last_decision.as_ref().and_then(LastDecision::why),
            Some("too vague")
        );
    }

    #[test]
    fn a_modification_leaves_the_gate_pending() {
        let view = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .gate("plan")
            .decided("plan", DecisionKind::Modify, None, 20)
            .view();
        assert_eq!(
            view.pending_gate.as_ref().map(|gate| gate.stage.as_str()),
            Some("plan")
        );
        assert_eq!(
            view.last_decision.as_ref().map(|decision| decision.kind),
            Some(DecisionKind::Modify)
        );
        assert_eq!(view.last_decision.and_then(|decision| decision.by), None);
    }

    #[test]
    fn an_approval_closes_the_gate() {
        let view = Log::default()
            .run_started(&["plan", "prep"])
            .stage_started("plan")
            .gate("plan")
            .decided("plan", DecisionKind::Approve, None, 20)
            .stage_started("prep")
            .view();
        assert_eq!(view.pending_gate, None);
        assert_eq!(view.stages[0].standing, StageStanding::Approved);
        assert_eq!(view.stages[1].standing, StageStanding::Running);
    }

    #[test]
    fn an_interrupted_run_interrupts_its_running_stage() {
        let view = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .push(Event::RunFinished {
                run_id: "r1".into(),
                end: StageEnd::Interrupted,
                at_ms: 9,
            })
            .view();
        assert_eq!(view.stages[0].standing, StageStanding::Interrupted);
    }

    #[test]
    fn decisions_without_decision_events_still_give_the_last_decision() {
        let decisions = [DecisionRecord {
            id: Some(1),
            run_id: "r1".into(),
            stage: "plan".into(),
            kind: stagegate_store::DecisionKind::Approve,
            reason: None,
            note: Some("fine".into()),
            diff: None,
            decided_by: "ada".into(),
            decided_at_ms: 30,
        }];
        let view = RunView::fold(&Log::default().run_started(&["plan"]).0, &decisions);
        let last = view.last_decision.expect("a last decision");
        assert_eq!(
            (last.kind, last.why()),
            (DecisionKind::Approve, Some("fine"))
        );
        assert_eq!(last.by.as_deref(), Some("ada"));
    }

    #[test]
    fn events_of_a_newer_stagegate_are_skipped() {
        let view = Log::default()
            .run_started(&["plan"])
            .push(Event::Unknown)
            .stage_started("plan")
            .view();
        assert_eq!(view.stages[0].standing, StageStanding::Running);
    }

    /// `tests/fixtures/event-log/`: a log written by an earlier build (see its README).
    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/event-log")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("{}: {error}\n{line}", path.display()))
            })
            .collect()
    }

    #[test]
    fn an_older_log_still_reads_and_folds() {
        let records: Vec<stagegate_store::EventRecord> = fixture("events.jsonl");
        let decisions: Vec<DecisionRecord> = fixture("decisions.jsonl");
        let envelopes: Vec<Envelope> = records
            .iter()
            .map(|record| {
                crate::run_log::envelope(record)
                    .unwrap_or_else(|error| panic!("{error}: {record:?}"))
            })
            .collect();
        for envelope in &envelopes {
            assert_ne!(envelope.event, Event::Unknown, "{envelope:?}");
            assert_eq!(envelope.version, 1);
            assert_eq!(envelope.event.run_id(), envelope.run_id);
        }
        let of_run = |run_id: &str| {
            let envelopes: Vec<Envelope> = envelopes
                .iter()
                .filter(|envelope| envelope.run_id == run_id)
                .cloned()
                .collect();
            let decisions: Vec<DecisionRecord> = decisions
                .iter()
                .filter(|decision| decision.run_id == run_id)
                .cloned()
                .collect();
            RunView::fold(&envelopes, &decisions)
        };

        // The first run: one agent failed all its attempts, one failed once and then
        // succeeded; rejected at its gate.
        let rejected = of_run("20261202-060428-a93c");
        assert_eq!(rejected.feature_dir.as_deref(), Some("specs/001-demo"));
        assert_eq!(rejected.pending_gate, None);
        assert_eq!(rejected.stages.len(), 1);
        assert_eq!(rejected.stages[0].standing, StageStanding::Rejected);
        assert_eq!(
            rejected.stages[0].failures(),
            [failure(
                "estimation-scope-analyst",
                "mock failure (attempt 3 of the first 10 that fail)"
            )]
        );
        let last = rejected.last_decision.expect("the rejection");
        assert_eq!(last.kind, DecisionKind::Reject);
        assert_eq!(last.why(), Some("the plan is too vague about storage"));
        assert_eq!(last.by.as_deref(), Some("unknown"));

        // The second: answered from the cache but for the broken agent; approved.
        let approved = of_run("20261202-060428-6b51");
        assert_eq!(approved.stages[0].standing, StageStanding::Approved);
        assert!(approved.cache_hits() > 0);
        assert_eq!(
            approved
                .failures()
                .iter()
                .map(|failure| failure.failure.agent.as_str())
                .collect::<Vec<_>>(),
            ["estimation-scope-analyst"]
        );
        let last = approved.last_decision.expect("the approval");
        assert_eq!(
            (last.kind, last.why()),
            (DecisionKind::Approve, Some("good enough"))
        );
    }

    /// The fixture's two runs: each one's events and decision records.
    fn fixture_runs() -> Vec<(String, Vec<Envelope>, Vec<DecisionRecord>)> {
        let records: Vec<stagegate_store::EventRecord> = fixture("events.jsonl");
        let decisions: Vec<DecisionRecord> = fixture("decisions.jsonl");
        let mut runs: Vec<String> = records.iter().map(|record| record.run_id.clone()).collect();
        runs.dedup();
        assert_eq!(runs.len(), 2, "{runs:?}");
        runs.into_iter()
            .map(|run_id| {
                let envelopes = records
                    .iter()
                    .filter(|record| record.run_id == run_id)
                    .map(|record| crate::run_log::envelope(record).expect("a fixture event"))
                    .collect();
                let decisions = decisions
                    .iter()
                    .filter(|decision| decision.run_id == run_id)
                    .cloned()
                    .collect();
                (run_id, envelopes, decisions)
            })
            .collect()
    }

    #[test]
    fn a_snapshot_and_the_events_after_it_fold_to_the_whole_log() {
        for (run_id, envelopes, decisions) in fixture_runs() {
            let whole = RunView::fold(&envelopes, &decisions);
            assert!(whole.last_decision.is_some(), "{run_id}: a decided run");
            // Every cut point: before the first event, after each one, and after the last.
            for cut in 0..=envelopes.len() {
                let (before, after) = envelopes.split_at(cut);
                let snapshot = RunView::fold(before, &[])
                    .to_snapshot()
                    .expect("a view serialises");
                let mut view = RunView::from_snapshot(&snapshot).expect("a snapshot reads");
                for envelope in after {
                    view.apply(&envelope.event);
                }
                view.attribute(&decisions);
                assert_eq!(view, whole, "{run_id} cut after {cut} events");
            }
        }
    }

    #[test]
    fn a_snapshot_keeps_failures_and_cache_hits_and_finds_its_agents_again() {
        let log = Log::default()
            .run_started(&["plan"])
            .stage_started("plan")
            .attempt(
                Phase::Agent,
                "a",
                1,
                Some(Failure::permanent("no such file")),
            )
            .attempt(Phase::Agent, "b", 1, None)
            .cache_hit(Phase::Agent, "c");
        let snapshot = log.view().to_snapshot().expect("a view serialises");
        let mut view = RunView::from_snapshot(&snapshot).expect("a snapshot reads");
        assert_eq!(view, log.view());
        // `a` succeeds on a retry after the snapshot: the same agent, not a second one.
        let more = Log::default().attempt(Phase::Agent, "a", 2, None);
        view.apply(&more.0[1].event);
        assert!(view.failures().is_empty(), "{:?}", view.failures());
        assert_eq!(view.cache_hits(), 1);
    }

    #[test]
    fn a_snapshot_that_does_not_read_is_none() {
        assert_eq!(RunView::from_snapshot("not json"), None);
        assert_eq!(RunView::from_snapshot("{\"stages\": 3}"), None);
        let duplicated = r#"{"feature_dir":null,"stages":[{"id":"plan","name":null,"standing":"Running","cache_hits":0,"agents":[["a","Running"],["a","Succeeded"]]}],"pending_gate":null,"last_decision":null,"decisions":0}"#;
        assert_eq!(RunView::from_snapshot(duplicated), None);
    }

    /// A store holding the fixture's runs, their events and decisions, as a real database.
    async fn fixture_store(
        directory: &std::path::Path,
    ) -> (Store, Vec<(String, Vec<Envelope>, Vec<DecisionRecord>)>) {
        let store = Store::open(&directory.join(".stagegate"))
            .await
            .expect("a store");
        let runs = fixture_runs();
        for (index, (run_id, envelopes, decisions)) in runs.iter().enumerate() {
            store
                .create_run(&stagegate_store::NewRun {
                    id: run_id.clone(),
                    feature_dir: "specs/001-demo".into(),
                    stages: vec!["plan".into()],
                    settings_json: "{}".to_owned(),
                    created_at_ms: i64::try_from(index).expect("small"),
                })
                .await
                .expect("a run");
            for envelope in envelopes {
                store
                    .append_event(
                        run_id,
                        envelope.event.kind(),
                        &serde_json::to_value(&envelope.event).expect("an event serialises"),
                    )
                    .await
                    .expect("an event");
            }
            for decision in decisions {
                store.record_decision(decision).await.expect("a decision");
            }
        }
        (store, runs)
    }

    /// What `status` and `load` fold from the store, for each of `runs`.
    async fn loaded(store: &Store, runs: &[RunRecord]) -> (Vec<RunView>, Vec<RunView>) {
        let mut one_by_one = Vec::new();
        for run in runs {
            one_by_one.push(RunView::load(store, &run.id).await.expect("a view"));
        }
        let all = RunView::load_all(store, runs).await.expect("the views");
        (one_by_one, all)
    }

    #[tokio::test]
    async fn views_read_from_snapshots_in_the_store_are_the_fold_of_the_whole_log() {
        let directory = tempfile::tempdir().expect("a directory");
        let (store, runs) = fixture_store(directory.path()).await;
        let records = store.runs().await.expect("the runs");
        let wholes: Vec<RunView> = records
            .iter()
            .map(|record| {
                let (_, envelopes, decisions) = runs
                    .iter()
                    .find(|(run_id, ..)| run_id == &record.id)
                    .expect("a fixture run");
                RunView::fold(envelopes, decisions)
            })
            .collect();

        // No snapshot: the whole log.
        assert_eq!(
            loaded(&store, &records).await,
            (wholes.clone(), wholes.clone())
        );

        // Snapshots at several cut points of each run, the tail folded after them.
        for cut in [0, 1, 5, 17, usize::MAX] {
            for (run_id, _, _) in &runs {
                let events = store.events(run_id).await.expect("the events");
                let covered = &events[..cut.min(events.len())];
                let mut view = RunView::default();
                for record in covered {
                    view.apply(&crate::run_log::typed(record).expect("an event").event);
                }
                let snapshot = stagegate_store::RunViewSnapshot {
                    run_id: run_id.clone(),
                    through_seq: covered.last().map_or(0, |record| record.seq),
                    view_json: view.to_snapshot().expect("a view serialises"),
                };
                // Saved in a newer format first, so the one saved next replaces it at any seq.
                store
                    .save_run_view(&snapshot, SNAPSHOT_FORMAT + 1)
                    .await
                    .expect("a snapshot");
                assert_eq!(
                    loaded(&store, &records).await,
                    (wholes.clone(), wholes.clone()),
                    "a snapshot of another format is not read"
                );
                store
                    .save_run_view(&snapshot, SNAPSHOT_FORMAT)
                    .await
                    .expect("a snapshot");
            }
            assert_eq!(
                loaded(&store, &records).await,
                (wholes.clone(), wholes.clone()),
                "cut after {cut} events"
            );
        }

        // A snapshot that does not read is ignored: the whole log is folded.
        for (run_id, _, _) in &runs {
            let events = store.events(run_id).await.expect("the events");
            let snapshot = stagegate_store::RunViewSnapshot {
                run_id: run_id.clone(),
                through_seq: events[events.len() / 2].seq,
                view_json: "{\"not\": \"a view\"}".into(),
            };
            store
                .save_run_view(&snapshot, SNAPSHOT_FORMAT + 1)
                .await
                .expect("a snapshot");
            store
                .save_run_view(&snapshot, SNAPSHOT_FORMAT)
                .await
                .expect("a snapshot");
        }
        assert_eq!(loaded(&store, &records).await, (wholes.clone(), wholes));
    }
}
