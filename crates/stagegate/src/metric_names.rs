//! The name, type and help text of every metric `stagegate metrics` reports, in one table.
//!
//! The names are PRODUCT.md §7's. Both output formats take their keys from here: the JSON report
//! uses the bare names, the Prometheus text format prefixes them with [`PREFIX`]. How each value
//! is computed is documented in `commands/metrics.rs`; the help texts say it in one line.

/// Prepended to every name in the Prometheus text format.
pub(crate) const PREFIX: &str = "stagegate_";

/// The Prometheus metric type written on the `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    /// A value that can go up and down: the rates, scores and averages.
    Gauge,
    /// A count that only grows as runs are recorded.
    Counter,
    /// A distribution reported as `<name>_sum` and `<name>_count`: the durations.
    Summary,
}

impl MetricKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Summary => "summary",
        }
    }
}

/// One metric: its name without the prefix, its type and its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricName {
    pub(crate) name: &'static str,
    pub(crate) kind: MetricKind,
    pub(crate) help: &'static str,
}

const fn metric(name: &'static str, kind: MetricKind, help: &'static str) -> MetricName {
    MetricName { name, kind, help }
}

// ----- the whole store -------------------------------------------------------------------

pub(crate) const RUNS: MetricName = metric(
    "runs",
    MetricKind::Gauge,
    "Runs recorded in .stagegate/state.db.",
);

// ----- stage (label: stage) --------------------------------------------------------------

pub(crate) const STAGE_DURATION_MS: MetricName = metric(
    "stage_duration_ms",
    MetricKind::Summary,
    "Milliseconds from a stage's start to its gate request (or to its end when it reached no gate); the wait for a person's decision is excluded.",
);
pub(crate) const STAGE_DURATION_MS_MAX: MetricName = metric(
    "stage_duration_ms_max",
    MetricKind::Gauge,
    "The longest stage_duration_ms observed for the stage.",
);
pub(crate) const AGENT_SUCCESS_RATE: MetricName = metric(
    "agent_success_rate",
    MetricKind::Gauge,
    "Share of a stage's parallel agents that succeeded (0..1), over every run of the stage.",
);
pub(crate) const RETRY_COUNT: MetricName = metric(
    "retry_count",
    MetricKind::Counter,
    "Parallel-agent attempts beyond each agent's first.",
);
pub(crate) const PARTIAL_FAILURE_RATE: MetricName = metric(
    "partial_failure_rate",
    MetricKind::Gauge,
    "Share of stage runs whose parallel phase ended with at least one failed agent and still reached the gate (0..1).",
);
pub(crate) const APPROVAL_RATE: MetricName = metric(
    "approval_rate",
    MetricKind::Gauge,
    "Approve decisions divided by approve and reject decisions (0..1).",
);
pub(crate) const USER_MODIFICATION_RATE: MetricName = metric(
    "user_modification_rate",
    MetricKind::Gauge,
    "Share of decided gates (approved or rejected) that a person modified at least once (0..1).",
);

// ----- agent (labels: stage, agent, backend) ---------------------------------------------

