//! Secrets stagegate knows never reach what it keeps, shows or publishes (issue 12): an API key a
//! server echoes, in an error cut at 300 characters or in a 200 answer, and the values of a
//! `command` backend's `secret_env` variables in its output and its stderr.
//!
//! Every check looks at what a person or a reader of the repository could see: stderr, `status`,
//! `show`, `report --html`, and the bytes of every file under `.stagegate/` (the database with its
//! `failure_reason`s, the run files, the answers and the cache) and the feature directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_STAGE_FAILED, FEATURE, TestRepo, toml_string,
};
use crate::http_backends::{answer_for, http_repo, openai_stream, stagegate};
use crate::loopback_server::{LoopbackServer, Reply};

/// A key long enough that a message cut at 300 characters keeps all of it but its last character.
const LONG_KEY: &str = "sk-test-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Pieces of [`LONG_KEY`] that must appear nowhere: its start, its middle, its end.
const KEY_FRAGMENTS: [&str; 3] = ["sk-test-01234567", "89ABCDEFGHI", "QRSTUVWXY"];

/// Every file under `dir` (recursively), with its bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// None of `fragments` is in any file under `.stagegate/` or the feature directory, or in any
/// of `texts` (a command's output, named).
fn assert_nowhere(repo: &TestRepo, fragments: &[&str], texts: &[(&str, &str)]) {
    let mut files = files_under(&repo.path(".stagegate"));
    files.extend(files_under(&repo.path(FEATURE)));
    assert!(!files.is_empty());
    for fragment in fragments {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, fragment),
                "{path} holds the secret's fragment {fragment:?}"
            );
        }
        for (name, text) in texts {
            assert!(
                !text.contains(fragment),
                "{name} shows the secret's fragment {fragment:?}:\n{text}"
            );
        }
    }
}

/// `status RUN`, `status RUN --json`, `show RUN` and `report RUN --html` (the page's text), named.
fn what_readers_see(repo: &TestRepo, run: &str) -> Vec<(&'static str, String)> {
    let report = repo.path("report.html");
    let report_arg = report.display().to_string();
    repo.run(&["report", run, "--html", &report_arg])
        .expect_code(EXIT_DONE);
    vec![
        (
            "status RUN",
            repo.run(&["status", run]).expect_code(EXIT_DONE).stdout,
        ),
        (
            "status RUN --json",
            repo.run(&["status", run, "--json"])
                .expect_code(EXIT_DONE)
                .stdout,
        ),
        (
            "show RUN",
            repo.run(&["show", run]).expect_code(EXIT_DONE).stdout,
        ),
        (
            "report.html",
            std::fs::read_to_string(&report).expect("the report"),
        ),
    ]
}

fn as_pairs<'a>(texts: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    texts
        .iter()
        .map(|(name, text)| (*name, text.as_str()))
        .collect()
}

#[test]
fn a_key_echoed_in_an_error_cut_at_300_characters_is_redacted_everywhere() {
    // The server's message echoes the Authorization header so that the cut at 300 characters
    // falls on the key's last character: before the fix, all but that character survived.
    let server = LoopbackServer::start(|request, _| {
        let header = request.header("authorization").unwrap_or_default();
        let padding = "x".repeat(301 - " Authorization: ".len() - header.len());
        Reply::json(
            401,
            &json!({"error": {"message": format!("{padding} Authorization: {header}")}}),
        )
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input"], Some(LONG_KEY))
        .expect_code(EXIT_STAGE_FAILED);
    let run = ran.run_id();
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.header("authorization")
                == Some(format!("Bearer {LONG_KEY}").as_str())),
        "the key was sent"
    );

    let seen = what_readers_see(&repo, &run);
    let listing = &seen[2].1;
    assert!(
        listing.contains("Authorization: Bearer [REDACTED]"),
        "the message is kept, the key is not:\n{listing}"
    );
    let mut texts = as_pairs(&seen);
    texts.push(("stderr of run", &ran.stderr));
    assert_nowhere(&repo, &KEY_FRAGMENTS, &texts);
}

