//! What the HTTP backends make of answers that are not simply whole: cut at the token limit
//! (continued, failed or kept, and said so in `status`, the summary and the later prompts),
//! with reasoning in them, refused for quota; and the Responses API. The real binary against
//! the loopback server (`loopback_server`), which speaks each wire format as the APIs do.

//!
//! A real model cannot be made to cut, reason or refuse on demand; what llama.cpp's
//! `llama-server` really does with a cut answer is checked in `real_model`.

use serde_json::{Value, json};

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_STAGE_FAILED, PLAN_AGENTS};
use crate::http_backends::{
    KEY, agent_attempts, answer_for, anthropic_stream, http_repo, openai_stream, stagegate,
};
use crate::loopback_server::{LoopbackServer, Recorded, Reply};

/// A chat-completions stream of `text` that stops at the token limit.
fn openai_cut(text: &str) -> Reply {
    Reply::data_events(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]})
            .to_string(),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}).to_string(),
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 16}}).to_string(),
        "[DONE]".to_owned(),
    ])
}

/// A Messages stream of `text` that stops at `max_tokens`.
fn anthropic_cut(text: &str) -> Reply {
    Reply::named_events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": text}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                   "usage": {"output_tokens": 16}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// Whether the request continues a cut answer: the conversation holds the answer so far.
fn is_continuation(request: &Recorded) -> bool {
    request.body["messages"][1]["role"] == "assistant"
}

/// The `answer_truncated` events among `status RUN --json`'s shaping events.
fn truncations(status: &Value) -> Vec<Value> {
    status["scores_and_adjustments"]
        .as_array()
        .unwrap_or_else(|| panic!("status has scores_and_adjustments: {status:#}"))
        .iter()
        .filter(|event| event["event"] == "answer_truncated")
        .cloned()
        .collect()
}

#[test]
fn a_kept_cut_answer_is_marked_in_status_the_summary_and_every_later_prompt() {
    let server = LoopbackServer::start(|request, index| {
        if index == 0 {
            openai_cut("## Findings\n\n- The first requirement is")
        } else {
            openai_stream(&answer_for(request.prompt()))
        }
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()))
        .set("backends.local", "on_truncation", "\"accept\"")
        .set("backends.local", "max_tokens", "16");
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("answer cut at the output-token limit (1×), kept incomplete")
        .run_id();

    let status = repo.run_status(&run);
    let cut = truncations(&status);
    assert_eq!(cut.len(), 1, "{status:#}");
    assert_eq!(cut[0]["handling"], "accepted", "{:#}", cut[0]);
    assert_eq!(cut[0]["phase"], "agent", "{:#}", cut[0]);
    let agent = cut[0]["agent"].as_str().expect("an agent").to_owned();
    assert!(PLAN_AGENTS.contains(&agent.as_str()), "{agent}");

    let text = repo.run(&["status", &run]).expect_code(EXIT_DONE);
    assert!(
        text.stdout.contains(&format!(
            "answer of {agent} truncated at the output-token limit (1×, attempt 1): kept incomplete"
        )),
        "{text:?}"
    );
    let summary =
        std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/planning-summary.md"))
            .expect("the staged summary");
    assert!(
        summary.contains(&format!("| {agent} |",))
            && summary
                .contains("its answer was cut at the model's output-token limit (incomplete)"),
        "{summary}"
    );
    // The review, the synthesis and QA are told; the cut agent itself and its peers are not.
    let warning =
        format!("The agent output of {agent} was cut off at its model's output-token limit");
    let requests = server.requests();
    let told = requests
        .iter()
        .filter(|request| request.prompt().contains(&warning))
        .count();
    assert!(
        told >= 3,
        "{told} prompts carry the warning; the review, each synthesis and QA should"
    );
    assert!(
        requests
            .iter()
            .any(|request| request.prompt().contains("VERDICT: REWORK")
                && request.prompt().contains(&warning)),
        "QA was not told"
    );

    // The cut answer is not cached: the next run asks that agent again, and only that agent
    // (the others' whole answers come from the cache).
    let cut_request = requests[0].raw_body.clone();
    stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY)).expect_code(EXIT_AWAITING_DECISION);
    let again = &server.requests()[requests.len()..];
    assert!(
        again.iter().any(|request| request.raw_body == cut_request),
        "the next run reused the cut answer from the cache"
    );
}

