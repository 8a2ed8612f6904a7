//! Loading: the passes in order, from the embedded defaults to validated [`Settings`].
//!
//! 1. parse the embedded `defaults.toml`, the user-level file and the repository's file into raw
//!    configurations;
//! 2. merge each over the ones before, key by key ([`crate::merge`]): the repository's file wins
//!    over the user-level one, which wins over the defaults;
//! 3. the environment ([`crate::environment`]), then the flags;
//! 4. validate into [`Settings`] ([`crate::validate`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::CachedLoad;
use crate::environment::apply_environment;
use crate::error::ConfigError;
use crate::flags::{apply_flags, apply_temporal_flag};
use crate::merge::merge;
use crate::parse::parse_file;
use crate::raw::{Layer, RawConfig};
use crate::settings::Settings;
use crate::source_file::{SourceFile, Sources};
use crate::validate::validate;
use crate::warning::ConfigWarning;

/// The seed's numbers and the built-in pipeline, in the schema users write.
pub(crate) const DEFAULTS_TOML: &str = include_str!("../defaults.toml");

/// The embedded defaults, for `stagegate` to show (`stagegate init` can start from them).
pub fn embedded_defaults() -> &'static str {
    DEFAULTS_TOML
}

/// The configuration file's name at the repository root.
pub const CONFIG_FILE_NAME: &str = "stagegate.toml";

/// The user-level configuration file, under the XDG configuration directory: settings a person
/// wants in every repository (their CLI agent, their API key's variable), beneath each
/// repository's `stagegate.toml`.
pub const USER_CONFIG_FILE: &str = "stagegate/config.toml";

/// Where the user-level file is: `$XDG_CONFIG_HOME/stagegate/config.toml`, else
/// `$HOME/.config/stagegate/config.toml`. `XDG_CONFIG_HOME` counts only when absolute, as the
/// XDG Base Directory specification says; `None` when neither variable gives a place.
pub fn user_config_path(
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let absolute =
        |value: Option<OsString>| value.map(PathBuf::from).filter(|path| path.is_absolute());
    absolute(xdg_config_home)
        .or_else(|| absolute(home).map(|home| home.join(".config")))
        .map(|directory| directory.join(USER_CONFIG_FILE))
}

/// Everything loading depends on, passed in so that it can be tested without touching the
/// process's environment or working directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `stagegate.toml` is read from here when `config_file` is `None`; a missing file is fine.
    pub repo_root: PathBuf,
    /// The user-level file ([`user_config_path`]), read beneath the repository's when it
    /// exists; `None` reads none.
    pub user_config: Option<PathBuf>,
    /// `--config FILE`: must exist.
    pub config_file: Option<PathBuf>,
    /// A snapshot of the environment; only the `STAGEGATE_*` variables listed in
    /// [`crate::ENVIRONMENT_VARIABLES`] are read.
    pub environment: BTreeMap<String, String>,
    /// `--concurrency N`.
    pub concurrency: Option<usize>,
    /// `--temporal ADDR`: run on this Temporal cluster.
    pub temporal: Option<String>,
    /// Where the last load's result is kept for the next one over the same inputs
    /// (`cache.rs`); `None` parses and validates every time. Its directory is created when a
    /// load succeeds.
    pub cache_file: Option<PathBuf>,
}

impl LoadOptions {
    /// Options for `repo_root` with the process's `STAGEGATE_*` variables and no flags.
    ///
    /// Only `STAGEGATE_*` variables are kept: the options are `Debug` and may be logged, and
    /// the rest of the environment holds API keys.
    pub fn from_process_env(repo_root: PathBuf) -> Self {
        let environment = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with("STAGEGATE_"))
            .collect();
        LoadOptions {
            repo_root,
            user_config: user_config_path(
                std::env::var_os("XDG_CONFIG_HOME"),
                std::env::var_os("HOME"),
            ),
            config_file: None,
            environment,
            concurrency: None,
            temporal: None,
            cache_file: None,
        }
    }
}

/// The result of loading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loaded {
    pub settings: Settings,
    /// Keys that were ignored, for the caller to print (`warning: …`).
    pub warnings: Vec<ConfigWarning>,
    /// The repository's configuration file that was read (`stagegate.toml` or `--config`), if
    /// any.
    pub source: Option<PathBuf>,
    /// The user-level configuration file that was read, if any.
    pub user_config: Option<PathBuf>,
}

