//! `stagegate serve`: the dashboard through the real binary, over plain HTTP on loopback (a
//! tiny client on `TcpStream`), and in headless Chromium (required unless
//! `STAGEGATE_SKIP_BROWSER_TEST` is set).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::{
    CHROMIUM_HEADLESS, EXIT_DONE, EXIT_USAGE, FEATURE, TestRepo, wait_for_exit, wait_until,
};

/// A running `stagegate serve --addr 127.0.0.1:0`, with the address and token it printed.
pub(crate) struct Server {
    child: Option<Child>,
    address: String,
    pub(crate) token: String,
}

impl Server {
    pub(crate) fn start(repo: &TestRepo) -> Server {
        let mut child = repo.spawn(&["serve", "--addr", "127.0.0.1:0"]);
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let start = line.find("http://")?;
                Some(line[start..].split_whitespace().next()?.to_owned())
            })
            .expect("serve prints its URL on stderr");
        // Keep draining stderr so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (address, query) = rest
            .split_once("/?token=")
            .expect("the URL carries the token");
        assert_eq!(query.len(), 32, "a 32-hex-digit token: {url}");
        Server {
            child: Some(child),
            address: address.to_owned(),
            token: query.to_owned(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], "")
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &form(fields),
        )
    }

    /// One request on its own connection (`Connection: close`): the whole response.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the dashboard");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("a read timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // The server may answer (413) and close before it read a large body: a failed write
        // still leaves its answer to read.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()));
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Response::parse(&String::from_utf8_lossy(&raw))
    }

    /// Ctrl-C; the server must end by itself, with exit code 0.
    pub(crate) fn interrupt(mut self) {
        let child = self.child.take().expect("the server runs");
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(status.success());
        wait_for_exit(child, &["serve"], Duration::from_secs(10)).expect_code(EXIT_DONE);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn parse(raw: &str) -> Response {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {raw:?}"));
        Response {
            status,
            head: head.to_owned(),
            body: dechunk(head, body),
        }
    }

    fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status: {self:#?}");
        self
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// The body of a chunked response, joined (the pages are small; one read got all of it).
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// `application/x-www-form-urlencoded`.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The value of the hidden `name` field on a page.
fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field on the page:\n{page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .expect("a closing quote")
        .to_owned()
}

/// A repository with run stopped at the plan gate, and the run's id.
fn run_at_plan_gate() -> (TestRepo, String) {
    let repo = TestRepo::with_approved_spec();
    let run_id = repo.run_plan_to_gate();
    (repo, run_id)
}

fn decisions(repo: &TestRepo, run_id: &str) -> Vec<serde_json::Value> {
    repo.run_status(run_id)["decisions"]
        .as_array()
        .expect("status --json has decisions")
        .clone()
}

#[test]
fn the_dashboard_decides_a_gate_only_with_the_token_and_the_pages_csrf() {
    let (repo, run_id) = run_at_plan_gate();
    let server = Server::start(&repo);
    let token = server.token.clone();
    let run_page = format!("/runs/{run_id}?token={token}");

    server.get("/").expect(403);
    server
        .get("/?token=0123456789abcdef0123456789abcdef")
        .expect(403);
    let index = server.get(&format!("/?token={token}")).expect(200);
    assert!(
        index.body.contains(&run_id),
        "the index lists the run:\n{}",
        index.body
    );
    assert!(
        index
            .body
            .contains("Planning artifacts synthesized. Approve to proceed?")
    );

    server.get(&format!("/runs/{run_id}")).expect(403);
    let page = server.get(&run_page).expect(200);
    assert!(page.body.contains("<form id=\"approve\""), "{}", page.body);
    assert!(page.body.contains("<form id=\"reject\""));
    assert!(page.body.contains("<form id=\"modify\""));
    assert!(
        page.body.contains("plan.md"),
        "the staged artifact is shown"
    );
    let csrf = hidden_field(&page.body, "csrf");
    assert!(!csrf.is_empty() && csrf != token);

    server
        .get(&format!("/runs/no-such-run?token={token}"))
        .expect(404);
    server.get(&format!("/runs/../x?token={token}")).expect(404);
    server.get(&format!("/runs/..?token={token}")).expect(404);
    server.get(&format!("/nothing?token={token}")).expect(404);
    server.get("/metrics").expect(403);
    let metrics = server.get(&format!("/metrics?token={token}")).expect(200);
    assert!(
        metrics.body.contains("# HELP stagegate_"),
        "{}",
        metrics.body
    );

    let approve = format!("/runs/{run_id}/approve");
    let reject = format!("/runs/{run_id}/reject");
    let modify = format!("/runs/{run_id}/modify");
    let wrong = "0123456789abcdef0123456789abcdef";
    server
        .post(&approve, &[("csrf", &csrf), ("stage", "plan")])
        .expect(403);
    server
        .post(
            &approve,
            &[("token", wrong), ("csrf", &csrf), ("stage", "plan")],
        )
        .expect(403);
    server
        .post(
            &approve,
            &[("token", &token), ("csrf", wrong), ("stage", "plan")],
        )
        .expect(403);
    server
        .post(&approve, &[("token", &token), ("stage", "plan")])
        .expect(403);
    server
        .post(
            &approve,
            &[("token", &token), ("csrf", &csrf), ("stage", "prep")],
        )
        .expect(403);
    server
        .post(
            &reject,
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("reason", "  "),
            ],
        )
        .expect(400);
    server
        .post(
            &modify,
            &[("token", &token), ("csrf", &csrf), ("stage", "plan")],
        )
        .expect(400);
    let huge = "x".repeat(70 * 1024);
    server
        .post(
            &approve,
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("note", &huge),
            ],
        )
        .expect(413);
    server
        .request(
            "POST",
            &approve,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("token={token}&token={token}&csrf={csrf}&stage=plan"),
        )
        .expect(400);
    server
        .post(
            "/runs/no-such-run/approve",
            &[("token", &token), ("csrf", &csrf), ("stage", "plan")],
        )
        .expect(404);
    assert!(decisions(&repo, &run_id).is_empty(), "nothing was recorded");
    assert!(
        !repo.exists(&format!("{FEATURE}/plan.md")),
        "nothing was published"
    );

    let approved = server
        .post(
            &approve,
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("note", "looks right"),
            ],
        )
        .expect(303);
    assert_eq!(approved.header("location"), Some(run_page.as_str()));
    let recorded = decisions(&repo, &run_id);
    assert_eq!(recorded.len(), 1, "one decision: {recorded:#?}");
    assert_eq!(recorded[0]["kind"], "approve");
    assert_eq!(recorded[0]["note"], "looks right");
    let staged = std::fs::read_to_string(repo.run_dir(&run_id).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert_eq!(
        repo.read(&format!("{FEATURE}/plan.md")),
        staged,
        "the staged artifact was published"
    );

    server
        .post(
            &approve,
            &[("token", &token), ("csrf", &csrf), ("stage", "plan")],
        )
        .expect(409);
    server
        .post(
            &reject,
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("reason", "late"),
            ],
        )
        .expect(409);
    assert_eq!(decisions(&repo, &run_id).len(), 1, "recorded once");
    let after = server.get(&run_page).expect(200);
    assert!(
        !after.body.contains("<form id=\"approve\""),
        "no form once decided"
    );
    assert!(after.body.contains("looks right"));
    server.interrupt();
}

