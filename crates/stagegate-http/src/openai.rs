//! The `openai` backend: OpenAI-compatible chat completions (`POST {base_url}/chat/completions`),
//! which OpenAI, llama.cpp's server, Ollama and vLLM all speak.
//!
//! The prompt goes as one user message with `"stream": true`; the answer comes back as
//! server-sent events (`data: {chunk}` with `choices[0].delta.content`, then `data: [DONE]`),
//! usage in the last chunk when asked for with `stream_options.include_usage`. A server that
//! ignores `stream` and answers with one JSON body (`choices[0].message.content`) works too.
//! The key is optional: local servers need none.
//!
//! The token limit goes as `max_completion_tokens` to OpenAI itself and to its reasoning models
//! (which refuse the deprecated `max_tokens`), and as `max_tokens` to every other server.
//! Reasoning that comes apart from the answer (`reasoning_content`, `reasoning`) is counted and
//! left out. `api = "responses"` speaks OpenAI's Responses API instead (see `responses`).

use std::time::Duration;

use eventsource_stream::Event;
use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use stagegate_engine::backend::{
    AgentOutcome, AgentRequest, Backend, BoxFuture, Failure, NotedOutcome,
};
use stagegate_settings::{OnTruncation, OpenAiApi};

use crate::answer::{Answer, Stop, unreadable};
use crate::backend_error::HttpBackendError;
use crate::client::{Transport, WireFormat};
use crate::key_source::KeySource;
use crate::responses::ResponsesWire;

/// An agent answered by an OpenAI-compatible chat-completions server.
#[derive(Debug, Clone)]
pub struct OpenAiAgent {
    transport: Transport,
    base_url: String,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    api: OpenAiApi,
}

impl OpenAiAgent {
    /// An agent for `model` at `base_url` (e.g. `http://127.0.0.1:8080/v1`), with the key read
    /// from the variable `api_key_env` at each call when one is named.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key_env: Option<&str>,
        temperature: Option<f64>,
        max_tokens: Option<u32>,
    ) -> Result<Self, HttpBackendError> {
        if let Some(temperature) = temperature
            && !(temperature.is_finite() && (0.0..=2.0).contains(&temperature))
        {
            return Err(HttpBackendError::InvalidTemperature(
                temperature.to_string(),
            ));
        }
        if max_tokens == Some(0) {
            return Err(HttpBackendError::ZeroMaxTokens);
        }
        let key = api_key_env.map(KeySource::env);
        let mut transport = Transport::new(base_url, "/chat/completions", model, key)?;
        transport.token_limit = max_tokens;
        Ok(OpenAiAgent {
            transport,
            base_url: base_url.to_owned(),
            temperature,
            max_tokens,
            api: OpenAiApi::ChatCompletions,
        })
    }

    /// Speaks `api`: chat completions (the default) or the Responses API.
    pub fn with_api(mut self, api: OpenAiApi) -> Result<Self, HttpBackendError> {
        let path = match api {
            OpenAiApi::ChatCompletions => "/chat/completions",
            OpenAiApi::Responses => "/responses",
        };
        self.transport.set_path(&self.base_url, path)?;
        self.api = api;
        Ok(self)
    }

    fn body(&self, request: &AgentRequest) -> Value {
        if self.api == OpenAiApi::Responses {
            return crate::responses::body(
                &self.transport.model,
                &request.prompt,
                self.temperature,
                self.max_tokens,
            );
        }
        let mut body = json!({
            "model": self.transport.model,
            "messages": [{"role": "user", "content": &*request.prompt}],
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(temperature) = self.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = self.max_tokens {
            body[token_limit_field(&self.base_url, &self.transport.model)] = json!(max_tokens);
        }
        body
    }
}

/// The name of the token limit: OpenAI deprecated `max_tokens` for `max_completion_tokens`,
/// and its reasoning models refuse the old name; compatible servers (llama.cpp, Ollama, vLLM,
/// proxies) may only know the old one.
fn token_limit_field(base_url: &str, model: &str) -> &'static str {
    let model = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let reasoning_model = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| model.starts_with(family));
    if reasoning_model || base_url.contains("://api.openai.com") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

impl Backend for OpenAiAgent {
    fn kind(&self) -> &'static str {
        "openai"
    }

    /// Kind, server, model and sampling settings: what shapes the answer. Never the key.
    /// Settings left at their defaults add nothing, so that existing cache entries stay valid.
    fn fingerprint(&self) -> String {
        let mut fingerprint = format!(
            "openai:{}:{}:temperature={:?}:max_tokens={:?}",
            self.base_url, self.transport.model, self.temperature, self.max_tokens
        );
        if self.api != OpenAiApi::default() {
            fingerprint.push_str(&format!(":api={}", self.api.as_str()));
        }
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
        match self.api {
            OpenAiApi::ChatCompletions => Box::pin(transport.call::<OpenAiWire>(request, body)),
            OpenAiApi::Responses => Box::pin(transport.call::<ResponsesWire>(request, body)),
        }
    }
}

/// OpenAI's authentication, for both of its wire formats: the key as a bearer token.
pub(crate) fn bearer(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
    match key {
        Some(key) => request.header(AUTHORIZATION, format!("Bearer {key}")),
        None => request,
    }
}

/// The chat-completions wire format.
struct OpenAiWire;

impl WireFormat for OpenAiWire {
    fn authorize(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
        bearer(request, key)
    }

    fn on_event(event: &Event, answer: &mut Answer) -> Result<(), Failure> {
        let data = event.data.trim();
        if data == "[DONE]" {
            answer.complete = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|error| unreadable(format!("a chunk is not JSON ({error})")))?;
        if let Some(message) = error_message(&chunk) {
            return Err(Failure::retryable(format!(
                "the server failed during the answer: {message}"
            )));
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            answer.text.push_str(text);
        }
        if let Some(reasoning) = reasoning_text(delta) {
            answer.add_reasoning(reasoning);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            answer.stop = Some(stop(reason));
        }
        read_usage(&chunk["usage"], answer);
        Ok(())
    }

