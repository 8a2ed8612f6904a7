//! `[cluster]`: with `temporal` set, runs go to that Temporal cluster instead of running in this
//! process; without it there is no cluster, whatever `namespace` and `task_queue` say.

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::Sourced;
use crate::settings::ClusterSettings;

use super::Validator;

/// Temporal's own default namespace, which a development server always has.
const DEFAULT_NAMESPACE: &str = "default";
/// The task queue stagegate's workers listen on unless told otherwise.
const DEFAULT_TASK_QUEUE: &str = "stagegate";

impl Validator<'_> {
    pub(super) fn cluster(&mut self) -> Result<Option<ClusterSettings>, ConfigError> {
        let raw = &self.raw.cluster;
        let Some(address) = &raw.temporal else {
            return Ok(None);
        };
        let temporal = self.host_port(address)?;
        self.note("cluster.temporal", &address.location);
        let namespace = self.plain_name(raw.namespace.as_ref(), "namespace", DEFAULT_NAMESPACE)?;
        let task_queue =
            self.plain_name(raw.task_queue.as_ref(), "task_queue", DEFAULT_TASK_QUEUE)?;
        let repository = match raw.repository.as_ref() {
            Some(name) => Some(self.plain_name(Some(name), "repository", "")?),
            None => None,
        };
        Ok(Some(ClusterSettings {
            temporal,
            namespace,
            task_queue,
            repository,
        }))
    }

    /// `host:port`, as Temporal's own tools take it (no scheme: the client adds `http://`).
    fn host_port(&self, address: &Sourced<String>) -> Result<String, ConfigError> {
        let text = address.value.trim();
        let port = text
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty() && !host.contains('/'))
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port != 0);
        if port.is_none() {
            return Err(self.fail(
                &address.location,
                Problem::new(
                    ConfigErrorKind::InvalidValue,
                    format!(
                        "\"{}\" is not a Temporal address (cluster.temporal)",
                        address.value
                    ),
                    "not host:port",
                )
                .help("give the frontend's host and port, such as temporal = \"127.0.0.1:7233\""),
            ));
        }
        Ok(text.to_owned())
    }

    fn plain_name(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
        default: &str,
    ) -> Result<String, ConfigError> {
        let Some(value) = value else {
            return Ok(default.to_owned());
        };
        let name = value.value.trim();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::InvalidValue,
                    format!("cluster.{key} \"{}\" is empty or has spaces", value.value),
                    "not a name",
                )
                .help(if default.is_empty() {
                    "give a name without spaces, or leave it out".to_owned()
                } else {
                    format!("give a name without spaces, or leave it out for \"{default}\"")
                }),
            ));
        }
        self.note(format!("cluster.{key}"), &value.location);
        Ok(name.to_owned())
    }
}
