//! Loading end to end: the defaults, a user file, the environment and flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::Diagnostic;

use super::*;
use crate::error::ConfigErrorKind;
use crate::settings::{
    BackendSettings, HttpOptions, OpenAiApi, Origin, OutputFormat, TimeoutClass,
};
use crate::warning::WarningReason;

/// A temporary repository with `stagegate.toml` holding `text`.
struct Repository {
    directory: tempfile::TempDir,
}

impl Repository {
    fn new() -> Self {
        Repository {
            directory: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn with_config(text: &str) -> Self {
        let repository = Repository::new();
        std::fs::write(repository.config_path(), text).expect("write stagegate.toml");
        repository
    }

    fn root(&self) -> &Path {
        self.directory.path()
    }

    fn config_path(&self) -> PathBuf {
        self.root().join(CONFIG_FILE_NAME)
    }

    fn options(&self) -> LoadOptions {
        LoadOptions {
            repo_root: self.root().to_path_buf(),
            ..LoadOptions::default()
        }
    }

    fn load(&self) -> Result<Loaded, ConfigError> {
        load(&self.options())
    }

    fn load_error(&self) -> ConfigError {
        match self.load() {
            Ok(loaded) => panic!("expected an error, loaded {:#?}", loaded.settings),
            Err(error) => error,
        }
    }
}

fn load_defaults() -> Loaded {
    Repository::new().load().expect("the defaults load")
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let offset = text.find(needle).expect("needle in text");
    text[..offset].matches('\n').count() + 1
}

// --- the defaults --------------------------------------------------------------------------

#[test]
fn defaults_hold_the_seeds_numbers() {
    let loaded = load_defaults();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.source, None);
    let defaults = &loaded.settings.defaults;
    assert_eq!(defaults.backend, "builtin");
    assert_eq!(defaults.concurrency, 3);
    assert_eq!(defaults.retries, 2);
    assert_eq!(defaults.backoff, Duration::from_secs(1));
    assert_eq!(defaults.min_success_ratio, 0.75);
    assert_eq!(defaults.synthesis_iterations, 1);
    assert_eq!(defaults.output_cap_bytes, 1 << 20);
    assert_eq!(defaults.agent_memory_bytes, 256_000_000);
    assert_eq!(defaults.large_context_memory_bytes, 512_000_000);

    let timeouts = &loaded.settings.timeouts;
    assert_eq!(timeouts.default, Duration::from_secs(30));
    assert_eq!(timeouts.complex_analysis, Duration::from_secs(60));
    assert_eq!(timeouts.simple_check, Duration::from_secs(10));
    assert_eq!(timeouts.review, Duration::from_secs(15));
    assert_eq!(timeouts.synthesis, Duration::from_secs(20));
    assert_eq!(timeouts.qa, Duration::from_secs(10));
    assert_eq!(timeouts.stage, Duration::from_secs(120));
    assert_eq!(timeouts.kill_grace, Duration::from_secs(2));
    assert_eq!(
        timeouts.for_class(TimeoutClass::ComplexAnalysis),
        Duration::from_secs(60)
    );

    let backends = &loaded.settings.backends;
    // builtin, mock and the CLI agents' presets (see `presets_run_cli_agents_headless`).
    assert_eq!(backends.len(), 9);
    assert_eq!(backends["builtin"], BackendSettings::Builtin);
    assert_eq!(
        backends["mock"],
        BackendSettings::Mock {
            latency: Duration::from_millis(100),
            fail_attempts: 0,
            output: None,
        }
    );
    assert_eq!(
        loaded.settings.origins.get("defaults.concurrency"),
        Some(&Origin::Default)
    );
    assert_eq!(
        loaded.settings.origins.get("timeouts.kill_grace"),
        Some(&Origin::Default)
    );
}

#[test]
fn defaults_hold_the_built_in_pipeline() {
    let settings = load_defaults().settings;
    assert_eq!(settings.pipeline, strings(&["plan", "prep", "analyze"]));
    assert_eq!(settings.stages.len(), 3);

    let plan = &settings.stages["plan"];
    assert_eq!(plan.id, "plan");
    assert_eq!(plan.name, "Stage A: Planning/Spec");
    assert_eq!(plan.alias.as_deref(), Some("a"));
    assert_eq!(plan.trigger.as_deref(), Some("/speckit.plan"));
    assert_eq!(
        plan.agents,
        strings(&[
            "requirements-analyst",
            "solution-architect",
            "risk-compliance-analyst",
            "estimation-scope-analyst"
        ])
    );
    assert_eq!(plan.reviewer, "lead-reviewer-a");
    assert_eq!(plan.synthesizer, "lead-synthesizer-a");
    assert_eq!(plan.qa, "main-agent");
    assert_eq!(plan.required, strings(&["plan.md", "planning-summary.md"]));
    assert_eq!(
        plan.optional,
        strings(&["research.md", "data-model.md", "contracts/"])
    );
    assert_eq!(plan.inputs, strings(&["spec.md"]));
    assert_eq!(
        plan.question,
        "Planning artifacts synthesized. Approve to proceed?"
    );
    assert_eq!(plan.concurrency, 3);
    assert_eq!(plan.summary_artifact, "planning-summary.md");

    let prep = &settings.stages["prep"];
    assert_eq!(prep.name, "Stage B: Implementation Prep");
    assert_eq!(prep.alias.as_deref(), Some("b"));
    assert_eq!(prep.trigger.as_deref(), Some("before /speckit.implement"));
    assert_eq!(
        prep.agents,
        strings(&[
            "core-implementer",
            "integrations-engineer",
            "test-engineer",
            "docs-engineer"
        ])
    );
    assert_eq!(prep.reviewer, "integration-reviewer-b");
    assert_eq!(prep.synthesizer, "lead-synthesizer-b");
    assert_eq!(prep.required, strings(&["implementation_plan.md"]));
    assert_eq!(
        prep.optional,
        strings(&["tasks.md", "test_fixtures/", "api_mocks/"])
    );
    assert_eq!(prep.inputs, strings(&["spec.md", "plan.md"]));
    assert_eq!(
        prep.question,
        "Implementation plan ready. Approve to proceed?"
    );
    assert_eq!(prep.concurrency, 2);
    assert_eq!(prep.summary_artifact, "implementation_plan.md");

    let analyze = &settings.stages["analyze"];
    assert_eq!(analyze.name, "Stage C: Quality Review");
    assert_eq!(analyze.alias.as_deref(), Some("c"));
    assert_eq!(analyze.trigger.as_deref(), Some("/speckit.analyze"));
    assert_eq!(
        analyze.agents,
        strings(&[
            "completeness-reviewer",
            "feasibility-reviewer",
            "security-reviewer",
            "consistency-reviewer"
        ])
    );
    assert_eq!(analyze.reviewer, "lead-reviewer-c");
    assert_eq!(analyze.synthesizer, "lead-synthesizer-c");
    assert_eq!(analyze.required, strings(&["quality_report.md"]));
    assert_eq!(
        analyze.optional,
        strings(&["coverage_report.html", "security_scan.json"])
    );
    assert_eq!(analyze.inputs, strings(&["spec.md", "plan.md", "tasks.md"]));
    assert_eq!(
        analyze.question,
        "Quality review complete. Approve to proceed?"
    );
    assert_eq!(analyze.concurrency, 3);
}

#[test]
fn defaults_define_every_agent_the_stages_use() {
    let settings = load_defaults().settings;
    // 12 role agents, 3 reviewers, 3 synthesizers and the main agent.
    assert_eq!(settings.agents.len(), 19);
    let role_agents: usize = settings
        .stages
        .values()
        .map(|stage| stage.agents.len())
        .sum();
    assert_eq!(role_agents, 12);
    for stage in settings.stages.values() {
        for id in stage
            .agents
            .iter()
            .chain([&stage.reviewer, &stage.synthesizer, &stage.qa])
        {
            let agent = &settings.agents[id];
            assert_eq!(&agent.id, id);
            assert!(!agent.role.is_empty() && !agent.task.is_empty(), "{id}");
            assert_ne!(agent.task, agent.role, "{id} has a real task");
            assert_eq!(agent.backend, "builtin");
        }
    }
    let roles: Vec<(&str, &str)> = [
        ("requirements-analyst", "Requirements Analyst"),
        ("solution-architect", "Solution Architect"),
        ("risk-compliance-analyst", "Risk/Compliance Analyst"),
        ("estimation-scope-analyst", "Estimation/Scope Analyst"),
        ("core-implementer", "Core Implementer"),
        ("integrations-engineer", "Integrations Engineer"),
        ("test-engineer", "Test Engineer"),
        ("docs-engineer", "Docs Engineer"),
        ("main-agent", "Main Agent"),
    ]
    .into();
    for (id, role) in roles {
        assert_eq!(settings.agents[id].role, role);
    }
    assert_eq!(
        settings.agents["solution-architect"].timeout_class,
        TimeoutClass::ComplexAnalysis
    );
    assert!(
        settings.agents["lead-synthesizer-a"]
            .task
            .contains("Problem → Solution → Implementation")
    );
    assert!(
        settings.agents["lead-synthesizer-b"]
            .task
            .contains("Approach → Tasks → Dependencies")
    );
    assert!(
        settings.agents["lead-synthesizer-c"]
            .task
            .contains("Issues → Impact → Resolution")
    );
    assert!(
        settings.agents["lead-reviewer-a"]
            .task
            .contains("technical coherence")
    );
    assert!(
        settings.agents["integration-reviewer-b"]
            .task
            .contains("API consistency")
    );
    assert!(
        settings.agents["lead-reviewer-c"]
            .task
            .contains("critical findings")
    );
    assert!(
        settings.agents["security-reviewer"]
            .task
            .contains("CRITICAL, HIGH, MEDIUM or LOW")
    );
    assert!(settings.agents["main-agent"].task.contains("VERDICT: PASS"));
}

#[test]
fn stages_are_found_by_id_or_alias() {
    let settings = load_defaults().settings;
    assert_eq!(
        settings.stage("a").map(|stage| stage.id.as_str()),
        Some("plan")
    );
    assert_eq!(
        settings.stage("plan").map(|stage| stage.id.as_str()),
        Some("plan")
    );
    assert_eq!(
        settings.stage("c").map(|stage| stage.id.as_str()),
        Some("analyze")
    );
    assert!(settings.stage("z").is_none());
}

// --- the example from PRODUCT.md §4 ----------------------------------------------------------

const PRODUCT_EXAMPLE: &str = r#"
[defaults]
backend = "builtin"         # the backend of every agent, reviewer, synthesizer and QA unless overridden
concurrency = 3             # parallel agents at once
retries = 2                 # further attempts after a failure
backoff = "1s"              # wait before retry k is backoff * 2^(k-1)
min_success_ratio = 0.75    # quorum to continue with partial results

[timeouts]
default = "30s"             # per agent attempt; complex_analysis = "60s", simple_check = "10s"
review = "15s"
synthesis = "20s"
qa = "10s"
stage = "120s"              # whole stage, the gate's waiting excluded

[backends.claude]
kind = "command"            # a program: the prompt on stdin, the output on stdout, exit 0 = success
command = ["claude", "-p"]

[backends.local]
kind = "openai"             # OpenAI-compatible chat completions
base_url = "http://127.0.0.1:8080/v1"
model = "gemma-3-270m"
api_key_env = "OPENAI_API_KEY"   # name of the variable holding the key, never the key itself

[backends.sonnet]
kind = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"

[backends.dry]
kind = "mock"               # no model: answers after `latency`, fails the first `fail_attempts` attempts
latency = "100ms"
fail_attempts = 0

[stages.plan]
concurrency = 3

[agents.solution-architect]
backend = "sonnet"
timeout_class = "complex_analysis"
fallback = "local"          # used when all attempts on the backend fail

# A stage of your own runs like the built-in ones: `stagegate run security-audit`.
[stages.security-audit]
agents = ["threat-modeler", "dependency-auditor"]
reviewer = "lead-reviewer-c"
synthesizer = "lead-synthesizer-c"
required = ["security_audit.md"]     # artifacts the synthesizer must write
optional = []
inputs = ["spec.md", "plan.md"]      # feature files that must exist (and be approved, if a gate made them)
question = "Security audit complete. Approve to proceed?"
concurrency = 2

[agents.threat-modeler]
role = "Threat Modeler"
task = "Model the threats to this feature and how to counter them"

[agents.dependency-auditor]
role = "Dependency Auditor"
task = "List third-party dependencies and their risks"
"#;

#[test]
fn the_product_example_loads() {
    let repository = Repository::with_config(PRODUCT_EXAMPLE);
    let loaded = repository.load().expect("the example loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.source, Some(repository.config_path()));
    let settings = &loaded.settings;

    assert_eq!(
        settings.backends["claude"],
        BackendSettings::Command {
            command: strings(&["claude", "-p"]),
            // The preset's variables stay unless the file sets the same names.
            env: [
                ("CLAUDE_CODE_MAX_RETRIES".to_owned(), "0".to_owned()),
                (
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_owned(),
                    "1".to_owned()
                ),
            ]
            .into(),
            secret_env: Vec::new(),
            // The example's own command prints text: the preset's JSON format does not linger.
            output_format: OutputFormat::Text,
            // The built-in preset's integration key stays: the spec-kit variables still apply.
            speckit_integration: Some("claude".to_owned()),
            model: None,
            // So does the preset's memory cap: the program is still Claude Code.
            memory_bytes: Some(1 << 30),
        }
    );
    assert_eq!(
        settings.backends["local"],
        BackendSettings::OpenAi {
            base_url: "http://127.0.0.1:8080/v1".to_owned(),
            model: "gemma-3-270m".to_owned(),
            api_key_env: Some("OPENAI_API_KEY".to_owned()),
            temperature: None,
            max_tokens: None,
            api: OpenAiApi::ChatCompletions,
            http: HttpOptions::default(),
        }
    );
    assert_eq!(
        settings.backends["sonnet"],
        BackendSettings::Anthropic {
            base_url: "https://api.anthropic.com".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            api_key_env: "ANTHROPIC_API_KEY".to_owned(),
            max_tokens: 4096,
            http: HttpOptions::default(),
        }
    );
    assert_eq!(settings.backends["dry"].kind(), "mock");

    let architect = &settings.agents["solution-architect"];
    assert_eq!(architect.backend, "sonnet");
    assert_eq!(architect.fallback.as_deref(), Some("local"));
    assert_eq!(architect.timeout_class, TimeoutClass::ComplexAnalysis);
    // Merged key by key: the built-in role and task stay.
    assert_eq!(architect.role, "Solution Architect");
    assert_eq!(settings.agents["requirements-analyst"].backend, "builtin");

    let audit = &settings.stages["security-audit"];
    assert_eq!(audit.name, "security-audit");
    assert_eq!(
        audit.agents,
        strings(&["threat-modeler", "dependency-auditor"])
    );
    assert_eq!(audit.reviewer, "lead-reviewer-c");
    assert_eq!(audit.synthesizer, "lead-synthesizer-c");
    assert_eq!(audit.qa, "main-agent");
    assert_eq!(audit.required, strings(&["security_audit.md"]));
    assert!(audit.optional.is_empty());
    assert_eq!(audit.inputs, strings(&["spec.md", "plan.md"]));
    assert_eq!(
        audit.question,
        "Security audit complete. Approve to proceed?"
    );
    assert_eq!(audit.concurrency, 2);
    assert_eq!(audit.summary_artifact, "security_audit.md");
    assert_eq!(settings.agents["threat-modeler"].role, "Threat Modeler");
    assert_eq!(
        settings.agents["dependency-auditor"].task,
        "List third-party dependencies and their risks"
    );
    // A user stage is not in the pipeline unless the user puts it there.
    assert_eq!(settings.pipeline, strings(&["plan", "prep", "analyze"]));

    assert_eq!(
        settings.origins.get("stages.plan.concurrency"),
        Some(&Origin::File {
            path: repository.config_path(),
            line: line_of(PRODUCT_EXAMPLE, "concurrency = 3\n\n[agents"),
        })
    );
    assert_eq!(
        settings.origins.get("timeouts.complex_analysis"),
        Some(&Origin::Default)
    );
}

#[test]
fn user_stages_get_their_defaults() {
    let repository = Repository::with_config(
        r#"
[stages.docs-check]
agents = ["docs-engineer"]
reviewer = "lead-reviewer-a"
synthesizer = "lead-synthesizer-a"
required = ["docs_check.md", "notes.md"]

[agents.only-role]
role = "Only Role"
"#,
    );
    let settings = repository.load().expect("loads").settings;
    let stage = &settings.stages["docs-check"];
    assert_eq!(stage.name, "docs-check");
    assert_eq!(stage.qa, "main-agent");
    assert_eq!(stage.question, "docs-check complete. Approve to proceed?");
    assert_eq!(stage.concurrency, 3);
    assert_eq!(stage.inputs, strings(&["spec.md"]));
    assert_eq!(stage.summary_artifact, "docs_check.md");
    assert_eq!(stage.alias, None);
    assert_eq!(settings.agents["only-role"].task, "Only Role");
    assert_eq!(settings.agents["only-role"].backend, "builtin");
}

// --- layering --------------------------------------------------------------------------------

#[test]
fn a_user_key_changes_only_that_key() {
    let repository = Repository::with_config("[stages.plan]\nconcurrency = 1\n");
    let settings = repository.load().expect("loads").settings;
    let plan = &settings.stages["plan"];
    assert_eq!(plan.concurrency, 1);
    assert_eq!(plan.name, "Stage A: Planning/Spec");
    assert_eq!(plan.agents.len(), 4);
    assert_eq!(settings.stages["prep"].concurrency, 2);
    assert_eq!(settings.defaults.concurrency, 3);
}

#[test]
fn layers_apply_in_order_defaults_file_environment_flags() {
    let repository = Repository::with_config(
        "[defaults]\nconcurrency = 2\nretries = 5\nbackoff = \"3s\"\n\n[timeouts]\ndefault = \"45s\"\n",
    );
    let file_only = repository.load().expect("loads").settings;
    assert_eq!(file_only.defaults.concurrency, 2);
    assert_eq!(file_only.defaults.retries, 5);
    assert_eq!(file_only.timeouts.default, Duration::from_secs(45));
    // Built-in stages keep their own concurrency unless told otherwise.
    assert_eq!(file_only.stages["plan"].concurrency, 3);
    assert_eq!(
        file_only.origins["defaults.retries"],
        Origin::File {
            path: repository.config_path(),
            line: 3,
        }
    );

    let mut options = repository.options();
    options.environment = [
        ("STAGEGATE_CONCURRENCY", "4"),
        ("STAGEGATE_RETRIES", "1"),
        ("STAGEGATE_BACKOFF", "250ms"),
        ("STAGEGATE_MIN_SUCCESS_RATIO", "0.5"),
        ("STAGEGATE_TIMEOUT", "1m"),
        ("STAGEGATE_STAGE_TIMEOUT", "10m"),
        ("STAGEGATE_BACKEND", "mock"),
        ("STAGEGATE_UNRELATED", "ignored"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let with_environment = load(&options).expect("loads").settings;
    assert_eq!(with_environment.defaults.concurrency, 4);
    assert!(
        with_environment
            .stages
            .values()
            .all(|stage| stage.concurrency == 4)
    );
    assert_eq!(with_environment.defaults.retries, 1);
    assert_eq!(
        with_environment.defaults.backoff,
        Duration::from_millis(250)
    );
    assert_eq!(with_environment.defaults.min_success_ratio, 0.5);
    assert_eq!(with_environment.timeouts.default, Duration::from_secs(60));
    assert_eq!(with_environment.timeouts.stage, Duration::from_secs(600));
    assert_eq!(with_environment.defaults.backend, "mock");
    assert!(
        with_environment
            .agents
            .values()
            .all(|agent| agent.backend == "mock")
    );
    assert_eq!(
        with_environment.origins["stages.prep.concurrency"],
        Origin::Environment("STAGEGATE_CONCURRENCY".to_owned())
    );

    options.concurrency = Some(1);
    let with_flag = load(&options).expect("loads").settings;
    assert_eq!(with_flag.defaults.concurrency, 1);
    assert!(
        with_flag
            .stages
            .values()
            .all(|stage| stage.concurrency == 1)
    );
    assert_eq!(
        with_flag.origins["defaults.concurrency"],
        Origin::Flag("--concurrency".to_owned())
    );
    assert_eq!(
        with_flag.origins["stages.plan.concurrency"],
        Origin::Flag("--concurrency".to_owned())
    );
    // The flag leaves what it does not name alone.
    assert_eq!(with_flag.defaults.retries, 1);
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let mut options = Repository::new().options();
    options.environment = BTreeMap::from([("STAGEGATE_RETRIES".to_owned(), String::new())]);
    assert_eq!(load(&options).expect("loads").settings.defaults.retries, 2);
}

#[test]
fn a_user_backend_of_another_kind_replaces_the_built_in_one() {
    let repository = Repository::with_config(
        "[backends.mock]\nkind = \"command\"\ncommand = [\"./fake-agent\"]\n",
    );
    let loaded = repository.load().expect("loads");
    // No warning about the built-in mock's `latency`: the table was replaced.
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.settings.backends["mock"].kind(), "command");
}

#[test]
fn presets_run_cli_agents_headless() {
    let backends = load_defaults().settings.backends;
    let preset = |name: &str| match &backends[name] {
        BackendSettings::Command {
            command,
            output_format,
            speckit_integration,
            memory_bytes,
            ..
        } => {
            assert_eq!(speckit_integration.as_deref(), Some(name));
            assert!(memory_bytes.is_some(), "{name} has its measured memory cap");
            (command.clone(), *output_format)
        }
        other => panic!("{name} is a {} backend", other.kind()),
    };
    assert_eq!(
        preset("claude"),
        (
            strings(&[
                "claude",
                "-p",
                "--no-session-persistence",
                "--output-format",
                "json"
            ]),
            OutputFormat::ClaudeJson,
        )
    );
    assert_eq!(
        preset("codex"),
        (
            strings(&[
                "codex",
                "exec",
                "--skip-git-repo-check",
                "--ephemeral",
                "--json",
                "-"
            ]),
            OutputFormat::CodexJsonl,
        )
    );
    assert_eq!(
        preset("gemini"),
        (
            strings(&["gemini", "--skip-trust", "--output-format", "json"]),
            OutputFormat::GeminiJson
        )
    );
    assert_eq!(preset("qwen").1, OutputFormat::QwenJson);
    assert_eq!(
        preset("opencode"),
        (
            strings(&["opencode", "run", "--agent", "plan", "--format", "json"]),
            OutputFormat::OpencodeJsonl
        )
    );
    assert_eq!(preset("copilot").1, OutputFormat::Text);
    assert_eq!(preset("cursor-agent").0[0], "agent");
    assert_eq!(preset("cursor-agent").1, OutputFormat::ClaudeJson);
}

#[test]
fn a_presets_env_is_merged_key_by_key_and_model_and_memory_are_read() {
    let repository = Repository::with_config(
        "[backends.claude]
env = { CLAUDE_CODE_MAX_TURNS = \"3\" }
model = \"opus\"
memory = \"2GiB\"\n",
    );
    let loaded = repository.load().expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let BackendSettings::Command {
        env,
        model,
        memory_bytes,
        ..
    } = &loaded.settings.backends["claude"]
    else {
        panic!("a command backend");
    };
    assert_eq!(
        env.get("CLAUDE_CODE_MAX_TURNS").map(String::as_str),
        Some("3")
    );
    assert_eq!(
        env.get("CLAUDE_CODE_MAX_RETRIES").map(String::as_str),
        Some("0")
    );
    assert_eq!(model.as_deref(), Some("opus"));
    assert_eq!(*memory_bytes, Some(2 << 30));
}

#[test]
fn a_user_command_backend_can_name_a_format_and_an_integration() {
    let repository = Repository::with_config(
        "[defaults]\nbackend = \"mine\"\n\n[backends.mine]\nkind = \"command\"\n\
         command = [\"/opt/claude/bin/claude\", \"-p\", \"--output-format\", \"json\"]\n\
         output_format = \"claude-json\"\nspeckit_integration = \"claude\"\n",
    );
    let loaded = repository.load().expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let BackendSettings::Command {
        output_format,
        speckit_integration,
        ..
    } = &loaded.settings.backends["mine"]
    else {
        panic!("a command backend");
    };
    assert_eq!(*output_format, OutputFormat::ClaudeJson);
    assert_eq!(speckit_integration.as_deref(), Some("claude"));
}

#[test]
fn overriding_only_a_presets_arguments_keeps_its_format() {
    // Not a new command: only `env` changes, so the preset's JSON format still describes it.
    let repository =
        Repository::with_config("[backends.claude]\nenv = { CLAUDE_CODE_MAX_TURNS = \"3\" }\n");
    let loaded = repository.load().expect("loads");
    let BackendSettings::Command { output_format, .. } = &loaded.settings.backends["claude"] else {
        panic!("a command backend");
    };
    assert_eq!(*output_format, OutputFormat::ClaudeJson);
}

#[test]
fn secret_env_names_variables_and_rejects_what_is_not_a_name() {
    let repository = Repository::with_config(
        "[backends.x]\nkind = \"command\"\ncommand = [\"x\"]\n\
         env = { TOKEN = \"t0ps3cr3t-value\" }\nsecret_env = [\"TOKEN\", \"GITHUB_TOKEN\", \"TOKEN\"]\n",
    );
    let loaded = repository.load().expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let BackendSettings::Command { secret_env, .. } = &loaded.settings.backends["x"] else {
        panic!("a command backend");
    };
    assert_eq!(secret_env, &strings(&["TOKEN", "GITHUB_TOKEN"]));

    let text = "[backends.x]\nkind = \"command\"\ncommand = [\"x\"]\nsecret_env = [\"A=B\"]\n";
    let repository = Repository::with_config(text);
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidValue,
        4,
        "\"A=B\" in backends.x.secret_env is not an environment variable name",
    );
}

#[test]
fn an_unknown_output_format_suggests_the_close_one() {
    let text =
        "[backends.x]\nkind = \"command\"\ncommand = [\"x\"]\noutput_format = \"claude_json\"\n";
    let repository = Repository::with_config(text);
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidValue,
        4,
        "unknown output format \"claude_json\" for backends.x.output_format",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("did you mean \"claude-json\"?"), "{help}");
}

#[test]
fn http_options_are_read_and_a_misspelt_choice_suggests_the_close_one() {
    let text = "[backends.x]\nkind = \"openai\"\nmodel = \"m\"\napi = \"responses\"\nidle_timeout = \"5m\"\non_truncation = \"accept\"\n";
    let loaded = Repository::with_config(text).load().expect("loads");
    let BackendSettings::OpenAi { api, http, .. } = &loaded.settings.backends["x"] else {
        panic!("an openai backend");
    };
    assert_eq!(*api, OpenAiApi::Responses);
    assert_eq!(
        *http,
        HttpOptions {
            idle_timeout: Duration::from_secs(300),
            on_truncation: crate::settings::OnTruncation::Accept,
        }
    );

    let text = "[backends.x]\nkind = \"anthropic\"\nmodel = \"m\"\non_truncation = \"continu\"\n";
    let repository = Repository::with_config(text);
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidValue,
        4,
        "unknown value \"continu\" for backends.x.on_truncation",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("did you mean \"continue\"?"), "{help}");

    let repository = Repository::with_config(
        "[backends.x]\nkind = \"anthropic\"\nmodel = \"m\"\napi = \"responses\"\n",
    );
    let loaded = repository.load().expect("loads");
    assert_eq!(
        loaded.warnings.len(),
        1,
        "api is openai's: {:?}",
        loaded.warnings
    );
}

#[test]
fn output_format_on_another_kind_is_warned_about() {
    let repository =
        Repository::with_config("[backends.dry]\nkind = \"mock\"\noutput_format = \"text\"\n");
    let loaded = repository.load().expect("loads");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].path, "backends.dry.output_format");
}

