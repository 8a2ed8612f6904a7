//! The `mock` backend: an agent that answers after a fixed latency, failing its first attempts on
//! request. It is for tests, demos and the 10,000-agent benchmarks, so it is deterministic, waits
//! on tokio's clock (the paused clock of tests fast-forwards it) and costs one string per call.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::backend::{AgentOutcome, AgentRequest, Backend, BoxFuture, Failure, Phase};

/// An agent that answers after `latency`. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct MockAgent {
    latency: Duration,
    /// Attempts `1..=fail_attempts` fail with a retryable error.
    fail_attempts: u32,
    /// The answer; `None` writes a short deterministic one (see [`MockAgent::new`]).
    output: Option<String>,
}

impl MockAgent {
    /// An agent that waits `latency`, fails attempts 1 to `fail_attempts` (retryable), then answers
    /// `output`, or when `None` a short markdown text naming the agent, stage, phase and artifact
    /// that ends with `CONFIDENCE: 0.80` (`VERDICT: PASS` for the QA phase).
    pub fn new(latency: Duration, fail_attempts: u32, output: Option<String>) -> Self {
        MockAgent {
            latency,
            fail_attempts,
            output,
        }
    }
}

impl Backend for MockAgent {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn fingerprint(&self) -> String {
        format!("mock:{:?}", self.output)
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let latency = self.latency;
        let fail_attempts = self.fail_attempts;
        // Cloned only when it will be the answer.
        let output = if request.identity.attempt > fail_attempts {
            self.output.clone()
        } else {
            None
        };
        Box::pin(async move {
            let started = Instant::now();
            if request.cancel.is_cancelled() {
                return AgentOutcome::failure(Failure::Cancelled);
            }
            let done_at = started + latency;
            if done_at > request.deadline {
                // It would answer too late: wait out the deadline (or a cancel) and time out,
                // exactly as a slow real agent would.
                tokio::select! {
                    biased;
                    () = request.cancel.cancelled() => return AgentOutcome::failure(Failure::Cancelled),
                    () = sleep_until(request.deadline) => {
                        let after_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        return AgentOutcome::failure(Failure::TimedOut { after_ms });
                    }
                }
            }
            if !latency.is_zero() {
                tokio::select! {
                    biased;
                    () = request.cancel.cancelled() => return AgentOutcome::failure(Failure::Cancelled),
                    () = sleep_until(done_at) => {}
                }
            }

            let attempt = request.identity.attempt;
            if attempt <= fail_attempts {
                return AgentOutcome::failure(Failure::retryable(format!(
                    "mock failure (attempt {attempt} of the first {fail_attempts} that fail)"
                )));
            }
            AgentOutcome::success(output.unwrap_or_else(|| default_output(&request)))
        })
    }
}

/// The deterministic answer: parseable by the stage loop (a confidence score, or QA's verdict).
fn default_output(request: &AgentRequest) -> String {
    let identity = &request.identity;
    let mut text = String::with_capacity(160);
    // Writing into a `String` cannot fail.
    let _ = if identity.phase == Phase::Qa {
        write!(
            text,
            "# QA for stage {stage}\n\nMock QA by `{agent}`: no findings.\n\nVERDICT: PASS\n",
            stage = identity.stage,
            agent = identity.agent,
        )
    } else {
        write!(
            text,
            "# {agent}: {stage} ({phase})\n\nMock output from `{agent}` for stage `{stage}`, \
             phase `{phase}`{artifact_prefix}{artifact}{artifact_suffix}.\n\nCONFIDENCE: 0.80\n",
            agent = identity.agent,
            stage = identity.stage,
            phase = identity.phase.as_str(),
            artifact_prefix = if identity.artifact.is_some() {
                ", artifact `"
            } else {
                ""
            },
            artifact = identity.artifact.as_deref().unwrap_or(""),
            artifact_suffix = if identity.artifact.is_some() { "`" } else { "" },
        )
    };
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::backend::CallIdentity;

    fn request(phase: Phase, attempt: u32, timeout: Duration) -> AgentRequest {
        AgentRequest {
            identity: CallIdentity {
                run_id: "run-1".to_owned(),
                stage: "plan".to_owned(),
                phase,
                agent: "architect".to_owned(),
                attempt,
                artifact: None,
            },
            prompt: "prompt".into(),
            repo_root: PathBuf::from("/repo"),
            feature_dir: PathBuf::from("/repo/specs/001-demo"),
            deadline: Instant::now() + timeout,
            cancel: CancellationToken::new(),
            memory_limit_bytes: 0,
            output_cap_bytes: 1 << 20,
            materials: Default::default(),
            kill_grace: Duration::from_secs(5),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn it_answers_after_its_latency() {
        let agent = MockAgent::new(Duration::from_secs(3), 0, None);
        let started = Instant::now();
        let outcome = agent.run(request(Phase::Agent, 1, MINUTE)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        let text = outcome.result.expect("an answer");
        assert_eq!(
            text,
            "# architect: plan (agent)\n\nMock output from `architect` for stage `plan`, phase \
             `agent`.\n\nCONFIDENCE: 0.80\n"
        );
        assert_eq!(agent.kind(), "mock");
    }

    #[tokio::test(start_paused = true)]
    async fn synthesis_names_the_artifact_and_qa_passes() {
        let agent = MockAgent::new(Duration::ZERO, 0, None);
        let mut synthesis = request(Phase::Synthesis, 1, MINUTE);
        synthesis.identity.artifact = Some("plan.md".to_owned());
        let text = agent.run(synthesis).await.result.expect("an answer");
        assert!(
            text.contains("phase `synthesis`, artifact `plan.md`."),
            "{text}"
        );
        assert!(text.ends_with("\nCONFIDENCE: 0.80\n"), "{text}");

        let text = agent
            .run(request(Phase::Qa, 1, MINUTE))
            .await
            .result
            .expect("an answer");
        assert_eq!(text.lines().last(), Some("VERDICT: PASS"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_attempts_fail_then_it_answers() {
        let agent = MockAgent::new(Duration::from_millis(10), 2, Some("fixed".to_owned()));
        for attempt in 1..=2 {
            let outcome = agent.run(request(Phase::Agent, attempt, MINUTE)).await;
            assert_eq!(
                outcome.result,
                Err(Failure::retryable(format!(
                    "mock failure (attempt {attempt} of the first 2 that fail)"
                )))
            );
        }
        let outcome = agent.run(request(Phase::Agent, 3, MINUTE)).await;
        assert_eq!(outcome.result, Ok("fixed".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_latency_past_the_deadline_times_out_at_the_deadline() {
        let agent = MockAgent::new(Duration::from_secs(10), 0, None);
        let started = Instant::now();
        let outcome = agent
            .run(request(Phase::Agent, 1, Duration::from_secs(4)))
            .await;
        assert_eq!(outcome.result, Err(Failure::TimedOut { after_ms: 4_000 }));
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_wait() {
        let agent = MockAgent::new(Duration::from_secs(10), 0, None);
        let request = request(Phase::Agent, 1, MINUTE);
        let cancel = request.cancel.clone();
        let started = Instant::now();
        let attempt = tokio::spawn(agent.run(request));
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
        let outcome = attempt.await.expect("attempt task");
        assert_eq!(outcome.result, Err(Failure::Cancelled));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
