//! Configuration and usage errors (exit 2, pointing at the line), and a stage of one's own.

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_USAGE, FEATURE, Outcome, TestRepo};

/// Writes `stagegate.toml` as given and expects `run plan` to fail with a usage error that
/// names the file and line, recording no run.
fn bad_config(config: &str, line: usize) -> Outcome {
    let repo = TestRepo::with_approved_spec();
    repo.write("stagegate.toml", config);
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has(&format!("stagegate.toml:{line}:"));
    assert!(repo.calls().0.is_empty(), "an agent ran");
    outcome
}

#[test]
fn malformed_toml_is_a_usage_error_naming_the_line() {
    bad_config(
        "[defaults]\nbackend = \"mock\"\n[timeouts\ndefault = \"3s\"\n",
        3,
    );
}

#[test]
fn a_value_of_the_wrong_type_is_a_usage_error_naming_the_line() {
    bad_config(
        "[defaults]\nbackend = \"mock\"\nconcurrency = \"three\"\n",
        3,
    )
    .stderr_has("defaults.concurrency");
}

#[test]
fn an_unknown_backend_on_an_agent_is_a_usage_error_naming_the_line() {
    bad_config(
        "[defaults]\nbackend = \"mock\"\n\n[agents.solution-architect]\nbackend = \"nosuch\"\n",
        5,
    )
    .stderr_has("nosuch");
}

#[test]
fn an_unknown_stage_is_a_usage_error_listing_the_stages() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["run", "nosuch", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("nosuch")
        .stderr_has("plan");
    assert_eq!(repo.run_count(), 0);
}

#[test]
fn a_feature_directory_that_does_not_exist_is_a_usage_error() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["run", "plan", "--feature", "specs/nope", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("specs/nope");
    assert_eq!(repo.run_count(), 0);
    assert!(repo.calls().0.is_empty());
}

