//! The built-in offline analysts (the default backend, `builtin`) through every stage of the
//! bundled example, and the adaptive rules their input scores trigger: no model, no network,
//! and, unless a test says otherwise, no `stagegate.toml` at all.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_INPUT_MISSING, FEATURE, Outcome, PLAN_AGENTS, TestRepo,
};

/// The bundled example feature (`examples/specs/001-team-photo-albums`).
const EXAMPLE: &str = "specs/001-team-photo-albums";

/// The categories of `/speckit.analyze` (PRODUCT.md §5).
const CATEGORIES: [&str; 6] = [
    "Duplication",
    "Ambiguity",
    "Underspecification",
    "Constitution Alignment",
    "Coverage Gap",
    "Inconsistency",
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A repository with no `stagegate.toml` (so every agent is on the default `builtin` backend)
/// and no feature yet.
fn bare_repo() -> TestRepo {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    std::fs::remove_dir_all(repo.path("specs")).expect("remove the fixture feature");
    repo
}

/// A repository whose one feature is the bundled example, with the example constitution.
fn example_repo() -> TestRepo {
    let repo = bare_repo();
    let source = examples().join("specs/001-team-photo-albums");
    for entry in std::fs::read_dir(&source).expect("read the example feature") {
        let entry = entry.expect("an example file");
        std::fs::create_dir_all(repo.path(EXAMPLE)).expect("create the feature directory");
        std::fs::copy(entry.path(), repo.path(EXAMPLE).join(entry.file_name()))
            .expect("copy the example feature");
    }
    let constitution =
        std::fs::read_to_string(examples().join("constitution.md")).expect("the constitution");
    repo.write(".specify/memory/constitution.md", &constitution);
    repo
}

/// A repository with `[defaults] backend = "builtin"` written out and `specs/001-demo/spec.md`
/// holding exactly `spec` (bytes, not necessarily UTF-8).
fn repo_with_spec(spec: &[u8]) -> TestRepo {
    let repo = bare_repo();
    repo.write("stagegate.toml", "[defaults]\nbackend = \"builtin\"\n");
    std::fs::create_dir_all(repo.path(FEATURE)).expect("create the feature directory");
    std::fs::write(repo.path(&format!("{FEATURE}/spec.md")), spec).expect("write spec.md");
    repo
}

/// The run id of a `run --json` (its events carry it; stderr stays quiet).
fn json_run_id(events: &[Value]) -> String {
    events
        .first()
        .and_then(|event| event["run_id"].as_str())
        .unwrap_or_else(|| panic!("no run id in the events: {events:#?}"))
        .to_owned()
}

/// The JSON events of a `run --json`.
fn events(outcome: &Outcome) -> Vec<Value> {
    outcome.json_lines()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == kind)
        .collect()
}

/// The `adjusted` event that changed `setting`.
fn adjustment<'a>(events: &'a [Value], setting: &str) -> &'a Value {
    of_kind(events, "adjusted")
        .into_iter()
        .find(|event| event["setting"] == setting)
        .unwrap_or_else(|| panic!("no {setting} adjustment among {events:#?}"))
}

/// The stage's QA passed (every `qa_verdict` of the run is a pass) and nothing panicked.
fn assert_qa_passed(outcome: &Outcome, stage: &str) {
    let events = events(outcome);
    let verdicts = of_kind(&events, "qa_verdict");
    assert!(!verdicts.is_empty(), "no qa_verdict event: {outcome:?}");
    for verdict in verdicts {
        assert_eq!(verdict["stage"], stage, "{verdict:#}");
        assert_eq!(verdict["verdict"], "pass", "QA did not pass: {verdict:#}");
    }
    assert!(!outcome.stderr.contains("panicked"), "{outcome:?}");
}

/// Every `PREFIX-###` id in `text` (`FR-001`, `SC-004`, …).
fn ids(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if digits.len() == 3 {
            found.insert(format!("{prefix}{digits}"));
        }
        rest = after;
    }
    found
}

