//! The raw configuration: exactly what a TOML file says, nothing resolved.
//!
//! Every key is optional here, because both the embedded defaults and `stagegate.toml` use this
//! schema and a user file usually sets only a handful of keys. Each value keeps its byte span
//! (through [`toml::Spanned`]) and, once merged, the layer it came from, so that validation can
//! point an error at the exact key in the exact file — or name the environment variable or flag —
//! long after the files were parsed.
//!
//! Integers are read as `i64` (TOML's integer) rather than the final unsigned types, so that
//! `concurrency = 0` or `retries = -1` reach validation and get a range error with a help text
//! instead of serde's terse type error.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use toml::Spanned;

/// Which layer a value came from, in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layer {
    /// The embedded `defaults.toml`.
    Defaults,
    /// The user-level file, `$XDG_CONFIG_HOME/stagegate/config.toml`: the person's own
    /// defaults for every repository.
    UserConfig,
    /// The repository's `stagegate.toml` (or `--config FILE`).
    Repository,
    /// An environment variable, by name.
    Environment(String),
    /// A command-line flag, by name (`--concurrency`).
    Flag(String),
}

/// Where a value is: its layer and, for files, its byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) layer: Layer,
    /// Byte range in the layer's file; empty for the environment and flags.
    pub(crate) span: Range<usize>,
}

impl Location {
    /// A value that has no place in a file: an environment variable or a flag.
    pub(crate) fn outside_files(layer: Layer) -> Self {
        Location { layer, span: 0..0 }
    }
}

/// A value with its location.
///
/// Deserialized through [`toml::Spanned`]; the layer is filled in by the merge pass
/// ([`crate::merge`]), which moves every value into the merged configuration anyway.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sourced<T> {
    pub(crate) value: T,
    pub(crate) location: Location,
}

impl<T> Sourced<T> {
    pub(crate) fn new(value: T, location: Location) -> Self {
        Sourced { value, location }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sourced<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Sourced {
            value: spanned.into_inner(),
            // Placeholder: `merge` stamps the real layer.
            location: Location {
                layer: Layer::Defaults,
                span,
            },
        })
    }
}

/// A list of names (agents, artifacts, stages), each kept with its span so that an error can
/// point at the one bad entry. The entries share the layer of the list itself.
pub(crate) type NameList = Sourced<Vec<Spanned<String>>>;

/// A whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub(crate) pipeline: Option<NameList>,
    pub(crate) defaults: RawDefaults,
    pub(crate) timeouts: RawTimeouts,
    pub(crate) cache: RawCache,
    pub(crate) adaptive: RawAdaptive,
    pub(crate) prices: BTreeMap<String, RawPrice>,
    pub(crate) backends: BTreeMap<String, RawBackend>,
    pub(crate) stages: BTreeMap<String, RawStage>,
    pub(crate) agents: BTreeMap<String, RawAgent>,
    pub(crate) cluster: RawCluster,
}

/// `[defaults]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawDefaults {
    pub(crate) backend: Option<Sourced<String>>,
    pub(crate) concurrency: Option<Sourced<i64>>,
    pub(crate) retries: Option<Sourced<i64>>,
    pub(crate) backoff: Option<Sourced<RawDuration>>,
    pub(crate) min_success_ratio: Option<Sourced<f64>>,
    pub(crate) synthesis_iterations: Option<Sourced<i64>>,
    pub(crate) output_cap: Option<Sourced<RawSize>>,
    pub(crate) agent_memory: Option<Sourced<RawSize>>,
    pub(crate) large_context_memory: Option<Sourced<RawSize>>,
}

/// `[timeouts]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTimeouts {
    pub(crate) default: Option<Sourced<RawDuration>>,
    pub(crate) complex_analysis: Option<Sourced<RawDuration>>,
    pub(crate) simple_check: Option<Sourced<RawDuration>>,
    pub(crate) review: Option<Sourced<RawDuration>>,
    pub(crate) synthesis: Option<Sourced<RawDuration>>,
    pub(crate) qa: Option<Sourced<RawDuration>>,
    pub(crate) stage: Option<Sourced<RawDuration>>,
    pub(crate) kill_grace: Option<Sourced<RawDuration>>,
}

/// `[cache]`: time to live of cached answers, per phase.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCache {
    pub(crate) agent: Option<Sourced<RawDuration>>,
    pub(crate) review: Option<Sourced<RawDuration>>,
    pub(crate) synthesis: Option<Sourced<RawDuration>>,
    pub(crate) qa: Option<Sourced<RawDuration>>,
}

/// `[cluster]`: where runs go when they run on Temporal instead of in this process.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCluster {
    pub(crate) temporal: Option<Sourced<String>>,
    pub(crate) namespace: Option<Sourced<String>>,
    pub(crate) task_queue: Option<Sourced<String>>,
    pub(crate) repository: Option<Sourced<String>>,
}

