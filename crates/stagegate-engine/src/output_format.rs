//! Reading a `command` backend's stdout by its `output_format`: the answer itself (`text`), or
//! what a CLI coding agent prints in its headless JSON mode, from which the answer, the token
//! counts and the agent's own errors are taken.
//!
//! Pure functions over the program's output, so that each format is tested with the real
//! tools' output shapes without running them. An error the agent reports is classified by
//! `agent_error` (authentication and quota permanent, rate limits waited for, the rest
//! retryable); output that is not the expected JSON is retryable, since an interrupted agent
//! writes that too.

use serde_json::Value;
use stagegate_settings::OutputFormat;

use crate::agent_error::classify;
use crate::backend::{Failure, Usage};

/// How much of unexpected output a failure message quotes.
const EXCERPT_CHARS: usize = 200;

/// What a successful program's stdout says: the answer and, when the format reports them, the
/// tokens used.
#[derive(Debug, Clone, PartialEq)]
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
        OutputFormat::QwenJson => parse_qwen_json(&stdout),
        OutputFormat::CodexJsonl => parse_codex_jsonl(&stdout),
        OutputFormat::OpencodeJsonl => parse_opencode_jsonl(&stdout),
    }
}

/// Says of one line of a program's output whether it names a dead end, and in what words.
pub type DeadEnd = fn(&[u8]) -> Option<String>;

/// How to tell, line by line, that a program reading in `format` is stuck and will not end
/// by itself: `codex exec --json` without a network prints `Reconnecting... waiting for
/// network` events and waits for the network forever, where other agents exit with an error.
pub fn dead_end_detector(format: OutputFormat) -> Option<DeadEnd> {
    match format {
        OutputFormat::CodexJsonl => Some(codex_waits_for_network),
        _ => None,
    }
}

/// A codex event `{"type":"error","message":"Reconnecting... waiting for network (…)"}`.
fn codex_waits_for_network(line: &[u8]) -> Option<String> {
    let event: Value = serde_json::from_slice(line).ok()?;
    let message = event
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| *kind == "error")
        .and_then(|_| event.get("message"))
        .and_then(Value::as_str)?;
    message
        .contains("waiting for network")
        .then(|| message.to_owned())
}

/// The error the agent reported on a non-zero exit, when its output says one: the JSON
/// envelope on stdout (Claude Code exits 1 with it, stderr empty), a JSON error object on
/// stderr (Gemini CLI), or the event stream's failure (Codex). `None` when the output says
/// nothing the format knows, so the caller falls back to the exit status and stderr.
pub fn reported_failure(format: OutputFormat, stdout: &[u8], stderr: &[u8]) -> Option<Failure> {
    let stdout = String::from_utf8_lossy(stdout);
    let from_stdout = match format {
        OutputFormat::Text => None,
        OutputFormat::ClaudeJson => parse_claude_json(&stdout).err(),
        OutputFormat::GeminiJson => parse_gemini_json(&stdout).err(),
        OutputFormat::QwenJson => parse_qwen_json(&stdout).err(),
        OutputFormat::CodexJsonl => parse_codex_jsonl(&stdout).err(),
        OutputFormat::OpencodeJsonl => parse_opencode_jsonl(&stdout).err(),
    }
    .filter(|failure| !is_unexpected(failure));
    from_stdout.or_else(|| match format {
        OutputFormat::GeminiJson | OutputFormat::QwenJson => {
            let stderr = String::from_utf8_lossy(stderr);
            let object = find_object(&stderr)?;
            gemini_error(&object)
        }
        _ => None,
    })
}

/// `claude -p --output-format json` (and Cursor's `agent -p --output-format json`):
/// `{"type":"result","subtype":"success","is_error":false,"result":"…","usage":{…},…}`; on an
/// API error `is_error` is true, `api_error_status` the HTTP status and `result` the message.
fn parse_claude_json(stdout: &str) -> Result<ParsedOutput, Failure> {
    let envelope = parse_object(stdout, OutputFormat::ClaudeJson)?;
    result_envelope(&envelope, stdout, OutputFormat::ClaudeJson)
}

