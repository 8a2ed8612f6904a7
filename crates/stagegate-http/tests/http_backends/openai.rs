//! The `openai` backend: what it sends and how it reads streamed and whole answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use stagegate_engine::backend::{Backend, Failure, Usage};
use stagegate_http::{KeySource, OpenAiAgent};

use crate::support::{Reply, Server, TIMEOUT, request};

const KEY: &str = "sk-test-secret-openai-1";

fn agent(server: &Server) -> OpenAiAgent {
    OpenAiAgent::new(
        &format!("{}/v1", server.base_url),
        "gemma-3-270m",
        Some("STAGEGATE_TEST_KEY_1"),
        Some(0.2),
        Some(256),
    )
    .expect("agent")
    .with_key_source(KeySource::from_fn("STAGEGATE_TEST_KEY_1", || {
        Some(KEY.to_owned())
    }))
}

#[tokio::test]
async fn a_streamed_answer_is_assembled_in_order_with_its_usage() {
    let server = Server::start(vec![Reply::stream(&[
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
        // An event split across chunks, and two events in one chunk.
        "data: {\"choices\":[{\"delta\":{\"content\":\"# Plan",
        "\\n\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Step one. \"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Step twö.\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":9,\"total_tokens\":51}}\n\n",
        "data: [DONE]\n\n",
    ])])
    .await;
    let outcome = agent(&server).run(request("Write the plan", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("# Plan\nStep one. Step twö.".to_owned()));
    assert_eq!(
        outcome.usage,
        Some(Usage {
            input_tokens: 42,
            output_tokens: 9,
            cost_usd: None,
        })
    );
}

#[tokio::test]
async fn the_request_carries_the_bearer_key_model_and_settings() {
    let server = Server::start(vec![Reply::stream(&[
        "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ])])
    .await;
    let outcome = agent(&server).run(request("Write the plan", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("ok".to_owned()));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "gemma-3-270m",
            "messages": [{"role": "user", "content": "Write the plan"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.2,
            "max_tokens": 256,
        })
    );
}

#[tokio::test]
async fn a_whole_json_answer_is_accepted_and_no_key_means_no_authorization() {
    let server = Server::start(vec![Reply::json(
        200,
        r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"All good."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
    )])
    .await;
    let agent = OpenAiAgent::new(&server.base_url, "llama", None, None, None).expect("agent");
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("All good.".to_owned()));
    assert_eq!(
        outcome.usage,
        Some(Usage {
            input_tokens: 12,
            output_tokens: 3,
            cost_usd: None,
        })
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body.get("temperature"), None);
    assert_eq!(sent.body.get("max_tokens"), None);
}

#[tokio::test]
async fn the_key_is_read_from_the_environment_at_each_call() {
    // Cargo sets CARGO_PKG_NAME for the tests it runs: a variable that is there without a test
    // having to change the environment.
    let server = Server::start(vec![Reply::stream(&[
        "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ])])
    .await;
    let agent = OpenAiAgent::new(
        &server.base_url,
        "llama",
        Some("CARGO_PKG_NAME"),
        None,
        None,
    )
    .expect("agent");
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("ok".to_owned()));
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(concat!("Bearer ", env!("CARGO_PKG_NAME")))
    );
}

#[tokio::test]
async fn a_missing_key_is_permanent_and_names_the_variable() {
    let server = Server::start(Vec::new()).await;
    let agent = OpenAiAgent::new(
        &server.base_url,
        "gpt-4o-mini",
        Some("STAGEGATE_TEST_KEY_NEVER_SET_2"),
        None,
        None,
    )
    .expect("agent")
    .named("local");
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::permanent(
            "environment variable STAGEGATE_TEST_KEY_NEVER_SET_2 is not set; export it or change \
             backends.local.api_key_env"
        ))
    );
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_key_set_after_a_failed_call_is_used_by_the_next() {
    let server = Server::start(vec![Reply::stream(&[
        "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ])])
    .await;
    let reads = Arc::new(AtomicU32::new(0));
    let counter = reads.clone();
    let agent = OpenAiAgent::new(
        &server.base_url,
        "gpt",
        Some("STAGEGATE_TEST_KEY_3"),
        None,
        None,
    )
    .expect("agent")
    .with_key_source(KeySource::from_fn("STAGEGATE_TEST_KEY_3", move || {
        // Unset on the first read, exported before the second.
        (counter.fetch_add(1, Ordering::SeqCst) > 0).then(|| "sk-late-key-3".to_owned())
    }));
    let first = agent.run(request("Check", TIMEOUT)).await;
    assert!(
        matches!(&first.result, Err(Failure::Permanent { message }) if message.contains("STAGEGATE_TEST_KEY_3")),
        "{first:?}"
    );
    let second = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(second.result, Ok("ok".to_owned()));
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer sk-late-key-3")
    );
}