#[test]
fn a_rejection_and_a_rework_from_the_dashboard_are_recorded_like_the_clis() {
    let (repo, run_id) = run_at_plan_gate();
    let server = Server::start(&repo);
    let token = server.token.clone();
    let page = server
        .get(&format!("/runs/{run_id}?token={token}"))
        .expect(200);
    let csrf = hidden_field(&page.body, "csrf");

    server
        .post(
            &format!("/runs/{run_id}/modify"),
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("feedback", "name the risks"),
            ],
        )
        .expect(303);
    let status = repo.run_status(&run_id);
    assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
    let recorded = decisions(&repo, &run_id);
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["kind"], "modify");
    assert_eq!(recorded[0]["note"], "name the risks");
    let reworked = status["agents"]
        .as_array()
        .expect("status --json has agents")
        .iter()
        .filter(|agent| agent["phase"] == "synthesis" || agent["phase"] == "qa")
        .all(|agent| agent["attempts"].as_u64() >= Some(2));
    assert!(reworked, "the synthesizer and QA ran again: {status:#}");

    server
        .post(
            &format!("/runs/{run_id}/reject"),
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("reason", "too vague"),
            ],
        )
        .expect(303);
    let status = repo.run_status(&run_id);
    assert_eq!(status["run"]["state"], "rejected");
    let recorded = decisions(&repo, &run_id);
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1]["kind"], "reject");
    assert_eq!(recorded[1]["reason"], "too vague");
    assert!(
        !repo.exists(&format!("{FEATURE}/plan.md")),
        "nothing was published"
    );
    server
        .post(
            &format!("/runs/{run_id}/approve"),
            &[("token", &token), ("csrf", &csrf), ("stage", "plan")],
        )
        .expect(409);
    server.interrupt();
}

