//! The `openai` backend: OpenAI-compatible chat completions (`POST {base_url}/chat/completions`),
//! which OpenAI, llama.cpp's server, Ollama and vLLM all speak.
//!
//! The prompt goes as one user message with `"stream": true`; the answer comes back as
//! server-sent events (`data: {chunk}` with `choices[0].delta.content`, then `data: [DONE]`),
//! usage in the last chunk when asked for with `stream_options.include_usage`. A server that
//! ignores `stream` and answers with one JSON body (`choices[0].message.content`) works too.
//! The key is optional: local servers need none.

use std::time::Duration;

use eventsource_stream::Event;
use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use stagegate_engine::backend::{AgentOutcome, AgentRequest, Backend, BoxFuture, Failure};

use crate::answer::{Answer, unreadable};
use crate::backend_error::HttpBackendError;
use crate::client::{Transport, WireFormat};
use crate::key_source::KeySource;

/// An agent answered by an OpenAI-compatible chat-completions server.
#[derive(Debug, Clone)]
pub struct OpenAiAgent {
    transport: Transport,
    base_url: String,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
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
        Ok(OpenAiAgent {
            transport: Transport::new(base_url, "/chat/completions", model, key)?,
            base_url: base_url.to_owned(),
            temperature,
            max_tokens,
        })
    }

    fn body(&self, request: &AgentRequest) -> Value {
        let mut body = json!({
            "model": self.transport.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(temperature) = self.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        body
    }
}

impl Backend for OpenAiAgent {
    fn kind(&self) -> &'static str {
        "openai"
    }

    /// Kind, server, model and sampling settings: what shapes the answer. Never the key.
    fn fingerprint(&self) -> String {
        format!(
            "openai:{}:{}:temperature={:?}:max_tokens={:?}",
            self.base_url, self.transport.model, self.temperature, self.max_tokens
        )
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let body = self.body(&request);
        let transport = self.transport.clone();
        Box::pin(transport.call::<OpenAiWire>(request, body))
    }
}

/// The chat-completions wire format.
struct OpenAiWire;

impl WireFormat for OpenAiWire {
    fn authorize(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
        match key {
            Some(key) => request.header(AUTHORIZATION, format!("Bearer {key}")),
            None => request,
        }
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
        if let Some(text) = choice["delta"]["content"].as_str() {
            answer.text.push_str(text);
        }
        if choice["finish_reason"].is_string() {
            answer.finished = true;
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
            finished: true,
            complete: true,
            ..Answer::default()
        };
        read_usage(&body["usage"], &mut answer);
        Ok(answer)
    }
}

/// `usage.prompt_tokens` and `usage.completion_tokens`, when the chunk has them.
fn read_usage(usage: &Value, answer: &mut Answer) {
    if let Some(tokens) = usage["prompt_tokens"].as_u64() {
        answer.input_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["completion_tokens"].as_u64() {
        answer.output_tokens = Some(tokens);
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
        assert!(answer.finished && answer.complete);
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
