//! Builds the `openai` and `anthropic` backends from `[backends.NAME]` settings, in the shape of
//! the engine's `BackendFactory`: `BackendRegistry::new().with_factory(Box::new(backend_from_settings))`.

use std::sync::Arc;

use stagegate_engine::backend::Backend;
use stagegate_settings::BackendSettings;

use crate::anthropic::AnthropicAgent;
use crate::openai::OpenAiAgent;

/// The backend `name` describes, when its kind is `openai` or `anthropic`; `None` for other kinds.
/// The error is a message for the user about the settings.
pub fn backend_from_settings(
    name: &str,
    settings: &BackendSettings,
) -> Option<Result<Arc<dyn Backend>, String>> {
    match settings {
        BackendSettings::OpenAi {
            base_url,
            model,
            api_key_env,
            temperature,
            max_tokens,
            api,
            http,
        } => Some(
            OpenAiAgent::new(
                base_url,
                model,
                api_key_env.as_deref(),
                *temperature,
                *max_tokens,
            )
            .and_then(|agent| agent.with_api(*api))
            .map(|agent| {
                let agent = agent
                    .named(name)
                    .with_idle_timeout(http.idle_timeout)
                    .with_on_truncation(http.on_truncation);
                Arc::new(agent) as Arc<dyn Backend>
            })
            .map_err(|error| error.to_string()),
        ),
        BackendSettings::Anthropic {
            base_url,
            model,
            api_key_env,
            max_tokens,
            http,
        } => Some(
            AnthropicAgent::new(base_url, model, api_key_env, *max_tokens)
                .map(|agent| {
                    let agent = agent
                        .named(name)
                        .with_idle_timeout(http.idle_timeout)
                        .with_on_truncation(http.on_truncation);
                    Arc::new(agent) as Arc<dyn Backend>
                })
                .map_err(|error| error.to_string()),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stagegate_settings::{HttpOptions, OnTruncation, OpenAiApi};

    use super::*;

    #[test]
    fn the_http_options_reach_the_backend() {
        let settings = BackendSettings::OpenAi {
            base_url: "http://127.0.0.1:8080/v1".to_owned(),
            model: "m".to_owned(),
            api_key_env: None,
            temperature: None,
            max_tokens: Some(64),
            api: OpenAiApi::Responses,
            http: HttpOptions {
                idle_timeout: Duration::from_millis(1500),
                on_truncation: OnTruncation::Fail,
            },
        };
        let backend = backend_from_settings("local", &settings)
            .expect("an HTTP kind")
            .expect("valid settings");
        assert_eq!(
            backend.fingerprint(),
            "openai:http://127.0.0.1:8080/v1:m:temperature=None:max_tokens=Some(64):api=responses:on_truncation=fail"
        );
        let anthropic = BackendSettings::Anthropic {
            base_url: "https://api.anthropic.com".to_owned(),
            model: "m".to_owned(),
            api_key_env: "ANTHROPIC_API_KEY".to_owned(),
            max_tokens: 64,
            http: HttpOptions::default(),
        };
        let backend = backend_from_settings("sonnet", &anthropic)
            .expect("an HTTP kind")
            .expect("valid settings");
        // Defaults add nothing: existing cache entries stay valid.
        assert_eq!(
            backend.fingerprint(),
            "anthropic:https://api.anthropic.com:m:temperature=None:max_tokens=64"
        );
    }
}
