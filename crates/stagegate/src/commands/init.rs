//! `stagegate init [--force] [--speckit-extension]`: writes a `stagegate.toml` that uses what
//! this machine has, and says what it chose and why.
//!
//! Detection is separate from the choice: [`detect`] looks at the repository, the `PATH`, the
//! environment (names only: a key's value is never read into anything that is printed or written)
//! and the loopback ports of local model servers; [`choose`] is a pure function of those facts,
//! in this order:
//!
//! 1. the CLI agent of the repository's spec-kit integration, when it is on the PATH;
//! 2. else the first CLI agent found on the PATH (in [`CLI_AGENTS`] order);
//! 3. else `anthropic` when `ANTHROPIC_API_KEY` is set, else `openai` when `OPENAI_API_KEY` is;
//! 4. else a local OpenAI-compatible server answering on 127.0.0.1;
//! 5. else `builtin`: offline, no model.
//!
//! A CLI coding agent takes minutes, not the seconds of the seed's timeouts, so when one is
//! chosen the file sets longer ones.
//!
//! `--speckit-extension` also installs stagegate as a spec-kit extension
//! ([`install_speckit_extension`]): its source under `.specify/stagegate-extension/` (command
//! files the user's agent runs, hooks after `/speckit.plan`, `/speckit.tasks` and
//! `/speckit.implement`), registered with `specify extension add --dev` when specify-cli is on
//! the PATH; an existing `stagegate.toml` is kept.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stagegate_settings::CONFIG_FILE_NAME;

use crate::error::{AppError, Exit};
use crate::gitignore::Outcome;
use crate::workspace::{STATE_DIR, find_repo_root};

/// The CLI coding agents stagegate has presets for, in the order a found one is preferred.
pub const CLI_AGENTS: [&str; 7] = [
    "claude",
    "codex",
    "gemini",
    "qwen",
    "opencode",
    "copilot",
    "cursor-agent",
];

/// What a CLI preset needs, as measured on the real CLI: (preset, the executables that run it,
/// the memory cap its preset sets, what was measured, whether it was run here at all).
/// `init` writes the cap with the measurement as its reason, and says when a preset is
/// unverified. Keep in step with the presets in `stagegate-settings/defaults.toml`.
const PRESET_LIMITS: [(&str, &[&str], &str, &str, bool); 7] = [
    (
        "claude",
        &["claude"],
        "1GiB",
        "Claude Code 2.1.197 (Bun) used 130 MiB at start",
        true,
    ),
    (
        "codex",
        &["codex"],
        "512MiB",
        "Codex 0.171 used 32 MiB at start",
        true,
    ),
    (
        "gemini",
        &["gemini"],
        "1GiB",
        "Gemini CLI 0.61 used 270 MiB at start",
        true,
    ),
    (
        "qwen",
        &["qwen"],
        "1GiB",
        "Qwen Code 0.15 used 370 MiB at start",
        true,
    ),
    (
        "opencode",
        &["opencode"],
        "2GiB",
        "opencode 1.18 (Bun) used 580 MiB at start",
        true,
    ),
    (
        "copilot",
        &["copilot"],
        "1GiB",
        "Copilot CLI 1.0.102 used 170 MiB at start",
        true,
    ),
    (
        "cursor-agent",
        &["agent", "cursor-agent"],
        "1GiB",
        "not measured: Cursor's agent is not on npm",
        false,
    ),
];

/// The executables that run `preset` (Cursor's is `agent`, with `cursor-agent` the legacy alias).
fn executables_of(preset: &str) -> &'static [&'static str] {
    PRESET_LIMITS
        .iter()
        .find(|(name, ..)| *name == preset)
        .map_or(&[], |(_, executables, ..)| executables)
}

/// The local OpenAI-compatible servers looked for: llama.cpp's server, Ollama, vLLM.
const LOCAL_PORTS: [(u16, &str); 3] = [(8080, "llama.cpp"), (11434, "Ollama"), (8000, "vLLM")];

/// How long a local server may take to accept the connection, and then to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const ANSWER_TIMEOUT: Duration = Duration::from_millis(700);

const ANTHROPIC_KEY: &str = "ANTHROPIC_API_KEY";
const OPENAI_KEY: &str = "OPENAI_API_KEY";

