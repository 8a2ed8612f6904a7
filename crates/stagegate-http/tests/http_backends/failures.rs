//! How calls fail and how those failures are classified: rate limits and their shared pause,
//! server errors, garbage, stalls, deadlines, cancellation and an unreachable server.

use std::time::Duration;

use stagegate_engine::backend::{Backend, Failure};
use stagegate_http::{KeySource, OpenAiAgent, backend_from_settings};
use stagegate_settings::{BackendSettings, HttpOptions, OnTruncation, OpenAiApi};
use tokio::time::Instant;

use crate::support::{Reply, Server, TIMEOUT, request};

const KEY: &str = "sk-test-secret-failures-6";

fn agent(base_url: &str) -> OpenAiAgent {
    OpenAiAgent::new(
        base_url,
        "gpt-4o-mini",
        Some("STAGEGATE_TEST_KEY_6"),
        None,
        None,
    )
    .expect("agent")
    .with_key_source(KeySource::from_fn("STAGEGATE_TEST_KEY_6", || {
        Some(KEY.to_owned())
    }))
}

fn answer(text: &str) -> Reply {
    Reply::Stream {
        pieces: vec![
            format!(
                "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":\"stop\"}}]}}\n\n"
            ),
            "data: [DONE]\n\n".to_owned(),
        ],
        delay: Duration::from_millis(5),
        stall: false,
    }
}

