//! The analysts end to end through the backend: every role of the default pipeline on the
//! example feature, stage by stage as the engine would call them, plus hostile inputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stagegate_engine::backend::{AgentRequest, Backend, CallIdentity, CallMaterials, Phase};
use stagegate_engine::event::AgentFailure;
use stagegate_engine::line_comment::LineComment;
use stagegate_engine::prompt::{AgentOutputView, NamedText};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BuiltinAgent;

const SPEC: &str = include_str!("../../../../examples/specs/001-team-photo-albums/spec.md");
const TASKS: &str = include_str!("../../../../examples/specs/001-team-photo-albums/tasks.md");

fn named(name: &str, content: &str) -> NamedText {
    NamedText {
        name: name.to_owned(),
        content: content.to_owned(),
    }
}

fn request(stage: &str, phase: Phase, agent: &str, materials: CallMaterials) -> AgentRequest {
    AgentRequest {
        identity: CallIdentity {
            run_id: "run-1".to_owned(),
            stage: stage.to_owned(),
            phase,
            agent: agent.to_owned(),
            attempt: 1,
            artifact: materials.artifact.clone(),
        },
        prompt: "".into(),
        repo_root: PathBuf::from("/repo"),
        feature_dir: PathBuf::from("/repo/specs/001-team-photo-albums"),
        deadline: Instant::now() + Duration::from_secs(30),
        cancel: CancellationToken::new(),
        memory_limit_bytes: 0,
        output_cap_bytes: 1 << 20,
        kill_grace: Duration::from_secs(2),
        materials: Arc::new(materials),
    }
}

/// The materials of a stage's calls over `inputs`.
fn base(stage: &str, inputs: &[NamedText]) -> CallMaterials {
    let required = match stage {
        "plan" => vec!["plan.md".to_owned(), "planning-summary.md".to_owned()],
        "prep" => vec!["implementation_plan.md".to_owned()],
        _ => vec!["quality_report.md".to_owned()],
    };
    CallMaterials {
        stage_name: format!("stage {stage}"),
        role: "Role".to_owned(),
        task: "Do the task.".to_owned(),
        required,
        inputs: Arc::new(inputs.to_vec()),
        ..CallMaterials::default()
    }
}

const AGENTS: &[(&str, &[&str])] = &[
    (
        "plan",
        &[
            "requirements-analyst",
            "solution-architect",
            "risk-compliance-analyst",
            "estimation-scope-analyst",
        ],
    ),
    (
        "prep",
        &[
            "core-implementer",
            "integrations-engineer",
            "test-engineer",
            "docs-engineer",
        ],
    ),
    (
        "analyze",
        &[
            "completeness-reviewer",
            "feasibility-reviewer",
            "security-reviewer",
            "consistency-reviewer",
        ],
    ),
];

fn reviewer(stage: &str) -> &'static str {
    match stage {
        "plan" => "lead-reviewer-a",
        "prep" => "integration-reviewer-b",
        _ => "lead-reviewer-c",
    }
}

fn synthesizer(stage: &str) -> &'static str {
    match stage {
        "plan" => "lead-synthesizer-a",
        "prep" => "lead-synthesizer-b",
        _ => "lead-synthesizer-c",
    }
}

/// Everything one stage produces: agent outputs, review, artifacts and the QA answer.
struct StageRun {
    discovery: Option<String>,
    outputs: Vec<AgentOutputView>,
    review: String,
    artifacts: Vec<NamedText>,
    qa: String,
}

fn run_stage(
    stage: &str,
    inputs: &[NamedText],
    artifacts: &[&str],
    skip_agent: Option<&str>,
) -> StageRun {
    run_adapted(stage, inputs, artifacts, skip_agent, &Adapted::default())
}

/// The adaptive rules' additions to a stage, as the engine passes them (see
/// `stagegate_engine::adaptive`): guidance per phase and a discovery step before the agents.
#[derive(Default)]
struct Adapted {
    agent: Vec<String>,
    review: Vec<String>,
    synthesis: Vec<String>,
    qa: Vec<String>,
    discovery: bool,
}

/// The engine's guidance lines for uncertain inputs (uncertainty > 70), word for word.
fn uncertain() -> Adapted {
    Adapted {
        agent: vec!["The inputs are uncertain: state every assumption you make explicitly, and give a concrete example for each requirement you discuss.".to_owned()],
        synthesis: vec!["The inputs are uncertain: include an `Assumptions` section listing every assumption explicitly, and a concrete example for each requirement.".to_owned()],
        qa: vec!["The inputs are uncertain: check that the artifacts list their assumptions explicitly and give examples; ask for rework if they do not.".to_owned()],
        discovery: true,
        ..Adapted::default()
    }
}

/// The engine's guidance lines for a complex feature (complexity > 80), word for word.
fn complex() -> Adapted {
    Adapted {
        review: vec!["This feature is complex: review exhaustively — every requirement, every agent's point, every conflict.".to_owned()],
        qa: vec!["This feature is complex: check in detail — trace every requirement id into the artifacts and list each one missing.".to_owned()],
        ..Adapted::default()
    }
}

fn run_adapted(
    stage: &str,
    inputs: &[NamedText],
    artifacts: &[&str],
    skip_agent: Option<&str>,
    adapted: &Adapted,
) -> StageRun {
    let agent = BuiltinAgent::new();
    let discovery = adapted.discovery.then(|| {
        let mut materials = base(stage, inputs);
        materials.role = "Discovery Analyst".to_owned();
        agent.answer(&request(
            stage,
            Phase::Agent,
            "discovery-analyst",
            materials,
        ))
    });
    let agents = AGENTS
        .iter()
        .find(|(id, _)| *id == stage)
        .map(|(_, agents)| *agents)
        .unwrap_or(&[]);
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for id in agents {
        if Some(*id) == skip_agent {
            failures.push(AgentFailure {
                agent: (*id).to_owned(),
                reason: "timed out after 30000 ms".to_owned(),
            });
            continue;
        }
        let materials = CallMaterials {
            guidance: adapted.agent.clone(),
            discovery: discovery.clone(),
            ..base(stage, inputs)
        };
        let text = agent.answer(&request(stage, Phase::Agent, id, materials));
        outputs.push(AgentOutputView {
            agent: (*id).to_owned(),
            role: (*id).to_owned(),
            output: text,
        });
    }
    let review = agent.answer(&request(
        stage,
        Phase::Review,
        reviewer(stage),
        CallMaterials {
            outputs: outputs.as_slice().into(),
            failures: failures.clone(),
            guidance: adapted.review.clone(),
            ..base(stage, inputs)
        },
    ));
    let mut written = Vec::new();
    for name in artifacts {
        let text = agent.answer(&request(
            stage,
            Phase::Synthesis,
            synthesizer(stage),
            CallMaterials {
                outputs: outputs.as_slice().into(),
                failures: failures.clone(),
                review: Some(review.clone()),
                artifact: Some((*name).to_owned()),
                guidance: adapted.synthesis.clone(),
                ..base(stage, inputs)
            },
        ));
        written.push(named(name, &text));
    }
    let qa = agent.answer(&request(
        stage,
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: written.clone(),
            guidance: adapted.qa.clone(),
            ..base(stage, inputs)
        },
    ));
    StageRun {
        discovery,
        outputs,
        review,
        artifacts: written,
        qa,
    }
}