#[test]
fn line_comments_from_the_dashboard_are_checked_like_the_clis_and_recorded() {
    let (repo, run_id) = run_at_plan_gate();
    let server = Server::start(&repo);
    let token = server.token.clone();
    let page = server
        .get(&format!("/runs/{run_id}?token={token}"))
        .expect(200);
    let csrf = hidden_field(&page.body, "csrf");
    let modify = |comments: &str| {
        server.post(
            &format!("/runs/{run_id}/modify"),
            &[
                ("token", &token),
                ("csrf", &csrf),
                ("stage", "plan"),
                ("round", "1"),
                ("feedback", ""),
                ("comments", comments),
            ],
        )
    };
    // Neither feedback nor comments, malformed comments, lines past the end, an artifact that
    // is not staged: refused, nothing recorded.
    modify("[]").expect(400);
    let malformed = modify("[{\"artifact\": 1}]").expect(400);
    assert!(
        malformed.body.contains("malformed line comments"),
        "{}",
        malformed.body
    );
    let past = modify(r#"[{"artifact":"plan.md","lines":"99999","comment":"x"}]"#).expect(400);
    assert!(
        past.body.contains("comment on plan.md:99999"),
        "{}",
        past.body
    );
    modify(r#"[{"artifact":"spec.md","lines":"1","comment":"x"}]"#).expect(400);
    modify(r#"[{"artifact":"plan.md","lines":"3-1","comment":"x"}]"#).expect(400);
    assert!(decisions(&repo, &run_id).is_empty());

    // Comments alone are enough for a rework.
    modify(r#"[{"artifact":"plan.md","lines":"1","comment":"<b>bold</b> claim"}]"#).expect(303);
    let status = repo.run_status(&run_id);
    let comments = status["line_comments"].as_array().expect("line_comments");
    assert_eq!(comments.len(), 1, "{status:#}");
    assert_eq!(comments[0]["comment"]["comment"], "<b>bold</b> claim");
    // The next round's page answers it, escaped.
    let next = server
        .get(&format!("/runs/{run_id}?token={token}"))
        .expect(200);
    assert!(
        next.body.contains("class=\"comment-answer"),
        "{}",
        next.body
    );
    assert!(
        next.body.contains("&lt;b&gt;bold&lt;&#x2f;b&gt; claim"),
        "{}",
        next.body
    );
    assert!(!next.body.contains("<b>bold</b>"));
    server.interrupt();
}

#[test]
fn the_live_stream_follows_the_store_and_ctrl_c_ends_it() {
    let (repo, run_id) = run_at_plan_gate();
    let server = Server::start(&repo);
    let token = server.token.clone();
    server
        .request("GET", &format!("/runs/{run_id}/events"), &[], "")
        .expect(403);

    let mut stream = TcpStream::connect(&server.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    write!(
        stream,
        "GET /runs/{run_id}/events?token={token} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.address
    )
    .expect("send the request");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut seen = String::new();
    let mut read_until = |text: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in the stream:\n{seen}"
            );
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => panic!("the stream ended before {text:?}:\n{seen}"),
                Ok(_) => seen.push_str(&line),
                Err(error) => panic!("reading the stream: {error}\n{seen}"),
            }
        }
    };
    read_until("text/event-stream", &mut seen);
    read_until("\"kind\":\"run_started\"", &mut seen);
    read_until("\"kind\":\"gate_requested\"", &mut seen);

    // A decision by another process (the CLI) appears in the stream.
    repo.run(&["reject", &run_id, "--reason", "decided elsewhere"])
        .expect_code(EXIT_DONE);
    read_until("decided elsewhere", &mut seen);
    assert!(seen.contains("id: "), "events carry their sequence number");

    // Ctrl-C ends the open stream and the server.
    server.interrupt();
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
}

#[test]
fn a_non_loopback_address_needs_allow_remote() {
    let repo = TestRepo::new();
    repo.run(&["serve", "--addr", "0.0.0.0:0"])
        .expect_code(EXIT_USAGE)
        .stderr_has("not a loopback address")
        .stderr_has("--allow-remote");
}

/// Runs `chromium --headless --dump-dom TARGET`; the DOM it printed.
fn chromium_dump_dom(profile: &Path, target: &str) -> String {
    let mut child = std::process::Command::new("chromium")
        .args(CHROMIUM_HEADLESS)
        .arg("--timeout=15000")
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", target])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let ended = wait_until(Duration::from_secs(60), "chromium to exit", || {
        child.try_wait().ok().flatten()
    });
    assert!(ended.success(), "chromium failed on {target}: {ended:?}");
    reader.join().expect("chromium's output")
}

