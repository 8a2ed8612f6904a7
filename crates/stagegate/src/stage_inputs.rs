//! A stage's inputs, checked before it starts (exit 5 when missing or stale).
//!
//! Approvals are bound to content: each records the blake3 hash of what was approved, and counts
//! only while the file still has that content (like a stale pull-request review). The subjects:
//!
//! * `spec` — `stagegate approve spec`: spec.md's content;
//! * `implementation` — `stagegate approve implementation`: tasks.md's content (or none);
//! * `artifact:NAME` — an artifact published at a gate;
//! * `input:STAGE:NAME` — an input of STAGE as it was when STAGE's gate approved, so that a
//!   later stage can tell that spec.md changed since plan.md was approved.

use std::path::Path;

use stagegate_analysts::speckit::{EXISTING_PREFIX, MANIFESTS};
use stagegate_engine::prompt::NamedText;
use stagegate_settings::{Settings, StageSettings};
use stagegate_store::{Store, file_hash};

use crate::error::AppError;
use crate::input_file::{InputProblem, check_input, read_input};
use crate::workspace::Feature;

pub const SPEC: &str = "spec.md";
pub const TASKS: &str = "tasks.md";

pub fn artifact_subject(name: &str) -> String {
    format!("artifact:{name}")
}

pub fn input_subject(stage: &str, name: &str) -> String {
    format!("input:{stage}:{name}")
}

/// Checks every input of `stage` and loads them for the prompts.
pub async fn check_stage_inputs(
    store: &Store,
    settings: &Settings,
    feature: &Feature,
    stage: &StageSettings,
) -> Result<Vec<NamedText>, AppError> {
    let mut problems = Vec::new();
    let mut inputs = Vec::new();
    for name in &stage.inputs {
        let path = feature.dir.join(name);
        // Read as bytes: a feature file that is not valid UTF-8 is still read (bad bytes become
        // U+FFFD) and its oddities reported by the agents, rather than stopping the stage.
        let spec_text = match read_input(&feature.repo_root(), &path) {
            Ok(bytes) => {
                let content = String::from_utf8_lossy(&bytes).into_owned();
                let spec_text = (name == SPEC).then(|| content.clone());
                inputs.push(NamedText {
                    name: name.clone(),
                    content,
                });
                spec_text
            }
            Err(InputProblem::Missing) => {
                problems.push(missing_file(settings, feature, name));
                continue;
            }
            Err(problem) => {
                problems.push(problem.describe(&format!("{}/{name}", feature.key)));
                continue;
            }
        };
        if let Some(spec_text) = spec_text {
            problems.extend(check_spec(store, feature, &spec_text).await?);
        } else if let Some(producer) =
            producing_stage(settings, name).filter(|_| !is_worklist(name))
        {
            problems.extend(check_artifact(store, settings, feature, name, producer).await?);
        }
    }
    // analyze runs where spec-kit runs /speckit.analyze (after tasks, before implementing) and
    // again after implementing; its report says which, so open tasks do not stop it.
    if stage.id == "analyze" {
        problems.extend(check_all_artifacts_current(store, settings, feature).await?);
    }
    problems.dedup();
    if problems.is_empty() {
        inputs.extend(existing_artifacts(feature, &inputs));
        inputs.extend(repository_manifests(&feature.repo_root()));
        return Ok(inputs);
    }
    Err(AppError::input_missing(format!(
        "stage {} cannot start: {} in {}\n{}",
        stage.id,
        if problems.len() == 1 {
            "an input is missing or stale"
        } else {
            "inputs are missing or stale"
        },
        feature.key,
        problems.join("\n")
    )))
}

/// tasks.md is spec-kit's work list: `/speckit.implement` checks its tasks off, so prep's
/// approval of it (when prep wrote it) does not bind its content, and a team's own tasks.md
/// needs no approval at all.
fn is_worklist(name: &str) -> bool {
    name == TASKS
}

fn missing_file(settings: &Settings, feature: &Feature, name: &str) -> String {
    let how = match (name, producing_stage(settings, name)) {
        (SPEC, _) => "write it with spec-kit (`/speckit.specify`)".to_owned(),
        (TASKS, Some(stage)) => format!(
            "generate it with spec-kit (`/speckit.tasks`), or run `stagegate run {}` and approve its gate",
            stage.id
        ),
        (TASKS, None) => "generate it with spec-kit (`/speckit.tasks`)".to_owned(),
        (_, Some(stage)) => format!("run `stagegate run {}` and approve its gate", stage.id),
        (_, None) => "create it".to_owned(),
    };
    format!("- {}/{name} does not exist\n  hint: {how}", feature.key)
}

/// The stage whose synthesizer writes `name`, if any.
fn producing_stage<'a>(settings: &'a Settings, name: &str) -> Option<&'a StageSettings> {
    settings.stages.values().find(|stage| {
        stage
            .required
            .iter()
            .chain(&stage.optional)
            .any(|artifact| artifact == name)
    })
}

/// The hash of a feature file as it is now; `None` when it is missing or not a file that
/// [`check_input`] accepts (a FIFO would block the hash forever).
async fn current_hash(feature: &Feature, name: &str) -> Option<String> {
    let path = feature.dir.join(name);
    check_input(&feature.repo_root(), &path).ok()?;
    file_hash(&path).ok()
}

