//! Fitting a prompt's material into what the agent's model can read.
//!
//! A prompt carries the stage's feature files and, for the reviewer and the synthesizer, the
//! role agents' outputs. A CLI coding agent reads hundreds of kilobytes; a small model behind a
//! local OpenAI-compatible server reads a fraction of that, and a prompt past its context is
//! refused or, worse, silently cut by the server. [`fit`] keeps the material inside a byte
//! budget and reports every cut, so that the prompt can tell the agent what it does not see
//! (the templates render the cuts as a note) instead of the agent guessing.
//!
//! # How the budget is spent
//! 1. `spec.md`, the source of every requirement, is kept whole whenever it fits at all.
//! 2. Everything else shares what is left, by priority: `plan.md` and `tasks.md` (weight 3),
//!    then the project constitution (weight 2), then the other feature files and the role
//!    agents' outputs (weight 1). When they do not all fit, each text is capped at its weight
//!    times one common share, the share chosen so that the texts fill what is left
//!    (weighted water-filling): the small ones stay whole and the largest are cut first, a
//!    higher-priority text keeping up to three times what a lower one keeps.
//!
//! Why shares rather than strict tiers (all of plan and tasks before any of the constitution,
//! all of it before any agent output): a large `tasks.md` would then push the constitution and
//! every role agent's output out of the reviewer's prompt, whose main material they are,
//! while a few kilobytes less of `tasks.md` cost little.
//!
//! Texts are cut at a line boundary, and a marker line at the cut says how much is missing.
//! A text that gets no room at all is still there, as its marker alone, and is reported like
//! any other cut: nothing disappears without saying so.
//!
//! Sizes are UTF-8 bytes: at least the number of characters, so a byte budget never lets more
//! characters through than it says, and cheap to count on every prompt.

use serde::Serialize;

use crate::prompt::{AgentOutputView, NamedText};

/// A kilobyte as budgets and notes count it (1000 bytes).
pub const KB: usize = 1000;

/// The material budget of each backend kind: the bytes of feature files, agent outputs and
/// earlier results one prompt may carry. The template's own text (a few KB) comes on top, so
/// each figure leaves room below the model's context for it and for the answer.
///
/// * `command`: CLI coding agents (`claude -p`, `codex exec`, …) read about 200k tokens, but
///   they also spend context on their own instructions, tools and the files they open.
/// * `anthropic`: Claude models over the Messages API: 200k tokens and nothing else in them.
/// * `openai`: assumed to be a local server (llama.cpp, Ollama, vLLM) running a small model
///   with a context of 32k tokens or so; hosted OpenAI models read more, but the backend
///   cannot tell which it talks to, and a cut prompt that says so beats a refused one.
/// * `builtin` and `mock` read no prompt text at all: unlimited.
///
/// A kind not in the table (a backend a test or an embedder injects) is unlimited.
pub const BUDGETS: [(&str, Option<usize>); 5] = [
    ("command", Some(400 * KB)),
    ("anthropic", Some(600 * KB)),
    ("openai", Some(100 * KB)),
    ("builtin", None),
    ("mock", None),
];

/// The material budget of a backend kind; `None` is unlimited.
pub fn budget_for_kind(kind: &str) -> Option<usize> {
    BUDGETS
        .iter()
        .find(|(known, _)| *known == kind)
        .and_then(|(_, budget)| *budget)
}

/// The tightest budget of several backend kinds (an agent's backend and its fallback: the one
/// prompt goes to both); `None` when every one of them is unlimited.
pub fn tightest<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    kinds.into_iter().filter_map(budget_for_kind).min()
}

/// One text that was shortened to fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// The feature file (`tasks.md`) or the agent output (`solution-architect's output`).
    pub name: String,
    pub original_bytes: usize,
    /// What is left of it; 0 when it was left out entirely.
    pub kept_bytes: usize,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kept_bytes == 0 {
            write!(
                formatter,
                "{} ({}) was left out",
                self.name,
                human_size(self.original_bytes)
            )
        } else {
            write!(
                formatter,
                "{} was cut from {} to {}",
                self.name,
                human_size(self.original_bytes),
                human_size(self.kept_bytes)
            )
        }
    }
}

/// The material that fits, in the order it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub inputs: Vec<NamedText>,
    pub outputs: Vec<AgentOutputView>,
}

