//! One command's view of the world, resolved once: repository root, settings, store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stagegate_settings::{LoadOptions, Settings};
use stagegate_store::Store;

use crate::cli::CommonArgs;
use crate::error::AppError;
use crate::workspace::{Feature, STATE_DIR, find_feature, find_repo_root};

/// The stores this process opened, closed by [`close_stores`] before it exits.
static OPEN_STORES: std::sync::Mutex<Vec<Store>> = std::sync::Mutex::new(Vec::new());

fn remember_for_exit(store: &Store) {
    if let Ok(mut stores) = OPEN_STORES.lock() {
        stores.push(store.clone());
    }
}

/// Closes the stores this command opened whose write-ahead log is big, waiting at most
/// `patience`. The last connection to close copies SQLite's log into `state.db` and removes
/// it; a process that exits with its connections open leaves the log behind (committed, as
/// after a crash), and the next command first has to read and checksum all of it. That costs
/// less than the copy and its fsyncs for a small log, so a small log is left for later.
pub async fn close_stores(patience: std::time::Duration) {
    let stores = OPEN_STORES
        .lock()
        .map(|mut stores| std::mem::take(&mut *stores))
        .unwrap_or_default();
    for store in stores.into_iter().filter(Store::log_worth_folding) {
        // A connection still held (a task that never ended) must not hold up the exit.
        let _ = tokio::time::timeout(patience, store.close()).await;
    }
}

pub struct Session {
    pub cwd: PathBuf,
    pub repo_root: PathBuf,
    /// Shared, so that work on them may go on beside the command (a run's settings summary).
    pub settings: Arc<Settings>,
    pub store: Store,
    common: CommonArgs,
}

impl Session {
    /// Loads the configuration (printing its warnings) and opens the store.
    pub async fn open(common: &CommonArgs, concurrency: Option<usize>) -> Result<Self, AppError> {
        let (cwd, repo_root, settings) = load_settings(common, concurrency, KeepSettings::Yes)?;
        let store = Store::open(&repo_root.join(STATE_DIR)).await?;
        remember_for_exit(&store);
        // Whatever a killed stagegate left half done is finished before anything looks.
        crate::effects::finish_interrupted(&store, |key| Feature {
            dir: repo_root.join(key),
            key: key.to_owned(),
        })
        .await?;
        Ok(Session {
            cwd,
            repo_root,
            settings: Arc::new(settings),
            store,
            common: common.clone(),
        })
    }

    /// Like [`Session::open`], for a command that only reads: in a repository without
    /// `.stagegate/` it reads an empty store held in memory (so it reports no runs) and creates
    /// nothing; with one, it is [`Session::open`].
    pub async fn open_read_only(common: &CommonArgs) -> Result<Self, AppError> {
        let cwd = std::env::current_dir()?;
        let state_dir = find_repo_root(&cwd).join(STATE_DIR);
        if std::fs::symlink_metadata(&state_dir).is_ok() {
            return Self::open(common, None).await;
        }
        let (cwd, repo_root, settings) = load_settings(common, None, KeepSettings::No)?;
        // Nothing was ever recorded here, so nothing was left half done either.
        let store = Store::open_empty(&state_dir).await?;
        Ok(Session {
            cwd,
            repo_root,
            settings: Arc::new(settings),
            store,
            common: common.clone(),
        })
    }

    /// Whether this repository has recorded anything (`.stagegate/` exists).
    pub fn has_state(&self) -> bool {
        std::fs::symlink_metadata(self.store.state_dir()).is_ok()
    }

    /// The feature directory the command is about (`--feature`, or found as spec-kit finds it).
    pub fn feature(&self) -> Result<Feature, AppError> {
        let environment = std::env::var("SPECIFY_FEATURE_DIRECTORY").ok();
        find_feature(
            &self.repo_root,
            &self.cwd,
            self.common.feature.as_deref(),
            environment.as_deref(),
        )
    }

    /// The feature directory a run recorded.
    pub fn feature_of_run(&self, key: &str) -> Feature {
        Feature {
            dir: self.repo_root.join(key),
            key: key.to_owned(),
        }
    }

    /// `--config FILE`, as given on the command line (relative to the working directory).
    #[cfg(feature = "cluster")]
    pub fn config_file(&self) -> Option<PathBuf> {
        self.common.config.as_ref().map(|file| self.cwd.join(file))
    }

    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.repo_root).unwrap_or(path)
    }
}

/// The last load's resolved settings, in the state directory (see `stagegate_settings`'s
/// cache): a command run again over the same configuration reads them back instead of
/// parsing and validating it again.
const SETTINGS_CACHE_FILE: &str = "settings-cache.bin";

/// Whether a load may keep its settings in the state directory, creating it: yes for a
/// command that opens the store (which creates it anyway), no for one that only reads where
/// nothing was ever recorded (it creates nothing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeepSettings {
    Yes,
    No,
}

/// The working directory, the repository root and the settings (printing their warnings).
fn load_settings(
    common: &CommonArgs,
    concurrency: Option<usize>,
    keep: KeepSettings,
) -> Result<(PathBuf, PathBuf, Settings), AppError> {
    let cwd = std::env::current_dir()?;
    let repo_root = find_repo_root(&cwd);
    let mut options = LoadOptions::from_process_env(repo_root.clone());
    options.config_file = common.config.as_ref().map(|file| cwd.join(file));
    options.concurrency = concurrency;
    options.temporal = common.temporal.clone();
    options.cache_file =
        (keep == KeepSettings::Yes).then(|| repo_root.join(STATE_DIR).join(SETTINGS_CACHE_FILE));
    let loaded = stagegate_settings::load(&options)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    if crate::output_style::verbose() {
        let files: Vec<String> = [&loaded.user_config, &loaded.source]
            .into_iter()
            .flatten()
            .map(|path| path.display().to_string())
            .collect();
        eprintln!(
            "settings: built-in defaults{}",
            files
                .iter()
                .map(|file| format!(" < {file}"))
                .collect::<String>()
        );
    }
    Ok((cwd, repo_root, loaded.settings))
}
