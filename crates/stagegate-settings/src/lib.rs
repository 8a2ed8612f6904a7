//! stagegate's configuration, resolved in passes: the embedded seed defaults
//! (`defaults.toml`), then `stagegate.toml`, then the environment, then flags; then validated
//! into [`Settings`].

mod settings;

pub use settings::*;