/// Fits `inputs` and `outputs` into `budget` bytes (see the module documentation for the
/// order); returns what is kept and every cut made, in the order the texts were given.
/// Under the budget it keeps everything as it is and reports no cut.
pub fn fit(inputs: &[NamedText], outputs: &[AgentOutputView], budget: usize) -> (Kept, Vec<Cut>) {
    let texts: Vec<Text<'_>> = inputs
        .iter()
        .map(|input| Text {
            name: input.name.clone(),
            content: &input.content,
            tier: tier(&input.name),
        })
        .chain(outputs.iter().map(|output| Text {
            name: format!("{}'s output", output.agent),
            content: &output.output,
            tier: Tier::Other,
        }))
        .collect();
    let allowed = allot(&texts, budget);

    let mut cuts = Vec::new();
    let mut fitted: Vec<String> = Vec::with_capacity(texts.len());
    for (text, allowed) in texts.iter().zip(allowed) {
        if allowed >= text.content.len() {
            fitted.push(text.content.to_owned());
            continue;
        }
        let original = text.content.len();
        let room = allowed.saturating_sub(MARKER_ROOM + text.name.len());
        let kept = cut_at_line(text.content, room);
        cuts.push(Cut {
            name: text.name.clone(),
            original_bytes: original,
            kept_bytes: kept.len(),
        });
        fitted.push(format!("{kept}{}", marker(&text.name, original, kept)));
    }

    let mut fitted = fitted.into_iter();
    let kept = Kept {
        inputs: inputs
            .iter()
            .zip(fitted.by_ref())
            .map(|(input, content)| NamedText {
                name: input.name.clone(),
                content,
            })
            .collect(),
        outputs: outputs
            .iter()
            .zip(fitted)
            .map(|(output, content)| AgentOutputView {
                agent: output.agent.clone(),
                role: output.role.clone(),
                output: content,
            })
            .collect(),
    };
    (kept, cuts)
}

/// `1.5 KB`, `120 KB`, `2.3 MB`, `640 bytes`: how notes and events show a size.
pub fn human_size(bytes: usize) -> String {
    const MB: usize = 1000 * KB;
    let value = bytes as f64;
    if bytes < KB {
        format!("{bytes} bytes")
    } else if bytes < 10 * KB {
        format!("{:.1} KB", value / KB as f64)
    } else if bytes < MB {
        format!("{} KB", (value / KB as f64).round())
    } else {
        format!("{:.1} MB", value / MB as f64)
    }
}

/// Room kept for the marker line at a cut, beside the text's name.
const MARKER_ROOM: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Spec,
    PlanAndTasks,
    Constitution,
    Other,
}

impl Tier {
    /// A text's share of what is left after spec.md, relative to the others'.
    fn weight(self) -> usize {
        match self {
            Tier::Spec | Tier::PlanAndTasks => 3,
            Tier::Constitution => 2,
            Tier::Other => 1,
        }
    }
}

struct Text<'a> {
    name: String,
    content: &'a str,
    tier: Tier,
}

fn tier(name: &str) -> Tier {
    let file = name.rsplit('/').next().unwrap_or(name);
    match file {
        "spec.md" => Tier::Spec,
        "plan.md" | "tasks.md" => Tier::PlanAndTasks,
        _ if file.ends_with("constitution.md") => Tier::Constitution,
        _ => Tier::Other,
    }
}

