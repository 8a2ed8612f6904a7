//! `core-implementer`: the modules and files of the implementation — from plan.md's Project
//! Structure when there is one, else from the paths tasks.md names, else derived from the
//! stories and key entities — with the data structures and algorithms each needs and why.

use std::collections::BTreeSet;

use crate::analysts::architecture;
use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report};
use crate::markdown;
use crate::speckit::Feature;
use crate::text;

/// Where a layout came from, for the reader.
pub(crate) enum LayoutOrigin {
    Plan,
    Tasks,
    Derived,
}

/// The source layout: paths (directories end with `/`) and where they came from.
pub(crate) fn layout(feature: &Feature) -> (Vec<String>, LayoutOrigin) {
    if let Some(plan) = &feature.plan {
        let paths: Vec<String> = plan
            .project_structure
            .iter()
            .filter(|path| !is_feature_document(path))
            .cloned()
            .collect();
        if !paths.is_empty() {
            return (paths, LayoutOrigin::Plan);
        }
    }
    if let Some(tasks) = &feature.tasks {
        let paths: BTreeSet<String> = tasks
            .tasks
            .iter()
            .flat_map(|task| task.paths.iter().cloned())
            .filter(|path| path.contains('/') && !path.starts_with("specs/"))
            .collect();
        if !paths.is_empty() {
            return (paths.into_iter().collect(), LayoutOrigin::Tasks);
        }
    }
    let mut paths = vec!["src/".to_owned(), "src/models/".to_owned()];
    for entity in &feature.spec.entities {
        paths.push(format!("src/models/{}", snake(&entity.name)));
    }
    paths.push("src/services/".to_owned());
    for story in &feature.spec.stories {
        paths.push(format!("src/services/{}", snake(&short_name(&story.title))));
    }
    paths.extend(
        [
            "tests/",
            "tests/contract/",
            "tests/integration/",
            "tests/unit/",
        ]
        .iter()
        .map(|path| (*path).to_owned()),
    );
    (paths, LayoutOrigin::Derived)
}

/// A path of the plan's Documentation tree (the feature's own spec-kit documents), not of the
/// source: `specs/…`, or one of the documents' names however the tree's root was written
/// (spec-kit's template writes `specs/[###-feature]/`, whose `#` a tree reader takes for a
/// comment).
fn is_feature_document(path: &str) -> bool {
    const DOCUMENTS: [&str; 7] = [
        "spec.md",
        "plan.md",
        "research.md",
        "data-model.md",
        "quickstart.md",
        "tasks.md",
        "contracts/",
    ];
    path.starts_with("specs/")
        || DOCUMENTS
            .iter()
            .any(|document| path == *document || path.ends_with(&format!("/{document}")))
}

/// The first three key words of a title (`Create an album and upload photos` →
/// `create album upload`).
pub(crate) fn short_name(title: &str) -> String {
    text::words(title)
        .filter(|word| word.len() > 2 && !["and", "the", "for", "with"].contains(&word.as_str()))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Share Link` → `share_link`.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::new();
    for word in text::words(name) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&word.replace('-', "_"));
    }
    if out.is_empty() {
        "item".to_owned()
    } else {
        out
    }
}

/// Renders paths as an indented tree (four spaces a level), the shape plan.md's Project
/// Structure uses and [`crate::speckit::plan`] reads back.
pub(crate) fn tree(paths: &[String]) -> String {
    let mut lines = Vec::new();
    let mut printed: BTreeSet<String> = BTreeSet::new();
    for path in paths {
        let parts: Vec<&str> = path.split_inclusive('/').collect();
        let mut prefix = String::new();
        for (depth, part) in parts.iter().enumerate() {
            prefix.push_str(part);
            if printed.insert(prefix.clone()) {
                lines.push(format!("{}{}", "    ".repeat(depth), part));
            }
        }
    }
    lines.join("\n")
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Core Implementation Plan");
    let (paths, origin) = layout(feature);
    out.push_str("## Modules and Files\n\n");
    out.push_str(match origin {
        LayoutOrigin::Plan => "From plan.md's Project Structure.\n\n",
        LayoutOrigin::Tasks => "From the file paths named in tasks.md (plan.md has no Project Structure).\n\n",
        LayoutOrigin::Derived => "Derived from the stories and key entities (neither plan.md's Project Structure nor tasks.md paths were available).\n\n",
    });
    out.push_str(&format!("```text\n{}\n```\n\n", tree(&paths)));
    let rows: Vec<Vec<String>> = paths
        .iter()
        .filter(|path| !path.ends_with('/'))
        .take(200)
        .map(|path| {
            let lower = path.to_lowercase();
            let entities: Vec<String> = spec
                .entities
                .iter()
                .filter(|entity| {
                    let key = text::name_key(&entity.name);
                    text::name_key(&lower).contains(&key)
                })
                .map(|entity| entity.name.clone())
                .collect();
            let purpose = if lower.contains("test") {
                "tests"
            } else if lower.contains("service") {
                "business rules"
            } else if lower.contains("model") || !entities.is_empty() {
                "data structures"
            } else if lower.contains("page")
                || lower.contains("component")
                || lower.contains("frontend")
            {
                "user interface"
            } else {
                "support"
            };
            vec![path.clone(), purpose.to_owned(), entities.join(", ")]
        })
        .collect();
    if !rows.is_empty() {
        markdown::table(&mut out, &["File", "Purpose", "Entities"], &rows);
        out.push('\n');
    }

    out.push_str("## Data Structures\n\n");
    let models = architecture::entity_models(spec);
    if models.is_empty() {
        out.push_str("No key entities in the spec; define the records during design.\n\n");
    }
    for model in &models {
        out.push_str(&format!(
            "- `{}` {{ {} }} — {}{}\n",
            model.name.replace(' ', ""),
            model.fields_or_question(),
            if model.relationships.is_empty() {
                "no relationships stated".to_owned()
            } else {
                model.relationships.join("; ")
            },
            if model.requirements.is_empty() {
                String::new()
            } else {
                format!(" (rules from {})", model.requirements.join(", "))
            }
        ));
    }
    if !models.is_empty() {
        out.push('\n');
    }

    out.push_str("## Algorithms and Rules\n\n");
    let rules: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| text::has_number(&requirement.text))
        .map(|requirement| {
            format!(
                "{}: enforce \"{}\" in the service layer with a unit test at, below and above each limit",
                requirement.id,
                text::truncate(&requirement.text, 140)
            )
        })
        .collect();
    out.push_str(&report::bullets(
        &rules,
        "No numeric rules in the requirements; the services mostly store and retrieve records.",
    ));
    out.push_str("## Rationale\n\n- One module per entity keeps each requirement's rules next to its data.\n- Services per story let stories be built and tested independently (spec-kit's independent-test principle).\n- Limits come from configuration, not constants, so the spec's numbers can change without code changes.\n\n");
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    if matches!(origin, LayoutOrigin::Derived) {
        confidence.subtract(
            0.10,
            "a layout derived without plan.md's Project Structure".to_owned(),
        );
    }
    out.push_str(&confidence.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_round_trip_through_the_plan_reader() {
        let paths = vec![
            "backend/src/models/album.ts".to_owned(),
            "backend/src/services/".to_owned(),
            "frontend/src/".to_owned(),
        ];
        let drawn = tree(&paths);
        let read = crate::speckit::plan::tree_paths(&drawn);
        assert!(
            read.contains(&"backend/src/models/album.ts".to_owned()),
            "{read:?}"
        );
        assert!(read.contains(&"frontend/src/".to_owned()), "{read:?}");
        assert_eq!(snake("Share Link"), "share_link");
    }
}