fn has_heading(markdown: &str, heading: &str) -> bool {
    markdown
        .lines()
        .any(|line| line.trim_end() == heading || line.starts_with(&format!("{heading} ")))
}

/// The files staged by `stage` in `run`, by name.
fn staged(repo: &TestRepo, run: &str, stage: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo.run_dir(run).join(stage).join("staged");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| {
            let entry = entry.expect("a staged file");
            let content = std::fs::read(entry.path()).unwrap_or_default();
            (entry.file_name().to_string_lossy().into_owned(), content)
        })
        .collect();
    files.sort();
    files
}

fn staged_text(repo: &TestRepo, run: &str, stage: &str, name: &str) -> String {
    let path = repo.run_dir(run).join(stage).join("staged").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

// ----- 1. the whole pipeline on the bundled example -----------------------------------------

#[test]
fn the_bundled_example_goes_through_every_stage_offline() {
    let repo = example_repo();
    let spec = repo.read(&format!("{EXAMPLE}/spec.md"));
    let requirements = ids(&spec, "FR-");
    assert_eq!(
        requirements.len(),
        11,
        "the example's FR ids: {requirements:?}"
    );

    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let plan = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_qa_passed(&plan, "plan");
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("{EXAMPLE}/plan.md"))
        .stdout_has(&format!("{EXAMPLE}/planning-summary.md"));

    let plan_md = repo.read(&format!("{EXAMPLE}/plan.md"));
    for heading in [
        "## Summary",
        "## Technical Context",
        "## Constitution Check",
        "## Project Structure",
        "## Complexity Tracking",
    ] {
        assert!(
            has_heading(&plan_md, heading),
            "plan.md has no {heading}:\n{plan_md}"
        );
    }
    let missing: Vec<_> = requirements
        .iter()
        .filter(|id| !plan_md.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "plan.md never names {missing:?}:\n{plan_md}"
    );

    let prep = repo
        .run(&["run", "prep", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_qa_passed(&prep, "prep");
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("{EXAMPLE}/implementation_plan.md"));
    let implementation_plan = repo.read(&format!("{EXAMPLE}/implementation_plan.md"));
    assert!(
        implementation_plan
            .lines()
            .any(|line| line.trim_start().starts_with("- [ ] T")),
        "implementation_plan.md has no task line:\n{implementation_plan}"
    );

    repo.run(&["approve", "implementation"])
        .expect_code(EXIT_DONE);
    let analyze = repo
        .run(&["run", "analyze", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_qa_passed(&analyze, "analyze");
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("{EXAMPLE}/quality_report.md"));

    let report = repo.read(&format!("{EXAMPLE}/quality_report.md"));
    for category in CATEGORIES {
        assert!(
            report.contains(category),
            "quality_report.md does not name {category}:\n{report}"
        );
    }
    assert!(
        ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
            .iter()
            .any(|severity| report.contains(&format!("| {severity} |"))),
        "quality_report.md rates no finding by severity:\n{report}"
    );
    let coverage_header = report
        .lines()
        .position(|line| line.starts_with("| Requirement Key |"))
        .unwrap_or_else(|| panic!("quality_report.md has no coverage table:\n{report}"));
    let coverage: Vec<&str> = report
        .lines()
        .skip(coverage_header + 2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    for id in &requirements {
        assert!(
            coverage
                .iter()
                .any(|row| row.starts_with(&format!("| {id} |"))),
            "the coverage table has no row for {id}:\n{report}"
        );
    }

    // Every run completed: three gates, each approved.
    let status = repo.status();
    let runs = status["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{status:#}");
    for run in runs {
        assert_eq!(run["state"], "completed", "{status:#}");
        assert!(run["pending_gate"].is_null(), "{status:#}");
    }
}

#[test]
fn the_builtin_analysts_write_the_same_bytes_every_time() {
    let repo = example_repo();
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let outcome = repo
            .run(&["run", "plan", "--no-input", "--refresh", "--json"])
            .expect_code(EXIT_AWAITING_DECISION);
        let events = events(&outcome);
        assert!(
            of_kind(&events, "cache_hit").is_empty(),
            "--refresh used the cache: {outcome:?}"
        );
        runs.push(json_run_id(&events));
    }
    let (first, second) = (&runs[0], &runs[1]);
    assert_ne!(first, second);
    let first_files = staged(&repo, first, "plan");
    let second_files = staged(&repo, second, "plan");
    assert!(
        first_files.iter().any(|(name, _)| name == "plan.md"),
        "plan.md is not staged: {:?}",
        first_files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    let names = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first_files), names(&second_files));
    for ((name, one), (_, other)) in first_files.iter().zip(&second_files) {
        assert!(
            one == other,
            "{name} differs between runs {first} and {second}:\n--- {first} ---\n{}\n--- {second} ---\n{}",
            String::from_utf8_lossy(one),
            String::from_utf8_lossy(other)
        );
    }
}

// ----- 2. high complexity -------------------------------------------------------------------

/// A spec built to score far above 80 for complexity (and low for uncertainty): 80
/// requirements each naming an integration, a known service and compliance words, 12 stories
/// with acceptance scenarios, 24 entities and measurable success criteria.
fn complex_spec() -> String {
    const INTEGRATIONS: [&str; 6] = [
        "send an email notification",
        "call the payment provider webhook",
        "sign the member in through OAuth SSO",
        "sync the ledger with the third-party API",
        "export the records to the external archive",
        "notify the finance team by SMS",
    ];
    const SERVICES: [&str; 16] = [
        "PostgreSQL",
        "Redis",
        "Kafka",
        "RabbitMQ",
        "S3",
        "Stripe",
        "Twilio",
        "SendGrid",
        "Auth0",
        "Firebase",
        "Elasticsearch",
        "Slack",
        "GitHub",
        "MongoDB",
        "MySQL",
        "OpenAI",
    ];
    const COMPLIANCE: [&str; 5] = [
        "keeping a GDPR audit record",
        "within PCI DSS scope",
        "under HIPAA retention rules",
        "with the member's recorded consent for personal data",
        "meeting WCAG accessibility rules",
    ];
    let mut spec = String::from(
        "# Feature Specification: Regulated Billing Hub\n\n**Feature Branch**: `001-demo`\n**Status**: Draft\n\n## User Scenarios & Testing *(mandatory)*\n\n",
    );
    for story in 1..=12 {
        let _ = write!(
            spec,
            "### User Story {story} - Billing flow {story} (Priority: P{})\n\nA finance clerk handles billing flow {story} end to end.\n\n**Acceptance Scenarios**:\n\n1. **Given** an open invoice, **When** the clerk completes flow {story}, **Then** the invoice shows state {story} within 5 seconds.\n\n---\n\n",
            story % 3 + 1
        );
    }
    spec.push_str("## Requirements *(mandatory)*\n\n### Functional Requirements\n\n");
    for number in 1..=80 {
        let _ = writeln!(
            spec,
            "- **FR-{number:03}**: System MUST {} for invoice batch {number} using {}, {}.",
            INTEGRATIONS[number % INTEGRATIONS.len()],
            SERVICES[number % SERVICES.len()],
            COMPLIANCE[number % COMPLIANCE.len()],
        );
    }
    spec.push_str("\n### Key Entities *(include if feature involves data)*\n\n");
    for entity in 1..=24 {
        let _ = writeln!(
            spec,
            "- **Ledger Entity {entity}**: a billing record of kind {entity}; has an owner and an amount."
        );
    }
    spec.push_str("\n## Success Criteria *(mandatory)*\n\n### Measurable Outcomes\n\n");
    for criterion in 1..=5 {
        let _ = writeln!(
            spec,
            "- **SC-{criterion:03}**: 99% of invoices of batch {criterion} settle within {criterion} minutes."
        );
    }
    spec
}

/// The integer at the start of a `NN/100 (...)` score explanation.
fn score_of(parts: &str) -> u64 {
    parts
        .split('/')
        .next()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a score explanation: {parts}"))
}

#[test]
fn a_complex_spec_lowers_concurrency_and_lengthens_timeouts_with_reasons() {
    let repo = repo_with_spec(complex_spec().as_bytes());
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    let events = events(&outcome);
    let run = json_run_id(&events);

    let scored = of_kind(&events, "inputs_scored");
    assert_eq!(scored.len(), 1, "{events:#?}");
    let complexity = scored[0]["complexity"]
        .as_u64()
        .expect("a complexity score");
    assert!(
        complexity > 80,
        "the spec scored only {complexity}: {:#}",
        scored[0]
    );
    let parts = scored[0]["complexity_parts"]
        .as_str()
        .expect("complexity parts");
    assert_eq!(score_of(parts), complexity, "{parts}");
    assert!(parts.contains("requirements 80 →"), "{parts}");
    assert!(parts.contains("user stories 12 →"), "{parts}");
    assert!(parts.contains("entities 24 →"), "{parts}");

    // The adjustments come before any agent starts.
    let first_adjustment = events.iter().position(|event| event["event"] == "adjusted");
    let first_attempt = events
        .iter()
        .position(|event| event["event"] == "attempt_started");
    assert!(
        first_adjustment < first_attempt && first_adjustment.is_some(),
        "{events:#?}"
    );
    let concurrency = adjustment(&events, "concurrency");
    assert_eq!(concurrency["stage"], "plan");
    assert_eq!(concurrency["from"], "3", "{concurrency:#}");
    assert_eq!(concurrency["to"], "2", "{concurrency:#}");
    let reason = format!("complexity {complexity} > 80");
    assert_eq!(concurrency["reason"], reason.as_str(), "{concurrency:#}");
    let timeouts = adjustment(&events, "timeouts");
    assert_eq!(timeouts["from"], "30s", "{timeouts:#}");
    assert_eq!(timeouts["to"], "45s", "{timeouts:#}");
    assert!(
        timeouts["reason"]
            .as_str()
            .is_some_and(|text| text.starts_with(&reason)),
        "{timeouts:#}"
    );
    assert_eq!(adjustment(&events, "synthesis_iterations")["to"], "2");
    assert!(
        adjustment(&events, "review and QA")["to"]
            .as_str()
            .is_some_and(|to| to.contains("exhaustive review")),
    );
    // Complexity alone: no discovery step.
    assert!(
        !events
            .iter()
            .any(|event| event["setting"] == "discovery step"),
        "{events:#?}"
    );

    // `status RUN` shows the score with its parts and every adjustment with its reason.
    let status = repo
        .run(&["status", &run])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("complexity  {parts}"))
        .stdout_has(&format!("adjusted concurrency 3 → 2: {reason}"))
        .stdout_has(&format!("adjusted timeouts 30s → 45s: {reason}"));
    assert!(status.stdout.contains("uncertainty "), "{status:?}");
    let json = repo.run_status(&run);
    let shaping = json["scores_and_adjustments"]
        .as_array()
        .expect("scores_and_adjustments");
    assert!(
        shaping
            .iter()
            .any(|entry| entry["setting"] == "concurrency"),
        "{json:#}"
    );
    assert!(
        shaping
            .iter()
            .any(|entry| entry["complexity"] == complexity),
        "{json:#}"
    );

    // The planning summary tells the person why the stage ran as it did.
    let summary = staged_text(&repo, &run, "plan", "planning-summary.md");
    assert!(
        has_heading(&summary, "## Adaptive adjustments"),
        "no Adaptive adjustments section:\n{summary}"
    );
    assert!(
        summary.contains(&format!("- concurrency 3 → 2: {reason}")),
        "{summary}"
    );
    assert!(summary.contains("- timeouts 30s → 45s"), "{summary}");
}

