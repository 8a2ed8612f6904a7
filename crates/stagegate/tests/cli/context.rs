//! A prompt over the backend's context budget: what is cut is said in the prompt, in an event
//! and in `status`.

use super::harness::TestRepo;

#[test]
fn a_feature_file_over_the_budget_is_cut_and_the_cut_is_reported() {
    let repo = TestRepo::with_approved_spec()
        .set("stages.notes", "agents", "[\"note-reader\"]")
        .set("stages.notes", "reviewer", "\"lead-reviewer-a\"")
        .set("stages.notes", "synthesizer", "\"lead-synthesizer-a\"")
        .set("stages.notes", "required", "[\"notes-summary.md\"]")
        .set("stages.notes", "optional", "[]")
        .set("stages.notes", "inputs", "[\"spec.md\", \"notes.md\"]")
        .set("agents.note-reader", "role", "\"Note Reader\"");
    // 900 KB of notes: over the 400 KB a command agent's prompt may hold.
    let line = "- a long note about the feature that goes on and on for the budget\n";
    repo.write(
        "specs/001-demo/notes.md",
        &line.repeat(900_000 / line.len()),
    );
    let outcome = repo
        .run(&["run", "notes", "--no-input", "--json"])
        .expect_code(10);
    let run_id = outcome
        .json_lines()
        .iter()
        .find_map(|event| event["run_id"].as_str().map(str::to_owned))
        .expect("a run id");
    let cut = outcome
        .json_lines()
        .into_iter()
        .find(|event| event["event"] == "context_cut" && event["agent"] == "note-reader")
        .expect("a context_cut event for the agent");
    let cuts = cut["cuts"].to_string();
    assert!(cuts.contains("notes.md was cut from"), "{cuts}");
    let prompt = repo
        .run(&[
            "show",
            &run_id,
            "--agent",
            "note-reader",
            "--file",
            "prompt",
        ])
        .expect_code(0)
        .stdout;
    assert!(
        prompt.contains("notes.md was cut from"),
        "the prompt says so"
    );
    assert!(
        prompt.len() < 500_000,
        "the prompt fits: {} bytes",
        prompt.len()
    );
    repo.run(&["status", &run_id])
        .expect_code(0)
        .stdout_has("context of note-reader cut: notes.md was cut from");
}

#[test]
fn the_projects_spec_kit_template_and_constitution_reach_the_synthesizer() {
    let repo = TestRepo::with_approved_spec();
    repo.write(
        ".specify/templates/plan-template.md",
        "# Implementation Plan: [FEATURE]\n\n## Summary\n\n## Our Own Section\n",
    );
    repo.write(
        ".specify/memory/constitution.md",
        "# Constitution\n\n### I. Tests First\n",
    );
    let run = repo.run_plan_to_gate();
    let prompt = repo
        .run(&[
            "show",
            &run,
            "--agent",
            "lead-synthesizer-a.plan.md",
            "--file",
            "prompt",
        ])
        .expect_code(0)
        .stdout;
    assert!(prompt.contains("## Our Own Section"), "the template itself");
    assert!(
        prompt.contains("follow the template's headings"),
        "and the instruction to follow it"
    );
    assert!(prompt.contains("I. Tests First"), "the constitution");
    let summary_prompt = repo
        .run(&[
            "show",
            &run,
            "--agent",
            "lead-synthesizer-a.planning-summary.md",
            "--file",
            "prompt",
        ])
        .expect_code(0)
        .stdout;
    assert!(
        !summary_prompt.contains("follow the template's headings"),
        "only the artifact with a template is told to follow one"
    );
}