/// Loads the settings: embedded defaults < the user-level file < `stagegate.toml` (or
/// `--config`) < environment < flags.
pub fn load(options: &LoadOptions) -> Result<Loaded, ConfigError> {
    load_over(DEFAULTS_TOML, options)
}

/// [`load`] over another defaults text, so that tests can show that a broken defaults file is an
/// error rather than a panic.
pub(crate) fn load_over(defaults: &str, options: &LoadOptions) -> Result<Loaded, ConfigError> {
    let sources = read_sources(defaults, options)?;
    let cached = options
        .cache_file
        .as_deref()
        .and_then(|file| CachedLoad::new(file, &sources, options));
    if let Some(loaded) = cached.as_ref().and_then(CachedLoad::read) {
        return Ok(loaded);
    }
    let loaded = resolve(sources, options)?;
    if let Some(cached) = cached {
        cached.write(&loaded);
    }
    Ok(loaded)
}

/// The files of a load, each read once (and refused if it is not a file or is too large).
fn read_sources(defaults: &str, options: &LoadOptions) -> Result<Sources, ConfigError> {
    let user_config = match &options.user_config {
        Some(path) => read_config_file(path, false)?,
        None => None,
    };
    let repository = match &options.config_file {
        Some(path) => read_config_file(path, true)?,
        None => read_config_file(&options.repo_root.join(CONFIG_FILE_NAME), false)?,
    };
    Ok(Sources {
        defaults: SourceFile::embedded_defaults(defaults),
        user_config,
        repository,
    })
}

/// Parses, merges and validates `sources` under the environment and flags of `options`.
fn resolve(sources: Sources, options: &LoadOptions) -> Result<Loaded, ConfigError> {
    let mut raw = RawConfig::default();
    let mut warnings = Vec::new();
    for layer in [Layer::Defaults, Layer::UserConfig, Layer::Repository] {
        let (layer_raw, layer_warnings) = parse_file(&sources, &layer)?;
        merge(&mut raw, layer_raw, &layer);
        warnings.extend(layer_warnings);
    }
    apply_environment(&mut raw, &options.environment, &sources)?;
    apply_flags(&mut raw, options.concurrency, &sources)?;
    apply_temporal_flag(&mut raw, options.temporal.as_deref());

    let (settings, validation_warnings) = validate(&raw, &sources)?;
    warnings.extend(validation_warnings);
    // In file order, as the user reads them.
    warnings.sort_by(|left, right| {
        (&left.file, left.line, left.column).cmp(&(&right.file, right.line, right.column))
    });
    Ok(Loaded {
        settings,
        warnings,
        source: sources.repository.and_then(|file| file.path),
        user_config: sources.user_config.and_then(|file| file.path),
    })
}

/// The largest configuration file read. A `stagegate.toml` is a few kilobytes; one of a
/// megabyte is a mistake (or `--config /dev/zero`), and reading it whole would only run out of
/// memory. Not settable: no real configuration comes near it.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration file's text: `--config FILE` must exist, `stagegate.toml` at the repository
/// root and the user-level file may not.
///
/// Only a regular file (or a symlink to one) is read: a FIFO would block the read forever and a
/// device such as `/dev/zero` never ends, so both are refused before they are opened.
fn read_config_file(path: &Path, must_exist: bool) -> Result<Option<SourceFile>, ConfigError> {
    let path = path.to_path_buf();
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return if must_exist {
                Err(ConfigError::NotFound { path })
            } else {
                Ok(None)
            };
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    if !metadata.is_file() {
        return Err(ConfigError::NotAFile {
            path,
            found: file_type_name(&metadata.file_type()),
        });
    }
    let too_large = |size: u64, path: PathBuf| ConfigError::TooLarge {
        path,
        size,
        limit: MAX_CONFIG_BYTES,
    };
    if metadata.len() > MAX_CONFIG_BYTES {
        return Err(too_large(metadata.len(), path));
    }
    // The file may have been swapped or grown since the check: read at most one byte more than
    // the limit, so that the limit holds whatever is there now.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&path).and_then(|file| {
        use std::io::Read;
        file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)
    });
    if let Err(source) = read {
        return Err(ConfigError::Read { path, source });
    }
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(bytes.len() as u64, path));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(SourceFile::user(path, text))),
        Err(_) => Err(ConfigError::Read {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        }),
    }
}

/// What a path is, for an error saying it is not a regular file (the configuration here; the
/// binary's stage inputs too).
pub fn file_type_name(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests;
