//! Prompts: every agent call's text is rendered from a template.
//!
//! # Which template renders a call
//! For the agent `id` in `phase`, the first of:
//! 1. the repository's `<id>.md.j2` in `.specify/stagegate/templates/` (whatever the phase);
//! 2. the repository's phase template there (`agent.md.j2`, `review.md.j2`, `synthesis.md.j2`,
//!    `qa.md.j2`);
//! 3. the embedded template of that agent's role (`templates/agents/<id>.md.j2`), when the
//!    role belongs to this phase (the Requirements Analyst's template is never used for a
//!    review, even if a custom stage makes it a reviewer);
//! 4. the embedded phase template.
//!
//! The embedded role templates extend the embedded phase template (`{% extends "phases/agent"
//! %}`, which a repository cannot replace, unlike `agent`) and fill its blocks (`structure`, `focus`, `approach`, `checks`) with what is specific to the role;
//! what every role shares lives in partials (`_inputs`, `_findings`, `_cuts`, `_guidance`,
//! `_discovery`, `_artifact_shape`, `_analyze_categories`, `_analyze_findings`), which use only the variables every
//! template has (`_artifact_shape` describes the artifact named by `artifact`; the QA template
//! includes it once per artifact inside `{% with artifact = … %}`). A repository template may do
//! the same: `{% extends "agent" %}` (the repository's phase template when it has one),
//! `{% extends "phases/agent" %}`, `{% extends "agents/solution-architect" %}`,
//! `{% include "_inputs" %}`; a repository file named `_<name>.md.j2` replaces the partial
//! `_<name>` (or adds one of its own).
//!
//! Rendering is strict: a template that names a variable the engine does not provide is an
//! error when the templates are loaded, not an empty hole in a prompt. Templates render with
//! `trim_blocks` and `lstrip_blocks`: a line holding only a block tag leaves no blank line.
//! The filter `size` writes a byte count as a person reads it (`120 KB`).
//!
//! # Fitting the agent's context
//! [`Prompts::render_within`] first fits the feature files and agent outputs into the
//! agent's budget ([`crate::context_budget`]); the cuts it makes reach the template as
//! `cuts`, which the partial `_cuts` renders as a note at the top of the material.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Object, Serde};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::backend::Phase;
use crate::context_budget::{Cut, fit, human_size};
use crate::event::AgentFailure;
use crate::line_comment::LineComment;
use crate::prompt_layout::{AgentLayout, shows_agent_as_text};

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

/// What the phase and role templates share, by the name they include or import it under.
const PARTIALS: [(&str, &str); 8] = [
    ("_cuts", include_str!("../templates/_cuts.md.j2")),
    ("_inputs", include_str!("../templates/_inputs.md.j2")),
    ("_findings", include_str!("../templates/_findings.md.j2")),
    ("_discovery", include_str!("../templates/_discovery.md.j2")),
    ("_guidance", include_str!("../templates/_guidance.md.j2")),
    (
        "_artifact_shape",
        include_str!("../templates/_artifact_shape.md.j2"),
    ),
    (
        "_analyze_categories",
        include_str!("../templates/_analyze_categories.md.j2"),
    ),
    (
        "_analyze_findings",
        include_str!("../templates/_analyze_findings.md.j2"),
    ),
];

macro_rules! role_template {
    ($phase:expr, $id:literal) => {
        (
            $phase,
            $id,
            include_str!(concat!("../templates/agents/", $id, ".md.j2")),
        )
    };
}

/// The embedded template of each built-in role, with the phase it belongs to.
const EMBEDDED_AGENTS: [(Phase, &str, &str); 20] = [
    // Stage A: planning.
    role_template!(Phase::Agent, "requirements-analyst"),
    role_template!(Phase::Agent, "solution-architect"),
    role_template!(Phase::Agent, "risk-compliance-analyst"),
    role_template!(Phase::Agent, "estimation-scope-analyst"),
    // Stage B: implementation prep.
    role_template!(Phase::Agent, "core-implementer"),
    role_template!(Phase::Agent, "integrations-engineer"),
    role_template!(Phase::Agent, "test-engineer"),
    role_template!(Phase::Agent, "docs-engineer"),
    // Stage C: quality review.
    role_template!(Phase::Agent, "completeness-reviewer"),
    role_template!(Phase::Agent, "feasibility-reviewer"),
    role_template!(Phase::Agent, "security-reviewer"),
    role_template!(Phase::Agent, "consistency-reviewer"),
    // The adaptive discovery step of uncertain inputs.
    role_template!(Phase::Agent, "discovery-analyst"),
    role_template!(Phase::Review, "lead-reviewer-a"),
    role_template!(Phase::Review, "integration-reviewer-b"),
    role_template!(Phase::Review, "lead-reviewer-c"),
    role_template!(Phase::Synthesis, "lead-synthesizer-a"),
    role_template!(Phase::Synthesis, "lead-synthesizer-b"),
    role_template!(Phase::Synthesis, "lead-synthesizer-c"),
    role_template!(Phase::Qa, "main-agent"),
];

/// Variables every template may use.
const PROVIDED: [&str; 14] = [
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
    "comments",
    "previous",
    "cuts",
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
    /// Agent ids with a repository template of their own, and its template name.
    per_agent: BTreeMap<String, String>,
    /// Phases whose template the repository replaced.
    overridden_phases: BTreeSet<Phase>,
}

/// A named text: a feature file or an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedText {
    pub name: String,
    pub content: String,
}

/// A stage's input files as its templates see them, converted once: every prompt of a stage
/// shares them, and converting them for each prompt copied every file once per agent. With
/// [`TemplateInputs::with_outputs`], the role agents' outputs too: the review, every synthesis
/// and QA see the same ones, and converting 10,000 of them took milliseconds per prompt.
#[derive(Debug, Clone)]
pub struct TemplateInputs {
    inputs: Value,
    outputs: Option<Value>,
}