// ----- 3. high uncertainty ------------------------------------------------------------------

/// A spec built to score above 70 for uncertainty: clarification markers everywhere, vague
/// adjectives, stories without acceptance scenarios, no success criteria, experimental tech.
fn uncertain_spec() -> String {
    let mut spec = String::from(
        "# Feature Specification: Smart Inbox\n\n**Feature Branch**: `001-demo`\n**Status**: Draft\n\n## User Scenarios & Testing *(mandatory)*\n\n",
    );
    for story in 1..=4 {
        let _ = write!(
            spec,
            "### User Story {story} - A fast, intuitive and user-friendly inbox {story} (Priority: P{story})\n\nA user wants a robust, scalable and seamless inbox view {story} built on an experimental prototype engine.\n\n---\n\n",
        );
    }
    spec.push_str("## Requirements *(mandatory)*\n\n### Functional Requirements\n\n");
    for number in 1..=12 {
        let _ = writeln!(
            spec,
            "- **FR-{number:03}**: System MUST sort messages in a fast, scalable, intuitive, robust and user-friendly way [NEEDS CLARIFICATION: sorting rule {number} not specified] using a new technology still to be decided [NEEDS CLARIFICATION: engine for rule {number}].",
        );
    }
    spec.push_str("\n## Assumptions\n\n- The engine is experimental; a spike will evaluate it.\n");
    spec
}