fn confidence_of(text: &str) -> f64 {
    let line = text.lines().last().unwrap_or("");
    let value = line
        .strip_prefix("CONFIDENCE: ")
        .unwrap_or_else(|| panic!("no confidence line: {line}"));
    assert_eq!(value.len(), 4, "{value}");
    value.parse().expect("a number")
}

fn all_ids() -> Vec<String> {
    let mut ids: Vec<String> = (1..=11).map(|n| format!("FR-{n:03}")).collect();
    ids.extend((1..=5).map(|n| format!("SC-{n:03}")));
    ids
}

#[test]
fn stage_a_analysts_review_synthesis_and_qa() {
    let inputs = [named("spec.md", SPEC)];
    let run = run_stage(
        "plan",
        &inputs,
        &[
            "plan.md",
            "planning-summary.md",
            "research.md",
            "data-model.md",
            "contracts/",
        ],
        None,
    );
    for output in &run.outputs {
        let confidence = confidence_of(&output.output);
        assert!((0.1..=0.95).contains(&confidence), "{}", output.agent);
        assert!(
            confidence < 0.9,
            "two open questions lower it: {}",
            output.agent
        );
    }
    let requirements = &run.outputs[0].output;
    for id in all_ids() {
        assert!(
            requirements.contains(&format!("| {id} |")),
            "{id} not traced:\n{requirements}"
        );
    }
    assert!(requirements.contains("NEEDS CLARIFICATION: notification channel"));
    assert!(requirements.contains("| FR-008 |"));
    for section in [
        "## Objectives",
        "## Success Metrics",
        "## Dependencies",
        "## Constraints",
        "## Open Questions",
    ] {
        assert!(requirements.contains(section), "{section}");
    }
    let architect = &run.outputs[1].output;
    for section in [
        "## Components",
        "## Data Model",
        "## Interfaces",
        "## Alternatives and Trade-offs",
    ] {
        assert!(architect.contains(section), "{section}");
    }
    assert!(architect.contains("**Share Link**"));
    let risks = &run.outputs[2].output;
    assert!(risks.contains("Authentication and access control"));
    assert!(risks.contains("Personal data and privacy"));
    assert!(risks.contains("## Edge Cases"));
    let estimate = &run.outputs[3].output;
    assert!(
        estimate.contains("P1 stories (MVP)") && estimate.contains("Duration: NEEDS CLARIFICATION")
    );
    assert!(
        !estimate.contains("person-day") && !estimate.contains(" days"),
        "{estimate}"
    );

    assert!(
        run.review.contains("## Coverage by Agent") && run.review.contains("## Synthesis Guidance")
    );
    let plan = &run.artifacts[0].content;
    for heading in [
        "# Implementation Plan: Team Photo Albums",
        "## Summary",
        "## Technical Context",
        "## Constitution Check",
        "## Project Structure",
        "## Complexity Tracking",
    ] {
        assert!(plan.contains(heading), "{heading}\n{plan}");
    }
    assert!(
        plan.contains("**Problem**")
            && plan.contains("**Solution**")
            && plan.contains("**Implementation**")
    );
    for id in all_ids() {
        assert!(plan.contains(&id), "{id}");
    }
    let research = &run.artifacts[2].content;
    assert!(research.contains("in-app only") && research.contains("**Decision**"));
    let data_model = &run.artifacts[3].content;
    assert!(data_model.contains("## Share Link") && data_model.contains("**Relationships**"));
    assert_eq!(run.artifacts[4].content, "SKIP");
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn stage_b_from_the_approved_plan() {
    let plan = run_stage("plan", &[named("spec.md", SPEC)], &["plan.md"], None).artifacts[0]
        .content
        .clone();
    let inputs = [named("spec.md", SPEC), named("plan.md", &plan)];
    let run = run_stage(
        "prep",
        &inputs,
        &["implementation_plan.md", "test_fixtures/"],
        None,
    );
    let core = &run.outputs[0].output;
    assert!(core.contains("## Modules and Files"), "{core}");
    let integrations = &run.outputs[1].output;
    assert!(integrations.contains("## API Contracts") && integrations.contains("## Configuration"));
    assert!(integrations.contains("fr_002.max_mb"), "{integrations}");
    let tests = &run.outputs[2].output;
    assert!(
        tests.contains("a signed-in team member"),
        "one test per scenario keeps its Given"
    );
    assert_eq!(tests.matches("| acceptance |").count(), 10);
    assert!(run.outputs[3].output.contains("## Migration Notes"));
    let implementation = &run.artifacts[0].content;
    for heading in ["## Approach", "## Tasks", "## Dependencies"] {
        assert!(implementation.contains(heading), "{heading}");
    }
    assert!(implementation.contains("- [ ] T001"), "{implementation}");
    assert!(implementation.contains("[US1]"));
    assert_eq!(run.artifacts[1].content, "SKIP");
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn stage_c_quality_review() {
    let plan = run_stage("plan", &[named("spec.md", SPEC)], &["plan.md"], None).artifacts[0]
        .content
        .clone();
    let inputs = [
        named("spec.md", SPEC),
        named("plan.md", &plan),
        named("tasks.md", TASKS),
    ];
    let run = run_stage(
        "analyze",
        &inputs,
        &[
            "quality_report.md",
            "coverage_report.html",
            "security_scan.json",
        ],
        None,
    );
    let header = "| ID | Category | Severity | Location | Summary | Recommendation |";
    let mut categories = std::collections::BTreeSet::new();
    for output in &run.outputs {
        assert!(output.output.contains("## Metrics"), "{}", output.agent);
        assert!(output.output.contains("Coverage %"), "{}", output.agent);
        for category in [
            "Duplication",
            "Ambiguity",
            "Underspecification",
            "Constitution Alignment",
            "Coverage Gap",
            "Inconsistency",
        ] {
            if output.output.contains(&format!("| {category} |")) {
                categories.insert(category);
            }
        }
        if !output.output.contains("No findings in this scope") {
            assert!(output.output.contains(header), "{}", output.agent);
        }
    }
    assert!(
        categories.contains("Ambiguity") && categories.contains("Coverage Gap"),
        "{categories:?}"
    );
    let consistency = &run.outputs[3].output;
    assert!(
        consistency.contains("NEEDS CLARIFICATION: notification channel"),
        "{consistency}"
    );
    assert!(
        run.review.contains("## Prioritized Issues"),
        "{}",
        run.review
    );
    let first_severity = run
        .review
        .lines()
        .find(|line| line.starts_with("| P1 |"))
        .expect("a first issue");
    assert!(
        first_severity.contains("HIGH") || first_severity.contains("CRITICAL"),
        "{first_severity}"
    );
    let report = &run.artifacts[0].content;
    for heading in [
        "## Issues",
        "## Impact",
        "## Resolution",
        "## Coverage",
        "## Metrics",
    ] {
        assert!(report.contains(heading), "{heading}");
    }
    assert!(report.contains("- Total Requirements: 16"), "{report}");
    assert!(report.contains("- Total Tasks: 16"));
    let html = &run.artifacts[1].content;
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("FR-011"));
    let json: serde_json::Value =
        serde_json::from_str(&run.artifacts[2].content).expect("valid JSON");
    assert!(
        json["risks"]
            .as_array()
            .is_some_and(|risks| !risks.is_empty())
    );
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn same_input_same_bytes() {
    let inputs = [named("spec.md", SPEC), named("tasks.md", TASKS)];
    for (stage, _) in AGENTS {
        let first = run_stage(
            stage,
            &inputs,
            &["plan.md", "implementation_plan.md", "quality_report.md"],
            None,
        );
        let second = run_stage(
            stage,
            &inputs,
            &["plan.md", "implementation_plan.md", "quality_report.md"],
            None,
        );
        for (a, b) in first.outputs.iter().zip(&second.outputs) {
            assert_eq!(a.output, b.output, "{}", a.agent);
        }
        assert_eq!(first.review, second.review);
        for (a, b) in first.artifacts.iter().zip(&second.artifacts) {
            assert_eq!(a.content, b.content, "{}", a.name);
        }
        assert_eq!(first.qa, second.qa);
    }
}

#[test]
fn a_failed_agent_is_a_gap_and_the_plan_still_passes() {
    let run = run_stage(
        "plan",
        &[named("spec.md", SPEC)],
        &["plan.md", "planning-summary.md"],
        Some("requirements-analyst"),
    );
    assert!(
        run.review.contains("`requirements-analyst` failed"),
        "{}",
        run.review
    );
    assert!(
        run.artifacts[0]
            .content
            .contains("`requirements-analyst` failed")
    );
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn qa_asks_for_rework_on_missing_structure_and_the_rework_answers_it() {
    let agent = BuiltinAgent::new();
    let inputs = [named("spec.md", SPEC)];
    let broken = named(
        "plan.md",
        "# Implementation Plan: x\n\n## Summary\n\nFR-001 only.\n\n## Technical Context\n\n",
    );
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: vec![broken],
            ..base("plan", &inputs)
        },
    ));
    assert!(qa.ends_with("VERDICT: REWORK\n"), "{qa}");
    assert!(qa.contains("lacks the required section `## Constitution Check`"));
    assert!(qa.contains("section `## Technical Context` is empty"));
    assert!(qa.contains("does not trace FR-002"));
    assert!(qa.contains("planning-summary.md is missing"));
    let (verdict, feedback) = stagegate_engine::qa_check::parse_verdict(&qa);
    assert_eq!(verdict, stagegate_engine::event::Verdict::Rework);

    let reworked = agent.answer(&request(
        "plan",
        Phase::Synthesis,
        "lead-synthesizer-a",
        CallMaterials {
            artifact: Some("plan.md".to_owned()),
            feedback: Some(feedback),
            previous: Some("old".to_owned()),
            ..base("plan", &inputs)
        },
    ));
    assert!(reworked.contains("## Revisions"), "{reworked}");
    assert!(
        reworked.contains("> plan.md does not trace FR-002"),
        "{reworked}"
    );
    assert!(
        reworked.contains("FR-002 is traced in this artifact, as spec.md defines it.")
            && reworked.contains("Changed since the previous round")
            && reworked.contains("none of the change comes from the feedback"),
        "{reworked}"
    );
}

