//! Why an HTTP backend could not be built from its settings.

/// A `[backends.NAME]` table of kind `openai` or `anthropic` that cannot work as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpBackendError {
    #[error("base_url `{base_url}` is not an http:// or https:// URL: {reason}")]
    InvalidBaseUrl { base_url: String, reason: String },
    #[error("model is empty; set the model the server should run, e.g. model = \"gpt-4o-mini\"")]
    EmptyModel,
    #[error("max_tokens must be at least 1")]
    ZeroMaxTokens,
    #[error("temperature {0} is not a finite number between 0 and 2")]
    InvalidTemperature(String),
    #[error("api_key_env is empty; name the environment variable that holds the key")]
    EmptyKeyVariable,
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
}