#[test]
fn an_uncertain_spec_adds_a_discovery_step_whose_findings_reach_every_agent() {
    let repo = repo_with_spec(uncertain_spec().as_bytes());
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    let events = events(&outcome);
    let run = json_run_id(&events);

    let scored = of_kind(&events, "inputs_scored");
    let uncertainty = scored[0]["uncertainty"]
        .as_u64()
        .expect("an uncertainty score");
    assert!(
        uncertainty > 70,
        "the spec scored only {uncertainty}: {:#}",
        scored[0]
    );
    let discovery = adjustment(&events, "discovery step");
    assert_eq!(
        discovery["reason"],
        format!("uncertainty {uncertainty} > 70").as_str(),
        "{discovery:#}"
    );
    assert!(
        discovery["to"]
            .as_str()
            .is_some_and(|to| to.contains("discovery-analyst")),
        "{discovery:#}"
    );

    // The discovery analyst starts, and finishes, before any of the four role agents starts.
    let started: Vec<&str> = of_kind(&events, "attempt_started")
        .into_iter()
        .filter(|event| event["phase"] == "agent")
        .map(|event| event["agent"].as_str().expect("an agent id"))
        .collect();
    assert_eq!(started.first(), Some(&"discovery-analyst"), "{started:?}");
    for agent in PLAN_AGENTS {
        assert!(
            started.contains(&agent),
            "{agent} never started: {started:?}"
        );
    }
    let position = |kind: &str, agent: &str| {
        events
            .iter()
            .position(|event| event["event"] == kind && event["agent"] == agent)
            .unwrap_or_else(|| panic!("no {kind} of {agent}: {events:#?}"))
    };
    let discovery_done = position("attempt_finished", "discovery-analyst");
    for agent in PLAN_AGENTS {
        assert!(
            discovery_done < position("attempt_started", agent),
            "{agent} started before the discovery step finished: {events:#?}"
        );
    }

    // `show RUN` lists the discovery attempt as an agent-phase attempt, first.
    let listing = repo.run(&["show", &run]).expect_code(EXIT_DONE);
    let agent_rows: Vec<Vec<&str>> = listing
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 3 && fields[1] == "agent")
        .collect();
    assert_eq!(
        agent_rows.first().map(|fields| fields[2]),
        Some("discovery-analyst"),
        "{listing:?}"
    );
    assert_eq!(agent_rows.len(), 5, "{listing:?}");

    // Every role agent's prompt carries the discovery step's output.
    let discovery_output = repo
        .run(&[
            "show",
            &run,
            "--agent",
            "discovery-analyst",
            "--file",
            "output",
        ])
        .expect_code(EXIT_DONE)
        .stdout;
    let telling_line = discovery_output
        .lines()
        .find(|line| line.trim().len() > 20 && !line.starts_with("CONFIDENCE"))
        .unwrap_or_else(|| panic!("the discovery output is empty: {discovery_output}"))
        .to_owned();
    for agent in PLAN_AGENTS {
        let prompt = repo
            .run(&["show", &run, "--agent", agent, "--file", "prompt"])
            .expect_code(EXIT_DONE)
            .stdout;
        assert!(
            prompt.contains("Unknowns and assumptions"),
            "{agent}'s prompt has no discovery section:\n{prompt}"
        );
        assert!(
            prompt.contains(&telling_line),
            "{agent}'s prompt lacks the discovery output ({telling_line:?}):\n{prompt}"
        );
    }
    assert!(
        adjustment(&events, "discovery step")["stage"] == "plan",
        "{events:#?}"
    );
}