#[test]
fn a_stage_defined_in_stagegate_toml_runs_to_its_gate() {
    let repo = TestRepo::with_approved_spec()
        .set(
            "stages.security-audit",
            "agents",
            "[\"threat-modeler\", \"dependency-auditor\"]",
        )
        .set("stages.security-audit", "reviewer", "\"lead-reviewer-c\"")
        .set(
            "stages.security-audit",
            "synthesizer",
            "\"lead-synthesizer-c\"",
        )
        .set(
            "stages.security-audit",
            "required",
            "[\"security_audit.md\"]",
        )
        .set("stages.security-audit", "optional", "[]")
        .set(
            "stages.security-audit",
            "inputs",
            "[\"spec.md\", \"plan.md\"]",
        )
        .set(
            "stages.security-audit",
            "question",
            "\"Security audit complete. Approve to proceed?\"",
        )
        .set("stages.security-audit", "concurrency", "2")
        .set("agents.threat-modeler", "role", "\"Threat Modeler\"")
        .set(
            "agents.threat-modeler",
            "task",
            "\"Model the threats to this feature and how to counter them\"",
        )
        .set(
            "agents.dependency-auditor",
            "role",
            "\"Dependency Auditor\"",
        )
        .set(
            "agents.dependency-auditor",
            "task",
            "\"List third-party dependencies and their risks\"",
        );
    // Its inputs include plan.md, made (and approved) at the plan gate.
    let plan_run = repo.run_plan_to_gate();
    repo.run(&["approve", &plan_run]).expect_code(EXIT_DONE);

    let outcome = repo
        .run(&["run", "security-audit", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Security audit complete. Approve to proceed?");
    let run = outcome.run_id();
    let calls = repo.calls();
    let audit: Vec<_> = calls
        .0
        .iter()
        .filter(|call| call.key.stage == "security-audit")
        .collect();
    let called = |phase: &str, agent: &str| {
        audit
            .iter()
            .any(|call| call.key.phase == phase && call.key.agent == agent)
    };
    assert!(called("agent", "threat-modeler"), "{calls:#?}");
    assert!(called("agent", "dependency-auditor"), "{calls:#?}");
    assert!(called("review", "lead-reviewer-c"), "{calls:#?}");
    assert!(called("synthesis", "lead-synthesizer-c"), "{calls:#?}");
    assert!(called("qa", "main-agent"), "{calls:#?}");
    assert_eq!(
        audit
            .iter()
            .filter(|call| call.key.phase == "agent")
            .count(),
        2
    );
    let prompt = repo.prompt_seen("security-audit", "agent", "threat-modeler", "-", 1);
    assert!(prompt.contains("Threat Modeler"), "{prompt}");
    assert!(
        repo.run_dir(&run)
            .join("security-audit/staged/security_audit.md")
            .is_file()
    );

    repo.run(&["approve"]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/security_audit.md")));
}

#[test]
fn config_names_the_file_read_instead_of_stagegate_toml() {
    let repo = TestRepo::with_approved_spec();
    repo.write("other.toml", "[defaults]\nbackend = 3\n");
    repo.run(&["run", "plan", "--config", "other.toml", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("other.toml:2:")
        .stderr_has("defaults.backend");
    assert_eq!(repo.run_count(), 0);
}

#[test]
fn an_unknown_key_is_a_warning_naming_its_line_with_a_suggestion() {
    let repo = TestRepo::with_approved_spec().set("stages.plan", "concurrensy", "2");
    let line = repo
        .read("stagegate.toml")
        .lines()
        .position(|line| line.starts_with("concurrensy"))
        .expect("the misspelt key")
        + 1;
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has(&format!("stagegate.toml:{line}:"))
        .stderr_has("stages.plan.concurrensy")
        .stderr_has("concurrency");
}

// Issue 12: special files and values that passed validation and then panicked.

/// `mkfifo PATH`.
pub fn make_fifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo is installed");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `args` and expects it to end by itself within ten seconds (a hang fails the test).
fn run_bounded(repo: &TestRepo, args: &[&str]) -> Outcome {
    crate::harness::wait_for_exit(repo.spawn(args), args, std::time::Duration::from_secs(10))
}

#[test]
fn a_fifo_as_stagegate_toml_is_refused_without_hanging() {
    let repo = TestRepo::with_approved_spec();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    make_fifo(&repo.path("stagegate.toml"));
    run_bounded(&repo, &["run", "plan", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("stagegate.toml")
        .stderr_has("FIFO");
    assert!(repo.calls().0.is_empty(), "an agent ran");
}

#[test]
fn a_device_or_directory_as_config_is_refused_without_reading_it() {
    let repo = TestRepo::with_approved_spec();
    run_bounded(
        &repo,
        &["run", "plan", "--no-input", "--config", "/dev/zero"],
    )
    .expect_code(EXIT_USAGE)
    .stderr_has("/dev/zero")
    .stderr_has("character device");
    run_bounded(&repo, &["run", "plan", "--no-input", "--config", "specs"])
        .expect_code(EXIT_USAGE)
        .stderr_has("directory");
    assert_eq!(repo.run_count(), 0);
}

#[test]
fn a_config_file_over_one_mebibyte_is_refused() {
    let repo = TestRepo::with_approved_spec();
    let mut text = repo.read("stagegate.toml");
    text.push_str(&format!("# {}\n", "x".repeat(1024 * 1024)));
    repo.write("stagegate.toml", &text);
    run_bounded(&repo, &["run", "plan", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("too large");
}

#[test]
fn a_stage_timeout_of_three_hundred_billion_years_is_a_usage_error_not_a_panic() {
    bad_config("[timeouts]\nstage = \"300000000000y\"\n", 2)
        .stderr_has("timeouts.stage")
        .stderr_has("longer than 7days");
}

#[test]
fn a_default_timeout_past_u64_seconds_is_a_usage_error_not_a_panic() {
    // humantime itself refuses this one; either way it is exit 2 with the line.
    bad_config("[timeouts]\ndefault = \"15000000000000000000s\"\n", 2)
        .stderr_has("timeouts.default");
}

#[test]
fn a_huge_kill_grace_is_a_usage_error_not_a_panicked_agent_call() {
    bad_config("[timeouts]\nkill_grace = \"100000000y\"\n", 2)
        .stderr_has("timeouts.kill_grace")
        .stderr_has("10m");
}

#[test]
fn numbers_beyond_their_range_are_usage_errors_naming_the_line() {
    bad_config("[defaults]\nconcurrency = 9223372036854775807\n", 2)
        .stderr_has("defaults.concurrency")
        .stderr_has("at most");
    bad_config("[defaults]\nretries = 1000000000\n", 2).stderr_has("defaults.retries");
    bad_config("[defaults]\nbackoff = \"1000y\"\n", 2).stderr_has("defaults.backoff");
    bad_config("[cache]\nagent = \"100000y\"\n", 2).stderr_has("cache.agent");
    bad_config("[defaults]\noutput_cap = \"1000TiB\"\n", 2).stderr_has("defaults.output_cap");
}

#[test]
fn artifact_names_that_cannot_be_published_are_refused_at_load() {
    for name in [".hidden.md", "sub/dir.md"] {
        bad_config(
            &format!("[stages.plan]\nrequired = [\"plan.md\", \"{name}\"]\n"),
            2,
        )
        .stderr_has(name)
        .stderr_has("plain artifact name");
    }
    bad_config("[stages.plan]\noptional = [\"../escape.md\"]\n", 2).stderr_has("../escape.md");
}

#[test]
fn a_feature_directory_outside_the_repository_is_a_usage_error() {
    let repo = TestRepo::with_approved_spec();
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo.path(&format!("{FEATURE}/spec.md")),
        outside.path().join("spec.md"),
    )
    .expect("copy spec");
    let dir = outside.path().display().to_string();
    repo.run(&["run", "plan", "--feature", &dir, "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("outside the repository");
    // A symlink under specs/ pointing out of the repository is the same directory.
    std::os::unix::fs::symlink(outside.path(), repo.path("specs/002-linked")).expect("symlink");
    repo.run(&["run", "plan", "--feature", "specs/002-linked", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("outside the repository");
    assert_eq!(repo.run_count(), 0);
    assert!(repo.calls().0.is_empty(), "an agent ran");
}

#[test]
fn a_concurrency_flag_beyond_its_range_is_a_usage_error() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["run", "plan", "--no-input", "--concurrency", "100000"])
        .expect_code(EXIT_USAGE)
        .stderr_has("--concurrency")
        .stderr_has("at most 1024");
    assert_eq!(repo.run_count(), 0);
}

/// A build without the `cluster` feature refuses `[cluster]` before recording anything, and
/// says how to get a build that runs on Temporal.
#[cfg(not(feature = "cluster"))]
#[test]
fn a_cluster_in_a_build_without_it_is_a_usage_error_that_records_nothing() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["run", "plan", "--no-input", "--temporal", "127.0.0.1:7233"])
        .expect_code(EXIT_USAGE)
        .stderr_has("built without Temporal support")
        .stderr_has("--features cluster");
    repo.run_with_env(
        &["worker"],
        &[("STAGEGATE_TEMPORAL_ADDRESS", "127.0.0.1:7233")],
    )
    .expect_code(EXIT_USAGE)
    .stderr_has("built without Temporal support");
    assert_eq!(repo.run_count(), 0);
}

#[test]
fn a_cluster_address_without_a_port_is_a_usage_error() {
    TestRepo::new()
        .run(&["run", "plan", "--no-input", "--temporal", "localhost"])
        .expect_code(EXIT_USAGE)
        .stderr_has("not a Temporal address");
}

#[test]
fn the_kept_settings_follow_every_edit_of_the_configuration() {
    let repo = TestRepo::with_approved_spec();
    repo.write("stagegate.toml", "[defaults]\nconcurency = 2\n");
    for _ in 0..2 {
        repo.run(&["status"])
            .expect_code(EXIT_DONE)
            .stderr_has("stagegate.toml:2:1: unknown key defaults.concurency");
    }
    assert!(repo.exists(".stagegate/settings-cache.bin"));

    repo.write("stagegate.toml", "[defaults]\nconcurrency = 2\n");
    let fixed = repo.run(&["status"]).expect_code(EXIT_DONE);
    assert!(!fixed.stderr.contains("unknown key"), "{fixed:?}");

    repo.write("stagegate.toml", "[defaults]\nconcurrency = 0\n");
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has("stagegate.toml:2:");
    assert!(repo.calls().0.is_empty(), "an agent ran");
}

#[test]
fn the_report_shows_the_settings_its_run_ran_with() {
    let repo = TestRepo::with_approved_spec().set("stages.plan", "concurrency", "2");
    let run = repo.run_plan_to_gate();
    // Changed after the run: the page shows what the run used.
    repo.write("stagegate.toml", "[defaults]\nconcurrency = 5\n");
    let page = repo.path("report.html");
    repo.run(&["report", &run, "--html", &page.display().to_string()])
        .expect_code(EXIT_DONE);
    let page = std::fs::read_to_string(page).expect("the report");
    let settings = page
        .split_once("<h2>Settings</h2>")
        .map(|(_, settings)| settings)
        .expect("a settings section");
    assert!(
        settings.contains("&quot;concurrency&quot;: 2"),
        "{settings}"
    );
    assert!(
        !settings.contains("&quot;concurrency&quot;: 5"),
        "{settings}"
    );
}