/// The `result` object Claude Code prints, and Qwen Code ends its array with.
fn result_envelope(
    envelope: &serde_json::Map<String, Value>,
    stdout: &str,
    format: OutputFormat,
) -> Result<ParsedOutput, Failure> {
    let result = envelope.get("result").and_then(Value::as_str);
    let subtype = envelope.get("subtype").and_then(Value::as_str);
    let is_error = envelope
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || subtype.is_some_and(|subtype| subtype.starts_with("error"))
        // Qwen Code reports a failed request as a successful result whose text is the error.
        || result.is_some_and(|text| text.trim_start().starts_with("[API Error"));
    if is_error {
        let status = envelope.get("api_error_status").and_then(Value::as_u64);
        // Qwen Code puts a failure before any request in `error.message`, with no `result`.
        let error_message = envelope
            .get("error")
            .and_then(|error| error.get("message"))
            .and_then(Value::as_str);
        let message = match result
            .or(error_message)
            .map(str::trim)
            .filter(|text| !text.is_empty())
        {
            Some(text) => excerpt(text),
            None => format!("({})", subtype.unwrap_or("error")),
        };
        return Err(classify(status, &message));
    }
    let Some(answer) = result else {
        return Err(unexpected(stdout, format, "no \"result\" text"));
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
            // What Claude Code computed for the call, cache pricing included.
            cost_usd: envelope.get("total_cost_usd").and_then(Value::as_f64),
        })
    });
    Ok(ParsedOutput {
        answer: answer.to_owned(),
        usage,
    })
}

/// `gemini --output-format json`:
/// `{"response":"…","stats":{"models":{"gemini-2.5-pro":{"tokens":{"prompt":N,"candidates":N,"thoughts":N,…}}}}}`,
/// with `"error":{…}` when the request failed (on stderr in current releases).
fn parse_gemini_json(stdout: &str) -> Result<ParsedOutput, Failure> {
    let object = parse_object(stdout, OutputFormat::GeminiJson)?;
    if let Some(failure) = gemini_error(&object) {
        return Err(failure);
    }
    let Some(answer) = object.get("response").and_then(Value::as_str) else {
        return Err(unexpected(
            stdout,
            OutputFormat::GeminiJson,
            "no \"response\" text",
        ));
    };
    Ok(ParsedOutput {
        answer: answer.to_owned(),
        usage: object.get("stats").and_then(gemini_usage),
    })
}

/// The failure a Gemini-style `"error":{"message":…,"code":N}` says, if there is one.
fn gemini_error(object: &serde_json::Map<String, Value>) -> Option<Failure> {
    let error = object.get("error").filter(|error| !error.is_null())?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned);
    // `code` is an HTTP status for API errors, but Gemini CLI's own exit code for its fatal
    // errors (41: the authentication is not set up).
    let status = match error.get("code").and_then(Value::as_u64) {
        Some(41) => Some(401),
        Some(code @ 400..=599) => Some(code),
        _ => None,
    };
    Some(classify(status, &excerpt(message.trim())))
}

/// Tokens summed over `stats.models.*.tokens`; thought tokens are output the model produced.
fn gemini_usage(stats: &Value) -> Option<Usage> {
    let models = stats.get("models")?.as_object()?;
    let mut total: Option<Usage> = None;
    for model in models.values() {
        let Some(tokens) = model.get("tokens") else {
            continue;
        };
        let count = |key: &str| tokens.get(key).and_then(Value::as_u64);
        if count("prompt").is_none() && count("candidates").is_none() {
            continue;
        }
        let sum = total.get_or_insert(Usage::default());
        sum.input_tokens += count("prompt").unwrap_or(0);
        sum.output_tokens += count("candidates").unwrap_or(0) + count("thoughts").unwrap_or(0);
    }
    total
}