/// Uncertain inputs call for explicit assumptions in the artifacts (PRODUCT.md §6), and the QA
/// guidance asks for rework when they are missing.
#[test]
fn an_uncertain_spec_gets_its_assumptions_stated_in_the_plan() {
    let repo = repo_with_spec(uncertain_spec().as_bytes());
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    let events = events(&outcome);
    adjustment(&events, "discovery step");
    let run = json_run_id(&events);
    let artifacts = ["plan.md", "planning-summary.md"]
        .map(|name| staged_text(&repo, &run, "plan", name))
        .join("\n");
    assert!(
        artifacts
            .lines()
            .any(|line| line.starts_with('#') && line.contains("Assumptions")),
        "no Assumptions section in plan.md or planning-summary.md:\n{artifacts}"
    );
    assert!(
        artifacts.contains("The engine is experimental"),
        "the spec's assumption is not carried forward:\n{artifacts}"
    );
}

// ----- 4. bad input still reaches the gate ---------------------------------------------------

/// `approve spec`, then `run plan --no-input` stops at the gate with plan.md staged, and the
/// analysts' reading notes (what they could not read) include `note`: in the requirements
/// analyst's output and in the review the synthesizer worked from.
fn plans_to_the_gate(spec: &[u8], what: &str, note: Option<&str>) -> (TestRepo, String) {
    let repo = repo_with_spec(spec);
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let outcome = repo.run(&["run", "plan", "--no-input"]);
    assert_eq!(
        outcome.code, EXIT_AWAITING_DECISION,
        "{what}: the plan stage did not reach its gate: {outcome:?}"
    );
    assert!(!outcome.stderr.contains("panicked"), "{what}: {outcome:?}");
    let run = outcome.run_id();
    let plan = staged_text(&repo, &run, "plan", "plan.md");
    assert!(!plan.trim().is_empty(), "{what}: plan.md is empty");
    if let Some(note) = note {
        for dir in ["requirements-analyst", "lead-reviewer-a"] {
            let output = repo
                .attempt_text(&run, "plan", dir, 1, "output")
                .unwrap_or_else(|| panic!("{what}: {dir} recorded no output"));
            let notes = output
                .split("## Reading Notes")
                .nth(1)
                .unwrap_or_else(|| panic!("{what}: {dir} has no reading notes:\n{output}"));
            assert!(
                notes.contains(note),
                "{what}: {dir}'s reading notes do not say {note:?}:\n{output}"
            );
        }
    }
    (repo, run)
}

