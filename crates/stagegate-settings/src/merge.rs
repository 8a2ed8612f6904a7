//! The merge pass: a layer's raw configuration over the layers below it, key by key.
//!
//! A user's `[stages.plan] concurrency = 1` changes that one key of the built-in stage; a stage,
//! agent or backend the defaults do not have is simply new. Lists are values like any other: a
//! user's `agents = [...]` replaces the built-in list rather than extending it, so that a stage's
//! agents can be read off one place.
//!
//! Moving each value is also where it is stamped with its layer, which is how errors found much
//! later still know which file (or variable, or flag) to blame.

use std::collections::BTreeMap;

use crate::raw::{
    Layer, RawAdaptive, RawAgent, RawBackend, RawCache, RawCluster, RawConfig, RawDefaults,
    RawPrice, RawStage, RawTimeouts, Sourced,
};

/// Puts every value `top` sets over `base`, stamped with `layer`.
pub(crate) fn merge(base: &mut RawConfig, top: RawConfig, layer: &Layer) {
    set(&mut base.pipeline, top.pipeline, layer);
    merge_defaults(&mut base.defaults, top.defaults, layer);
    merge_timeouts(&mut base.timeouts, top.timeouts, layer);
    merge_cache(&mut base.cache, top.cache, layer);
    merge_cluster(&mut base.cluster, top.cluster, layer);
    merge_adaptive(&mut base.adaptive, top.adaptive, layer);
    merge_tables(&mut base.backends, top.backends, layer, merge_backend);
    merge_tables(&mut base.stages, top.stages, layer, merge_stage);
    merge_tables(&mut base.agents, top.agents, layer, merge_agent);
    merge_tables(&mut base.prices, top.prices, layer, merge_price);
}

/// Sets one key when the top layer has it.
pub(crate) fn set<T>(base: &mut Option<Sourced<T>>, top: Option<Sourced<T>>, layer: &Layer) {
    if let Some(mut value) = top {
        value.location.layer = layer.clone();
        *base = Some(value);
    }
}

macro_rules! set_each {
    ($base:expr, $top:expr, $layer:expr; $($field:ident),+ $(,)?) => {
        $( set(&mut $base.$field, $top.$field, $layer); )+
    };
}

fn merge_tables<T: Default>(
    base: &mut BTreeMap<String, T>,
    top: BTreeMap<String, T>,
    layer: &Layer,
    merge_one: fn(&mut T, T, &Layer),
) {
    for (name, table) in top {
        merge_one(base.entry(name).or_default(), table, layer);
    }
}

fn merge_defaults(base: &mut RawDefaults, top: RawDefaults, layer: &Layer) {
    set_each!(base, top, layer;
        backend, concurrency, retries, backoff, min_success_ratio, synthesis_iterations,
        output_cap, agent_memory, large_context_memory);
}

fn merge_timeouts(base: &mut RawTimeouts, top: RawTimeouts, layer: &Layer) {
    set_each!(base, top, layer;
        default, complex_analysis, simple_check, review, synthesis, qa, stage, kill_grace);
}

fn merge_cache(base: &mut RawCache, top: RawCache, layer: &Layer) {
    set_each!(base, top, layer; agent, review, synthesis, qa);
}

fn merge_cluster(base: &mut RawCluster, top: RawCluster, layer: &Layer) {
    set_each!(base, top, layer; temporal, namespace, task_queue, repository);
}

fn merge_adaptive(base: &mut RawAdaptive, top: RawAdaptive, layer: &Layer) {
    set_each!(base, top, layer;
        enabled, complexity_threshold, uncertainty_threshold, failure_rate, timeout_rate);
}

fn merge_backend(base: &mut RawBackend, top: RawBackend, layer: &Layer) {
    // Another kind is another backend: keys of the old kind (a mock's `latency` under a
    // `command`) would only be noise, so the table is replaced instead of merged.
    let kind_changes = match (&base.kind, &top.kind) {
        (Some(old), Some(new)) => old.value != new.value,
        _ => false,
    };
    if kind_changes {
        *base = RawBackend::default();
    }
    // The output format describes what the command prints, so a layer that replaces the command
    // without naming its format gets the default (`text`) rather than the format of a command it
    // no longer runs: `[backends.claude] command = ["claude", "-p"]` prints text, not the
    // built-in preset's JSON envelope.
    if top.command.is_some() && top.output_format.is_none() {
        base.output_format = None;
    }
    // `env` merges key by key: a user who adds one variable keeps the preset's (Claude Code's
    // CLAUDE_CODE_MAX_RETRIES=0) unless they set the same name.
    let mut top = top;
    if let (Some(old), Some(new)) = (&base.env, &mut top.env) {
        for (name, value) in &old.value {
            new.value
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    }
    base.declared_in = Some(layer.clone());
    set_each!(base, top, layer;
        kind, command, env, secret_env, output_format, speckit_integration, memory, base_url, model, api_key_env, temperature, max_tokens, latency,
        fail_attempts, output, api, idle_timeout, on_truncation);
}

fn merge_stage(base: &mut RawStage, top: RawStage, layer: &Layer) {
    base.declared_in = Some(layer.clone());
    set_each!(base, top, layer;
        name, alias, trigger, agents, reviewer, synthesizer, qa, required, optional, inputs,
        question, concurrency, summary_artifact);
}

fn merge_agent(base: &mut RawAgent, top: RawAgent, layer: &Layer) {
    base.declared_in = Some(layer.clone());
    set_each!(base, top, layer;
        role, task, backend, fallback, timeout_class, required, large_context, retries);
}

fn merge_price(base: &mut RawPrice, top: RawPrice, layer: &Layer) {
    set_each!(base, top, layer; input_per_mtok, output_per_mtok);
}
