//! The configuration loader never panics, and what it accepts is within range, whatever
//! `stagegate.toml` holds.
//!
//! A randomized test with fixed seeds rather than proptest or cargo-fuzz (proptest would add
//! about a dozen crates to the build for this one test). Two generators: documents built from
//! the schema's tables and keys with edge-case values (huge, negative, NaN, empty, odd names),
//! and the embedded defaults with random spans replaced. It runs in a few seconds; a failure
//! names the seed and the document. An error must name the file (the repository's or the
//! user-level one) and the line.

use std::time::Duration;

use stagegate_settings::{LoadOptions, Settings, embedded_defaults, load};

const TABLES: &[&str] = &[
    "defaults",
    "timeouts",
    "cache",
    "adaptive",
    "prices.fake",
    "backends.fake",
    "backends.mock",
    "agents.solution-architect",
    "agents.new-agent",
    "stages.plan",
    "stages.prep",
    "stages.custom",
];

const KEYS: &[&str] = &[
    "backend",
    "concurrency",
    "retries",
    "backoff",
    "min_success_ratio",
    "synthesis_iterations",
    "output_cap",
    "agent_memory",
    "large_context_memory",
    "default",
    "complex_analysis",
    "simple_check",
    "review",
    "synthesis",
    "qa",
    "stage",
    "kill_grace",
    "agent",
    "enabled",
    "complexity_threshold",
    "uncertainty_threshold",
    "failure_rate",
    "timeout_rate",
    "input_per_mtok",
    "output_per_mtok",
    "kind",
    "command",
    "base_url",
    "model",
    "api_key_env",
    "max_tokens",
    "latency",
    "fail_attempts",
    "timeout_class",
    "fallback",
    "required",
    "role",
    "task",
    "agents",
    "reviewer",
    "synthesizer",
    "optional",
    "inputs",
    "question",
    "alias",
    "summary_artifact",
    "pipeline",
];

const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "1025",
    "9223372036854775807",
    "-9223372036854775808",
    "0.75",
    "1.5",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "true",
    "\"\"",
    "\" \"",
    "\"30s\"",
    "\"0s\"",
    "\"250ms\"",
    "\"7days\"",
    "\"8days\"",
    "\"11m\"",
    "\"300000000000y\"",
    "\"15000000000000000000s\"",
    "\"18446744073709551615s 999999999ns\"",
    "\"1ns\"",
    "\"30\"",
    "\"1MiB\"",
    "\"1000TiB\"",
    "\"18446744073709551616\"",
    "\"command\"",
    "\"mock\"",
    "\"builtin\"",
    "\"openai\"",
    "\"fake\"",
    "\"nosuch\"",
    "\"complex_analysis\"",
    "\"plan.md\"",
    "[]",
    "[\"plan.md\"]",
    "[\".hidden.md\"]",
    "[\"sub/dir.md\"]",
    "[\"../up.md\"]",
    "[\"/abs.md\"]",
    "[\"contracts/\"]",
    "[\"a\\u0000b\"]",
    "[\"plan\", \"plan\"]",
    "[\"solution-architect\", \"new-agent\"]",
    "[\"true\"]",
    "[1, 2]",
    "{ a = 1 }",
    "\"http://127.0.0.1:1/v1\"",
    "\"all\"",
    "\"a\"",
];

fn generated(rng: &mut fastrand::Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.usize(0..6) {
        text.push_str(&format!("[{}]\n", TABLES[rng.usize(..TABLES.len())]));
        for _ in 0..rng.usize(0..6) {
            text.push_str(&format!(
                "{} = {}\n",
                KEYS[rng.usize(..KEYS.len())],
                VALUES[rng.usize(..VALUES.len())]
            ));
        }
    }
    text
}

fn mutated(rng: &mut fastrand::Rng) -> String {
    let mut text = embedded_defaults().to_owned();
    for _ in 0..rng.usize(1..4) {
        let mut start = rng.usize(..text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + rng.usize(0..12)).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let replacement = match rng.u8(0..4) {
            0 => VALUES[rng.usize(..VALUES.len())].to_owned(),
            1 => KEYS[rng.usize(..KEYS.len())].to_owned(),
            2 => rng.char(..).to_string(),
            _ => String::new(),
        };
        text.replace_range(start..end, &replacement);
    }
    text
}

