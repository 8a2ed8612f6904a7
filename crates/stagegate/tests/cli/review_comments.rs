//! Line comments on the staged artifacts: `stagegate modify RUN --comment plan.md:42 "…"`
//! sends each one (artifact, lines, quoted text, comment) to the synthesizer, records it with
//! the modification, and `status` shows it.

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_USAGE, TestRepo};

fn staged_line(repo: &TestRepo, run: &str, line: usize) -> String {
    let staged = repo.run_dir(run).join("plan/staged/plan.md");
    let content = std::fs::read_to_string(&staged).expect("staged plan.md");
    content
        .lines()
        .nth(line - 1)
        .expect("line exists")
        .to_owned()
}

fn synthesis_prompts(repo: &TestRepo, run: &str) -> Vec<String> {
    repo.prompts_of(run, "plan", "lead-synthesizer-a.plan.md")
}

#[test]
fn two_line_comments_reach_the_synthesizer_with_their_lines_and_are_recorded() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    let first = staged_line(&repo, &run, 1);
    let range: Vec<String> = (2..=3).map(|line| staged_line(&repo, &run, line)).collect();

    repo.run(&[
        "modify",
        &run,
        "--comment",
        "plan.md:1",
        "Name the feature in the title.",
        "--comment",
        "plan.md:2-3",
        "Say who owns this.",
        "--no-input",
    ])
    .expect_code(EXIT_AWAITING_DECISION);

    let prompts = synthesis_prompts(&repo, &run);
    let rework = prompts
        .iter()
        .find(|prompt| prompt.contains("## Line comments on the previous version"))
        .unwrap_or_else(|| panic!("no synthesis prompt carries the comments: {prompts:#?}"));
    assert!(
        rework.contains("### Comment 1: `plan.md` line 1\n"),
        "{rework}"
    );
    assert!(
        rework.contains(&format!(
            "````\n{first}\n````\n\nThe comment: Name the feature in the title."
        )),
        "{rework}"
    );
    assert!(
        rework.contains("### Comment 2: `plan.md` lines 2-3\n"),
        "{rework}"
    );
    assert!(
        rework.contains(&format!(
            "````\n{}\n````\n\nThe comment: Say who owns this.",
            range.join("\n")
        )),
        "{rework}"
    );
    // Comments on plan.md go to plan.md's synthesis only.
    for prompt in repo.prompts_of(&run, "plan", "lead-synthesizer-a.planning-summary.md") {
        assert!(!prompt.contains("Say who owns this."), "{prompt}");
    }

    let status = repo.run_status(&run);
    let comments = status["line_comments"].as_array().expect("line_comments");
    assert_eq!(comments.len(), 2, "{status:#}");
    assert_eq!(comments[0]["round"], 1);
    assert_eq!(comments[0]["comment"]["artifact"], "plan.md");
    assert_eq!(comments[0]["comment"]["first_line"], 1);
    assert_eq!(comments[0]["comment"]["quoted"], first.as_str());
    assert_eq!(comments[1]["comment"]["first_line"], 2);
    assert_eq!(comments[1]["comment"]["last_line"], 3);
    assert_eq!(comments[1]["comment"]["comment"], "Say who owns this.");
    let modification = status["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|decision| decision["kind"] == "modify")
        .expect("a modification");
    assert_eq!(comments[0]["decision_id"], modification["id"]);
    repo.run(&["status", &run])
        .stdout_has("plan.md:1: Name the feature in the title.")
        .stdout_has("plan.md:2-3: Say who owns this.");
    repo.run(&["show", &run])
        .stdout_has("line comments:")
        .stdout_has("round 1 plan.md:2-3: Say who owns this.")
        .stdout_has(&format!("    > {}", range[0]));

    // The report: a timeline per round with the person's wait as a break, the comments with
    // the decision, and the artifacts rendered with the answers to the comments.
    repo.run(&["report", &run, "--html", "report.html"])
        .expect_code(crate::harness::EXIT_DONE);
    let report = repo.read("report.html");
    assert!(report.contains("plan · round 1 · "), "{report}");
    assert!(report.contains("plan · round 2 · "), "{report}");
    assert!(
        report.contains("for a person ⋯ then <b>modify</b>"),
        "{report}"
    );
    assert!(report.contains("<code>plan.md:2-3</code> (round 1): Say who owns this."));
    assert!(report.contains("<h2>Artifacts of plan</h2>"));
    assert_eq!(
        report.matches("class=\"comment-answer").count(),
        2,
        "{report}"
    );
    assert!(!report.contains("<script"), "the report needs no script");
}

#[test]
fn a_comment_on_lines_that_do_not_exist_is_refused_and_records_nothing() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    repo.run(&[
        "modify",
        &run,
        "--comment",
        "plan.md:99999",
        "x",
        "--no-input",
    ])
    .expect_code(EXIT_USAGE)
    .stderr_has("comment on plan.md:99999")
    .stderr_has("hint:");
    repo.run(&["modify", &run, "--comment", "spec.md:1", "x", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("the staged artifacts are");
    repo.run(&["modify", &run, "--comment", "plan.md", "x", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("ARTIFACT:LINE");
    let status = repo.run_status(&run);
    assert_eq!(status["line_comments"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        repo.calls().synthesis_of("plan.md").len(),
        1,
        "no rework ran"
    );
}