#[test]
fn a_spec_with_bytes_that_are_not_utf8_still_reaches_the_gate() {
    // Prose with a few bad bytes: read, with a note on what could not be decoded.
    plans_to_the_gate(
        b"Team photo albums\n\nPeople upload photos to the Caf\xe9 album \xff\xfe and share them \x80\x81 by link; \xc3\x28 comments follow.\n",
        "prose with bytes that are not UTF-8",
        Some("not valid UTF-8"),
    );
    // Mostly bytes: nothing to read, and the analysts say so.
    let mut binary = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    binary.extend((0u8..=255).cycle().take(4096));
    plans_to_the_gate(&binary, "binary bytes", Some("does not look like text"));
}

#[test]
fn a_spec_in_another_structure_still_reaches_the_gate() {
    plans_to_the_gate(
        b"We want a small web app where a team keeps shared photo albums, shares them by link and comments on photos.\n",
        "a single paragraph",
        Some("no markdown headings"),
    );
}

#[test]
fn a_two_megabyte_spec_still_reaches_the_gate() {
    let mut spec = String::from(
        "# Feature Specification: Huge\n\n## Requirements *(mandatory)*\n\n### Functional Requirements\n\n",
    );
    let mut number = 0;
    while spec.len() < 2 * 1024 * 1024 {
        number += 1;
        let _ = writeln!(
            spec,
            "- **FR-{number:03}**: System MUST keep album {number} of the team visible to its members, with every photo, comment and share link it holds, in upload order."
        );
    }
    plans_to_the_gate(
        spec.as_bytes(),
        "a 2 MB spec",
        Some(&format!(
            "of {number} functional requirements were analyzed"
        )),
    );
}