pub(crate) const EXECUTION_TIME_MS: MetricName = metric(
    "execution_time_ms",
    MetricKind::Summary,
    "Milliseconds each finished attempt ran (cache hits excluded).",
);
pub(crate) const OUTPUT_SIZE_BYTES: MetricName = metric(
    "output_size_bytes",
    MetricKind::Gauge,
    "Average output size in bytes of the finished attempts.",
);
pub(crate) const CONFIDENCE_SCORE: MetricName = metric(
    "confidence_score",
    MetricKind::Gauge,
    "Average CONFIDENCE: line (0..1) of the attempts whose output had one.",
);
pub(crate) const RETRY_ATTEMPTS: MetricName = metric(
    "retry_attempts",
    MetricKind::Counter,
    "Attempts beyond the first of each call (attempt number above 1).",
);
pub(crate) const INPUT_TOKENS: MetricName = metric(
    "input_tokens",
    MetricKind::Counter,
    "Tokens the model reported reading, over every attempt whose backend reports usage.",
);
pub(crate) const OUTPUT_TOKENS: MetricName = metric(
    "output_tokens",
    MetricKind::Counter,
    "Tokens the model reported writing, over every attempt whose backend reports usage.",
);
pub(crate) const COST: MetricName = metric(
    "cost",
    MetricKind::Counter,
    "What the recorded tokens cost, by [prices.BACKEND] in stagegate.toml (0 without a price).",
);
pub(crate) const CACHE_HITS: MetricName = metric(
    "cache_hits",
    MetricKind::Counter,
    "Calls answered from the cache (or a resumed run's own finished work) instead of the agent.",
);
pub(crate) const FAILURE_REASON: MetricName = metric(
    "failure_reason",
    MetricKind::Counter,
    "Failed attempts by reason: timed_out, cancelled, retryable, rate_limited, permanent.",
);

// ----- quality (label: stage) ------------------------------------------------------------

pub(crate) const SYNTHESIS_COHERENCE_SCORE: MetricName = metric(
    "synthesis_coherence_score",
    MetricKind::Gauge,
    "Share of first-iteration QA verdicts that passed (0..1): how often a synthesis needed no QA rework.",
);
pub(crate) const REVIEW_COVERAGE_PERCENT: MetricName = metric(
    "review_coverage_percent",
    MetricKind::Gauge,
    "Successful parallel agents the review saw, as a percentage of the stage's agents (0..100).",
);
pub(crate) const QA_MODIFICATIONS_COUNT: MetricName = metric(
    "qa_modifications_count",
    MetricKind::Counter,
    "QA verdicts that sent the synthesis back for rework.",
);
pub(crate) const APPROVAL_FIRST_ATTEMPT_RATE: MetricName = metric(
    "approval_first_attempt_rate",
    MetricKind::Gauge,
    "Share of approved gates approved with no modification before (0..1).",
);

/// Every metric, in the order the Prometheus output lists them.
pub(crate) const METRICS: &[MetricName] = &[
    RUNS,
    STAGE_DURATION_MS,
    STAGE_DURATION_MS_MAX,
    AGENT_SUCCESS_RATE,
    RETRY_COUNT,
    PARTIAL_FAILURE_RATE,
    APPROVAL_RATE,
    USER_MODIFICATION_RATE,
    EXECUTION_TIME_MS,
    OUTPUT_SIZE_BYTES,
    CONFIDENCE_SCORE,
    RETRY_ATTEMPTS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    COST,
    CACHE_HITS,
    FAILURE_REASON,
    SYNTHESIS_COHERENCE_SCORE,
    REVIEW_COVERAGE_PERCENT,
    QA_MODIFICATIONS_COUNT,
    APPROVAL_FIRST_ATTEMPT_RATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_of_the_product_contract_is_in_the_table_once() {
        let contract = [
            "stage_duration_ms",
            "agent_success_rate",
            "retry_count",
            "partial_failure_rate",
            "approval_rate",
            "user_modification_rate",
            "execution_time_ms",
            "output_size_bytes",
            "confidence_score",
            "retry_attempts",
            "failure_reason",
            "synthesis_coherence_score",
            "review_coverage_percent",
            "qa_modifications_count",
            "approval_first_attempt_rate",
        ];
        for name in contract {
            let found = METRICS.iter().filter(|metric| metric.name == name).count();
            assert_eq!(found, 1, "{name}");
        }
        for metric in METRICS {
            assert!(
                metric
                    .name
                    .chars()
                    .all(|character| character.is_ascii_lowercase() || character == '_'),
                "{}",
                metric.name
            );
            assert!(!metric.help.is_empty() && !metric.help.contains('\n'));
        }
    }
}
