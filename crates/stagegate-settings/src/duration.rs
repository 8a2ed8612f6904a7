//! Durations as users write them: humantime's `"30s"`, `"250ms"`, `"2m"`, `"1h 30m"`.

use std::time::Duration;

/// What the help text of a bad duration suggests.
pub(crate) const DURATION_FORM: &str =
    r#"write a duration as a number and a unit, such as "30s", "250ms", "2m" or "1h 30m""#;

/// Parses a duration, or says what is wrong with it.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".to_owned());
    }
    // humantime reads a bare "30" as an error too, but its message ("time unit needed") does
    // not say which units exist.
    if trimmed.chars().all(|character| character.is_ascii_digit()) {
        return Err(format!("duration \"{text}\" has no unit"));
    }
    humantime::parse_duration(trimmed)
        .map_err(|error| format!("invalid duration \"{text}\": {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("30")
                .expect_err("no unit")
                .contains("no unit")
        );
        assert!(parse_duration("thirty seconds").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }
}
