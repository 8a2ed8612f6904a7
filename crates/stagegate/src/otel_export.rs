//! OpenTelemetry trace export (cargo feature `otel`): another subscriber of the one event stream
//! that turns a run into spans and sends them over OTLP/HTTP (JSON) to the endpoint in the
//! standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! `OTEL_SERVICE_NAME` defaults to `stagegate`).
//!
//! The span model, with the events' own times (`at_ms`) as start and end:
//!
//! - `run`: RunStarted → RunFinished, or the end of the process (a run that stops at a gate);
//!   a process that continues a run (`resume`, `modify`) opens its own `run` span with
//!   `stagegate.continued = true`. Every process of one run exports into one trace: the trace id
//!   is derived from the run id.
//! - `stage`: StageStarted → StageFinished, a child of `run`; QA verdicts, gate requests and
//!   decisions, quorum, fallback and retry news are span events on it.
//! - `attempt`: AttemptStarted → AttemptFinished, a child of its `stage`, with the call's identity,
//!   backend, status, failure kind, duration, output size and tokens; status Error on failure.
//! - `cache_hit`: a zero-length child of its `stage` for a call answered from the cache.
//!
//! Why the OpenTelemetry API directly rather than `tracing-opentelemetry`: the spans are built
//! from recorded events after the fact, with their real start and end times, and a stage's
//! attempts run as concurrent tasks; `tracing`'s spans follow the code's scopes and clocks.
//!
//! Export never fails a run: the SDK's batch processor sends from its own thread with reqwest's
//! blocking client, the first failure is reported once on stderr, and the rest are dropped.
//! Dropping the subscriber (at the end of the command) ends what is still open and flushes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use stagegate_engine::backend::CallIdentity;
use stagegate_engine::event::{AttemptStatus, Event, EventSink, SinkError, StageEnd, now_ms};

/// The variables that turn export on; either one is enough.
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// How long the flush at the end of a command may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Feedback texts are long; a span event keeps their start.
const MAX_TEXT_ATTRIBUTE: usize = 1024;

/// The `otel` subscriber: spans of one run's events.
pub struct OtelExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    run_id: String,
    run: Option<Context>,
    /// Open `stage` spans by stage id.
    stages: HashMap<String, Context>,
    /// Open `attempt` spans by call identity.
    attempts: HashMap<AttemptKey, opentelemetry_sdk::trace::Span>,
    /// Attributes of a stage whose span is not open yet (its inputs are scored before it
    /// starts).
    early_stage_attributes: HashMap<String, Vec<KeyValue>>,
    /// The latest event time: where spans still open at the end of the process end.
    last_at_ms: Option<i64>,
    warning: Arc<ExportWarning>,
}

