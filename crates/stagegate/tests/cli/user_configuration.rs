//! The user-level configuration file, `$XDG_CONFIG_HOME/stagegate/config.toml`: read beneath
//! the repository's `stagegate.toml`, which wins where both set a key.

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_USAGE, TestRepo};

fn write_user_config(repo: &TestRepo, text: &str) -> std::path::PathBuf {
    let path = repo.config_home.join("stagegate/config.toml");
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the config dir");
    std::fs::write(&path, text).expect("write config.toml");
    path
}

#[test]
fn the_user_level_file_applies_where_the_repository_is_silent() {
    let repo = TestRepo::with_approved_spec();
    // The repository's stagegate.toml sets `backend = "fake"`: that wins over this backend,
    // which does not exist (it would be an error if it were used).
    let path = write_user_config(
        &repo,
        "[defaults]\nbackend = \"no-such-backend\"\n\n[stages.plan]\nconcurrency = 1\n",
    );
    let run = repo
        .run(&["run", "plan", "--no-input", "-v"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("4 agents, 1 at once");
    let expected = format!("settings: built-in defaults < {} < ", path.display());
    assert!(run.stderr.contains(&expected), "{run:?}");
}

#[test]
fn a_mistake_in_the_user_level_file_names_it() {
    let repo = TestRepo::with_approved_spec();
    let path = write_user_config(&repo, "[defaults]\nconcurrency = \"three\"\n");
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_USAGE)
        .stderr_has(&path.display().to_string())
        .stderr_has("config.toml:2");
}