// --- errors ----------------------------------------------------------------------------------

/// Asserts that `error` is about `stagegate.toml` at `line`, of `kind`, and that its message
/// contains `text`.
fn assert_file_error(
    error: &ConfigError,
    repository: &Repository,
    kind: ConfigErrorKind,
    line: usize,
    text: &str,
) {
    let message = error.to_string();
    assert_eq!(error.kind(), kind, "{message}");
    assert_eq!(error.line(), Some(line), "{message}");
    assert_eq!(error.path(), Some(repository.config_path().as_path()));
    let prefix = format!("{}:{line}:", repository.config_path().display());
    assert!(message.starts_with(&prefix), "{message}");
    assert!(message.contains(text), "{message}");
    assert!(error.help().is_some(), "{message} has a help");
    assert!(error.source_code().is_some(), "{message} has source code");
    assert_eq!(error.labels().map(Iterator::count), Some(1), "{message}");
}

#[test]
fn malformed_toml_names_its_line() {
    let repository = Repository::with_config("[defaults]\nconcurrency = 3\nretries = = 2\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::Syntax,
        3,
        "invalid TOML",
    );
}

#[test]
fn a_wrong_type_names_its_line_and_key() {
    let repository =
        Repository::with_config("[defaults]\nbackend = \"builtin\"\nconcurrency = \"three\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::WrongType,
        3,
        "expected an integer for defaults.concurrency",
    );
}

