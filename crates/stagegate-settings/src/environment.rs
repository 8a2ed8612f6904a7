//! The environment pass: `STAGEGATE_*` variables over the merged files.
//!
//! | variable | sets |
//! |---|---|
//! | `STAGEGATE_BACKEND` | `defaults.backend` |
//! | `STAGEGATE_CONCURRENCY` | `defaults.concurrency` and every stage's `concurrency` |
//! | `STAGEGATE_RETRIES` | `defaults.retries` |
//! | `STAGEGATE_BACKOFF` | `defaults.backoff` (a duration: `"1s"`) |
//! | `STAGEGATE_MIN_SUCCESS_RATIO` | `defaults.min_success_ratio` (`0.0..=1.0`) |
//! | `STAGEGATE_TIMEOUT` | `timeouts.default` (a duration) |
//! | `STAGEGATE_STAGE_TIMEOUT` | `timeouts.stage` (a duration) |
//! | `STAGEGATE_TEMPORAL_ADDRESS` | `cluster.temporal` (`host:port`: runs go to Temporal) |
//!
//! An empty variable counts as unset, as most tools treat `VAR=`. `STAGEGATE_CONCURRENCY` sets the
//! stages' concurrency too because it means what `--concurrency` means: "at most N at once",
//! whatever a stage's own number says.
//!
//! Values that do not even have the right shape (`STAGEGATE_RETRIES=two`) fail here; values of
//! the right shape go through the same validation as file values, whose errors then name the
//! variable instead of a file.

use std::collections::BTreeMap;

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{Layer, Location, RawConfig, RawDuration, Sourced};
use crate::source_file::Sources;

pub const BACKEND: &str = "STAGEGATE_BACKEND";
pub const CONCURRENCY: &str = "STAGEGATE_CONCURRENCY";
pub const RETRIES: &str = "STAGEGATE_RETRIES";
pub const BACKOFF: &str = "STAGEGATE_BACKOFF";
pub const MIN_SUCCESS_RATIO: &str = "STAGEGATE_MIN_SUCCESS_RATIO";
pub const TIMEOUT: &str = "STAGEGATE_TIMEOUT";
pub const STAGE_TIMEOUT: &str = "STAGEGATE_STAGE_TIMEOUT";
pub const TEMPORAL_ADDRESS: &str = "STAGEGATE_TEMPORAL_ADDRESS";

/// Every variable that configures stagegate, for `--help` texts and `stagegate status`.
pub const ENVIRONMENT_VARIABLES: [&str; 8] = [
    BACKEND,
    CONCURRENCY,
    RETRIES,
    BACKOFF,
    MIN_SUCCESS_RATIO,
    TIMEOUT,
    STAGE_TIMEOUT,
    TEMPORAL_ADDRESS,
];

/// Applies the variables of `environment` that are set and not empty.
pub(crate) fn apply_environment(
    raw: &mut RawConfig,
    environment: &BTreeMap<String, String>,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let value_of = |name: &str| {
        environment
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
            .map(|value| Sourced::new(value.to_owned(), located(name)))
    };

    if let Some(address) = value_of(TEMPORAL_ADDRESS) {
        raw.cluster.temporal = Some(address);
    }
    if let Some(backend) = value_of(BACKEND) {
        raw.defaults.backend = Some(backend);
    }
    if let Some(text) = value_of(CONCURRENCY) {
        let concurrency = integer(&text, sources)?;
        for stage in raw.stages.values_mut() {
            stage.concurrency = Some(concurrency.clone());
        }
        raw.defaults.concurrency = Some(concurrency);
    }
    if let Some(text) = value_of(RETRIES) {
        raw.defaults.retries = Some(integer(&text, sources)?);
    }
    if let Some(text) = value_of(BACKOFF) {
        raw.defaults.backoff = Some(duration(text));
    }
    if let Some(text) = value_of(MIN_SUCCESS_RATIO) {
        let ratio = text.value.parse::<f64>().map_err(|_| {
            sources.error(
                &text.location,
                Problem::new(
                    ConfigErrorKind::WrongType,
                    format!("\"{}\" is not a number", text.value),
                    "not a number",
                )
                .help("set it to a number from 0.0 to 1.0, such as 0.75"),
            )
        })?;
        raw.defaults.min_success_ratio = Some(Sourced::new(ratio, text.location));
    }
    if let Some(text) = value_of(TIMEOUT) {
        raw.timeouts.default = Some(duration(text));
    }
    if let Some(text) = value_of(STAGE_TIMEOUT) {
        raw.timeouts.stage = Some(duration(text));
    }
    Ok(())
}

fn located(variable: &str) -> Location {
    Location::outside_files(Layer::Environment(variable.to_owned()))
}

fn integer(text: &Sourced<String>, sources: &Sources) -> Result<Sourced<i64>, ConfigError> {
    match text.value.parse::<i64>() {
        Ok(value) => Ok(Sourced::new(value, text.location.clone())),
        Err(_) => Err(sources.error(
            &text.location,
            Problem::new(
                ConfigErrorKind::WrongType,
                format!("\"{}\" is not a whole number", text.value),
                "not a whole number",
            )
            .help("set it to a whole number, such as 2"),
        )),
    }
}

fn duration(text: Sourced<String>) -> Sourced<RawDuration> {
    Sourced::new(RawDuration(text.value), text.location)
}
