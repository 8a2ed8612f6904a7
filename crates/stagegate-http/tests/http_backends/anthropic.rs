//! The `anthropic` backend: what it sends, how it reads the event stream, how it fails.

use serde_json::json;
use stagegate_engine::backend::{Backend, Failure, Usage};
use stagegate_http::{AnthropicAgent, KeySource};

use crate::support::{Reply, Server, TIMEOUT, request};

const KEY: &str = "sk-ant-test-secret-4";

fn agent(server: &Server) -> AnthropicAgent {
    AnthropicAgent::new(
        &server.base_url,
        "claude-sonnet-4-5",
        "STAGEGATE_TEST_KEY_4",
        2048,
    )
    .expect("agent")
    .named("sonnet")
    .with_key_source(KeySource::from_fn("STAGEGATE_TEST_KEY_4", || {
        Some(KEY.to_owned())
    }))
}

fn event(name: &str, data: serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn answer_events() -> Vec<String> {
    vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
                "usage": {"input_tokens": 321, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "## Risks\n"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "None found.\nCONFIDENCE: 0.9"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 17}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ]
}

#[tokio::test]
async fn a_streamed_answer_is_assembled_with_its_usage() {
    let events = answer_events();
    let pieces: Vec<&str> = events.iter().map(String::as_str).collect();
    let server = Server::start(vec![Reply::stream(&pieces)]).await;
    let outcome = agent(&server).run(request("Find the risks", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Ok("## Risks\nNone found.\nCONFIDENCE: 0.9".to_owned())
    );
    assert_eq!(
        outcome.usage,
        Some(Usage {
            input_tokens: 321,
            output_tokens: 17,
            cost_usd: None,
        })
    );
}

#[tokio::test]
async fn the_request_carries_the_key_version_and_body() {
    let events = answer_events();
    let pieces: Vec<&str> = events.iter().map(String::as_str).collect();
    let server = Server::start(vec![Reply::stream(&pieces)]).await;
    let outcome = agent(&server).run(request("Find the risks", TIMEOUT)).await;
    assert!(outcome.result.is_ok(), "{outcome:?}");

    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 2048,
            "system": "You are the Solution Architect in the stage \"Stage A: Planning/Spec\" of a \
                       spec-kit workflow run by stagegate. Answer with the requested content only.",
            "messages": [{"role": "user", "content": "Find the risks"}],
            "stream": true,
        })
    );
}

#[tokio::test]
async fn a_whole_json_answer_is_accepted() {
    let server = Server::start(vec![Reply::json(
        200,
        r#"{"type":"message","content":[{"type":"text","text":"Done."}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#,
    )])
    .await;
    let outcome = agent(&server).run(request("Check", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("Done.".to_owned()));
    assert_eq!(
        outcome.usage,
        Some(Usage {
            input_tokens: 5,
            output_tokens: 2,
            cost_usd: None,
        })
    );
}

#[tokio::test]
async fn unauthorized_is_permanent_with_the_servers_message_and_never_the_key() {
    let server = Server::start(vec![
        Reply::json(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
        // A server that echoes what it was sent.
        Reply::json(
            403,
            &format!(r#"{{"error":{{"message":"key {KEY} is not allowed"}}}}"#),
        ),
    ])
    .await;
    let agent = agent(&server);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::permanent(
            "401 Unauthorized: invalid x-api-key (check the key in STAGEGATE_TEST_KEY_4)"
        ))
    );

    let echoed = agent.run(request("Check", TIMEOUT)).await;
    let failure = echoed.result.expect_err("403");
    assert!(!failure.is_retryable());
    for text in [
        failure.to_string(),
        format!("{failure:?}"),
        format!("{agent:?}"),
    ] {
        assert!(!text.contains(KEY), "the key leaked: {text}");
    }
    assert!(
        failure
            .to_string()
            .contains("key [REDACTED] is not allowed")
    );
    assert!(format!("{agent:?}").contains("STAGEGATE_TEST_KEY_4"));
}

#[tokio::test]
async fn an_overloaded_error_event_is_retryable() {
    let events = answer_events();
    let server = Server::start(vec![Reply::stream(&[
        &events[0],
        &event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
    ])])
    .await;
    let outcome = agent(&server).run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::retryable(
            "the server failed during the answer: overloaded_error: Overloaded"
        ))
    );
}

#[tokio::test]
async fn overloaded_529_is_a_rate_limit_with_its_retry_after() {
    let server = Server::start(vec![
        Reply::json(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .with_header("retry-after", "0"),
    ])
    .await;
    let outcome = agent(&server).run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::RateLimited {
            message: "529 Overloaded: Overloaded".to_owned(),
            retry_after_ms: Some(0),
        })
    );
}

#[tokio::test]
async fn a_missing_key_is_permanent_and_names_the_variable() {
    let server = Server::start(Vec::new()).await;
    let agent = AnthropicAgent::new(
        &server.base_url,
        "claude-sonnet-4-5",
        "STAGEGATE_TEST_KEY_NEVER_SET_5",
        1024,
    )
    .expect("agent")
    .named("sonnet");
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::permanent(
            "environment variable STAGEGATE_TEST_KEY_NEVER_SET_5 is not set; export it or change \
             backends.sonnet.api_key_env"
        ))
    );
    assert!(server.requests().is_empty());
}

#[test]
fn the_fingerprint_names_the_model_and_never_the_key() {
    let agent = AnthropicAgent::new(
        "https://api.anthropic.com",
        "claude-sonnet-4-5",
        "ANTHROPIC_API_KEY",
        4096,
    )
    .expect("agent");
    assert_eq!(agent.kind(), "anthropic");
    assert_eq!(
        agent.fingerprint(),
        "anthropic:https://api.anthropic.com:claude-sonnet-4-5:temperature=None:max_tokens=4096"
    );
}