/// `qwen --output-format json` (Qwen Code 0.15): a JSON array of messages (`system`,
/// `assistant`, …) whose last `result` object is Claude Code's envelope.
fn parse_qwen_json(stdout: &str) -> Result<ParsedOutput, Failure> {
    let format = OutputFormat::QwenJson;
    let trimmed = stdout.trim();
    let start = trimmed.find('[').unwrap_or(0);
    let messages = match serde_json::from_str::<Value>(&trimmed[start..]) {
        Ok(Value::Array(messages)) => messages,
        Ok(Value::Object(object)) => vec![Value::Object(object)],
        Ok(_) => return Err(unexpected(stdout, format, "not a JSON array")),
        Err(_) => return Err(unexpected(stdout, format, "not valid JSON")),
    };
    let Some(Value::Object(result)) = messages
        .iter()
        .rev()
        .find(|message| message.get("type").and_then(Value::as_str) == Some("result"))
    else {
        return Err(unexpected(stdout, format, "no \"result\" message"));
    };
    let mut parsed = result_envelope(result, stdout, format)?;
    if parsed.usage.is_none() {
        parsed.usage = result.get("stats").and_then(gemini_usage);
    }
    Ok(parsed)
}

/// `codex exec --json`: one event a line. The answer is the last `item.completed` whose item is
/// an `agent_message`; usage comes in `turn.completed`; a failed turn is `turn.failed` with
/// `error.message` (an `error` event's `message` is kept as the reason when nothing else says
/// one: Codex prints its reconnection attempts that way).
fn parse_codex_jsonl(stdout: &str) -> Result<ParsedOutput, Failure> {
    let format = OutputFormat::CodexJsonl;
    let mut answer = None;
    let mut usage: Option<Usage> = None;
    let mut failed = None;
    let mut last_error = None;
    let mut events = 0;
    for event in json_lines(stdout) {
        events += 1;
        match event.get("type").and_then(Value::as_str) {
            Some("item.completed") => {
                let item = event.get("item");
                if item
                    .and_then(|item| item.get("type"))
                    .and_then(Value::as_str)
                    == Some("agent_message")
                    && let Some(text) = item
                        .and_then(|item| item.get("text"))
                        .and_then(Value::as_str)
                {
                    answer = Some(text.to_owned());
                }
            }
            Some("turn.completed") => {
                if let Some(counts) = event.get("usage") {
                    let count = |key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
                    let sum = usage.get_or_insert(Usage::default());
                    // `cached_input_tokens` are part of `input_tokens` already.
                    sum.input_tokens += count("input_tokens");
                    sum.output_tokens += count("output_tokens");
                }
            }
            Some("turn.failed") => {
                failed = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| Some("the turn failed".to_owned()));
            }
            Some("error") => {
                last_error = event
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    if let Some(message) = failed.or(if answer.is_none() { last_error } else { None }) {
        return Err(classify(
            status_of_codex_message(&message),
            &excerpt(message.trim()),
        ));
    }
    match answer {
        Some(answer) => Ok(ParsedOutput { answer, usage }),
        None if events == 0 => Err(unexpected(stdout, format, "no JSON event lines")),
        None => Err(unexpected(stdout, format, "no agent_message item")),
    }
}

/// `opencode run --format json`: one event a line, each `{"type":…,"sessionID":…,"part":{…}}`.
/// The answer is the `text` parts of the last step (after the last `step_start`: earlier steps
/// are the agent's narration around its tool calls); each `step_finish` part carries that
/// step's `tokens` and `cost`; a failure is an `error` event, exit 1.
fn parse_opencode_jsonl(stdout: &str) -> Result<ParsedOutput, Failure> {
    let format = OutputFormat::OpencodeJsonl;
    let mut step_text: Vec<String> = Vec::new();
    let mut usage: Option<Usage> = None;
    let mut error = None;
    let mut events = 0;
    for event in json_lines(stdout) {
        events += 1;
        let part = event.get("part");
        match event.get("type").and_then(Value::as_str) {
            Some("step_start") => step_text.clear(),
            Some("text") => {
                if let Some(text) = part
                    .and_then(|part| part.get("text"))
                    .and_then(Value::as_str)
                {
                    step_text.push(text.to_owned());
                }
            }
            Some("step_finish") => {
                if let Some(part) = part {
                    add_opencode_step(usage.get_or_insert(Usage::default()), part);
                }
            }
            Some("error") => error = event.get("error").map(opencode_error),
            _ => {}
        }
    }
    if let Some(failure) = error {
        return Err(failure);
    }
    match step_text.is_empty() {
        false => Ok(ParsedOutput {
            answer: step_text.join("\n\n"),
            usage,
        }),
        true if events == 0 => Err(unexpected(stdout, format, "no JSON event lines")),
        true => Err(unexpected(stdout, format, "no text in the last step")),
    }
}

/// Adds one `step-finish` part to `sum`. opencode takes cached tokens out of `input` and
/// reasoning out of `output`; they are put back: the prompt was that long, and reasoning is
/// output the model produced.
fn add_opencode_step(sum: &mut Usage, part: &Value) {
    let count = |pointer: &str| part.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    sum.input_tokens +=
        count("/tokens/input") + count("/tokens/cache/read") + count("/tokens/cache/write");
    sum.output_tokens += count("/tokens/output") + count("/tokens/reasoning");
    if let Some(cost) = part.get("cost").and_then(Value::as_f64) {
        *sum.cost_usd.get_or_insert(0.0) += cost;
    }
}

/// opencode's error object: `{"name":"APIError","data":{"message":…,"statusCode":N,…}}`;
/// `ProviderAuthError` (no key for the provider) has no status and is an authentication failure.
fn opencode_error(error: &Value) -> Failure {
    let name = error.get("name").and_then(Value::as_str).unwrap_or("error");
    let message = error
        .pointer("/data/message")
        .and_then(Value::as_str)
        .map_or_else(|| name.to_owned(), str::to_owned);
    let status = error
        .pointer("/data/statusCode")
        .and_then(Value::as_u64)
        .or((name == "ProviderAuthError").then_some(401));
    classify(status, &excerpt(message.trim()))
}

/// The lines of `text` that are JSON values, parsed; other lines (warnings) are skipped.
fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
}

/// Codex words an HTTP failure as `unexpected status 401 Unauthorized: …`.
fn status_of_codex_message(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("unexpected status ")?;
    rest.split(|character: char| !character.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The one JSON object on stdout. Some agents print a warning line before it, so the object is
/// also looked for from the first line that opens one.
fn parse_object(
    stdout: &str,
    format: OutputFormat,
) -> Result<serde_json::Map<String, Value>, Failure> {
    let trimmed = stdout.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(unexpected(stdout, format, "not a JSON object")),
        Err(_) => find_object(trimmed).ok_or_else(|| unexpected(stdout, format, "not valid JSON")),
    }
}

/// The JSON object that starts on some line of `text` and runs to its end.
fn find_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    let trimmed = text.trim();
    let mut offset = 0;
    for line in trimmed.split_inclusive('\n') {
        if line.trim_start().starts_with('{')
            && let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&trimmed[offset..])
        {
            return Some(object);
        }
        offset += line.len();
    }
    None
}