#[test]
fn a_rework_answers_each_line_comment_honestly() {
    let agent = BuiltinAgent::new();
    let inputs = [named("spec.md", SPEC)];
    let first = agent.answer(&request(
        "plan",
        Phase::Synthesis,
        "lead-synthesizer-a",
        CallMaterials {
            artifact: Some("plan.md".to_owned()),
            ..base("plan", &inputs)
        },
    ));
    let kept_line = first
        .lines()
        .find(|line| line.starts_with("## "))
        .expect("plan.md has headings")
        .to_owned();
    let comment = |first_line: u32, quoted: &str, text: &str| LineComment {
        artifact: "plan.md".to_owned(),
        first_line,
        last_line: first_line,
        quoted: quoted.to_owned(),
        comment: text.to_owned(),
    };
    let reworked = agent.answer(&request(
        "plan",
        Phase::Synthesis,
        "lead-synthesizer-a",
        CallMaterials {
            artifact: Some("plan.md".to_owned()),
            previous: Some(first.clone()),
            comments: vec![
                comment(3, &kept_line, "Make this section shorter."),
                comment(7, "a line no version holds", "Trace FR-002 here."),
            ],
            ..base("plan", &inputs)
        },
    ));
    let answers = &reworked[reworked.find("## Review comments").expect("answered")..];
    assert!(
        answers.contains("1. `plan.md:3`: Make this section shorter.\n\n   Not changed:"),
        "{answers}"
    );
    let second = &answers[answers
        .find("2. `plan.md:7`: Trace FR-002 here.")
        .expect("second")..];
    assert!(
        second.contains("did not follow the comment")
            && second.contains("FR-002 traced in this artifact, as spec.md defines it."),
        "{answers}"
    );
}

