//! Classifying the error a CLI coding agent reports about its model: whether another attempt
//! can help.
//!
//! The agents report an HTTP status when they have one (`api_error_status`, `code`) and a
//! message always; the status decides when it is there, the message's words otherwise. Not
//! being logged in, a rejected key, exhausted quota or billing trouble are permanent (the user
//! must act, and sixteen retries only delay saying so); a rate limit waits; anything else (a
//! connection refused, a 5xx, an overloaded model) may pass and is retryable.

use crate::backend::Failure;

/// What the user can do about an authentication failure.
const AUTH_HINT: &str = "log the agent in (run it once interactively) or set its API key in \
                         the backend's env";

/// What the user can do about quota or billing.
const QUOTA_HINT: &str = "check the account's plan and billing; retrying will not help";

/// Words (lower case) that mark a message as an authentication failure.
const AUTH_WORDS: [&str; 10] = [
    "not logged in",
    "no auth type is selected",
    "no authentication information found",
    "please run /login",
    "invalid api key",
    "invalid x-api-key",
    "invalid_api_key",
    "authentication_error",
    "unauthorized",
    "api key not valid",
];

/// Words (lower case) that mark a message as exhausted quota or a billing problem.
const QUOTA_WORDS: [&str; 4] = [
    "insufficient_quota",
    "billing_error",
    "credit balance is too low",
    "exceeded your current quota",
];

/// Words (lower case) that mark a message as a rate limit.
const RATE_LIMIT_WORDS: [&str; 3] = ["rate limit", "rate_limit", "too many requests"];

/// The failure for an error the agent reported: `status` is the HTTP status it names, if any,
/// and `message` its text (already shortened for quoting).
pub(crate) fn classify(status: Option<u64>, message: &str) -> Failure {
    let lower = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| lower.contains(word));
    let said = format!("the agent reported an error: {message}");
    // Quota first: OpenAI answers 429 for both, and only the words tell them apart.
    if has(&QUOTA_WORDS) {
        return Failure::permanent(format!("{said}; {QUOTA_HINT}"));
    }
    match status {
        Some(401 | 403) => return Failure::permanent(format!("{said}; {AUTH_HINT}")),
        Some(429) => {
            return Failure::RateLimited {
                message: said,
                retry_after_ms: None,
            };
        }
        Some(400 | 404 | 413 | 422) => {
            return Failure::permanent(format!(
                "{said}; the request was refused (check the backend's model and arguments)"
            ));
        }
        Some(_) => return Failure::retryable(said),
        None => {}
    }
    if has(&AUTH_WORDS) || status_in_text(&lower, &["401", "403"]) {
        return Failure::permanent(format!("{said}; {AUTH_HINT}"));
    }
    if has(&RATE_LIMIT_WORDS) || status_in_text(&lower, &["429"]) {
        return Failure::RateLimited {
            message: said,
            retry_after_ms: None,
        };
    }
    Failure::retryable(said)
}

/// What an agent's stderr says on a failed exit, when it says it is not authenticated or out
/// of quota: the permanent failure, with `how` (the exit) and `excerpt` (stderr's last lines)
/// quoted. `None` otherwise: the exit stays a retryable failure.
pub(crate) fn permanent_from_stderr(how: &str, excerpt: &str) -> Option<Failure> {
    let lower = excerpt.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| lower.contains(word));
    if has(&QUOTA_WORDS) {
        return Some(Failure::permanent(format!(
            "{how}: {excerpt}; {QUOTA_HINT}"
        )));
    }
    if has(&AUTH_WORDS) {
        return Some(Failure::permanent(format!("{how}: {excerpt}; {AUTH_HINT}")));
    }
    None
}

/// Whether the text names one of `codes` the way the agents print a status: `API Error: 401`,
/// `[API Error: 429 …]`, `status 401`, `"code":401`.
fn status_in_text(lower: &str, codes: &[&str]) -> bool {
    [
        "api error: ",
        "status ",
        "status: ",
        "\"code\":",
        "\"code\": ",
    ]
    .iter()
    .any(|lead| {
        codes
            .iter()
            .any(|code| lower.contains(&format!("{lead}{code}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_permanent(failure: &Failure) -> bool {
        matches!(failure, Failure::Permanent { .. })
    }

    #[test]
    fn stderr_is_permanent_only_when_it_says_auth_or_quota() {
        let failure =
            permanent_from_stderr("`opencode` exited with code 1", "Error: invalid x-api-key")
                .expect("an auth failure");
        assert!(is_permanent(&failure));
        assert_eq!(
            permanent_from_stderr(
                "`copilot` exited with code 1",
                "Error: Authentication token found but could not be validated. | Failed to fetch \
                 PAT user login: network fetch failed"
            ),
            None,
            "a network failure while checking a token may pass"
        );
    }

    #[test]
    fn a_status_decides() {
        assert!(is_permanent(&classify(Some(401), "Invalid API key")));
        assert!(is_permanent(&classify(Some(403), "forbidden")));
        assert!(matches!(
            classify(Some(429), "slow down"),
            Failure::RateLimited { .. }
        ));
        assert!(matches!(
            classify(Some(529), "Overloaded"),
            Failure::Retryable { .. }
        ));
    }

    #[test]
    fn quota_is_permanent_even_as_a_429() {
        let failure = classify(
            Some(429),
            "You exceeded your current quota (insufficient_quota)",
        );
        assert!(is_permanent(&failure), "{failure:?}");
        assert!(failure.to_string().contains("billing"), "{failure}");
    }

    #[test]
    fn without_a_status_the_words_decide() {
        assert!(is_permanent(&classify(
            None,
            "Not logged in · Please run /login"
        )));
        assert!(is_permanent(&classify(
            None,
            "[API Error: 401 invalid x-api-key]"
        )));
        assert!(matches!(
            classify(None, "[API Error: 429 Rate limited]"),
            Failure::RateLimited { .. }
        ));
        let refused = classify(
            None,
            "API Error: Unable to connect to API (ConnectionRefused)",
        );
        assert_eq!(
            refused,
            Failure::retryable(
                "the agent reported an error: API Error: Unable to connect to API (ConnectionRefused)"
            )
        );
        assert!(is_permanent(&classify(
            None,
            "Invalid API key · Fix external API key"
        )));
    }
}
