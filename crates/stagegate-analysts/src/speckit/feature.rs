//! A feature as the analysts see it: every spec-kit file a call was given, parsed once.

use stagegate_engine::prompt::NamedText;

use crate::speckit::manifest::{self, Manifest};
use crate::speckit::{Checklist, Constitution, Plan, Spec, TaskList};

/// The prefix of a feature document that exists but is not an input of the stage
/// (`existing/plan.md`): read when no input or output of the same name is given.
pub const EXISTING_PREFIX: &str = "existing/";

/// The parsed feature files of one call.
#[derive(Debug, Clone, Default)]
pub struct Feature {
    /// The feature's display name (spec title, branch, else `"Feature"`).
    pub name: String,
    pub spec: Spec,
    /// Whether a `spec.md` was among the inputs at all.
    pub has_spec: bool,
    pub plan: Option<Plan>,
    pub tasks: Option<TaskList>,
    pub constitution: Option<Constitution>,
    /// `(file name, checklist)`.
    pub checklists: Vec<(String, Checklist)>,
    /// The raw text of every input, by file name, for analysts that scan words (the
    /// project's spec-kit templates excepted: their example words are not the feature's).
    pub texts: Vec<NamedText>,
    /// The project's spec-kit templates (`plan-template.md`, …), see [`Feature::template`].
    pub templates: Vec<NamedText>,
    /// The repository's manifests (`go.mod`, `package.json`, …), the only source of a
    /// language or dependency besides an explicit technical-context statement.
    pub manifests: Vec<Manifest>,
    /// Documents read from the feature as it already was (`plan.md`), by base name.
    pub existing: Vec<String>,
}

/// The last path component of a name (`specs/001/plan.md` → `plan.md`).
pub(crate) fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

impl Feature {
    /// Parses the inputs by file name. `extra` are files looked at when the inputs lack them
    /// (a stage's own synthesized `plan.md`, for instance); inputs win.
    pub fn from_files(inputs: &[NamedText], extra: &[NamedText]) -> Feature {
        let mut feature = Feature::default();
        let (existing, inputs): (Vec<&NamedText>, Vec<&NamedText>) = inputs
            .iter()
            .partition(|file| file.name.starts_with(EXISTING_PREFIX));
        for file in inputs.into_iter().chain(extra).chain(existing) {
            if manifest::language_of(&file.name).is_some() {
                feature
                    .manifests
                    .push(Manifest::parse(&file.name, &file.content));
                continue;
            }
            let base = base_name(&file.name).to_lowercase();
            let is_existing = file.name.starts_with(EXISTING_PREFIX);
            let content = file.content.as_str();
            if base.ends_with("-template.md") {
                let known = feature
                    .templates
                    .iter()
                    .any(|template| base_name(&template.name).eq_ignore_ascii_case(&base));
                if !known {
                    feature.templates.push(file.clone());
                }
                continue;
            }
            match base.as_str() {
                "spec.md" if !feature.has_spec => {
                    feature.spec = Spec::parse(content);
                    feature.has_spec = true;
                }
                "plan.md" if feature.plan.is_none() => {
                    feature.plan = Some(Plan::parse(content));
                    if is_existing {
                        feature.existing.push(base.clone());
                    }
                }
                "tasks.md" if feature.tasks.is_none() => {
                    feature.tasks = Some(TaskList::parse(content));
                    if is_existing {
                        feature.existing.push(base.clone());
                    }
                }
                _ if base.ends_with("constitution.md") && feature.constitution.is_none() => {
                    feature.constitution = Some(Constitution::parse(content));
                }
                _ if file.name.to_lowercase().contains("checklist") => {
                    feature
                        .checklists
                        .push((file.name.clone(), Checklist::parse(content)));
                }
                _ => {}
            }
            if !feature.texts.iter().any(|text| text.name == file.name) {
                feature.texts.push(file.clone());
            }
        }
        feature.bound();
        if !feature.has_spec {
            feature
                .spec
                .notes
                .push("no spec.md among the inputs".to_owned());
        }
        feature.name = feature
            .spec
            .feature_name()
            .or_else(|| feature.plan.as_ref().and_then(|plan| plan.title.clone()))
            .unwrap_or_else(|| "Feature".to_owned());
        feature
    }

    /// Keeps the analysis of huge inputs fast: the analysts compare requirements with stories
    /// and tasks pairwise, so beyond these counts they look at the first ones only, and say so.
    fn bound(&mut self) {
        fn keep<T>(items: &mut Vec<T>, limit: usize, what: &str, notes: &mut Vec<String>) {
            if items.len() > limit {
                notes.push(format!(
                    "only the first {limit} of {} {what} were analyzed",
                    items.len()
                ));
                items.truncate(limit);
            }
        }
        let spec = &mut self.spec;
        let mut notes = Vec::new();
        keep(&mut spec.stories, 300, "user stories", &mut notes);
        keep(
            &mut spec.requirements,
            1_500,
            "functional requirements",
            &mut notes,
        );
        keep(
            &mut spec.success_criteria,
            500,
            "success criteria",
            &mut notes,
        );
        keep(
            &mut spec.open_questions,
            500,
            "clarification markers",
            &mut notes,
        );
        keep(&mut spec.edge_cases, 300, "edge cases", &mut notes);
        keep(&mut spec.entities, 100, "key entities", &mut notes);
        keep(&mut spec.assumptions, 300, "assumptions", &mut notes);
        keep(&mut spec.placeholders, 300, "placeholders", &mut notes);
        keep(
            &mut spec.unnumbered_requirements,
            300,
            "unnumbered requirements",
            &mut notes,
        );
        keep(&mut spec.duplicate_ids, 300, "duplicated ids", &mut notes);
        for story in &mut spec.stories {
            story.scenarios.truncate(50);
        }
        spec.notes.extend(notes);
        if let Some(tasks) = &mut self.tasks {
            let mut notes = Vec::new();
            keep(&mut tasks.tasks, 2_000, "tasks", &mut notes);
            tasks.notes.extend(notes);
        }
    }

    /// A raw input by base name.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|file| base_name(&file.name).eq_ignore_ascii_case(name))
            .map(|file| file.content.as_str())
    }

    /// The project's spec-kit template of an artifact (`plan-template.md` for `plan.md`), when
    /// it was among the inputs.
    pub fn template(&self, artifact: &str) -> Option<&str> {
        let name = crate::speckit::Template::input_name(artifact)?;
        self.templates
            .iter()
            .find(|file| base_name(&file.name).eq_ignore_ascii_case(&name))
            .map(|file| file.content.as_str())
    }

    /// Every note of every parsed file, prefixed with the file it is about.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .spec
            .notes
            .iter()
            .map(|note| format!("spec.md: {note}"))
            .collect();
        if let Some(plan) = &self.plan {
            notes.extend(plan.notes.iter().map(|note| format!("plan.md: {note}")));
        }
        if let Some(tasks) = &self.tasks {
            notes.extend(tasks.notes.iter().map(|note| format!("tasks.md: {note}")));
        }
        if let Some(constitution) = &self.constitution {
            notes.extend(
                constitution
                    .notes
                    .iter()
                    .map(|note| format!("constitution: {note}")),
            );
        }
        notes
    }
}
