//! A change between two versions of a text as rows of a table (unified, with both line
//! numbers and three lines of context), for the templates to render.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// One row of a diff: a line, or the gap between two hunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    /// `equal`, `delete`, `insert` or `gap`.
    pub kind: &'static str,
    /// 1-based line numbers in the old and the new version.
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

/// The rows of the change from `before` to `after`; empty when they are the same.
pub fn rows(before: &str, after: &str) -> Vec<DiffRow> {
    let diff = TextDiff::from_lines(before, after);
    let mut rows = Vec::new();
    for (index, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if index > 0 {
            rows.push(DiffRow {
                kind: "gap",
                old: None,
                new: None,
                text: "⋯".to_owned(),
            });
        }
        for operation in group {
            for change in diff.iter_changes(operation) {
                let kind = match change.tag() {
                    ChangeTag::Equal => "equal",
                    ChangeTag::Delete => "delete",
                    ChangeTag::Insert => "insert",
                };
                rows.push(DiffRow {
                    kind,
                    old: change.old_index().map(|line| line + 1),
                    new: change.new_index().map(|line| line + 1),
                    text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    rows
}

/// The rows of a unified diff as text (a recorded modification's), marked by their first
/// character.
pub fn unified_rows(diff: &str) -> Vec<DiffRow> {
    diff.lines()
        .map(|line| DiffRow {
            kind: if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@") {
                "gap"
            } else if line.starts_with('+') {
                "insert"
            } else if line.starts_with('-') {
                "delete"
            } else {
                "equal"
            },
            old: None,
            new: None,
            text: line.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rows;

    #[test]
    fn rows_number_both_sides_and_mark_the_change() {
        let before = "a\nb\nc\n";
        let after = "a\nB\nc\nd\n";
        let rows = rows(before, after);
        let kinds: Vec<(&str, Option<usize>, Option<usize>, &str)> = rows
            .iter()
            .map(|row| (row.kind, row.old, row.new, row.text.as_str()))
            .collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert_eq!(kinds[0], ("equal", Some(1), Some(1), "a"));
        assert_eq!(kinds[1], ("delete", Some(2), None, "b"));
        assert_eq!(kinds[2], ("insert", None, Some(2), "B"));
        assert_eq!(kinds[4], ("insert", None, Some(4), "d"));
        assert!(super::rows("same\n", "same\n").is_empty());
    }
}
