//! End-to-end tests of the `stagegate` command: the real binary in a temporary git repository
//! with a spec-kit feature and a scripted fake agent (`tests/fixtures/fake-agent.sh`) as every
//! agent's `command` backend. See `cli/harness.rs`.

#[path = "cli/agent_failures.rs"]
mod agent_failures;
#[path = "cli/agent_memory.rs"]
mod agent_memory;
#[path = "cli/builtin.rs"]
mod builtin;
#[path = "cli/completions.rs"]
mod completions;
#[path = "cli/configuration.rs"]
mod configuration;
#[path = "cli/context.rs"]
mod context;
#[path = "cli/crashes.rs"]
mod crashes;
#[path = "cli/decision_races.rs"]
mod decision_races;
#[path = "cli/durability.rs"]
mod durability;
#[path = "cli/editor.rs"]
mod editor;
#[path = "cli/event_schema.rs"]
mod event_schema;
#[path = "cli/existing_work.rs"]
mod existing_work;
#[path = "cli/gate.rs"]
mod gate;
#[path = "cli/harness.rs"]
mod harness;
#[path = "cli/http_backends.rs"]
mod http_backends;
#[path = "cli/http_honest_answers.rs"]
mod http_honest_answers;
#[path = "cli/init.rs"]
mod init;
#[path = "cli/json_schema.rs"]
mod json_schema;
#[path = "cli/locks.rs"]
mod locks;
#[path = "cli/logs.rs"]
mod logs;
#[path = "cli/loopback_server.rs"]
mod loopback_server;
#[path = "cli/orphans.rs"]
mod orphans;
#[path = "cli/output_style.rs"]
mod output_style;
#[path = "cli/presets_real_clis.rs"]
mod presets_real_clis;
#[path = "cli/real_model.rs"]
mod real_model;
#[path = "cli/review_browser.rs"]
mod review_browser;
#[path = "cli/review_comments.rs"]
mod review_comments;
#[path = "cli/run_view_snapshots.rs"]
mod run_view_snapshots;
#[path = "cli/scheduling.rs"]
mod scheduling;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/speckit_projects.rs"]
mod speckit_projects;
#[path = "cli/stage_inputs.rs"]
mod stage_inputs;
#[path = "cli/state_directory.rs"]
mod state_directory;
#[path = "cli/terminal_safety.rs"]
mod terminal_safety;
#[path = "cli/user_configuration.rs"]
mod user_configuration;