/// Set (to anything) to let the browser tests pass when Chromium is not installed.
const SKIP_BROWSER_TEST: &str = "STAGEGATE_SKIP_BROWSER_TEST";

/// Whether Chromium is there to run a browser test; a missing browser fails the test unless
/// [`SKIP_BROWSER_TEST`] is set.
pub(crate) fn chromium_available() -> bool {
    if std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    // A missing browser must not pass silently (CI would stop testing the dashboard in a
    // browser without anyone noticing): skipping is a decision someone writes down.
    assert!(
        std::env::var_os(SKIP_BROWSER_TEST).is_some(),
        "chromium is not installed: install it, or set {SKIP_BROWSER_TEST}=1 to skip this test"
    );
    eprintln!("note: chromium is not installed and {SKIP_BROWSER_TEST} is set; skipped");
    false
}

#[test]
fn a_browser_reads_the_dashboard_and_approves_through_the_form() {
    if !chromium_available() {
        return;
    }
    let (repo, run_id) = run_at_plan_gate();
    let server = Server::start(&repo);
    let token = server.token.clone();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let profile = scratch.path().join("profile");

    let index = chromium_dump_dom(&profile, &server.url(&format!("/?token={token}")));
    assert!(
        index.contains(&run_id),
        "the browser shows the run:\n{index}"
    );
    let page = chromium_dump_dom(
        &profile,
        &server.url(&format!("/runs/{run_id}?token={token}")),
    );
    assert!(page.contains("id=\"approve\""), "the approve form:\n{page}");
    let csrf = hidden_field(&page, "csrf");

    // The browser submits the same fields as the page's approve form.
    let submit = scratch.path().join("approve.html");
    std::fs::write(
        &submit,
        format!(
            "<!doctype html><html><body><form method=\"post\" action=\"{action}\">\
             <input name=\"token\" value=\"{token}\"><input name=\"csrf\" value=\"{csrf}\">\
             <input name=\"stage\" value=\"plan\"><input name=\"note\" value=\"approved in a browser\">\
             </form><script>document.forms[0].submit();</script></body></html>",
            action = server.url(&format!("/runs/{run_id}/approve")),
        ),
    )
    .expect("write the submitting page");
    chromium_dump_dom(&profile, &format!("file://{}", submit.display()));
    let recorded = wait_until(Duration::from_secs(20), "the browser's approval", || {
        let recorded = decisions(&repo, &run_id);
        (!recorded.is_empty()).then_some(recorded)
    });
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["kind"], "approve");
    assert_eq!(recorded[0]["note"], "approved in a browser");
    assert!(
        repo.exists(&format!("{FEATURE}/plan.md")),
        "plan.md was published"
    );
    server.interrupt();
}

