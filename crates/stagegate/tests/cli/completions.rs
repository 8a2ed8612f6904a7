//! `stagegate completions SHELL` and `stagegate man` through the real binary: generated from the
//! clap definitions, so every subcommand appears in each script and in the man page.

use std::time::Duration;

use assert_cmd::Command;

/// Every subcommand a person can type (the hidden supervisor mode is not one).
const SUBCOMMANDS: &[&str] = &[
    "run",
    "approve",
    "reject",
    "modify",
    "resume",
    "status",
    "unlock",
    "restore",
    "metrics",
    "cache",
    "runs",
    "show",
    "report",
    "serve",
    "init",
    "completions",
    "man",
];

/// Runs `stagegate ARGS...` outside any repository; its stdout, after checking it exited 0
/// with nothing on stderr.
fn stdout_of(args: &[&str]) -> String {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let output = Command::cargo_bin("stagegate")
        .expect("the stagegate binary")
        .current_dir(scratch.path())
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run stagegate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?} wrote on stderr: {stderr}");
    // Nothing else is written: these commands read no repository.
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("read the scratch directory")
        .collect();
    assert!(left.is_empty(), "{args:?} left files behind: {left:?}");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn every_shell_completes_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("stagegate"), "{shell}: {script}");
        for subcommand in SUBCOMMANDS {
            assert!(
                script.contains(subcommand),
                "{shell}'s script does not mention {subcommand}"
            );
        }
        // Options of a subcommand are completed too, not only the names.
        assert!(script.contains("no-input"), "{shell}: no --no-input");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let output = Command::cargo_bin("stagegate")
        .expect("the stagegate binary")
        .args(["completions", "tcsh"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run stagegate");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("possible values"));
}

#[test]
fn the_man_page_is_roff_with_every_subcommand_and_the_exit_codes() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH stagegate 1"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for subcommand in SUBCOMMANDS {
        assert!(
            page.contains(&format!("stagegate\\-{subcommand}(1)")),
            "the man page does not list {subcommand}"
        );
    }
    assert!(page.contains("Exit codes:"), "{page}");
}
