//! A staged artifact as the review pages show it: rendered (markdown) or as source, numbered
//! lines to comment on, its diffs against the published version and the previous round, and
//! what the round did about the comments on the round before.

use serde::Serialize;
use stagegate_store::LineComment;

use super::diff_html::{self, DiffRow};
use crate::line_comments::{self, Answer};

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactView {
    pub name: String,
    /// `3.2 KiB, 120 lines`.
    pub size: String,
    /// Markdown is shown rendered; anything else (HTML, JSON) only as source.
    pub markdown: bool,
    pub source: String,
    pub lines: Vec<String>,
    /// What approval does with it: creates it, replaces the published one, or changes nothing.
    pub change: String,
    pub diffs: Vec<DiffView>,
    pub answers: Vec<CommentAnswer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    pub title: String,
    pub rows: Vec<DiffRow>,
}

/// A comment sent on the previous round, and what the current round did to its lines.
#[derive(Debug, Clone, Serialize)]
pub struct CommentAnswer {
    pub location: String,
    pub quoted: String,
    pub comment: String,
    pub changed: bool,
    pub answer: &'static str,
}

/// The versions of one artifact a review compares.
pub struct Versions<'a> {
    pub name: &'a str,
    pub staged: &'a str,
    /// The feature directory's file, where there is one.
    pub published: Option<&'a str>,
    /// The previous round's version, after a rework.
    pub previous_round: Option<(u32, &'a str)>,
    /// Where the published file lives, for the diff's title.
    pub published_path: &'a str,
}

pub fn view(versions: &Versions<'_>, comments_on_previous: &[&LineComment]) -> ArtifactView {
    let name = versions.name;
    let staged = versions.staged;
    let mut diffs = Vec::new();
    if let Some((round, previous)) = versions.previous_round {
        let rows = diff_html::rows(previous, staged);
        diffs.push(DiffView {
            title: if rows.is_empty() {
                format!("unchanged since round {round}")
            } else {
                format!("changes since round {round} (before the rework)")
            },
            rows,
        });
    }
    let change = match versions.published {
        None => "new: approval creates it".to_owned(),
        Some(published) if published == staged => {
            "identical to the published version: approval leaves it as it is".to_owned()
        }
        Some(published) => {
            let rows = diff_html::rows(published, staged);
            let added = rows.iter().filter(|row| row.kind == "insert").count();
            let removed = rows.iter().filter(|row| row.kind == "delete").count();
            diffs.push(DiffView {
                title: format!("changes against {}", versions.published_path),
                rows,
            });
            format!(
                "approval replaces {} (+{added} −{removed} lines; the current file is kept for `stagegate restore`)",
                versions.published_path
            )
        }
    };
    let answers = comments_on_previous
        .iter()
        .map(|comment| {
            let answer = Answer::of(comment, Some(staged));
            CommentAnswer {
                location: line_comments::location(comment),
                quoted: comment.quoted.clone(),
                comment: comment.comment.clone(),
                changed: answer == Answer::Changed,
                answer: answer.describe(),
            }
        })
        .collect();
    ArtifactView {
        name: name.to_owned(),
        size: size(staged),
        markdown: name.ends_with(".md"),
        source: staged.to_owned(),
        lines: staged.lines().map(str::to_owned).collect(),
        change,
        diffs,
        answers,
    }
}

fn size(text: &str) -> String {
    let bytes = text.len();
    let lines = text.lines().count();
    if bytes < 1024 {
        format!("{bytes} bytes, {lines} lines")
    } else {
        format!("{:.1} KiB, {lines} lines", bytes as f64 / 1024.0)
    }
}