#[test]
fn an_unknown_backend_names_its_line_and_column() {
    let text = "\n[agents.solution-architect]\n\n\n\n\n\n\n\n\n\n    backend = \"sonet\"\n";
    let repository = Repository::with_config(text);
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownBackend,
        12,
        "sonet",
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{}:12:15: unknown backend \"sonet\" for agents.solution-architect.backend",
            repository.config_path().display()
        )
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("\"builtin\""), "{help}");
    assert!(help.contains("\"mock\""), "{help}");
}

#[test]
fn an_unknown_backend_suggests_the_close_one() {
    let repository = Repository::with_config(
        "[backends.sonnet]\nkind = \"anthropic\"\nmodel = \"m\"\n\n[defaults]\nbackend = \"sonet\"\n",
    );
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownBackend,
        6,
        "defaults.backend",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.starts_with("did you mean \"sonnet\"?"), "{help}");
}

#[test]
fn an_unknown_fallback_is_an_error() {
    let repository = Repository::with_config("[agents.test-engineer]\nfallback = \"nowhere\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownBackend,
        2,
        "agents.test-engineer.fallback",
    );
}

#[test]
fn an_unknown_agent_points_at_the_reference_in_the_stage() {
    let repository = Repository::with_config(
        "[stages.audit]\nagents = [\n  \"threat-modeler\",\n  \"dependency-auditor\",\n]\nreviewer = \"lead-reviewer-c\"\nsynthesizer = \"lead-synthesizer-c\"\nrequired = [\"audit.md\"]\n\n[agents.threat-modeler]\nrole = \"Threat Modeler\"\n",
    );
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownAgent,
        4,
        "unknown agent \"dependency-auditor\" in stages.audit.agents",
    );
    match &error {
        ConfigError::File(file_error) => assert_eq!(file_error.column(), 3),
        other => panic!("{other}"),
    }
}