impl TemplateInputs {
    pub fn new(inputs: &[NamedText]) -> Self {
        TemplateInputs {
            inputs: Value::from(Serde(inputs)),
            outputs: None,
        }
    }

    /// These inputs and `outputs` converted: for prompts whose context holds those outputs.
    pub fn with_outputs(&self, outputs: &[AgentOutputView]) -> Self {
        TemplateInputs {
            inputs: self.inputs.clone(),
            outputs: Some(Value::from(Serde(outputs))),
        }
    }
}

/// The context every role agent's prompt in a stage shares, everything but `agent`, converted
/// once: converting it for each prompt, and looking names up through a merge of two maps, was
/// a third of what rendering a wide stage's prompts cost.
#[derive(Debug, Clone)]
pub struct SharedContext(Arc<SharedParts>);

#[derive(Debug)]
struct SharedParts {
    values: Vec<(String, Value)>,
    /// Each template's layout of the prompts from this context, once probed: none when the
    /// template uses an agent's values other than as text (see [`crate::prompt_layout`]).
    layouts: Mutex<HashMap<String, Option<Arc<AgentLayout>>>>,
}

impl SharedContext {
    /// The context of `context`, but its agent, with `inputs` (converted from
    /// `context.inputs`) for its inputs.
    pub fn new(context: &PromptContext<'_>, inputs: &TemplateInputs) -> Self {
        let converted = Value::from(Serde(&PromptContext {
            inputs: &[],
            ..context.clone()
        }));
        let names = converted.try_iter().into_iter().flatten();
        let values = names
            .filter_map(|name| {
                let name = name.as_str()?.to_owned();
                let value = match name.as_str() {
                    "agent" => return None,
                    "inputs" => inputs.inputs.clone(),
                    _ => converted.get_attr(&name).ok()?,
                };
                Some((name, value))
            })
            .collect();
        SharedContext(Arc::new(SharedParts {
            values,
            layouts: Mutex::default(),
        }))
    }

    fn values(&self) -> &[(String, Value)] {
        &self.0.values
    }

    /// Template `name`'s layout for this context, probed by `probe` the first time.
    fn layout(
        &self,
        name: &str,
        probe: impl FnOnce() -> Result<Option<AgentLayout>, PromptError>,
    ) -> Result<Option<Arc<AgentLayout>>, PromptError> {
        let mut layouts = self
            .0
            .layouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(layout) = layouts.get(name) {
            return Ok(layout.clone());
        }
        let layout = probe()?.map(Arc::new);
        layouts.insert(name.to_owned(), layout.clone());
        Ok(layout)
    }
}

/// One agent's prompt context: its own `agent` beside the context its stage's agents share.
#[derive(Debug)]
struct AgentContext {
    agent: Value,
    shared: SharedContext,
}

impl Object for AgentContext {
    fn get_value(self: &Arc<Self>, name: &Value) -> Option<Value> {
        let name = name.as_str()?;
        if name == "agent" {
            return Some(self.agent.clone());
        }
        self.shared
            .values()
            .iter()
            .find(|(shared, _)| shared == name)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = std::iter::once("agent")
            .chain(self.shared.values().iter().map(|(name, _)| name.as_str()))
            .map(Value::from)
            .collect();
        Enumerator::Values(names)
    }
}

/// A role agent's output, as the reviewer and synthesizer see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// A person's comments on lines of the artifact a rework rewrites.
    pub comments: &'a [LineComment],
    pub previous: Option<&'a str>,
    /// Extra instructions from the adaptive rules for this phase.
    pub guidance: &'a [String],
    /// The discovery step's unknowns and assumptions, when the inputs were uncertain.
    pub discovery: Option<&'a str>,
    /// What was cut from `inputs` and `outputs` to fit the agent's context; empty when
    /// nothing was ([`Prompts::render_within`] fills it).
    pub cuts: &'a [Cut],
}

impl PromptContext<'_> {
    /// The bytes of the material the budget does not cut: the review, the artifacts, the
    /// previous version, the feedback, the discovery step's output and the guidance.
    fn uncut_bytes(&self) -> usize {
        let optional = [self.review, self.feedback, self.previous, self.discovery];
        optional
            .iter()
            .flatten()
            .map(|text| text.len())
            .sum::<usize>()
            + self
                .artifacts
                .iter()
                .map(|artifact| artifact.content.len())
                .sum::<usize>()
            + self.guidance.iter().map(String::len).sum::<usize>()
            + self
                .comments
                .iter()
                .map(|comment| comment.quoted.len() + comment.comment.len())
                .sum::<usize>()
    }

    /// The bytes of the material the budget may cut.
    fn cuttable_bytes(&self) -> usize {
        self.inputs
            .iter()
            .map(|input| input.content.len())
            .chain(self.outputs.iter().map(|output| output.output.len()))
            .sum()
    }
}

/// A rendered prompt and what was cut from its material to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    pub text: String,
    pub cuts: Vec<Cut>,
    /// Offsets into `text` where the agent's own values start and end, when the prompt was
    /// filled in from a layout (empty otherwise): the text between them is the same in every
    /// role agent's prompt of the stage, so a store that cuts texts into shared chunks cuts
    /// there too.
    pub joints: Vec<usize>,
    /// What stands for `text` in the call's cache key when the prompt was filled in from a
    /// layout (`None`: the blake3 hash of `text`).
    pub digest: Option<[u8; 32]>,
}

