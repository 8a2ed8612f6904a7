//! A non-2xx answer as a classified [`Failure`], with the server's own message.
//!
//! As both official SDKs do: the server's `x-should-retry` header decides first (`true` or
//! `false`); without it, 429 and 529 (Anthropic's "overloaded") are rate limits: retryable, with
//! the server's `Retry-After` as both the failure's `retry_after_ms` and the backend's shared
//! pause; 408, 409 (a conflict, such as a lock held by another request) and 5xx are retryable.
//! Every other 4xx is permanent: the request, the key or the model name is wrong, and sending
//! it again cannot help. An exhausted quota or credit (OpenAI's 429 `insufficient_quota`,
//! Anthropic's `billing_error`, 402) is permanent whatever the status: it lasts until someone
//! pays, and retrying it as a rate limit only delays the failure. The message is the status plus the server's
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
    if status.as_u16() == 402 || is_out_of_credit(body) {
        message.push_str(
            " (the account is out of quota or credit: check its plan and billing; retrying cannot help)",
        );
        return Rejection {
            failure: Failure::permanent(message),
            pause: None,
        };
    }
    let should_retry = headers
        .get("x-should-retry")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    match (should_retry, status.as_u16()) {
        (Some("false"), _) => Rejection {
            failure: Failure::permanent(message),
            pause: None,
        },
        (Some("true"), code) if !matches!(code, 429 | 529) => Rejection {
            failure: Failure::retryable(message),
            pause: None,
        },
        (_, 429 | 529) => {
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
        (_, 408 | 409 | 500..=599) => Rejection {
            failure: Failure::retryable(message),
            pause: None,
        },
        (_, code) => {
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

/// OpenAI's `insufficient_quota` (as `error.code` or `error.type`) or Anthropic's
/// `billing_error` (`error.type`).
fn is_out_of_credit(body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &json["error"];
    [&error["code"], &error["type"]]
        .into_iter()
        .filter_map(|value| value.as_str())
        .any(|kind| matches!(kind, "insufficient_quota" | "billing_error"))
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
    fn quota_and_billing_errors_are_permanent_with_a_hint() {
        let quota = classify_body(
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert_eq!(
            quota.failure,
            Failure::permanent(
                "429 Too Many Requests: You exceeded your current quota (the account is out of quota or credit: check its plan and billing; retrying cannot help)"
            )
        );
        assert_eq!(quota.pause, None);
        let billing = classify_body(
            400,
            r#"{"type":"error","error":{"type":"billing_error","message":"Your credit balance is too low"}}"#,
        );
        assert!(!billing.failure.is_retryable());
        assert!(!classify_body(402, "pay").failure.is_retryable());
    }

    #[test]
    fn x_should_retry_decides_and_409_is_retried() {
        let with_header = |code: u16, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-should-retry", HeaderValue::from_static(value));
            let status = StatusCode::from_u16(code).expect("status");
            classify(status, &headers, b"", SystemTime::now(), &context()).failure
        };
        assert!(with_header(400, "true").is_retryable());
        assert!(!with_header(503, "false").is_retryable());
        assert!(!with_header(429, "false").is_retryable());
        assert!(matches!(
            with_header(429, "true"),
            Failure::RateLimited { .. }
        ));
        assert_eq!(
            classify_body(409, "").failure,
            Failure::retryable("409 Conflict")
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