#[test]
fn an_unknown_kind_lists_the_valid_ones() {
    let repository =
        Repository::with_config("[backends.x]\nkind = \"comand\"\ncommand = [\"a\"]\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownBackendKind,
        2,
        "unknown kind \"comand\" for backends.x.kind",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("did you mean \"command\"?"), "{help}");
    assert!(
        help.contains("\"builtin\", \"command\", \"openai\", \"anthropic\" and \"mock\""),
        "{help}"
    );
}

#[test]
fn a_bad_duration_says_the_accepted_form() {
    let repository =
        Repository::with_config("[timeouts]\nreview = \"15 sec\"\nqa = \"ten seconds\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidDuration,
        3,
        "timeouts.qa",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("\"30s\", \"250ms\", \"2m\""), "{help}");
}

#[test]
fn a_bare_number_as_a_duration_says_what_to_write() {
    let repository = Repository::with_config("[timeouts]\ndefault = 30\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::WrongType,
        2,
        "a duration string such as \"30s\"",
    );
}

#[test]
fn a_ratio_out_of_range_is_an_error() {
    let repository = Repository::with_config("[defaults]\nmin_success_ratio = 1.5\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::OutOfRange,
        2,
        "defaults.min_success_ratio must be between 0.0 and 1.0",
    );
}