#[test]
fn unknown_agents_fall_back_by_phase_and_role() {
    let agent = BuiltinAgent::new();
    let inputs = [named("spec.md", SPEC)];
    let mut materials = base("security-audit", &inputs);
    materials.role = "Threat Modeler".to_owned();
    let threat = agent.answer(&request(
        "security-audit",
        Phase::Agent,
        "threat-modeler",
        materials,
    ));
    assert!(threat.contains("## Risks"), "{threat}");
    let mut materials = base("security-audit", &inputs);
    materials.role = "Librarian".to_owned();
    materials.task = "Catalogue the terms the feature uses".to_owned();
    let other = agent.answer(&request(
        "security-audit",
        Phase::Agent,
        "librarian",
        materials,
    ));
    assert!(other.contains("## Task") && other.ends_with('\n'));
    confidence_of(&other);
    let mut materials = base("security-audit", &inputs);
    materials.artifact = Some("security_audit.md".to_owned());
    let audit = agent.answer(&request(
        "security-audit",
        Phase::Synthesis,
        "lead-synthesizer-c",
        materials,
    ));
    assert!(
        audit.starts_with("# Security audit: Team Photo Albums"),
        "{audit}"
    );
}

#[test]
fn hostile_inputs_never_panic() {
    let mut big = String::new();
    while big.len() < 2 << 20 {
        big.push_str("- **FR-001**: System MUST be fast and secure [NEEDS CLARIFICATION: ???\r\n### User Story 1 (Priority: P1)\r\n1. Given x When y Then z\r\n");
    }
    let odd = [
        String::new(),
        "\0\u{1}\u{2}binary".to_owned(),
        "{\"not\": \"markdown\"}".to_owned(),
        "# Feature Specification: ünïcödé ✓\n\n- **FR-1**: é[NEEDS CLARIFICATION".to_owned(),
        "|||\n```\n- [ ] T1 [US\n## \n### User Story (Priority: P)\n1. Given".to_owned(),
        big,
    ];
    let agent = BuiltinAgent::new();
    for content in &odd {
        let inputs = [
            named("spec.md", content),
            named("tasks.md", content),
            named("plan.md", content),
            named("plan-template.md", content),
            named("implementation_plan-template.md", content),
        ];
        for (stage, agents) in AGENTS {
            for id in *agents {
                let text = agent.answer(&request(stage, Phase::Agent, id, base(stage, &inputs)));
                confidence_of(&text);
            }
            for artifact in [
                "plan.md",
                "planning-summary.md",
                "research.md",
                "data-model.md",
                "implementation_plan.md",
                "quality_report.md",
                "coverage_report.html",
                "security_scan.json",
            ] {
                let mut materials = base(stage, &inputs);
                materials.artifact = Some(artifact.to_owned());
                materials.feedback = Some(content.clone());
                let text = agent.answer(&request(
                    stage,
                    Phase::Synthesis,
                    synthesizer(stage),
                    materials,
                ));
                assert!(!text.is_empty());
            }
            let review = agent.answer(&request(
                stage,
                Phase::Review,
                reviewer(stage),
                base(stage, &inputs),
            ));
            confidence_of(&review);
            let mut materials = base(stage, &inputs);
            materials.artifacts = vec![
                named("plan.md", content),
                named("security_scan.json", content),
            ];
            let qa = agent.answer(&request(stage, Phase::Qa, "main-agent", materials));
            assert!(qa.ends_with("VERDICT: PASS\n") || qa.ends_with("VERDICT: REWORK\n"));
        }
    }
}

#[tokio::test]
async fn the_backend_answers_and_honours_cancellation() {
    let agent = BuiltinAgent::new();
    assert_eq!(agent.kind(), "builtin");
    let inputs = [named("spec.md", SPEC)];
    let outcome = agent
        .run(request(
            "plan",
            Phase::Agent,
            "requirements-analyst",
            base("plan", &inputs),
        ))
        .await;
    assert!(
        outcome
            .result
            .expect("an answer")
            .contains("# Requirements Analysis")
    );
    let cancelled = request(
        "plan",
        Phase::Agent,
        "requirements-analyst",
        base("plan", &inputs),
    );
    cancelled.cancel.cancel();
    let outcome = agent.run(cancelled).await;
    assert_eq!(
        outcome.result,
        Err(stagegate_engine::backend::Failure::Cancelled)
    );
}

/// A spec like the e2e test's uncertain one: markers in every requirement, vague words, no
/// scenarios, no success criteria, one stated assumption.
fn uncertain_spec() -> String {
    let mut spec = String::from(
        "# Feature Specification: Smart Inbox\n\n**Feature Branch**: `002-smart-inbox`\n\n## User Scenarios & Testing\n\n",
    );
    for story in 1..=2 {
        spec.push_str(&format!(
            "### User Story {story} - A fast, intuitive inbox {story} (Priority: P{story})\n\nA user wants a robust and seamless inbox view built on an experimental engine.\n\n"
        ));
    }
    spec.push_str("## Requirements\n\n### Functional Requirements\n\n");
    for number in 1..=4 {
        spec.push_str(&format!(
            "- **FR-{number:03}**: System MUST sort messages in a fast, scalable way [NEEDS CLARIFICATION: sorting rule {number} not specified].\n"
        ));
    }
    spec.push_str("- **FR-005**: System MUST notify users of new mail via [NEEDS CLARIFICATION: channel - in-app only, email, or both?].\n");
    spec.push_str("\n## Assumptions\n\n- The engine is experimental; a spike will evaluate it.\n");
    spec
}

/// The text of a `## heading` section (up to the next `## ` heading), if the text has it.
fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n## {heading}\n"))? + 1;
    let body = &text[start + heading.len() + 4..];
    Some(body.find("\n## ").map_or(body, |end| &body[..end]))
}