impl RenderedPrompt {
    /// A prompt rendered whole, not filled in from a layout.
    fn whole(text: String, cuts: Vec<Cut>) -> Self {
        RenderedPrompt {
            text,
            cuts,
            joints: Vec::new(),
            digest: None,
        }
    }
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
        if let Ok(syntax) = SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            environment.set_syntax(syntax);
        }
        environment.add_filter("size", |bytes: usize| human_size(bytes));
        // The embedded templates are compiled when first used (a stage uses a few of them, and
        // compiling all of them was a visible part of every start); the repository's own are
        // added, which wins over the loader, and checked at once.
        environment.set_loader(|name| Ok(embedded_source(name).map(str::to_owned)));
        let mut per_agent = BTreeMap::new();
        let mut overridden_phases = BTreeSet::new();
        if let Some(root) = repo_root {
            let dir = root.join(TEMPLATE_OVERRIDE_DIR);
            for (stem, source) in read_overrides(&dir)? {
                let phase = EMBEDDED
                    .iter()
                    .map(|(phase, _)| *phase)
                    .find(|phase| phase.as_str() == stem);
                if let Some(phase) = phase {
                    add_checked(&mut environment, stem, source)?;
                    overridden_phases.insert(phase);
                } else if stem.starts_with('_') {
                    add_checked(&mut environment, stem, source)?;
                } else {
                    let name = format!("agent:{stem}");
                    add_checked(&mut environment, name.clone(), source)?;
                    per_agent.insert(stem, name);
                }
            }
        }
        Ok(Prompts {
            environment,
            per_agent,
            overridden_phases,
        })
    }

    /// The name of the template that renders `agent`'s prompt in `phase` (see the module
    /// documentation for the order).
    pub fn template_for(&self, phase: Phase, agent: &str) -> String {
        if let Some(name) = self.per_agent.get(agent) {
            return name.clone();
        }
        if !self.overridden_phases.contains(&phase)
            && EMBEDDED_AGENTS
                .iter()
                .any(|(role_phase, id, _)| *role_phase == phase && *id == agent)
        {
            return embedded_name(agent);
        }
        phase.as_str().to_owned()
    }

    /// Renders the prompt of `agent` in `phase`, with the material as `context` holds it.
    pub fn render(
        &self,
        phase: Phase,
        agent: &str,
        context: &PromptContext<'_>,
    ) -> Result<String, PromptError> {
        self.render_value(phase, agent, Value::from(Serde(context)))
    }

    fn render_value(
        &self,
        phase: Phase,
        agent: &str,
        context: Value,
    ) -> Result<String, PromptError> {
        self.render_named(&self.template_for(phase, agent), context)
    }

    fn render_named(&self, name: &str, context: Value) -> Result<String, PromptError> {
        let template = self
            .environment
            .get_template(name)
            .map_err(|error| template_error(name, &error))?;
        template
            .render(context)
            .map_err(|error| template_error(name, &error))
    }

    /// Renders like [`Prompts::render`], with the inputs (and the outputs, when it holds them)
    /// already converted ([`TemplateInputs`], which must be of `context.inputs` and
    /// `context.outputs`): only the rest of the context is converted.
    fn render_prepared(
        &self,
        phase: Phase,
        agent: &str,
        context: &PromptContext<'_>,
        prepared: &TemplateInputs,
    ) -> Result<String, PromptError> {
        let rest = Value::from(Serde(&PromptContext {
            inputs: &[],
            outputs: if prepared.outputs.is_some() {
                &[]
            } else {
                context.outputs
            },
            ..context.clone()
        }));
        let inputs = prepared.inputs.clone();
        let context = match prepared.outputs.clone() {
            Some(outputs) => minijinja::context! { inputs, outputs, ..rest },
            None => minijinja::context! { inputs, ..rest },
        };
        self.render_value(phase, agent, context)
    }

    /// Renders like [`Prompts::render`] with the rest of the context already converted
    /// ([`SharedContext`], which must be of `context` but for its agent).
    fn render_shared(
        &self,
        phase: Phase,
        agent: &str,
        context: &PromptContext<'_>,
        shared: &SharedContext,
    ) -> Result<RenderedPrompt, PromptError> {
        let name = self.template_for(phase, agent);
        let with_agent = |agent: &AgentView<'_>| {
            Value::from_object(AgentContext {
                agent: Value::from(Serde(agent)),
                shared: shared.clone(),
            })
        };
        let layout = shared.layout(&name, || {
            if !shows_agent_as_text(&self.environment, &name) {
                return Ok(None);
            }
            AgentLayout::probe(|agent| self.render_named(&name, with_agent(agent)))
        })?;
        let cuts = context.cuts.to_vec();
        let Some(layout) = layout else {
            let text = self.render_named(&name, with_agent(&context.agent))?;
            return Ok(RenderedPrompt::whole(text, cuts));
        };
        let (text, joints) = layout.fill(&context.agent);
        Ok(RenderedPrompt {
            text,
            cuts,
            joints,
            digest: Some(layout.digest(&context.agent)),
        })
    }

    /// Renders like [`Prompts::render`] after fitting the feature files and agent outputs
    /// into `budget` bytes (`None`: unlimited) beside the material that is never cut (the
    /// review, the artifacts, the previous version, the feedback); the prompt says what was
    /// cut, and so does the answer.
    ///
    /// `prepared`, when given, holds `context.inputs` already converted, and `shared` all of
    /// `context` but its agent: used when nothing needs cutting.
    pub fn render_within(
        &self,
        phase: Phase,
        agent: &str,
        context: &PromptContext<'_>,
        budget: Option<usize>,
        prepared: Option<&TemplateInputs>,
        shared: Option<&SharedContext>,
    ) -> Result<RenderedPrompt, PromptError> {
        let room = budget.map(|budget| budget.saturating_sub(context.uncut_bytes()));
        let Some(room) = room.filter(|room| context.cuttable_bytes() > *room) else {
            let cuts = context.cuts.to_vec();
            return match (shared, prepared) {
                (Some(shared), _) => self.render_shared(phase, agent, context, shared),
                (None, Some(inputs)) => Ok(RenderedPrompt::whole(
                    self.render_prepared(phase, agent, context, inputs)?,
                    cuts,
                )),
                (None, None) => Ok(RenderedPrompt::whole(
                    self.render(phase, agent, context)?,
                    cuts,
                )),
            };
        };
        let (kept, new_cuts) = fit(context.inputs, context.outputs, room);
        let mut cuts = context.cuts.to_vec();
        cuts.extend(new_cuts);
        let fitted = PromptContext {
            inputs: &kept.inputs,
            outputs: &kept.outputs,
            cuts: &cuts,
            ..context.clone()
        };
        let text = self.render(phase, agent, &fitted)?;
        Ok(RenderedPrompt::whole(text, cuts))
    }
}

