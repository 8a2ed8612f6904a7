//! The gate page reviewed in headless Chromium like a pull request: the bundled example's
//! `plan.md` rendered (tables as tables, headings as headings), its diff against the feature's
//! existing `plan.md`, two line comments added in the page and sent with a rework, and the next
//! round listing both. Chromium is driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by a NUL byte on fds 3 and 4), so no
//! WebSocket client and no browser download are needed. Screenshots are kept under
//! `target/tmp/review-screenshots/` for CI to collect.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{CHROMIUM_HEADLESS, EXIT_DONE, TestRepo};
use crate::serve::{Server, chromium_available};

/// The bundled example feature.
const EXAMPLE: &str = "specs/001-team-photo-albums";

/// How long one protocol call or page load may take on a busy CI machine.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Headless Chromium and one page of it, over the DevTools protocol.
struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    /// Events that arrived while waiting for something else, oldest first.
    pending: Vec<Value>,
    next_id: u64,
    session: Option<String>,
}

impl Browser {
    fn launch(profile: &Path) -> Browser {
        // The shell hands chromium our pipes as fds 3 (commands in) and 4 (answers out).
        let mut child = Command::new("sh")
            .args([
                "-c",
                "exec chromium \"$@\" 3<&0 4>&1 </dev/null >/dev/null 2>/dev/null",
                "sh",
            ])
            .args(CHROMIUM_HEADLESS)
            .args(["--window-size=1280,1600", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let commands = child.stdin.take().expect("stdin is piped");
        let answers = child.stdout.take().expect("stdout is piped");
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers);
            let mut message = Vec::new();
            while reader
                .read_until(0, &mut message)
                .is_ok_and(|read| read > 0)
            {
                message.pop_if(|byte| *byte == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && sender.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands,
            messages,
            pending: Vec::new(),
            next_id: 0,
            session: None,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session id")
                .to_owned(),
        );
        browser.call("Page.enable", json!({}));
        browser
    }

    fn next_message(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {what} in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {what}"),
        }
    }

    /// Sends `method` (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a JSON message");
        bytes.push(0);
        self.commands.write_all(&bytes).expect("send to chromium");
        let deadline = Instant::now() + STEP_LIMIT;
        loop {
            let answer = self.next_message(deadline, method);
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
            self.pending.push(answer);
        }
    }

    /// Waits for the page's event `method` (one that arrived since the last wait counts).
    fn wait_for_event(&mut self, method: &str) {
        if let Some(index) = self
            .pending
            .iter()
            .position(|event| event["method"] == method)
        {
            self.pending.drain(..=index);
            return;
        }
        let deadline = Instant::now() + STEP_LIMIT;
        while self.next_message(deadline, method)["method"] != method {}
    }

    fn open(&mut self, url: &str) {
        self.pending.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for_event("Page.loadEventFired");
    }