fn assert_retryable_containing(result: &Result<String, Failure>, expected: &str) {
    match result {
        Err(failure @ Failure::Retryable { message }) => {
            assert!(message.contains(expected), "{failure:?}");
            assert!(!message.contains(KEY), "{failure:?}");
        }
        other => panic!("expected a retryable failure containing {expected:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rate_limit_pauses_every_later_call_on_the_backend() {
    let server = Server::start(vec![
        Reply::json(
            429,
            r#"{"error":{"message":"Rate limit reached for requests","type":"requests"}}"#,
        )
        .with_header("retry-after", "1"),
        answer("first"),
        answer("second"),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::RateLimited {
            message: "429 Too Many Requests: Rate limit reached for requests".to_owned(),
            retry_after_ms: Some(1_000),
        })
    );

    // The retry and a call from another agent of the stage, at once: both wait the pause out.
    let (retry, other) = tokio::join!(
        agent.run(request("Check", TIMEOUT)),
        agent.run(request("Check", TIMEOUT)),
    );
    assert!(retry.result.is_ok(), "{retry:?}");
    assert!(other.result.is_ok(), "{other:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for later in &requests[1..] {
        let waited = later.at.duration_since(requests[0].at);
        assert!(waited >= Duration::from_secs(1), "sent after {waited:?}");
    }
}

#[tokio::test]
async fn a_pause_past_the_deadline_fails_at_once_as_rate_limited() {
    let server = Server::start(vec![
        Reply::json(429, r#"{"error":{"message":"slow down"}}"#).with_header("retry-after", "30"),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert!(
        matches!(
            outcome.result,
            Err(Failure::RateLimited {
                retry_after_ms: Some(30_000),
                ..
            })
        ),
        "{outcome:?}"
    );
    let started = Instant::now();
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    match outcome.result {
        Err(Failure::RateLimited {
            message,
            retry_after_ms: Some(remaining),
        }) => {
            assert!((25_000..=30_000).contains(&remaining), "{remaining}");
            assert!(
                message.contains("past this attempt's deadline"),
                "{message}"
            );
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.requests().len(), 1, "nothing sent during the pause");
}

#[tokio::test]
async fn a_paused_call_can_be_cancelled() {
    let server = Server::start(vec![
        Reply::json(429, r#"{"error":{"message":"slow down"}}"#).with_header("retry-after", "5"),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert!(
        matches!(outcome.result, Err(Failure::RateLimited { .. })),
        "{outcome:?}"
    );
    let call = request("Check", TIMEOUT);
    let cancel = call.cancel.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(agent.run(call));
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let outcome = waiting.await.expect("the call's task");
    assert_eq!(outcome.result, Err(Failure::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.requests().len(), 1, "nothing sent during the pause");
}

#[tokio::test]
async fn a_server_error_is_retryable_and_the_next_call_succeeds() {
    let server = Server::start(vec![
        Reply::json(500, r#"{"error":{"message":"the model crashed"}}"#),
        answer("recovered"),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::retryable(
            "500 Internal Server Error: the model crashed"
        ))
    );
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(outcome.result, Ok("recovered".to_owned()));
}

#[tokio::test]
async fn a_malformed_answer_is_retryable() {
    let server = Server::start(vec![
        Reply::json(200, r#"{"choices": [ {"message": "#),
        Reply::stream(&["data: {\"choices\": [oops\n\n"]),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(&outcome.result, "the server's answer could not be read: ");
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(&outcome.result, "the server's answer could not be read: ");
}

#[tokio::test]
async fn an_empty_or_unfinished_answer_is_retryable() {
    let server = Server::start(vec![
        Reply::stream(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ]),
        // The connection closes in the middle of the answer.
        Reply::stream(&["data: {\"choices\":[{\"delta\":{\"content\":\"Half an\"}}]}\n\n"]),
    ])
    .await;
    let agent = agent(&server.base_url);
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_eq!(
        outcome.result,
        Err(Failure::retryable("the model returned no text"))
    );
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(
        &outcome.result,
        "the stream ended before the answer was complete",
    );
}

#[tokio::test]
async fn a_stalled_stream_fails_after_the_idle_timeout() {
    let server = Server::start(vec![Reply::Stream {
        pieces: vec!["data: {\"choices\":[{\"delta\":{\"content\":\"Thinking\"}}]}\n\n".to_owned()],
        delay: Duration::from_millis(10),
        stall: true,
    }])
    .await;
    let agent = agent(&server.base_url).with_idle_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = agent.run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(&outcome.result, "the stream stalled");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn the_idle_timeout_setting_reaches_the_backend() {
    let server = Server::start(vec![Reply::Stream {
        pieces: vec!["data: {\"choices\":[{\"delta\":{\"content\":\"Thinking\"}}]}\n\n".to_owned()],
        delay: Duration::from_millis(10),
        stall: true,
    }])
    .await;
    let settings = BackendSettings::OpenAi {
        base_url: server.base_url.clone(),
        model: "m".to_owned(),
        api_key_env: None,
        temperature: None,
        max_tokens: None,
        api: OpenAiApi::ChatCompletions,
        http: HttpOptions {
            idle_timeout: Duration::from_millis(250),
            on_truncation: OnTruncation::Continue,
        },
    };
    let backend = backend_from_settings("local", &settings)
        .expect("an HTTP kind")
        .expect("valid settings");
    let outcome = backend.run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(&outcome.result, "no data from the server for 250 ms");
}

#[tokio::test]
async fn a_call_past_its_deadline_times_out() {
    let server = Server::start(vec![Reply::Hang]).await;
    let started = Instant::now();
    let outcome = agent(&server.base_url)
        .run(request("Check", Duration::from_millis(300)))
        .await;
    match outcome.result {
        Err(Failure::TimedOut { after_ms }) => assert!((300..5_000).contains(&after_ms)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn cancellation_ends_a_call_at_once() {
    let server = Server::start(vec![Reply::Hang]).await;
    let call = request("Check", TIMEOUT);
    let cancel = call.cancel.clone();
    let started = Instant::now();
    let running = tokio::spawn(agent(&server.base_url).run(call));
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let outcome = running.await.expect("the call's task");
    assert_eq!(outcome.result, Err(Failure::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_server_is_retryable_and_named() {
    // A port that was free a moment ago: nothing listens there now.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let base_url = format!("http://{address}/v1");
    let outcome = agent(&base_url).run(request("Check", TIMEOUT)).await;
    assert_retryable_containing(
        &outcome.result,
        &format!("could not reach {base_url}/chat/completions"),
    );
}

#[tokio::test]
async fn an_answer_over_the_output_cap_is_permanent() {
    let server = Server::start(vec![answer(&"x".repeat(200))]).await;
    let mut call = request("Check", TIMEOUT);
    call.output_cap_bytes = 100;
    let outcome = agent(&server.base_url).run(call).await;
    assert_eq!(
        outcome.result,
        Err(Failure::permanent(
            "the answer is larger than the output cap of 100 bytes"
        ))
    );
}
