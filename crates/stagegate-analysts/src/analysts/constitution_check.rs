//! The plan's Constitution Check, honestly: a placeholder constitution is reported as one, a
//! principle the plan's stated technical context contradicts is a FAIL (see
//! [`constitution_rules`]), and every other
//! principle is listed for a person to check — the built-in analysts cannot prove compliance,
//! so they never write PASS.

use crate::analysts::constitution_rules;
use crate::analysts::technical_context::ContextLine;
use crate::speckit::Feature;

/// One row: the principle (with its line), what to check, the status.
pub(crate) struct CheckRow {
    pub(crate) principle: String,
    pub(crate) how: String,
    pub(crate) status: &'static str,
}

pub(crate) enum ConstitutionCheck {
    /// No constitution among the inputs.
    Missing,
    /// spec-kit's unfilled template: the placeholder and its line.
    Placeholder {
        token: String,
        line: usize,
    },
    Principles(Vec<CheckRow>),
}

impl ConstitutionCheck {
    pub(crate) fn of(feature: &Feature, context: &[ContextLine]) -> ConstitutionCheck {
        let Some(constitution) = &feature.constitution else {
            return ConstitutionCheck::Missing;
        };
        if let Some((token, line)) = constitution.placeholder() {
            return ConstitutionCheck::Placeholder {
                token: token.to_owned(),
                line,
            };
        }
        let facts: Vec<&ContextLine> = context.iter().filter(|line| line.known()).collect();
        let rows = constitution
            .principles
            .iter()
            .map(|principle| {
                let conflict = constitution_rules::contradiction(principle, &facts);
                let label = format!("{} (constitution.md:{})", principle.name, principle.line);
                match conflict {
                    Some(conflict) => CheckRow {
                        principle: label,
                        how: conflict,
                        status: "FAIL",
                    },
                    None => CheckRow {
                        principle: label,
                        how: match principle.musts.first() {
                            Some(must) => format!("check the design against: {must}"),
                            None => "check the design against the principle's text".to_owned(),
                        },
                        status: "TO CHECK",
                    },
                }
            })
            .collect();
        ConstitutionCheck::Principles(rows)
    }

    /// The failures, for QA.
    pub(crate) fn failures(&self) -> Vec<String> {
        match self {
            ConstitutionCheck::Principles(rows) => rows
                .iter()
                .filter(|row| row.status == "FAIL")
                .map(|row| format!("{}: {}", row.principle, row.how))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The section's body in markdown.
    pub(crate) fn render(&self) -> String {
        match self {
            ConstitutionCheck::Missing => "No constitution was among the inputs (`.specify/memory/constitution.md`): NEEDS CLARIFICATION — write one with `/speckit.constitution`; nothing was checked.\n\n".to_owned(),
            ConstitutionCheck::Placeholder { token, line } => format!(
                "The constitution is spec-kit's unfilled template (`{token}` at constitution.md:{line}): it states no principle, so nothing was checked. NEEDS CLARIFICATION — fill it with `/speckit.constitution`.\n\n"
            ),
            ConstitutionCheck::Principles(rows) => {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|row| vec![row.principle.clone(), row.how.clone(), row.status.to_owned()])
                    .collect();
                let mut out = String::new();
                crate::markdown::table(&mut out, &["Principle", "Check", "Status"], &rows);
                out.push('\n');
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysts::technical_context::technical_context;
    use stagegate_engine::prompt::NamedText;

    fn feature(constitution: &str, plan: &str) -> Feature {
        let files = [
            NamedText {
                name: "spec.md".to_owned(),
                content: "# Feature Specification: X\n".to_owned(),
            },
            NamedText {
                name: "constitution.md".to_owned(),
                content: constitution.to_owned(),
            },
            NamedText {
                name: "existing/plan.md".to_owned(),
                content: plan.to_owned(),
            },
        ];
        Feature::from_files(&files, &[])
    }

    #[test]
    fn a_server_in_a_client_only_project_fails() {
        let feature = feature(
            "# C\n\n## Core Principles\n\n### I. Client Only\n\nThe app is client-only: no server-side logic.\n",
            "## Technical Context\n\n**Target Platform**: Linux server\n",
        );
        let check = ConstitutionCheck::of(&feature, &technical_context(&feature));
        assert_eq!(check.failures().len(), 1, "{}", check.render());
        assert!(check.render().contains("FAIL"));
    }

    #[test]
    fn a_placeholder_constitution_is_reported_and_nothing_passes() {
        let feature = feature(
            "# [PROJECT_NAME] Constitution\n\n## Core Principles\n\n### [PRINCIPLE_1_NAME]\n\n[PRINCIPLE_1_DESCRIPTION]\n",
            "",
        );
        let check = ConstitutionCheck::of(&feature, &technical_context(&feature));
        let text = check.render();
        assert!(text.contains("unfilled template"), "{text}");
        assert!(!text.contains("PASS"));
    }
}
