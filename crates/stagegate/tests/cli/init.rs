//! `stagegate init` through the real binary: with a stand-in `claude` on a temporary PATH it
//! chooses the `claude` preset with long timeouts, and a stage run on that configuration calls
//! the stand-in as `claude -p --no-session-persistence --output-format json` and reads its JSON envelope.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_USAGE, FEATURE, TestRepo};

/// A stand-in for Claude Code: logs its arguments, reads the prompt, prints a claude-style
/// envelope whose answer passes QA. The answer is escaped JSON, as claude writes it.
const STAND_IN: &str = r##"#!/bin/sh
printf '%s\n' "$*" >> "$(dirname "$0")/claude.args"
cat > /dev/null
printf '%s' '{"type":"result","subtype":"success","is_error":false,"duration_ms":5,"num_turns":1,"result":"# Plan from the stand-in\n\nAll good.\nVERDICT: PASS","session_id":"s","total_cost_usd":0.001,"usage":{"input_tokens":7,"output_tokens":9}}'
"##;

/// How a command ended.
#[derive(Debug)]
struct Ended {
    code: i32,
    stderr: String,
}

impl Ended {
    fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{self:?}");
        self
    }

    fn stderr_has(self, text: &str) -> Self {
        assert!(self.stderr.contains(text), "no {text:?} in {self:?}");
        self
    }
}

/// Runs `stagegate ARGS...` in `root` with `path` as the PATH and no API keys, spec-kit
/// overrides or `STAGEGATE_*` variables of the caller's.
fn stagegate(root: &Path, path: &std::ffi::OsStr, args: &[&str]) -> Ended {
    let mut command = Command::cargo_bin("stagegate").expect("the stagegate binary");
    command
        .current_dir(root)
        .args(args)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("SPECIFY_FEATURE_DIRECTORY")
        .timeout(Duration::from_secs(90));
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("STAGEGATE_") || name_text.starts_with("SPECKIT_INTEGRATION_") {
            command.env_remove(&name);
        }
    }
    let output = command.output().expect("run stagegate");
    Ended {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn init_picks_a_cli_agent_on_the_path_and_a_stage_runs_on_it() {
    let repo = TestRepo::with_approved_spec();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("start without a configuration");
    let bin = repo.fake_dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let claude = bin.join("claude");
    std::fs::write(&claude, STAND_IN).expect("write the stand-in");
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::join_paths([bin.as_path(), Path::new("/usr/bin"), Path::new("/bin")])
        .expect("a PATH");

    let outcome = stagegate(&repo.root, &path, &["init"])
        .expect_code(EXIT_DONE)
        .stderr_has("CLI agents on the PATH: claude")
        .stderr_has("chose backend \"claude\"")
        .stderr_has("timeouts are longer");
    assert!(
        outcome.stderr.contains("ANTHROPIC_API_KEY not set"),
        "{outcome:?}"
    );
    let config = repo.read("stagegate.toml");
    assert!(config.contains("backend = \"claude\""), "{config}");
    assert!(config.contains("default = \"10m\""), "{config}");
    assert!(config.contains("stage = \"60m\""), "{config}");

    // A second init refuses to overwrite it.
    stagegate(&repo.root, &path, &["init"])
        .expect_code(EXIT_USAGE)
        .stderr_has("already exists")
        .stderr_has("--force");

    stagegate(&repo.root, &path, &["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let calls = std::fs::read_to_string(bin.join("claude.args")).expect("the stand-in ran");
    assert!(!calls.is_empty());
    for line in calls.lines() {
        assert_eq!(line, "-p --no-session-persistence --output-format json");
    }
    // The envelope was read: the staged plan is the answer's text, not the JSON around it.
    let staged = walk(&repo.path(".stagegate/runs"))
        .into_iter()
        .find(|file| file.ends_with("plan.md") && !file.starts_with(repo.path(FEATURE)))
        .expect("a staged plan.md");
    let plan = std::fs::read_to_string(&staged).expect("read the staged plan");
    assert!(plan.contains("# Plan from the stand-in"), "{plan}");
    assert!(!plan.contains("\"type\":\"result\""), "{plan}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