/// `[adaptive]`: the thresholds of the adaptive rules.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAdaptive {
    pub(crate) enabled: Option<Sourced<bool>>,
    pub(crate) complexity_threshold: Option<Sourced<i64>>,
    pub(crate) uncertainty_threshold: Option<Sourced<i64>>,
    pub(crate) failure_rate: Option<Sourced<f64>>,
    pub(crate) timeout_rate: Option<Sourced<f64>>,
}

/// `[prices.BACKEND]`: what a backend's tokens cost, for the cost shown beside the tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPrice {
    pub(crate) input_per_mtok: Option<Sourced<f64>>,
    pub(crate) output_per_mtok: Option<Sourced<f64>>,
}

/// `[backends.NAME]`: the keys of every kind in one table, so that no `untagged` enum is needed;
/// validation picks the ones the `kind` uses and warns about the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawBackend {
    pub(crate) kind: Option<Sourced<String>>,
    pub(crate) command: Option<NameList>,
    pub(crate) env: Option<Sourced<BTreeMap<String, String>>>,
    /// `command`: the variables (of `env`, or inherited) whose values are secrets, redacted
    /// from everything stagegate keeps or shows.
    pub(crate) secret_env: Option<NameList>,
    /// `command`: how to read the program's stdout (`text`, `claude-json`, `gemini-json`).
    pub(crate) output_format: Option<Sourced<String>>,
    /// `command`: the spec-kit integration key whose `SPECKIT_INTEGRATION_<KEY>_*` variables
    /// apply to the command (`claude`, `cursor-agent`).
    pub(crate) speckit_integration: Option<Sourced<String>>,
    /// `command`: the memory cap of the agent's process tree (`"1GiB"`).
    pub(crate) memory: Option<Sourced<RawSize>>,
    pub(crate) base_url: Option<Sourced<String>>,
    pub(crate) model: Option<Sourced<String>>,
    pub(crate) api_key_env: Option<Sourced<String>>,
    pub(crate) temperature: Option<Sourced<f64>>,
    pub(crate) max_tokens: Option<Sourced<i64>>,
    /// `openai`: `chat-completions` or `responses`.
    pub(crate) api: Option<Sourced<String>>,
    /// `openai`, `anthropic`: how long an answer may stall.
    pub(crate) idle_timeout: Option<Sourced<RawDuration>>,
    /// `openai`, `anthropic`: `continue`, `fail` or `accept` a cut answer.
    pub(crate) on_truncation: Option<Sourced<String>>,
    pub(crate) latency: Option<Sourced<RawDuration>>,
    pub(crate) fail_attempts: Option<Sourced<i64>>,
    pub(crate) output: Option<Sourced<String>>,
    /// The last layer that wrote this table; errors about a missing key point at its header.
    #[serde(skip)]
    pub(crate) declared_in: Option<Layer>,
}

/// `[stages.ID]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawStage {
    pub(crate) name: Option<Sourced<String>>,
    pub(crate) alias: Option<Sourced<String>>,
    pub(crate) trigger: Option<Sourced<String>>,
    pub(crate) agents: Option<NameList>,
    pub(crate) reviewer: Option<Sourced<String>>,
    pub(crate) synthesizer: Option<Sourced<String>>,
    pub(crate) qa: Option<Sourced<String>>,
    pub(crate) required: Option<NameList>,
    pub(crate) optional: Option<NameList>,
    pub(crate) inputs: Option<NameList>,
    pub(crate) question: Option<Sourced<String>>,
    pub(crate) concurrency: Option<Sourced<i64>>,
    pub(crate) summary_artifact: Option<Sourced<String>>,
    #[serde(skip)]
    pub(crate) declared_in: Option<Layer>,
}

/// `[agents.ID]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAgent {
    pub(crate) role: Option<Sourced<String>>,
    pub(crate) task: Option<Sourced<String>>,
    pub(crate) backend: Option<Sourced<String>>,
    pub(crate) fallback: Option<Sourced<String>>,
    pub(crate) timeout_class: Option<Sourced<String>>,
    pub(crate) required: Option<Sourced<bool>>,
    pub(crate) large_context: Option<Sourced<bool>>,
    pub(crate) retries: Option<Sourced<i64>>,
    #[serde(skip)]
    pub(crate) declared_in: Option<Layer>,
}

/// A duration as written (`"30s"`); parsed by [`crate::duration`] during validation so that the
/// error can say which layer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDuration(pub(crate) String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = RawDuration;
            // serde's "invalid type" error quotes this, so a bare `timeout = 30` tells the user
            // what to write instead.
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(r#"a duration string such as "30s", "250ms" or "2m""#)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(value.to_owned()))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

/// A size as written: `"1MiB"`, `"256MB"` or a plain integer of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawSize {
    Text(String),
    Bytes(i64),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(
                    r#"a size such as "1MiB", "512KiB", "256MB" or a whole number of bytes"#,
                )
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(value.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(i64::try_from(value).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}