#[test]
fn the_discovery_analyst_lists_unknowns_assumptions_and_questions() {
    let agent = BuiltinAgent::new();
    let spec = uncertain_spec();
    let inputs = [named("spec.md", &spec)];
    let mut materials = base("plan", &inputs);
    materials.role = "Discovery Analyst".to_owned();
    let answer = agent.answer(&request(
        "plan",
        Phase::Agent,
        "discovery-analyst",
        materials.clone(),
    ));
    assert!(answer.starts_with("# Discovery: Smart Inbox"), "{answer}");
    let unknowns = section(&answer, "Unknowns").expect("## Unknowns");
    assert!(
        unknowns.contains("[NEEDS CLARIFICATION: sorting rule 1 not specified]")
            && unknowns.contains("| FR-001 |"),
        "{unknowns}"
    );
    assert!(unknowns.contains("\"fast\" is stated without a number"));
    assert!(
        unknowns.contains("No acceptance scenarios") && unknowns.contains("No success criteria")
    );
    let assumptions = section(&answer, "Assumptions").expect("## Assumptions");
    assert!(assumptions.contains("- Stated in spec.md: The engine is experimental"));
    assert!(
        assumptions.contains("FR-005 — [NEEDS CLARIFICATION: channel - in-app only, email, or both?]: Assume: in-app only"),
        "{assumptions}"
    );
    assert!(assumptions.contains("Assume: \"fast\" means p95 under 2 s"));
    let questions = section(&answer, "Questions for the person").expect("## Questions");
    assert!(
        questions.contains("1. FR-001: sorting rule 1 not specified (U1)"),
        "{questions}"
    );
    let confidence = confidence_of(&answer);
    assert!(confidence < 0.7, "{confidence}");
    // The same request gives the same bytes; another analyst's id is not discovery.
    assert_eq!(
        answer,
        agent.answer(&request(
            "plan",
            Phase::Agent,
            "discovery-analyst",
            materials
        ))
    );
}

#[test]
fn role_agents_reuse_the_discovery_assumptions() {
    let spec = uncertain_spec();
    let inputs = [named("spec.md", &spec)];
    let plain = run_stage("plan", &inputs, &[], None);
    for output in &plain.outputs {
        assert!(
            !output.output.contains("## Assumptions Used"),
            "{}",
            output.agent
        );
        assert!(!output.output.contains("## Examples"), "{}", output.agent);
    }
    let run = run_adapted("plan", &inputs, &[], None, &uncertain());
    let discovery = run.discovery.as_deref().expect("a discovery answer");
    let first = discovery
        .lines()
        .find(|line| line.starts_with("- ") && line.contains("Assume: \"fast\""))
        .expect("a discovery assumption");
    for output in &run.outputs {
        let used = section(&output.output, "Assumptions Used").unwrap_or_else(|| {
            panic!("{} states no assumptions:\n{}", output.agent, output.output)
        });
        assert!(used.contains("From the discovery step"), "{}", output.agent);
        assert!(used.contains(first), "{}: {used}", output.agent);
        assert!(output.output.contains("## Examples\n\n- FR-001 ("));
        confidence_of(&output.output);
    }
    // A discovery answer of another shape (a real model's) is reused as it stands.
    let agent = BuiltinAgent::new();
    let materials = CallMaterials {
        discovery: Some(
            "# Discovery\n\n## Assumptions\n\n- Assume: mail is sorted by date.\n".to_owned(),
        ),
        ..base("plan", &inputs)
    };
    let answer = agent.answer(&request(
        "plan",
        Phase::Agent,
        "requirements-analyst",
        materials,
    ));
    let used = section(&answer, "Assumptions Used").expect("assumptions used");
    assert!(used.contains("- Assume: mail is sorted by date."), "{used}");
}

