//! The text of a configuration file, kept after parsing so that errors and warnings can quote it
//! and turn byte offsets into lines and columns, and so that keys serde does not hand us spans
//! for (unknown keys, table headers) can still be found.

use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

use crate::raw::Layer;

/// The name the embedded defaults go by in messages.
pub(crate) const DEFAULTS_NAME: &str = "defaults.toml (built into stagegate)";

/// One configuration file's text and how to name it.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// How messages name the file: the path as given, or [`DEFAULTS_NAME`].
    pub(crate) name: String,
    /// The path, for user files; `None` for the embedded defaults.
    pub(crate) path: Option<PathBuf>,
    pub(crate) text: String,
}

impl SourceFile {
    pub(crate) fn embedded_defaults(text: &str) -> Self {
        SourceFile {
            name: DEFAULTS_NAME.to_owned(),
            path: None,
            text: text.to_owned(),
        }
    }

    pub(crate) fn user(path: PathBuf, text: String) -> Self {
        SourceFile {
            name: path.display().to_string(),
            path: Some(path),
            text,
        }
    }

    /// 1-based line and column (in characters) of a byte offset; an offset past the end or inside
    /// a character is clamped rather than trusted.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The span of the last segment of a key path, e.g. `["stages", "plan", "concurency"]`;
    /// numeric segments index into arrays. `None` when the path is not in the file (or the file
    /// does not parse, which cannot happen for a file that was already deserialized).
    pub(crate) fn key_span(&self, path: &[&str]) -> Option<Range<usize>> {
        let root = DeTable::parse(&self.text).ok()?;
        let (first, rest) = path.split_first()?;
        let (key, mut value) = find_key(root.get_ref(), first)?;
        let mut span = key;
        for segment in rest {
            match value.get_ref() {
                DeValue::Table(table) => {
                    let (key, next) = find_key(table, segment)?;
                    span = key;
                    value = next;
                }
                DeValue::Array(array) => {
                    let index: usize = segment.parse().ok()?;
                    let element = array.get(index)?;
                    span = element.span();
                    value = element.clone();
                }
                _ => return None,
            }
        }
        Some(span)
    }

    /// The dotted key path of the innermost value that contains `span`, so that a type error can
    /// name the key it is about (`defaults.concurrency`).
    pub(crate) fn key_path_at(&self, span: &Range<usize>) -> Option<String> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut path = Vec::new();
        find_value_containing(root.get_ref(), span, &mut path).then(|| path.join("."))
    }
}

/// Pushes onto `path` the keys down to the innermost value containing `span`. Tables are
/// searched by their keys rather than their own spans, which for `[header]` tables do not cover
/// their contents.
fn find_value_containing(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        let found = match value.get_ref() {
            DeValue::Table(inner) => find_value_containing(inner, span, path),
            DeValue::Array(array) => {
                array.iter().enumerate().any(|(index, element)| {
                    path.push(index.to_string());
                    let found = match element.get_ref() {
                        DeValue::Table(inner) => find_value_containing(inner, span, path),
                        _ => contains(&element.span(), span),
                    };
                    if !found {
                        path.pop();
                    }
                    found
                }) || contains(&value.span(), span)
            }
            _ => contains(&value.span(), span),
        };
        if found {
            return true;
        }
        path.pop();
    }
    false
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn find_key<'i>(
    table: &DeTable<'i>,
    name: &str,
) -> Option<(Range<usize>, toml::Spanned<DeValue<'i>>)> {
    table
        .iter()
        .find(|(key, _)| key.get_ref() == name)
        .map(|(key, value)| (key.span(), value.clone()))
}

/// The files of one load: the embedded defaults, the user-level file and the repository's file,
/// each if there is one.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) defaults: SourceFile,
    pub(crate) user_config: Option<SourceFile>,
    pub(crate) repository: Option<SourceFile>,
}

impl Sources {
    /// The file a layer's values live in; `None` for the environment and flags.
    pub(crate) fn file(&self, layer: &Layer) -> Option<&SourceFile> {
        match layer {
            Layer::Defaults => Some(&self.defaults),
            Layer::UserConfig => self.user_config.as_ref(),
            Layer::Repository => self.repository.as_ref(),
            Layer::Environment(_) | Layer::Flag(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::user(PathBuf::from("stagegate.toml"), text.to_owned())
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let source = file("a = 1\nbé = \"x\"\n");
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column(6), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(source.line_column(9), (2, 3));
        assert_eq!(source.line_column(10_000), (3, 1));
    }

    #[test]
    fn key_span_finds_headers_keys_and_array_entries() {
        let source = file("[stages.plan]\nconcurrency = 1\nagents = [\"x\", \"y\"]\n");
        let span = source.key_span(&["stages", "plan"]).expect("header");
        assert_eq!(&source.text[span], "plan");
        let span = source
            .key_span(&["stages", "plan", "concurrency"])
            .expect("key");
        assert_eq!(&source.text[span], "concurrency");
        let span = source
            .key_span(&["stages", "plan", "agents", "1"])
            .expect("entry");
        assert_eq!(&source.text[span], "\"y\"");
        assert_eq!(source.key_span(&["stages", "prep"]), None);
    }

    #[test]
    fn key_path_at_names_the_innermost_key() {
        let source = file("[defaults]\nconcurrency = \"three\"\n");
        let offset = source.text.find("\"three\"").expect("value");
        assert_eq!(
            source.key_path_at(&(offset..offset + 7)).as_deref(),
            Some("defaults.concurrency")
        );
    }
}
