//! What approving a gate would do to the feature directory: which files it creates, which it
//! replaces (and how much of them changes), which it leaves as they are. Said at the gate, before
//! anyone decides, so that nothing is replaced unseen.

use std::path::Path;

/// One staged artifact against the feature's file of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    /// Lines added and removed.
    Replace {
        added: usize,
        removed: usize,
    },
    Unchanged,
}

/// The changes approving `staged` (as `(name, path)`) would make in `feature_dir`.
pub fn preview(staged: &[(String, std::path::PathBuf)], feature_dir: &Path) -> Vec<Change> {
    staged
        .iter()
        .map(|(name, path)| {
            let after = std::fs::read(path).unwrap_or_default();
            let kind = match std::fs::read(feature_dir.join(name)) {
                Err(_) => ChangeKind::Create,
                Ok(before) if before == after => ChangeKind::Unchanged,
                Ok(before) => line_changes(&before, &after),
            };
            Change {
                name: name.clone(),
                kind,
            }
        })
        .collect()
}

fn line_changes(before: &[u8], after: &[u8]) -> ChangeKind {
    let before = String::from_utf8_lossy(before);
    let after = String::from_utf8_lossy(after);
    let diff = similar::TextDiff::from_lines(before.as_ref(), after.as_ref());
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    ChangeKind::Replace { added, removed }
}

/// The names of the changes of the kinds `keep` selects.
pub fn named(changes: &[Change], keep: impl Fn(ChangeKind) -> bool) -> Vec<String> {
    changes
        .iter()
        .filter(|change| keep(change.kind))
        .map(|change| change.name.clone())
        .collect()
}

/// `approval creates plan.md; replaces research.md (+12 −40 lines, the current file is kept)`,
/// or `None` when there is nothing to say.
pub fn describe(changes: &[Change]) -> Option<String> {
    let created: Vec<&str> = changes
        .iter()
        .filter(|change| change.kind == ChangeKind::Create)
        .map(|change| change.name.as_str())
        .collect();
    let replaced: Vec<String> = changes
        .iter()
        .filter_map(|change| match change.kind {
            ChangeKind::Replace { added, removed } => {
                Some(format!("{} (+{added} −{removed} lines)", change.name))
            }
            _ => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !created.is_empty() {
        parts.push(format!("creates {}", created.join(", ")));
    }
    if !replaced.is_empty() {
        parts.push(format!(
            "REPLACES {} (the current files are kept; `stagegate restore RUN` brings them back)",
            replaced.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("approval {}", parts.join("; ")))
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    #[test]
    fn says_what_is_created_and_what_is_replaced_with_its_size() {
        let directory = tempfile::tempdir().unwrap();
        let staged = directory.path().join("staged");
        let feature = directory.path().join("feature");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::create_dir_all(&feature).unwrap();
        for (name, content) in [("plan.md", "a\nb\n"), ("new.md", "x\n"), ("same.md", "s\n")] {
            std::fs::write(staged.join(name), content).unwrap();
        }
        std::fs::write(feature.join("plan.md"), "a\nc\nd\n").unwrap();
        std::fs::write(feature.join("same.md"), "s\n").unwrap();
        let listing: Vec<_> = ["new.md", "plan.md", "same.md"]
            .iter()
            .map(|name| (name.to_string(), staged.join(name)))
            .collect();
        let changes = preview(&listing, &feature);
        assert_eq!(changes[0].kind, ChangeKind::Create);
        assert_eq!(
            changes[1].kind,
            ChangeKind::Replace {
                added: 1,
                removed: 2
            }
        );
        assert_eq!(changes[2].kind, ChangeKind::Unchanged);
        let text = describe(&changes).unwrap();
        assert!(text.contains("creates new.md"), "{text}");
        assert!(text.contains("REPLACES plan.md (+1 −2 lines"), "{text}");
        assert!(!text.contains("same.md"));
    }
}
