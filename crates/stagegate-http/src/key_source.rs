//! Where an API key comes from: read at the moment of each call, never kept.
//!
//! Reading the key per call (instead of once at start-up) means a key exported or rotated while
//! stagegate runs is picked up by the next attempt, and the key never sits in a long-lived
//! struct that could end up in a `Debug` dump or an error message.

use std::fmt;
use std::sync::Arc;

use stagegate_engine::secrets;

type ReadKey = dyn Fn() -> Option<String> + Send + Sync;

/// A key's source: the environment variable it is named by (for messages) and how to read it.
#[derive(Clone)]
pub struct KeySource {
    variable: String,
    read: Arc<ReadKey>,
}

impl KeySource {
    /// The environment variable `variable`, read with `std::env::var` on every call.
    pub fn env(variable: impl Into<String>) -> Self {
        let variable = variable.into();
        let name = variable.clone();
        KeySource {
            variable,
            read: Arc::new(move || std::env::var(&name).ok()),
        }
    }

    /// A key read by `read` on every call (tests, or a key store other than the environment);
    /// `variable` is the name messages point the user at.
    pub fn from_fn(
        variable: impl Into<String>,
        read: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        KeySource {
            variable: variable.into(),
            read: Arc::new(read),
        }
    }

    /// The name of the variable holding the key.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// The key now; `None` when it is unset or blank. A key read is remembered as a secret
    /// (`stagegate_engine::secrets`), so that nothing stagegate keeps or shows can repeat it.
    pub(crate) fn read(&self) -> Option<String> {
        let key = (self.read)()
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())?;
        secrets::remember(&key);
        Some(key)
    }
}

/// Shows the variable's name only, never the key.
impl fmt::Debug for KeySource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KeySource")
            .field("variable", &self.variable)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_keys_count_as_missing_and_debug_hides_the_key() {
        let source = KeySource::from_fn("MY_KEY", || Some("  ".to_owned()));
        assert_eq!(source.read(), None);
        let source = KeySource::from_fn("MY_KEY", || Some(" sk-secret\n".to_owned()));
        assert_eq!(source.read().as_deref(), Some("sk-secret"));
        let debug = format!("{source:?}");
        assert!(
            debug.contains("MY_KEY") && !debug.contains("sk-secret"),
            "{debug}"
        );
    }

    #[test]
    fn an_unset_variable_reads_as_missing() {
        let source = KeySource::env("STAGEGATE_HTTP_UNIT_TEST_NEVER_SET");
        assert_eq!(source.read(), None);
    }
}
