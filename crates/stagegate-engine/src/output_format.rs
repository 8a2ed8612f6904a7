//! Reading a `command` backend's stdout by its `output_format`: the answer itself (`text`), or the
//! JSON object a CLI coding agent prints in its headless JSON mode, from which the answer and the
//! token counts are taken.
//!
//! Pure functions over the program's output, so that each format is tested with real samples
//! without running the agent. An envelope that says the agent failed, or output that is not the
//! expected JSON, is a retryable failure: both happen when an agent is rate limited or
//! interrupted, and another attempt usually succeeds.

use serde_json::Value;
use stagegate_settings::OutputFormat;

use crate::backend::{Failure, Usage};

/// How much of unexpected output a failure message quotes.
const EXCERPT_CHARS: usize = 200;

/// What a successful program's stdout says: the answer and, when the format reports them, the
/// tokens used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOutput {
    pub answer: String,
    pub usage: Option<Usage>,
}

/// Reads `stdout` (already known to be UTF-8) as `format` says.
pub fn parse_output(format: OutputFormat, stdout: String) -> Result<ParsedOutput, Failure> {
    match format {
        OutputFormat::Text => Ok(ParsedOutput {
            answer: stdout,
            usage: None,
        }),
        OutputFormat::ClaudeJson => parse_claude_json(&stdout),
        OutputFormat::GeminiJson => parse_gemini_json(&stdout),
    }
}

/// `claude -p --output-format json` (and `cursor-agent -p --output-format json`):
/// `{"type":"result","subtype":"success","is_error":false,"result":"…","usage":{…},…}`.
///
/// `total_cost_usd` is reported too, but [`Usage`] holds tokens only; cost is left for later.
fn parse_claude_json(stdout: &str) -> Result<ParsedOutput, Failure> {
    let envelope = parse_object(stdout, OutputFormat::ClaudeJson)?;
    let result = envelope.get("result").and_then(Value::as_str);
    let is_error = envelope
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || envelope
            .get("subtype")
            .and_then(Value::as_str)
            .is_some_and(|subtype| subtype.starts_with("error"));
    if is_error {
        let subtype = envelope
            .get("subtype")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let detail = result
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map_or_else(String::new, |text| format!(": {}", excerpt(text)));
        return Err(Failure::retryable(format!(
            "the agent reported an error ({subtype}){detail}"
        )));
    }
    let Some(answer) = result else {
        return Err(unexpected(
            stdout,
            OutputFormat::ClaudeJson,
            "no \"result\" text",
        ));
    };
    let usage = envelope.get("usage").and_then(|usage| {
        let input = usage.get("input_tokens").and_then(Value::as_u64);
        let output = usage.get("output_tokens").and_then(Value::as_u64);
        if input.is_none() && output.is_none() {
            return None;
        }
        // Cached prompt tokens are input too: the prompt was that long.
        let cached = ["cache_read_input_tokens", "cache_creation_input_tokens"]
            .iter()
            .filter_map(|key| usage.get(*key).and_then(Value::as_u64))
            .sum::<u64>();
        Some(Usage {
            input_tokens: input.unwrap_or(0) + cached,
            output_tokens: output.unwrap_or(0),
        })
    });
    Ok(ParsedOutput {
        answer: answer.to_owned(),
        usage,
    })
}

/// `gemini --output-format json` (Qwen Code's fork too):
/// `{"response":"…","stats":{"models":{"gemini-2.5-pro":{"tokens":{"prompt":N,"candidates":N,…}}}}}`,
/// with `"error":{…}` when the request failed.
fn parse_gemini_json(stdout: &str) -> Result<ParsedOutput, Failure> {
    let object = parse_object(stdout, OutputFormat::GeminiJson)?;
    if let Some(error) = object.get("error").filter(|error| !error.is_null()) {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(Failure::retryable(format!(
            "the agent reported an error: {}",
            excerpt(message.trim())
        )));
    }
    let Some(answer) = object.get("response").and_then(Value::as_str) else {
        return Err(unexpected(
            stdout,
            OutputFormat::GeminiJson,
            "no \"response\" text",
        ));
    };
    let usage = object
        .get("stats")
        .and_then(|stats| stats.get("models"))
        .and_then(Value::as_object)
        .and_then(|models| {
            let mut total: Option<Usage> = None;
            for model in models.values() {
                let Some(tokens) = model.get("tokens") else {
                    continue;
                };
                let prompt = tokens.get("prompt").and_then(Value::as_u64);
                let candidates = tokens.get("candidates").and_then(Value::as_u64);
                if prompt.is_none() && candidates.is_none() {
                    continue;
                }
                let sum = total.get_or_insert(Usage {
                    input_tokens: 0,
                    output_tokens: 0,
                });
                sum.input_tokens += prompt.unwrap_or(0);
                sum.output_tokens += candidates.unwrap_or(0);
            }
            total
        });
    Ok(ParsedOutput {
        answer: answer.to_owned(),
        usage,
    })
}

