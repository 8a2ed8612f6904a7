//! The validation pass: the merged raw configuration into [`Settings`].
//!
//! Every check that can fail produces a [`Problem`] at the [`Location`] of the value it is about,
//! so the error points at the key in the file that set it, or names the environment variable or
//! flag. Missing keys point at their table's header in the last file that wrote the table.
//!
//! The checks run in a fixed order (defaults, timeouts, backends, agents, stages, pipeline) and
//! stop at the first error, so that the same mistake always gives the same message.

mod agents;
mod backends;
mod cluster;
mod numbers;
mod stages;

use std::collections::BTreeMap;

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{Layer, Location, RawConfig, Sourced};
use crate::settings::{AdaptiveRules, CacheTtls, Defaults, Origin, Price, Settings, Timeouts};
use crate::source_file::Sources;
use crate::suggest::{did_you_mean, quoted_list};
use crate::warning::ConfigWarning;

use self::numbers::limits;

/// Validates `raw` into settings, with the warnings validation found (keys a backend's kind
/// does not use).
pub(crate) fn validate(
    raw: &RawConfig,
    sources: &Sources,
) -> Result<(Settings, Vec<ConfigWarning>), ConfigError> {
    let mut validator = Validator {
        sources,
        raw,
        origins: BTreeMap::new(),
        warnings: Vec::new(),
    };
    let defaults = validator.defaults()?;
    let timeouts = validator.timeouts()?;
    let cache = validator.cache()?;
    let adaptive = validator.adaptive()?;
    let prices = validator.prices()?;
    let backends = validator.backends()?;
    let agents = validator.agents(&defaults)?;
    let stages = validator.stages(&defaults)?;
    let pipeline = validator.pipeline()?;
    let cluster = validator.cluster()?;
    let settings = Settings {
        defaults,
        timeouts,
        cache,
        adaptive,
        prices,
        backends,
        stages,
        agents,
        pipeline,
        cluster,
        origins: validator.origins,
    };
    Ok((settings, validator.warnings))
}

/// A table, for errors about keys it lacks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Table<'a> {
    /// `["stages", "security-audit"]`
    pub(super) path: &'a [&'a str],
    /// The last layer that wrote the table.
    pub(super) declared_in: Option<&'a Layer>,
}

impl Table<'_> {
    pub(super) fn dotted(&self) -> String {
        self.path.join(".")
    }
}

pub(super) struct Validator<'a> {
    pub(super) sources: &'a Sources,
    pub(super) raw: &'a RawConfig,
    pub(super) origins: BTreeMap<String, Origin>,
    pub(super) warnings: Vec<ConfigWarning>,
}