#[test]
fn a_cut_answer_is_continued_until_whole_by_default() {
    let server = LoopbackServer::start(|request, index| {
        if is_continuation(request) {
            anthropic_stream(" is covered.\n\nCONFIDENCE: 0.8\n")
        } else if index == 0 {
            anthropic_cut("## Findings\n\n- The first requirement")
        } else {
            anthropic_stream(&answer_for(request.prompt()))
        }
    });
    let repo = http_repo("anthropic", &server.origin());
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();

    let requests = server.requests();
    let continuation = requests
        .iter()
        .find(|request| is_continuation(request))
        .unwrap_or_else(|| panic!("the cut answer was never continued: {requests:#?}"));
    let messages = &continuation.body["messages"];
    assert_eq!(
        messages[1]["content"], "## Findings\n\n- The first requirement",
        "{messages:#}"
    );
    assert_eq!(messages[2]["role"], "user");
    assert!(
        messages[2]["content"]
            .as_str()
            .is_some_and(|ask| ask.contains("Continue exactly where it stopped")),
        "{messages:#}"
    );

    let status = repo.run_status(&run);
    let cut = truncations(&status);
    assert_eq!(cut.len(), 1, "{status:#}");
    assert_eq!(cut[0]["handling"], "continued", "{:#}", cut[0]);
    // The joined answer went on to the review, as one text.
    assert!(
        requests.iter().any(|request| request
            .prompt()
            .contains("- The first requirement is covered.")),
        "the continued answer never reached a later prompt"
    );
    // A whole answer needs no warning.
    assert!(
        !requests
            .iter()
            .any(|request| request.prompt().contains("output-token limit")),
        "a continued answer was reported as incomplete"
    );
}

#[test]
fn on_truncation_fail_fails_each_attempt_once_with_what_to_change() {
    let server = LoopbackServer::start(|_, _| openai_cut("half an answer"));
    let repo = http_repo("openai", &format!("{}/v1", server.origin()))
        .set("backends.local", "on_truncation", "\"fail\"")
        .set("backends.local", "max_tokens", "16");
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], Some(KEY))
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("the model stopped at its output-token limit")
        .stderr_has("raise backends.local.max_tokens (now 16)");
    let (_, parallel) = agent_attempts(&ran.json_lines());
    for agent in PLAN_AGENTS {
        let attempts = &parallel[agent];
        assert_eq!(attempts.len(), 1, "{agent} was retried: {attempts:#?}");
        assert_eq!(attempts[0]["failure"]["kind"], "permanent");
    }
    for request in server.requests() {
        assert_eq!(request.body["max_tokens"], 16, "{}", request.body);
        assert!(!is_continuation(&request), "a failing cut was continued");
    }
}

#[test]
fn an_exhausted_quota_is_permanent_and_says_so() {
    let server = LoopbackServer::start(|_, _| {
        Reply::json(
            429,
            &json!({"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }}),
        )
        .with_header("retry-after", "20")
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], Some(KEY))
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("You exceeded your current quota")
        .stderr_has("out of quota or credit");
    let events = ran.json_lines();
    assert!(
        !events
            .iter()
            .any(|event| event["event"] == "retry_scheduled"),
        "an exhausted quota was retried as a rate limit"
    );
}

#[test]
fn reasoning_is_left_out_of_the_answer_and_counted() {
    let server = LoopbackServer::start(|request, _| {
        let answer = answer_for(request.prompt());
        Reply::data_events(&[
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "SECRET-PLAN hidden thoughts"}}]})
                .to_string(),
            json!({"choices": [{"index": 0, "delta": {"content": format!("<think>more THINKING</think>{answer}")}}]})
                .to_string(),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string(),
            json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 40,
                   "completion_tokens_details": {"reasoning_tokens": 12}}})
                .to_string(),
            "[DONE]".to_owned(),
        ])
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let plan = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert!(plan.contains("Loopback findings"), "{plan}");
    for request in server.requests() {
        assert!(
            !request.prompt().contains("THINKING") && !request.prompt().contains("SECRET-PLAN"),
            "reasoning reached a later prompt"
        );
    }
    assert!(!plan.contains("THINKING"), "{plan}");
    let text = repo.run(&["status", &run]).expect_code(EXIT_DONE);
    assert!(
        text.stdout
            .contains("left out of its answer: 12 tokens, 40 characters"),
        "{text:?}"
    );
}

/// A Responses API stream of `text`.
fn responses_stream(text: &str) -> Reply {
    Reply::named_events(&[
        (
            "response.created",
            json!({"type": "response.created", "response": {"status": "in_progress"}}),
        ),
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "delta": text}),
        ),
        (
            "response.completed",
            json!({"type": "response.completed", "response": {"status": "completed",
                   "usage": {"input_tokens": 10, "output_tokens": 20}}}),
        ),
    ])
}

#[test]
fn a_stage_runs_over_the_responses_api() {
    let server =
        LoopbackServer::start(|request, _| responses_stream(&answer_for(request.prompt())));
    let repo = http_repo("openai", &format!("{}/v1", server.origin()))
        .set("backends.local", "api", "\"responses\"")
        .set("backends.local", "max_tokens", "2000");
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let plan = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert!(plan.contains("Loopback findings"), "{plan}");
    for request in server.requests() {
        assert_eq!(request.path, "/v1/responses");
        assert_eq!(request.body["max_output_tokens"], 2000, "{}", request.body);
        assert_eq!(request.body["store"], false);
        assert_eq!(request.body["input"][0]["role"], "user");
    }
}
