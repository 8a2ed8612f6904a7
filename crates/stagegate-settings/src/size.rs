//! Sizes in bytes as users write them: `"1MiB"`, `"512KiB"`, `"256MB"`, `"100B"` or a plain
//! integer of bytes.
//!
//! `KB`/`MB`/`GB`/`TB` are decimal (powers of 1000) and `KiB`/`MiB`/`GiB`/`TiB` binary (powers
//! of 1024), as the units say; units are case-insensitive apart from that `i`, and a space
//! between number and unit is allowed.

/// What the help text of a bad size suggests.
pub(crate) const SIZE_FORM: &str = r#"write a size as a whole number and a unit, such as "1MiB", "512KiB" or "256MB" (KB, MB, GB are powers of 1000; KiB, MiB, GiB powers of 1024), or as a whole number of bytes"#;

/// Parses a size, or says what is wrong with it.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "invalid size \"{text}\": it must start with a whole number"
        ));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size \"{text}\": the number is too large"))?;
    let multiplier = unit_multiplier(unit.trim())
        .ok_or_else(|| format!("invalid size \"{text}\": unknown unit \"{}\"", unit.trim()))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size \"{text}\": too large"))
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    Some(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_and_decimal_units() {
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("512KiB"), Ok(524_288));
        assert_eq!(parse_size("256MB"), Ok(256_000_000));
        assert_eq!(parse_size("512 mb"), Ok(512_000_000));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("4096"), Ok(4096));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("20000000TiB").is_err());
    }
}
