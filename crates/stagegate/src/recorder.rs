//! The store's subscriber: every event is appended to the SQLite log before anything acts on
//! it, attempts are indexed, and the texts (prompts, outputs, stderr, staged artifacts) go
//! into the run's directory.

use stagegate_engine::backend::{CallIdentity, Phase};
use stagegate_engine::event::{Event, EventSink, SinkError};
use stagegate_settings::CacheTtls;
use stagegate_store::{
    AttemptFiles, AttemptRecord, CacheEntry, GateRecord, GateState, RunDir, Store,
};

pub struct Recorder {
    store: Store,
    run_dir: RunDir,
    /// How long a successful answer is cached, per phase; `None` records nothing in the cache.
    cache_ttls: Option<CacheTtls>,
    /// Synthesized artifacts go to the round being prepared (a rework), not the staged one.
    next_round: bool,
}

impl Recorder {
    pub fn new(store: Store, run_id: &str) -> Self {
        let run_dir = store.run_dir(run_id);
        Recorder {
            store,
            run_dir,
            cache_ttls: None,
            next_round: false,
        }
    }

    /// While on, synthesized artifacts are written into the next round being prepared
    /// (`staged.next/`), which becomes the staged round only when the modification is recorded.
    pub fn stage_next_round(&mut self, on: bool) {
        self.next_round = on;
    }

    /// Also keeps every successful answer in the cache for its phase's time to live.
    pub fn caching(mut self, ttls: CacheTtls) -> Self {
        self.cache_ttls = Some(ttls);
        self
    }

    async fn cache(
        &self,
        identity: &CallIdentity,
        key: &str,
        output: &str,
        output_hash: &str,
        at_ms: i64,
    ) -> Result<(), String> {
        let Some(ttls) = &self.cache_ttls else {
            return Ok(());
        };
        let ttl = match identity.phase {
            Phase::Agent => ttls.agent,
            Phase::Review => ttls.review,
            Phase::Synthesis => ttls.synthesis,
            Phase::Qa => ttls.qa,
        };
        if ttl.is_zero() {
            return Ok(());
        }
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.store
            .put_cache(&CacheEntry {
                key: key.to_owned(),
                phase: identity.phase.as_str().to_owned(),
                output: output.to_owned(),
                output_hash: output_hash.to_owned(),
                run_id: identity.run_id.clone(),
                created_at_ms: at_ms,
                expires_at_ms: at_ms.saturating_add(ttl_ms),
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn record(&mut self, event: &Event) -> Result<(), String> {
        let run_id = run_id_of(event);
        let payload = serde_json::to_value(event).map_err(|error| error.to_string())?;
        self.store
            .append_event(run_id, event.kind(), &payload)
            .await
            .map_err(|error| error.to_string())?;
        match event {
            Event::AttemptStarted {
                identity,
                backend,
                at_ms,
                prompt,
            } => {
                self.write_files(
                    identity,
                    &AttemptFiles {
                        prompt: Some(prompt),
                        ..AttemptFiles::default()
                    },
                )?;
                self.record_attempt(attempt_record(identity, backend, *at_ms))
                    .await?;
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
                    self.store
                        .record_answer(&identity.run_id, key, output)
                        .await
                        .map_err(|error| error.to_string())?;
                    self.cache(identity, key, output, hash, *at_ms).await?;
                }
                self.write_files(
                    identity,
                    &AttemptFiles {
                        prompt: None,
                        output: Some(output.as_bytes()),
                        stderr: (!stderr.is_empty()).then_some(&stderr[..]),
                    },
                )?;
                let started = at_ms - i64::try_from(*duration_ms).unwrap_or(0);
                self.record_attempt(AttemptRecord {
                    finished_at_ms: Some(*at_ms),
                    outcome: Some(status.as_str().to_owned()),
                    failure_reason: failure.as_ref().map(ToString::to_string),
                    output_hash: output_hash.clone(),
                    output_bytes: Some(count(*output_bytes)),
                    confidence: *confidence,
                    input_tokens: usage.map(|usage| count(usage.input_tokens)),
                    output_tokens: usage.map(|usage| count(usage.output_tokens)),
                    ..attempt_record(identity, backend, started)
                })
                .await?;
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
                output,
                ..
            } => {
                self.write_files(
                    identity,
                    &AttemptFiles {
                        prompt: Some(prompt),
                        output: Some(output.as_bytes()),
                        stderr: None,
                    },
                )?;
                self.store
                    .record_answer(&identity.run_id, cache_key, output)
                    .await
                    .map_err(|error| error.to_string())?;
                // A cache hit takes no time and costs no tokens.
                self.record_attempt(AttemptRecord {
                    finished_at_ms: Some(*at_ms),
                    outcome: Some("cached".to_owned()),
                    output_hash: Some(output_hash.clone()),
                    output_bytes: Some(count(*output_bytes)),
                    confidence: *confidence,
                    ..attempt_record(identity, backend, *at_ms)
                })
                .await?;
            }
            Event::ArtifactSynthesized {
                stage,
                artifact,
                content,
                ..
            } => {
                let staged = if self.next_round {
                    self.run_dir
                        .stage_next_artifact(stage, artifact, content.as_bytes())
                } else {
                    self.run_dir
                        .stage_artifact(stage, artifact, content.as_bytes())
                };
                staged.map_err(|error| format!("cannot stage {artifact}: {error}"))?;
            }
            Event::GateRequested {
                run_id,
                stage,
                question,
                artifacts,
                at_ms,
            } => {
                self.store
                    .open_gate(&GateRecord {
                        run_id: run_id.clone(),
                        stage: stage.clone(),
                        question: question.clone(),
                        artifacts: artifacts.clone(),
                        state: GateState::Pending,
                        round: 1,
                        opened_at_ms: *at_ms,
                        closed_at_ms: None,
                    })
                    .await
                    .map_err(|error| error.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn record_attempt(&self, attempt: AttemptRecord) -> Result<(), String> {
        self.store
            .record_attempt(&attempt)
            .await
            .map_err(|error| error.to_string())
    }

    fn write_files(&self, identity: &CallIdentity, files: &AttemptFiles<'_>) -> Result<(), String> {
        self.run_dir
            .write_attempt(
                &identity.stage,
                identity.phase.as_str(),
                &attempt_key(identity),
                identity.attempt,
                files,
            )
            .map_err(|error| {
                format!(
                    "cannot write {}: {error}",
                    self.run_dir
                        .attempt_dir(
                            &identity.stage,
                            identity.phase.as_str(),
                            &attempt_key(identity),
                            identity.attempt
                        )
                        .display()
                )
            })
    }
}

impl EventSink for Recorder {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.record(event)
            .await
            .map_err(|message| SinkError::new(format!("recording the run failed: {message}")))
    }
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
    }
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