/// What accepted settings must satisfy: the documented ranges, so that nothing derived from
/// them can overflow.
fn check_ranges(settings: &Settings) -> Result<(), String> {
    let timeouts = &settings.timeouts;
    let week = Duration::from_secs(7 * 24 * 3600);
    for (name, value) in [
        ("default", timeouts.default),
        ("complex_analysis", timeouts.complex_analysis),
        ("simple_check", timeouts.simple_check),
        ("review", timeouts.review),
        ("synthesis", timeouts.synthesis),
        ("qa", timeouts.qa),
        ("stage", timeouts.stage),
    ] {
        if value.is_zero() || value > week {
            return Err(format!("timeouts.{name} = {value:?}"));
        }
    }
    if timeouts.kill_grace > Duration::from_secs(600) {
        return Err(format!("timeouts.kill_grace = {:?}", timeouts.kill_grace));
    }
    let defaults = &settings.defaults;
    if !(1..=1024).contains(&defaults.concurrency) || defaults.retries > 100 {
        return Err(format!("defaults = {defaults:?}"));
    }
    if !(0.0..=1.0).contains(&defaults.min_success_ratio) {
        return Err(format!(
            "min_success_ratio = {}",
            defaults.min_success_ratio
        ));
    }
    for stage in settings.stages.values() {
        if !(1..=1024).contains(&stage.concurrency) {
            return Err(format!(
                "stages.{}.concurrency = {}",
                stage.id, stage.concurrency
            ));
        }
        for name in stage.required.iter().chain(&stage.optional) {
            let plain = name.strip_suffix('/').unwrap_or(name);
            if plain.is_empty() || plain.starts_with('.') || plain.contains(['/', '\\', '\0']) {
                return Err(format!("stages.{} artifact {name:?}", stage.id));
            }
        }
    }
    Ok(())
}

#[test]
fn the_loader_never_panics_and_accepts_only_values_in_range() {
    let directory = tempfile::tempdir().expect("tempdir");
    let repository_file = directory.path().join("stagegate.toml");
    // Every third document goes into the user-level file instead, beneath an empty
    // repository file: the same passes read it, and its errors must name it.
    let user_file = directory.path().join("xdg/stagegate/config.toml");
    std::fs::create_dir_all(user_file.parent().expect("a parent")).expect("create xdg dir");
    let options = LoadOptions {
        repo_root: directory.path().to_path_buf(),
        user_config: Some(user_file.clone()),
        ..LoadOptions::default()
    };
    let mut accepted = 0;
    for seed in 0..600u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let text = if seed % 2 == 0 {
            generated(&mut rng)
        } else {
            mutated(&mut rng)
        };
        let (path, other) = if seed % 3 == 0 {
            (&user_file, &repository_file)
        } else {
            (&repository_file, &user_file)
        };
        std::fs::write(path, &text).expect("write the configuration");
        std::fs::write(other, "").expect("empty the other file");
        let outcome = std::panic::catch_unwind(|| match load(&options) {
            Ok(loaded) => check_ranges(&loaded.settings)
                .map(|()| true)
                .map_err(|value| format!("accepted {value}")),
            Err(error) => {
                // A clear error: it names the file and the line, and renders (as the binary
                // shows it) without panicking.
                let message = error.to_string();
                let file_name = path.file_name().expect("a name").to_string_lossy();
                if !message.contains(&*file_name) || error.line().is_none() {
                    return Err(format!("an error without its file and line: {message}"));
                }
                let rendered = format!("{:?}", miette::Report::new(error));
                assert!(!rendered.is_empty());
                Ok(false)
            }
        });
        match outcome {
            Ok(Ok(ok)) => accepted += usize::from(ok),
            Ok(Err(problem)) => {
                panic!("seed {seed}: {problem}, from:\n{text}")
            }
            Err(_) => panic!("seed {seed}: the loader panicked on:\n{text}"),
        }
    }
    // The generators are not so wild that nothing loads.
    assert!(accepted > 25, "only {accepted} documents loaded");
}