/// The source of the embedded template registered as `name`: a partial, a phase's template
/// under the phase's name (which a repository may replace) or under the fixed name the embedded
/// role templates extend (which it may not), or a role's template.
fn embedded_source(name: &str) -> Option<&'static str> {
    let partial = PARTIALS
        .iter()
        .find(|(partial, _)| *partial == name)
        .map(|(_, source)| *source);
    let phase = || {
        EMBEDDED
            .iter()
            .find(|(phase, _)| phase.as_str() == name || embedded_phase_name(*phase) == name)
            .map(|(_, source)| *source)
    };
    let role = || {
        EMBEDDED_AGENTS
            .iter()
            .find(|(_, id, _)| embedded_name(id) == name)
            .map(|(_, _, source)| *source)
    };
    partial.or_else(phase).or_else(role)
}

/// Every embedded template's name, for the check that they all compile and use only what
/// a prompt provides.
#[cfg(test)]
fn embedded_names() -> Vec<String> {
    PARTIALS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(
            EMBEDDED
                .iter()
                .flat_map(|(phase, _)| [phase.as_str().to_owned(), embedded_phase_name(*phase)]),
        )
        .chain(EMBEDDED_AGENTS.iter().map(|(_, id, _)| embedded_name(id)))
        .collect()
}

/// The fixed name of an embedded phase template, which the embedded role templates extend.
fn embedded_phase_name(phase: Phase) -> String {
    format!("phases/{}", phase.as_str())
}

/// The name an embedded role template is registered under, for `{% extends %}`.
fn embedded_name(agent: &str) -> String {
    format!("agents/{agent}")
}

fn add_checked(
    environment: &mut Environment<'static>,
    name: String,
    source: String,
) -> Result<(), PromptError> {
    environment
        .add_template_owned(name.clone(), source)
        .map_err(|error| template_error(&name, &error))?;
    check_declared(environment, name)
}