/// A failure that says the output was not what the format expects (rather than an error the
/// agent reported).
fn is_unexpected(failure: &Failure) -> bool {
    matches!(failure, Failure::Retryable { message } if message.starts_with("the output was not the expected"))
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

    /// Claude Code 2.1 with a rejected key (recorded against a loopback server answering 401):
    /// exit 1, this on stdout, stderr empty.
    const CLAUDE_401: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"duration_ms":709,"duration_api_ms":0,"num_turns":1,"result":"Invalid API key · Fix external API key","stop_reason":"stop_sequence","session_id":"a374","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0},"modelUsage":{},"permission_denials":[],"terminal_reason":"completed"}"#;

    /// Claude Code 2.1 rate limited (the shape of the 401 above, with the status and message
    /// the Messages API gives a 429).
    const CLAUDE_429: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"num_turns":1,"result":"API Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limited\"}}","total_cost_usd":0}"#;

    /// Claude Code 2.1 with no credentials at all: exit 1, stderr empty.
    const CLAUDE_NOT_LOGGED_IN: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":null,"num_turns":1,"result":"Not logged in · Please run /login","total_cost_usd":0}"#;

    /// Claude Code 2.1 when the API cannot be reached.
    const CLAUDE_UNREACHABLE: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":null,"num_turns":1,"result":"API Error: Unable to connect to API (ConnectionRefused)","total_cost_usd":0}"#;

    /// Qwen Code 0.15, `--output-format json`, answering (the array's shape as recorded, with a
    /// model's answer in place of the recorded error).
    const QWEN_SUCCESS: &str = r#"[{"type":"system","subtype":"init","session_id":"cf07","cwd":"/repo","tools":["read_file"],"model":"qwen3.5-plus","qwen_code_version":"0.15.10"},{"type":"assistant","session_id":"cf07","message":{"type":"message","role":"assistant","model":"qwen3.5-plus","content":[{"type":"text","text":"Plan: three phases."}],"usage":{"input_tokens":1200,"output_tokens":40}}},{"type":"result","subtype":"success","session_id":"cf07","is_error":false,"num_turns":1,"result":"Plan: three phases.","usage":{"input_tokens":1200,"output_tokens":40,"cache_read_input_tokens":0},"stats":{"models":{"qwen3.5-plus":{"tokens":{"prompt":1200,"candidates":40,"thoughts":0}}}}}]"#;

    /// Qwen Code 0.15 against a server answering 401, as recorded: exit 0, `is_error` false, the
    /// error as the result's text.
    const QWEN_401: &str = r#"[{"type":"system","subtype":"init","session_id":"cf07","model":"qwen3.5-plus"},{"type":"assistant","session_id":"cf07","message":{"role":"assistant","content":[{"type":"text","text":"[API Error: 401 invalid x-api-key]"}],"usage":{"input_tokens":0,"output_tokens":0}}},{"type":"result","subtype":"success","session_id":"cf07","is_error":false,"num_turns":1,"result":"[API Error: 401 invalid x-api-key]","usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0}}]"#;

    /// Qwen Code 0.15 with no auth type chosen, as recorded: exit 1, this on stdout.
    const QWEN_NO_AUTH: &str = r#"[{"type":"result","subtype":"error_during_execution","uuid":"432b","session_id":"bb69","is_error":true,"duration_ms":0,"duration_api_ms":0,"num_turns":0,"usage":{"input_tokens":0,"output_tokens":0},"permission_denials":[],"error":{"message":"No auth type is selected. Please configure an auth type (e.g. via settings or `--auth-type`) before running in non-interactive mode."}}]"#;

    /// Qwen Code 0.15 rate limited: the same shape with a 429.
    const QWEN_429: &str = r#"[{"type":"system","subtype":"init","session_id":"cf07"},{"type":"result","subtype":"success","is_error":false,"result":"[API Error: 429 Rate limited]","usage":{"input_tokens":0,"output_tokens":0}}]"#;

    /// Codex 0.171, `exec --json`, answering (the event names and fields as recorded; the
    /// agent_message and usage in the documented shape).
    const CODEX_SUCCESS: &str = "{\"type\":\"thread.started\",\"thread_id\":\"01a2\"}\n\
        {\"type\":\"turn.started\"}\n\
        {\"type\":\"item.completed\",\"item\":{\"id\":\"item_0\",\"type\":\"reasoning\",\"text\":\"**Planning**\"}}\n\
        {\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":\"agent_message\",\"text\":\"## Plan\\nThree phases.\"}}\n\
        {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":9000,\"cached_input_tokens\":8000,\"output_tokens\":120}}\n";

    /// Codex 0.171 against a server answering 401, as recorded (its own five reconnections
    /// shortened to one).
    const CODEX_401: &str = "{\"type\":\"thread.started\",\"thread_id\":\"01a2\"}\n\
        {\"type\":\"turn.started\"}\n\
        {\"type\":\"error\",\"message\":\"Reconnecting... 1/5 (unexpected status 401 Unauthorized: invalid x-api-key, url: http://127.0.0.1:18401/v1/responses)\"}\n\
        {\"type\":\"error\",\"message\":\"unexpected status 401 Unauthorized: invalid x-api-key, url: http://127.0.0.1:18401/v1/responses\"}\n\
        {\"type\":\"turn.failed\",\"error\":{\"message\":\"unexpected status 401 Unauthorized: invalid x-api-key, url: http://127.0.0.1:18401/v1/responses\"}}\n";

    /// Codex 0.171 against a server answering 429, as recorded (shortened the same way).
    const CODEX_429: &str = "{\"type\":\"turn.started\"}\n\
        {\"type\":\"error\",\"message\":\"exceeded retry limit, last status: 429 Too Many Requests\"}\n\
        {\"type\":\"turn.failed\",\"error\":{\"message\":\"exceeded retry limit, last status: 429 Too Many Requests\"}}\n";

    /// opencode 1.18, `run --format json`, answering after one tool call: two steps, each with
    /// its `step_finish` (the event and part shapes of its bundled source; `input` there
    /// excludes cached tokens and `output` excludes reasoning).
    const OPENCODE_SUCCESS: &str = "{\"type\":\"step_start\",\"timestamp\":1,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_1\",\"sessionID\":\"ses_1\",\"messageID\":\"msg_1\",\"type\":\"step-start\"}}\n\
        {\"type\":\"text\",\"timestamp\":2,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_2\",\"messageID\":\"msg_1\",\"type\":\"text\",\"text\":\"Let me read the spec.\",\"time\":{\"start\":2,\"end\":2}}}\n\
        {\"type\":\"tool_use\",\"timestamp\":3,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_3\",\"type\":\"tool\",\"tool\":\"read\",\"state\":{\"status\":\"completed\"}}}\n\
        {\"type\":\"step_finish\",\"timestamp\":4,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_4\",\"messageID\":\"msg_1\",\"type\":\"step-finish\",\"reason\":\"tool-calls\",\"tokens\":{\"total\":5200,\"input\":200,\"output\":30,\"reasoning\":10,\"cache\":{\"write\":0,\"read\":5000}},\"cost\":0.0021}}\n\
        {\"type\":\"step_start\",\"timestamp\":5,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_5\",\"messageID\":\"msg_2\",\"type\":\"step-start\"}}\n\
        {\"type\":\"text\",\"timestamp\":6,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_6\",\"messageID\":\"msg_2\",\"type\":\"text\",\"text\":\"## Plan\\nThree phases.\",\"time\":{\"start\":6,\"end\":6}}}\n\
        {\"type\":\"step_finish\",\"timestamp\":7,\"sessionID\":\"ses_1\",\"part\":{\"id\":\"prt_7\",\"messageID\":\"msg_2\",\"type\":\"step-finish\",\"reason\":\"stop\",\"tokens\":{\"total\":5400,\"input\":300,\"output\":90,\"reasoning\":0,\"cache\":{\"write\":10,\"read\":5000}},\"cost\":0.0034}}\n";

    /// opencode 1.18 refused by the provider (its `error` event for an `APIError`): exit 1.
    const OPENCODE_401: &str = "{\"type\":\"step_start\",\"timestamp\":1,\"sessionID\":\"ses_1\",\"part\":{\"type\":\"step-start\"}}\n\
        {\"type\":\"error\",\"timestamp\":2,\"sessionID\":\"ses_1\",\"error\":{\"name\":\"APIError\",\"data\":{\"message\":\"invalid x-api-key\",\"statusCode\":401,\"isRetryable\":false}}}\n";

    /// opencode 1.18 rate limited: the same event with a 429.
    const OPENCODE_429: &str = "{\"type\":\"error\",\"timestamp\":2,\"sessionID\":\"ses_1\",\"error\":{\"name\":\"APIError\",\"data\":{\"message\":\"Rate limit exceeded\",\"statusCode\":429,\"isRetryable\":true}}}\n";

    /// opencode 1.18 with no key for the provider.
    const OPENCODE_NO_KEY: &str = "{\"type\":\"error\",\"timestamp\":2,\"sessionID\":\"ses_1\",\"error\":{\"name\":\"ProviderAuthError\",\"data\":{\"providerID\":\"anthropic\",\"message\":\"API key is missing\"}}}\n";

    /// Gemini CLI 0.61 with a key but no auth method chosen, as recorded: exit 41, stdout
    /// empty, this on stderr.
    const GEMINI_AUTH_STDERR: &str = "{\n  \"session_id\": \"cd85\",\n  \"error\": {\n    \"type\": \"Error\",\n    \"message\": \"Invalid auth method selected.\",\n    \"code\": 41\n  }\n}\n";

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
                cost_usd: Some(0.0213),
            })
        );
    }

    #[test]
    fn claude_json_reporting_an_error_is_classified() {
        let failure =
            parse_output(OutputFormat::ClaudeJson, CLAUDE_ERROR.to_owned()).expect_err("error");
        assert_eq!(
            failure,
            Failure::retryable("the agent reported an error: (error_max_turns)")
        );
        let with_text = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 Overloaded"}"#;
        assert_eq!(
            parse_output(OutputFormat::ClaudeJson, with_text.to_owned()),
            Err(Failure::retryable(
                "the agent reported an error: API Error: 529 Overloaded"
            ))
        );
        for permanent in [CLAUDE_401, CLAUDE_NOT_LOGGED_IN] {
            let failure =
                parse_output(OutputFormat::ClaudeJson, permanent.to_owned()).expect_err("an error");
            assert!(matches!(failure, Failure::Permanent { .. }), "{failure:?}");
        }
        assert!(matches!(
            parse_output(OutputFormat::ClaudeJson, CLAUDE_429.to_owned()),
            Err(Failure::RateLimited { .. })
        ));
        assert!(matches!(
            parse_output(OutputFormat::ClaudeJson, CLAUDE_UNREACHABLE.to_owned()),
            Err(Failure::Retryable { .. })
        ));
    }

    #[test]
    fn qwen_json_reads_the_last_result_and_sees_errors_posing_as_answers() {
        let parsed = parse_output(OutputFormat::QwenJson, QWEN_SUCCESS.to_owned()).expect("ok");
        assert_eq!(parsed.answer, "Plan: three phases.");
        assert_eq!(
            parsed.usage,
            Some(Usage {
                input_tokens: 1200,
                output_tokens: 40,
                cost_usd: None,
            })
        );
        let failure = parse_output(OutputFormat::QwenJson, QWEN_401.to_owned()).expect_err("401");
        assert_eq!(
            failure,
            Failure::permanent(
                "the agent reported an error: [API Error: 401 invalid x-api-key]; log the agent \
                 in (run it once interactively) or set its API key in the backend's env"
            )
        );
        assert!(matches!(
            parse_output(OutputFormat::QwenJson, QWEN_429.to_owned()),
            Err(Failure::RateLimited { .. })
        ));
        let no_auth = reported_failure(OutputFormat::QwenJson, QWEN_NO_AUTH.as_bytes(), b"")
            .expect("the envelope's error");
        assert!(matches!(no_auth, Failure::Permanent { .. }), "{no_auth:?}");
        assert!(
            no_auth.to_string().contains("No auth type is selected."),
            "{no_auth}"
        );
    }

    #[test]
    fn codex_jsonl_gives_the_last_message_and_the_turns_usage() {
        let parsed =
            parse_output(OutputFormat::CodexJsonl, CODEX_SUCCESS.to_owned()).expect("success");
        assert_eq!(parsed.answer, "## Plan\nThree phases.");
        assert_eq!(
            parsed.usage,
            Some(Usage {
                input_tokens: 9000,
                output_tokens: 120,
                cost_usd: None,
            })
        );
        let failure =
            parse_output(OutputFormat::CodexJsonl, CODEX_401.to_owned()).expect_err("401");
        assert!(matches!(failure, Failure::Permanent { .. }), "{failure:?}");
        assert!(
            failure
                .to_string()
                .contains("unexpected status 401 Unauthorized"),
            "{failure}"
        );
        assert!(matches!(
            parse_output(OutputFormat::CodexJsonl, CODEX_429.to_owned()),
            Err(Failure::RateLimited { .. })
        ));
        assert_eq!(
            parse_output(
                OutputFormat::CodexJsonl,
                "Reading prompt from stdin...\n".to_owned()
            ),
            Err(Failure::retryable(
                "the output was not the expected codex-jsonl JSON (no JSON event lines); it \
                 began: Reading prompt from stdin..."
            ))
        );
    }

    #[test]
    fn opencode_jsonl_gives_the_last_steps_text_and_every_steps_tokens_and_cost() {
        let parsed =
            parse_output(OutputFormat::OpencodeJsonl, OPENCODE_SUCCESS.to_owned()).expect("ok");
        assert_eq!(parsed.answer, "## Plan\nThree phases.");
        let usage = parsed.usage.expect("usage");
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (200 + 5000 + 300 + 10 + 5000, 30 + 10 + 90)
        );
        let cost = usage.cost_usd.expect("a cost");
        assert!((cost - 0.0055).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn opencode_jsonl_errors_are_classified_by_their_status() {
        let refused = reported_failure(OutputFormat::OpencodeJsonl, OPENCODE_401.as_bytes(), b"")
            .expect("the error event");
        assert!(matches!(refused, Failure::Permanent { .. }), "{refused:?}");
        assert!(
            refused.to_string().contains("invalid x-api-key"),
            "{refused}"
        );
        assert!(matches!(
            parse_output(OutputFormat::OpencodeJsonl, OPENCODE_429.to_owned()),
            Err(Failure::RateLimited { .. })
        ));
        assert!(matches!(
            parse_output(OutputFormat::OpencodeJsonl, OPENCODE_NO_KEY.to_owned()),
            Err(Failure::Permanent { .. })
        ));
        assert_eq!(
            parse_output(OutputFormat::OpencodeJsonl, "Error: boom\n".to_owned()),
            Err(Failure::retryable(
                "the output was not the expected opencode-jsonl JSON (no JSON event lines); it \
                 began: Error: boom"
            ))
        );
    }

    #[test]
    fn on_a_failed_exit_the_reported_error_is_found_on_either_stream() {
        let claude = reported_failure(OutputFormat::ClaudeJson, CLAUDE_401.as_bytes(), b"")
            .expect("the envelope's error");
        assert!(matches!(claude, Failure::Permanent { .. }), "{claude:?}");
        let gemini = reported_failure(
            OutputFormat::GeminiJson,
            b"",
            format!("Loaded cached credentials.\n{GEMINI_AUTH_STDERR}").as_bytes(),
        )
        .expect("stderr's error");
        assert!(matches!(gemini, Failure::Permanent { .. }), "{gemini:?}");
        assert!(
            gemini.to_string().contains("Invalid auth method selected."),
            "{gemini}"
        );
        assert_eq!(
            reported_failure(OutputFormat::ClaudeJson, b"garbage", b"boom"),
            None
        );
        assert_eq!(reported_failure(OutputFormat::Text, b"x", b"401"), None);
    }

    #[test]
    fn cursor_agents_envelope_reads_like_claudes() {
        let parsed =
            parse_output(OutputFormat::ClaudeJson, CURSOR_SUCCESS.to_owned()).expect("success");
        assert_eq!(parsed.answer, "Findings: none");
        assert_eq!(parsed.usage, None);
    }

    #[test]
    fn gemini_json_gives_the_response_and_sums_the_models_tokens_thoughts_included() {
        let parsed =
            parse_output(OutputFormat::GeminiJson, GEMINI_SUCCESS.to_owned()).expect("success");
        assert_eq!(parsed.answer, "The capital of France is Paris.");
        assert_eq!(
            parsed.usage,
            Some(Usage {
                input_tokens: 24939 + 100,
                output_tokens: 25 + 154,
                cost_usd: None,
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
    fn gemini_json_reporting_a_rate_limit_waits() {
        assert_eq!(
            parse_output(OutputFormat::GeminiJson, GEMINI_ERROR.to_owned()),
            Err(Failure::RateLimited {
                message: "the agent reported an error: Quota exceeded for quota metric 'Gemini \
                          2.5 Pro Requests'"
                    .to_owned(),
                retry_after_ms: None
            })
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
