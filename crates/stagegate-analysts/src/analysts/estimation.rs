//! `estimation-scope-analyst`: phases from the stories by priority, effort ranges from the
//! number of requirements per story, milestones, a sequence and the assumptions behind them.
//!
//! Effort formula (ideal person-days per story): `1 + 1.5 × requirements + 0.5 × acceptance
//! scenarios`, times `1.2` per open clarification touching the story; the range is 0.75× to
//! 1.5× of that. Setup is 1–2 days; the foundation is `0.5 × entities` days (at least 1).

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::{Spec, UserStory};

/// A phase of the work with its effort range in person-days.
pub(crate) struct WorkPhase {
    pub(crate) name: String,
    pub(crate) stories: Vec<String>,
    pub(crate) requirements: Vec<String>,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) basis: String,
}

fn story_requirements(traces: &[traceability::Trace<'_>], story: &UserStory) -> Vec<String> {
    traces
        .iter()
        .filter(|trace| trace.requirement.id.starts_with("FR-"))
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
        low: 1.0,
        high: 2.0,
        basis: "fixed: project skeleton, tooling, CI".to_owned(),
    }];
    let entities = spec.entities.len() as f64;
    let foundation = (0.5 * entities).max(1.0);
    phases.push(WorkPhase {
        name: "Foundation".to_owned(),
        stories: Vec::new(),
        requirements: Vec::new(),
        low: round_half(foundation * 0.75),
        high: round_half(foundation * 1.5),
        basis: format!(
            "0.5 × {} entities: schema, models, access checks",
            spec.entities.len()
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
        let mut nominal = 0.0;
        let mut requirements = Vec::new();
        let mut bases = Vec::new();
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
            let days = (1.0 + 1.5 * ids.len() as f64 + 0.5 * story.scenarios.len() as f64)
                * 1.2_f64.powi(i32::try_from(questions).unwrap_or(i32::MAX));
            bases.push(format!(
                "{}: 1 + 1.5×{} req + 0.5×{} scen{} = {:.1}",
                story.label(),
                ids.len(),
                story.scenarios.len(),
                if questions > 0 {
                    format!(", ×1.2^{questions} open questions")
                } else {
                    String::new()
                },
                days
            ));
            nominal += days;
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
            requirements,
            low: round_half(nominal * 0.75),
            high: round_half(nominal * 1.5),
            basis: bases.join("; "),
        });
    }
    let untraced = spec.requirements.len().saturating_sub(
        phases
            .iter()
            .map(|phase| phase.requirements.len())
            .sum::<usize>(),
    );
    let polish = 1.0 + 0.5 * untraced as f64;
    phases.push(WorkPhase {
        name: "Polish and cross-cutting".to_owned(),
        stories: Vec::new(),
        requirements: Vec::new(),
        low: round_half(polish * 0.75),
        high: round_half(polish * 1.5),
        basis: format!("1 + 0.5 × {untraced} requirements not tied to one story"),
    });
    phases
}

fn round_half(value: f64) -> f64 {
    (value * 2.0).round() / 2.0
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Estimation and Scope");
    out.push_str("## Phases and Effort\n\n");
    out.push_str("Effort per story in ideal person-days: `1 + 1.5 × requirements + 0.5 × acceptance scenarios`, ×1.2 per open clarification touching it; the range is 0.75× to 1.5×. Foundation: `0.5 × entities` (at least 1). Polish: `1 + 0.5 × requirements tied to no single story`.\n\n");
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
                format!("{:.1}–{:.1} days", phase.low, phase.high),
                phase.basis.clone(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["#", "Phase", "Stories", "Requirements", "Effort", "Basis"],
        &rows,
    );
    let low: f64 = phases.iter().map(|phase| phase.low).sum();
    let high: f64 = phases.iter().map(|phase| phase.high).sum();
    out.push_str(&format!("\nTotal: {low:.1}–{high:.1} person-days.\n\n"));

    out.push_str("## Milestones\n\n");
    let milestones: Vec<String> = phases
        .iter()
        .enumerate()
        .skip(2)
        .map(|(index, phase)| {
            let done: f64 = phases[..=index].iter().map(|p| p.high).sum();
            format!(
                "M{}: {} done and independently tested (by day {:.0} at the high estimate)",
                index - 1,
                phase.name,
                done.ceil()
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
        "One developer-day is six focused hours; reviews and meetings are outside the ranges."
            .to_owned(),
        "Requirements are traced to stories by shared key words (see the requirements analysis)."
            .to_owned(),
    ];
    assumptions.extend(
        spec.assumptions
            .iter()
            .map(|assumption| format!("From the spec: {}", assumption.text)),
    );
    if !spec.open_questions.is_empty() {
        assumptions.push(format!(
            "{} open clarification(s) widen the affected phases by 20% each until answered.",
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
