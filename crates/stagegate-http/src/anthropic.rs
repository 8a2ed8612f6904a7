//! The `anthropic` backend: Anthropic's Messages API (`POST {base_url}/v1/messages`).
//!
//! The prompt goes as one user message under a short system prompt naming the role and stage,
//! with `"stream": true`. The streamed answer is a sequence of named events: `message_start`
//! (input tokens), `content_block_delta` (text), `message_delta` (output tokens, stop reason),
//! `message_stop`, and `error` (e.g. `overloaded_error`, worth another try). The key is required.
//!
//! Thinking blocks (`thinking_delta`) are counted and left out of the answer; a `stop_reason` of
//! `max_tokens` is a cut answer. Input tokens include the prompt-cache reads and writes
//! (`cache_read_input_tokens`, `cache_creation_input_tokens`): the prompt was that long.

use std::time::Duration;

use eventsource_stream::Event;
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use stagegate_engine::backend::{
    AgentOutcome, AgentRequest, Backend, BoxFuture, Failure, NotedOutcome,
};
use stagegate_settings::OnTruncation;

use crate::answer::{Answer, Stop, unreadable};
use crate::backend_error::HttpBackendError;
use crate::client::{Transport, WireFormat};
use crate::key_source::KeySource;

/// The API version this format is written against.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An agent answered by Anthropic's Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicAgent {
    transport: Transport,
    base_url: String,
    max_tokens: u32,
}

impl AnthropicAgent {
    /// An agent for `model` at `base_url` (`https://api.anthropic.com`; a trailing `/v1` is
    /// tolerated), with the key read from the variable `api_key_env` at each call.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key_env: &str,
        max_tokens: u32,
    ) -> Result<Self, HttpBackendError> {
        if max_tokens == 0 {
            return Err(HttpBackendError::ZeroMaxTokens);
        }
        let root = base_url.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root);
        let mut transport = Transport::new(
            root,
            "/v1/messages",
            model,
            Some(KeySource::env(api_key_env)),
        )?;
        transport.token_limit = Some(max_tokens);
        Ok(AnthropicAgent {
            transport,
            base_url: base_url.to_owned(),
            max_tokens,
        })
    }

    fn body(&self, request: &AgentRequest) -> Value {
        json!({
            "model": self.transport.model,
            "max_tokens": self.max_tokens,
            "system": system_prompt(request),
            "messages": [{"role": "user", "content": &*request.prompt}],
            "stream": true,
        })
    }
}

/// Who the model is asked to be: the role in its stage, from the call's materials (or, for calls
/// without them, the agent id and the stage id).
fn system_prompt(request: &AgentRequest) -> String {
    let materials = &request.materials;
    let identity = &request.identity;
    let role = if materials.role.trim().is_empty() {
        identity.agent.as_str()
    } else {
        materials.role.as_str()
    };
    let stage = if materials.stage_name.trim().is_empty() {
        identity.stage.as_str()
    } else {
        materials.stage_name.as_str()
    };
    format!(
        "You are the {role} in the stage \"{stage}\" of a spec-kit workflow run by stagegate. \
         Answer with the requested content only."
    )
}

impl Backend for AnthropicAgent {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    /// Kind, server, model and token limit: what shapes the answer. Never the key.
    fn fingerprint(&self) -> String {
        let mut fingerprint = format!(
            "anthropic:{}:{}:temperature=None:max_tokens={}",
            self.base_url, self.transport.model, self.max_tokens
        );
        if self.transport.on_truncation != OnTruncation::default() {
            fingerprint.push_str(&format!(
                ":on_truncation={}",
                self.transport.on_truncation.as_str()
            ));
        }
        fingerprint
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let noted = self.run_noted(request);
        Box::pin(async move { noted.await.outcome })
    }

    fn run_noted(&self, request: AgentRequest) -> BoxFuture<NotedOutcome> {
        let body = self.body(&request);
        let transport = self.transport.clone();
        Box::pin(transport.call::<AnthropicWire>(request, body))
    }
}

/// The Messages wire format.
struct AnthropicWire;

