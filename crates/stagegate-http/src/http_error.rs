//! A non-2xx answer as a classified [`Failure`], with the server's own message.
//!
//! 429 and 529 (Anthropic's "overloaded") are rate limits: retryable, with the server's
//! `Retry-After` as both the failure's `retry_after_ms` and the backend's shared pause. 408 and
//! 5xx are retryable. Every other 4xx is permanent: the request, the key or the model name is
//! wrong, and sending it again cannot help. The message is the status plus the server's
//! explanation from its JSON error body (`error.message` in both APIs), e.g.
//! "401 Unauthorized: invalid x-api-key", with a hint at what to check.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use stagegate_engine::backend::Failure;
use stagegate_engine::secrets;

use crate::retry_after::retry_after;

/// Longest server message kept, in characters: an HTML error page is not a message.
const MESSAGE_CHARS: usize = 300;

/// What a rejected request means for this attempt and the ones after it.
#[derive(Debug, PartialEq)]
pub(crate) struct Rejection {
    pub(crate) failure: Failure,
    /// How long the backend should hold new requests back.
    pub(crate) pause: Option<Duration>,
}

/// What the backend knows that helps the user fix a rejected request.
pub(crate) struct RejectionContext<'a> {
    /// The variable the key came from, for 401 and 403.
    pub(crate) key_variable: Option<&'a str>,
    pub(crate) endpoint: &'a str,
    pub(crate) model: &'a str,
}

/// Classifies a rejected request from its status, headers and body.
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    context: &RejectionContext<'_>,
) -> Rejection {
    let reason = status.canonical_reason().unwrap_or(match status.as_u16() {
        529 => "Overloaded",
        _ => "",
    });
    let mut message = format!("{} {reason}", status.as_u16())
        .trim_end()
        .to_owned();
    if let Some(server_message) = server_message(body) {
        message.push_str(": ");
        message.push_str(&server_message);
    }
    match status.as_u16() {
        429 | 529 => {
            let pause = retry_after(headers, now);
            Rejection {
                failure: Failure::RateLimited {
                    message,
                    retry_after_ms: pause
                        .map(|pause| u64::try_from(pause.as_millis()).unwrap_or(u64::MAX)),
                },
                pause,
            }
        }
        408 | 500..=599 => Rejection {
            failure: Failure::retryable(message),
            pause: None,
        },
        code => {
            match (code, context.key_variable) {
                (401 | 403, Some(variable)) => {
                    message.push_str(&format!(" (check the key in {variable})"));
                }
                (401 | 403, None) => message.push_str(
                    " (the server wants a key: set api_key_env to the variable holding it)",
                ),
                (404, _) => message.push_str(&format!(
                    " (check base_url and model: {} with model `{}`)",
                    context.endpoint, context.model
                )),
                _ => {}
            }
            Rejection {
                failure: Failure::permanent(message),
                pause: None,
            }
        }
    }
}

/// The server's explanation: `error.message` (OpenAI, Anthropic), `error` as a string (Ollama,
/// some proxies), `message` or `detail`; else a short plain-text body.
fn server_message(body: &[u8]) -> Option<String> {
    let message = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => [
            &json["error"]["message"],
            &json["error"],
            &json["message"],
            &json["detail"],
        ]
        .into_iter()
        .find_map(|value| value.as_str())
        .map(str::to_owned)?,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.starts_with('<') {
                return None;
            }
            text.to_owned()
        }
    };
    // Redacted before it is cut: a key echoed by the server must not survive as a fragment.
    let message = secrets::redact(&message);
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if message.is_empty() {
        return None;
    }
    Some(match message.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn context() -> RejectionContext<'static> {
        RejectionContext {
            key_variable: Some("ANTHROPIC_API_KEY"),
            endpoint: "https://api.anthropic.com/v1/messages",
            model: "claude-sonnet-4-5",
        }
    }

    fn classify_body(code: u16, body: &str) -> Rejection {
        let status = StatusCode::from_u16(code).expect("status");
        classify(
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            SystemTime::now(),
            &context(),
        )
    }

    #[test]
    fn client_errors_are_permanent_with_the_servers_message() {
        let rejection = classify_body(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!(
            rejection.failure,
            Failure::permanent(
                "401 Unauthorized: invalid x-api-key (check the key in ANTHROPIC_API_KEY)"
            )
        );
        assert_eq!(
            classify_body(400, r#"{"error":"model 'x' not found"}"#).failure,
            Failure::permanent("400 Bad Request: model 'x' not found")
        );
        assert_eq!(
            classify_body(422, "<html>nope</html>").failure,
            Failure::permanent("422 Unprocessable Entity")
        );
    }

    #[test]
    fn server_errors_are_retryable_and_rate_limits_pause() {
        assert_eq!(
            classify_body(503, "upstream down").failure,
            Failure::retryable("503 Service Unavailable: upstream down")
        );
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let status = StatusCode::from_u16(529).expect("status");
        let rejection = classify(
            status,
            &headers,
            br#"{"error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            SystemTime::now(),
            &context(),
        );
        assert_eq!(
            rejection,
            Rejection {
                failure: Failure::RateLimited {
                    message: "529 Overloaded: Overloaded".to_owned(),
                    retry_after_ms: Some(3_000),
                },
                pause: Some(Duration::from_secs(3)),
            }
        );
    }

    #[test]
    fn an_echoed_key_is_redacted_before_the_message_is_cut() {
        let key = "sk-test-echo-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        secrets::remember(key);
        let body = format!(
            r#"{{"error":{{"message":"{} Authorization: Bearer {key} was refused"}}}}"#,
            "x".repeat(228)
        );
        let Failure::Permanent { message } = classify_body(401, &body).failure else {
            panic!("permanent");
        };
        assert!(!message.contains("ABCDEFGHI"), "{message}");
        assert!(message.contains("Bearer [REDACTED]"), "{message}");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(1000);
        let Failure::Permanent { message } = classify_body(400, &long).failure else {
            panic!("permanent");
        };
        assert_eq!(message.chars().count(), "400 Bad Request: ".len() + 301);
    }
}