/// Compiles template `name` and checks it uses only variables a prompt provides.
fn check_declared(environment: &Environment<'static>, name: String) -> Result<(), PromptError> {
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
    #[test]
    fn every_embedded_template_compiles_and_uses_only_what_a_prompt_provides() {
        let prompts = super::Prompts::embedded().expect("the embedded templates load");
        let names = super::embedded_names();
        assert!(names.len() > 30, "{names:?}");
        for name in names {
            super::check_declared(&prompts.environment, name.clone())
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }

    use super::*;
    use crate::context_budget::KB;

    const SPEC: &str = include_str!("../../../examples/specs/001-team-photo-albums/spec.md");
    const TASKS: &str = include_str!("../../../examples/specs/001-team-photo-albums/tasks.md");
    const CONSTITUTION: &str = "# Team Photos Constitution\n\n## Core Principles\n\n\
        ### I. Privacy First\nPhotos MUST never be reachable outside their team without an explicit share.\n\n\
        ### II. Test-First\nEvery requirement MUST have a failing test before its code.\n";

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
            comments: &[],
            previous: None,
            guidance: &[],
            discovery: None,
            cuts: &[],
        }
    }

    fn text(name: &str, content: &str) -> NamedText {
        NamedText {
            name: name.into(),
            content: content.into(),
        }
    }

    /// The material of a realistic stage: the example feature, a constitution, the four
    /// planning agents' outputs (one failed) and a review.
    struct Material {
        inputs: Vec<NamedText>,
        outputs: Vec<AgentOutputView>,
        failures: Vec<AgentFailure>,
        artifacts: Vec<NamedText>,
        guidance: Vec<String>,
    }

    fn material() -> Material {
        Material {
            inputs: vec![
                text("spec.md", SPEC),
                text("tasks.md", TASKS),
                text("constitution.md", CONSTITUTION),
            ],
            outputs: vec![
                AgentOutputView {
                    agent: "requirements-analyst".into(),
                    role: "Requirements Analyst".into(),
                    output: "## Objectives\n1. Shared albums (US1, P1)\n\nCONFIDENCE: 0.8\n".into(),
                },
                AgentOutputView {
                    agent: "solution-architect".into(),
                    role: "Solution Architect".into(),
                    output: "## Components\n| Album service | albums | FR-001 |\n".into(),
                },
            ],
            failures: vec![AgentFailure {
                agent: "risk-compliance-analyst".into(),
                reason: "timed out after 60s".into(),
            }],
            artifacts: vec![
                text(
                    "plan.md",
                    "# Implementation Plan: Team Photo Albums\n\n## Summary\nAlbums.\n",
                ),
                text(
                    "planning-summary.md",
                    "# Planning Summary: Team Photo Albums\n\n## Problem\n",
                ),
            ],
            guidance: vec!["State every assumption explicitly.".into()],
        }
    }

    /// Each embedded role: its phase, its stage's artifacts, and what its prompt must ask for.
    fn role_asks() -> Vec<(&'static str, Vec<&'static str>)> {
        let analyze = vec![
            "| ID | Category | Severity | Location | Summary | Recommendation |",
            "**Duplication**",
            "**Ambiguity**",
            "**Underspecification**",
            "**Constitution alignment**",
            "**Coverage gaps**",
            "**Inconsistency**",
            "**CRITICAL**",
            "**LOW**",
        ];
        vec![
            (
                "requirements-analyst",
                vec![
                    "## Objectives",
                    "## Acceptance-Criteria Map",
                    "| Requirement | User stories | Acceptance scenarios | Success criteria |",
                    "## Dependencies",
                    "## Constraints",
                    "## Success Metrics",
                    "## Open Questions",
                    "Every `[NEEDS CLARIFICATION: …]` marker",
                    "Requirement it blocks",
                ],
            ),
            (
                "solution-architect",
                vec![
                    "## Components",
                    "## Interfaces",
                    "## Data Flow",
                    "## Patterns",
                    "## Alternatives Considered",
                    "Trade-offs",
                ],
            ),
            (
                "risk-compliance-analyst",
                vec![
                    "## Risks",
                    "Severity",
                    "CRITICAL",
                    "HIGH",
                    "MEDIUM",
                    "LOW",
                    "Mitigation",
                    "## Edge Cases",
                    "## Security and Privacy",
                    "## Performance",
                    "## Accessibility",
                ],
            ),
            (
                "estimation-scope-analyst",
                vec![
                    "## Phases",
                    "## Milestones",
                    "## Sequencing",
                    "## Effort Ranges",
                    "## Assumptions",
                ],
            ),
            (
                "core-implementer",
                vec![
                    "## Modules",
                    "## Data Structures",
                    "## Algorithms",
                    "## Rationale",
                ],
            ),
            (
                "integrations-engineer",
                vec![
                    "## Integrations",
                    "## API Contracts",
                    "## Error Handling",
                    "## Configuration",
                ],
            ),
            (
                "test-engineer",
                vec![
                    "## Test Plan",
                    "## Key Test Cases",
                    "## Fixtures",
                    "## Coverage Targets",
                ],
            ),
            (
                "docs-engineer",
                vec!["## Usage", "## Examples", "## Migration"],
            ),
            ("completeness-reviewer", {
                let mut asks = analyze.clone();
                asks.extend(["completeness", "COM1", "| Requirement Key | Has Task? |"]);
                asks
            }),
            ("feasibility-reviewer", {
                let mut asks = analyze.clone();
                asks.extend(["feasibility", "FEA1"]);
                asks
            }),
            ("security-reviewer", {
                let mut asks = analyze.clone();
                asks.extend(["security and privacy", "SEC1"]);
                asks
            }),
            ("consistency-reviewer", {
                let mut asks = analyze.clone();
                asks.extend(["consistency", "CON1", "terminology drift"]);
                asks
            }),
            (
                "discovery-analyst",
                vec![
                    "## Unknowns",
                    "## Assumptions",
                    "## Questions for the Person",
                ],
            ),
            (
                "lead-reviewer-a",
                vec![
                    "## Review Summary",
                    "technical coherence",
                    "## Architecture Decisions",
                    "## Synthesis Guidance",
                    "risk-compliance-analyst: timed out after 60s",
                ],
            ),
            (
                "integration-reviewer-b",
                vec![
                    "## Review Summary",
                    "implementation coherence and API consistency",
                    "## API Consistency",
                    "## Synthesis Guidance",
                ],
            ),
            (
                "lead-reviewer-c",
                vec![
                    "## Review Summary",
                    "## Prioritized Issues",
                    "CRITICAL first",
                    "## Critical Findings",
                    "**Coverage gaps**",
                ],
            ),
            (
                "lead-synthesizer-a",
                vec![
                    "Problem → Solution → Implementation",
                    "The review's architecture decisions are final",
                    "# Implementation Plan: ",
                    "## Summary",
                    "## Technical Context",
                    "## Constitution Check",
                    "## Project Structure",
                    "## Complexity Tracking",
                ],
            ),
            (
                "lead-synthesizer-b",
                vec![
                    "Approach → Tasks → Dependencies",
                    "## Approach",
                    "## Tasks",
                    "## Dependencies",
                    "`- [ ] T001 [P] [US1] ",
                ],
            ),
            (
                "lead-synthesizer-c",
                vec![
                    "Issues → Impact → Resolution",
                    "## Issues",
                    "## Impact",
                    "## Resolution",
                    "| Requirement Key | Has Task? | Task IDs | Notes |",
                    "Constitution alignment",
                    "Coverage gaps",
                ],
            ),
            (
                "main-agent",
                vec![
                    "## Alignment with the Spec",
                    "## Completeness",
                    "one row per FR-### of spec.md",
                    "## Format",
                    "## Open Questions",
                    "`VERDICT: PASS`",
                    "`VERDICT: REWORK`",
                    "## Complexity Tracking",
                ],
            ),
        ]
    }

    /// The stage a built-in role belongs to, as a (required, optional, artifact) triple.
    fn stage_of(agent: &str) -> (Vec<String>, Vec<String>, &'static str) {
        let names = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        match agent {
            "core-implementer"
            | "integrations-engineer"
            | "test-engineer"
            | "docs-engineer"
            | "integration-reviewer-b"
            | "lead-synthesizer-b" => (
                names(&["implementation_plan.md"]),
                names(&["test_fixtures/", "api_mocks/"]),
                "implementation_plan.md",
            ),
            "completeness-reviewer"
            | "feasibility-reviewer"
            | "security-reviewer"
            | "consistency-reviewer"
            | "lead-reviewer-c"
            | "lead-synthesizer-c" => (
                names(&["quality_report.md"]),
                names(&["coverage_report.html", "security_scan.json"]),
                "quality_report.md",
            ),
            _ => (
                names(&["plan.md", "planning-summary.md"]),
                names(&["research.md", "data-model.md", "contracts/"]),
                "plan.md",
            ),
        }
    }

    fn render_role(
        prompts: &Prompts,
        material: &Material,
        phase: Phase,
        agent: &str,
        stage: (&[String], &[String]),
        artifact: &str,
    ) -> String {
        let context = PromptContext {
            stage: StageView {
                id: "plan",
                name: "Stage A: Planning/Spec",
                question: "Planning artifacts synthesized. Approve to proceed?",
                required: stage.0,
                optional: stage.1,
            },
            agent: AgentView {
                id: agent,
                role: "The Role",
                task: "Do the role's task as configured.",
            },
            inputs: &material.inputs,
            outputs: if phase == Phase::Agent {
                &[]
            } else {
                &material.outputs
            },
            failures: if phase == Phase::Agent {
                &[]
            } else {
                &material.failures
            },
            review: (phase >= Phase::Synthesis).then_some("## Review Summary\nCoherent."),
            artifact: (phase == Phase::Synthesis).then_some(artifact),
            artifacts: if phase == Phase::Qa {
                &material.artifacts
            } else {
                &[]
            },
            feedback: None,
            comments: &[],
            previous: None,
            guidance: &material.guidance,
            discovery: (phase == Phase::Agent).then_some("1. Assume in-app notifications."),
            cuts: &[],
        };
        prompts
            .render(phase, agent, &context)
            .unwrap_or_else(|error| panic!("{agent} in {phase:?}: {error}"))
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
    fn every_role_template_renders_the_feature_the_constitution_and_its_asks() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let material = material();
        let asks = role_asks();
        assert_eq!(asks.len(), EMBEDDED_AGENTS.len());
        for (agent, needles) in asks {
            let (phase, _, _) = EMBEDDED_AGENTS
                .iter()
                .find(|(_, id, _)| *id == agent)
                .unwrap_or_else(|| panic!("{agent} has no embedded template"));
            assert_eq!(
                prompts.template_for(*phase, agent),
                format!("agents/{agent}")
            );
            let (required, optional, artifact) = stage_of(agent);
            let prompt = render_role(
                &prompts,
                &material,
                *phase,
                agent,
                (&required, &optional),
                artifact,
            );
            for needle in needles
                .iter()
                .chain(&["You are the The Role", "Do the role's task as configured."])
            {
                assert!(
                    prompt.contains(needle),
                    "{agent}: no {needle:?} in\n{prompt}"
                );
            }
            // The feature files and the constitution, under its own heading.
            assert!(prompt.contains("## Feature file: spec.md"), "{agent}");
            assert!(prompt.contains("**FR-011**"), "{agent}");
            assert!(prompt.contains("## Feature file: tasks.md"), "{agent}");
            assert!(
                prompt.contains("## Project constitution (principles to comply with)"),
                "{agent}"
            );
            assert!(prompt.contains("### I. Privacy First"), "{agent}");
            assert!(
                !prompt.contains("## Feature file: constitution.md"),
                "{agent}"
            );
            assert!(
                prompt.contains("State every assumption explicitly."),
                "{agent}"
            );
            // Nothing of the template language leaks, and no stray `none` of an empty option.
            for leak in ["{{", "{%", "\nnone\n", "\n\n\n\n"] {
                assert!(!prompt.contains(leak), "{agent}: {leak:?} in\n{prompt}");
            }
            match phase {
                Phase::Agent => {
                    assert!(prompt.contains("CONFIDENCE: <0.0–1.0>"), "{agent}");
                    assert!(prompt.contains("Assume in-app notifications."), "{agent}");
                }
                Phase::Review | Phase::Synthesis => {
                    assert!(prompt.contains("## Findings of the Solution Architect"));
                }
                Phase::Qa => assert!(prompt.contains("## Artifact: plan.md")),
            }
        }
    }

    #[test]
    fn the_synthesizer_gets_each_artifacts_shape_and_may_skip_only_optional_ones() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let material = material();
        let required = ["plan.md".to_owned(), "planning-summary.md".to_owned()];
        let optional = [
            "research.md".to_owned(),
            "data-model.md".to_owned(),
            "coverage_report.html".to_owned(),
            "security_scan.json".to_owned(),
            "security_audit.md".to_owned(),
            "tasks.md".to_owned(),
        ];
        let shapes = [
            ("tasks.md", "keep it exactly as it is and only append"),
            ("plan.md", "## Constitution Check"),
            ("planning-summary.md", "## Problem"),
            ("research.md", "**Alternatives considered**"),
            ("data-model.md", "**State transitions**"),
            ("coverage_report.html", "<!DOCTYPE html>"),
            ("security_scan.json", "\"severity\": \"HIGH\""),
            ("security_audit.md", "has no built-in shape"),
        ];
        for (artifact, needle) in shapes {
            let prompt = render_role(
                &prompts,
                &material,
                Phase::Synthesis,
                "lead-synthesizer-a",
                (&required, &optional),
                artifact,
            );
            assert!(
                prompt.contains(needle),
                "{artifact}: {needle:?} in\n{prompt}"
            );
            assert!(prompt.contains(&format!("This call writes `{artifact}`")));
            let skip = "answer `SKIP` alone";
            assert_eq!(
                prompt.contains(skip),
                optional.iter().any(|name| name == artifact),
                "{artifact}"
            );
        }
    }

    #[test]
    fn a_reviewer_reused_by_a_custom_stage_guides_that_stages_artifacts() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let material = material();
        let required = ["security_audit.md".to_owned()];
        let optional = ["threats.json".to_owned(), "evidence/".to_owned()];
        let prompt = render_role(
            &prompts,
            &material,
            Phase::Review,
            "lead-reviewer-c",
            (&required, &optional),
            "security_audit.md",
        );
        assert!(
            prompt.contains(
                "For each artifact the synthesizer writes (security_audit.md, threats.json)"
            ),
            "{prompt}"
        );
        assert!(!prompt.contains("For `quality_report.md`"));
    }

    #[test]
    fn a_synthesis_rework_carries_the_feedback_and_the_previous_version() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let required = ["implementation_plan.md".to_owned()];
        let mut context = context(&[], &[], &[], &required);
        context.artifact = Some("implementation_plan.md");
        context.feedback = Some("1. T004 has no file path.");
        context.previous = Some("# Implementation Plan: Albums\n- [ ] T004 Do it\n");
        let prompt = prompts
            .render(Phase::Synthesis, "lead-synthesizer-b", &context)
            .expect("renders");
        assert!(prompt.contains("## Rework requested"), "{prompt}");
        assert!(prompt.contains("1. T004 has no file path."));
        assert!(prompt.contains("## Previous version of implementation_plan.md"));
        assert!(prompt.contains("- [ ] T004 Do it"));
    }

    #[test]
    fn a_rework_lists_each_line_comment_with_its_lines_and_quoted_text() {
        let prompts = Prompts::embedded().expect("embedded templates load");
        let required = ["plan.md".to_owned()];
        let mut context = context(&[], &[], &[], &required);
        context.artifact = Some("plan.md");
        context.previous = Some("# Plan\n| a | b |\n");
        let comments = [
            LineComment {
                artifact: "plan.md".to_owned(),
                first_line: 2,
                last_line: 2,
                quoted: "| a | b |".to_owned(),
                comment: "Name the columns.".to_owned(),
            },
            LineComment {
                artifact: "plan.md".to_owned(),
                first_line: 40,
                last_line: 44,
                quoted: "five lines".to_owned(),
                comment: "Too long.".to_owned(),
            },
        ];
        context.comments = &comments;
        let prompt = prompts
            .render(Phase::Synthesis, "lead-synthesizer-a", &context)
            .expect("renders");
        assert!(
            prompt.contains("## Line comments on the previous version"),
            "{prompt}"
        );
        assert!(
            prompt.contains("### Comment 1: `plan.md` line 2\n\nThe lines:"),
            "{prompt}"
        );
        assert!(prompt.contains("| a | b |\n````\n\nThe comment: Name the columns."));
        assert!(
            prompt.contains("### Comment 2: `plan.md` lines 40-44\n"),
            "{prompt}"
        );
        assert!(prompt.contains("The comment: Too long."));
        assert!(
            !prompt.contains("## Rework requested"),
            "no free-text feedback was given"
        );
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
    fn resolution_order_repository_agent_then_repository_phase_then_embedded_role_then_phase() {
        let embedded = Prompts::embedded().expect("loads");
        // Embedded role template, only in its own phase.
        assert_eq!(
            embedded.template_for(Phase::Agent, "risk-compliance-analyst"),
            "agents/risk-compliance-analyst"
        );
        assert_eq!(
            embedded.template_for(Phase::Review, "requirements-analyst"),
            "review"
        );
        assert_eq!(
            embedded.template_for(Phase::Agent, "threat-modeler"),
            "agent"
        );

        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(TEMPLATE_OVERRIDE_DIR);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("agent.md.j2"), "repository agent phase").expect("write");
        std::fs::write(
            dir.join("solution-architect.md.j2"),
            "{% extends \"agents/solution-architect\" %}{% block focus %}\n\nCUSTOM FOCUS\n{% endblock %}",
        )
        .expect("write");
        std::fs::write(dir.join("_guidance.md.j2"), "REPOSITORY GUIDANCE\n").expect("write");
        let prompts = Prompts::load(Some(root.path())).expect("loads");

        // 1. The repository's agent template beats everything, and may extend the embedded one.
        assert_eq!(
            prompts.template_for(Phase::Agent, "solution-architect"),
            "agent:solution-architect"
        );
        let material = material();
        let (required, optional, artifact) = stage_of("solution-architect");
        let architect = render_role(
            &prompts,
            &material,
            Phase::Agent,
            "solution-architect",
            (&required, &optional),
            artifact,
        );
        assert!(architect.contains("CUSTOM FOCUS"), "{architect}");
        assert!(
            architect.contains("## Alternatives Considered"),
            "{architect}"
        );
        // A repository partial replaces the embedded one wherever it is included.
        assert!(architect.contains("REPOSITORY GUIDANCE"), "{architect}");
        // 2. The repository's phase template beats the embedded role template.
        assert_eq!(
            prompts.template_for(Phase::Agent, "risk-compliance-analyst"),
            "agent"
        );
        let context = context(&[], &[], &[], &[]);
        assert_eq!(
            prompts
                .render(Phase::Agent, "risk-compliance-analyst", &context)
                .expect("renders"),
            "repository agent phase"
        );
        // 3. A phase the repository left alone keeps the embedded role templates.
        assert_eq!(
            prompts.template_for(Phase::Review, "lead-reviewer-a"),
            "agents/lead-reviewer-a"
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

    #[test]
    fn within_the_budget_the_prompt_is_rendered_as_is() {
        let prompts = Prompts::embedded().expect("loads");
        let material = material();
        let context = context(&material.inputs, &material.outputs, &[], &[]);
        let plain = prompts
            .render(Phase::Review, "lead-reviewer-a", &context)
            .expect("renders");
        for budget in [None, Some(100 * KB)] {
            let rendered = prompts
                .render_within(
                    Phase::Review,
                    "lead-reviewer-a",
                    &context,
                    budget,
                    None,
                    None,
                )
                .expect("renders");
            assert_eq!(rendered.text, plain);
            assert!(rendered.cuts.is_empty());
        }
        assert!(!plain.contains("Note: to fit"));
    }

    #[test]
    fn later_phases_prompts_from_converted_outputs_are_the_prompts_from_their_own() {
        let prompts = Prompts::embedded().expect("loads");
        let material = material();
        let required = ["plan.md".to_owned()];
        let base = context(
            &material.inputs,
            &material.outputs,
            &material.failures,
            &required,
        );
        let converted = TemplateInputs::new(base.inputs).with_outputs(base.outputs);
        let phases = [
            (Phase::Review, "lead-reviewer-a", None),
            (Phase::Synthesis, "lead-synthesizer-a", Some("plan.md")),
            (Phase::Qa, "main-agent", None),
        ];
        for (phase, agent, artifact) in phases {
            let context = PromptContext {
                artifact,
                artifacts: &material.artifacts,
                ..base.clone()
            };
            let own = prompts.render(phase, agent, &context).expect("renders");
            let from_converted = prompts
                .render_within(phase, agent, &context, None, Some(&converted), None)
                .expect("renders");
            assert_eq!(from_converted.text, own, "{phase:?}");
            if phase != Phase::Qa {
                assert!(own.contains("Album service | albums | FR-001"), "{own}");
            }
        }
    }

    #[test]
    fn a_role_agents_prompt_from_the_shared_context_is_the_prompt_from_its_own() {
        let prompts = Prompts::embedded().expect("loads");
        let material = material();
        let guidance = ["Name the riskiest assumption first.".to_owned()];
        let required = ["plan.md".to_owned()];
        let first = PromptContext {
            review: None,
            artifact: None,
            guidance: &guidance,
            discovery: Some("Unknown: who may export reports."),
            ..context(&material.inputs, &[], &[], &required)
        };
        let inputs = TemplateInputs::new(first.inputs);
        let shared = SharedContext::new(&first, &inputs);
        let agents = [
            (
                "requirements-analyst",
                "Requirements Analyst",
                "Trace every requirement",
            ),
            (
                "solution-architect",
                "Solution Architect",
                "Shape the data model",
            ),
            ("custom-analyst", "Custom Analyst", "Count the {{ braces }}"),
            (
                "other-analyst",
                "<Other> & \u{2}a-stagegate- \"analyst\"",
                "",
            ),
            (
                "completeness-reviewer",
                "Completeness Reviewer",
                "Find the gaps\nand list them",
            ),
        ];
        for (id, role, task) in agents {
            let context = PromptContext {
                agent: AgentView { id, role, task },
                ..first.clone()
            };
            let own = prompts.render(Phase::Agent, id, &context).expect("renders");
            let from_shared = prompts
                .render_within(
                    Phase::Agent,
                    id,
                    &context,
                    None,
                    Some(&inputs),
                    Some(&shared),
                )
                .expect("renders");
            assert_eq!(from_shared.text, own, "{id}");
            assert!(own.contains(role) && own.contains(task), "{own}");
            assert!(own.contains("who may export reports"), "{own}");
        }
    }

    #[test]
    fn the_phase_template_of_role_agents_is_laid_out_once_and_filled_in() {
        let prompts = Prompts::embedded().expect("loads");
        assert!(shows_agent_as_text(&prompts.environment, "agent"));
        // A role template that derives a prefix from the agent's id is rendered each time.
        assert!(!shows_agent_as_text(
            &prompts.environment,
            "agents/completeness-reviewer"
        ));
    }

    #[test]
    fn a_template_that_looks_at_its_agent_renders_each_prompt_itself() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(TEMPLATE_OVERRIDE_DIR);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("agent.md.j2"),
            "{% if agent.role == 'Security' %}S{% else %}{{ agent.role }}{% endif %}: {{ agent.task }}",
        )
        .expect("write");
        let prompts = Prompts::load(Some(root.path())).expect("loads");
        let first = context(&[], &[], &[], &[]);
        let shared = SharedContext::new(&first, &TemplateInputs::new(&[]));
        for (role, expected) in [("Security", "S: t"), ("Other", "Other: t")] {
            let context = PromptContext {
                agent: AgentView {
                    id: "x",
                    role,
                    task: "t",
                },
                ..first.clone()
            };
            let rendered = prompts
                .render_within(Phase::Agent, "x", &context, None, None, Some(&shared))
                .expect("renders");
            assert_eq!(rendered.text, expected);
        }
    }

    #[test]
    fn over_the_budget_spec_stays_whole_and_the_prompt_says_what_was_cut() {
        let prompts = Prompts::embedded().expect("loads");
        let big_tasks = format!("{TASKS}\n").repeat(120 * KB / TASKS.len() + 1);
        let big_tasks = &big_tasks[..big_tasks[..120 * KB].rfind('\n').expect("lines") + 1];
        let inputs = [
            text("spec.md", SPEC),
            text("tasks.md", big_tasks),
            text("constitution.md", CONSTITUTION),
        ];
        let required = ["quality_report.md".to_owned()];
        let context = context(&inputs, &[], &[], &required);
        let rendered = prompts
            .render_within(
                Phase::Agent,
                "completeness-reviewer",
                &context,
                Some(60 * KB),
                None,
                None,
            )
            .expect("renders");
        assert_eq!(rendered.cuts.len(), 1, "{:?}", rendered.cuts);
        let cut = &rendered.cuts[0];
        assert_eq!(cut.name, "tasks.md");
        assert!(cut.kept_bytes < 60 * KB - SPEC.len() - CONSTITUTION.len());
        // spec.md whole, the constitution whole, tasks.md cut with a marker.
        assert!(rendered.text.contains(SPEC.trim()));
        assert!(rendered.text.contains(CONSTITUTION.trim()));
        assert!(rendered.text.contains("[stagegate: tasks.md is cut here"));
        let note = format!(
            "Note: to fit this agent's context, tasks.md was cut from 120 KB to {} (the rest omitted)",
            human_size(cut.kept_bytes)
        );
        assert!(rendered.text.contains(&note), "{}", &rendered.text[..2000]);
        assert!(
            rendered.text.len() < 60 * KB + 8 * KB,
            "{}",
            rendered.text.len()
        );
    }
}