impl WireFormat for AnthropicWire {
    fn authorize(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
        let request = request.header("anthropic-version", ANTHROPIC_VERSION);
        match key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    fn on_event(event: &Event, answer: &mut Answer) -> Result<(), Failure> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let payload: Value = serde_json::from_str(data)
            .map_err(|error| unreadable(format!("an event is not JSON ({error})")))?;
        // `type` in the payload repeats the event's name; either will do.
        let kind = payload["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "message_start" => read_usage(&payload["message"]["usage"], answer),
            "content_block_delta" => {
                let delta = &payload["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(text) = delta["text"].as_str() {
                            answer.text.push_str(text);
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(thinking) = delta["thinking"].as_str() {
                            answer.add_reasoning(thinking);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                read_usage(&payload["usage"], answer);
                if let Some(reason) = payload["delta"]["stop_reason"].as_str() {
                    answer.stop = Some(stop(reason));
                }
            }
            "message_stop" => answer.complete = true,
            "error" => return Err(stream_error(&payload["error"])),
            // `ping`, `content_block_start`, `content_block_stop`, and kinds added later.
            _ => {}
        }
        Ok(())
    }

    fn parse_json(body: &Value) -> Result<Answer, Failure> {
        if body["type"] == "error" {
            return Err(stream_error(&body["error"]));
        }
        let Some(blocks) = body["content"].as_array() else {
            return Err(unreadable("it has no content"));
        };
        let mut answer = Answer {
            text: blocks
                .iter()
                .filter(|block| block["type"] == "text")
                .filter_map(|block| block["text"].as_str())
                .collect(),
            stop: Some(stop(body["stop_reason"].as_str().unwrap_or("end_turn"))),
            complete: true,
            ..Answer::default()
        };
        for block in blocks.iter().filter(|block| block["type"] == "thinking") {
            if let Some(thinking) = block["thinking"].as_str() {
                answer.add_reasoning(thinking);
            }
        }
        read_usage(&body["usage"], &mut answer);
        Ok(answer)
    }
}

/// `max_tokens` (and a full context window) cut the answer; `end_turn`, `stop_sequence`,
/// `refusal` and the rest end it.
fn stop(stop_reason: &str) -> Stop {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => Stop::TokenLimit,
        _ => Stop::Ended,
    }
}

/// Input (with the prompt cache's reads and writes) and output tokens, where present
/// (`message_delta` carries output only). Later counts replace earlier ones: they are totals.
fn read_usage(usage: &Value, answer: &mut Answer) {
    let input = [
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ]
    .iter()
    .filter_map(|key| usage[*key].as_u64())
    .reduce(|total, tokens| total + tokens);
    if let Some(tokens) = input {
        answer.input_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["output_tokens"].as_u64() {
        answer.output_tokens = Some(tokens);
    }
}

/// An `error` event: overload, rate limits and internal errors pass; anything else will not.
fn stream_error(error: &Value) -> Failure {
    let kind = error["type"].as_str().unwrap_or("error");
    let message = format!(
        "the server failed during the answer: {kind}: {}",
        error["message"].as_str().unwrap_or("no message")
    );
    match kind {
        "overloaded_error" | "api_error" | "timeout_error" => Failure::retryable(message),
        "rate_limit_error" => Failure::RateLimited {
            message,
            retry_after_ms: None,
        },
        "billing_error" => Failure::permanent(format!(
            "{message} (the account has no credit left: add credit or change the plan; retrying cannot help)"
        )),
        _ => Failure::permanent(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            event: name.to_owned(),
            data: data.to_owned(),
            ..Event::default()
        }
    }

    #[test]
    fn events_assemble_text_usage_and_completion() {
        let mut answer = Answer::default();
        for (name, data) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type": "ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            AnthropicWire::on_event(&event(name, data), &mut answer).expect("an event");
        }
        assert_eq!(answer.text, "Hi there");
        assert_eq!(
            (answer.input_tokens, answer.output_tokens),
            (Some(25), Some(15))
        );
        assert!(answer.stop == Some(Stop::Ended) && answer.complete);
    }

    #[test]
    fn thinking_is_counted_apart_cache_tokens_are_input_and_max_tokens_is_a_cut() {
        let mut answer = Answer::default();
        for (name, data) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Cut here"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":64}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            AnthropicWire::on_event(&event(name, data), &mut answer).expect("an event");
        }
        assert_eq!(answer.text, "Cut here");
        assert_eq!(answer.reasoning_chars, 10);
        assert_eq!(
            (answer.input_tokens, answer.output_tokens),
            (Some(125), Some(64))
        );
        assert!(answer.is_cut());
    }

    #[test]
    fn overload_is_retryable_and_bad_requests_are_not() {
        let mut answer = Answer::default();
        let failure = AnthropicWire::on_event(
            &event(
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            &mut answer,
        )
        .expect_err("overloaded");
        assert_eq!(
            failure,
            Failure::retryable("the server failed during the answer: overloaded_error: Overloaded")
        );
        let failure = stream_error(&json!({"type": "invalid_request_error", "message": "bad"}));
        assert!(!failure.is_retryable());
    }

    #[test]
    fn a_trailing_v1_is_not_doubled() {
        for base_url in ["https://api.anthropic.com", "https://api.anthropic.com/v1/"] {
            let agent =
                AnthropicAgent::new(base_url, "claude", "ANTHROPIC_API_KEY", 1024).expect("agent");
            assert_eq!(
                agent.transport.endpoint(),
                "https://api.anthropic.com/v1/messages"
            );
        }
        assert_eq!(
            AnthropicAgent::new(
                "https://api.anthropic.com",
                "claude",
                "ANTHROPIC_API_KEY",
                0
            )
            .err(),
            Some(HttpBackendError::ZeroMaxTokens)
        );
    }
}

crate::client::transport_options!(AnthropicAgent);
