//! Prompts: every agent call's text is rendered from a template.
//!
//! One template per phase (`agent`, `review`, `synthesis`, `qa`) is embedded; a repository
//! overrides any of them, or one agent's, by dropping a file into
//! `.specify/stagegate/templates/` (`agent.md.j2`, `review.md.j2`, …, or `<agent-id>.md.j2`).
//! Rendering is strict: a template that names a variable the engine does not provide is an
//! error when the templates are loaded, not an empty hole in a prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::backend::Phase;
use crate::event::AgentFailure;

/// Where a repository keeps its own templates, relative to its root.
pub const TEMPLATE_OVERRIDE_DIR: &str = ".specify/stagegate/templates";

const EMBEDDED: [(Phase, &str); 4] = [
    (Phase::Agent, include_str!("../templates/agent.md.j2")),
    (Phase::Review, include_str!("../templates/review.md.j2")),
    (
        Phase::Synthesis,
        include_str!("../templates/synthesis.md.j2"),
    ),
    (Phase::Qa, include_str!("../templates/qa.md.j2")),
];

/// Variables every template may use.
const PROVIDED: [&str; 12] = [
    "guidance",
    "discovery",
    "stage",
    "agent",
    "inputs",
    "outputs",
    "failures",
    "review",
    "artifact",
    "artifacts",
    "feedback",
    "previous",
];

/// A template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "template {name}: {message}\nhint: fix the template or delete it to use the built-in one"
    )]
    Template { name: String, message: String },
    #[error(
        "template {name} uses {variables}, which stagegate does not provide\nhint: the variables available are {}",
        PROVIDED.join(", ")
    )]
    Undeclared { name: String, variables: String },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Prompts {
    environment: Environment<'static>,
    /// Agent ids with a template of their own.
    per_agent: BTreeMap<String, String>,
}

/// A named text: a feature file or an artifact.
#[derive(Debug, Clone, Serialize)]
pub struct NamedText {
    pub name: String,
    pub content: String,
}

/// A role agent's output, as the reviewer and synthesizer see it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentOutputView {
    pub agent: String,
    pub role: String,
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub question: &'a str,
    pub required: &'a [String],
    pub optional: &'a [String],
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView<'a> {
    pub id: &'a str,
    pub role: &'a str,
    pub task: &'a str,
}

/// Everything a template can see. Unused parts are empty or none.
#[derive(Debug, Clone, Serialize)]
pub struct PromptContext<'a> {
    pub stage: StageView<'a>,
    pub agent: AgentView<'a>,
    pub inputs: &'a [NamedText],
    pub outputs: &'a [AgentOutputView],
    pub failures: &'a [AgentFailure],
    pub review: Option<&'a str>,
    pub artifact: Option<&'a str>,
    pub artifacts: &'a [NamedText],
    pub feedback: Option<&'a str>,
    pub previous: Option<&'a str>,
    /// Extra instructions from the adaptive rules for this phase.
    pub guidance: &'a [String],
    /// The discovery step's unknowns and assumptions, when the inputs were uncertain.
    pub discovery: Option<&'a str>,
}

impl Prompts {
    /// The embedded templates only.
    pub fn embedded() -> Result<Self, PromptError> {
        Self::load(None)
    }

    /// The embedded templates, overridden by those in `<repo_root>/.specify/stagegate/templates`.
    pub fn load(repo_root: Option<&Path>) -> Result<Self, PromptError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            environment.set_syntax(syntax);
        }
        for (phase, source) in EMBEDDED {
            add_checked(
                &mut environment,
                phase.as_str().to_owned(),
                source.to_owned(),
            )?;
        }
        let mut per_agent = BTreeMap::new();
        if let Some(root) = repo_root {
            let dir = root.join(TEMPLATE_OVERRIDE_DIR);
            for (stem, source) in read_overrides(&dir)? {
                let is_phase = EMBEDDED.iter().any(|(phase, _)| phase.as_str() == stem);
                let name = if is_phase {
                    stem.clone()
                } else {
                    format!("agent:{stem}")
                };
                add_checked(&mut environment, name.clone(), source)?;
                if !is_phase {
                    per_agent.insert(stem, name);
                }
            }
        }
        Ok(Prompts {
            environment,
            per_agent,
        })
    }

    /// Renders the prompt of `agent` in `phase`.
    pub fn render(
        &self,
        phase: Phase,
        agent: &str,
        context: &PromptContext<'_>,
    ) -> Result<String, PromptError> {
        let name = self
            .per_agent
            .get(agent)
            .map(String::as_str)
            .unwrap_or(phase.as_str());
        let template = self
            .environment
            .get_template(name)
            .map_err(|error| template_error(name, &error))?;
        template
            .render(Value::from(Serde(context)))
            .map_err(|error| template_error(name, &error))
    }
}