/// The one JSON object on stdout. Some agents print a warning line before it, so the object is
/// also looked for from the first line that opens one.
fn parse_object(
    stdout: &str,
    format: OutputFormat,
) -> Result<serde_json::Map<String, Value>, Failure> {
    let trimmed = stdout.trim();
    let parsed = serde_json::from_str::<Value>(trimmed).ok().or_else(|| {
        let start = trimmed.find("\n{")? + 1;
        serde_json::from_str::<Value>(&trimmed[start..]).ok()
    });
    match parsed {
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(unexpected(stdout, format, "not a JSON object")),
        None => Err(unexpected(stdout, format, "not valid JSON")),
    }
}

fn unexpected(stdout: &str, format: OutputFormat, why: &str) -> Failure {
    let shown = stdout.trim();
    let quoted = if shown.is_empty() {
        "the output was empty".to_owned()
    } else {
        format!("it began: {}", excerpt(shown))
    };
    Failure::retryable(format!(
        "the output was not the expected {} JSON ({why}); {quoted}",
        format.as_str()
    ))
}

/// The first [`EXCERPT_CHARS`] characters, with `…` when there is more.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `claude -p --output-format json` prints (Claude Code 2.x), on one line.
    const CLAUDE_SUCCESS: &str = r###"{"type":"result","subtype":"success","is_error":false,"duration_ms":8123,"duration_api_ms":7960,"num_turns":1,"result":"## Summary\n\nThe plan has three phases.\nCONFIDENCE: 0.8","session_id":"4f1c2a9e-1f0b-4c51-9d55-0e7f3c7a2b11","total_cost_usd":0.0213,"usage":{"input_tokens":4,"cache_creation_input_tokens":1520,"cache_read_input_tokens":13120,"output_tokens":310,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"permission_denials":[],"uuid":"0c9d6a54-3d3e-4a8e-b7f4-51a5a3c0d1e2"}"###;

    /// A claude run that hit its turn limit.
    const CLAUDE_ERROR: &str = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"duration_ms":60210,"num_turns":5,"session_id":"abc","total_cost_usd":0.2,"usage":{"input_tokens":10,"output_tokens":20}}"#;

    /// `cursor-agent -p --output-format json`: claude's envelope without usage.
    const CURSOR_SUCCESS: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":5123,"duration_api_ms":5123,"result":"Findings: none","session_id":"7d3e","request_id":"9a1b"}"#;

    /// What `gemini --output-format json` prints.
    const GEMINI_SUCCESS: &str = r#"{
  "response": "The capital of France is Paris.",
  "stats": {
    "models": {
      "gemini-2.5-pro": {
        "api": {"totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 5053},
        "tokens": {"prompt": 24939, "candidates": 20, "total": 25113, "cached": 21263, "thoughts": 154, "tool": 0}
      },
      "gemini-2.5-flash": {
        "api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 1000},
        "tokens": {"prompt": 100, "candidates": 5, "total": 105, "cached": 0, "thoughts": 0, "tool": 0}
      }
    },
    "tools": {"totalCalls": 0, "totalSuccess": 0, "totalFail": 0, "totalDurationMs": 0, "totalDecisions": {"accept": 0, "reject": 0, "modify": 0, "auto_accept": 0}, "byName": {}},
    "files": {"totalLinesAdded": 0, "totalLinesRemoved": 0}
  }
}"#;

    const GEMINI_ERROR: &str = r#"{"response":null,"error":{"type":"ApiError","message":"Quota exceeded for quota metric 'Gemini 2.5 Pro Requests'","code":429}}"#;

    #[test]
    fn text_is_the_answer_as_it_is() {
        let parsed = parse_output(OutputFormat::Text, "  plain\n".to_owned()).expect("text");
        assert_eq!(parsed.answer, "  plain\n");
        assert_eq!(parsed.usage, None);
    }

    #[test]
    fn claude_json_gives_the_result_and_the_tokens() {
        let parsed =
            parse_output(OutputFormat::ClaudeJson, CLAUDE_SUCCESS.to_owned()).expect("success");
        assert_eq!(
            parsed.answer,
            "## Summary\n\nThe plan has three phases.\nCONFIDENCE: 0.8"
        );
        assert_eq!(
            parsed.usage,
            Some(Usage {
                input_tokens: 4 + 1520 + 13120,
                output_tokens: 310,
            })
        );
    }

    #[test]
    fn claude_json_reporting_an_error_is_retryable() {
        let failure =
            parse_output(OutputFormat::ClaudeJson, CLAUDE_ERROR.to_owned()).expect_err("error");
        assert_eq!(
            failure,
            Failure::retryable("the agent reported an error (error_max_turns)")
        );
        let with_text = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 Overloaded"}"#;
        assert_eq!(
            parse_output(OutputFormat::ClaudeJson, with_text.to_owned()),
            Err(Failure::retryable(
                "the agent reported an error (success): API Error: 529 Overloaded"
            ))
        );
    }

    #[test]
    fn cursor_agents_envelope_reads_like_claudes() {
        let parsed =
            parse_output(OutputFormat::ClaudeJson, CURSOR_SUCCESS.to_owned()).expect("success");
        assert_eq!(parsed.answer, "Findings: none");
        assert_eq!(parsed.usage, None);
    }

    #[test]
    fn gemini_json_gives_the_response_and_sums_the_models_tokens() {
        let parsed =
            parse_output(OutputFormat::GeminiJson, GEMINI_SUCCESS.to_owned()).expect("success");
        assert_eq!(parsed.answer, "The capital of France is Paris.");
        assert_eq!(
            parsed.usage,
            Some(Usage {
                input_tokens: 24939 + 100,
                output_tokens: 25,
            })
        );
        let without_stats = parse_output(
            OutputFormat::GeminiJson,
            r#"{"response":"ok","stats":{}}"#.to_owned(),
        )
        .expect("success");
        assert_eq!(without_stats.usage, None);
    }

    #[test]
    fn gemini_json_reporting_an_error_is_retryable() {
        assert_eq!(
            parse_output(OutputFormat::GeminiJson, GEMINI_ERROR.to_owned()),
            Err(Failure::retryable(
                "the agent reported an error: Quota exceeded for quota metric 'Gemini 2.5 Pro Requests'"
            ))
        );
    }

    #[test]
    fn a_warning_line_before_the_json_is_skipped() {
        let stdout = format!("Loaded cached credentials.\n{GEMINI_SUCCESS}\n");
        let parsed = parse_output(OutputFormat::GeminiJson, stdout).expect("success");
        assert_eq!(parsed.answer, "The capital of France is Paris.");
    }

    #[test]
    fn output_that_is_not_the_expected_json_is_retryable_and_quoted() {
        let text = "I could not finish: ".to_owned() + &"x".repeat(300);
        let Err(Failure::Retryable { message }) = parse_output(OutputFormat::ClaudeJson, text)
        else {
            panic!("expected a retryable failure");
        };
        assert!(
            message.starts_with(
                "the output was not the expected claude-json JSON (not valid JSON); it began: \
                 I could not finish: xxx"
            ),
            "{message}"
        );
        assert!(message.ends_with("x…"), "{message}");
        let quoted = message.rsplit("it began: ").next().unwrap_or_default();
        assert_eq!(
            quoted.chars().count(),
            200 + 1,
            "200 characters and the ellipsis"
        );

        assert_eq!(
            parse_output(OutputFormat::GeminiJson, "\n".to_owned()),
            Err(Failure::retryable(
                "the output was not the expected gemini-json JSON (not valid JSON); the output \
                 was empty"
            ))
        );
        assert_eq!(
            parse_output(OutputFormat::ClaudeJson, "[1, 2]".to_owned()),
            Err(Failure::retryable(
                "the output was not the expected claude-json JSON (not a JSON object); it \
                 began: [1, 2]"
            ))
        );
        assert_eq!(
            parse_output(OutputFormat::ClaudeJson, r#"{"type":"result"}"#.to_owned()),
            Err(Failure::retryable(
                "the output was not the expected claude-json JSON (no \"result\" text); it \
                 began: {\"type\":\"result\"}"
            ))
        );
    }
}
