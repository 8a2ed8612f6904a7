//! A worker's stand-in for the user's repository: a scratch directory holding the run's
//! `stagegate.toml` and prompt templates (from the request), its feature directory, and the
//! settings loaded from them exactly as on the user's machine. A worker needs no checkout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use stagegate_engine::prompt::TEMPLATE_OVERRIDE_DIR;
use stagegate_settings::{CONFIG_FILE_NAME, LoadOptions, Settings};

/// What a scratch repository is made of.
pub struct ScratchSource<'a> {
    pub config: Option<&'a str>,
    pub environment: &'a BTreeMap<String, String>,
    pub templates: &'a [(String, String)],
    pub feature_key: &'a str,
    pub concurrency: Option<usize>,
}

/// A scratch repository; removed when dropped.
pub struct Scratch {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub feature_dir: PathBuf,
    pub settings: Settings,
}

impl Scratch {
    pub fn build(source: &ScratchSource<'_>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|error| format!("no scratch directory: {error}"))?;
        let root = dir.path().to_path_buf();
        let written = |error: std::io::Error| format!("the scratch repository: {error}");
        let feature_dir = root.join(source.feature_key);
        std::fs::create_dir_all(&feature_dir).map_err(written)?;
        if let Some(config) = source.config {
            std::fs::write(root.join(CONFIG_FILE_NAME), config).map_err(written)?;
        }
        if !source.templates.is_empty() {
            let templates = root.join(TEMPLATE_OVERRIDE_DIR);
            std::fs::create_dir_all(&templates).map_err(written)?;
            for (name, text) in source.templates {
                std::fs::write(templates.join(name), text).map_err(written)?;
            }
        }
        let options = LoadOptions {
            repo_root: root.clone(),
            environment: source.environment.clone(),
            concurrency: source.concurrency,
            ..LoadOptions::default()
        };
        let settings = stagegate_settings::load(&options)
            .map_err(|error| format!("the run's settings do not load on this worker: {error}"))?
            .settings;
        Ok(Scratch {
            _dir: dir,
            root,
            feature_dir,
            settings,
        })
    }
}
