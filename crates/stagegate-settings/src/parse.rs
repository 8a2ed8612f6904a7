//! The first pass: one file's text into a [`RawConfig`], with the keys it ignored.
//!
//! Syntax errors and wrong types both come out of `toml` as a message with a span; both are
//! turned into a [`ConfigError`] at that span, named after the key they are about when that can
//! be found.

use crate::error::{ConfigError, ConfigErrorKind, Problem};
use crate::known_keys::keys_beside;
use crate::raw::{Layer, Location, RawConfig};
use crate::source_file::{SourceFile, Sources};
use crate::suggest::did_you_mean;
use crate::warning::{ConfigWarning, WarningReason};

/// Parses `layer`'s file in `sources`; a layer without a file is an empty configuration.
pub(crate) fn parse_file(
    sources: &Sources,
    layer: &Layer,
) -> Result<(RawConfig, Vec<ConfigWarning>), ConfigError> {
    let Some(file) = sources.file(layer) else {
        return Ok((RawConfig::default(), Vec::new()));
    };
    let deserializer = toml::Deserializer::parse(&file.text)
        .map_err(|error| toml_error(sources, layer, file, &error, ConfigErrorKind::Syntax))?;
    let mut ignored: Vec<Vec<String>> = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(deserializer, |path| {
        ignored.push(segments(&path));
    })
    .map_err(|error| toml_error(sources, layer, file, &error, ConfigErrorKind::WrongType))?;
    let warnings = ignored
        .iter()
        .map(|path| unknown_key_warning(file, path))
        .collect();
    Ok((raw, warnings))
}

fn unknown_key_warning(file: &SourceFile, path: &[String]) -> ConfigWarning {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let (line, column) = file
        .key_span(&segments)
        .map_or((1, 1), |span| file.line_column(span.start));
    let suggestion = path
        .last()
        .and_then(|key| did_you_mean(key, keys_beside(path).iter().copied()))
        .map(str::to_owned);
    ConfigWarning {
        path: path.join("."),
        file: file.path.clone(),
        line,
        column,
        reason: WarningReason::UnknownKey,
        suggestion,
    }
}

/// The key path serde_ignored reports, as plain segments. The wrappers that `toml::Spanned`
/// deserializes through (and `Option`/newtype levels) are not keys the user wrote.
fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    let mut segments = Vec::new();
    let mut current = path;
    loop {
        match current {
            Path::Root => break,
            Path::Seq { parent, index } => {
                segments.push(index.to_string());
                current = parent;
            }
            Path::Map { parent, key } => {
                if !key.starts_with("$__serde_spanned_private") {
                    segments.push(key.clone());
                }
                current = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => current = parent,
        }
    }
    segments.reverse();
    segments
}

fn toml_error(
    sources: &Sources,
    layer: &Layer,
    file: &SourceFile,
    error: &toml::de::Error,
    kind: ConfigErrorKind,
) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    let message = readable_type_names(error.message().trim());
    let key_path = (kind == ConfigErrorKind::WrongType)
        .then(|| file.key_path_at(&span))
        .flatten();
    let (message, label, help) = match (kind, key_path) {
        (ConfigErrorKind::WrongType, Some(path)) => {
            let help = match message.split_once("expected ") {
                Some((_, expected)) => format!("write {path} as {expected}"),
                None => format!("check the value of {path}"),
            };
            (
                format!("{message} for {path}"),
                "wrong type".to_owned(),
                help,
            )
        }
        (ConfigErrorKind::WrongType, None) => (
            message,
            "wrong type".to_owned(),
            "check the value's type".to_owned(),
        ),
        _ => (
            format!("invalid TOML: {message}"),
            "here".to_owned(),
            "fix the TOML syntax here (see https://toml.io)".to_owned(),
        ),
    };
    let location = Location {
        layer: layer.clone(),
        span,
    };
    sources.error(&location, Problem::new(kind, message, label).help(help))
}

/// serde names Rust types in its messages ("expected i64"); say what a TOML user writes.
fn readable_type_names(message: &str) -> String {
    message
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace("expected struct ", "expected a table ")
}