/// (stage, phase, agent, attempt, artifact)
type AttemptKey = (String, &'static str, String, u32, Option<String>);

impl OtelExport {
    /// The subscriber for run `run_id` when an OTLP endpoint is configured; `None` without one,
    /// or (with a warning) when the exporter cannot be built from the variables.
    pub fn from_env(run_id: &str) -> Option<OtelExport> {
        let disabled = std::env::var("OTEL_SDK_DISABLED")
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let endpoint = ENDPOINT_VARIABLES.iter().find_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })?;
        if disabled {
            return None;
        }
        let warning = Arc::new(ExportWarning::new(endpoint));
        // The endpoint (with `/v1/traces` appended to the general one), headers and timeout
        // come from the standard variables; the protocol is the one compiled in.
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                warning.report(&error.to_string());
                return None;
            }
        };
        Some(OtelExport::with_exporter(run_id, exporter, warning))
    }

    /// The subscriber sending its spans to `exporter` (OTLP, or an in-memory one in tests).
    fn with_exporter(
        run_id: &str,
        exporter: impl SpanExporter + 'static,
        warning: Arc<ExportWarning>,
    ) -> OtelExport {
        let service_name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "stagegate".to_owned());
        let resource = Resource::builder()
            .with_service_name(service_name)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(RunTraceIds::new(run_id))
            .with_batch_exporter(ReportingExporter {
                inner: exporter,
                warning: warning.clone(),
            })
            .build();
        let tracer = provider.tracer("stagegate");
        OtelExport {
            provider,
            tracer,
            run_id: run_id.to_owned(),
            run: None,
            stages: HashMap::new(),
            attempts: HashMap::new(),
            early_stage_attributes: HashMap::new(),
            last_at_ms: None,
            warning,
        }
    }

    fn record(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                feature_dir,
                stages,
                at_ms,
            } => {
                let span = self
                    .tracer
                    .span_builder("run")
                    .with_kind(SpanKind::Internal)
                    .with_start_time(time(*at_ms))
                    .with_attributes(vec![
                        KeyValue::new("stagegate.run_id", run_id.clone()),
                        KeyValue::new("stagegate.feature_dir", feature_dir.clone()),
                        KeyValue::new("stagegate.stages", stages.join(",")),
                    ])
                    .start_with_context(&self.tracer, &Context::new());
                self.run = Some(Context::new().with_span(span));
            }
            Event::StageStarted {
                stage,
                name,
                agents,
                concurrency,
                quorum_needed,
                at_ms,
                ..
            } => {
                let mut attributes = vec![
                    KeyValue::new("stagegate.stage", stage.clone()),
                    KeyValue::new("stagegate.stage.name", name.clone()),
                    KeyValue::new("stagegate.agents", agents.join(",")),
                    KeyValue::new("stagegate.concurrency", count(*concurrency)),
                    KeyValue::new("stagegate.quorum_needed", count(*quorum_needed)),
                ];
                attributes.extend(
                    self.early_stage_attributes
                        .remove(stage)
                        .unwrap_or_default(),
                );
                let context = self.open_stage(*at_ms, attributes);
                if let Some(earlier) = self.stages.insert(stage.clone(), context) {
                    earlier.span().end_with_timestamp(time(*at_ms));
                }
            }
            Event::InputsScored {
                stage,
                complexity,
                uncertainty,
                at_ms: _,
                ..
            } => {
                let attributes = [
                    KeyValue::new("stagegate.complexity", i64::from(*complexity)),
                    KeyValue::new("stagegate.uncertainty", i64::from(*uncertainty)),
                ];
                // Scored before the stage starts: kept for its span.
                match self.stages.get(stage) {
                    Some(context) => context.span().set_attributes(attributes),
                    None => self
                        .early_stage_attributes
                        .entry(stage.clone())
                        .or_default()
                        .extend(attributes),
                }
            }
            Event::AttemptStarted {
                identity,
                backend,
                at_ms,
                ..
            } => {
                let span = self.open_attempt(identity, backend, *at_ms);
                self.attempts.insert(attempt_key(identity), span);
            }
            Event::AttemptFinished {
                identity,
                backend,
                status,
                failure,
                duration_ms,
                output_bytes,
                confidence,
                usage,
                at_ms,
                ..
            } => {
                let mut span = match self.attempts.remove(&attempt_key(identity)) {
                    Some(span) => span,
                    None => {
                        let started = at_ms.saturating_sub(millis(*duration_ms));
                        self.open_attempt(identity, backend, started)
                    }
                };
                span.set_attribute(KeyValue::new("stagegate.status", status.as_str()));
                span.set_attribute(KeyValue::new("stagegate.duration_ms", millis(*duration_ms)));
                span.set_attribute(KeyValue::new(
                    "stagegate.output_bytes",
                    count(*output_bytes),
                ));
                if let Some(confidence) = confidence {
                    span.set_attribute(KeyValue::new("stagegate.confidence", *confidence));
                }
                if let Some(usage) = usage {
                    span.set_attribute(KeyValue::new(
                        "gen_ai.usage.input_tokens",
                        tokens(usage.input_tokens),
                    ));
                    span.set_attribute(KeyValue::new(
                        "gen_ai.usage.output_tokens",
                        tokens(usage.output_tokens),
                    ));
                }
                if let Some(failure) = failure {
                    span.set_attribute(KeyValue::new(
                        "stagegate.failure.kind",
                        failure.reason_code(),
                    ));
                }
                if *status != AttemptStatus::Ok {
                    let description = failure
                        .as_ref()
                        .map_or_else(|| status.as_str().to_owned(), ToString::to_string);
                    span.set_status(Status::error(description));
                }
                span.end_with_timestamp(time(*at_ms));
            }
            Event::CacheHit {
                identity,
                backend,
                cache_key,
                output_bytes,
                confidence,
                at_ms,
                ..
            } => {
                let mut attributes = identity_attributes(identity, backend);
                attributes.push(KeyValue::new("stagegate.cache_key", cache_key.clone()));
                attributes.push(KeyValue::new(
                    "stagegate.output_bytes",
                    count(*output_bytes),
                ));
                if let Some(confidence) = confidence {
                    attributes.push(KeyValue::new("stagegate.confidence", *confidence));
                }
                let parent = self.stage(&identity.stage, *at_ms);
                let mut span = self
                    .tracer
                    .span_builder("cache_hit")
                    .with_kind(SpanKind::Internal)
                    .with_start_time(time(*at_ms))
                    .with_attributes(attributes)
                    .start_with_context(&self.tracer, &parent);
                span.end_with_timestamp(time(*at_ms));
            }
            Event::RetryScheduled {
                identity,
                delay_ms,
                at_ms,
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.agent", identity.agent.clone()),
                    KeyValue::new("stagegate.attempt", i64::from(identity.attempt)),
                    KeyValue::new("stagegate.delay_ms", millis(*delay_ms)),
                ];
                self.stage_event(&identity.stage, "retry_scheduled", *at_ms, attributes);
            }
            Event::FallbackStarted {
                stage,
                agent,
                from,
                to,
                at_ms,
                ..
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.agent", agent.clone()),
                    KeyValue::new("stagegate.from", from.clone()),
                    KeyValue::new("stagegate.to", to.clone()),
                ];
                self.stage_event(stage, "fallback_started", *at_ms, attributes);
            }
            Event::Adjusted {
                stage,
                setting,
                from,
                to,
                reason,
                at_ms,
                ..
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.setting", setting.clone()),
                    KeyValue::new("stagegate.from", from.clone()),
                    KeyValue::new("stagegate.to", to.clone()),
                    KeyValue::new("stagegate.reason", reason.clone()),
                ];
                self.stage_event(stage, "adjusted", *at_ms, attributes);
            }
            Event::ContextCut {
                stage,
                phase,
                agent,
                cuts,
                at_ms,
                ..
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.phase", phase.as_str()),
                    KeyValue::new("stagegate.agent", agent.clone()),
                    KeyValue::new("stagegate.cuts", cuts.join("; ")),
                ];
                self.stage_event(stage, "context_cut", *at_ms, attributes);
            }
            Event::AnswerTruncated {
                identity,
                backend,
                cuts,
                handling,
                at_ms,
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.phase", identity.phase.as_str()),
                    KeyValue::new("stagegate.agent", identity.agent.clone()),
                    KeyValue::new("stagegate.backend", backend.clone()),
                    KeyValue::new("stagegate.cuts", i64::from(*cuts)),
                    KeyValue::new("stagegate.handling", handling.as_str()),
                ];
                self.stage_event(&identity.stage, "answer_truncated", *at_ms, attributes);
            }
            // Counted in the run log and `status`; a trace has nothing to show for it.
            Event::ReasoningStripped { .. } => {}
            Event::QuorumMet {
                stage,
                succeeded,
                needed,
                total,
                at_ms,
                ..
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.succeeded", count(*succeeded)),
                    KeyValue::new("stagegate.needed", count(*needed)),
                    KeyValue::new("stagegate.total", count(*total)),
                ];
                self.stage_event(stage, "quorum_met", *at_ms, attributes);
            }
            Event::QuorumLost {
                stage,
                reason,
                at_ms,
                ..
            } => {
                let attributes = vec![KeyValue::new("stagegate.reason", reason.clone())];
                self.stage_event(stage, "quorum_lost", *at_ms, attributes);
            }
            Event::SequentialPassStarted {
                stage,
                agents,
                at_ms,
                ..
            } => {
                let attributes = vec![KeyValue::new("stagegate.agents", agents.join(","))];
                self.stage_event(stage, "sequential_pass_started", *at_ms, attributes);
            }
            Event::AgentsFinished {
                stage,
                succeeded,
                failed,
                at_ms,
                ..
            } => {
                let failed: Vec<&str> = failed.iter().map(|failure| &*failure.agent).collect();
                let attributes = vec![
                    KeyValue::new("stagegate.succeeded", succeeded.join(",")),
                    KeyValue::new("stagegate.failed", failed.join(",")),
                ];
                self.stage_event(stage, "agents_finished", *at_ms, attributes);
            }
            Event::ArtifactSynthesized {
                stage,
                artifact,
                iteration,
                bytes,
                hash,
                at_ms,
                ..
            } => {
                let attributes = vec![
                    KeyValue::new("stagegate.artifact", artifact.clone()),
                    KeyValue::new("stagegate.iteration", i64::from(*iteration)),
                    KeyValue::new("stagegate.bytes", count(*bytes)),
                    KeyValue::new("stagegate.hash", hash.clone()),
                ];
                self.stage_event(stage, "artifact_synthesized", *at_ms, attributes);
            }
            Event::QaVerdict {
                stage,
                iteration,
                verdict,
                feedback,
                at_ms,
                ..
            } => {
                let verdict = match verdict {
                    stagegate_engine::event::Verdict::Pass => "pass",
                    stagegate_engine::event::Verdict::Rework => "rework",
                };
                let attributes = vec![
                    KeyValue::new("stagegate.iteration", i64::from(*iteration)),
                    KeyValue::new("stagegate.verdict", verdict),
                    KeyValue::new("stagegate.feedback", shortened(feedback)),
                ];
                self.stage_event(stage, "qa_verdict", *at_ms, attributes);
            }
            Event::GateRequested {
                stage,
                artifacts,
                at_ms,
                ..
            } => {
                let attributes = vec![KeyValue::new("stagegate.artifacts", artifacts.join(","))];
                self.stage_event(stage, "gate_requested", *at_ms, attributes);
            }
            Event::GateWaiting { stage, at_ms, .. } => {
                self.stage_event(stage, "gate_waiting", *at_ms, Vec::new());
            }
            Event::GateDecided {
                stage,
                decision,
                reason,
                note,
                at_ms,
                ..
            } => {
                let mut attributes = vec![KeyValue::new("stagegate.decision", decision.as_str())];
                if let Some(reason) = reason {
                    attributes.push(KeyValue::new("stagegate.reason", shortened(reason)));
                }
                if let Some(note) = note {
                    attributes.push(KeyValue::new("stagegate.note", shortened(note)));
                }
                self.stage_event(stage, "gate_decided", *at_ms, attributes);
            }
            Event::StageFinished {
                stage,
                end,
                duration_ms,
                reason,
                at_ms,
                ..
            } => {
                let context = match self.stages.remove(stage) {
                    Some(context) => context,
                    None => self.stage(stage, at_ms.saturating_sub(millis(*duration_ms))),
                };
                self.stages.remove(stage);
                let span = context.span();
                span.set_attribute(KeyValue::new("stagegate.end", stage_end(*end)));
                span.set_attribute(KeyValue::new("stagegate.duration_ms", millis(*duration_ms)));
                if let Some(reason) = reason {
                    span.set_attribute(KeyValue::new("stagegate.reason", shortened(reason)));
                }
                if *end == StageEnd::Failed {
                    span.set_status(Status::error(reason.clone().unwrap_or_default()));
                }
                span.end_with_timestamp(time(*at_ms));
            }
            Event::RunFinished { end, at_ms, .. } => {
                self.end_open_attempts_and_stages(*at_ms);
                if let Some(context) = self.run.take() {
                    let span = context.span();
                    span.set_attribute(KeyValue::new("stagegate.end", stage_end(*end)));
                    if *end == StageEnd::Failed {
                        span.set_status(Status::error("a stage failed"));
                    }
                    span.end_with_timestamp(time(*at_ms));
                }
            }
            // Written by a newer stagegate: nothing this build can map.
            Event::Unknown => {}
        }
    }

    /// The run's span context, opened on the first event of a process that continues a run.
    fn run_context(&mut self, at_ms: i64) -> Context {
        if let Some(context) = &self.run {
            return context.clone();
        }
        let span = self
            .tracer
            .span_builder("run")
            .with_kind(SpanKind::Internal)
            .with_start_time(time(at_ms))
            .with_attributes(vec![
                KeyValue::new("stagegate.run_id", self.run_id.clone()),
                KeyValue::new("stagegate.continued", true),
            ])
            .start_with_context(&self.tracer, &Context::new());
        let context = Context::new().with_span(span);
        self.run = Some(context.clone());
        context
    }

    fn open_stage(&mut self, at_ms: i64, attributes: Vec<KeyValue>) -> Context {
        let parent = self.run_context(at_ms);
        let span = self
            .tracer
            .span_builder("stage")
            .with_kind(SpanKind::Internal)
            .with_start_time(time(at_ms))
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    /// The stage's span context, opened for a stage this process continues (a gate decided on
    /// resume) without its StageStarted.
    fn stage(&mut self, stage: &str, at_ms: i64) -> Context {
        if let Some(context) = self.stages.get(stage) {
            return context.clone();
        }
        let context = self.open_stage(
            at_ms,
            vec![
                KeyValue::new("stagegate.stage", stage.to_owned()),
                KeyValue::new("stagegate.continued", true),
            ],
        );
        self.stages.insert(stage.to_owned(), context.clone());
        context
    }

    fn stage_event(
        &mut self,
        stage: &str,
        name: &'static str,
        at_ms: i64,
        attributes: Vec<KeyValue>,
    ) {
        self.stage(stage, at_ms)
            .span()
            .add_event_with_timestamp(name, time(at_ms), attributes);
    }

    fn open_attempt(
        &mut self,
        identity: &CallIdentity,
        backend: &str,
        at_ms: i64,
    ) -> opentelemetry_sdk::trace::Span {
        let parent = self.stage(&identity.stage, at_ms);
        self.tracer
            .span_builder("attempt")
            .with_kind(SpanKind::Internal)
            .with_start_time(time(at_ms))
            .with_attributes(identity_attributes(identity, backend))
            .start_with_context(&self.tracer, &parent)
    }

    /// Ends what the run left open (an interrupted attempt, a stage waiting at its gate).
    fn end_open_attempts_and_stages(&mut self, at_ms: i64) {
        for (_, mut span) in self.attempts.drain() {
            span.set_attribute(KeyValue::new("stagegate.status", "unfinished"));
            span.end_with_timestamp(time(at_ms));
        }
        for (_, context) in self.stages.drain() {
            context.span().end_with_timestamp(time(at_ms));
        }
    }
}

