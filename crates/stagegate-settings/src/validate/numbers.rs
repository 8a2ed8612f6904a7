//! Numbers, durations, sizes and ratios: range checks with help texts that say what to write.

use std::time::Duration;

use crate::duration::{DURATION_FORM, parse_duration};
use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{RawDuration, RawSize, Sourced};
use crate::size::{SIZE_FORM, parse_size};

use super::Validator;

/// Upper bounds of durations and numbers. Each is far beyond any sensible value, and low enough
/// that nothing derived from it (a deadline `now + timeout`, a timeout raised by 50%, a
/// semaphore of `concurrency` permits) can overflow or panic: a value that passes validation
/// must be one the engine can run with.
pub(super) mod limits {
    use std::time::Duration;

    const HOUR: u64 = 60 * 60;
    const DAY: u64 = 24 * HOUR;

    /// Agent, review, synthesis, QA and stage timeouts: a week.
    pub(in crate::validate) const TIMEOUT: Duration = Duration::from_secs(7 * DAY);
    /// SIGTERM → SIGKILL grace: ten minutes; the engine waits that long on every timeout.
    pub(in crate::validate) const KILL_GRACE: Duration = Duration::from_secs(10 * 60);
    /// Backoff before the first retry, and a mock backend's latency: an hour.
    pub(in crate::validate) const WAIT: Duration = Duration::from_secs(HOUR);
    /// Cache times to live: a year.
    pub(in crate::validate) const CACHE_TTL: Duration = Duration::from_secs(365 * DAY);
    /// Agents in flight at once.
    pub(in crate::validate) const CONCURRENCY: i64 = 1024;
    /// Retries, synthesis iterations and a mock's failing attempts.
    pub(in crate::validate) const REPEATS: i64 = 100;
    /// Score thresholds: the scores are 0–100.
    pub(in crate::validate) const SCORE: i64 = 100;
    /// A backend's `max_tokens`.
    pub(in crate::validate) const MAX_TOKENS: i64 = 100_000_000;
    /// Sizes (output cap, agent memory): 1 TiB.
    pub(in crate::validate) const SIZE: u64 = 1 << 40;
}

impl Validator<'_> {
    /// A whole number in `minimum..=maximum`, in the type the settings hold; notes its origin.
    pub(super) fn count<T: TryFrom<i64>>(
        &mut self,
        value: &Sourced<i64>,
        path: &str,
        minimum: i64,
        maximum: i64,
    ) -> Result<T, ConfigError> {
        let number = value.value;
        if number > maximum {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} must be at most {maximum}, not {number}"),
                    format!("must be at most {maximum}"),
                )
                .help(format!(
                    "set {path} to a whole number from {minimum} to {maximum}"
                )),
            ));
        }
        if number < minimum {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} must be at least {minimum}, not {number}"),
                    format!("must be at least {minimum}"),
                )
                .help(format!("set {path} to a whole number of {minimum} or more")),
            ));
        }
        let converted = T::try_from(number).map_err(|_| {
            self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} is too large: {number}"),
                    "too large",
                )
                .help(format!("set {path} to a smaller number")),
            )
        })?;
        self.note(path, &value.location);
        Ok(converted)
    }

    /// A duration of at most `maximum`; zero is refused where `positive` (a zero timeout would
    /// fail every attempt).
    pub(super) fn duration(
        &mut self,
        value: &Sourced<RawDuration>,
        path: &str,
        positive: bool,
        maximum: Duration,
    ) -> Result<Duration, ConfigError> {
        let duration = parse_duration(&value.value.0).map_err(|message| {
            self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::InvalidDuration,
                    format!("{message} for {path}"),
                    "not a duration",
                )
                .help(DURATION_FORM),
            )
        })?;
        if positive && duration.is_zero() {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} must be longer than zero"),
                    "zero",
                )
                .help(format!("{DURATION_FORM}, longer than zero")),
            ));
        }
        if duration > maximum {
            let limit = humantime::format_duration(maximum);
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!(
                        "{path} is too long: \"{}\" is more than {limit}",
                        value.value.0
                    ),
                    format!("longer than {limit}"),
                )
                .help(format!("{DURATION_FORM}, of at most {limit}")),
            ));
        }
        self.note(path, &value.location);
        Ok(duration)
    }

    /// A size in bytes.
    pub(super) fn size(
        &mut self,
        value: &Sourced<RawSize>,
        path: &str,
    ) -> Result<u64, ConfigError> {
        let bytes = match &value.value {
            RawSize::Text(text) => parse_size(text),
            RawSize::Bytes(bytes) => {
                u64::try_from(*bytes).map_err(|_| format!("negative size {bytes}"))
            }
        };
        let bytes = bytes.map_err(|message| {
            self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::InvalidSize,
                    format!("{message} for {path}"),
                    "not a size",
                )
                .help(SIZE_FORM),
            )
        })?;
        if bytes > limits::SIZE {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} is too large: {bytes} bytes is more than 1TiB"),
                    "larger than 1TiB",
                )
                .help(format!("{SIZE_FORM}, of at most 1TiB")),
            ));
        }
        self.note(path, &value.location);
        Ok(bytes)
    }

    /// A share in `0.0..=1.0`.
    pub(super) fn ratio(&mut self, value: &Sourced<f64>, path: &str) -> Result<f64, ConfigError> {
        let ratio = value.value;
        // `contains` is false for NaN too.
        if !(0.0..=1.0).contains(&ratio) {
            return Err(self.fail(
                &value.location,
                Problem::new(
                    ConfigErrorKind::OutOfRange,
                    format!("{path} must be between 0.0 and 1.0, not {ratio}"),
                    "outside 0.0..=1.0",
                )
                .help(format!(
                    "set {path} to the share of agents that must succeed, such as 0.75 for 3 of 4"
                )),
            ));
        }
        self.note(path, &value.location);
        Ok(ratio)
    }
}
