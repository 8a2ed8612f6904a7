//! Agents' control characters never reach a terminal raw (issue 12): OSC 52 (clipboard write),
//! OSC 0 (window title) and clear-screen from an agent show as `␛]52;…␇`, `␛]0;…␇`, `␛[2J` in
//! progress lines, `status`, `show`, the top-level error, and at the gate (QA's feedback, "view
//! the artifacts"); `show --file` into a pipe stays byte-faithful.
//!
//! The terminal cases run the real binary under `script` (util-linux), which gives it a pseudo
//! terminal, and type into the gate's menu through it.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_STAGE_FAILED, TestRepo, toml_string};

/// The three sequences of the report, as an agent writes them (`printf` escapes) and as they
/// must be shown.
const HOSTILE: &str = r"\033]52;c;cHduZWQ=\007 \033]0;pwned\007 \033[2J";
const SHOWN: [&str; 3] = ["␛]52;c;cHduZWQ=␇", "␛]0;pwned␇", "␛[2J"];
const RAW: [&[u8]; 3] = [b"\x1b]52;", b"\x1b]0;", b"\x1b[2J"];

/// A `command` backend `evil` whose role agents fail with the sequences on stderr, whose
/// synthesizer writes them into plan.md and planning-summary.md, and whose QA asks for rework
/// with them in its feedback. The agents in `agents` use it.
fn evil_repo(agents: &[&str]) -> TestRepo {
    let repo = TestRepo::with_approved_spec();
    let script = repo.fake_dir.join("evil-agent.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat >/dev/null\ncase \"$STAGEGATE_PHASE\" in\n\
             synthesis)\n\
             \x20 case \"$STAGEGATE_ARTIFACT\" in plan.md|planning-summary.md) ;; *) echo SKIP; exit 0 ;; esac\n\
             \x20 printf '# Plan\\n\\nhostile {HOSTILE} end\\n' ;;\n\
             qa) printf 'Fix this {HOSTILE} now.\\nVERDICT: REWORK\\n' ;;\n\
             *) printf 'boom {HOSTILE} done\\n' >&2; exit 1 ;;\nesac\n"
        ),
    )
    .expect("write the script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    let mut repo = repo
        .set("backends.evil", "kind", "\"command\"")
        .set(
            "backends.evil",
            "command",
            &format!("[{}]", toml_string(&script.display().to_string())),
        )
        .set("defaults", "retries", "0");
    for agent in agents {
        repo = repo.set(&format!("agents.{agent}"), "backend", "\"evil\"");
    }
    repo
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// `text` (what `name` printed) shows every sequence and acts on none.
fn assert_neutralised(name: &str, text: &[u8], shown: &[&str]) {
    let lossy = String::from_utf8_lossy(text);
    for raw in RAW {
        assert!(
            !contains(text, raw),
            "{name} let {:?} through:\n{lossy}",
            String::from_utf8_lossy(raw)
        );
    }
    for visible in shown {
        assert!(
            lossy.contains(visible),
            "{name} does not show {visible}:\n{lossy}"
        );
    }
}

/// Runs `stagegate ARGS...` in a pseudo terminal; at each step, waits until `anchor` was printed
/// and the gate's menu drawn after it, then types `keys`. Returns the exit code and everything
/// the terminal received.
fn run_in_terminal(repo: &TestRepo, args: &[&str], steps: &[(&str, &str)]) -> (i32, Vec<u8>) {
    let stagegate = assert_cmd::cargo::cargo_bin("stagegate");
    let mut line = format!("'{}'", stagegate.display());
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("script");
    command
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(&repo.root)
        .env_remove("SPECIFY_FEATURE_DIRECTORY")
        .env("TERM", "xterm-256color")
        // "view" pages one artifact: through `cat`, it comes back to the menu at once.
        .env("PAGER", "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STAGEGATE_") {
            command.env_remove(&name);
        }
    }
    let mut child = command.spawn().expect("script (util-linux) is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let received = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                received
                    .lock()
                    .expect("received")
                    .extend_from_slice(&buffer[..read]);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let menu = b"decide later (stop here)";
    for (anchor, keys) in steps {
        loop {
            let ready = {
                let received = received.lock().expect("received");
                let text = String::from_utf8_lossy(&received);
                text.rfind(anchor)
                    .is_some_and(|at| contains(text[at..].as_bytes(), menu))
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let received = received.lock().expect("received");
                panic!(
                    "no {anchor:?} and menu after it:\n{}",
                    String::from_utf8_lossy(&received)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stdin
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        stdin.flush().expect("flush");
    }
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for script") {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "stagegate did not end:\n{}",
                String::from_utf8_lossy(&received.lock().expect("received"))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let _ = reader.join();
    let received = received.lock().expect("received").clone();
    (code, received)
}

#[test]
fn an_agents_escape_sequences_are_shown_in_progress_status_and_show() {
    let repo = evil_repo(&["solution-architect"]);
    // Without NO_COLOR too: the neutralising does not depend on it.
    let ran = repo
        .run_with_env(&["run", "plan", "--no-input"], &[("NO_COLOR", "")])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = ran.run_id();
    assert_neutralised("run's progress", ran.stderr.as_bytes(), &SHOWN);

    let status = repo.run(&["status", &run]).expect_code(EXIT_DONE).stdout;
    // The reason is cut to one line of 100 characters there.
    assert_neutralised("status RUN", status.as_bytes(), &["boom ␛]52;"]);
    let listing = repo.run(&["show", &run]).expect_code(EXIT_DONE).stdout;
    assert_neutralised("show RUN", listing.as_bytes(), &SHOWN);

    // Into a pipe, the file is what the agent wrote; on a terminal, it is shown.
    let show_stderr = [
        "show",
        &run,
        "--agent",
        "solution-architect",
        "--file",
        "stderr",
    ];
    let piped = repo.run(&show_stderr).expect_code(EXIT_DONE).stdout;
    assert!(piped.contains("boom \x1b]52;c;cHduZWQ=\x07"), "{piped:?}");
    let (code, on_terminal) = run_in_terminal(&repo, &show_stderr, &[]);
    assert_eq!(code, EXIT_DONE);
    assert_neutralised("show --file stderr on a terminal", &on_terminal, &SHOWN);
}

#[test]
fn a_failed_stages_error_is_shown_not_acted_on() {
    let repo = evil_repo(&[
        "requirements-analyst",
        "solution-architect",
        "risk-compliance-analyst",
        "estimation-scope-analyst",
    ]);
    let ran = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_STAGE_FAILED);
    assert_neutralised("the failed run's stderr", ran.stderr.as_bytes(), &SHOWN);
}

#[test]
fn qa_feedback_and_the_artifacts_at_the_gate_are_shown_not_acted_on() {
    let repo = evil_repo(&["lead-synthesizer-a", "main-agent"]);
    // View the artifacts (the fifth choice), then decide later (the sixth).
    let (code, terminal) = run_in_terminal(
        &repo,
        &["run", "plan"],
        &[("Approve to proceed?", "jjjj\r"), ("===== ", "jjjjj\r")],
    );
    assert_eq!(
        code,
        EXIT_AWAITING_DECISION,
        "{}",
        String::from_utf8_lossy(&terminal)
    );
    let text = String::from_utf8_lossy(&terminal);
    assert!(text.contains("QA asked for rework"), "{text}");
    assert!(text.contains("===== plan.md ====="), "{text}");
    assert_neutralised(
        "the gate",
        &terminal,
        &[
            "Fix this ␛]52;c;cHduZWQ=␇",
            "hostile ␛]52;c;cHduZWQ=␇ ␛]0;pwned␇ ␛[2J end",
        ],
    );
}

#[test]
fn ctrl_c_at_the_gate_shows_the_cursor_again_and_names_no_agents() {
    let repo = TestRepo::with_approved_spec();
    let (code, terminal) =
        run_in_terminal(&repo, &["run", "plan"], &[("Approve to proceed?", "\u{3}")]);
    let text = String::from_utf8_lossy(&terminal);
    assert_ne!(code, EXIT_DONE, "{text}");
    let hidden = text.rfind("\u{1b}[?25l");
    let shown = text.rfind("\u{1b}[?25h");
    assert!(
        hidden.is_none() || shown > hidden,
        "the cursor is left hidden:\n{text:?}"
    );
    assert!(!text.contains("stopping agents"), "{text}");
}