#[test]
fn synthesis_states_assumptions_and_examples_only_under_the_guidance() {
    let inputs = [named("spec.md", SPEC)];
    let documents = [
        "plan.md",
        "planning-summary.md",
        "research.md",
        "data-model.md",
    ];
    let plain = run_stage("plan", &inputs, &documents, None);
    for artifact in &plain.artifacts {
        assert!(
            !artifact.content.contains("## Assumptions")
                && !artifact.content.contains("## Examples"),
            "{}",
            artifact.name
        );
    }
    let adapted = Adapted {
        synthesis: uncertain().synthesis,
        ..Adapted::default()
    };
    let run = run_adapted("plan", &inputs, &documents, None, &adapted);
    for artifact in &run.artifacts {
        let assumptions = section(&artifact.content, "Assumptions").unwrap_or_else(|| {
            panic!(
                "{} has no Assumptions:\n{}",
                artifact.name, artifact.content
            )
        });
        // The spec's own five, and one per open question.
        assert!(
            assumptions
                .contains("- Stated in spec.md: Members sign in with the team's existing accounts"),
            "{assumptions}"
        );
        assert_eq!(assumptions.matches("- Stated in spec.md: ").count(), 5);
        assert!(
            assumptions.contains("FR-008 — [NEEDS CLARIFICATION: notification channel"),
            "{assumptions}"
        );
        assert!(assumptions.contains("FR-009 — [NEEDS CLARIFICATION: retention period"));
        let examples = section(&artifact.content, "Examples").expect("## Examples");
        for number in 1..=11 {
            assert!(
                examples.contains(&format!("- FR-{number:03} (")),
                "FR-{number:03} has no example in {}",
                artifact.name
            );
        }
        // Sources still close the document.
        assert!(
            artifact.content.find("## Assumptions") < artifact.content.find("## Sources"),
            "{}",
            artifact.name
        );
    }
    let plan = &run.artifacts[0].content;
    assert!(
        plan.contains(
            "- FR-001 (US1-AS1): given a signed-in team member, when they create an album named"
        ),
        "{plan}"
    );
    // The uncertain spec: the spec's assumption and every marker carried into plan and summary.
    let spec = uncertain_spec();
    let run = run_adapted(
        "plan",
        &[named("spec.md", &spec)],
        &["plan.md", "planning-summary.md"],
        None,
        &uncertain(),
    );
    for artifact in &run.artifacts {
        let assumptions = section(&artifact.content, "Assumptions").expect("## Assumptions");
        assert!(assumptions.contains("The engine is experimental"));
        for number in 1..=4 {
            assert!(assumptions.contains(&format!(
                "FR-{number:03} — [NEEDS CLARIFICATION: sorting rule {number} not specified]: Assume: "
            )));
        }
        let examples = section(&artifact.content, "Examples").expect("## Examples");
        assert!(
            examples.contains("- FR-001 (synthetic): given")
                && examples.contains("the system sorts messages"),
            "{examples}"
        );
    }
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn qa_under_the_guidance_asks_for_missing_assumptions_and_examples() {
    let agent = BuiltinAgent::new();
    let spec = uncertain_spec();
    let inputs = [named("spec.md", &spec)];
    // A synthesizer that ignored the guidance: structurally complete, no assumptions.
    let plain = run_stage("plan", &inputs, &["plan.md", "planning-summary.md"], None);
    assert!(plain.qa.ends_with("VERDICT: PASS\n"), "{}", plain.qa);
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: plain.artifacts.clone(),
            guidance: uncertain().qa,
            ..base("plan", &inputs)
        },
    ));
    assert!(qa.ends_with("VERDICT: REWORK\n"), "{qa}");
    for name in ["plan.md", "planning-summary.md"] {
        assert!(
            qa.contains(&format!("- {name} lacks an `## Assumptions` section")),
            "{qa}"
        );
        assert!(
            qa.contains(&format!("- {name} gives no concrete examples")),
            "{qa}"
        );
    }
    // Examples missing for some requirements of plan.md are named.
    let mut partial = plain.artifacts.clone();
    partial[0].content.push_str(
        "\n## Assumptions\n\n- Assume: sorted by date.\n\n## Examples\n\n- FR-001: given mail, when it arrives, then it is on top.\n",
    );
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: partial,
            guidance: uncertain().qa,
            ..base("plan", &inputs)
        },
    ));
    assert!(
        qa.contains("- plan.md gives no example for FR-002, FR-003, FR-004, FR-005."),
        "{qa}"
    );
    assert!(!qa.contains("- plan.md lacks an `## Assumptions`"), "{qa}");
    // The rework answers QA's points, and our own synthesizer's output passes.
    let (_, feedback) = stagegate_engine::qa_check::parse_verdict(&qa);
    let reworked = agent.answer(&request(
        "plan",
        Phase::Synthesis,
        "lead-synthesizer-a",
        CallMaterials {
            artifact: Some("plan.md".to_owned()),
            feedback: Some(feedback),
            guidance: uncertain().synthesis,
            ..base("plan", &inputs)
        },
    ));
    assert!(reworked.contains("## Assumptions") && reworked.contains("## Revisions"));
    let run = run_adapted(
        "plan",
        &inputs,
        &["plan.md", "planning-summary.md", "research.md"],
        None,
        &uncertain(),
    );
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
    assert!(
        run.qa
            .contains("| plan.md | `## Assumptions` present and filled (uncertain inputs) | ok |")
    );
    assert!(
        run.qa
            .contains("| plan.md | an example for every FR of the spec | ok |")
    );
}

#[test]
fn guided_stages_pass_their_own_qa_everywhere_and_stay_deterministic() {
    let plan = run_stage("plan", &[named("spec.md", SPEC)], &["plan.md"], None).artifacts[0]
        .content
        .clone();
    let inputs = [
        named("spec.md", SPEC),
        named("plan.md", &plan),
        named("tasks.md", TASKS),
    ];
    for (stage, artifacts) in [
        (
            "plan",
            &[
                "plan.md",
                "planning-summary.md",
                "research.md",
                "data-model.md",
            ][..],
        ),
        ("prep", &["implementation_plan.md", "test_fixtures/"][..]),
        (
            "analyze",
            &[
                "quality_report.md",
                "coverage_report.html",
                "security_scan.json",
            ][..],
        ),
    ] {
        let first = run_adapted(stage, &inputs, artifacts, None, &uncertain());
        let second = run_adapted(stage, &inputs, artifacts, None, &uncertain());
        assert!(
            first.qa.ends_with("VERDICT: PASS\n"),
            "{stage}: {}",
            first.qa
        );
        assert_eq!(first.discovery, second.discovery);
        for (a, b) in first.outputs.iter().zip(&second.outputs) {
            assert_eq!(a.output, b.output, "{}", a.agent);
        }
        assert_eq!(first.review, second.review);
        for (a, b) in first.artifacts.iter().zip(&second.artifacts) {
            assert_eq!(a.content, b.content, "{}", a.name);
            if a.name.ends_with(".md") {
                assert!(a.content.contains("\n## Assumptions\n"), "{}", a.name);
            } else {
                assert!(!a.content.contains("## Assumptions"), "{}", a.name);
            }
        }
        assert_eq!(first.qa, second.qa);
    }
}

#[test]
fn a_complex_feature_gets_an_exhaustive_review_and_a_detailed_qa() {
    let inputs = [named("spec.md", SPEC)];
    let plain = run_stage("plan", &inputs, &["plan.md", "planning-summary.md"], None);
    assert!(!plain.review.contains("## Requirement Coverage"));
    assert!(!plain.qa.contains("## Requirement Trace"));
    let run = run_adapted(
        "plan",
        &inputs,
        &["plan.md", "planning-summary.md"],
        None,
        &complex(),
    );
    let coverage = section(&run.review, "Requirement Coverage").expect("coverage table");
    for id in all_ids() {
        assert!(coverage.contains(&format!("| {id} |")), "{id}: {coverage}");
    }
    assert!(coverage.contains("requirements-analyst"), "{coverage}");
    let trace = section(&run.qa, "Requirement Trace").expect("a trace list");
    for id in all_ids() {
        let row = trace
            .lines()
            .find(|line| line.starts_with(&format!("| {id} |")))
            .unwrap_or_else(|| panic!("{id} not listed: {trace}"));
        assert!(
            row.contains("plan.md") && row.ends_with("| traced |"),
            "{row}"
        );
    }
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
}

