//! A person's comments on lines of the staged artifacts: `plan.md:42` / `plan.md:40-44` as the
//! CLI and the dashboard name them, checked against the staged text (the quoted lines are taken
//! from it), and what the next round did to the lines each comment named.

use std::path::PathBuf;

use stagegate_store::LineComment;

use crate::error::AppError;

/// The most comments one decision takes, and the longest comment and quotation kept.
const MAX_COMMENTS: usize = 100;
const MAX_COMMENT_BYTES: usize = 8 * 1024;
const MAX_QUOTED_LINES: u32 = 200;

/// `ARTIFACT:LINE` or `ARTIFACT:FIRST-LAST`, as written (not yet checked against the files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentTarget {
    pub artifact: String,
    pub first_line: u32,
    pub last_line: u32,
}

/// Parses `plan.md:42` or `plan.md:40-44`.
pub fn parse_target(text: &str) -> Result<CommentTarget, AppError> {
    let invalid = |why: &str| {
        AppError::usage(format!(
            "`{text}` does not name lines of an artifact: {why}\nhint: write ARTIFACT:LINE or ARTIFACT:FIRST-LAST, for example plan.md:42 or plan.md:40-44"
        ))
    };
    let Some((artifact, lines)) = text.rsplit_once(':') else {
        return Err(invalid("there is no `:`"));
    };
    if artifact.trim().is_empty() {
        return Err(invalid("the artifact's name is missing"));
    }
    let line = |number: &str| match number.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err(invalid(&format!(
            "`{number}` is not a line number (they start at 1)"
        ))),
        Ok(line) => Ok(line),
    };
    let (first_line, last_line) = match lines.split_once('-') {
        Some((first, last)) => (line(first)?, line(last)?),
        None => (line(lines)?, line(lines)?),
    };
    if last_line < first_line {
        return Err(invalid("the range ends before it starts"));
    }
    Ok(CommentTarget {
        artifact: artifact.trim().to_owned(),
        first_line,
        last_line,
    })
}

/// Checks each `(target, comment)` against the staged artifacts and quotes the lines it names.
pub fn resolve(
    requested: &[(CommentTarget, String)],
    staged: &[(String, PathBuf)],
) -> Result<Vec<LineComment>, AppError> {
    if requested.len() > MAX_COMMENTS {
        return Err(AppError::usage(format!(
            "{} line comments: at most {MAX_COMMENTS} go with one decision\nhint: put the rest in --feedback",
            requested.len()
        )));
    }
    let mut comments = Vec::with_capacity(requested.len());
    for (target, comment) in requested {
        let location = format!("{}:{}", target.artifact, lines_label(target));
        let Some((_, path)) = staged.iter().find(|(name, _)| *name == target.artifact) else {
            let names: Vec<&str> = staged.iter().map(|(name, _)| name.as_str()).collect();
            return Err(AppError::usage(format!(
                "comment on {location}: the gate has no staged artifact `{}`\nhint: the staged artifacts are {}",
                target.artifact,
                names.join(", ")
            )));
        };
        if comment.trim().is_empty() {
            return Err(AppError::usage(format!(
                "comment on {location} is empty\nhint: say what should change in those lines"
            )));
        }
        if comment.len() > MAX_COMMENT_BYTES {
            return Err(AppError::usage(format!(
                "comment on {location} is longer than {} KiB\nhint: shorten it, or put the details in --feedback",
                MAX_COMMENT_BYTES / 1024
            )));
        }
        let content = std::fs::read(path).map_err(|error| {
            AppError::internal(format!("cannot read {}: {error}", path.display()))
        })?;
        let quoted = quote(&String::from_utf8_lossy(&content), target).map_err(|count| {
            AppError::usage(format!(
                "comment on {location}: `{}` has {count} line(s)\nhint: number the lines as `stagegate show RUN --file {}` prints them",
                target.artifact, target.artifact
            ))
        })?;
        comments.push(LineComment {
            artifact: target.artifact.clone(),
            first_line: target.first_line,
            last_line: target.last_line,
            quoted,
            comment: comment.trim().to_owned(),
        });
    }
    Ok(comments)
}

/// The lines `target` names (at most [`MAX_QUOTED_LINES`]), or the number of lines there are
/// when it names lines past the end.
pub fn quote(content: &str, target: &CommentTarget) -> Result<String, usize> {
    let lines: Vec<&str> = content.lines().collect();
    let last = target.last_line as usize;
    if last > lines.len() {
        return Err(lines.len());
    }
    let shown_last = last.min((target.first_line + MAX_QUOTED_LINES - 1) as usize);
    Ok(lines[target.first_line as usize - 1..shown_last].join("\n"))
}

