//! A synthesized document laid out along the project's spec-kit template of its artifact
//! (`.specify/templates/plan-template.md`, passed as the input `plan-template.md`).
//!
//! The template's `## ` headings come first, in its order and under its words: a heading the
//! document has a section for (the same words, one containing the other, or for plan.md the
//! same plan-template keyword) gets that section's content; one it has not gets a short derived
//! section (the template's guidance kept as open items, else a note to fill it in), never
//! dropped. `### ` subsections inside a known section are followed the same way. The
//! document's own sections the template lacks come after, under their own headings, so nothing
//! is lost. The title follows the template's `# ` line with the feature's name in place of its
//! placeholder.

use crate::speckit::Template;
use crate::speckit::template::{TemplateSection, replace_name};

/// For plan.md: words that name the same section whatever else its heading says
/// ("Constitution Gates" is the Constitution Check), as the plan reader matches them.
const PLAN_KEYWORDS: &[&str] = &[
    "summary",
    "technical context",
    "constitution",
    "project structure",
    "complexity",
    "architecture",
    "traceability",
    "phases",
    "risk",
    "open question",
    "assumption",
    "example",
    "source code",
    "documentation",
    "sources",
];

/// The note of a section the inputs gave nothing for.
const FILL_IN: &str = "No content derived from the inputs for this section; fill it in.";

/// One heading of a document and the text up to the next heading of its level.
struct Part<'a> {
    /// The heading line as written, with its line end.
    line: &'a str,
    /// The heading's text.
    heading: &'a str,
    body: &'a str,
}

/// `document` laid out along `template` (see the module's documentation). `artifact` is the
/// artifact's base name, `name` the feature's.
pub(crate) fn follow(document: &str, template: &Template, artifact: &str, name: &str) -> String {
    let keywords: &[&str] = if artifact.eq_ignore_ascii_case("plan.md") {
        PLAN_KEYWORDS
    } else {
        &[]
    };
    let (head, parts) = split(document, 2);
    let mut out = retitle(head, template, name);
    let headings: Vec<&str> = template.headings();
    let matched = match_headings(&headings, &parts, keywords);
    for (section, found) in template.sections.iter().zip(&matched) {
        match found {
            Some(index) => {
                let part = &parts[*index];
                heading_line(&mut out, 2, &section.heading);
                follow_subsections(&mut out, part.body, section, keywords, name);
            }
            None => unknown(&mut out, section, name),
        }
    }
    for (index, part) in parts.iter().enumerate() {
        if !matched.contains(&Some(index)) {
            separate(&mut out);
            out.push_str(part.line);
            out.push_str(part.body);
        }
    }
    out
}

/// A known section's body, its `### ` subsections following the template's.
fn follow_subsections(
    out: &mut String,
    body: &str,
    section: &TemplateSection,
    keywords: &[&str],
    name: &str,
) {
    if section.subsections.is_empty() {
        out.push_str(body);
        return;
    }
    let (intro, parts) = split(body, 3);
    out.push_str(intro);
    let headings: Vec<&str> = section
        .subsections
        .iter()
        .map(|sub| sub.heading.as_str())
        .collect();
    let matched = match_headings(&headings, &parts, keywords);
    for (sub, found) in section.subsections.iter().zip(&matched) {
        heading_line(out, 3, &sub.heading);
        match found {
            Some(index) => out.push_str(parts[*index].body),
            None => out.push_str(&derived(&sub.guidance, name)),
        }
    }
    for (index, part) in parts.iter().enumerate() {
        if !matched.contains(&Some(index)) {
            separate(out);
            out.push_str(part.line);
            out.push_str(part.body);
        }
    }
}

/// A template section the document has nothing for: the template's guidance as open items
/// (subsections too), else a note to fill it in.
fn unknown(out: &mut String, section: &TemplateSection, name: &str) {
    heading_line(out, 2, &section.heading);
    if !section.guidance.is_empty() || section.subsections.is_empty() {
        out.push_str(&derived(&section.guidance, name));
    } else {
        out.push('\n');
    }
    for sub in &section.subsections {
        heading_line(out, 3, &sub.heading);
        out.push_str(&derived(&sub.guidance, name));
    }
}

/// The body of a section derived from the template alone.
fn derived(guidance: &str, name: &str) -> String {
    if guidance.trim().is_empty() {
        format!("\n{FILL_IN}\n\n")
    } else {
        format!(
            "\nNo content derived from the inputs for this section; the template's guidance is kept below, its placeholders and `NEEDS CLARIFICATION` marks open items to fill in.\n\n{}\n\n",
            replace_name(guidance, name)
        )
    }
}

/// `#`s, the heading and its line end, after a blank line.
fn heading_line(out: &mut String, level: usize, heading: &str) {
    separate(out);
    for _ in 0..level {
        out.push('#');
    }
    out.push(' ');
    out.push_str(heading);
    out.push('\n');
}

/// Ends `out` with a blank line (unless it is empty).
fn separate(out: &mut String) {
    if out.is_empty() || out.ends_with("\n\n") {
        return;
    }
    out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
}

/// The document's head with its `# ` line replaced by the template's title for the feature.
fn retitle(head: &str, template: &Template, name: &str) -> String {
    let Some(title) = template.title_for(name) else {
        return head.to_owned();
    };
    let line = format!("# {title}\n");
    let mut fence: Option<&str> = None;
    let mut offset = 0;
    for raw in head.split_inclusive('\n') {
        let trimmed = raw.trim();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
        } else if is_heading(raw, 1).is_some() {
            return format!("{}{line}{}", &head[..offset], &head[offset + raw.len()..]);
        }
        offset += raw.len();
    }
    format!("{line}\n{head}")
}