/// The bytes each text may keep: spec.md first, then a weighted water-filling of the rest.
fn allot(texts: &[Text<'_>], budget: usize) -> Vec<usize> {
    let (specs, rest): (Vec<usize>, Vec<usize>) =
        (0..texts.len()).partition(|&index| texts[index].tier == Tier::Spec);
    let mut allowed = vec![0; texts.len()];
    let room = water_fill(texts, &specs, budget, &mut allowed);
    water_fill(texts, &rest, room, &mut allowed);
    allowed
}

/// Gives `members` what they need when they fit in `room`, else caps each at its weight times
/// a common share; returns the room left.
fn water_fill(texts: &[Text<'_>], members: &[usize], room: usize, allowed: &mut [usize]) -> usize {
    let size = |index: usize| texts[index].content.len();
    let weight = |index: usize| texts[index].tier.weight();
    let needed: usize = members.iter().map(|&index| size(index)).sum();
    if needed <= room {
        for &index in members {
            allowed[index] = size(index);
        }
        return room - needed;
    }
    // In order of size per weight: each takes all it needs while that is within its weight's
    // part of what is left; from the first that does not, every remaining one is capped, and
    // the share per weight stays the same from then on.
    let mut order = members.to_vec();
    order.sort_by(|&left, &right| (size(left) * weight(right)).cmp(&(size(right) * weight(left))));
    let mut left = room;
    let mut weights: usize = order.iter().map(|&index| weight(index)).sum();
    for index in order {
        let share = left * weight(index) / weights.max(1);
        let take = size(index).min(share);
        allowed[index] = take;
        left -= take;
        weights -= weight(index);
    }
    left
}

/// The longest prefix of `text` of at most `limit` bytes that ends at a line boundary; the
/// longest prefix ending at a character boundary when not even its first line fits.
fn cut_at_line(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text[..end].rfind('\n') {
        Some(newline) => &text[..=newline],
        None => &text[..end],
    }
}

fn marker(name: &str, original: usize, kept: &str) -> String {
    let omitted = human_size(original - kept.len());
    if kept.is_empty() {
        return format!(
            "[stagegate: {name} ({omitted}) was left out to fit this agent's context]\n"
        );
    }
    let newline = if kept.ends_with('\n') { "" } else { "\n" };
    format!(
        "{newline}[stagegate: {name} is cut here to fit this agent's context; the remaining {omitted} are omitted]\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, lines: usize, width: usize) -> NamedText {
        let line = format!("{}\n", "x".repeat(width - 1));
        NamedText {
            name: name.to_owned(),
            content: line.repeat(lines),
        }
    }

    fn output(agent: &str, bytes: usize) -> AgentOutputView {
        AgentOutputView {
            agent: agent.to_owned(),
            role: "Role".to_owned(),
            output: format!("{}\n", "y".repeat(bytes - 1)),
        }
    }

    fn total(kept: &Kept) -> usize {
        kept.inputs
            .iter()
            .map(|input| input.content.len())
            .chain(kept.outputs.iter().map(|output| output.output.len()))
            .sum()
    }

    #[test]
    fn under_the_budget_nothing_changes() {
        let inputs = [file("spec.md", 10, 80), file("tasks.md", 10, 80)];
        let outputs = [output("solution-architect", 500)];
        let (kept, cuts) = fit(&inputs, &outputs, 10 * KB);
        assert!(cuts.is_empty(), "{cuts:?}");
        assert_eq!(kept.inputs.len(), 2);
        assert_eq!(kept.inputs[0].content, inputs[0].content);
        assert_eq!(kept.inputs[1].content, inputs[1].content);
        assert_eq!(kept.outputs[0].output, outputs[0].output);
    }

    #[test]
    fn spec_stays_whole_and_the_largest_other_file_is_cut() {
        // spec.md 20 KB, plan.md 10 KB, tasks.md 120 KB, constitution 4 KB; budget 80 KB.
        let inputs = [
            file("spec.md", 250, 80),
            file("plan.md", 125, 80),
            file("tasks.md", 1500, 80),
            file("constitution.md", 50, 80),
        ];
        let (kept, cuts) = fit(&inputs, &[], 80 * KB);
        assert_eq!(
            kept.inputs[0].content, inputs[0].content,
            "spec.md is whole"
        );
        assert_eq!(
            kept.inputs[1].content, inputs[1].content,
            "plan.md is whole"
        );
        assert_eq!(
            kept.inputs[3].content, inputs[3].content,
            "the constitution is whole"
        );
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        let tasks = &cuts[0];
        assert_eq!(tasks.name, "tasks.md");
        assert_eq!(tasks.original_bytes, 120 * KB);
        assert!(
            tasks.kept_bytes > 45 * KB && tasks.kept_bytes < 46 * KB,
            "{tasks:?}"
        );
        assert_eq!(
            tasks.kept_bytes % 80,
            0,
            "cut at a line boundary: {tasks:?}"
        );
        assert!(
            kept.inputs[2]
                .content
                .contains("[stagegate: tasks.md is cut here"),
            "{}",
            &kept.inputs[2].content[kept.inputs[2].content.len() - 200..]
        );
        assert!(total(&kept) <= 80 * KB, "{}", total(&kept));
        assert_eq!(
            tasks.to_string(),
            format!(
                "tasks.md was cut from 120 KB to {}",
                human_size(tasks.kept_bytes)
            )
        );
    }

    #[test]
    fn higher_priorities_keep_a_larger_share() {
        // Three texts of 100 KB each after spec.md, 70 KB to share: tasks.md keeps three
        // parts, the constitution two, research.md one.
        let inputs = [
            file("spec.md", 100, 100),
            file("research.md", 1000, 100),
            file("constitution.md", 1000, 100),
            file("tasks.md", 1000, 100),
        ];
        let (_, cuts) = fit(&inputs, &[], 80 * KB);
        let kept: Vec<(&str, usize)> = cuts
            .iter()
            .map(|cut| (cut.name.as_str(), cut.kept_bytes / KB))
            .collect();
        assert_eq!(
            kept,
            [
                ("research.md", 11),
                ("constitution.md", 23),
                ("tasks.md", 34)
            ]
        );
    }

    #[test]
    fn nothing_is_dropped_without_saying_so() {
        let inputs = [file("spec.md", 100, 100), file("plan.md", 10, 100)];
        let (kept, cuts) = fit(&inputs, &[], 10 * KB);
        assert_eq!(
            cuts,
            [Cut {
                name: "plan.md".into(),
                original_bytes: KB,
                kept_bytes: 0
            }]
        );
        assert!(
            kept.inputs[1]
                .content
                .contains("plan.md (1.0 KB) was left out")
        );
    }

    #[test]
    fn within_a_tier_the_largest_are_cut_and_the_small_stay_whole() {
        let inputs = [file("spec.md", 100, 100), file("research.md", 20, 100)];
        let outputs = [
            output("requirements-analyst", 3 * KB),
            output("solution-architect", 60 * KB),
            output("risk-compliance-analyst", 40 * KB),
        ];
        let (kept, cuts) = fit(&inputs, &outputs, 50 * KB);
        assert_eq!(kept.inputs[0].content.len(), 10 * KB);
        assert_eq!(kept.inputs[1].content.len(), 2 * KB);
        assert_eq!(kept.outputs[0].output.len(), 3 * KB);
        let names: Vec<&str> = cuts.iter().map(|cut| cut.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "solution-architect's output",
                "risk-compliance-analyst's output"
            ]
        );
        // Both capped at the same share of the 35 KB left.
        for cut in &cuts {
            assert!(
                cut.kept_bytes > 17 * KB && cut.kept_bytes <= 17_500,
                "{cut:?}"
            );
        }
        assert!(total(&kept) <= 50 * KB);
    }

    #[test]
    fn a_spec_larger_than_the_budget_is_cut_too() {
        let inputs = [file("spec.md", 1000, 100), file("plan.md", 10, 100)];
        let (kept, cuts) = fit(&inputs, &[], 20 * KB);
        assert_eq!(cuts.len(), 2);
        assert!(cuts[0].kept_bytes > 19 * KB, "{cuts:?}");
        assert_eq!(cuts[1].kept_bytes, 0);
        assert!(
            kept.inputs[1]
                .content
                .contains("plan.md (1.0 KB) was left out")
        );
    }

    #[test]
    fn a_single_long_line_is_cut_at_a_character_boundary() {
        let inputs = [NamedText {
            name: "notes.md".into(),
            content: "é".repeat(5000),
        }];
        let (kept, cuts) = fit(&inputs, &[], 1000);
        assert_eq!(cuts.len(), 1);
        assert!(cuts[0].kept_bytes > 0 && cuts[0].kept_bytes % 2 == 0);
        assert!(kept.inputs[0].content.starts_with('é'));
    }

    #[test]
    fn budgets_by_backend_kind() {
        assert_eq!(budget_for_kind("openai"), Some(100 * KB));
        assert_eq!(budget_for_kind("command"), Some(400 * KB));
        assert_eq!(budget_for_kind("anthropic"), Some(600 * KB));
        assert_eq!(budget_for_kind("builtin"), None);
        assert_eq!(budget_for_kind("mock"), None);
        assert_eq!(budget_for_kind("scripted"), None);
        assert_eq!(tightest(["builtin", "openai"]), Some(100 * KB));
        assert_eq!(tightest(["command", "anthropic"]), Some(400 * KB));
        assert_eq!(tightest(["builtin", "mock"]), None);
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human_size(640), "640 bytes");
        assert_eq!(human_size(1500), "1.5 KB");
        assert_eq!(human_size(120 * KB), "120 KB");
        assert_eq!(human_size(2_300_000), "2.3 MB");
    }
}