fn lines_label(target: &CommentTarget) -> String {
    if target.first_line == target.last_line {
        target.first_line.to_string()
    } else {
        format!("{}-{}", target.first_line, target.last_line)
    }
}

/// `plan.md:42` or `plan.md:40-44`.
pub fn location(comment: &LineComment) -> String {
    engine_comment(comment).location()
}

/// The engine's copy of a comment (the engine knows no store).
pub fn engine_comment(comment: &LineComment) -> stagegate_engine::line_comment::LineComment {
    stagegate_engine::line_comment::LineComment {
        artifact: comment.artifact.clone(),
        first_line: comment.first_line,
        last_line: comment.last_line,
        quoted: comment.quoted.clone(),
        comment: comment.comment.clone(),
    }
}

/// What the round after a comment did to the lines it named, judged from the text alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The quoted lines are no longer in the artifact: they were changed or removed.
    Changed,
    /// The quoted lines are still there, word for word.
    Unchanged,
    /// The artifact itself is gone from the new round.
    ArtifactGone,
}

impl Answer {
    pub fn of(comment: &LineComment, new_content: Option<&str>) -> Answer {
        match new_content {
            None => Answer::ArtifactGone,
            Some(content) if comment.quoted.trim().is_empty() => {
                // An empty line has no text to look for; judge by the artifact as a whole.
                if content.is_empty() {
                    Answer::Changed
                } else {
                    Answer::Unchanged
                }
            }
            Some(content) if content.contains(comment.quoted.as_str()) => Answer::Unchanged,
            Some(_) => Answer::Changed,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Answer::Changed => "changed: the lines it named are no longer there as they were",
            Answer::Unchanged => "not changed: the lines it named are still there, word for word",
            Answer::ArtifactGone => "the artifact is not in the new round",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(artifact: &str, first_line: u32, last_line: u32) -> CommentTarget {
        CommentTarget {
            artifact: artifact.to_owned(),
            first_line,
            last_line,
        }
    }

    #[test]
    fn targets_name_one_line_or_a_range() {
        assert_eq!(
            parse_target("plan.md:42").expect("works"),
            target("plan.md", 42, 42)
        );
        assert_eq!(
            parse_target("contracts/api.md:40-44").expect("works"),
            target("contracts/api.md", 40, 44)
        );
        for bad in [
            "plan.md",
            "plan.md:",
            ":4",
            "plan.md:0",
            "plan.md:9-3",
            "plan.md:x",
        ] {
            let error = parse_target(bad).expect_err("refused").to_string();
            assert!(
                error.contains("hint: write ARTIFACT:LINE"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn comments_quote_the_staged_lines_and_refuse_lines_past_the_end() {
        let directory = tempfile::tempdir().expect("works");
        let path = directory.path().join("plan.md");
        std::fs::write(&path, "# Plan\n\n| a | b |\n|---|---|\n").expect("works");
        let staged = vec![("plan.md".to_owned(), path)];
        let comments = resolve(
            &[
                (target("plan.md", 1, 1), " Rename it. ".to_owned()),
                (target("plan.md", 3, 4), "Name the columns".to_owned()),
            ],
            &staged,
        )
        .expect("works");
        assert_eq!(comments[0].quoted, "# Plan");
        assert_eq!(comments[0].comment, "Rename it.");
        assert_eq!(comments[1].quoted, "| a | b |\n|---|---|");
        let past = resolve(&[(target("plan.md", 4, 5), "x".to_owned())], &staged)
            .expect_err("refused")
            .to_string();
        assert!(
            past.contains("plan.md:4-5") && past.contains("has 4 line(s)"),
            "{past}"
        );
        let unknown = resolve(&[(target("spec.md", 1, 1), "x".to_owned())], &staged)
            .expect_err("refused")
            .to_string();
        assert!(
            unknown.contains("the staged artifacts are plan.md"),
            "{unknown}"
        );
        let empty = resolve(&[(target("plan.md", 1, 1), " ".to_owned())], &staged)
            .expect_err("refused")
            .to_string();
        assert!(empty.contains("is empty"), "{empty}");
    }

    #[test]
    fn the_answer_is_read_from_the_new_round() {
        let comment = LineComment {
            artifact: "plan.md".to_owned(),
            first_line: 3,
            last_line: 3,
            quoted: "| a | b |".to_owned(),
            comment: "Name the columns".to_owned(),
        };
        assert_eq!(
            Answer::of(&comment, Some("x\n| a | b |\n")),
            Answer::Unchanged
        );
        assert_eq!(
            Answer::of(&comment, Some("| id | name |\n")),
            Answer::Changed
        );
        assert_eq!(Answer::of(&comment, None), Answer::ArtifactGone);
        assert!(Answer::Unchanged.describe().starts_with("not changed"));
    }
}