#[test]
fn a_spec_with_crlf_line_ends_and_duplicate_ids_still_reaches_the_gate() {
    let example = std::fs::read_to_string(examples().join("specs/001-team-photo-albums/spec.md"))
        .expect("the example spec");
    let crlf = example.replace('\n', "\r\n");
    let (repo, run) = plans_to_the_gate(crlf.as_bytes(), "CRLF line ends", None);
    // CRLF is read like LF: every requirement is still traced into plan.md.
    let plan = staged_text(&repo, &run, "plan", "plan.md");
    for id in ids(&example, "FR-") {
        assert!(
            plan.contains(&id),
            "CRLF: plan.md never names {id}:\n{plan}"
        );
    }
    let requirements = repo
        .run(&[
            "show",
            &run,
            "--agent",
            "requirements-analyst",
            "--file",
            "output",
        ])
        .expect_code(EXIT_DONE)
        .stdout;
    assert!(
        !requirements.contains("## Reading Notes"),
        "CRLF: the example spec read with notes:\n{requirements}"
    );

    let duplicated = example.replace(
        "- **FR-011**:",
        "- **FR-003**: System MUST also keep thumbnails for deleted photos.\n- **FR-011**:",
    );
    plans_to_the_gate(
        duplicated.as_bytes(),
        "duplicate FR ids",
        Some("FR-003 is defined more than once"),
    );
}

#[test]
fn an_empty_spec_is_refused_before_any_agent_runs() {
    let repo = repo_with_spec(b" \n\n\t\n");
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_INPUT_MISSING)
        .stderr_has("spec.md is empty");
    assert_eq!(repo.run_count(), 0);
}

#[test]
fn malformed_task_lines_still_reach_the_analyze_gate() {
    let repo = example_repo();
    let tasks = "# Tasks: Team Photo Albums\n\n## Phase 1\n\n\
        - [ ] T\n\
        - [x]T002 no space after the box\n\
        - [?] T003 an unknown mark\n\
        - [ ] T004 [P [US1 brackets that never close\n\
        - [ ] T00A not a number\n\
        * [X] t006 lower-case id\n\
        - [ ]\n\
        - [ ] T007 [US99] a story that does not exist\n\
        - [ ] T007 the same id again\n\
        \t- [ ] T008\ttabs\tinside\n\
        - [ ] T009 ünïcödé 🚀 and FR-999 which is not in the spec\n\
        - [] T010 an empty box\n\
        T011 no box at all\n";
    repo.write(&format!("{EXAMPLE}/tasks.md"), tasks);
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    repo.run(&["approve"]).expect_code(EXIT_DONE);
    repo.run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    repo.run(&["approve"]).expect_code(EXIT_DONE);
    repo.run(&["approve", "implementation"])
        .expect_code(EXIT_DONE);
    let outcome = repo
        .run(&["run", "analyze", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(!outcome.stderr.contains("panicked"), "{outcome:?}");
    let run = outcome.run_id();
    // What could not be read is reported, not hidden.
    let completeness = repo
        .run(&[
            "show",
            &run,
            "--agent",
            "completeness-reviewer",
            "--file",
            "output",
        ])
        .expect_code(EXIT_DONE)
        .stdout;
    assert!(
        completeness.contains("T007 is used twice"),
        "the duplicated task id is not reported:\n{completeness}"
    );
    let report = staged_text(&repo, &run, "analyze", "quality_report.md");
    assert!(
        report.contains("| Requirement Key |"),
        "no coverage table:\n{report}"
    );
}