#[test]
fn zero_concurrency_is_an_error() {
    let repository = Repository::with_config("\n[stages.prep]\nconcurrency = 0\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::OutOfRange,
        3,
        "stages.prep.concurrency must be at least 1",
    );
}

#[test]
fn an_empty_command_is_an_error() {
    let repository =
        Repository::with_config("[backends.claude]\nkind = \"command\"\ncommand = []\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::Empty,
        3,
        "backends.claude.command is empty",
    );
}

#[test]
fn a_command_backend_needs_a_command() {
    // `claude` would not do: the built-in preset of that name has a command.
    let repository = Repository::with_config("\n[backends.my-agent]\nkind = \"command\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::MissingKey,
        2,
        "backends.my-agent has no `command`",
    );
}

#[test]
fn api_keys_do_not_belong_in_the_file() {
    let repository = Repository::with_config(
        "[backends.local]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"sk-abc123\"\n",
    );
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidValue,
        4,
        "must name an environment variable",
    );
}

#[test]
fn a_user_stage_needs_its_keys() {
    let repository = Repository::with_config(
        "[stages.audit]\nagents = [\"docs-engineer\"]\nsynthesizer = \"lead-synthesizer-c\"\nrequired = [\"audit.md\"]\n",
    );
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::MissingKey,
        1,
        "stages.audit has no `reviewer`",
    );
}

