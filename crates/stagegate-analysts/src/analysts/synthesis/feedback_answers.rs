//! What the built-in synthesizer says about a person's feedback (`modify --feedback`, QA's
//! REWORK) and line comments. It writes every artifact from the spec-kit inputs alone, so it
//! never claims to have followed a word of them: it says whether the artifact differs from the
//! previous round (and that any difference comes from the inputs), which requirement ids the
//! feedback names and whether they are defined and traced, and how the person can make the
//! change themselves.

use crate::analysts::Call;
use crate::analysts::synthesis::section_items;
use crate::text;

/// Where the person can make a change the built-in synthesizer cannot.
const HOW_TO_CHANGE: &str = "edit the artifact (`stagegate modify RUN` without `--feedback` opens it in $EDITOR), change spec.md or plan.md and run the stage again, or give this artifact a model-backed synthesizer";

/// The sections this module appends, left out when comparing rounds.
const OWN_SECTIONS: [&str; 2] = ["\n## Revisions\n", "\n## Review comments\n"];

/// An artifact without the sections this module appended to it.
fn body(artifact: &str) -> &str {
    let end = OWN_SECTIONS
        .iter()
        .filter_map(|heading| artifact.find(heading))
        .min()
        .unwrap_or(artifact.len());
    artifact[..end].trim_end()
}

/// Whether the artifact changed since the previous round, in lines, and why it may have.
fn against_previous(call: &Call<'_>, written: &str) -> String {
    let Some(previous) = call.materials().previous.as_deref() else {
        return "There is no previous round to compare with.".to_owned();
    };
    let (before, after) = (body(previous), body(written));
    if before == after {
        return "Unchanged: apart from this section, the artifact is exactly the previous round's."
            .to_owned();
    }
    let old: std::collections::HashSet<&str> = before.lines().collect();
    let new: std::collections::HashSet<&str> = after.lines().collect();
    let added = after.lines().filter(|line| !old.contains(line)).count();
    let removed = before.lines().filter(|line| !new.contains(line)).count();
    format!(
        "Changed since the previous round (+{added} −{removed} lines), because what it is written from (the inputs, the agents' outputs, the review) differs from then; none of the change comes from the feedback."
    )
}

/// The feedback's points: QA's `## Problems` items, else each line of a person's text.
fn points(feedback: &str) -> Vec<String> {
    let problems = section_items(feedback, "Problems");
    if !problems.is_empty() {
        return problems.into_iter().take(50).collect();
    }
    feedback
        .lines()
        .map(|line| line.trim().trim_start_matches(['-', '*', '•']).trim())
        .filter(|line| {
            !line.is_empty() && !line.starts_with(['#', '|', '_']) && !line.starts_with("VERDICT")
        })
        .take(50)
        .map(str::to_owned)
        .collect()
}

/// `## Revisions`: the comparison with the previous round, then each feedback point quoted
/// with what the artifact, as written, holds of the ids it names.
pub(crate) fn revisions(call: &Call<'_>, written: &str) -> String {
    let Some(feedback) = call.materials().feedback.as_deref() else {
        return String::new();
    };
    let points = points(feedback);
    if points.is_empty() {
        return String::new();
    }
    let spec = &call.feature.spec;
    let previous = call.materials().previous.as_deref().map(body);
    let mut out = String::from("## Revisions\n\n");
    out.push_str(&format!(
        "_The built-in synthesizer writes this artifact from the spec-kit inputs alone and applied none of this feedback. {}_\n\n",
        against_previous(call, written)
    ));
    for point in points {
        out.push_str(&format!("> {point}\n\n"));
        let mut facts = vec![format!(
            "Not applied. To make this change, {HOW_TO_CHANGE}."
        )];
        for id in text::requirement_ids(&point) {
            let fact = if spec.requirement(&id).is_none() {
                format!("{id} is not defined in spec.md, so it is not in this artifact.")
            } else if !written.contains(id.as_str()) {
                format!("{id} is defined in spec.md but not traced in this artifact.")
            } else if previous.is_some_and(|before| before.contains(id.as_str())) {
                format!("{id} is traced in this artifact, as it was in the previous round.")
            } else {
                format!("{id} is traced in this artifact, as spec.md defines it.")
            };
            facts.push(fact);
        }
        out.push_str(&format!("Result: {}\n\n", facts.join(" ")));
    }
    out
}

/// `## Review comments`: each of a person's line comments, numbered as the prompt numbers
/// them, with what this rework did about it: nothing, said plainly, and whether the lines it
/// named are still as they were.
pub(crate) fn review_comments(call: &Call<'_>, written: &str) -> String {
    let comments = &call.materials().comments;
    if comments.is_empty() {
        return String::new();
    }
    let spec = &call.feature.spec;
    let mut out = String::from("## Review comments\n\n");
    for (index, comment) in comments.iter().enumerate() {
        out.push_str(&format!(
            "{}. `{}`: {}\n\n",
            index + 1,
            comment.location(),
            text::truncate(comment.comment.trim(), 300)
        ));
        let traced: Vec<String> = text::requirement_ids(&comment.comment)
            .into_iter()
            .filter(|id| spec.requirement(id).is_some() && written.contains(id.as_str()))
            .collect();
        let still_there =
            !comment.quoted.trim().is_empty() && written.contains(comment.quoted.as_str());
        let mut answer = if still_there {
            format!(
                "Not changed: the built-in synthesizer cannot follow a comment; the lines are as they were. To change them, {HOW_TO_CHANGE}."
            )
        } else {
            "The lines it named were regenerated from the inputs and read differently now; the built-in synthesizer did not follow the comment itself, so check the new version.".to_owned()
        };
        if !traced.is_empty() {
            answer.push_str(&format!(
                " {} traced in this artifact, as spec.md defines it.",
                traced.join(", ")
            ));
        }
        out.push_str(&format!("   {answer}\n\n"));
    }
    out
}
