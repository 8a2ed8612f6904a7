//! stagegate's configuration, resolved in passes: the embedded seed defaults
//! (`defaults.toml`), then the user-level file (`$XDG_CONFIG_HOME/stagegate/config.toml`), then
//! the repository's `stagegate.toml`, then the environment, then flags; then validated into
//! [`Settings`].
//!
//! ```no_run
//! let options = stagegate_settings::LoadOptions::from_process_env(".".into());
//! match stagegate_settings::load(&options) {
//!     Ok(loaded) => {
//!         for warning in &loaded.warnings {
//!             eprintln!("warning: {warning}");
//!         }
//!         let plan = loaded.settings.stage("a");
//!         # let _ = plan;
//!     }
//!     Err(error) => eprintln!("error: {error}"),
//! }
//! ```
//!
//! The environment variables are listed in [`environment`].

mod cache;
mod duration;
pub mod environment;
mod error;
mod flags;
mod known_keys;
mod load;
mod merge;
mod parse;
mod raw;
mod settings;
mod size;
mod source_file;
mod suggest;
mod validate;
mod warning;

pub use environment::ENVIRONMENT_VARIABLES;
pub use error::{ConfigError, ConfigErrorKind, FileError};
pub use load::{
    CONFIG_FILE_NAME, LoadOptions, Loaded, MAX_CONFIG_BYTES, USER_CONFIG_FILE, embedded_defaults,
    file_type_name, load, user_config_path,
};
pub use settings::*;
pub use warning::{ConfigWarning, WarningReason};