fn add_checked(
    environment: &mut Environment<'static>,
    name: String,
    source: String,
) -> Result<(), PromptError> {
    environment
        .add_template_owned(name.clone(), source)
        .map_err(|error| template_error(&name, &error))?;
    let template = environment
        .get_template(&name)
        .map_err(|error| template_error(&name, &error))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|variable| !PROVIDED.contains(&variable.as_str()))
        .filter(|variable| environment.globals().all(|(global, _)| global != variable))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(PromptError::Undeclared {
        name,
        variables: unknown.join(", "),
    })
}

fn template_error(name: &str, error: &minijinja::Error) -> PromptError {
    let mut message = error.to_string();
    if let Some(line) = error.line() {
        message = format!("line {line}: {message}");
    }
    PromptError::Template {
        name: name.to_owned(),
        message,
    }
}

/// `(file stem, source)` of every `*.md.j2` in `dir`; none when the directory is absent.
fn read_overrides(dir: &Path) -> Result<Vec<(String, String)>, PromptError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PromptError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut overrides = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| PromptError::Read {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let Some(stem) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".md.j2"))
        else {
            continue;
        };
        let source = std::fs::read_to_string(&path).map_err(|source| PromptError::Read {
            path: path.clone(),
            source,
        })?;
        overrides.push((stem.to_owned(), source));
    }
    overrides.sort();
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        inputs: &'a [NamedText],
        outputs: &'a [AgentOutputView],
        failures: &'a [AgentFailure],
        required: &'a [String],
    ) -> PromptContext<'a> {
        PromptContext {
            stage: StageView {
                id: "plan",
                name: "Stage A: Planning/Spec",
                question: "Planning artifacts synthesized. Approve to proceed?",
                required,
                optional: &[],
            },
            agent: AgentView {
                id: "requirements-analyst",
                role: "Requirements Analyst",
                task: "Trace every requirement",
            },
            inputs,
            outputs,
            failures,
            review: Some("the review"),
            artifact: Some("plan.md"),
            artifacts: &[],
            feedback: None,
            previous: None,
            guidance: &[],
            discovery: None,
        }
    }

    #[test]
    fn every_embedded_template_renders_with_its_inputs() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let inputs = [NamedText {
            name: "spec.md".into(),
            content: "FR-001 the system MUST work".into(),
        }];
        let outputs = [AgentOutputView {
            agent: "solution-architect".into(),
            role: "Solution Architect".into(),
            output: "components".into(),
        }];
        let failures = [AgentFailure {
            agent: "risk-compliance-analyst".into(),
            reason: "timed out".into(),
        }];
        let required = ["plan.md".to_owned()];
        let context = context(&inputs, &outputs, &failures, &required);
        for phase in [Phase::Agent, Phase::Review, Phase::Synthesis, Phase::Qa] {
            let prompt = prompts
                .render(phase, "requirements-analyst", &context)
                .expect("renders");
            assert!(prompt.contains("FR-001"), "{phase:?}: {prompt}");
        }
        let review = prompts
            .render(Phase::Review, "lead-reviewer-a", &context)
            .expect("renders");
        assert!(review.contains("risk-compliance-analyst: timed out"));
        assert!(review.contains("components"));
        let qa = prompts
            .render(Phase::Qa, "main-agent", &context)
            .expect("renders");
        assert!(qa.contains("VERDICT: PASS"));
    }

    #[test]
    fn a_repository_overrides_a_phase_or_one_agent() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(TEMPLATE_OVERRIDE_DIR);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("review.md.j2"), "custom review {{ stage.id }}").expect("write");
        std::fs::write(
            dir.join("solution-architect.md.j2"),
            "architect {{ agent.role }}",
        )
        .expect("write");
        let prompts = Prompts::load(Some(root.path())).expect("loads");
        let context = context(&[], &[], &[], &[]);
        assert_eq!(
            prompts
                .render(Phase::Review, "lead-reviewer-a", &context)
                .expect("renders"),
            "custom review plan"
        );
        assert_eq!(
            prompts
                .render(Phase::Agent, "solution-architect", &context)
                .expect("renders"),
            "architect Requirements Analyst"
        );
    }

    #[test]
    fn a_template_using_an_unknown_variable_is_refused_at_load() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(TEMPLATE_OVERRIDE_DIR);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("agent.md.j2"), "{{ agnet.role }}").expect("write");
        let error = Prompts::load(Some(root.path())).expect_err("refused");
        assert!(error.to_string().contains("agnet"), "{error}");
    }
}