#[test]
fn a_user_agent_needs_a_role() {
    let repository = Repository::with_config("[agents.helper]\ntask = \"Help\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::MissingKey,
        1,
        "agents.helper has no `role`",
    );
}

#[test]
fn an_unknown_timeout_class_is_an_error() {
    let repository =
        Repository::with_config("[agents.docs-engineer]\ntimeout_class = \"complex\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownTimeoutClass,
        2,
        "complex",
    );
}

#[test]
fn artifacts_stay_inside_the_feature_directory() {
    let repository = Repository::with_config("[stages.plan]\noptional = [\"../escape.md\"]\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidValue,
        2,
        "../escape.md",
    );
}

#[test]
fn an_alias_must_not_clash() {
    let repository = Repository::with_config("[stages.prep]\nalias = \"a\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::Duplicate,
        2,
        "alias \"a\"",
    );
}

#[test]
fn the_pipeline_names_defined_stages() {
    let repository = Repository::with_config("pipeline = [\"a\", \"prep\", \"analyse\"]\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::UnknownStage,
        1,
        "unknown stage \"analyse\"",
    );
    let help = error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    assert!(help.contains("did you mean \"analyze\"?"), "{help}");

    let repository = Repository::with_config("pipeline = [\"a\", \"prep\"]\n");
    assert_eq!(
        repository.load().expect("loads").settings.pipeline,
        strings(&["plan", "prep"])
    );
}

#[test]
fn a_bad_size_is_an_error() {
    let repository = Repository::with_config("[defaults]\noutput_cap = \"1 parsec\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::InvalidSize,
        2,
        "defaults.output_cap",
    );
    let repository = Repository::with_config("[defaults]\noutput_cap = 4096\n");
    assert_eq!(
        repository
            .load()
            .expect("loads")
            .settings
            .defaults
            .output_cap_bytes,
        4096
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let mut options = Repository::new().options();
    options.environment = BTreeMap::from([("STAGEGATE_RETRIES".to_owned(), "two".to_owned())]);
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::WrongType);
    assert_eq!(error.line(), None);
    assert!(
        error
            .to_string()
            .starts_with("environment variable STAGEGATE_RETRIES: "),
        "{error}"
    );

    options.environment = BTreeMap::from([("STAGEGATE_TIMEOUT".to_owned(), "soon".to_owned())]);
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::InvalidDuration);
    assert!(error.to_string().contains("STAGEGATE_TIMEOUT"), "{error}");

    options.environment = BTreeMap::from([("STAGEGATE_BACKEND".to_owned(), "sonet".to_owned())]);
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::UnknownBackend);
    assert!(
        error
            .to_string()
            .starts_with("environment variable STAGEGATE_BACKEND: unknown backend"),
        "{error}"
    );

    options.environment =
        BTreeMap::from([("STAGEGATE_MIN_SUCCESS_RATIO".to_owned(), "2".to_owned())]);
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::OutOfRange);
}

#[test]
fn a_zero_concurrency_flag_is_an_error() {
    let mut options = Repository::new().options();
    options.concurrency = Some(0);
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::OutOfRange);
    assert!(error.to_string().starts_with("--concurrency: "), "{error}");
}

