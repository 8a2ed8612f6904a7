//! The store's subscriber: every event is appended to the SQLite log before anything acts on
//! it, attempts are indexed with their texts (prompts, outputs, stderr: rows, each distinct
//! text stored once), and staged artifacts go into the run's directory.
//!
//! # Group commit
//! The rows go to a writer thread of the recorder's own, which commits everything that arrived
//! since its last commit in one `BEGIN IMMEDIATE` transaction ([`BatchWriter`], on a connection
//! of its own), in the order the events were emitted. `emit` queues an event's rows and, for
//! every event the dispatcher may act on (an attempt's outcome, a cache hit, a verdict, a
//! gate…), waits for the commit that holds them, so nothing depends on an outcome before it is
//! durable. Only the events that merely announce work in progress ([`returns_once_queued`])
//! return as soon as they are queued; a later event's commit holds them too (order is kept, one
//! transaction per batch), and a failed commit fails every later `emit`, so no row is ever
//! written after one that was lost.

use std::sync::Arc;

use stagegate_engine::backend::{CallIdentity, Phase, TruncationHandling};
use stagegate_engine::event::{Event, EventSink, SinkError};
use stagegate_settings::CacheTtls;
use stagegate_store::{
    AttemptKey, AttemptRecord, AttemptText, BatchWrite, BatchWriter, CacheEntry, GateRecord,
    GateState, RunDir, Store, TextKind,
};
use tokio::sync::{mpsc, watch};

pub struct Recorder {
    run_dir: RunDir,
    /// How long a successful answer is cached, per phase; `None` records nothing in the cache.
    cache_ttls: Option<CacheTtls>,
    /// Synthesized artifacts go to the round being prepared (a rework), not the staged one.
    next_round: bool,
    writer: mpsc::UnboundedSender<Job>,
    /// The number of the last job queued: jobs are committed in this order.
    queued: u64,
    /// What the writer has committed, or the first commit that failed.
    committed: watch::Receiver<Commits>,
    /// Attempts whose answer was kept although cut at the token limit: the run keeps them (a
    /// resume needs them) but the cache does not, so that no later run takes one for whole.
    kept_cuts: Vec<CallIdentity>,
    /// Synthesized artifacts to stage once their events are committed: (stage, name, content).
    pending_artifacts: Vec<(String, String, Arc<str>)>,
    /// The thread staging the last committed artifacts, if it may still be writing.
    staging: Option<std::thread::JoinHandle<Result<(), String>>>,
    /// The writer's thread, joined when the recorder is dropped.
    writer_thread: Option<std::thread::JoinHandle<()>>,
}

/// Rows to commit, numbered in the order they were queued.
struct Job {
    number: u64,
    writes: Vec<BatchWrite>,
}

/// How far the writer has got: every job up to `through` is committed; once a commit fails,
/// `failed` says why and nothing after it is ever written.
#[derive(Clone, Default)]
struct Commits {
    through: u64,
    failed: Option<String>,
}

impl Commits {
    /// Whether the commit holding `ticket` is done, or can no longer be (a commit failed).
    fn settle(&self, ticket: Ticket) -> bool {
        self.through >= ticket.0 || self.failed.is_some()
    }
}

/// The commit of one queued job (number 0: nothing to wait for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

/// Rows committed after which the writer has the log folded into `state.db` beside it
/// ([`Store::fold_log_passively`]): otherwise the commit that passes SQLite's threshold folds
/// it itself, and the dispatcher waits behind it (a 10,000-agent stage waited 5 times, about
/// 30 ms each). A stage of a few agents never gets there, and leaves its small log for later.
const FOLD_LOG_AFTER_ROWS: usize = 8_000;

