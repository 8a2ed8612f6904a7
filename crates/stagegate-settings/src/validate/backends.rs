//! `[backends.NAME]`: each table by its `kind`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{Location, RawBackend, Sourced};
use crate::settings::{BackendSettings, HttpOptions, OnTruncation, OpenAiApi, OutputFormat};
use crate::suggest::{did_you_mean, quoted_list};
use crate::warning::{ConfigWarning, WarningReason};

use super::numbers::limits;
use super::{Table, Validator};

/// The kinds stagegate can talk to.
pub(crate) const BACKEND_KINDS: [&str; 5] = ["builtin", "command", "openai", "anthropic", "mock"];

const OPENAI_BASE_URL: &str = "http://127.0.0.1:8080/v1";
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
const ANTHROPIC_API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
const ANTHROPIC_MAX_TOKENS: u32 = 4096;

/// The keys each kind reads; any other key that is set gets a warning.
fn keys_of_kind(kind: &str) -> &'static [&'static str] {
    match kind {
        "command" => &[
            "kind",
            "command",
            "env",
            "secret_env",
            "output_format",
            "speckit_integration",
            "model",
            "memory",
        ],
        "openai" => &[
            "kind",
            "base_url",
            "model",
            "api_key_env",
            "temperature",
            "max_tokens",
            "api",
            "idle_timeout",
            "on_truncation",
        ],
        "anthropic" => &[
            "kind",
            "base_url",
            "model",
            "api_key_env",
            "max_tokens",
            "idle_timeout",
            "on_truncation",
        ],
        "mock" => &["kind", "latency", "fail_attempts", "output"],
        _ => &["kind"],
    }
}

/// The keys a table sets, with where.
fn keys_set(raw: &RawBackend) -> Vec<(&'static str, &Location)> {
    fn at<T>(value: &Option<Sourced<T>>) -> Option<&Location> {
        value.as_ref().map(|value| &value.location)
    }
    [
        ("kind", at(&raw.kind)),
        ("command", at(&raw.command)),
        ("env", at(&raw.env)),
        ("secret_env", at(&raw.secret_env)),
        ("output_format", at(&raw.output_format)),
        ("speckit_integration", at(&raw.speckit_integration)),
        ("memory", at(&raw.memory)),
        ("base_url", at(&raw.base_url)),
        ("model", at(&raw.model)),
        ("api_key_env", at(&raw.api_key_env)),
        ("temperature", at(&raw.temperature)),
        ("max_tokens", at(&raw.max_tokens)),
        ("api", at(&raw.api)),
        ("idle_timeout", at(&raw.idle_timeout)),
        ("on_truncation", at(&raw.on_truncation)),
        ("latency", at(&raw.latency)),
        ("fail_attempts", at(&raw.fail_attempts)),
        ("output", at(&raw.output)),
    ]
    .into_iter()
    .filter_map(|(key, location)| Some((key, location?)))
    .collect()
}