#[test]
fn a_missing_config_flag_file_is_an_error_but_a_missing_stagegate_toml_is_not() {
    let repository = Repository::new();
    let mut options = repository.options();
    assert!(load(&options).is_ok());
    options.config_file = Some(repository.root().join("other.toml"));
    let error = load(&options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::NotFound);
    assert_eq!(error.path(), options.config_file.as_deref());
}

#[test]
fn a_config_flag_file_is_read_instead_of_stagegate_toml() {
    let repository = Repository::with_config("[defaults]\nretries = 7\n");
    let other = repository.root().join("other.toml");
    std::fs::write(&other, "[defaults]\nretries = 9\n").expect("write");
    let mut options = repository.options();
    options.config_file = Some(other.clone());
    let loaded = load(&options).expect("loads");
    assert_eq!(loaded.settings.defaults.retries, 9);
    assert_eq!(loaded.source, Some(other));
}

#[test]
fn broken_defaults_are_errors_not_panics() {
    let options = Repository::new().options();
    let error = load_over("[defaults\n", &options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::Syntax);
    assert_eq!(error.path(), None);
    assert!(
        error
            .to_string()
            .starts_with("defaults.toml (built into stagegate):1:"),
        "{error}"
    );

    let error = load_over("", &options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::MissingKey);

    let without_main_agent = DEFAULTS_TOML.replace("[agents.main-agent]", "[agents.other-agent]");
    let error = load_over(&without_main_agent, &options).expect_err("fails");
    assert_eq!(error.kind(), ConfigErrorKind::UnknownAgent);
}

// --- warnings --------------------------------------------------------------------------------

#[test]
fn unknown_keys_are_warnings_with_paths_and_suggestions() {
    let repository = Repository::with_config(
        "[stages.plan]\nconcurency = 1\n\n[defaults]\nretires = 3\ncolour = \"red\"\n\n[stage.plan]\nx = 1\n",
    );
    let loaded = repository.load().expect("unknown keys are not errors");
    let warnings: Vec<(String, usize, Option<String>)> = loaded
        .warnings
        .iter()
        .map(|warning| {
            (
                warning.path.clone(),
                warning.line,
                warning.suggestion.clone(),
            )
        })
        .collect();
    assert_eq!(
        warnings,
        vec![
            (
                "stages.plan.concurency".to_owned(),
                2,
                Some("concurrency".to_owned())
            ),
            ("defaults.retires".to_owned(), 5, Some("retries".to_owned())),
            ("defaults.colour".to_owned(), 6, None),
            ("stage".to_owned(), 8, Some("stages".to_owned())),
        ]
    );

    let concurency = loaded
        .warnings
        .iter()
        .find(|warning| warning.path == "stages.plan.concurency")
        .expect("warned");
    assert_eq!(concurency.file, Some(repository.config_path()));
    assert_eq!(concurency.reason, WarningReason::UnknownKey);
    assert_eq!(
        concurency.to_string(),
        format!(
            "{}:2:1: unknown key stages.plan.concurency, ignored (did you mean `concurrency`?)",
            repository.config_path().display()
        )
    );
    // The misspelt key changed nothing.
    assert_eq!(loaded.settings.stages["plan"].concurrency, 3);
}

#[test]
fn keys_another_kind_uses_are_warnings() {
    let repository = Repository::with_config(
        "[backends.claude]\nkind = \"command\"\ncommand = [\"claude\", \"-p\"]\nmax_tokens = 5\n",
    );
    let loaded = repository.load().expect("loads");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert_eq!(warning.path, "backends.claude.max_tokens");
    assert_eq!(warning.line, 4);
    assert_eq!(
        warning.reason,
        WarningReason::UnusedByKind {
            kind: "command".to_owned()
        }
    );
}

#[test]
fn errors_render_with_their_snippet_label_and_help() {
    struct Render<'a>(&'a ConfigError);
    impl std::fmt::Display for Render<'_> {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            miette::NarratableReportHandler::new().render_report(formatter, self.0)
        }
    }
    let repository =
        Repository::with_config("[stages.plan]\nagents = [\"requirements-analyst\", \"nobody\"]\n");
    let error = repository.load_error();
    let rendered = Render(&error).to_string();
    assert!(
        rendered.contains("snippet line 2: agents = [\"requirements-analyst\", \"nobody\"]"),
        "{rendered}"
    );
    assert!(
        rendered.contains("label at line 2, columns 35 to 42: no agent of this id"),
        "{rendered}"
    );
    assert!(
        rendered.contains("diagnostic help: define [agents.nobody] with a role and a task"),
        "{rendered}"
    );
    assert!(
        rendered.contains("stagegate::config::unknown_agent"),
        "{rendered}"
    );
}

#[test]
fn a_table_where_a_value_belongs_is_a_wrong_type() {
    let repository = Repository::with_config("[stages.plan]\nagents = \"requirements-analyst\"\n");
    let error = repository.load_error();
    assert_file_error(
        &error,
        &repository,
        ConfigErrorKind::WrongType,
        2,
        "expected an array for stages.plan.agents",
    );
    let repository = Repository::with_config("stages = 3\n");
    let error = repository.load_error();
    assert_file_error(&error, &repository, ConfigErrorKind::WrongType, 1, "stages");
}

#[test]
fn per_agent_values_resolve_through_the_defaults() {
    let repository = Repository::with_config(
        "[agents.docs-engineer]\nretries = 0\nlarge_context = true\nbackend = \"mock\"\n",
    );
    let settings = repository.load().expect("loads").settings;
    let architect = settings.agent("solution-architect").expect("defined");
    assert_eq!(settings.attempt_timeout(architect), Duration::from_secs(60));
    assert_eq!(settings.retries_of(architect), 2);
    assert_eq!(settings.memory_limit_of(architect), 256_000_000);
    assert_eq!(
        settings.backend_of(architect),
        Some(&BackendSettings::Builtin)
    );
    let docs = settings.agent("docs-engineer").expect("defined");
    assert_eq!(settings.retries_of(docs), 0);
    assert_eq!(settings.memory_limit_of(docs), 512_000_000);
    assert_eq!(
        settings.backend_of(docs).map(BackendSettings::kind),
        Some("mock")
    );
    assert_eq!(
        settings
            .origin_of("agents.docs-engineer.backend")
            .map(ToString::to_string)
            .unwrap_or_default(),
        format!("{}:4", repository.config_path().display())
    );
    // An agent on the default backend has that default's origin, not a copy of its own.
    assert!(
        !settings
            .origins
            .contains_key("agents.solution-architect.backend")
    );
    assert_eq!(
        settings.origin_of("agents.solution-architect.backend"),
        settings.origins.get("defaults.backend")
    );
    assert_eq!(settings.origin_of("agents.no-such-agent.backend"), None);
    assert_eq!(settings.origins["defaults.retries"].to_string(), "default");
}