/// The heading's text when `raw` is a heading of exactly `level`.
fn is_heading(raw: &str, level: u8) -> Option<&str> {
    let indent = raw.len() - raw.trim_start().len();
    crate::markdown::heading(raw.trim())
        .filter(|(found, _)| *found == level && indent < 4)
        .map(|(_, text)| text)
}

/// Splits a text at its headings of exactly `level` outside code fences: the text before the
/// first one, then each heading with the text up to the next.
fn split(text: &str, level: u8) -> (&str, Vec<Part<'_>>) {
    let mut parts: Vec<Part<'_>> = Vec::new();
    let mut head_end = text.len();
    let mut fence: Option<&str> = None;
    let mut offset = 0;
    // The start of the open part's body.
    let mut body_start = 0;
    for raw in text.split_inclusive('\n') {
        let trimmed = raw.trim();
        let start = offset;
        offset += raw.len();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        let Some(heading) = is_heading(raw, level) else {
            continue;
        };
        match parts.last_mut() {
            Some(last) => last.body = &text[body_start..start],
            None => head_end = start,
        }
        parts.push(Part {
            line: raw,
            heading,
            body: "",
        });
        body_start = offset;
    }
    if let Some(last) = parts.last_mut() {
        last.body = &text[body_start..];
    }
    (&text[..head_end], parts)
}

/// Words of a heading, lowercase, for comparing: `Source Code (repository root)` →
/// ` source code repository root `.
fn words(heading: &str) -> String {
    let lower = crate::markdown::plain(heading).to_lowercase();
    let mut out = String::from(" ");
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if !word.is_empty() {
            out.push_str(word);
            out.push(' ');
        }
    }
    out
}

/// One way of telling that two headings' words name the same section.
type Pass<'a> = &'a dyn Fn(&str, &str) -> bool;

/// For each template heading, the document part it names: first the same words, then one
/// heading's words within the other's, then (for plan.md) a shared keyword. Each part serves
/// one heading at most.
fn match_headings(template: &[&str], parts: &[Part<'_>], keywords: &[&str]) -> Vec<Option<usize>> {
    let ours: Vec<String> = parts.iter().map(|part| words(part.heading)).collect();
    let theirs: Vec<String> = template.iter().map(|heading| words(heading)).collect();
    let mut matched: Vec<Option<usize>> = vec![None; template.len()];
    let mut used = vec![false; parts.len()];
    let passes: [Pass<'_>; 3] = [
        &|a, b| a == b,
        &|a, b| a.trim() != "" && b.trim() != "" && (a.contains(b) || b.contains(a)),
        &|a, b| {
            keywords.iter().any(|keyword| {
                let keyword = format!(" {keyword}");
                a.contains(&keyword) && b.contains(&keyword)
            })
        },
    ];
    for pass in passes {
        for (slot, heading) in matched.iter_mut().zip(&theirs) {
            if slot.is_some() {
                continue;
            }
            let found = ours
                .iter()
                .enumerate()
                .find(|(index, candidate)| !used[*index] && pass(heading, candidate))
                .map(|(index, _)| index);
            if let Some(index) = found {
                used[index] = true;
                *slot = Some(index);
            }
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = "# Plan: X\n\n**Branch**: b\n\n## Summary\n\nS.\n\n## Extra\n\nE.\n\n\
        ## Structure\n\n### Docs\n\nD.\n\n### Code\n\n```text\n## not a heading\n```\n\n## Sources\n\nQ.\n";

    #[test]
    fn splits_outside_code_fences() {
        let (head, parts) = split(DOCUMENT, 2);
        assert_eq!(head, "# Plan: X\n\n**Branch**: b\n\n");
        let headings: Vec<&str> = parts.iter().map(|part| part.heading).collect();
        assert_eq!(headings, vec!["Summary", "Extra", "Structure", "Sources"]);
        assert_eq!(parts[0].body, "\nS.\n\n");
        let rebuilt: String = std::iter::once(head.to_owned())
            .chain(
                parts
                    .iter()
                    .map(|part| format!("{}{}", part.line, part.body)),
            )
            .collect();
        assert_eq!(rebuilt, DOCUMENT);
    }

    #[test]
    fn follows_the_template_order_and_keeps_everything() {
        let template = Template::parse(
            "# Report: [FEATURE NAME]\n\n## Overview\n\n[Say what [FEATURE] is]\n\n## Structure\n\n\
             ### Code\n\n### Tests\n\n## Executive Summary\n",
        );
        let out = follow(DOCUMENT, &template, "notes.md", "Albums");
        assert_eq!(
            out,
            "# Report: Albums\n\n**Branch**: b\n\n\
             ## Overview\n\nNo content derived from the inputs for this section; the template's guidance is kept below, its placeholders and `NEEDS CLARIFICATION` marks open items to fill in.\n\n[Say what Albums is]\n\n\
             ## Structure\n\n### Code\n\n```text\n## not a heading\n```\n\n\
             ### Tests\n\nNo content derived from the inputs for this section; fill it in.\n\n\
             ### Docs\n\nD.\n\n\
             ## Executive Summary\n\nS.\n\n\
             ## Extra\n\nE.\n\n## Sources\n\nQ.\n"
        );
        // An empty template keeps the document (the title gets nothing to follow).
        assert_eq!(
            follow(DOCUMENT, &Template::default(), "x.md", "A"),
            DOCUMENT
        );
    }
}
