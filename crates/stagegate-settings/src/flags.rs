//! The flags pass: command-line options that override everything else.

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{Layer, Location, RawConfig, Sourced};
use crate::source_file::Sources;

/// The flag that caps parallel agents.
pub(crate) const CONCURRENCY_FLAG: &str = "--concurrency";

/// The flag that sends runs to a Temporal cluster.
pub(crate) const TEMPORAL_FLAG: &str = "--temporal";

/// `--temporal ADDR` sets `cluster.temporal` over the file and the environment.
pub(crate) fn apply_temporal_flag(raw: &mut RawConfig, address: Option<&str>) {
    if let Some(address) = address {
        let location = Location::outside_files(Layer::Flag(TEMPORAL_FLAG.to_owned()));
        raw.cluster.temporal = Some(Sourced::new(address.to_owned(), location));
    }
}

/// `--concurrency N` is the user's explicit "at most N at once": it replaces
/// `defaults.concurrency` and every stage's own concurrency alike.
pub(crate) fn apply_flags(
    raw: &mut RawConfig,
    concurrency: Option<usize>,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let Some(concurrency) = concurrency else {
        return Ok(());
    };
    let location = Location::outside_files(Layer::Flag(CONCURRENCY_FLAG.to_owned()));
    let value = i64::try_from(concurrency).map_err(|_| {
        sources.error(
            &location,
            Problem::new(
                ConfigErrorKind::OutOfRange,
                format!("{concurrency} is too large"),
                "too large",
            )
            .help("give a small number of parallel agents, such as 3"),
        )
    })?;
    let value = Sourced::new(value, location);
    for stage in raw.stages.values_mut() {
        stage.concurrency = Some(value.clone());
    }
    raw.defaults.concurrency = Some(value);
    Ok(())
}