#[test]
fn prices_give_a_cost_per_backend() {
    let repo =
        Repository::with_config("[prices.mock]\ninput_per_mtok = 3.0\noutput_per_mtok = 15.0\n");
    let settings = repo.load().expect("loads").settings;
    let price = settings.prices.get("mock").expect("a price for mock");
    assert!((price.cost(1_000_000, 100_000) - 4.5).abs() < 1e-9);
    assert!(
        load_defaults().settings.prices.is_empty(),
        "no prices by default"
    );
}

#[test]
fn a_negative_price_is_refused_with_its_line() {
    let text = "[prices.mock]\ninput_per_mtok = -1.0\n";
    let error = Repository::with_config(text).load_error();
    assert_eq!(error.line(), Some(line_of(text, "input_per_mtok")));
    assert!(
        error.to_string().contains("prices.mock.input_per_mtok"),
        "{error}"
    );
}

// --- the user-level file -------------------------------------------------------------------

/// A repository plus a user-level file holding `user_text`.
fn with_user_config(repository_text: Option<&str>, user_text: &str) -> (Repository, LoadOptions) {
    let repository = match repository_text {
        Some(text) => Repository::with_config(text),
        None => Repository::new(),
    };
    let user_config = repository.root().join("xdg/stagegate/config.toml");
    std::fs::create_dir_all(user_config.parent().expect("parent")).expect("create xdg dir");
    std::fs::write(&user_config, user_text).expect("write config.toml");
    let options = LoadOptions {
        user_config: Some(user_config),
        ..repository.options()
    };
    (repository, options)
}

#[test]
fn the_user_level_file_sits_between_the_defaults_and_the_repository() {
    let (_repository, options) = with_user_config(
        Some("[defaults]\nretries = 4\n"),
        "[defaults]\nretries = 1\nconcurrency = 2\n",
    );
    let loaded = load(&options).expect("loads");
    // The repository wins where both say something; the user-level file where only it does.
    assert_eq!(loaded.settings.defaults.retries, 4);
    assert_eq!(loaded.settings.defaults.concurrency, 2);
    assert_eq!(loaded.user_config, options.user_config);
    let origin = &loaded.settings.origins["defaults.concurrency"];
    assert_eq!(
        origin,
        &Origin::File {
            path: options.user_config.clone().expect("path"),
            line: 3
        }
    );
}

#[test]
fn a_missing_user_level_file_is_no_error() {
    let repository = Repository::new();
    let options = LoadOptions {
        user_config: Some(repository.root().join("nowhere/stagegate/config.toml")),
        ..repository.options()
    };
    let loaded = load(&options).expect("loads");
    assert_eq!(loaded.user_config, None);
}

#[test]
fn an_error_in_the_user_level_file_names_that_file_and_line() {
    let (_repository, options) = with_user_config(None, "[defaults]\n\nconcurrency = \"three\"\n");
    let error = load(&options).expect_err("a wrong type");
    let text = error.to_string();
    let path = options.user_config.expect("path").display().to_string();
    assert!(text.contains(&path), "{text}");
    assert_eq!(error.line(), Some(3), "{text}");
}

#[test]
fn the_user_level_path_follows_the_xdg_rules() {
    let path = |xdg: Option<&str>, home: Option<&str>| {
        user_config_path(xdg.map(Into::into), home.map(Into::into))
    };
    assert_eq!(
        path(Some("/x/config"), Some("/home/a")),
        Some(PathBuf::from("/x/config/stagegate/config.toml"))
    );
    // A relative XDG_CONFIG_HOME is invalid by the specification: ignored.
    assert_eq!(
        path(Some("relative"), Some("/home/a")),
        Some(PathBuf::from("/home/a/.config/stagegate/config.toml"))
    );
    assert_eq!(
        path(Some(""), Some("/home/a")),
        Some(PathBuf::from("/home/a/.config/stagegate/config.toml"))
    );
    assert_eq!(path(None, None), None);
}

#[test]
fn without_cluster_temporal_there_is_no_cluster() {
    let loaded = Repository::with_config("[cluster]\nnamespace = \"team\"\n")
        .load()
        .expect("loads");
    assert_eq!(loaded.settings.cluster, None);
    assert_eq!(load_defaults().settings.cluster, None);
}

#[test]
fn cluster_comes_from_the_file_then_the_environment_then_the_flag() {
    let repository =
        Repository::with_config("[cluster]\ntemporal = \"file:7233\"\ntask_queue = \"gpu\"\n");
    let from_file = repository.load().expect("loads").settings.cluster;
    assert_eq!(
        from_file,
        Some(crate::ClusterSettings {
            temporal: "file:7233".into(),
            namespace: "default".into(),
            task_queue: "gpu".into(),
            repository: None,
        })
    );
    let mut options = repository.options();
    options.environment = [(
        crate::environment::TEMPORAL_ADDRESS.to_owned(),
        "environment:7233".to_owned(),
    )]
    .into();
    let from_environment = load(&options).expect("loads").settings.cluster;
    assert_eq!(
        from_environment.map(|cluster| cluster.temporal).as_deref(),
        Some("environment:7233")
    );
    options.temporal = Some("flag:7233".into());
    let from_flag = load(&options).expect("loads").settings;
    assert_eq!(
        from_flag.cluster.map(|cluster| cluster.temporal).as_deref(),
        Some("flag:7233")
    );
    assert!(matches!(
        from_flag.origins.get("cluster.temporal"),
        Some(crate::Origin::Flag(flag)) if flag == "--temporal"
    ));
}

#[test]
fn a_cluster_address_without_a_port_is_an_error_at_its_line() {
    let error = Repository::with_config("[cluster]\ntemporal = \"localhost\"\n").load_error();
    let text = format!("{error:?}");
    assert!(text.contains("not a Temporal address"), "{text}");
    assert!(text.contains("127.0.0.1:7233"), "{text}");
}