#[test]
fn odd_inputs_under_every_guidance_never_panic() {
    let both = Adapted {
        review: complex().review,
        qa: [uncertain().qa, complex().qa].concat(),
        ..uncertain()
    };
    for content in [
        "",
        "\0\u{1}binary",
        "# Feature Specification: x\n\n- **FR-1**: é [NEEDS CLARIFICATION",
        "### User Story (Priority: P)\n\n- **FR-001**: [NEEDS CLARIFICATION: ]\n- **SC-001**: all\n## Assumptions\n\n- \n",
    ] {
        let inputs = [named("spec.md", content)];
        for (stage, artifacts) in [
            ("plan", &["plan.md", "planning-summary.md", "notes.md"][..]),
            ("analyze", &["quality_report.md", "security_scan.json"][..]),
        ] {
            let run = run_adapted(stage, &inputs, artifacts, None, &both);
            confidence_of(run.discovery.as_deref().expect("discovery"));
            for output in &run.outputs {
                confidence_of(&output.output);
            }
            // A spec of which nothing could be read gives a plan that states nothing: QA
            // says so rather than passing it.
            assert!(
                run.qa.ends_with("VERDICT: PASS\n")
                    || run
                        .qa
                        .contains("No user story and no requirement could be read"),
                "{content:?}: {}",
                run.qa
            );
        }
    }
}

/// `STAGEGATE_PRINT_ANALYSTS=1 cargo test -p stagegate-analysts print -- --nocapture` shows
/// every output of the example feature, for reading them; `=uncertain` runs them under the
/// uncertain-inputs guidance with a discovery step, `=complex` under the complex-feature one.
#[test]
fn print_outputs_when_asked() {
    let Some(mode) = std::env::var_os("STAGEGATE_PRINT_ANALYSTS") else {
        return;
    };
    let adapted = match mode.to_str() {
        Some("uncertain") => uncertain(),
        Some("complex") => complex(),
        _ => Adapted::default(),
    };
    let run_stage = |stage: &str, inputs: &[NamedText], artifacts: &[&str], skip: Option<&str>| {
        run_adapted(stage, inputs, artifacts, skip, &adapted)
    };
    let plan = run_stage(
        "plan",
        &[named("spec.md", SPEC)],
        &[
            "plan.md",
            "planning-summary.md",
            "research.md",
            "data-model.md",
        ],
        None,
    );
    let plan_text = plan.artifacts[0].content.clone();
    let prep = run_stage(
        "prep",
        &[named("spec.md", SPEC), named("plan.md", &plan_text)],
        &["implementation_plan.md"],
        None,
    );
    let analyze = run_stage(
        "analyze",
        &[
            named("spec.md", SPEC),
            named("plan.md", &plan_text),
            named("tasks.md", TASKS),
        ],
        &["quality_report.md", "security_scan.json"],
        None,
    );
    for run in [plan, prep, analyze] {
        if let Some(discovery) = &run.discovery {
            println!("=================== discovery-analyst\n{discovery}");
        }
        for output in &run.outputs {
            println!("=================== {}\n{}", output.agent, output.output);
        }
        println!("=================== review\n{}", run.review);
        for artifact in &run.artifacts {
            println!(
                "=================== {}\n{}",
                artifact.name, artifact.content
            );
        }
        println!("=================== qa\n{}", run.qa);
    }
}

/// spec-kit's plan template (`templates/plan-template.md`) as a project adapted it: `Summary`
/// renamed `Executive Summary`, the Constitution Check moved after the Project Structure, and
/// its own `## Rollout` section.
const PROJECT_PLAN_TEMPLATE: &str = "# Implementation Plan: [FEATURE]\n\n\
    **Branch**: `[###-feature-name]` | **Date**: [DATE] | **Spec**: [link]\n\
    **Input**: Feature specification from `/specs/[###-feature-name]/spec.md`\n\n\
    **Note**: This template is filled in by the `/speckit.plan` command.\n\n\
    ## Executive Summary\n\n[Extract from feature spec: primary requirement + technical approach from research]\n\n\
    ## Technical Context\n\n<!--\n  ACTION REQUIRED: Replace the content in this section with the technical details\n  for the project.\n-->\n\n\
    **Language/Version**: [e.g., Python 3.11, Swift 5.9, Rust 1.75 or NEEDS CLARIFICATION]\n\
    **Primary Dependencies**: [e.g., FastAPI, UIKit, LLVM or NEEDS CLARIFICATION]\n\
    **Target Platform**: [e.g., Linux server, iOS 15+, WASM or NEEDS CLARIFICATION]\n\n\
    ## Project Structure\n\n### Documentation (this feature)\n\n```text\nspecs/[###-feature]/\n\
    ├── plan.md              # This file (/speckit.plan command output)\n\
    └── tasks.md             # Phase 2 output (/speckit.tasks command)\n```\n\n\
    ### Source Code (repository root)\n<!--\n  ACTION REQUIRED: Replace the placeholder tree below with the concrete layout.\n-->\n\n\
    ```text\n# [REMOVE IF UNUSED] Option 1: Single project (DEFAULT)\nsrc/\n├── models/\n└── services/\n```\n\n\
    **Structure Decision**: [Document the selected structure]\n\n\
    ## Constitution Check\n\n*GATE: Must pass before Phase 0 research. Re-check after Phase 1 design.*\n\n\
    [Gates determined based on constitution file]\n\n\
    ## Rollout\n\n<!-- ACTION REQUIRED: say how [FEATURE] reaches users. -->\n\n\
    - Feature flag for [FEATURE]: [NEEDS CLARIFICATION: flag name]\n- Rollback plan: [describe]\n\n\
    ## Complexity Tracking\n\n> **Fill ONLY if Constitution Check has violations that must be justified**\n\n\
    | Violation | Why Needed | Simpler Alternative Rejected Because |\n|-----------|------------|-------------------------------------|\n\
    | [e.g., 4th project] | [current need] | [why direct simpler insufficient] |\n";

/// The `## ` (or `### `) headings of a document outside code fences, in order.
fn headings_of(text: &str, prefix: &str) -> Vec<String> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        } else if !fence && let Some(heading) = line.strip_prefix(prefix) {
            out.push(heading.to_owned());
        }
    }
    out
}

/// `(heading, body)` of each `## ` section.
fn sections_of(text: &str) -> Vec<(String, String)> {
    text.split("\n## ")
        .skip(1)
        .map(|part| {
            let (heading, body) = part.split_once('\n').unwrap_or((part, ""));
            (heading.to_owned(), body.trim().to_owned())
        })
        .collect()
}