    /// Evaluates `expression` in the page; its value (JSON).
    fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        std::fs::write(path, decode_base64(data)).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        other => panic!("not base64: {other}"),
    };
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        buffer = (buffer << 6) | u32::from(value(byte));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    bytes
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("review-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// The bundled example on the built-in backend, with an existing `plan.md` in the feature
/// directory, stopped at the plan gate; the run id.
fn example_at_plan_gate() -> (TestRepo, String) {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    std::fs::remove_dir_all(repo.path("specs")).expect("remove the fixture feature");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    std::fs::create_dir_all(repo.path(EXAMPLE)).expect("create the feature directory");
    for entry in std::fs::read_dir(examples.join(EXAMPLE)).expect("the example feature") {
        let entry = entry.expect("an example file");
        std::fs::copy(entry.path(), repo.path(EXAMPLE).join(entry.file_name()))
            .expect("copy the example feature");
    }
    repo.write(
        &format!("{EXAMPLE}/plan.md"),
        "# Implementation Plan: Team Photo Albums\n\n## Summary\n\nAn older plan, written by hand.\n",
    );
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    let run = repo.run_plan_to_gate();
    (repo, run)
}

#[test]
fn a_person_reviews_the_plan_in_a_browser_and_two_line_comments_become_rework() {
    if !chromium_available() {
        return;
    }
    let (repo, run) = example_at_plan_gate();
    let server = Server::start(&repo);
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut browser = Browser::launch(&scratch.path().join("profile"));
    let shots = screenshot_dir();
    let page = server.url(&format!("/runs/{run}?token={}", server.token));
    browser.open(&page);
    browser.screenshot(&shots.join("1-gate.png"));

    // plan.md rendered: its tables as tables and its headings as headings.
    let plan = "document.querySelector('section.artifact[data-artifact=\"plan.md\"]')";
    let rendered = browser.evaluate(&format!(
        "(() => {{ const s = {plan}.querySelector('.rendered'); return {{
            headings: [...s.querySelectorAll('h2')].map(h => h.textContent),
            tables: s.querySelectorAll('table').length,
            cells: s.querySelectorAll('table td').length,
            pipes: [...s.querySelectorAll('p')].filter(p => p.textContent.trim().startsWith('|')).length,
            visible: s.offsetHeight > 0 }}; }})()"
    ));
    let headings: Vec<&str> = rendered["headings"]
        .as_array()
        .expect("headings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(headings.contains(&"Summary"), "{rendered}");
    assert!(headings.contains(&"Technical Context"), "{rendered}");
    assert!(rendered["tables"].as_u64() >= Some(1), "{rendered}");
    assert!(rendered["cells"].as_u64() >= Some(4), "{rendered}");
    assert_eq!(rendered["pipes"], 0, "no table left as pipes: {rendered}");
    assert_eq!(rendered["visible"], true, "{rendered}");

    // The diff against the existing plan.md: the hand-written summary removed, lines added.
    let diff = browser.evaluate(&format!(
        "(() => {{ const d = {plan}.querySelector('.diff-view'); return {{
            title: d.querySelector('summary').textContent,
            deleted: [...d.querySelectorAll('tr.delete td.text')].map(t => t.textContent),
            inserted: d.querySelectorAll('tr.insert').length }}; }})()"
    ));
    assert!(
        diff["title"]
            .as_str()
            .is_some_and(|title| title.contains(&format!("changes against {EXAMPLE}/plan.md"))),
        "{diff}"
    );
    assert!(
        diff["deleted"]
            .as_array()
            .expect("deleted lines")
            .contains(&json!("An older plan, written by hand.")),
        "{diff}"
    );
    assert!(diff["inserted"].as_u64() > Some(10), "{diff}");
    let publication = browser.evaluate("document.querySelector('.publication').textContent");
    assert!(
        publication
            .as_str()
            .is_some_and(|text| text.contains("REPLACES plan.md")),
        "{publication}"
    );

    // Two line comments, as a person adds them: the source view, a click on line 1, then a
    // click on line 3 and a shift-click on line 5 for a range.
    let staged = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("staged plan.md");
    let lines: Vec<&str> = staged.lines().collect();
    let added = browser.evaluate(&format!(
        "(() => {{
            const s = {plan};
            s.querySelector('.show-source').click();
            const line = n => s.querySelector(`tr[data-line=\"${{n}}\"] button.comment-line`);
            const add = text => {{
                const editor = s.querySelector('tr.comment-editor');
                editor.querySelector('textarea').value = text;
                editor.querySelector('button.add-comment').click();
            }};
            line(1).click();
            add('Name the albums feature in the title.');
            line(3).click();
            line(5).dispatchEvent(new MouseEvent('click', {{ bubbles: true, shiftKey: true }}));
            add('Say who owns this part.');
            return {{
                listed: [...document.querySelectorAll('#pending-comments li')].map(li => li.textContent),
                field: JSON.parse(document.getElementById('comments-field').value),
                source: s.querySelector('table.source').offsetHeight > 0 }};
        }})()"
    ));
    assert_eq!(added["source"], true, "the source view is shown: {added}");
    assert_eq!(
        added["field"],
        json!([
            { "artifact": "plan.md", "lines": "1", "comment": "Name the albums feature in the title." },
            { "artifact": "plan.md", "lines": "3-5", "comment": "Say who owns this part." },
        ]),
        "{added}"
    );
    browser.screenshot(&shots.join("2-comments.png"));

    // Rework: the form goes out, the server reworks and answers with the next round's page.
    browser.pending.clear();
    browser.evaluate("document.querySelector('#modify button[type=submit]').click(); true");
    browser.wait_for_event("Page.loadEventFired");
    let diffs = browser.evaluate(&format!(
        "(() => [...{plan}.querySelectorAll('.diff-view summary')].map(s => s.textContent))()"
    ));
    assert!(
        diffs
            .as_array()
            .is_some_and(|titles| titles.iter().any(|title| title
                .as_str()
                .is_some_and(|title| title.contains("since round 1")))),
        "the next round shows its change since round 1: {diffs}"
    );
    let answers = browser.evaluate(&format!(
        "(() => [...{plan}.querySelectorAll('.comment-answer')].map(li => li.textContent))()"
    ));
    browser.screenshot(&shots.join("3-next-round.png"));
    let answers: Vec<&str> = answers
        .as_array()
        .unwrap_or_else(|| panic!("the next round lists the comments: {answers}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers[0].contains("plan.md:1") && answers[0].contains("Name the albums feature"),
        "{answers:?}"
    );
    assert!(
        answers[1].contains("plan.md:3-5") && answers[1].contains("Say who owns this part."),
        "{answers:?}"
    );

    // The synthesizer got both, with the lines and the text they named.
    let status = repo.run_status(&run);
    assert_eq!(status["gates"][0]["round"], 2, "{status:#}");
    let prompts = repo.prompts_of(&run, "plan", "lead-synthesizer-a.plan.md");
    let rework = prompts
        .iter()
        .find(|prompt| prompt.contains("## Line comments on the previous version"))
        .unwrap_or_else(|| panic!("no synthesis prompt carries the comments: {prompts:#?}"));
    assert!(rework.contains(&format!(
        "### Comment 1: `plan.md` line 1\n\nThe lines:\n\n````\n{}\n````\n\nThe comment: Name the albums feature in the title.",
        lines[0]
    )), "{rework}");
    assert!(rework.contains(&format!(
        "### Comment 2: `plan.md` lines 3-5\n\nThe lines:\n\n````\n{}\n````\n\nThe comment: Say who owns this part.",
        lines[2..5].join("\n")
    )), "{rework}");
    // The built-in synthesizer answered each one in the new version.
    let reworked = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("the reworked plan.md");
    assert!(reworked.contains("## Review comments"), "{reworked}");
    assert!(reworked.contains("1. `plan.md:1`: Name the albums feature in the title."));
    assert!(reworked.contains("2. `plan.md:3-5`: Say who owns this part."));
    server.interrupt();
}