impl EventSink for OtelExport {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.last_at_ms = self.last_at_ms.max(Some(event_time(event)));
        self.record(event);
        Ok(())
    }
}

impl Drop for OtelExport {
    /// The end of the command: ends the spans still open at the last event's time and flushes
    /// them, waiting at most [`SHUTDOWN_TIMEOUT`].
    fn drop(&mut self) {
        let at_ms = self.last_at_ms.unwrap_or_else(now_ms);
        self.end_open_attempts_and_stages(at_ms);
        if let Some(context) = self.run.take() {
            context.span().end_with_timestamp(time(at_ms));
        }
        let provider = self.provider.clone();
        let shutdown = move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
        // The flush blocks until the batch processor's thread has sent; on a runtime worker,
        // let the runtime move its other tasks elsewhere meanwhile.
        let in_multi_thread_runtime = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        let result = if in_multi_thread_runtime {
            tokio::task::block_in_place(shutdown)
        } else {
            shutdown()
        };
        if let Err(error) = result {
            self.warning.report(&error.to_string());
        }
    }
}

/// The first export failure of a process, reported once on stderr.
#[derive(Debug)]
struct ExportWarning {
    endpoint: String,
    reported: AtomicBool,
}

impl ExportWarning {
    fn new(endpoint: String) -> Self {
        ExportWarning {
            endpoint,
            reported: AtomicBool::new(false),
        }
    }