/// The writer thread: one transaction for every job that arrived since the last commit.
fn write_jobs(
    store: Store,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    committed: watch::Sender<Commits>,
    runtime: tokio::runtime::Handle,
) {
    let mut writes = Vec::new();
    let mut unfolded_rows = 0;
    let mut folding: Option<tokio::task::JoinHandle<()>> = None;
    // Opened at the first commit and kept: the same connection's pages stay cached.
    let mut writer: Option<BatchWriter> = None;
    while let Some(job) = jobs.blocking_recv() {
        let mut last = job.number;
        writes.extend(job.writes);
        while let Ok(job) = jobs.try_recv() {
            last = job.number;
            writes.extend(job.writes);
        }
        // Rows after a lost one are not written: the log stays a prefix of the events.
        if committed.borrow().failed.is_none() {
            let result = write_on(&store, &mut writer, &writes);
            committed.send_modify(|commits| match result {
                Ok(()) => commits.through = last,
                Err(message) => commits.failed = Some(message),
            });
            unfolded_rows += writes.len();
            let idle = folding.as_ref().is_none_or(|fold| fold.is_finished());
            if unfolded_rows >= FOLD_LOG_AFTER_ROWS && idle {
                unfolded_rows = 0;
                let store = store.clone();
                // A fold that fails leaves the log to SQLite's own threshold: nothing is lost.
                folding = Some(runtime.spawn(async move {
                    let _ = store.fold_log_passively().await;
                }));
            }
        }
        writes.clear();
    }
}

/// Commits `writes` through the writer's connection, opening it first if it has none.
fn write_on(
    store: &Store,
    writer: &mut Option<BatchWriter>,
    writes: &[BatchWrite],
) -> Result<(), String> {
    let writer = match writer {
        Some(writer) => writer,
        None => writer.insert(store.batch_writer().map_err(|error| error.to_string())?),
    };
    writer.write(writes).map_err(|error| error.to_string())
}

/// The events that only announce work in progress: nothing acts on them having been stored,
/// and an outcome (awaited) always follows them, so `emit` returns once they are queued.
fn returns_once_queued(event: &Event) -> bool {
    matches!(
        event,
        Event::AttemptStarted { .. }
            | Event::RetryScheduled { .. }
            | Event::FallbackStarted { .. }
            | Event::ContextCut { .. }
    )
}

impl Recorder {
    /// Must be called within a tokio runtime (a fold of the log runs on it): it starts the
    /// recorder's writer thread, which ends when the recorder is dropped, after committing
    /// what was queued; the drop waits for it.
    pub fn new(store: Store, run_id: &str) -> Self {
        let run_dir = store.run_dir(run_id);
        let (writer, jobs) = mpsc::unbounded_channel();
        let (commits, committed) = watch::channel(Commits::default());
        let runtime = tokio::runtime::Handle::current();
        let writer_thread = std::thread::Builder::new()
            .name("stagegate-recorder".to_owned())
            .spawn(move || write_jobs(store, jobs, commits, runtime))
            .expect("starting the recorder's writer thread");
        Recorder {
            run_dir,
            cache_ttls: None,
            next_round: false,
            writer,
            queued: 0,
            committed,
            kept_cuts: Vec::new(),
            pending_artifacts: Vec::new(),
            staging: None,
            writer_thread: Some(writer_thread),
        }
    }

    /// While on, synthesized artifacts are written into the next round being prepared
    /// (`staged.next/`), which becomes the staged round only when the modification is recorded.
    /// Artifacts still being staged are written (into the round they were meant for) first.
    pub fn stage_next_round(&mut self, on: bool) -> Result<(), String> {
        let staged = self.finish_staging();
        self.next_round = on;
        staged
    }

    /// Also keeps every successful answer in the cache for its phase's time to live.
    pub fn caching(mut self, ttls: CacheTtls) -> Self {
        self.cache_ttls = Some(ttls);
        self
    }

    /// The cache entry of a successful answer, when its phase is cached.
    fn cache_entry(
        &self,
        identity: &CallIdentity,
        key: &str,
        output: &str,
        output_hash: &str,
        at_ms: i64,
    ) -> Option<CacheEntry> {
        let ttls = self.cache_ttls.as_ref()?;
        let ttl = match identity.phase {
            Phase::Agent => ttls.agent,
            Phase::Review => ttls.review,
            Phase::Synthesis => ttls.synthesis,
            Phase::Qa => ttls.qa,
        };
        if ttl.is_zero() {
            return None;
        }
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Some(CacheEntry {
            key: key.to_owned(),
            phase: identity.phase.as_str().to_owned(),
            output: output.to_owned(),
            output_hash: output_hash.to_owned(),
            run_id: identity.run_id.clone(),
            created_at_ms: at_ms,
            expires_at_ms: at_ms.saturating_add(ttl_ms),
        })
    }