#[test]
fn plan_follows_the_projects_spec_kit_template() {
    let plain = run_stage("plan", &[named("spec.md", SPEC)], &["plan.md"], None);
    let inputs = [
        named("spec.md", SPEC),
        named("plan-template.md", PROJECT_PLAN_TEMPLATE),
    ];
    let run = run_stage("plan", &inputs, &["plan.md", "planning-summary.md"], None);
    let plan = &run.artifacts[0].content;
    assert!(
        plan.starts_with(
            "# Implementation Plan: Team Photo Albums\n\n**Branch**: `001-team-photo-albums`"
        ),
        "{plan}"
    );
    // The template's headings first, in its order and under its words; then the plan's own.
    assert_eq!(
        headings_of(plan, "## "),
        vec![
            "Executive Summary",
            "Technical Context",
            "Project Structure",
            "Constitution Check",
            "Rollout",
            "Complexity Tracking",
            "Architecture",
            "Requirements Traceability",
            "Implementation Phases",
            "Risks",
            "Open Questions",
            "Sources",
        ]
    );
    assert_eq!(
        headings_of(plan, "### "),
        vec![
            "Documentation (this feature)",
            "Source Code (repository root)"
        ]
    );
    // Nothing lost: every section of the plan without a template is there with its content.
    let followed = sections_of(plan);
    for (heading, body) in sections_of(&plain.artifacts[0].content) {
        assert!(
            followed.iter().any(|(_, other)| *other == body),
            "`## {heading}` kept: {plan}"
        );
    }
    let summary = section(plan, "Executive Summary").unwrap_or_default();
    assert!(summary.contains("**Problem**"), "{summary}");
    // The unknown section is derived from the template's guidance, its open items kept.
    let rollout = section(plan, "Rollout").unwrap_or_default();
    assert!(
        rollout.contains("No content derived from the inputs"),
        "{rollout}"
    );
    assert!(
        rollout.contains("- Feature flag for Team Photo Albums: [NEEDS CLARIFICATION: flag name]"),
        "{rollout}"
    );
    assert!(
        !plan.contains("<!--") && !plan.contains("ACTION REQUIRED"),
        "{plan}"
    );
    assert!(
        !plan.contains("[FEATURE]") && !plan.contains("Option 1"),
        "{plan}"
    );
    // The template's example words are not the feature's: the Technical Context is unchanged.
    assert_eq!(
        section(plan, "Technical Context"),
        section(&plain.artifacts[0].content, "Technical Context")
    );
    // QA checks the template's headings, and the synthesizer's own plan passes.
    assert!(
        run.qa.contains("`## Rollout` present and filled | ok"),
        "{}",
        run.qa
    );
    assert!(run.qa.ends_with("VERDICT: PASS\n"), "{}", run.qa);
    // The same inputs give the same bytes.
    let again = run_stage("plan", &inputs, &["plan.md", "planning-summary.md"], None);
    assert_eq!(again.artifacts[0].content, *plan);
    assert_eq!(again.qa, run.qa);
    // A template of another artifact leaves plan.md as it was without one.
    let other = run_stage(
        "plan",
        &[
            named("spec.md", SPEC),
            named(
                "tasks-template.md",
                "# Tasks: [FEATURE]\n\n## Phase 1: Setup\n",
            ),
        ],
        &["plan.md"],
        None,
    );
    assert_eq!(other.artifacts[0].content, plain.artifacts[0].content);
}

#[test]
fn qa_asks_for_the_templates_headings() {
    let agent = BuiltinAgent::new();
    let inputs = [
        named("spec.md", SPEC),
        named("plan-template.md", PROJECT_PLAN_TEMPLATE),
    ];
    let run = run_stage("plan", &inputs, &["plan.md", "planning-summary.md"], None);
    let plan = &run.artifacts[0].content;
    let start = plan.find("## Rollout\n").unwrap_or(0);
    let end = plan.find("## Complexity Tracking\n").unwrap_or(0);
    assert!(start < end);
    let without_rollout = format!("{}{}", &plan[..start], &plan[end..]);
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: vec![named("plan.md", &without_rollout), run.artifacts[1].clone()],
            ..base("plan", &inputs)
        },
    ));
    assert!(qa.ends_with("VERDICT: REWORK\n"), "{qa}");
    assert!(
        qa.contains("plan.md lacks the required section `## Rollout` (the project's plan-template.md has it)."),
        "{qa}"
    );
    // The template's headings replace the built-in list: `Summary` is found in
    // `Executive Summary`, and the built-in order is not asked for.
    assert!(!qa.contains("`## Summary`"), "{qa}");
    // Without the template, the same plan passes the built-in checks.
    let builtin = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: vec![named("plan.md", &without_rollout), run.artifacts[1].clone()],
            ..base("plan", &[named("spec.md", SPEC)])
        },
    ));
    assert!(builtin.ends_with("VERDICT: PASS\n"), "{builtin}");
    // A plan in another order is warned about, not sent back.
    let reordered = plan.replacen("## Executive Summary\n", "## Notes\n", 1)
        + "\n## Executive Summary\n\nMoved.\n";
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: vec![named("plan.md", &reordered), run.artifacts[1].clone()],
            ..base("plan", &inputs)
        },
    ));
    assert!(
        qa.contains("not in the order of the project's plan-template.md"),
        "{qa}"
    );
    assert!(qa.ends_with("VERDICT: PASS\n"), "{qa}");
}

#[test]
fn qa_fails_a_plan_that_traces_nothing_of_a_free_form_spec() {
    let agent = BuiltinAgent::new();
    let spec = include_str!("../../../stagegate/tests/fixtures/specs/free-form/spec.md");
    let inputs = [named("spec.md", spec)];
    let headings_only = named(
        "plan.md",
        "# Implementation Plan: Invoice Reminders\n\n## Summary\n\nTo be written.\n\n## Technical Context\n\nTBD.\n\n## Constitution Check\n\nTBD.\n\n## Project Structure\n\nTBD.\n\n## Complexity Tracking\n\nNone.\n",
    );
    let qa = agent.answer(&request(
        "plan",
        Phase::Qa,
        "main-agent",
        CallMaterials {
            artifacts: vec![headings_only],
            ..base("plan", &inputs)
        },
    ));
    assert!(qa.ends_with("VERDICT: REWORK\n"), "{qa}");
    assert!(
        qa.contains("plan.md does not trace DR-001, DR-002, DR-003, DR-004"),
        "{qa}"
    );
}
