//! spec-kit's document templates (`.specify/templates/plan-template.md`, …), which stagegate
//! passes as inputs named `<artifact-stem>-template.md`: the `# ` title line and the `## `
//! sections in order, each with its `### ` subsections and the template's own guidance text.
//! Comments (`<!-- … -->`) and `ACTION REQUIRED` notes are left out; what comes before the
//! first `## ` heading (the template's preamble) is not kept.

use crate::markdown;

/// The placeholders spec-kit's templates use for the feature's name.
pub const NAME_PLACEHOLDERS: [&str; 3] = ["[FEATURE NAME]", "[FEATURE]", "[###-feature-name]"];

/// Bounds that keep a hostile template from blowing up the artifact.
const MAX_SECTIONS: usize = 200;
const MAX_GUIDANCE_LINES: usize = 40;
const MAX_GUIDANCE_CHARS: usize = 4_000;

/// A parsed template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// The `# ` line's text (`Implementation Plan: [FEATURE]`).
    pub title: Option<String>,
    /// The `## ` sections, in the template's order.
    pub sections: Vec<TemplateSection>,
}

/// One `## ` (or, inside one, `### `) section of a template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSection {
    /// The heading's text as written (`Technical Context`).
    pub heading: String,
    /// The guidance text under the heading, before any subsection; blank edges trimmed, runs
    /// of blank lines collapsed, an open code fence closed.
    pub guidance: String,
    /// The `### ` subsections (always empty for a subsection).
    pub subsections: Vec<TemplateSection>,
}

impl Template {
    /// The name of the template input for an artifact (`plan.md` → `plan-template.md`), `None`
    /// for an artifact that is not markdown.
    pub fn input_name(artifact: &str) -> Option<String> {
        let base = crate::speckit::feature::base_name(artifact);
        let stem = base.strip_suffix(".md")?;
        (!stem.is_empty()).then(|| format!("{stem}-template.md"))
    }

    /// Reads a template; never fails (an empty or odd text gives an empty template).
    pub fn parse(source: &str) -> Template {
        let source = strip_comments(source);
        let mut template = Template::default();
        // Where the lines go: `None` before the first `## ` heading.
        let mut section: Option<TemplateSection> = None;
        let mut subsection: Option<TemplateSection> = None;
        let mut lines: Vec<&str> = Vec::new();
        let mut fence: Option<&str> = None;
        for raw in source.lines() {
            let trimmed = raw.trim();
            if let Some(marker) = fence {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                lines.push(raw);
                continue;
            }
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fence = Some(if trimmed.starts_with("```") {
                    "```"
                } else {
                    "~~~"
                });
                lines.push(raw);
                continue;
            }
            if trimmed.contains("ACTION REQUIRED") {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            let heading = markdown::heading(trimmed).filter(|_| indent < 4);
            match heading {
                Some((1, text)) if template.title.is_none() && section.is_none() => {
                    template.title = Some(text.to_owned());
                }
                // A second title is not guidance.
                Some((1, _)) => {}
                Some((2, text)) => {
                    finish(&mut template, &mut section, &mut subsection, &mut lines);
                    if template.sections.len() >= MAX_SECTIONS {
                        break;
                    }
                    section = Some(TemplateSection {
                        heading: text.to_owned(),
                        ..TemplateSection::default()
                    });
                }
                Some((3, text)) if section.is_some() => {
                    let guidance = guidance(&lines);
                    lines.clear();
                    if let Some(done) = subsection.take() {
                        push_subsection(&mut section, done, guidance);
                    } else if let Some(open) = section.as_mut() {
                        open.guidance = guidance;
                    }
                    subsection = Some(TemplateSection {
                        heading: text.to_owned(),
                        ..TemplateSection::default()
                    });
                }
                _ if section.is_some() => lines.push(raw),
                _ => {}
            }
        }
        finish(&mut template, &mut section, &mut subsection, &mut lines);
        template
    }

    /// The `## ` headings, in order.
    pub fn headings(&self) -> Vec<&str> {
        self.sections
            .iter()
            .map(|section| section.heading.as_str())
            .collect()
    }

    /// The title line's text for a feature: the template's `# ` line with its name placeholder
    /// replaced (`Implementation Plan: Team Photo Albums`); without a placeholder, the name is
    /// added after a colon. `None` when the template has no `# ` line.
    pub fn title_for(&self, name: &str) -> Option<String> {
        let title = self.title.as_deref()?;
        let replaced = replace_name(title, name);
        Some(if replaced == title {
            format!("{}: {name}", title.trim_end_matches(':'))
        } else {
            replaced
        })
    }
}

/// `text` with spec-kit's feature-name placeholders replaced by `name`.
pub fn replace_name(text: &str, name: &str) -> String {
    NAME_PLACEHOLDERS
        .iter()
        .fold(text.to_owned(), |text, placeholder| {
            text.replace(placeholder, name)
        })
}