    /// Queues `writes` for the writer thread at once; the ticket says which commit holds them.
    fn queue(&mut self, writes: Vec<BatchWrite>) -> Result<Ticket, String> {
        if let Some(message) = self.committed.borrow().failed.clone() {
            return Err(message);
        }
        self.queued += 1;
        self.writer
            .send(Job {
                number: self.queued,
                writes,
            })
            .map_err(|_| "the recorder's writer stopped".to_owned())?;
        Ok(Ticket(self.queued))
    }

    /// Waits until the commit holding `ticket` is done (and every earlier one with it).
    pub async fn committed(&mut self, ticket: Ticket) -> Result<(), String> {
        let commits = self
            .committed
            .wait_for(|commits| commits.settle(ticket))
            .await
            .map_err(|_| "the recorder's writer stopped".to_owned())?;
        match &commits.failed {
            Some(message) if commits.through < ticket.0 => Err(message.clone()),
            _ => Ok(()),
        }
    }

    /// Whether the commit holding `ticket` is done or failed; waits for nothing.
    pub fn is_settled(&self, ticket: Ticket) -> bool {
        self.committed.borrow().settle(ticket)
    }

    /// The ticket of everything queued so far.
    pub fn last_ticket(&self) -> Ticket {
        Ticket(self.queued)
    }

    async fn commit(&mut self, writes: Vec<BatchWrite>) -> Result<(), String> {
        let ticket = self.queue(writes)?;
        self.committed(ticket).await
    }

    async fn record(&mut self, event: &Event) -> Result<(), String> {
        let (ticket, wait) = self.record_queued(event).await?;
        if wait {
            self.committed(ticket).await?;
        }
        Ok(())
    }

    /// Records `event`, returning once its rows are queued, with the commit that holds them
    /// and whether `emit` waits for it. An attempt's texts are rows of the same commit as its
    /// outcome, so an answer is never recorded without its text.
    pub async fn record_queued(&mut self, event: &Event) -> Result<(Ticket, bool), String> {
        if !may_overlap_staging(event) {
            self.finish_staging()?;
        }
        let run_id = run_id_of(event);
        let payload_json = serde_json::to_string(event).map_err(|error| error.to_string())?;
        let mut writes = vec![BatchWrite::Event {
            run_id: run_id.to_owned(),
            kind: event.kind().to_owned(),
            payload_json,
        }];
        let wait = !returns_once_queued(event);
        match event {
            Event::AttemptStarted {
                identity,
                backend,
                at_ms,
                prompt,
                prompt_joints,
            } => {
                writes.push(BatchWrite::Attempt(attempt_record(
                    identity, backend, *at_ms,
                )));
                writes.push(prompt_text(identity, prompt, prompt_joints));
            }
            Event::AttemptFinished {
                identity,
                backend,
                status,
                failure,
                duration_ms,
                output_bytes,
                output_hash,
                confidence,
                usage,
                cache_key,
                at_ms,
                output,
                stderr,
                ..
            } => {
                if let (Some(key), Some(hash)) = (cache_key, output_hash) {
                    writes.push(BatchWrite::Answer {
                        run_id: identity.run_id.clone(),
                        key: key.clone(),
                        output: output.to_string(),
                    });
                    if !self.kept_cuts.contains(identity) {
                        writes.extend(
                            self.cache_entry(identity, key, output, hash, *at_ms)
                                .map(BatchWrite::Cache),
                        );
                    }
                }
                let started = at_ms - i64::try_from(*duration_ms).unwrap_or(0);
                writes.push(BatchWrite::Attempt(AttemptRecord {
                    finished_at_ms: Some(*at_ms),
                    outcome: Some(status.as_str().to_owned()),
                    failure_reason: failure.as_ref().map(ToString::to_string),
                    output_hash: output_hash.clone(),
                    output_bytes: Some(count(*output_bytes)),
                    confidence: *confidence,
                    input_tokens: usage.map(|usage| count(usage.input_tokens)),
                    output_tokens: usage.map(|usage| count(usage.output_tokens)),
                    cost_usd: usage.and_then(|usage| usage.cost_usd),
                    ..attempt_record(identity, backend, started)
                }));
                writes.push(attempt_text(identity, TextKind::Output, shared(output)));
                if !stderr.is_empty() {
                    writes.push(attempt_text(identity, TextKind::Stderr, stderr.clone()));
                }
            }
            Event::CacheHit {
                identity,
                backend,
                cache_key,
                output_bytes,
                output_hash,
                confidence,
                at_ms,
                prompt,
                prompt_joints,
                output,
                ..
            } => {
                writes.push(BatchWrite::Answer {
                    run_id: identity.run_id.clone(),
                    key: cache_key.clone(),
                    output: output.to_string(),
                });
                // A cache hit takes no time and costs no tokens.
                writes.push(BatchWrite::Attempt(AttemptRecord {
                    finished_at_ms: Some(*at_ms),
                    outcome: Some("cached".to_owned()),
                    output_hash: Some(output_hash.clone()),
                    output_bytes: Some(count(*output_bytes)),
                    confidence: *confidence,
                    ..attempt_record(identity, backend, *at_ms)
                }));
                writes.push(prompt_text(identity, prompt, prompt_joints));
                writes.push(attempt_text(identity, TextKind::Output, shared(output)));
            }
            Event::ArtifactSynthesized {
                stage,
                artifact,
                content,
                ..
            } => {
                // Staged once the event is durable (`stage_pending`, after the commit).
                self.pending_artifacts
                    .push((stage.clone(), artifact.clone(), content.clone()));
            }
            Event::GateRequested {
                run_id,
                stage,
                question,
                artifacts,
                at_ms,
            } => {
                writes.push(BatchWrite::OpenGate(GateRecord {
                    run_id: run_id.clone(),
                    stage: stage.clone(),
                    question: question.clone(),
                    artifacts: artifacts.clone(),
                    state: GateState::Pending,
                    round: 1,
                    opened_at_ms: *at_ms,
                    closed_at_ms: None,
                }));
                // Committed here, before the gate is shown: a person's decision may follow.
                self.commit(writes).await?;
                return Ok((self.last_ticket(), false));
            }
            Event::AnswerTruncated {
                identity,
                handling: TruncationHandling::Accepted,
                ..
            } => {
                self.kept_cuts.push(identity.clone());
            }
            _ => {}
        }
        self.queue(writes).map(|ticket| (ticket, wait))
    }

