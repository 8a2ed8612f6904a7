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