    fn parse_json(body: &Value) -> Result<Answer, Failure> {
        if let Some(message) = error_message(body) {
            return Err(Failure::retryable(format!("the server failed: {message}")));
        }
        let message = &body["choices"][0]["message"];
        if message.is_null() {
            return Err(unreadable("it has no choices[0].message"));
        }
        let mut answer = Answer {
            text: message["content"].as_str().unwrap_or_default().to_owned(),
            stop: Some(stop(
                body["choices"][0]["finish_reason"]
                    .as_str()
                    .unwrap_or("stop"),
            )),
            complete: true,
            ..Answer::default()
        };
        if let Some(reasoning) = reasoning_text(message) {
            answer.add_reasoning(reasoning);
        }
        read_usage(&body["usage"], &mut answer);
        Ok(answer)
    }
}

/// `length` is the token limit; every other reason (`stop`, `tool_calls`, `content_filter`)
/// ends the answer as it is.
fn stop(finish_reason: &str) -> Stop {
    match finish_reason {
        "length" => Stop::TokenLimit,
        _ => Stop::Ended,
    }
}

/// Reasoning sent beside the answer: `reasoning_content` (llama.cpp, DeepSeek, vLLM) or
/// `reasoning` (Ollama, OpenRouter).
fn reasoning_text(message: &Value) -> Option<&str> {
    message["reasoning_content"]
        .as_str()
        .or(message["reasoning"].as_str())
        .filter(|text| !text.is_empty())
}

/// `usage.prompt_tokens`, `usage.completion_tokens` and the reasoning tokens among them, when
/// the chunk has them.
fn read_usage(usage: &Value, answer: &mut Answer) {
    if let Some(tokens) = usage["prompt_tokens"].as_u64() {
        answer.input_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["completion_tokens"].as_u64() {
        answer.output_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["completion_tokens_details"]["reasoning_tokens"].as_u64() {
        answer.reasoning_tokens = Some(tokens);
    }
}

/// An `error` object (or string) some servers send inside a 200 answer.
fn error_message(json: &Value) -> Option<String> {
    let error = json.get("error").filter(|error| !error.is_null())?;
    Some(
        error["message"]
            .as_str()
            .or(error.as_str())
            .map_or_else(|| error.to_string(), str::to_owned),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> Event {
        Event {
            data: text.to_owned(),
            ..Event::default()
        }
    }

    #[test]
    fn chunks_assemble_text_usage_and_completion() {
        let mut answer = Answer::default();
        for chunk in [
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
            "[DONE]",
        ] {
            OpenAiWire::on_event(&data(chunk), &mut answer).expect("a chunk");
        }
        assert_eq!(answer.text, "Hello");
        assert_eq!(
            (answer.input_tokens, answer.output_tokens),
            (Some(7), Some(2))
        );
        assert!(answer.stop == Some(Stop::Ended) && answer.complete);
    }

    #[test]
    fn a_length_finish_is_a_cut_and_reasoning_is_kept_apart() {
        let mut answer = Answer::default();
        for chunk in [
            r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
            r#"{"choices":[{"delta":{"content":"Part"},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":4}}}"#,
        ] {
            OpenAiWire::on_event(&data(chunk), &mut answer).expect("a chunk");
        }
        assert_eq!(answer.text, "Part");
        assert!(answer.is_cut());
        assert_eq!(
            (answer.reasoning_chars, answer.reasoning_tokens),
            (5, Some(4))
        );
    }

    #[test]
    fn reasoning_models_and_openai_get_max_completion_tokens() {
        assert_eq!(
            token_limit_field("https://api.openai.com/v1", "gpt-4.1"),
            "max_completion_tokens"
        );
        assert_eq!(
            token_limit_field("https://proxy.example/v1", "openai/o3-mini"),
            "max_completion_tokens"
        );
        assert_eq!(
            token_limit_field("http://127.0.0.1:8080/v1", "gemma-3-270m"),
            "max_tokens"
        );
    }

    #[test]
    fn garbage_and_error_chunks_are_retryable() {
        let mut answer = Answer::default();
        let failure = OpenAiWire::on_event(&data("{not json"), &mut answer).expect_err("garbage");
        assert!(failure.is_retryable(), "{failure:?}");
        let failure = OpenAiWire::on_event(
            &data(r#"{"error":{"message":"model crashed"}}"#),
            &mut answer,
        )
        .expect_err("error chunk");
        assert_eq!(
            failure,
            Failure::retryable("the server failed during the answer: model crashed")
        );
    }

    #[test]
    fn fingerprints_name_what_shapes_the_answer() {
        let agent = OpenAiAgent::new(
            "http://127.0.0.1:8080/v1",
            "gemma",
            Some("OPENAI_API_KEY"),
            Some(0.2),
            Some(512),
        )
        .expect("agent");
        assert_eq!(
            agent.fingerprint(),
            "openai:http://127.0.0.1:8080/v1:gemma:temperature=Some(0.2):max_tokens=Some(512)"
        );
        assert!(OpenAiAgent::new("localhost:8080", "gemma", None, None, None).is_err());
        assert!(OpenAiAgent::new("ftp://host/v1", "gemma", None, None, None).is_err());
        assert_eq!(
            OpenAiAgent::new("http://host/v1", " ", None, None, None).err(),
            Some(HttpBackendError::EmptyModel)
        );
    }
}

crate::client::transport_options!(OpenAiAgent);