    /// Starts writing the artifacts whose events are now durable into the run directory, on a
    /// thread of its own (each file side by side: an fsync is most of what staging one costs),
    /// so that QA reads them from memory meanwhile; [`Self::finish_staging`] waits for it.
    pub fn stage_pending(&mut self) -> Result<(), String> {
        if self.pending_artifacts.is_empty() {
            return Ok(());
        }
        self.finish_staging()?;
        let pending = std::mem::take(&mut self.pending_artifacts);
        let run_dir = self.run_dir.clone();
        let next_round = self.next_round;
        self.staging = Some(std::thread::spawn(move || {
            stage_artifacts(&run_dir, next_round, &pending)
        }));
        Ok(())
    }

    /// Waits until the artifacts being staged are written: before anything else may read them
    /// (a gate, a later round, the end of the stage).
    pub fn finish_staging(&mut self) -> Result<(), String> {
        match self.staging.take() {
            Some(staging) => staging
                .join()
                .unwrap_or_else(|_| Err("staging an artifact panicked".to_owned())),
            None => Ok(()),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Nothing is left half-written behind the process; an error here was (or would have
        // been) reported by the gate that needed the files.
        let _ = self.finish_staging();
        // Closing the queue ends the writer once it has committed what was queued; joined, so
        // that its connection is closed before the command closes the store.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.writer, closed));
        if let Some(writer_thread) = self.writer_thread.take() {
            let _ = writer_thread.join();
        }
    }
}

/// Writes `artifacts` into the staged round (or the next round) of `run_dir`, side by side.
fn stage_artifacts(
    run_dir: &RunDir,
    next_round: bool,
    artifacts: &[(String, String, Arc<str>)],
) -> Result<(), String> {
    let stage_one = |(stage, artifact, content): &(String, String, Arc<str>)| {
        let staged = if next_round {
            run_dir.stage_next_artifact(stage, artifact, content.as_bytes())
        } else {
            run_dir.stage_artifact(stage, artifact, content.as_bytes())
        };
        staged
            .map(drop)
            .map_err(|error| format!("cannot stage {artifact}: {error}"))
    };
    if artifacts.len() <= 1 {
        return artifacts.iter().try_for_each(stage_one);
    }
    std::thread::scope(|scope| {
        let writers: Vec<_> = artifacts
            .iter()
            .map(|artifact| scope.spawn(move || stage_one(artifact)))
            .collect();
        writers.into_iter().try_for_each(|writer| {
            writer
                .join()
                .unwrap_or_else(|_| Err("staging an artifact panicked".to_owned()))
        })
    })
}

/// The events during which staged artifacts may still be being written: QA's work on the
/// artifacts, which it reads from memory. Any other event waits for them first.
fn may_overlap_staging(event: &Event) -> bool {
    matches!(
        event,
        Event::AttemptStarted { .. }
            | Event::AttemptFinished { .. }
            | Event::CacheHit { .. }
            | Event::RetryScheduled { .. }
            | Event::FallbackStarted { .. }
            | Event::ContextCut { .. }
            | Event::AnswerTruncated { .. }
            | Event::QaVerdict { .. }
    )
}

impl EventSink for Recorder {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.record(event)
            .await
            .and_then(|()| self.stage_pending())
            .map_err(recording_failed)
    }

    /// Queues every event's rows, then waits for the commit of the last one that waits: the
    /// writer commits in order and a failure fails every later commit, so that one being
    /// durable means all of them are.
    async fn emit_all(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let mut last = None;
        for event in events {
            let (ticket, wait) = self.record_queued(event).await.map_err(recording_failed)?;
            if wait {
                last = Some(ticket);
            }
        }
        if let Some(ticket) = last {
            self.committed(ticket).await.map_err(recording_failed)?;
        }
        self.stage_pending().map_err(recording_failed)
    }
}

pub(crate) fn recording_failed(message: String) -> SinkError {
    SinkError::new(format!("recording the run failed: {message}"))
}

fn count(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// An attempt as it stands when it starts: who, on which backend, since when.
fn attempt_record(identity: &CallIdentity, backend: &str, started_at_ms: i64) -> AttemptRecord {
    AttemptRecord {
        run_id: identity.run_id.clone(),
        stage: identity.stage.clone(),
        phase: identity.phase.as_str().to_owned(),
        agent: attempt_key(identity),
        attempt: identity.attempt,
        backend: backend.to_owned(),
        started_at_ms,
        finished_at_ms: None,
        outcome: None,
        failure_reason: None,
        output_hash: None,
        output_bytes: None,
        confidence: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
    }
}

/// One text of an attempt, as a row of the group commit.
fn attempt_text(identity: &CallIdentity, kind: TextKind, bytes: Arc<[u8]>) -> BatchWrite {
    text_with_joints(identity, kind, bytes, Arc::default())
}

/// An attempt's prompt, cut where its agent's own values start and end.
fn prompt_text(identity: &CallIdentity, prompt: &Arc<str>, joints: &Arc<[usize]>) -> BatchWrite {
    text_with_joints(identity, TextKind::Prompt, shared(prompt), joints.clone())
}

fn text_with_joints(
    identity: &CallIdentity,
    kind: TextKind,
    bytes: Arc<[u8]>,
    joints: Arc<[usize]>,
) -> BatchWrite {
    BatchWrite::AttemptText(AttemptText {
        key: AttemptKey {
            run_id: identity.run_id.clone(),
            stage: identity.stage.clone(),
            phase: identity.phase.as_str().to_owned(),
            agent: attempt_key(identity),
            attempt: identity.attempt,
        },
        kind,
        bytes,
        joints,
    })
}

/// The bytes of a text the event already holds, shared, not copied: a prompt can hold a
/// whole spec, and a copy per attempt held several of them at once until their commit.
fn shared(text: &Arc<str>) -> Arc<[u8]> {
    Arc::<[u8]>::from(Arc::clone(text))
}

/// The key an attempt is filed under: the agent, and for a synthesis also the artifact
/// (`lead-synthesizer-a.plan.md`), since one synthesizer writes several artifacts.
pub fn attempt_key(identity: &CallIdentity) -> String {
    match &identity.artifact {
        Some(artifact) => format!("{}.{artifact}", identity.agent),
        None => identity.agent.clone(),
    }
}

/// Every event belongs to one run.
pub fn run_id_of(event: &Event) -> &str {
    event.run_id()
}