/// spec.md must be a specification and approved as it is now.
async fn check_spec(store: &Store, feature: &Feature, text: &str) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    if let Some(problem) = validate_spec(&feature.dir.join(SPEC), text) {
        problems.push(problem);
    }
    let approval = store.latest_approval(&feature.key, "spec").await?;
    let current = current_hash(feature, SPEC).await;
    match approval {
        None => problems.push(format!(
            "- {}/spec.md is not approved\n  hint: review it, then run `stagegate approve spec`",
            feature.key
        )),
        Some(approval) if Some(&approval.content_hash) != current.as_ref() => {
            problems.push(format!(
                "- {}/spec.md changed since it was approved\n  hint: review the change, then run `stagegate approve spec` again",
                feature.key
            ))
        }
        Some(_) => {}
    }
    Ok(problems)
}

/// The check a spec must pass before anything is planned from it: it has content. A spec in
/// another structure (no spec-kit headings, not even markdown) is still planned from: the
/// analysts report what they could not read as findings, and the person sees them at the gate.
fn validate_spec(path: &Path, text: &str) -> Option<String> {
    text.trim().is_empty().then(|| {
        format!(
            "- {} is empty\n  hint: write the specification first (`/speckit.specify`)",
            path.display()
        )
    })
}

/// An artifact a gate made must still be what the gate approved, and so must the inputs that
/// gate's stage read.
async fn check_artifact(
    store: &Store,
    settings: &Settings,
    feature: &Feature,
    name: &str,
    producer: &StageSettings,
) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    let approval = store
        .latest_approval(&feature.key, &artifact_subject(name))
        .await?;
    let Some(approval) = approval else {
        problems.push(format!(
            "- {}/{name} was not approved at the {} gate\n  hint: run `stagegate run {}` and approve it",
            feature.key, producer.id, producer.id
        ));
        return Ok(problems);
    };
    if current_hash(feature, name).await.as_ref() != Some(&approval.content_hash) {
        problems.push(format!(
            "- {}/{name} changed since it was approved at the {} gate\n  hint: restore the approved content, or run `stagegate run {}` again and approve the new version",
            feature.key, producer.id, producer.id
        ));
    }
    let stage = approval.stage.as_deref().unwrap_or(&producer.id);
    let inputs = settings
        .stages
        .get(stage)
        .map(|stage| stage.inputs.clone())
        .unwrap_or_default();
    for input in inputs {
        let Some(recorded) = store
            .latest_approval(&feature.key, &input_subject(stage, &input))
            .await?
        else {
            continue;
        };
        if current_hash(feature, &input).await.as_ref() != Some(&recorded.content_hash) {
            problems.push(format!(
                "- {}/{input} changed since {name} was approved at the {stage} gate\n  hint: run `stagegate run {stage}` again so that {name} matches it",
                feature.key
            ));
        }
    }
    Ok(problems)
}

/// The feature's spec-kit documents that exist but are not inputs of the stage (a team's own
/// `plan.md` before stagegate planned anything, a `tasks.md` before prep), named
/// `existing/NAME` so that an agent builds on them without mistaking them for its own output.
const FEATURE_DOCUMENTS: &[&str] = &[
    "plan.md",
    "research.md",
    "data-model.md",
    "quickstart.md",
    "tasks.md",
];

fn existing_artifacts(feature: &Feature, inputs: &[NamedText]) -> Vec<NamedText> {
    let root = feature.repo_root();
    FEATURE_DOCUMENTS
        .iter()
        .filter(|name| !inputs.iter().any(|input| input.name == **name))
        .filter_map(|name| {
            let bytes = read_input(&root, &feature.dir.join(name)).ok()?;
            Some(NamedText {
                name: format!("{EXISTING_PREFIX}{name}"),
                content: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
        .collect()
}

/// The manifests at the repository's root, under their own names (`go.mod`).
pub fn repository_manifests(repo_root: &Path) -> Vec<NamedText> {
    MANIFESTS
        .iter()
        .filter_map(|(name, _)| {
            let content = crate::input_file::read_context(repo_root, Path::new(name))?;
            Some(NamedText {
                name: (*name).to_owned(),
                content,
            })
        })
        .collect()
}

/// Every artifact published at a gate still has its approved content.
async fn check_all_artifacts_current(
    store: &Store,
    settings: &Settings,
    feature: &Feature,
) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    for stage in settings.stages.values() {
        for name in stage
            .required
            .iter()
            .chain(&stage.optional)
            .filter(|name| !is_worklist(name))
        {
            let Some(approval) = store
                .latest_approval(&feature.key, &artifact_subject(name))
                .await?
            else {
                continue;
            };
            if current_hash(feature, name).await.as_ref() != Some(&approval.content_hash) {
                problems.push(format!(
                    "- {}/{name} changed since it was approved at the {} gate\n  hint: restore the approved content, or run `stagegate run {}` again",
                    feature.key, stage.id, stage.id
                ));
            }
        }
    }
    Ok(problems)
}
