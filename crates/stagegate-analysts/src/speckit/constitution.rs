//! The project constitution (`.specify/memory/constitution.md`): its principles and the MUST
//! statements each one makes, which the plan has to honour.

use crate::markdown::{self, BlockKind};

/// A parsed constitution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constitution {
    pub principles: Vec<Principle>,
    pub notes: Vec<String>,
}

/// One principle (`### I. Library-First`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principle {
    pub name: String,
    pub text: String,
    /// Sentences holding `MUST` (or `MUST NOT`).
    pub musts: Vec<String>,
    pub line: usize,
}

impl Constitution {
    /// Reads a constitution. Principles are the level-3 headings (or the level-2 ones when there
    /// are no level-3 headings) outside governance and amendment sections.
    pub fn parse(source: &str) -> Constitution {
        let mut constitution = Constitution::default();
        let document = markdown::parse(source);
        let has_level_three = document
            .blocks
            .iter()
            .any(|block| block.kind == BlockKind::Heading { level: 3 });
        let principle_level = if has_level_three { 3 } else { 2 };
        let mut current: Option<Principle> = None;
        for block in &document.blocks {
            match block.kind {
                BlockKind::Heading { level } if level <= principle_level => {
                    if let Some(done) = current.take() {
                        constitution.principles.push(done);
                    }
                    let name = markdown::plain(&block.text);
                    let lower = name.to_lowercase();
                    let excluded = ["governance", "amendment", "version", "constitution"]
                        .iter()
                        .any(|word| lower.contains(word));
                    if level == principle_level && !excluded {
                        current = Some(Principle {
                            name: clean_name(&name),
                            line: block.line,
                            ..Principle::default()
                        });
                    }
                }
                BlockKind::Code => {}
                _ => {
                    if let Some(principle) = current.as_mut() {
                        let plain = markdown::plain(&block.text);
                        if !principle.text.is_empty() {
                            principle.text.push(' ');
                        }
                        principle.text.push_str(&plain);
                    }
                }
            }
        }
        if let Some(done) = current.take() {
            constitution.principles.push(done);
        }
        for principle in &mut constitution.principles {
            principle.musts = principle
                .text
                .split(['.', ';'])
                .map(str::trim)
                .filter(|sentence| sentence.contains("MUST"))
                .map(str::to_owned)
                .collect();
        }
        if constitution.principles.is_empty() {
            constitution
                .notes
                .push("the constitution names no principles".to_owned());
        }
        constitution
    }

    /// The first unfilled placeholder of spec-kit's constitution template
    /// (`[PRINCIPLE_1_NAME]`) with its line: such a constitution states no principle yet.
    pub fn placeholder(&self) -> Option<(&str, usize)> {
        self.principles
            .iter()
            .find(|principle| is_placeholder(&principle.name))
            .map(|principle| (principle.name.as_str(), principle.line))
    }
}

/// `[PRINCIPLE_1_NAME]`, `[SECTION_2_NAME]`: an all-capitals bracketed template token.
fn is_placeholder(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

/// `I. Library-First` → `Library-First`; `[PRINCIPLE_1_NAME]` stays as it is.
fn clean_name(name: &str) -> String {
    let trimmed = name.trim();
    if let Some((number, rest)) = trimmed.split_once(". ") {
        let is_number = !number.is_empty()
            && number
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 'I' | 'V' | 'X' | 'L'));
        if is_number {
            return rest.trim().to_owned();
        }
    }
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principles_and_their_musts() {
        let constitution = Constitution::parse(
            "# Photo Constitution\n\n## Core Principles\n\n### I. Test-First\n\nTests MUST be \
             written first. Red, green, refactor.\n\n### II. Simplicity\n\nStart simple; YAGNI.\n\n\
             ## Governance\n\nAmendments need a review.\n",
        );
        let names: Vec<_> = constitution
            .principles
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, vec!["Test-First", "Simplicity"]);
        assert_eq!(
            constitution.principles[0].musts,
            vec!["Tests MUST be written first"]
        );
        assert!(constitution.principles[1].musts.is_empty());
        assert!(Constitution::parse("").notes[0].contains("no principles"));
        assert_eq!(constitution.placeholder(), None);
    }

    #[test]
    fn the_unfilled_template_is_a_placeholder() {
        let constitution = Constitution::parse(
            "# [PROJECT_NAME] Constitution\n\n## Core Principles\n\n### [PRINCIPLE_1_NAME]\n\n[PRINCIPLE_1_DESCRIPTION]\n",
        );
        assert_eq!(constitution.placeholder(), Some(("[PRINCIPLE_1_NAME]", 5)));
    }
}