    fn report(&self, error: &str) {
        if !self.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: OpenTelemetry trace export to {} failed: {error}; the run goes on without it\nhint: check the collector and OTEL_EXPORTER_OTLP_ENDPOINT, or unset it",
                self.endpoint
            );
        }
    }
}

/// An exporter that reports its first failure instead of letting the SDK drop it silently.
#[derive(Debug)]
struct ReportingExporter<E> {
    inner: E,
    warning: Arc<ExportWarning>,
}

impl<E: SpanExporter> SpanExporter for ReportingExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let export = self.inner.export(batch);
        let warning = self.warning.clone();
        async move {
            let result = export.await;
            if let Err(error) = &result {
                warning.report(&error.to_string());
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Trace ids derived from the run id, so that every process of a run (the run up to a gate, the
/// `resume` after it) exports into one trace; span ids are random.
#[derive(Debug)]
struct RunTraceIds {
    trace_id: TraceId,
    spans: RandomIdGenerator,
}

impl RunTraceIds {
    fn new(run_id: &str) -> Self {
        let hash = blake3::hash(format!("stagegate trace v1\n{run_id}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_bytes()[..16]);
        RunTraceIds {
            trace_id: TraceId::from_bytes(bytes),
            spans: RandomIdGenerator::default(),
        }
    }
}

impl IdGenerator for RunTraceIds {
    fn new_trace_id(&self) -> TraceId {
        self.trace_id
    }

    fn new_span_id(&self) -> SpanId {
        self.spans.new_span_id()
    }
}

fn attempt_key(identity: &CallIdentity) -> AttemptKey {
    (
        identity.stage.clone(),
        identity.phase.as_str(),
        identity.agent.clone(),
        identity.attempt,
        identity.artifact.clone(),
    )
}

fn identity_attributes(identity: &CallIdentity, backend: &str) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("stagegate.stage", identity.stage.clone()),
        KeyValue::new("stagegate.phase", identity.phase.as_str()),
        KeyValue::new("stagegate.agent", identity.agent.clone()),
        KeyValue::new("stagegate.attempt", i64::from(identity.attempt)),
        KeyValue::new("stagegate.backend", backend.to_owned()),
    ];
    if let Some(artifact) = &identity.artifact {
        attributes.push(KeyValue::new("stagegate.artifact", artifact.clone()));
    }
    attributes
}

fn stage_end(end: StageEnd) -> &'static str {
    match end {
        StageEnd::Approved => "approved",
        StageEnd::Rejected => "rejected",
        StageEnd::AwaitingDecision => "awaiting_decision",
        StageEnd::Failed => "failed",
        StageEnd::Interrupted => "interrupted",
    }
}

/// The event's time; an event of a newer stagegate (which has none this build can read)
/// counts at about its time.
fn event_time(event: &Event) -> i64 {
    event.at_ms().unwrap_or_else(now_ms)
}

/// An event time (milliseconds since the Unix epoch) as a span time.
fn time(at_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0))
}