impl Validator<'_> {
    pub(super) fn fail(&self, location: &Location, problem: Problem) -> ConfigError {
        self.sources.error(location, problem)
    }

    /// Where a value came from, in the terms of the public [`Origin`].
    pub(super) fn origin_of(&self, location: &Location) -> Origin {
        match &location.layer {
            Layer::Defaults => Origin::Default,
            Layer::UserConfig | Layer::Repository => match self.sources.file(&location.layer) {
                Some(file) => Origin::File {
                    path: file.path.clone().unwrap_or_default(),
                    line: file.line_column(location.span.start).0,
                },
                None => Origin::Default,
            },
            Layer::Environment(variable) => Origin::Environment(variable.clone()),
            Layer::Flag(flag) => Origin::Flag(flag.clone()),
        }
    }

    /// Records where the value of `path` came from.
    pub(super) fn note(&mut self, path: impl Into<String>, location: &Location) {
        let origin = self.origin_of(location);
        self.origins.insert(path.into(), origin);
    }

    /// The location of a table's header (or the first place it is named), for errors about
    /// what the table lacks.
    pub(super) fn header(&self, table: Table<'_>) -> Location {
        let layer = table.declared_in.cloned().unwrap_or(Layer::Defaults);
        let span = self
            .sources
            .file(&layer)
            .and_then(|file| file.key_span(table.path))
            .unwrap_or(0..0);
        Location { layer, span }
    }

    /// A key the table must have.
    pub(super) fn require<'v, T>(
        &self,
        value: &'v Option<Sourced<T>>,
        table: Table<'_>,
        key: &str,
        help: &str,
    ) -> Result<&'v Sourced<T>, ConfigError> {
        value.as_ref().ok_or_else(|| {
            self.fail(
                &self.header(table),
                Problem::new(
                    ConfigErrorKind::MissingKey,
                    format!("{} has no `{key}`", table.dotted()),
                    format!("`{key}` missing in this table"),
                )
                .help(help),
            )
        })
    }

    /// A string that must not be empty.
    pub(super) fn non_empty(
        &self,
        value: &Sourced<String>,
        path: &str,
    ) -> Result<String, ConfigError> {
        if value.value.trim().is_empty() {
            return Err(self.fail(
                &value.location,
                Problem::new(ConfigErrorKind::Empty, format!("{path} is empty"), "empty").help(
                    format!("give {path} a value, or remove the key to use the default"),
                ),
            ));
        }
        Ok(value.value.clone())
    }

    /// A backend name that must be defined under `[backends]`.
    pub(super) fn backend_reference(
        &self,
        value: &Sourced<String>,
        path: &str,
    ) -> Result<String, ConfigError> {
        let name = &value.value;
        if self.raw.backends.contains_key(name) {
            return Ok(name.clone());
        }
        let known = self.raw.backends.keys().map(String::as_str);
        let mut help = String::new();
        if let Some(suggestion) = did_you_mean(name, known.clone()) {
            help.push_str(&format!("did you mean \"{suggestion}\"? "));
        }
        help.push_str(&format!(
            "the known backends are {}; to add one, define [backends.{name}] with a kind",
            quoted_list(known)
        ));
        Err(self.fail(
            &value.location,
            Problem::new(
                ConfigErrorKind::UnknownBackend,
                format!("unknown backend \"{name}\" for {path}"),
                "no backend of this name",
            )
            .help(help),
        ))
    }

    /// An agent id that must be defined under `[agents]`.
    pub(super) fn agent_reference(
        &self,
        name: &str,
        location: &Location,
        path: &str,
    ) -> Result<String, ConfigError> {
        if self.raw.agents.contains_key(name) {
            return Ok(name.to_owned());
        }
        let known = self.raw.agents.keys().map(String::as_str);
        // The full list is long; a likely typo is more useful on its own.
        let help = match did_you_mean(name, known.clone()) {
            Some(suggestion) => format!(
                "did you mean \"{suggestion}\"? Otherwise define [agents.{name}] with a role and a task"
            ),
            None => format!(
                "define [agents.{name}] with a role and a task, or use one of the defined agents: {}",
                quoted_list(known)
            ),
        };
        Err(self.fail(
            location,
            Problem::new(
                ConfigErrorKind::UnknownAgent,
                format!("unknown agent \"{name}\" in {path}"),
                "no agent of this id",
            )
            .help(help),
        ))
    }

    fn defaults(&mut self) -> Result<Defaults, ConfigError> {
        let config = self.raw;
        let raw = &config.defaults;
        let table = Table {
            path: &["defaults"],
            declared_in: Some(&Layer::Defaults),
        };
        let missing = "the built-in defaults.toml should set every [defaults] key; set it in stagegate.toml meanwhile";

        let backend = self.require(&raw.backend, table, "backend", missing)?;
        let backend_name = self.backend_reference(backend, "defaults.backend")?;
        self.note("defaults.backend", &backend.location);

        let concurrency = self.require(&raw.concurrency, table, "concurrency", missing)?;
        let concurrency =
            self.count(concurrency, "defaults.concurrency", 1, limits::CONCURRENCY)?;
        let retries = self.require(&raw.retries, table, "retries", missing)?;
        let retries = self.count(retries, "defaults.retries", 0, limits::REPEATS)?;
        let backoff = self.require(&raw.backoff, table, "backoff", missing)?;
        let backoff = self.duration(backoff, "defaults.backoff", false, limits::WAIT)?;
        let ratio = self.require(&raw.min_success_ratio, table, "min_success_ratio", missing)?;
        let min_success_ratio = self.ratio(ratio, "defaults.min_success_ratio")?;
        let iterations = self.require(
            &raw.synthesis_iterations,
            table,
            "synthesis_iterations",
            missing,
        )?;
        let synthesis_iterations = self.count(
            iterations,
            "defaults.synthesis_iterations",
            0,
            limits::REPEATS,
        )?;
        let output_cap = self.require(&raw.output_cap, table, "output_cap", missing)?;
        let output_cap_bytes = self.size(output_cap, "defaults.output_cap")?;
        let memory = self.require(&raw.agent_memory, table, "agent_memory", missing)?;
        let agent_memory_bytes = self.size(memory, "defaults.agent_memory")?;
        let large = self.require(
            &raw.large_context_memory,
            table,
            "large_context_memory",
            missing,
        )?;
        let large_context_memory_bytes = self.size(large, "defaults.large_context_memory")?;

        Ok(Defaults {
            backend: backend_name,
            concurrency,
            retries,
            backoff,
            min_success_ratio,
            synthesis_iterations,
            output_cap_bytes,
            agent_memory_bytes,
            large_context_memory_bytes,
        })
    }

    fn timeouts(&mut self) -> Result<Timeouts, ConfigError> {
        let config = self.raw;
        let raw = &config.timeouts;
        let table = Table {
            path: &["timeouts"],
            declared_in: Some(&Layer::Defaults),
        };
        let missing = "the built-in defaults.toml should set every [timeouts] key; set it in stagegate.toml meanwhile";
        let mut timeout = |value, key: &str, positive| {
            let value = self.require(value, table, key, missing)?;
            let maximum = if key == "kill_grace" {
                limits::KILL_GRACE
            } else {
                limits::TIMEOUT
            };
            self.duration(value, &format!("timeouts.{key}"), positive, maximum)
        };
        Ok(Timeouts {
            default: timeout(&raw.default, "default", true)?,
            complex_analysis: timeout(&raw.complex_analysis, "complex_analysis", true)?,
            simple_check: timeout(&raw.simple_check, "simple_check", true)?,
            review: timeout(&raw.review, "review", true)?,
            synthesis: timeout(&raw.synthesis, "synthesis", true)?,
            qa: timeout(&raw.qa, "qa", true)?,
            stage: timeout(&raw.stage, "stage", true)?,
            // No grace at all (straight to SIGKILL) is a legitimate choice.
            kill_grace: timeout(&raw.kill_grace, "kill_grace", false)?,
        })
    }

    fn cache(&mut self) -> Result<CacheTtls, ConfigError> {
        let config = self.raw;
        let raw = &config.cache;
        let table = Table {
            path: &["cache"],
            declared_in: Some(&Layer::Defaults),
        };
        let missing = "the built-in defaults.toml should set every [cache] key; set it in stagegate.toml meanwhile";
        // A zero time to live turns the cache off for that phase.
        let mut ttl = |value, key: &str| {
            let value = self.require(value, table, key, missing)?;
            self.duration(value, &format!("cache.{key}"), false, limits::CACHE_TTL)
        };
        Ok(CacheTtls {
            agent: ttl(&raw.agent, "agent")?,
            review: ttl(&raw.review, "review")?,
            synthesis: ttl(&raw.synthesis, "synthesis")?,
            qa: ttl(&raw.qa, "qa")?,
        })
    }

    fn adaptive(&mut self) -> Result<AdaptiveRules, ConfigError> {
        let config = self.raw;
        let raw = &config.adaptive;
        let table = Table {
            path: &["adaptive"],
            declared_in: Some(&Layer::Defaults),
        };
        let missing = "the built-in defaults.toml should set every [adaptive] key; set it in stagegate.toml meanwhile";
        let enabled = self.require(&raw.enabled, table, "enabled", missing)?;
        self.note("adaptive.enabled", &enabled.location);
        let enabled = enabled.value;
        let complexity = self.require(
            &raw.complexity_threshold,
            table,
            "complexity_threshold",
            missing,
        )?;
        let complexity_threshold = self.count(
            complexity,
            "adaptive.complexity_threshold",
            0,
            limits::SCORE,
        )?;
        let uncertainty = self.require(
            &raw.uncertainty_threshold,
            table,
            "uncertainty_threshold",
            missing,
        )?;
        let uncertainty_threshold = self.count(
            uncertainty,
            "adaptive.uncertainty_threshold",
            0,
            limits::SCORE,
        )?;
        let failure_rate = self.require(&raw.failure_rate, table, "failure_rate", missing)?;
        let failure_rate = self.ratio(failure_rate, "adaptive.failure_rate")?;
        let timeout_rate = self.require(&raw.timeout_rate, table, "timeout_rate", missing)?;
        let timeout_rate = self.ratio(timeout_rate, "adaptive.timeout_rate")?;
        Ok(AdaptiveRules {
            enabled,
            complexity_threshold,
            uncertainty_threshold,
            failure_rate,
            timeout_rate,
        })
    }

    fn prices(&mut self) -> Result<BTreeMap<String, Price>, ConfigError> {
        let config = self.raw;
        let mut prices = BTreeMap::new();
        for (backend, raw) in &config.prices {
            let mut per_mtok =
                |value: &Option<Sourced<f64>>, key: &str| -> Result<f64, ConfigError> {
                    let Some(value) = value else {
                        return Ok(0.0);
                    };
                    let path = format!("prices.{backend}.{key}");
                    if !(value.value >= 0.0 && value.value.is_finite()) {
                        return Err(self.fail(
                            &value.location,
                            Problem::new(
                                ConfigErrorKind::OutOfRange,
                                format!("{path} must be a price of 0 or more, not {}", value.value),
                                "not a price",
                            )
                            .help(format!(
                                "set {path} to what a million tokens cost, e.g. 3.0"
                            )),
                        ));
                    }
                    self.note(&path, &value.location);
                    Ok(value.value)
                };
            let input_per_mtok = per_mtok(&raw.input_per_mtok, "input_per_mtok")?;
            let output_per_mtok = per_mtok(&raw.output_per_mtok, "output_per_mtok")?;
            prices.insert(
                backend.clone(),
                Price {
                    input_per_mtok,
                    output_per_mtok,
                },
            );
        }
        Ok(prices)
    }

    fn pipeline(&mut self) -> Result<Vec<String>, ConfigError> {
        let table = Table {
            path: &[],
            declared_in: Some(&Layer::Defaults),
        };
        let config = self.raw;
        let list = self.require(
            &config.pipeline,
            table,
            "pipeline",
            r#"set pipeline = ["plan", "prep", "analyze"]"#,
        )?;
        if list.value.is_empty() {
            return Err(self.fail(
                &list.location,
                Problem::new(ConfigErrorKind::Empty, "pipeline is empty", "no stages")
                    .help("list the stages `stagegate run all` runs, in order: pipeline = [\"plan\", \"prep\", \"analyze\"]"),
            ));
        }
        let mut pipeline: Vec<String> = Vec::new();
        for entry in &list.value {
            let location = Location {
                layer: list.location.layer.clone(),
                span: entry.span(),
            };
            let id = self.stage_reference(entry.get_ref(), &location, "pipeline")?;
            if pipeline.contains(&id) {
                return Err(self.fail(
                    &location,
                    Problem::new(
                        ConfigErrorKind::Duplicate,
                        format!("stage \"{id}\" is in pipeline twice"),
                        "listed before",
                    )
                    .help("list each stage once"),
                ));
            }
            pipeline.push(id);
        }
        self.note("pipeline", &list.location);
        Ok(pipeline)
    }

    /// A stage id or alias, resolved to the id.
    fn stage_reference(
        &self,
        name: &str,
        location: &Location,
        path: &str,
    ) -> Result<String, ConfigError> {
        if self.raw.stages.contains_key(name) {
            return Ok(name.to_owned());
        }
        let by_alias = self.raw.stages.iter().find(|(_, stage)| {
            stage
                .alias
                .as_ref()
                .is_some_and(|alias| alias.value == name)
        });
        if let Some((id, _)) = by_alias {
            return Ok(id.clone());
        }
        let known = self.raw.stages.keys().map(String::as_str);
        let mut help = String::new();
        if let Some(suggestion) = did_you_mean(name, known.clone()) {
            help.push_str(&format!("did you mean \"{suggestion}\"? "));
        }
        help.push_str(&format!(
            "the defined stages are {}; define [stages.{name}] to add one",
            quoted_list(known)
        ));
        Err(self.fail(
            location,
            Problem::new(
                ConfigErrorKind::UnknownStage,
                format!("unknown stage \"{name}\" in {path}"),
                "no stage of this id",
            )
            .help(help),
        ))
    }
}