/// What `stagegate init` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detected {
    /// The spec-kit integration (`claude`, `copilot`, …) and the file that named it.
    pub speckit_integration: Option<(String, String)>,
    /// The CLI agents on the PATH, in [`CLI_AGENTS`] order.
    pub cli_agents: Vec<String>,
    pub anthropic_key: bool,
    pub openai_key: bool,
    /// The first local OpenAI-compatible server that answered: its base URL.
    pub local_server: Option<String>,
}

/// The backend `stagegate init` writes, with the reason it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A CLI coding agent's built-in preset.
    Cli {
        agent: String,
        reason: String,
    },
    Anthropic,
    OpenAi,
    Local {
        base_url: String,
    },
    Builtin,
}

impl Choice {
    /// The name `[defaults] backend` gets.
    pub fn backend(&self) -> &str {
        match self {
            Choice::Cli { agent, .. } => agent,
            Choice::Anthropic => "anthropic",
            Choice::OpenAi => "openai",
            Choice::Local { .. } => "local",
            Choice::Builtin => "builtin",
        }
    }

    fn reason(&self) -> String {
        match self {
            Choice::Cli { reason, .. } => reason.clone(),
            Choice::Anthropic => format!("no CLI agent is on the PATH and {ANTHROPIC_KEY} is set"),
            Choice::OpenAi => format!(
                "no CLI agent is on the PATH, {ANTHROPIC_KEY} is not set and {OPENAI_KEY} is"
            ),
            Choice::Local { base_url } => format!(
                "no CLI agent is on the PATH and no API key is set, but a local server answers at \
                 {base_url}"
            ),
            Choice::Builtin => "no CLI agent, API key or local server was found; the built-in \
                                analysts run offline"
                .to_owned(),
        }
    }
}

/// Chooses the backend from what was detected (see the module documentation for the order).
pub fn choose(detected: &Detected) -> Choice {
    if let Some((integration, source)) = &detected.speckit_integration
        && detected.cli_agents.contains(integration)
    {
        return Choice::Cli {
            agent: integration.clone(),
            reason: format!(
                "it is spec-kit's integration (from {source}) and `{integration}` is on the PATH"
            ),
        };
    }
    if let Some(agent) = detected.cli_agents.first() {
        let mut reason = format!("`{agent}` is the first CLI agent found on the PATH");
        if let Some((integration, _)) = &detected.speckit_integration {
            reason.push_str(&format!(
                " (spec-kit's integration `{integration}` is not one stagegate can run from the \
                 PATH)"
            ));
        }
        return Choice::Cli {
            agent: agent.clone(),
            reason,
        };
    }
    if detected.anthropic_key {
        return Choice::Anthropic;
    }
    if detected.openai_key {
        return Choice::OpenAi;
    }
    if let Some(base_url) = &detected.local_server {
        return Choice::Local {
            base_url: base_url.clone(),
        };
    }
    Choice::Builtin
}

