//! The resolved settings a run used, recorded with it and shown by `status`.

use serde_json::{Value, json};
use stagegate_settings::Settings;

pub fn settings_summary(settings: &Settings, stages: &[String]) -> Value {
    let defaults = &settings.defaults;
    let timeouts = &settings.timeouts;
    let millis = |duration: std::time::Duration| duration.as_millis() as u64;
    let stage_values: Vec<Value> = stages
        .iter()
        .filter_map(|id| settings.stages.get(id))
        .map(|stage| {
            let agents: Vec<Value> = stage
                .agents
                .iter()
                .chain([&stage.reviewer, &stage.synthesizer, &stage.qa])
                .filter_map(|id| settings.agents.get(id))
                .map(|agent| {
                    json!({
                        "id": agent.id,
                        "backend": agent.backend,
                        "fallback": agent.fallback,
                        "required": agent.required,
                        "timeout_ms": millis(settings.attempt_timeout(agent)),
                        "retries": settings.retries_of(agent),
                    })
                })
                .collect();
            json!({
                "id": stage.id,
                "concurrency": stage.concurrency,
                "required": stage.required,
                "optional": stage.optional,
                "inputs": stage.inputs,
                "agents": agents,
            })
        })
        .collect();
    json!({
        "defaults": {
            "backend": defaults.backend,
            "concurrency": defaults.concurrency,
            "retries": defaults.retries,
            "backoff_ms": millis(defaults.backoff),
            "min_success_ratio": defaults.min_success_ratio,
            "synthesis_iterations": defaults.synthesis_iterations,
            "output_cap_bytes": defaults.output_cap_bytes,
        },
        "timeouts_ms": {
            "default": millis(timeouts.default),
            "complex_analysis": millis(timeouts.complex_analysis),
            "simple_check": millis(timeouts.simple_check),
            "review": millis(timeouts.review),
            "synthesis": millis(timeouts.synthesis),
            "qa": millis(timeouts.qa),
            "stage": millis(timeouts.stage),
        },
        "stages": stage_values,
        "origins": settings.origins.iter().map(|(key, origin)| (key.clone(), Value::String(origin.to_string()))).collect::<serde_json::Map<_, _>>(),
    })
}
