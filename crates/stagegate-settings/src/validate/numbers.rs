//! Numbers, durations, sizes and ratios: range checks with help texts that say what to write.

use std::time::Duration;

use crate::duration::{DURATION_FORM, parse_duration};
use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::raw::{RawDuration, RawSize, Sourced};
use crate::size::{SIZE_FORM, parse_size};

use super::Validator;

impl Validator<'_> {
    /// A whole number of at least `minimum`, in the type the settings hold; notes its origin.
    pub(super) fn count<T: TryFrom<i64>>(
        &mut self,
        value: &Sourced<i64>,
        path: &str,
        minimum: i64,
    ) -> Result<T, ConfigError> {
        let number = value.value;
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

    /// A duration; zero is refused where `positive` (a zero timeout would fail every attempt).
    pub(super) fn duration(
        &mut self,
        value: &Sourced<RawDuration>,
        path: &str,
        positive: bool,
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
        self.note(path, &value.location);
        Ok(bytes)
    }

    /// A share in `0.0..=1.0`.
    pub(super) fn ratio(&mut self, value: &Sourced<f64>, path: &str) -> Result<f64, ConfigError> {
        let ratio = value.value;
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
