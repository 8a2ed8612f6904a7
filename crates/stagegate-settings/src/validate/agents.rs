//! `[agents.ID]`: role agents, reviewers, synthesizers and the main agent alike.

use std::collections::BTreeMap;

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{RawAgent, Sourced};
use crate::settings::{AgentSettings, Defaults, TimeoutClass};
use crate::suggest::{did_you_mean, quoted_list};

use super::numbers::limits;
use super::{Table, Validator};

const TIMEOUT_CLASSES: [&str; 3] = ["default", "complex_analysis", "simple_check"];

impl Validator<'_> {
    pub(super) fn agents(
        &mut self,
        defaults: &Defaults,
    ) -> Result<BTreeMap<String, AgentSettings>, ConfigError> {
        let config = self.raw;
        let mut agents = BTreeMap::new();
        for (id, raw) in &config.agents {
            let agent = self.agent(id, raw, defaults)?;
            agents.insert(id.clone(), agent);
        }
        Ok(agents)
    }

    fn agent(
        &mut self,
        id: &str,
        raw: &RawAgent,
        defaults: &Defaults,
    ) -> Result<AgentSettings, ConfigError> {
        let path = ["agents", id];
        let table = Table {
            path: &path,
            declared_in: raw.declared_in.as_ref(),
        };
        let prefix = format!("agents.{id}");
        let role = self.require(
            &raw.role,
            table,
            "role",
            r#"give the agent a role, its human name, such as role = "Threat Modeler", and a task saying what it does"#,
        )?;
        let role = self.non_empty(role, &format!("{prefix}.role"))?;
        // Without a task the role's name is the best description of the job there is.
        let task = match &raw.task {
            Some(task) => self.non_empty(task, &format!("{prefix}.task"))?,
            None => role.clone(),
        };

        let backend_path = format!("{prefix}.backend");
        let backend = match &raw.backend {
            Some(backend) => {
                let name = self.backend_reference(backend, &backend_path)?;
                self.note(backend_path, &backend.location);
                name
            }
            // Its origin is `defaults.backend`'s (`Settings::origin_of`), not copied per agent.
            None => defaults.backend.clone(),
        };
        let fallback = match &raw.fallback {
            Some(fallback) => {
                let name = self.backend_reference(fallback, &format!("{prefix}.fallback"))?;
                self.note(format!("{prefix}.fallback"), &fallback.location);
                Some(name)
            }
            None => None,
        };
        let timeout_class = match &raw.timeout_class {
            Some(class) => self.timeout_class(class, &prefix)?,
            None => TimeoutClass::Default,
        };
        let retries = match &raw.retries {
            Some(retries) => {
                Some(self.count(retries, &format!("{prefix}.retries"), 0, limits::REPEATS)?)
            }
            None => None,
        };
        Ok(AgentSettings {
            id: id.to_owned(),
            role,
            task,
            backend,
            fallback,
            timeout_class,
            required: raw.required.as_ref().is_some_and(|required| required.value),
            large_context: raw.large_context.as_ref().is_some_and(|large| large.value),
            retries,
        })
    }

    fn timeout_class(
        &self,
        class: &Sourced<String>,
        prefix: &str,
    ) -> Result<TimeoutClass, ConfigError> {
        match class.value.as_str() {
            "default" => Ok(TimeoutClass::Default),
            "complex_analysis" => Ok(TimeoutClass::ComplexAnalysis),
            "simple_check" => Ok(TimeoutClass::SimpleCheck),
            other => {
                let mut help = String::new();
                if let Some(suggestion) = did_you_mean(other, TIMEOUT_CLASSES) {
                    help.push_str(&format!("did you mean \"{suggestion}\"? "));
                }
                help.push_str(&format!(
                    "timeout_class must be one of {}; each takes its timeout from [timeouts]",
                    quoted_list(TIMEOUT_CLASSES)
                ));
                Err(self.fail(
                    &class.location,
                    Problem::new(
                        ConfigErrorKind::UnknownTimeoutClass,
                        format!("unknown timeout class \"{other}\" for {prefix}.timeout_class"),
                        "not a timeout class",
                    )
                    .help(help),
                ))
            }
        }
    }
}
