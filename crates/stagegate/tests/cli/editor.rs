//! `stagegate modify RUN` without feedback: the person edits the staged artifacts in $EDITOR;
//! the change is recorded as a diff and the gate asks again.

use std::os::unix::fs::PermissionsExt;

use super::harness::TestRepo;

#[test]
fn an_edit_in_the_editor_is_recorded_as_a_diff_and_published_on_approval() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    // A stand-in editor: appends a line to every file it is given (never through a shell).
    let editor = repo.path("append-editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nfor file in \"$@\"; do printf '\\nEdited by the person.\\n' >> \"$file\"; done\n",
    )
    .expect("write the editor");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let editor = editor.to_string_lossy().into_owned();
    // Not a terminal, so the gate that asks again stops at once (exit 10).
    repo.run_with_env(&["modify", &run], &[("EDITOR", &editor)])
        .expect_code(10);
    let status = repo.run_status(&run);
    let decisions = status["decisions"].as_array().expect("decisions");
    let modify = decisions
        .iter()
        .find(|decision| decision["kind"] == "modify")
        .expect("a modify decision");
    let diff = modify["diff"].as_str().expect("a diff");
    assert!(diff.contains("+Edited by the person."), "{diff}");
    assert!(diff.contains("b/plan.md"), "{diff}");
    repo.run(&["approve", &run]).expect_code(0);
    assert!(
        repo.read("specs/001-demo/plan.md")
            .contains("Edited by the person."),
        "the edited version is what is published"
    );
}

#[test]
fn an_editor_that_fails_records_nothing() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    repo.run_with_env(&["modify", &run], &[("EDITOR", "false")])
        .expect_code(2)
        .stderr_has("nothing was recorded");
    let status = repo.run_status(&run);
    let decisions = status["decisions"].as_array().expect("decisions");
    assert!(decisions.is_empty(), "{decisions:#?}");
}

#[test]
fn no_input_without_feedback_is_refused_and_starts_no_editor() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    // An editor that leaves a mark if it is ever started.
    let editor = repo.path("marking-editor.sh");
    let mark = repo.path("editor-started");
    std::fs::write(&editor, format!("#!/bin/sh\ntouch '{}'\n", mark.display()))
        .expect("write the editor");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let editor = editor.to_string_lossy().into_owned();
    repo.run_with_env(&["modify", &run, "--no-input"], &[("EDITOR", &editor)])
        .expect_code(2)
        .stderr_has("modify --no-input needs --feedback");
    assert!(!mark.exists(), "the editor was started");
    let status = repo.run_status(&run);
    assert!(
        status["decisions"]
            .as_array()
            .expect("decisions")
            .is_empty()
    );
}