/// The dashboard and a command decide one gate at once, many times: exactly one decision
/// stands; the loser is refused (409 on the page, exit 6 for the command) and a rejection
/// never publishes.
#[test]
fn the_dashboard_and_a_command_deciding_at_once_have_exactly_one_winner() {
    let repo = TestRepo::with_approved_spec().set("defaults", "backend", "\"builtin\"");
    let server = Server::start(&repo);
    let token = server.token.clone();
    for iteration in 0..10 {
        for name in [
            "plan.md",
            "planning-summary.md",
            "research.md",
            "data-model.md",
        ] {
            let _ = std::fs::remove_file(repo.path(&format!("{FEATURE}/{name}")));
        }
        let run_id = repo.run_plan_to_gate();
        let page = server
            .get(&format!("/runs/{run_id}?token={token}"))
            .expect(200);
        let csrf = hidden_field(&page.body, "csrf");
        let round = hidden_field(&page.body, "round");
        assert_eq!(round, "1");
        let (page_status, command) = std::thread::scope(|scope| {
            let dashboard = scope.spawn(|| {
                server
                    .post(
                        &format!("/runs/{run_id}/approve"),
                        &[
                            ("token", &token),
                            ("csrf", &csrf),
                            ("stage", "plan"),
                            ("round", &round),
                        ],
                    )
                    .status
            });
            let command = repo.run(&["reject", &run_id, "--reason", "from the terminal"]);
            (dashboard.join().expect("the dashboard's request"), command)
        });
        let recorded = decisions(&repo, &run_id);
        assert_eq!(recorded.len(), 1, "iteration {iteration}: {recorded:#?}");
        let published = repo.exists(&format!("{FEATURE}/plan.md"));
        match recorded[0]["kind"].as_str() {
            Some("approve") => {
                assert_eq!(page_status, 303);
                assert_eq!(
                    command.code,
                    crate::harness::EXIT_ALREADY_DECIDED,
                    "{command:?}"
                );
                assert!(published);
            }
            Some("reject") => {
                assert_eq!(page_status, 409, "iteration {iteration}");
                assert_eq!(command.code, EXIT_DONE, "{command:?}");
                assert!(!published, "a rejected gate published plan.md");
            }
            other => panic!("unexpected decision {other:?}"),
        }
    }
    server.interrupt();
}

/// Sends `head` (a request line and headers, without the blank line) on its own connection
/// and reads the whole response.
fn raw_request(address: &str, head: &str) -> Response {
    let mut stream = TcpStream::connect(address).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a read timeout");
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("send the request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    Response::parse(&String::from_utf8_lossy(&raw))
}

#[test]
fn a_foreign_host_or_origin_is_refused_and_every_response_says_nosniff() {
    let repo = TestRepo::new();
    let server = Server::start(&repo);
    let page = format!("/?token={}", server.token);
    let port = server
        .address
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();

    // DNS rebinding: the right token, but the attacker's name as the Host.
    let rebound = raw_request(
        &server.address,
        &format!("GET {page} HTTP/1.1\r\nHost: attacker.example:{port}"),
    )
    .expect(403);
    assert!(rebound.body.contains("host"), "{rebound:#?}");
    assert_eq!(rebound.header("x-content-type-options"), Some("nosniff"));
    // The loopback names all work.
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        raw_request(
            &server.address,
            &format!("GET {page} HTTP/1.1\r\nHost: {host}:{port}"),
        )
        .expect(200);
    }
    // A form posted from another site.
    raw_request(
        &server.address,
        &format!(
            "GET {page} HTTP/1.1\r\nHost: {}\r\nOrigin: http://attacker.example",
            server.address
        ),
    )
    .expect(403);
    raw_request(
        &server.address,
        &format!(
            "GET {page} HTTP/1.1\r\nHost: {}\r\nOrigin: http://{}",
            server.address, server.address
        ),
    )
    .expect(200);

    for (path, status) in [(page.as_str(), 200), ("/", 403), ("/nosuch", 404)] {
        let response = server.get(path).expect(status);
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}: {response:#?}"
        );
    }
    server.interrupt();
}

#[test]
fn idle_connections_time_out_and_cannot_make_the_dashboard_unreachable() {
    let repo = TestRepo::new();
    let server = Server::start(&repo);
    // 300 connections that never send a byte (and no token).
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&server.address).expect("connect"))
        .collect();
    let started = Instant::now();
    server.get(&format!("/?token={}", server.token)).expect(200);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the dashboard answered only after {:?}",
        started.elapsed()
    );
    // The server closed the idle connections by itself: reading one ends (EOF or reset)
    // rather than timing out.
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let mut buffer = [0u8; 64];
    match first.read(&mut buffer) {
        Ok(_) => {}
        Err(error) => assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "an idle connection stayed open: {error}"
        ),
    }
    drop(idle);
    server.interrupt();
}