#[test]
fn a_key_echoed_in_an_answer_is_redacted_from_run_files_the_cache_and_the_publication() {
    let server = LoopbackServer::start(|request, _| {
        let header = request.header("authorization").unwrap_or_default();
        // Before the verdict line, so that QA still passes.
        let answer = answer_for(request.prompt());
        openai_stream(&format!("Sent with {header}.\n\n{answer}"))
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input"], Some(LONG_KEY))
        .expect_code(EXIT_AWAITING_DECISION);
    let run = ran.run_id();
    let staged = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert!(staged.contains("Sent with Bearer [REDACTED]."), "{staged}");

    // Published into the repository: still nothing of the key.
    stagegate(&repo, &["approve", &run], Some(LONG_KEY)).expect_code(EXIT_DONE);
    let published = repo.read(&format!("{FEATURE}/plan.md"));
    assert!(published.contains("[REDACTED]"), "{published}");

    // A second run answered from the cache shows no more of it.
    let again = stagegate(&repo, &["run", "plan", "--no-input"], Some(LONG_KEY));
    let seen = what_readers_see(&repo, &run);
    let mut texts = as_pairs(&seen);
    texts.push(("stderr of run", &ran.stderr));
    texts.push(("stderr of the second run", &again.stderr));
    texts.push(("stdout of the second run", &again.stdout));
    assert_nowhere(&repo, &KEY_FRAGMENTS, &texts);
}

/// A secret of a `command` backend, in `env` and marked in `secret_env`.
const TOKEN: &str = "tok-SECRET-0123456789ABCDEFGHIJ";
const TOKEN_FRAGMENTS: [&str; 3] = ["tok-SECRET-0123", "456789ABC", "CDEFGHIJ"];

#[test]
fn secret_env_values_are_redacted_from_output_stderr_and_failure_reasons() {
    let repo = TestRepo::with_approved_spec();
    // Fails its first attempt with the token on stderr, so far from the line's end that the
    // 300-character excerpt starts inside it; then answers with the token in its output.
    let script = repo.fake_dir.join("leaky-agent.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat >/dev/null\n\
         padding=$(printf '%290s' '' | tr ' ' x)\n\
         if [ \"$STAGEGATE_ATTEMPT\" = 1 ]; then\n\
         \x20 echo \"loading with token=$TOKEN$padding\" >&2\n  exit 1\nfi\n\
         echo \"debug: token=$TOKEN\" >&2\n\
         printf '## Leaky findings\\n\\n- called with token=%s\\n\\nCONFIDENCE: 0.5\\n' \"$TOKEN\"\n",
    )
    .expect("write the script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    let repo = repo
        .set("backends.leaky", "kind", "\"command\"")
        .set(
            "backends.leaky",
            "command",
            &format!("[{}]", toml_string(&script.display().to_string())),
        )
        .set(
            "backends.leaky",
            "env",
            &format!("{{ TOKEN = {} }}", toml_string(TOKEN)),
        )
        .set("backends.leaky", "secret_env", "[\"TOKEN\"]")
        .set("agents.solution-architect", "backend", "\"leaky\"");
    let ran = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = ran.run_id();

    let output = repo
        .run(&["show", &run, "--agent", "solution-architect"])
        .expect_code(EXIT_DONE)
        .stdout;
    assert!(output.contains("called with token=[REDACTED]"), "{output}");
    let listing = repo.run(&["show", &run]).expect_code(EXIT_DONE).stdout;
    assert!(
        listing.contains("REDACTED]xxxx"),
        "the first attempt's reason quotes the end of stderr, redacted before it was cut:\n{listing}"
    );
    let seen = what_readers_see(&repo, &run);
    let mut texts = as_pairs(&seen);
    texts.push(("stderr of run", &ran.stderr));
    assert_nowhere(&repo, &TOKEN_FRAGMENTS, &texts);
}
