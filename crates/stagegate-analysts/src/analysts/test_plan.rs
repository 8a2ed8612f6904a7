//! `test-engineer`: one test per acceptance scenario (Given/When/Then kept), edge-case tests,
//! measurement tests for the success criteria, fixtures from the key entities and coverage
//! targets.

use crate::analysts::architecture;
use crate::analysts::confidence::Confidence;
use crate::analysts::core_implementation::snake;
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::Spec;
use crate::text;

/// A planned test.
pub(crate) struct PlannedTest {
    pub(crate) id: String,
    pub(crate) story: Option<String>,
    pub(crate) name: String,
    pub(crate) given: String,
    pub(crate) when: String,
    pub(crate) then: String,
    pub(crate) kind: &'static str,
    pub(crate) requirements: Vec<String>,
}

/// Tests for every scenario, edge case and measurable success criterion.
pub(crate) fn tests(spec: &Spec) -> Vec<PlannedTest> {
    let traces = traceability::trace(spec);
    let mut tests = Vec::new();
    for story in &spec.stories {
        for (index, scenario) in story.scenarios.iter().enumerate() {
            let label = format!("{}-AS{}", story.label(), index + 1);
            let requirements: Vec<String> = traces
                .iter()
                .filter(|trace| trace.scenarios.contains(&label))
                .map(|trace| trace.requirement.id.clone())
                .collect();
            tests.push(PlannedTest {
                id: format!("TC-{:03}", tests.len() + 1),
                story: Some(story.label()),
                name: format!(
                    "{}_{}",
                    snake(&story.label()),
                    snake(&text::truncate(&scenario.then, 40).replace('…', ""))
                ),
                given: scenario.given.clone(),
                when: scenario.when.clone(),
                then: if scenario.is_complete() {
                    scenario.then.clone()
                } else {
                    scenario.text.clone()
                },
                kind: "acceptance",
                requirements,
            });
        }
    }
    for (index, edge) in spec.edge_cases.iter().enumerate() {
        let (question, answer) = edge
            .text
            .split_once('?')
            .unwrap_or((edge.text.as_str(), ""));
        tests.push(PlannedTest {
            id: format!("TC-{:03}", tests.len() + 1),
            story: None,
            name: format!("edge_case_{}", index + 1),
            given: "the situation of the edge case".to_owned(),
            when: text::truncate(question.trim(), 120),
            then: if answer.trim().is_empty() {
                "the expected handling (to be stated in the spec)".to_owned()
            } else {
                text::truncate(answer.trim(), 140)
            },
            kind: "edge case",
            requirements: Vec::new(),
        });
    }
    for criterion in &spec.success_criteria {
        if text::has_number(&criterion.text) {
            tests.push(PlannedTest {
                id: format!("TC-{:03}", tests.len() + 1),
                story: None,
                name: format!("{}_measurement", snake(&criterion.id)),
                given: "production-like data and network".to_owned(),
                when: "the measured scenario runs".to_owned(),
                then: text::truncate(&criterion.text, 140),
                kind: "measurement",
                requirements: vec![criterion.id.clone()],
            });
        }
    }
    tests
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Test Plan");
    out.push_str("## Test Cases\n\n");
    let tests = tests(spec);
    if tests.is_empty() {
        out.push_str("The spec has no acceptance scenarios, edge cases or measurable criteria to test: add Given/When/Then scenarios first.\n\n");
    } else {
        let rows: Vec<Vec<String>> = tests
            .iter()
            .map(|test| {
                vec![
                    format!("{} `{}`", test.id, test.name),
                    test.story.clone().unwrap_or_default(),
                    test.kind.to_owned(),
                    test.given.clone(),
                    test.when.clone(),
                    test.then.clone(),
                    test.requirements.join(", "),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Test",
                "Story",
                "Kind",
                "Given",
                "When",
                "Then",
                "Requirements",
            ],
            &rows,
        );
        out.push('\n');
    }
    out.push_str("## Fixtures\n\n");
    let fixtures: Vec<String> = architecture::entity_models(spec)
        .iter()
        .map(|model| format!("`{}` factory with fields {} (valid by default; one builder per invalid case of {})", snake(&model.name), model.fields_or_question(), if model.requirements.is_empty() { "its rules".to_owned() } else { model.requirements.join(", ") }))
        .collect();
    out.push_str(&report::bullets(
        &fixtures,
        "No key entities: fixtures follow from the data model once it exists.",
    ));
    out.push_str("## Coverage Targets\n\n");
    let untested: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| {
            !tests
                .iter()
                .any(|test| test.requirements.contains(&requirement.id))
        })
        .map(|requirement| requirement.id.clone())
        .collect();
    out.push_str(&format!(
        "- Every acceptance scenario has exactly one acceptance test ({} planned).\n- Every functional requirement has at least one test; without a scenario test so far: {}.\n- Line coverage ≥ 80% on services and models; every limit tested at, below and above it.\n- Every measurable success criterion has a measurement test in CI or in a release checklist.\n\n",
        tests.iter().filter(|test| test.kind == "acceptance").count(),
        if untested.is_empty() { "none".to_owned() } else { untested.join(", ") }
    ));
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    let missing = spec
        .stories
        .iter()
        .filter(|story| story.scenarios.is_empty())
        .count();
    confidence.subtract(
        0.05 * missing as f64,
        format!("{missing} stor(ies) without scenarios"),
    );
    out.push_str(&confidence.render());
    out
}
