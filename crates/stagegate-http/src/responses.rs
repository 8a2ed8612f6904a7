//! OpenAI's Responses API (`POST {base_url}/responses`), for `openai` backends with
//! `api = "responses"`: models that only speak it, and OpenAI's own reasoning models.
//!
//! The prompt goes as one user message in `input`, with `"stream": true` and `"store": false`
//! (nothing is kept on the server). The streamed answer is a sequence of typed events:
//! `response.output_text.delta` (text), `response.reasoning_*.delta` (reasoning, counted and
//! left out), then one of `response.completed`, `response.incomplete` (with
//! `incomplete_details.reason`, `max_output_tokens` for a cut) or `response.failed`; `error`
//! for a failure outside a response. Usage comes with the final response.

use eventsource_stream::Event;
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use stagegate_engine::backend::Failure;

use crate::answer::{Answer, Stop, unreadable};
use crate::client::WireFormat;
use crate::truncation::continuation_messages;

/// The request body.
pub(crate) fn body(
    model: &str,
    prompt: &str,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
) -> Value {
    let mut body = json!({
        "model": model,
        "input": [{"role": "user", "content": prompt}],
        "stream": true,
        "store": false,
    });
    if let Some(temperature) = temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = max_tokens {
        body["max_output_tokens"] = json!(max_tokens);
    }
    body
}

/// The Responses wire format.
pub(crate) struct ResponsesWire;

impl WireFormat for ResponsesWire {
    fn authorize(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
        crate::openai::bearer(request, key)
    }

    fn on_event(event: &Event, answer: &mut Answer) -> Result<(), Failure> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let payload: Value = serde_json::from_str(data)
            .map_err(|error| unreadable(format!("an event is not JSON ({error})")))?;
        let kind = payload["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "response.output_text.delta" => {
                if let Some(text) = payload["delta"].as_str() {
                    answer.text.push_str(text);
                }
            }
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                if let Some(text) = payload["delta"].as_str() {
                    answer.add_reasoning(text);
                }
            }
            "response.completed" | "response.incomplete" => {
                read_final(&payload["response"], answer);
            }
            "response.failed" => return Err(failure(&payload["response"]["error"])),
            "error" => return Err(failure(&payload)),
            // `response.created`, `response.in_progress`, `response.output_item.added`, …
            _ => {}
        }
        Ok(())
    }

    fn parse_json(body: &Value) -> Result<Answer, Failure> {
        if body["status"] == "failed" || body["error"].is_object() {
            return Err(failure(&body["error"]));
        }
        let Some(output) = body["output"].as_array() else {
            return Err(unreadable("it has no output"));
        };
        let mut answer = Answer::default();
        for item in output {
            match item["type"].as_str() {
                Some("message") => {
                    for part in item["content"].as_array().into_iter().flatten() {
                        if part["type"] == "output_text"
                            && let Some(text) = part["text"].as_str()
                        {
                            answer.text.push_str(text);
                        }
                    }
                }
                Some("reasoning") => {
                    for part in item["summary"].as_array().into_iter().flatten() {
                        if let Some(text) = part["text"].as_str() {
                            answer.add_reasoning(text);
                        }
                    }
                }
                _ => {}
            }
        }
        read_final(body, &mut answer);
        Ok(answer)
    }

    fn continuation(body: &Value, partial: &str) -> Value {
        let mut body = body.clone();
        body["input"] = continuation_messages(&body["input"], partial);
        body
    }
}

/// The final response's status, cut reason and usage.
fn read_final(response: &Value, answer: &mut Answer) {
    let cut = response["status"] == "incomplete"
        && response["incomplete_details"]["reason"] == "max_output_tokens";
    answer.stop = Some(if cut { Stop::TokenLimit } else { Stop::Ended });
    answer.complete = true;
    let usage = &response["usage"];
    if let Some(tokens) = usage["input_tokens"].as_u64() {
        answer.input_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["output_tokens"].as_u64() {
        answer.output_tokens = Some(tokens);
    }
    if let Some(tokens) = usage["output_tokens_details"]["reasoning_tokens"].as_u64() {
        answer.reasoning_tokens = Some(tokens);
    }
}

/// A failed response: a server error or a rate limit may pass; a bad request or an exhausted
/// quota will not.
fn failure(error: &Value) -> Failure {
    let code = error["code"].as_str().unwrap_or("error");
    let message = format!(
        "the server failed during the answer: {code}: {}",
        error["message"].as_str().unwrap_or("no message")
    );
    match code {
        "server_error" | "internal_error" => Failure::retryable(message),
        "rate_limit_exceeded" => Failure::RateLimited {
            message,
            retry_after_ms: None,
        },
        _ => Failure::permanent(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Value) -> Event {
        Event {
            event: data["type"].as_str().unwrap_or_default().to_owned(),
            data: data.to_string(),
            ..Event::default()
        }
    }

    #[test]
    fn events_assemble_text_usage_and_a_cut() {
        let mut answer = Answer::default();
        for data in [
            json!({"type": "response.created", "response": {"status": "in_progress"}}),
            json!({"type": "response.reasoning_summary_text.delta", "delta": "hmm"}),
            json!({"type": "response.output_text.delta", "delta": "Hel"}),
            json!({"type": "response.output_text.delta", "delta": "lo"}),
            json!({"type": "response.incomplete", "response": {
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": {"input_tokens": 11, "output_tokens": 16,
                          "output_tokens_details": {"reasoning_tokens": 14}}}}),
        ] {
            ResponsesWire::on_event(&event(data), &mut answer).expect("an event");
        }
        assert_eq!(answer.text, "Hello");
        assert!(answer.is_cut() && answer.complete);
        assert_eq!(
            (
                answer.input_tokens,
                answer.output_tokens,
                answer.reasoning_tokens
            ),
            (Some(11), Some(16), Some(14))
        );
        assert_eq!(answer.reasoning_chars, 3);
    }

    #[test]
    fn a_whole_json_response_is_read() {
        let body = json!({
            "status": "completed",
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "why"}]},
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "The answer"}]}
            ],
            "usage": {"input_tokens": 3, "output_tokens": 4}
        });
        let answer = ResponsesWire::parse_json(&body).expect("an answer");
        assert_eq!(answer.text, "The answer");
        assert_eq!(answer.stop, Some(Stop::Ended));
    }

    #[test]
    fn a_failed_response_is_classified() {
        let mut answer = Answer::default();
        let failure = ResponsesWire::on_event(
            &event(json!({"type": "response.failed", "response": {
                "error": {"code": "server_error", "message": "boom"}}})),
            &mut answer,
        )
        .expect_err("failed");
        assert!(failure.is_retryable());
        let failure = ResponsesWire::on_event(
            &event(json!({"type": "error", "code": "insufficient_quota", "message": "quota"})),
            &mut answer,
        )
        .expect_err("error");
        assert!(!failure.is_retryable());
    }

    #[test]
    fn a_continuation_extends_the_input() {
        let body = body("m", "write", None, Some(5));
        let continued = ResponsesWire::continuation(&body, "so far");
        assert_eq!(continued["input"][1]["content"], "so far");
        assert_eq!(continued["max_output_tokens"], 5);
    }
}
