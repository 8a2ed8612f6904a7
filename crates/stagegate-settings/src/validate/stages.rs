//! `[stages.ID]`: the built-in stages with the user's changes, and the user's own stages.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{Layer, Location, NameList, RawStage};
use crate::settings::{Defaults, StageSettings};

use super::numbers::limits;
use super::{Table, Validator};

/// `stagegate run all` runs the pipeline, so no stage may be called `all`.
const RESERVED_STAGE_NAME: &str = "all";
const DEFAULT_QA: &str = "main-agent";
const DEFAULT_INPUT: &str = "spec.md";

impl Validator<'_> {
    pub(super) fn stages(
        &mut self,
        defaults: &Defaults,
    ) -> Result<BTreeMap<String, StageSettings>, ConfigError> {
        let config = self.raw;
        let mut stages = BTreeMap::new();
        for (id, raw) in &config.stages {
            let stage = self.stage(id, raw, defaults)?;
            stages.insert(id.clone(), stage);
        }
        self.check_stage_names()?;
        Ok(stages)
    }

    fn stage(
        &mut self,
        id: &str,
        raw: &RawStage,
        defaults: &Defaults,
    ) -> Result<StageSettings, ConfigError> {
        let path = ["stages", id];
        let table = Table {
            path: &path,
            declared_in: raw.declared_in.as_ref(),
        };
        let prefix = format!("stages.{id}");

        let name = match &raw.name {
            Some(name) => self.non_empty(name, &format!("{prefix}.name"))?,
            None => id.to_owned(),
        };
        let alias = match &raw.alias {
            Some(alias) => Some(self.non_empty(alias, &format!("{prefix}.alias"))?),
            None => None,
        };
        let trigger = raw.trigger.as_ref().map(|trigger| trigger.value.clone());

        let agents = self.require(
            &raw.agents,
            table,
            "agents",
            r#"list the stage's parallel role agents, such as agents = ["threat-modeler", "dependency-auditor"]"#,
        )?;
        let agents = self.agent_list(agents, &format!("{prefix}.agents"))?;
        let reviewer = self.require(
            &raw.reviewer,
            table,
            "reviewer",
            r#"name the agent that reconciles the agents' outputs, such as reviewer = "lead-reviewer-c""#,
        )?;
        let reviewer = self.agent_reference(
            &reviewer.value,
            &reviewer.location,
            &format!("{prefix}.reviewer"),
        )?;
        let synthesizer = self.require(
            &raw.synthesizer,
            table,
            "synthesizer",
            r#"name the agent that writes the stage's artifacts, such as synthesizer = "lead-synthesizer-c""#,
        )?;
        let synthesizer = self.agent_reference(
            &synthesizer.value,
            &synthesizer.location,
            &format!("{prefix}.synthesizer"),
        )?;
        let qa = match &raw.qa {
            Some(qa) => self.agent_reference(&qa.value, &qa.location, &format!("{prefix}.qa"))?,
            None => {
                self.agent_reference(DEFAULT_QA, &self.header(table), &format!("{prefix}.qa"))?
            }
        };

        let required = self.require(
            &raw.required,
            table,
            "required",
            r#"list the artifacts the synthesizer must write, such as required = ["security_audit.md"]"#,
        )?;
        let required_path = format!("{prefix}.required");
        if required.value.is_empty() {
            return Err(self.fail(
                &required.location,
                Problem::new(
                    ConfigErrorKind::Empty,
                    format!("{required_path} is empty"),
                    "no artifacts",
                )
                .help("a stage must write at least one artifact for its gate to approve"),
            ));
        }
        let required = self.artifact_list(required, &required_path)?;
        let optional = match &raw.optional {
            Some(optional) => self.artifact_list(optional, &format!("{prefix}.optional"))?,
            None => Vec::new(),
        };
        let inputs = match &raw.inputs {
            Some(inputs) => self.file_list(inputs, &format!("{prefix}.inputs"))?,
            None => vec![DEFAULT_INPUT.to_owned()],
        };

        let question = match &raw.question {
            Some(question) => self.non_empty(question, &format!("{prefix}.question"))?,
            None => format!("{name} complete. Approve to proceed?"),
        };
        let concurrency_path = format!("{prefix}.concurrency");
        let concurrency = match &raw.concurrency {
            Some(concurrency) => {
                self.count(concurrency, &concurrency_path, 1, limits::CONCURRENCY)?
            }
            None => {
                if let Some(origin) = self.origins.get("defaults.concurrency").cloned() {
                    self.origins.insert(concurrency_path, origin);
                }
                defaults.concurrency
            }
        };
        let summary_artifact = match &raw.summary_artifact {
            Some(summary) => {
                if !required.contains(&summary.value) {
                    return Err(self.fail(
                        &summary.location,
                        Problem::new(
                            ConfigErrorKind::InvalidValue,
                            format!(
                                "{prefix}.summary_artifact \"{}\" is not one of the stage's required artifacts",
                                summary.value
                            ),
                            "not a required artifact",
                        )
                        .help(format!(
                            "partial failures are written into the summary artifact, so it must be one of {required_path}: {}",
                            required.join(", ")
                        )),
                    ));
                }
                summary.value.clone()
            }
            // `required` was checked to be non-empty above.
            None => required.first().cloned().unwrap_or_default(),
        };

        Ok(StageSettings {
            id: id.to_owned(),
            name,
            alias,
            trigger,
            agents,
            reviewer,
            synthesizer,
            qa,
            required,
            optional,
            inputs,
            question,
            concurrency,
            summary_artifact,
        })
    }

    /// The stage's parallel agents: at least one, each defined, none twice.
    fn agent_list(&self, list: &NameList, path: &str) -> Result<Vec<String>, ConfigError> {
        if list.value.is_empty() {
            return Err(self.fail(
                &list.location,
                Problem::new(
                    ConfigErrorKind::Empty,
                    format!("{path} is empty"),
                    "no agents",
                )
                .help("list at least one agent; the stage runs them in parallel"),
            ));
        }
        let mut agents: Vec<String> = Vec::new();
        // A set beside the list: a stage may name thousands of agents.
        let mut listed = std::collections::HashSet::new();
        for entry in &list.value {
            let location = Location {
                layer: list.location.layer.clone(),
                span: entry.span(),
            };
            let id = self.agent_reference(entry.get_ref(), &location, path)?;
            if !listed.insert(id.clone()) {
                return Err(self.fail(
                    &location,
                    Problem::new(
                        ConfigErrorKind::Duplicate,
                        format!("agent \"{id}\" is in {path} twice"),
                        "listed before",
                    )
                    .help("list each agent once"),
                ));
            }
            agents.push(id);
        }
        Ok(agents)
    }

    /// Artifact or input names: relative paths inside the feature directory (a trailing `/`
    /// marks a directory), because artifacts are written there on approval.
    fn file_list(&self, list: &NameList, path: &str) -> Result<Vec<String>, ConfigError> {
        let mut names = Vec::new();
        for entry in &list.value {
            let name = entry.get_ref();
            let relative = Path::new(name);
            let stays_inside = !name.trim().is_empty()
                && relative
                    .components()
                    .all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
            if !stays_inside {
                let location = Location {
                    layer: list.location.layer.clone(),
                    span: entry.span(),
                };
                return Err(self.fail(
                    &location,
                    Problem::new(
                        ConfigErrorKind::InvalidValue,
                        format!("\"{name}\" in {path} is not a file name inside the feature directory"),
                        "not inside the feature directory",
                    )
                    .help("write a relative path such as \"plan.md\" or \"contracts/\", without \"..\" or a leading \"/\""),
                ));
            }
            names.push(name.clone());
        }
        Ok(names)
    }

    /// Artifact names: what [`Self::file_list`] accepts, and further a plain file name
    /// (`plan.md`) or one directory (`contracts/`), not hidden. Artifacts are staged in and
    /// published into one flat directory, and the store refuses any other name; checking here
    /// says so when the configuration loads rather than after every agent of the stage ran.
    fn artifact_list(&self, list: &NameList, path: &str) -> Result<Vec<String>, ConfigError> {
        let names = self.file_list(list, path)?;
        for (name, entry) in names.iter().zip(&list.value) {
            let file_name = name.strip_suffix('/').unwrap_or(name);
            let plain = !file_name.is_empty()
                && !file_name.starts_with('.')
                && !file_name.contains(['/', '\\', '\0']);
            if !plain {
                let location = Location {
                    layer: list.location.layer.clone(),
                    span: entry.span(),
                };
                return Err(self.fail(
                    &location,
                    Problem::new(
                        ConfigErrorKind::InvalidValue,
                        format!("\"{name}\" in {path} is not a plain artifact name"),
                        "not a plain file name",
                    )
                    .help("name an artifact as a file directly in the feature directory, such as \"plan.md\", or a directory such as \"contracts/\"; without \"/\" inside the name or a leading \".\""),
                ));
            }
        }
        Ok(names)
    }

    /// Stage ids and aliases are one namespace on the command line: `stagegate run a` must mean
    /// exactly one stage, and `all` means the pipeline.
    fn check_stage_names(&self) -> Result<(), ConfigError> {
        let config = self.raw;
        // When a user's alias clashes with a built-in one, the user's is the one to blame.
        let mut stages: Vec<_> = config.stages.iter().collect();
        stages.sort_by_key(|(_, raw)| {
            raw.alias
                .as_ref()
                .is_some_and(|alias| alias.location.layer == Layer::Defaults)
        });
        for (id, raw) in stages {
            if id == RESERVED_STAGE_NAME {
                let path = ["stages", id.as_str()];
                let table = Table {
                    path: &path,
                    declared_in: raw.declared_in.as_ref(),
                };
                return Err(self.fail(
                    &self.header(table),
                    Problem::new(
                        ConfigErrorKind::InvalidValue,
                        "a stage cannot be called \"all\"",
                        "reserved",
                    )
                    .help("`stagegate run all` runs the pipeline; give the stage another id"),
                ));
            }
            let Some(alias) = &raw.alias else { continue };
            let clash = alias.value == RESERVED_STAGE_NAME
                || config.stages.iter().any(|(other_id, other)| {
                    other_id != id
                        && (*other_id == alias.value
                            || other
                                .alias
                                .as_ref()
                                .is_some_and(|other_alias| other_alias.value == alias.value))
                });
            if clash {
                return Err(self.fail(
                    &alias.location,
                    Problem::new(
                        ConfigErrorKind::Duplicate,
                        format!(
                            "alias \"{}\" of stages.{id} is already the name of another stage, or \"all\"",
                            alias.value
                        ),
                        "taken",
                    )
                    .help("give the stage an alias no other stage uses as its id or alias"),
                ));
            }
        }
        Ok(())
    }
}