/// The commented `stagegate.toml` for `choice`.
pub fn config_text(choice: &Choice, detected: &Detected) -> String {
    let mut text = String::from(
        "# stagegate's configuration, written by `stagegate init`. Every key is optional: what is\n\
         # not set here comes from the built-in defaults (`backend = \"builtin\"`, the seed's\n\
         # timeouts). Durations are written like \"30s\", \"10m\".\n\n",
    );
    text.push_str("# What `stagegate init` found:\n");
    for line in detection_lines(detected) {
        text.push_str(&format!("#   {line}\n"));
    }
    text.push_str(&format!(
        "# It chose \"{}\": {}.\n\n",
        choice.backend(),
        choice.reason()
    ));
    text.push_str("[defaults]\n");
    text.push_str(&format!(
        "backend = \"{}\"   # every agent, reviewer, synthesizer and QA\n",
        choice.backend()
    ));
    match choice {
        Choice::Cli { agent, .. } => {
            text.push_str(&format!(
                "\n# A CLI coding agent reads the repository and takes minutes, not the seconds the\n\
                 # seed's defaults allow a model call.\n\
                 [timeouts]\n\
                 default = \"10m\"            # per agent attempt\n\
                 complex_analysis = \"15m\"\n\
                 simple_check = \"5m\"\n\
                 review = \"10m\"\n\
                 synthesis = \"10m\"\n\
                 qa = \"5m\"\n\
                 stage = \"60m\"              # the whole stage, the gate's waiting excluded\n\n\
                 # `{agent}` is a built-in preset; to change how it runs, redefine it here:\n\
                 [backends.{agent}]\n\
                 # What the agent's process tree may really use (anonymous and shared memory, watched\n\
                 # by stagegate's supervisor): {measured}.\n\
                 memory = \"{memory}\"\n\
                 # model = \"...\"              # passed as --model, before the output flags\n\
                 # command = [...]            # then also set output_format (\"text\" unless told)\n\
                 # spec-kit's SPECKIT_INTEGRATION_{key}_EXECUTABLE and _EXTRA_ARGS apply to it.\n",
                key = agent.to_ascii_uppercase().replace('-', "_"),
                memory = preset_limit(agent).map_or("1GiB", |(memory, _, _)| memory),
                measured = preset_limit(agent).map_or("not measured", |(_, measured, _)| measured),
            ));
            if preset_limit(agent).is_some_and(|(_, _, verified)| !verified) {
                text.push_str(&format!(
                    "# UNVERIFIED: the `{agent}` preset was not run against the real CLI; check its\n\
                     # command and output_format against `{agent} --help`.\n"
                ));
            }
        }
        Choice::Anthropic => text.push_str(&format!(
            "\n[backends.anthropic]\n\
             kind = \"anthropic\"\n\
             model = \"claude-sonnet-5-5\"     # current when this stagegate was released; GET /v1/models lists yours\n\
             api_key_env = \"{ANTHROPIC_KEY}\"   # the variable's name, never the key\n"
        )),
        Choice::OpenAi => text.push_str(&format!(
            "\n[backends.openai]\n\
             kind = \"openai\"\n\
             base_url = \"https://api.openai.com/v1\"\n\
             model = \"gpt-5.4-mini\"          # current when this stagegate was released; GET /v1/models lists yours\n\
             api_key_env = \"{OPENAI_KEY}\"   # the variable's name, never the key\n"
        )),
        Choice::Local { base_url } => text.push_str(&format!(
            "\n[backends.local]\n\
             kind = \"openai\"             # OpenAI-compatible chat completions\n\
             base_url = \"{base_url}\"\n\
             model = \"local\"             # set this to the model the server serves ({base_url}/models lists them)\n"
        )),
        Choice::Builtin => text.push_str(
            "\n# To use a model instead, install a CLI agent (claude, codex, gemini, …) and run\n\
             # `stagegate init --force`, or add a backend here (see `[backends.NAME]` in the docs).\n",
        ),
    }
    text
}

/// The memory cap, the measurement behind it and whether the preset was verified.
fn preset_limit(preset: &str) -> Option<(&'static str, &'static str, bool)> {
    PRESET_LIMITS
        .iter()
        .find(|(name, ..)| *name == preset)
        .map(|(_, _, memory, measured, verified)| (*memory, *measured, *verified))
}

