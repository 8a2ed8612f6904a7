//! `data-model.md`: the key entities with fields, relationships, the rules the requirements
//! put on them and their state changes.

use crate::analysts::synthesis::sources;
use crate::analysts::{Call, architecture};
use crate::text;

/// Verbs that mean an entity changes state.
const STATE_VERBS: &[&str] = &[
    "revoke", "expire", "delete", "archive", "publish", "share", "approve",
];

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Data Model: {}\n\n", feature.name);
    let models = architecture::entity_models(spec);
    if models.is_empty() {
        out.push_str("The spec names no key entities; add a `### Key Entities` section to derive the model from.\n\n");
    }
    for model in &models {
        out.push_str(&format!(
            "## {}\n\n{} _(spec.md:{})_\n\n",
            model.name, model.description, model.line
        ));
        out.push_str("**Fields**:\n\n");
        if model.fields.is_empty() {
            out.push_str(&format!("- {}\n", model.fields_or_question()));
        }
        for field in &model.fields {
            out.push_str(&format!("- `{field}`\n"));
        }
        out.push_str("\n**Relationships**: ");
        out.push_str(&if model.relationships.is_empty() {
            "none stated".to_owned()
        } else {
            model.relationships.join("; ")
        });
        out.push_str("\n\n**Validation rules**:\n\n");
        let rules: Vec<String> = model
            .requirements
            .iter()
            .filter_map(|id| spec.requirement(id))
            .map(|requirement| {
                format!(
                    "- {}: {}",
                    requirement.id,
                    text::truncate(&requirement.text, 160)
                )
            })
            .collect();
        if rules.is_empty() {
            out.push_str("- none stated in the requirements\n");
        } else {
            out.push_str(&rules.join("\n"));
            out.push('\n');
        }
        let lower = format!(
            "{} {}",
            model.description,
            model
                .requirements
                .iter()
                .filter_map(|id| spec.requirement(id))
                .map(|requirement| requirement.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )
        .to_lowercase();
        let states: Vec<&str> = STATE_VERBS
            .iter()
            .copied()
            .filter(|verb| lower.contains(verb))
            .collect();
        if !states.is_empty() {
            out.push_str(&format!(
                "\n**State transitions**: active → {}\n",
                states.join(" / ")
            ));
        }
        out.push('\n');
    }
    out.push_str(&sources(call));
    out
}
