//! spec-kit checklists (`checklists/*.md`): `- [ ] CHK001 Is … specified? [Spec §FR-001]`.

use crate::markdown::{self, BlockKind};
use crate::text;

/// A parsed checklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checklist {
    pub items: Vec<ChecklistItem>,
    pub notes: Vec<String>,
}

/// One `CHK###` item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChecklistItem {
    pub id: String,
    pub done: bool,
    pub text: String,
    /// The heading it sits under.
    pub category: String,
    /// `FR-###` / `SC-###` ids it refers to.
    pub references: Vec<String>,
    pub line: usize,
}

impl Checklist {
    /// Reads a checklist; items without a `CHK` id are ignored.
    pub fn parse(source: &str) -> Checklist {
        let mut checklist = Checklist::default();
        let mut category = String::new();
        for block in markdown::parse(source).blocks {
            match block.kind {
                BlockKind::Heading { .. } => category = markdown::plain(&block.text),
                BlockKind::Item { checkbox } => {
                    let plain = markdown::plain(&block.text);
                    let Some(id) = text::leading_id(&plain, "CHK") else {
                        continue;
                    };
                    let references = text::requirement_ids(&plain);
                    checklist.items.push(ChecklistItem {
                        text: text::after_leading_id(&plain, &id),
                        id,
                        done: checkbox.unwrap_or(false),
                        category: category.clone(),
                        references,
                        line: block.line,
                    });
                }
                _ => {}
            }
        }
        if checklist.items.is_empty() {
            checklist
                .notes
                .push("no checklist items (`- [ ] CHK001 …`) were found".to_owned());
        }
        checklist
    }

    /// Items not yet checked.
    pub fn open_items(&self) -> impl Iterator<Item = &ChecklistItem> {
        self.items.iter().filter(|item| !item.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_items_with_references() {
        let checklist = Checklist::parse(
            "# Requirements Checklist\n\n## Completeness\n\n- [x] CHK001 Are upload limits \
             specified? [Spec §FR-002]\r\n- [ ] CHK002 Is the channel defined? [Gap, FR-008]\n",
        );
        assert_eq!(checklist.items.len(), 2);
        assert!(checklist.items[0].done);
        assert_eq!(checklist.items[0].category, "Completeness");
        assert_eq!(checklist.items[1].references, vec!["FR-008"]);
        assert_eq!(checklist.open_items().count(), 1);
    }
}