impl Validator<'_> {
    pub(super) fn backends(&mut self) -> Result<BTreeMap<String, BackendSettings>, ConfigError> {
        let config = self.raw;
        let mut backends = BTreeMap::new();
        for (name, raw) in &config.backends {
            let backend = self.backend(name, raw)?;
            backends.insert(name.clone(), backend);
        }
        Ok(backends)
    }

    fn backend(&mut self, name: &str, raw: &RawBackend) -> Result<BackendSettings, ConfigError> {
        let path = ["backends", name];
        let table = Table {
            path: &path,
            declared_in: raw.declared_in.as_ref(),
        };
        let prefix = format!("backends.{name}");
        let kind = self.require(
            &raw.kind,
            table,
            "kind",
            &format!("set kind to one of {}", quoted_list(BACKEND_KINDS)),
        )?;
        if !BACKEND_KINDS.contains(&kind.value.as_str()) {
            let mut help = String::new();
            if let Some(suggestion) = did_you_mean(&kind.value, BACKEND_KINDS) {
                help.push_str(&format!("did you mean \"{suggestion}\"? "));
            }
            help.push_str(&format!(
                "kind must be one of {}",
                quoted_list(BACKEND_KINDS)
            ));
            return Err(self.fail(
                &kind.location,
                Problem::new(
                    ConfigErrorKind::UnknownBackendKind,
                    format!("unknown kind \"{}\" for {prefix}.kind", kind.value),
                    "not a backend kind",
                )
                .help(help),
            ));
        }
        self.warn_unused_keys(&prefix, &kind.value, raw);

        let settings = match kind.value.as_str() {
            "builtin" => BackendSettings::Builtin,
            "command" => {
                let command = self.require(
                    &raw.command,
                    table,
                    "command",
                    r#"set command to the program and its arguments, such as command = ["claude", "-p"]"#,
                )?;
                let empty_program = command
                    .value
                    .first()
                    .is_none_or(|program| program.get_ref().trim().is_empty());
                if empty_program {
                    return Err(self.fail(
                        &command.location,
                        Problem::new(
                            ConfigErrorKind::Empty,
                            format!("{prefix}.command is empty"),
                            "no program",
                        )
                        .help(r#"name the program first, then its arguments, such as command = ["claude", "-p"]; it is run directly, never through a shell"#),
                    ));
                }
                BackendSettings::Command {
                    command: command
                        .value
                        .iter()
                        .map(|argument| argument.get_ref().clone())
                        .collect(),
                    env: raw
                        .env
                        .as_ref()
                        .map(|env| env.value.clone())
                        .unwrap_or_default(),
                    secret_env: self.secret_env(raw, &prefix)?,
                    output_format: self.output_format(raw, &prefix)?,
                    speckit_integration: self.speckit_integration(raw, &prefix)?,
                    model: match &raw.model {
                        Some(model) => Some(self.non_empty(model, &format!("{prefix}.model"))?),
                        None => None,
                    },
                    memory_bytes: match &raw.memory {
                        Some(memory) => Some(self.size(memory, &format!("{prefix}.memory"))?),
                        None => None,
                    },
                }
            }
            "openai" => BackendSettings::OpenAi {
                base_url: self.base_url(raw, &prefix, OPENAI_BASE_URL)?,
                model: self.model(raw, table, &prefix)?,
                api_key_env: self.api_key_env(raw, &prefix)?,
                temperature: match &raw.temperature {
                    Some(temperature) => Some(self.temperature(temperature, &prefix)?),
                    None => None,
                },
                max_tokens: match &raw.max_tokens {
                    Some(max_tokens) => Some(self.count(
                        max_tokens,
                        &format!("{prefix}.max_tokens"),
                        1,
                        limits::MAX_TOKENS,
                    )?),
                    None => None,
                },
                api: self.named_choice(
                    &raw.api,
                    &format!("{prefix}.api"),
                    OpenAiApi::ALL,
                    OpenAiApi::as_str,
                )?,
                http: self.http_options(raw, &prefix)?,
            },
            "anthropic" => BackendSettings::Anthropic {
                base_url: self.base_url(raw, &prefix, ANTHROPIC_BASE_URL)?,
                model: self.model(raw, table, &prefix)?,
                api_key_env: self
                    .api_key_env(raw, &prefix)?
                    .unwrap_or_else(|| ANTHROPIC_API_KEY_ENV.to_owned()),
                max_tokens: match &raw.max_tokens {
                    Some(max_tokens) => self.count(
                        max_tokens,
                        &format!("{prefix}.max_tokens"),
                        1,
                        limits::MAX_TOKENS,
                    )?,
                    None => ANTHROPIC_MAX_TOKENS,
                },
                http: self.http_options(raw, &prefix)?,
            },
            _ => BackendSettings::Mock {
                // A mock of the user's answers at once unless told otherwise: it exists for tests.
                latency: match &raw.latency {
                    Some(latency) => {
                        self.duration(latency, &format!("{prefix}.latency"), false, limits::WAIT)?
                    }
                    None => Duration::ZERO,
                },
                fail_attempts: match &raw.fail_attempts {
                    Some(fail) => {
                        self.count(fail, &format!("{prefix}.fail_attempts"), 0, limits::REPEATS)?
                    }
                    None => 0,
                },
                output: raw.output.as_ref().map(|output| output.value.clone()),
            },
        };
        Ok(settings)
    }

    fn warn_unused_keys(&mut self, prefix: &str, kind: &str, raw: &RawBackend) {
        let used = keys_of_kind(kind);
        for (key, location) in keys_set(raw) {
            if used.contains(&key) {
                continue;
            }
            let Some(file) = self.sources.file(&location.layer) else {
                continue;
            };
            let (line, column) = file.line_column(location.span.start);
            self.warnings.push(ConfigWarning {
                path: format!("{prefix}.{key}"),
                file: file.path.clone(),
                line,
                column,
                reason: WarningReason::UnusedByKind {
                    kind: kind.to_owned(),
                },
                suggestion: None,
            });
        }
    }

    /// `idle_timeout` and `on_truncation` of an HTTP backend.
    fn http_options(&mut self, raw: &RawBackend, prefix: &str) -> Result<HttpOptions, ConfigError> {
        let defaults = HttpOptions::default();
        Ok(HttpOptions {
            idle_timeout: match &raw.idle_timeout {
                Some(idle) => self.duration(
                    idle,
                    &format!("{prefix}.idle_timeout"),
                    true,
                    limits::TIMEOUT,
                )?,
                None => defaults.idle_timeout,
            },
            on_truncation: self.named_choice(
                &raw.on_truncation,
                &format!("{prefix}.on_truncation"),
                OnTruncation::ALL,
                OnTruncation::as_str,
            )?,
        })
    }

    /// A value that must be one of a few names (`api`, `on_truncation`); the default when
    /// left out.
    fn named_choice<T: Copy + Default, const N: usize>(
        &self,
        value: &Option<Sourced<String>>,
        path: &str,
        all: [T; N],
        name: fn(T) -> &'static str,
    ) -> Result<T, ConfigError> {
        let Some(value) = value else {
            return Ok(T::default());
        };
        if let Some(known) = all
            .into_iter()
            .find(|choice| name(*choice) == value.value.trim())
        {
            return Ok(known);
        }
        let names = all.map(name);
        let mut help = String::new();
        if let Some(suggestion) = did_you_mean(&value.value, names) {
            help.push_str(&format!("did you mean \"{suggestion}\"? "));
        }
        help.push_str(&format!("{path} must be one of {}", quoted_list(names)));
        Err(self.fail(
            &value.location,
            Problem::new(
                ConfigErrorKind::InvalidValue,
                format!("unknown value \"{}\" for {path}", value.value),
                "not one of the choices",
            )
            .help(help),
        ))
    }

    /// `output_format`: how the command's stdout is read; `text` when left out.
    fn output_format(&self, raw: &RawBackend, prefix: &str) -> Result<OutputFormat, ConfigError> {
        let Some(format) = &raw.output_format else {
            return Ok(OutputFormat::Text);
        };
        if let Some(known) = OutputFormat::from_name(format.value.trim()) {
            return Ok(known);
        }
        let names = OutputFormat::ALL.map(OutputFormat::as_str);
        let mut help = String::new();
        if let Some(suggestion) = did_you_mean(&format.value, names) {
            help.push_str(&format!("did you mean \"{suggestion}\"? "));
        }
        help.push_str(&format!(
            "output_format must be one of {}",
            quoted_list(names)
        ));
        Err(self.fail(
            &format.location,
            Problem::new(
                ConfigErrorKind::InvalidValue,
                format!(
                    "unknown output format \"{}\" for {prefix}.output_format",
                    format.value
                ),
                "not an output format",
            )
            .help(help),
        ))
    }

    /// `secret_env`: names of environment variables whose values are secrets. A name need not
    /// be in `env`: a program also inherits stagegate's own environment (`GITHUB_TOKEN`).
    fn secret_env(&self, raw: &RawBackend, prefix: &str) -> Result<Vec<String>, ConfigError> {
        let Some(list) = &raw.secret_env else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = Vec::new();
        for entry in &list.value {
            let name = entry.get_ref().trim();
            let is_name = !name.is_empty()
                && !name.contains(['=', '\0'])
                && !name.chars().any(char::is_whitespace);
            if !is_name {
                let location = Location {
                    layer: list.location.layer.clone(),
                    span: entry.span(),
                };
                return Err(self.fail(
                    &location,
                    Problem::new(
                        ConfigErrorKind::InvalidValue,
                        format!(
                            "\"{}\" in {prefix}.secret_env is not an environment variable name",
                            entry.get_ref()
                        ),
                        "not a variable name",
                    )
                    .help("name the variable, such as secret_env = [\"GITHUB_TOKEN\"]; its value stays in env or in stagegate's environment"),
                ));
            }
            if !names.iter().any(|known| known == name) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// `speckit_integration`: a spec-kit integration key (`claude`, `cursor-agent`), which names
    /// the `SPECKIT_INTEGRATION_<KEY>_EXECUTABLE` / `_EXTRA_ARGS` variables.
    fn speckit_integration(
        &self,
        raw: &RawBackend,
        prefix: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(key) = &raw.speckit_integration else {
            return Ok(None);
        };
        let name = key.value.trim();
        let is_key = !name.is_empty()
            && name.chars().all(|character| {
                character.is_ascii_alphanumeric() || character == '-' || character == '_'
            });
        if !is_key {
            return Err(self.fail(
                &key.location,
                Problem::new(
                    ConfigErrorKind::InvalidValue,
                    format!("{prefix}.speckit_integration must be a spec-kit integration key"),
                    "not an integration key",
                )
                .help("write the key spec-kit uses for the agent, such as \"claude\", \"codex\" or \"cursor-agent\""),
            ));
        }
        Ok(Some(name.to_owned()))
    }

    fn base_url(
        &self,
        raw: &RawBackend,
        prefix: &str,
        default: &str,
    ) -> Result<String, ConfigError> {
        let Some(base_url) = &raw.base_url else {
            return Ok(default.to_owned());
        };
        let url = base_url.value.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(self.fail(
                &base_url.location,
                Problem::new(
                    ConfigErrorKind::InvalidValue,
                    format!("{prefix}.base_url \"{url}\" is not an http:// or https:// URL"),
                    "not an HTTP URL",
                )
                .help(format!("write the API's address, such as \"{default}\"")),
            ));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }

    fn model(
        &self,
        raw: &RawBackend,
        table: Table<'_>,
        prefix: &str,
    ) -> Result<String, ConfigError> {
        let model = self.require(
            &raw.model,
            table,
            "model",
            "set model to the model's name as the API knows it, such as model = \"claude-sonnet-4-5\"",
        )?;
        self.non_empty(model, &format!("{prefix}.model"))
    }

    /// The name of the variable that holds the key. A value that looks like a key itself is
    /// refused: a secret must not sit in a file that is usually committed.
    fn api_key_env(&self, raw: &RawBackend, prefix: &str) -> Result<Option<String>, ConfigError> {
        let Some(variable) = &raw.api_key_env else {
            return Ok(None);
        };
        let name = variable.value.trim();
        let is_variable_name = !name.is_empty()
            && !name.starts_with(|character: char| character.is_ascii_digit())
            && name
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '_');
        if !is_variable_name {
            return Err(self.fail(
                &variable.location,
                Problem::new(
                    ConfigErrorKind::InvalidValue,
                    format!("{prefix}.api_key_env must name an environment variable"),
                    "not a variable name",
                )
                .help("write the name of the variable that holds the key, such as \"OPENAI_API_KEY\", never the key itself"),
            ));
        }
        Ok(Some(name.to_owned()))
    }

    fn temperature(&mut self, value: &Sourced<f64>, prefix: &str) -> Result<f64, ConfigError> {
        let path = format!("{prefix}.temperature");
        if !(0.0..=2.0).contains(&value.value) {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} must be between 0.0 and 2.0, not {}", value.value),
                    "outside 0.0..=2.0",
                )
                .help("use a sampling temperature from 0.0 (deterministic) to 2.0"),
            ));
        }
        self.note(path, &value.location);
        Ok(value.value)
    }
}