fn millis(duration_ms: u64) -> i64 {
    i64::try_from(duration_ms).unwrap_or(i64::MAX)
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn tokens(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn shortened(text: &str) -> String {
    if text.len() <= MAX_TEXT_ATTRIBUTE {
        return text.to_owned();
    }
    let mut end = MAX_TEXT_ATTRIBUTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use stagegate_engine::backend::{Failure, Phase};

    use super::*;

    /// Keeps what the provider exports.
    #[derive(Debug, Clone, Default)]
    struct Collected(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collected {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("not poisoned").extend(batch);
            Ok(())
        }
    }

    fn identity(agent: &str) -> CallIdentity {
        CallIdentity {
            run_id: "r1".into(),
            stage: "plan".into(),
            phase: Phase::Agent,
            agent: agent.into(),
            attempt: 1,
            artifact: None,
        }
    }

    fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
        span.attributes
            .iter()
            .find(|pair| pair.key.as_str() == key)
            .map(|pair| &pair.value)
    }

    #[test]
    fn events_become_nested_spans_with_the_events_times() {
        let collected = Collected::default();
        let warning = Arc::new(ExportWarning::new("memory".into()));
        let mut export = OtelExport::with_exporter("r1", collected.clone(), warning);
        let events = [
            Event::RunStarted {
                run_id: "r1".into(),
                feature_dir: "specs/001-x".into(),
                stages: vec!["plan".into()],
                at_ms: 1_000,
            },
            Event::StageStarted {
                run_id: "r1".into(),
                stage: "plan".into(),
                name: "Plan".into(),
                agents: vec!["a".into(), "b".into()],
                concurrency: 2,
                quorum_needed: 1,
                at_ms: 1_010,
            },
            Event::AttemptStarted {
                identity: identity("a"),
                backend: "mock".into(),
                at_ms: 1_020,
                prompt: Arc::from(""),
                prompt_joints: Arc::default(),
            },
            Event::AttemptFinished {
                identity: identity("a"),
                backend: "mock".into(),
                status: AttemptStatus::Failed,
                failure: Some(Failure::permanent("no")),
                duration_ms: 30,
                output_bytes: 0,
                output_hash: None,
                confidence: None,
                usage: None,
                cache_key: None,
                at_ms: 1_050,
                output: Arc::from(""),
                stderr: Arc::from(&b""[..]),
            },
            Event::CacheHit {
                identity: identity("b"),
                backend: "mock".into(),
                cache_key: "k".into(),
                output_bytes: 3,
                output_hash: "h".into(),
                confidence: None,
                at_ms: 1_060,
                prompt: Arc::from(""),
                prompt_joints: Arc::default(),
                output: Arc::from(""),
            },
            Event::GateDecided {
                run_id: "r1".into(),
                stage: "plan".into(),
                decision: stagegate_engine::event::DecisionKind::Approve,
                reason: None,
                note: None,
                diff: None,
                at_ms: 1_080,
            },
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for event in &events {
            runtime.block_on(export.emit(event)).expect("never fails");
        }
        drop(export);

        let spans = collected.0.lock().expect("not poisoned").clone();
        let named = |name: &str| {
            spans
                .iter()
                .find(|span| span.name == name)
                .unwrap_or_else(|| panic!("a {name} span in {spans:?}"))
        };
        let (run, stage, attempt, cache_hit) = (
            named("run"),
            named("stage"),
            named("attempt"),
            named("cache_hit"),
        );
        assert_eq!(stage.parent_span_id, run.span_context.span_id());
        assert_eq!(attempt.parent_span_id, stage.span_context.span_id());
        assert_eq!(cache_hit.parent_span_id, stage.span_context.span_id());
        assert_eq!(run.span_context.trace_id(), RunTraceIds::new("r1").trace_id);
        assert_eq!(attempt.start_time, time(1_020));
        assert_eq!(attempt.end_time, time(1_050));
        assert_eq!(cache_hit.start_time, cache_hit.end_time);
        assert!(matches!(attempt.status, Status::Error { .. }));
        assert_eq!(
            attribute(attempt, "stagegate.failure.kind").map(ToString::to_string),
            Some("permanent".into())
        );
        // Still open at the end of the process: ended at the last event's time.
        assert_eq!(stage.end_time, time(1_080));
        assert_eq!(run.end_time, time(1_080));
        assert!(
            stage
                .events
                .iter()
                .any(|event| event.name == "gate_decided")
        );
    }
}
