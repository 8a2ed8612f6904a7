//! `estimation-scope-analyst`: phases from the stories by priority, the size of each phase
//! counted from the spec (requirements, acceptance scenarios, open questions), milestones, a
//! sequence and the assumptions behind them.
//!
//! No duration is given: the inputs state no team, capacity or velocity, and a person-day
//! figure without them would be invented. The size is what the spec shows, so a person can
//! turn it into time with what they know.

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::{Spec, UserStory};

/// A phase of the work with its size as counted in the spec.
pub(crate) struct WorkPhase {
    pub(crate) name: String,
    pub(crate) stories: Vec<String>,
    pub(crate) requirements: Vec<String>,
    /// `3 requirements, 4 scenarios, 1 open question`, or what the phase is made of.
    pub(crate) size: String,
}

/// `1 requirement`, `3 requirements`.
fn count(number: usize, what: &str) -> String {
    format!("{number} {what}{}", if number == 1 { "" } else { "s" })
}

fn story_requirements(traces: &[traceability::Trace<'_>], story: &UserStory) -> Vec<String> {
    traces
        .iter()
        .filter(|trace| trace.requirement.is_functional())
        .filter(|trace| {
            trace
                .stories
                .first()
                .is_some_and(|first| first.number == story.number)
        })
        .map(|trace| trace.requirement.id.clone())
        .collect()
}

/// Setup, foundation, one phase per priority level, polish.
pub(crate) fn phases(spec: &Spec) -> Vec<WorkPhase> {
    let traces = traceability::trace(spec);
    let mut phases = vec![WorkPhase {
        name: "Setup".to_owned(),
        stories: Vec::new(),
        requirements: Vec::new(),
        size: "what the project's own tooling needs (not stated in the spec)".to_owned(),
    }];
    phases.push(WorkPhase {
        name: "Foundation".to_owned(),
        stories: Vec::new(),
        requirements: Vec::new(),
        size: format!(
            "{} {} named in the spec's Key Entities",
            spec.entities.len(),
            if spec.entities.len() == 1 {
                "entity"
            } else {
                "entities"
            }
        ),
    });
    let mut priorities: Vec<Option<u32>> =
        spec.stories.iter().map(|story| story.priority).collect();
    priorities.sort_by_key(|priority| priority.unwrap_or(u32::MAX));
    priorities.dedup();
    for priority in priorities {
        let stories: Vec<&UserStory> = spec
            .stories
            .iter()
            .filter(|story| story.priority == priority)
            .collect();
        let mut requirements = Vec::new();
        let mut scenarios = 0;
        let mut open = 0;
        for story in &stories {
            let ids = story_requirements(&traces, story);
            let questions = spec
                .open_questions
                .iter()
                .filter(|question| {
                    question
                        .requirement
                        .as_ref()
                        .is_some_and(|id| ids.contains(id))
                        || question.location == format!("User Story {}", story.number)
                })
                .count();
            scenarios += story.scenarios.len();
            open += questions;
            requirements.extend(ids);
        }
        let name = match priority {
            Some(1) => "P1 stories (MVP)".to_owned(),
            Some(priority) => format!("P{priority} stories"),
            None => "Unprioritized stories".to_owned(),
        };
        phases.push(WorkPhase {
            name,
            stories: stories.iter().map(|story| story.label()).collect(),
            size: format!(
                "{}, {}, {}",
                count(requirements.len(), "requirement"),
                count(scenarios, "acceptance scenario"),
                count(open, "open question")
            ),
            requirements,
        });
    }
    let untraced = spec.requirements.len().saturating_sub(
        phases
            .iter()
            .map(|phase| phase.requirements.len())
            .sum::<usize>(),
    );
    phases.push(WorkPhase {
        name: "Polish and cross-cutting".to_owned(),
        stories: Vec::new(),
        requirements: Vec::new(),
        size: format!("{} tied to no single story", count(untraced, "requirement")),
    });
    phases
}

/// What the plan says about effort: sizes only, and why no duration.
pub(crate) const NO_DURATION: &str = "Duration: NEEDS CLARIFICATION — the inputs state no team, capacity or velocity, so no duration is estimated; the sizes below are counted from the spec.";

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Estimation and Scope");
    out.push_str("## Phases and Size\n\n");
    out.push_str(NO_DURATION);
    out.push_str("\n\n");
    let phases = phases(spec);
    let rows: Vec<Vec<String>> = phases
        .iter()
        .enumerate()
        .map(|(index, phase)| {
            vec![
                format!("{}", index + 1),
                phase.name.clone(),
                phase.stories.join(", "),
                phase.requirements.join(", "),
                phase.size.clone(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &[
            "#",
            "Phase",
            "Stories",
            "Requirements",
            "Size (from the spec)",
        ],
        &rows,
    );
    out.push('\n');

    out.push_str("## Milestones\n\n");
    let milestones: Vec<String> = phases
        .iter()
        .enumerate()
        .skip(2)
        .filter(|(_, phase)| !phase.stories.is_empty())
        .map(|(index, phase)| {
            format!(
                "M{}: {} done and independently tested",
                index - 1,
                phase.name
            )
        })
        .collect();
    out.push_str(&report::bullets(
        &milestones,
        "No stories, so no milestones beyond setup.",
    ));

    out.push_str("## Sequencing\n\n");
    out.push_str("1. Setup, then Foundation: they block every story.\n2. Stories in priority order (P1 → P2 → …); stories of one priority can run in parallel once the foundation is in.\n3. Stop and validate after the P1 phase: it is the MVP.\n4. Polish last: audit, documentation, performance checks against the success criteria.\n\n");

    out.push_str("## Assumptions\n\n");
    let mut assumptions: Vec<String> = vec![
        "Requirements are traced to stories by the ids they cite, their position under a story, else shared key words (see the requirements analysis)."
            .to_owned(),
    ];
    assumptions.extend(
        spec.assumptions
            .iter()
            .map(|assumption| format!("From the spec: {}", assumption.text)),
    );
    if !spec.open_questions.is_empty() {
        assumptions.push(format!(
            "{} open clarification(s) may change the size of the phases they touch.",
            spec.open_questions.len()
        ));
    }
    out.push_str(&report::bullets(&assumptions, ""));
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    if spec.stories.iter().any(|story| story.priority.is_none()) {
        confidence.subtract(0.05, "stories without a priority".to_owned());
    }
    out.push_str(&confidence.render());
    out
}