/// One line per detection, for stderr and the file's header. Keys are reported as set or not,
/// never with their values.
fn detection_lines(detected: &Detected) -> Vec<String> {
    let set = |present: bool| if present { "set" } else { "not set" };
    vec![
        match &detected.speckit_integration {
            Some((integration, source)) => {
                format!("spec-kit integration: {integration} ({source})")
            }
            None => "spec-kit integration: none (no .specify/integration.json or \
                     .specify/init-options.json naming one)"
                .to_owned(),
        },
        if detected.cli_agents.is_empty() {
            format!("CLI agents on the PATH: none of {}", CLI_AGENTS.join(", "))
        } else {
            format!("CLI agents on the PATH: {}", detected.cli_agents.join(", "))
        },
        format!(
            "API keys: {ANTHROPIC_KEY} {}, {OPENAI_KEY} {}",
            set(detected.anthropic_key),
            set(detected.openai_key)
        ),
        match &detected.local_server {
            Some(base_url) => format!("local server: {base_url} answers"),
            None => format!(
                "local server: none answering on 127.0.0.1 ports {}",
                LOCAL_PORTS
                    .iter()
                    .map(|(port, name)| format!("{port} ({name})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    ]
}

/// Looks at the repository, the PATH, the environment and the local ports. `variable` reads an
/// environment variable (only `PATH` and the two key names are asked for).
pub fn detect(repo_root: &Path, variable: impl Fn(&str) -> Option<OsString>) -> Detected {
    let path = variable("PATH").unwrap_or_default();
    let present = |name: &str| variable(name).is_some_and(|value| !value.is_empty());
    Detected {
        speckit_integration: speckit_integration(repo_root),
        cli_agents: CLI_AGENTS
            .iter()
            .filter(|agent| {
                executables_of(agent)
                    .iter()
                    .any(|executable| find_on_path(&path, executable).is_some())
            })
            .map(|agent| (*agent).to_owned())
            .collect(),
        anthropic_key: present(ANTHROPIC_KEY),
        openai_key: present(OPENAI_KEY),
        local_server: LOCAL_PORTS
            .iter()
            .find(|(port, _)| serves_models(*port))
            .map(|(port, _)| format!("http://127.0.0.1:{port}/v1")),
    }
}

/// The spec-kit integration the repository was set up with: `.specify/integration.json` (the
/// active one after `specify integration switch`), else `.specify/init-options.json`.
fn speckit_integration(repo_root: &Path) -> Option<(String, String)> {
    const FILES: [(&str, &[&str]); 2] = [
        (
            ".specify/integration.json",
            &["integration", "ai", "agent", "key"],
        ),
        (
            ".specify/init-options.json",
            &["ai", "integration", "agent"],
        ),
    ];
    FILES.iter().find_map(|(file, keys)| {
        let text = crate::input_file::read_context(repo_root, std::path::Path::new(file))?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        keys.iter().find_map(|key| {
            let value = json.get(key)?;
            let name = value
                .as_str()
                .or_else(|| value.as_array()?.first()?.as_str())
                .or_else(|| value.get("key")?.as_str())?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), (*file).to_owned()))
        })
    })
}

/// The executable file `name` in one of `path`'s directories, as a shell would find it.
pub fn find_on_path(path: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Whether an OpenAI-compatible server on 127.0.0.1:`port` answers `GET /v1/models` with 200.
/// A plain HTTP/1.0 request over a socket: no HTTP client is needed for one status line.
pub fn serves_models(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
    let request = format!("GET /v1/models HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0_u8; 32];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(count) => read += count,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    let mut words = status_line.split_whitespace();
    matches!(
        (words.next(), words.next()),
        (Some(version), Some("200")) if version.starts_with("HTTP/")
    )
}

/// `stagegate init`.
pub fn init(force: bool, speckit_extension: bool) -> Result<Exit, AppError> {
    let cwd = std::env::current_dir()?;
    let repo_root = find_repo_root(&cwd);
    let config_path = repo_root.join(CONFIG_FILE_NAME);
    // Adding the spec-kit extension to a configured project keeps its configuration.
    if speckit_extension && config_path.exists() {
        eprintln!("kept {} (it exists)", config_path.display());
        install_and_register(&repo_root, force)?;
        return Ok(Exit::Done);
    }
    if config_path.exists() && !force {
        return Err(AppError::usage(format!(
            "{} already exists; nothing was written\nhint: pass --force to replace it",
            config_path.display()
        )));
    }
    let detected = detect(&repo_root, |name| std::env::var_os(name));
    let choice = choose(&detected);

    eprintln!("stagegate init: found");
    for line in detection_lines(&detected) {
        eprintln!("  {line}");
    }
    eprintln!(
        "chose backend \"{}\": {}",
        choice.backend(),
        choice.reason()
    );
    if let Choice::Cli { agent, .. } = &choice {
        eprintln!(
            "timeouts are longer than the built-in ones (10m per agent, 60m per stage): a CLI \
             coding agent takes minutes"
        );
        if let Some((memory, measured, verified)) = preset_limit(agent) {
            eprintln!("memory cap {memory} for `{agent}` ({measured})");
            if !verified {
                eprintln!(
                    "warning: the `{agent}` preset is unverified: it was not run against the real \
                     CLI; check its command in stagegate.toml"
                );
            }
        }
    }
    std::fs::write(&config_path, config_text(&choice, &detected))?;
    eprintln!("wrote {}", config_path.display());
    match crate::gitignore::ignore_state_dir(&repo_root)? {
        Outcome::Created => eprintln!("wrote .gitignore (ignoring {STATE_DIR}/)"),
        Outcome::Appended => eprintln!("added {STATE_DIR}/ to .gitignore"),
        Outcome::AlreadyIgnored => {}
        Outcome::NotRegular => {
            eprintln!("warning: .gitignore is not a regular file; add {STATE_DIR}/ to it yourself")
        }
    }

    if speckit_extension {
        install_and_register(&repo_root, force)?;
    }
    Ok(Exit::Done)
}

/// What installing the spec-kit extension did.
#[derive(Debug, Default)]
pub struct ExtensionReport {
    pub written: Vec<PathBuf>,
    /// Files left as they were, with why.
    pub kept: Vec<(PathBuf, String)>,
}

/// The stages the extension hands over: (stage, spec-kit event, what it is for). Each runs
/// after the spec-kit command whose output it reads, so that nothing spec-kit does next edits
/// an approved artifact: plan after `/speckit.plan` (it builds on that plan.md), prep after
/// `/speckit.tasks` (before implementing), analyze after `/speckit.implement` (it reviews the
/// finished implementation).
const EXTENSION_STAGES: [(&str, &str, &str); 3] = [
    (
        "plan",
        "after_plan",
        "Stage A (planning): parallel planning agents, review, synthesis of plan.md, QA and a gate",
    ),
    (
        "prep",
        "after_tasks",
        "Stage B (implementation prep): the implementation plan, reviewed and gated before coding",
    ),
    (
        "analyze",
        "after_implement",
        "Stage C (quality review): the quality report, reviewed and gated",
    ),
];

/// Where the extension's source is written: not `.specify/extensions/stagegate/`, which is
/// where `specify extension add --dev` installs it (specify-cli refuses a source that is its
/// own destination).
pub const EXTENSION_SOURCE: &str = ".specify/stagegate-extension";

/// The command that registers the extension with spec-kit (and the user's agent).
fn register_command() -> String {
    format!("specify extension add --dev {EXTENSION_SOURCE}")
}

/// Writes the extension's source, then registers it with `specify` when it is on the PATH;
/// otherwise says how. Hooks are only ever written by specify-cli, so none points at a command
/// the agent does not have yet.
fn install_and_register(repo_root: &Path, force: bool) -> Result<(), AppError> {
    let report = install_speckit_extension(repo_root, force)?;
    for path in &report.written {
        eprintln!("wrote {}", path.display());
    }
    for (path, why) in &report.kept {
        eprintln!("kept {} ({why})", path.display());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(specify) = find_on_path(&path, "specify") else {
        eprintln!(
            "hint: specify-cli is not on the PATH; to register the commands and hooks, run `{}`",
            register_command()
        );
        return Ok(());
    };
    let output = std::process::Command::new(specify)
        .args(["extension", "add", "--dev", EXTENSION_SOURCE])
        .current_dir(repo_root)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()?;
    if output.status.success() {
        eprintln!(
            "registered the extension with spec-kit (`{}`): in your agent, run /speckit-stagegate-plan (skills: claude, codex, cursor, copilot) or /speckit.stagegate.plan",
            register_command()
        );
    } else {
        let said = crate::terminal_text::neutralise_bytes(&output.stderr);
        let said = said.trim();
        eprintln!(
            "warning: `{}` failed ({}): {said}\nhint: run it yourself once the problem is fixed",
            register_command(),
            output.status
        );
    }
    Ok(())
}

/// Writes the extension's source under [`EXTENSION_SOURCE`]: its manifest (with its hooks)
/// and one command file per stage. Existing files are kept unless `force`.
pub fn install_speckit_extension(
    repo_root: &Path,
    force: bool,
) -> Result<ExtensionReport, AppError> {
    let mut report = ExtensionReport::default();
    let extension_dir = repo_root.join(EXTENSION_SOURCE);
    std::fs::create_dir_all(extension_dir.join("commands"))?;
    let mut files = vec![(extension_dir.join("extension.yml"), extension_manifest())];
    for (stage, event, purpose) in EXTENSION_STAGES {
        files.push((
            extension_dir.join(format!("commands/speckit.stagegate.{stage}.md")),
            command_file(stage, event, purpose),
        ));
    }
    for (path, content) in files {
        if path.exists() && !force {
            report
                .kept
                .push((path, "it exists; pass --force to replace it".to_owned()));
            continue;
        }
        std::fs::write(&path, content)?;
        report.written.push(path);
    }
    Ok(report)
}

fn extension_manifest() -> String {
    let mut text = String::from(
        "schema_version: \"1.0\"\n\
         \n\
         extension:\n\
         \x20 id: stagegate\n\
         \x20 name: stagegate\n\
         \x20 version: 0.1.0\n\
         \x20 description: \"Runs planning, implementation prep and quality review as gated stages of parallel role agents\"\n\
         \x20 author: stagegate\n\
         \x20 repository: https://github.com/stagegate/stagegate\n\
         \x20 license: MIT\n\
         \n\
         requires:\n\
         \x20 speckit_version: \">=0.1.0\"\n\
         \x20 tools:\n\
         \x20   - name: stagegate\n\
         \x20     required: true\n\
         \n\
         provides:\n\
         \x20 commands:\n",
    );
    for (stage, _, purpose) in EXTENSION_STAGES {
        text.push_str(&format!(
            "    - name: speckit.stagegate.{stage}\n      file: commands/speckit.stagegate.{stage}.md\n      description: \"{purpose}\"\n"
        ));
    }
    text.push_str("\nhooks:\n");
    text.push_str(&hook_entries("  "));
    text
}

/// A command file for the user's agent: start the stage in the background, poll it until it
/// stops at its gate, report, and stop there.
fn command_file(stage: &str, event: &str, purpose: &str) -> String {
    format!(
        "---\n\
         description: \"Run stagegate's {stage} stage: {purpose}\"\n\
         ---\n\
         \n\
         # stagegate: {stage}\n\
         \n\
         This command runs ({event}) stagegate's `{stage}` stage instead of doing that work \
         yourself. stagegate runs several role agents in parallel, reconciles and synthesizes their \
         outputs, checks them, and stops at a gate where a person approves, rejects or modifies \
         the result. Nothing is written into the feature directory until it is approved.\n\
         \n\
         ## User Input\n\
         \n\
         ```text\n\
         $ARGUMENTS\n\
         ```\n\
         \n\
         ## Steps\n\
         \n\
         1. A stage can run for an hour, longer than your shell tool waits, so start it in the \
         background from the repository root:\n\
         \n\
         \x20  ```bash\n\
         \x20  nohup stagegate run {stage} --no-input > .stagegate/{stage}.out 2>&1 &\n\
         \x20  ```\n\
         \n\
         2. Poll it, about once a minute, with short commands:\n\
         \n\
         \x20  ```bash\n\
         \x20  stagegate status --json\n\
         \x20  ```\n\
         \n\
         \x20  The newest run's `state` says where it is: `running` (poll again), \
         `awaiting_decision` (its `pending_gate` names the question and the files approval would \
         create or replace), `done`, `rejected` or `failed` (the last lines of \
         `.stagegate/{stage}.out` say why). Do not write the stage's artifacts yourself \
         meanwhile.\n\
         \n\
         3. At the gate, report the run id, the question and the staged artifacts (`stagegate \
         status RUN`), and tell the user how to decide: `stagegate approve RUN` (publishes the \
         artifacts; replaced files are kept and `stagegate restore RUN` brings them back), \
         `stagegate reject RUN --reason \"…\"`, or `stagegate modify RUN --feedback \"…\"`. Do not \
         decide for the user.\n\
         \n\
         4. Then STOP. Do not continue with any other step or spec-kit command in this turn, and \
         never edit an approved artifact (plan.md, tasks.md, implementation_plan.md, \
         quality_report.md …): a change voids its approval, and the next stage refuses to start. \
         If something must change, ask the user to run `stagegate modify` at the gate or to run \
         the stage again.\n"
    )
}

/// The manifest's hook entries, one per stage, indented by `indent` (the event keys);
/// specify-cli copies them into `.specify/extensions.yml` when it registers the extension.
fn hook_entries(indent: &str) -> String {
    let mut text = String::new();
    for (stage, event, _) in EXTENSION_STAGES {
        text.push_str(&format!("{indent}{event}:\n"));
        text.push_str(&hook_item(indent, stage));
    }
    text
}

fn hook_item(indent: &str, stage: &str) -> String {
    let mut text = String::new();
    let item = format!("{indent}  - ");
    let field = format!("{indent}    ");
    text.push_str(&format!("{item}command: speckit.stagegate.{stage}\n"));
    text.push_str(&format!("{field}optional: false\n"));
    text.push_str(&format!(
        "{field}description: \"Run stagegate's {stage} stage and stop at its gate\"\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use stagegate_settings::{BackendSettings, LoadOptions, load};
    use tempfile::TempDir;

    use super::*;

    fn detected() -> Detected {
        Detected::default()
    }

    fn agents(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn spec_kits_integration_wins_when_its_cli_is_on_the_path() {
        let facts = Detected {
            speckit_integration: Some((
                "gemini".to_owned(),
                ".specify/integration.json".to_owned(),
            )),
            cli_agents: agents(&["claude", "gemini"]),
            anthropic_key: true,
            ..detected()
        };
        let choice = choose(&facts);
        assert_eq!(choice.backend(), "gemini");
        assert!(
            choice
                .reason()
                .contains("spec-kit's integration (from .specify/integration.json)")
        );
    }

    #[test]
    fn otherwise_the_first_cli_found_is_chosen() {
        let facts = Detected {
            speckit_integration: Some((
                "windsurf".to_owned(),
                ".specify/init-options.json".to_owned(),
            )),
            cli_agents: agents(&["codex", "opencode"]),
            ..detected()
        };
        let choice = choose(&facts);
        assert_eq!(choice.backend(), "codex");
        assert!(
            choice
                .reason()
                .contains("`windsurf` is not one stagegate can run"),
            "{}",
            choice.reason()
        );
    }

    #[test]
    fn then_api_keys_then_a_local_server_then_builtin() {
        let local = Some("http://127.0.0.1:11434/v1".to_owned());
        let both = Detected {
            anthropic_key: true,
            openai_key: true,
            local_server: local.clone(),
            ..detected()
        };
        assert_eq!(choose(&both), Choice::Anthropic);
        let openai = Detected {
            openai_key: true,
            local_server: local.clone(),
            ..detected()
        };
        assert_eq!(choose(&openai), Choice::OpenAi);
        let server = Detected {
            local_server: local,
            ..detected()
        };
        assert_eq!(
            choose(&server),
            Choice::Local {
                base_url: "http://127.0.0.1:11434/v1".to_owned()
            }
        );
        assert_eq!(choose(&detected()), Choice::Builtin);
    }

    fn load_written(text: &str) -> stagegate_settings::Loaded {
        let dir = TempDir::new().expect("tempdir");
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), text).expect("write");
        let options = LoadOptions {
            repo_root: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let loaded = load(&options).unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert!(loaded.warnings.is_empty(), "{:?}\n{text}", loaded.warnings);
        loaded
    }

    #[test]
    fn every_written_file_loads() {
        let facts = Detected {
            cli_agents: agents(&["claude"]),
            ..detected()
        };
        let choices = [
            Choice::Cli {
                agent: "claude".to_owned(),
                reason: "test".to_owned(),
            },
            Choice::Cli {
                agent: "cursor-agent".to_owned(),
                reason: "test".to_owned(),
            },
            Choice::Anthropic,
            Choice::OpenAi,
            Choice::Local {
                base_url: "http://127.0.0.1:8080/v1".to_owned(),
            },
            Choice::Builtin,
        ];
        for choice in choices {
            let loaded = load_written(&config_text(&choice, &facts));
            let settings = &loaded.settings;
            assert_eq!(settings.defaults.backend, choice.backend());
            let long = matches!(choice, Choice::Cli { .. });
            assert_eq!(
                settings.timeouts.default,
                if long {
                    Duration::from_secs(600)
                } else {
                    Duration::from_secs(30)
                },
                "{choice:?}"
            );
            if long {
                assert_eq!(settings.timeouts.complex_analysis, Duration::from_secs(900));
                assert_eq!(settings.timeouts.simple_check, Duration::from_secs(300));
                assert_eq!(settings.timeouts.review, Duration::from_secs(600));
                assert_eq!(settings.timeouts.synthesis, Duration::from_secs(600));
                assert_eq!(settings.timeouts.qa, Duration::from_secs(300));
                assert_eq!(settings.timeouts.stage, Duration::from_secs(3600));
            }
            if let Choice::Cli { agent, .. } = &choice {
                let text = config_text(&choice, &facts);
                assert!(
                    text.contains("used") || text.contains("not measured"),
                    "{text}"
                );
                assert!(
                    matches!(
                        &settings.backends[agent.as_str()],
                        BackendSettings::Command { memory_bytes: Some(bytes), .. } if *bytes >= 1 << 30
                    ),
                    "{agent}: the preset's measured cap is written"
                );
                assert_eq!(
                    text.contains("UNVERIFIED"),
                    agent == "cursor-agent",
                    "only Cursor's preset was not run here: {text}"
                );
            }
            if let Choice::Local { .. } = choice {
                assert!(matches!(
                    &settings.backends["local"],
                    BackendSettings::OpenAi { model, .. } if model == "local"
                ));
            }
        }
    }

    #[test]
    fn the_file_names_keys_but_never_their_values() {
        let facts = Detected {
            anthropic_key: true,
            ..detected()
        };
        let text = config_text(&Choice::Anthropic, &facts);
        assert!(
            text.contains("ANTHROPIC_API_KEY set, OPENAI_API_KEY not set"),
            "{text}"
        );
        assert!(text.contains("api_key_env = \"ANTHROPIC_API_KEY\""));
    }

    #[test]
    fn the_integration_is_read_from_spec_kits_files() {
        let dir = TempDir::new().expect("tempdir");
        assert_eq!(speckit_integration(dir.path()), None);
        std::fs::create_dir_all(dir.path().join(".specify")).expect("mkdir");
        std::fs::write(
            dir.path().join(".specify/init-options.json"),
            r#"{"ai": "codex", "script": "sh", "here": true}"#,
        )
        .expect("write");
        assert_eq!(
            speckit_integration(dir.path()),
            Some(("codex".to_owned(), ".specify/init-options.json".to_owned()))
        );
        std::fs::write(
            dir.path().join(".specify/integration.json"),
            r#"{"integration": "claude", "version": "0.7.0"}"#,
        )
        .expect("write");
        assert_eq!(
            speckit_integration(dir.path()),
            Some(("claude".to_owned(), ".specify/integration.json".to_owned()))
        );
    }

    #[test]
    fn agents_are_found_on_the_path_only_when_executable() {
        let dir = TempDir::new().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        for (name, mode) in [("claude", 0o755), ("codex", 0o644)] {
            let path = bin.join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        std::fs::create_dir_all(bin.join("gemini")).expect("a directory is not a program");
        let path = std::env::join_paths([dir.path().join("missing"), bin.clone()]).expect("join");
        let found = detect(dir.path(), |name| (name == "PATH").then(|| path.clone()));
        assert_eq!(found.cli_agents, agents(&["claude"]));
        assert!(!found.anthropic_key && !found.openai_key);
    }

    #[test]
    fn a_local_server_is_one_that_answers_200() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.1 200 OK\r\n\r\n{}",
                "HTTP/1.0 404 Not Found\r\n\r\n",
            ] {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut request = [0_u8; 512];
                let read = stream.read(&mut request).expect("read");
                assert!(
                    String::from_utf8_lossy(&request[..read])
                        .starts_with("GET /v1/models HTTP/1.0\r\n")
                );
                stream.write_all(answer.as_bytes()).expect("write");
            }
        });
        assert!(serves_models(port));
        assert!(!serves_models(port));
        server.join().expect("server");
        // Nobody listens any more.
        assert!(!serves_models(port));
    }

    #[test]
    fn the_extension_is_written_outside_its_install_destination_and_not_clobbered() {
        let dir = TempDir::new().expect("tempdir");
        let report = install_speckit_extension(dir.path(), false).expect("install");
        assert_eq!(report.written.len(), 4, "{report:?}");
        assert!(!dir.path().join(".specify/extensions").exists());
        assert!(!dir.path().join(".specify/extensions.yml").exists());
        let root = dir.path().join(EXTENSION_SOURCE);
        for stage in ["plan", "prep", "analyze"] {
            let text = std::fs::read_to_string(
                root.join(format!("commands/speckit.stagegate.{stage}.md")),
            )
            .expect("a command file");
            assert!(
                text.starts_with("---\ndescription: \"Run stagegate's"),
                "{text}"
            );
            assert!(
                text.contains(&format!("stagegate run {stage} --no-input >")),
                "{text}"
            );
            assert!(text.contains("stagegate status --json"), "{text}");
            assert!(text.contains("Then STOP") && text.contains("never edit an approved artifact"));
        }
        let manifest = std::fs::read_to_string(root.join("extension.yml")).expect("manifest");
        assert!(manifest.contains("  id: stagegate\n"), "{manifest}");
        assert!(
            manifest.contains("hooks:\n  after_plan:\n    - command: speckit.stagegate.plan\n"),
            "{manifest}"
        );
        assert!(
            manifest.contains("  after_tasks:\n    - command: speckit.stagegate.prep\n"),
            "{manifest}"
        );
        assert!(
            manifest.contains("  after_implement:\n    - command: speckit.stagegate.analyze\n"),
            "{manifest}"
        );
        assert!(!manifest.contains("before_"), "{manifest}");

        // A second install keeps everything; --force replaces it.
        std::fs::write(root.join("commands/speckit.stagegate.plan.md"), "mine").expect("write");
        let again = install_speckit_extension(dir.path(), false).expect("install");
        assert!(again.written.is_empty(), "{again:?}");
        assert_eq!(again.kept.len(), 4);
        assert_eq!(
            std::fs::read_to_string(root.join("commands/speckit.stagegate.plan.md")).expect("read"),
            "mine"
        );
        let forced = install_speckit_extension(dir.path(), true).expect("install");
        assert_eq!(forced.written.len(), 4, "{forced:?}");
    }
}