fn push_subsection(section: &mut Option<TemplateSection>, mut done: TemplateSection, text: String) {
    done.guidance = text;
    if let Some(open) = section.as_mut()
        && open.subsections.len() < MAX_SECTIONS
    {
        open.subsections.push(done);
    }
}

/// Closes the open section (and subsection) with the collected lines.
fn finish(
    template: &mut Template,
    section: &mut Option<TemplateSection>,
    subsection: &mut Option<TemplateSection>,
    lines: &mut Vec<&str>,
) {
    let text = guidance(lines);
    lines.clear();
    if let Some(done) = subsection.take() {
        push_subsection(section, done, text);
    } else if let Some(open) = section.as_mut() {
        open.guidance = text;
    }
    if let Some(done) = section.take() {
        template.sections.push(done);
    }
}

/// The guidance lines as one text: blank edges trimmed, blank runs collapsed, bounded, and any
/// code fence left open closed (so that it cannot swallow the headings after it).
fn guidance(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut fence: Option<&str> = None;
    let mut blank = false;
    let mut count = 0;
    for line in lines {
        let line = line.trim_end();
        let trimmed = line.trim();
        if trimmed.is_empty() && fence.is_none() {
            blank = !out.is_empty();
            continue;
        }
        if count >= MAX_GUIDANCE_LINES || out.len() + line.len() > MAX_GUIDANCE_CHARS {
            out.push_str("\n…");
            break;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        count += 1;
        match fence {
            Some(marker) if trimmed.starts_with(marker) => fence = None,
            Some(_) => {}
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => {}
        }
    }
    if let Some(marker) = fence {
        out.push('\n');
        out.push_str(marker);
    }
    out
}

/// The text without `<!-- … -->` comments (one left open runs to the end).
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
/// The shape of spec-kit's `templates/plan-template.md`.
pub(crate) const PLAN_TEMPLATE: &str = "# Implementation Plan: [FEATURE]\n\n\
    **Branch**: `[###-feature-name]` | **Date**: [DATE] | **Spec**: [link]\n\n\
    ## Summary\n\n[Extract from feature spec: primary requirement + technical approach]\n\n\
    ## Technical Context\n\n<!--\n  ACTION REQUIRED: Replace the content in this section.\n-->\n\n\
    **Language/Version**: [e.g., Python 3.11 or NEEDS CLARIFICATION]\n\n\
    ## Constitution Check\n\n*GATE: Must pass before Phase 0 research.*\n\n\
    ## Project Structure\n\n### Documentation (this feature)\n\n```text\nspecs/[###-feature]/\n\
    ├── plan.md\n```\n\n### Source Code (repository root)\n\n```text\n# [REMOVE IF UNUSED] Option 1\nsrc/\n```\n\n\
    ## Complexity Tracking\n\n> **Fill ONLY if Constitution Check has violations**\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_title_sections_and_subsections() {
        let template = Template::parse(PLAN_TEMPLATE);
        assert_eq!(
            template.title.as_deref(),
            Some("Implementation Plan: [FEATURE]")
        );
        assert_eq!(
            template.headings(),
            vec![
                "Summary",
                "Technical Context",
                "Constitution Check",
                "Project Structure",
                "Complexity Tracking"
            ]
        );
        let context = &template.sections[1];
        assert_eq!(
            context.guidance,
            "**Language/Version**: [e.g., Python 3.11 or NEEDS CLARIFICATION]"
        );
        let structure = &template.sections[3];
        assert_eq!(structure.guidance, "");
        assert_eq!(
            structure
                .subsections
                .iter()
                .map(|sub| sub.heading.as_str())
                .collect::<Vec<_>>(),
            vec![
                "Documentation (this feature)",
                "Source Code (repository root)"
            ]
        );
        // A `#` line inside a code fence is not a heading.
        assert!(
            structure.subsections[1]
                .guidance
                .contains("# [REMOVE IF UNUSED]")
        );
        assert_eq!(
            template.title_for("Albums").as_deref(),
            Some("Implementation Plan: Albums")
        );
        assert_eq!(
            Template::input_name("specs/1/plan.md").as_deref(),
            Some("plan-template.md")
        );
        assert_eq!(Template::input_name("report.json"), None);
    }

    #[test]
    fn odd_templates_never_fail() {
        assert_eq!(Template::parse(""), Template::default());
        let open = Template::parse("## A\n\n```text\n## not a heading\n<!-- never closed\n## B\n");
        assert_eq!(open.headings(), vec!["A"]);
        assert!(open.sections[0].guidance.ends_with("```"));
        let untitled = Template {
            title: Some("Plan".to_owned()),
            ..Template::default()
        };
        assert_eq!(untitled.title_for("X").as_deref(), Some("Plan: X"));
        let many = "## S\n".repeat(1_000) + &"line\n".repeat(1_000);
        let template = Template::parse(&many);
        assert_eq!(template.sections.len(), MAX_SECTIONS);
        let long = Template::parse(&format!("## S\n{}", "line\n".repeat(1_000)));
        assert!(long.sections[0].guidance.ends_with('…'));
    }
}
