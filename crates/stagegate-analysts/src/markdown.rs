//! A small line-wise markdown reader: headings, list items (with checkboxes), paragraphs,
//! table rows and fenced code blocks, each with its 1-based line number.
//!
//! spec-kit's files are template-shaped, so this is all the structure the analysts need, and a
//! hand-written single pass keeps megabyte inputs linear and every input readable: nothing here
//! can fail, a line that fits no other shape is a paragraph.

/// What kind of block a [`Block`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Heading {
        level: u8,
    },
    /// A list item; `checkbox` is `Some(done)` for `- [ ]` / `- [x]`.
    Item {
        checkbox: Option<bool>,
    },
    Paragraph,
    TableRow,
    /// A fenced code block's lines, joined with `\n`.
    Code,
    Rule,
}

/// One block of a markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) kind: BlockKind,
    /// The text without its marker (`#`, `-`, `1.`, `[ ]`); continuation lines joined by a space.
    pub(crate) text: String,
    /// The first line, counted from 1.
    pub(crate) line: usize,
}

/// Whether the input ended inside a code fence (reported as an unreadable note by callers).
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) blocks: Vec<Block>,
    pub(crate) unterminated_fence: bool,
}

/// Splits markdown into blocks. Linear in the input; `\r\n` and `\r` line ends are accepted.
pub(crate) fn parse(source: &str) -> Document {
    let mut document = Document::default();
    let mut fence: Option<(String, usize, String)> = None; // (marker, line, collected)
    // Whether the next plain line may continue the last block (no blank line in between).
    let mut continuable = false;
    // Inside an HTML comment that began a line: invisible when rendered, so not read (spec-kit's
    // templates keep their guidance and example tasks in such comments).
    let mut in_comment = false;
    for (index, raw) in source.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if fence.is_none() && (in_comment || trimmed.starts_with("<!--")) {
            let after_open = trimmed.strip_prefix("<!--").unwrap_or(trimmed);
            in_comment = !after_open.contains("-->");
            continuable = false;
            continue;
        }
        if let Some((marker, start, collected)) = fence.as_mut() {
            if trimmed.starts_with(marker.as_str()) {
                let text = std::mem::take(collected);
                let start = *start;
                document.blocks.push(Block {
                    kind: BlockKind::Code,
                    text,
                    line: start,
                });
                fence = None;
            } else {
                if !collected.is_empty() {
                    collected.push('\n');
                }
                collected.push_str(line);
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker = if trimmed.starts_with("```") {
                "```"
            } else {
                "~~~"
            };
            fence = Some((marker.to_owned(), line_number, String::new()));
            continuable = false;
            continue;
        }
        if trimmed.is_empty() {
            continuable = false;
            continue;
        }
        let indent = leading_width(line);
        if let Some((level, text)) = heading(trimmed).filter(|_| indent < 4) {
            document.blocks.push(Block {
                kind: BlockKind::Heading { level },
                text: text.to_owned(),
                line: line_number,
            });
            continuable = false;
            continue;
        }
        if is_rule(trimmed) {
            document.blocks.push(Block {
                kind: BlockKind::Rule,
                text: String::new(),
                line: line_number,
            });
            continuable = false;
            continue;
        }
        if trimmed.starts_with('|') {
            document.blocks.push(Block {
                kind: BlockKind::TableRow,
                text: trimmed.to_owned(),
                line: line_number,
            });
            continuable = false;
            continue;
        }
        if let Some(rest) = item_text(trimmed) {
            let (checkbox, text) = checkbox(rest);
            document.blocks.push(Block {
                kind: BlockKind::Item { checkbox },
                text: text.trim().to_owned(),
                line: line_number,
            });
            continuable = true;
            continue;
        }
        // A plain line: it continues the item or paragraph above, unless it starts a bold label
        // (`**Created**: …`), which spec-kit writes one per line without blank lines between.
        let starts_label = trimmed.starts_with("**") || trimmed.starts_with("__");
        if continuable
            && !starts_label
            && let Some(last) = document.blocks.last_mut()
            && matches!(last.kind, BlockKind::Item { .. } | BlockKind::Paragraph)
        {
            last.text.push(' ');
            last.text.push_str(trimmed);
            continue;
        }
        document.blocks.push(Block {
            kind: BlockKind::Paragraph,
            text: trimmed.to_owned(),
            line: line_number,
        });
        continuable = true;
    }
    if let Some((_, start, collected)) = fence {
        document.blocks.push(Block {
            kind: BlockKind::Code,
            text: collected,
            line: start,
        });
        document.unterminated_fence = true;
    }
    document
}

/// Spaces before the first visible character (a tab counts as four).
fn leading_width(line: &str) -> usize {
    let mut width = 0;
    for character in line.chars() {
        match character {
            ' ' => width += 1,
            '\t' => width += 4,
            _ => break,
        }
    }
    width
}

/// `## Title ##` → `(2, "Title")`.
pub(crate) fn heading(trimmed: &str) -> Option<(u8, &str)> {
    let hashes = trimmed.bytes().take_while(|byte| *byte == b'#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let rest = &trimmed[hashes..];
    if !rest.is_empty() && !rest.starts_with(' ') && !rest.starts_with('\t') {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    // `hashes` is at most 6, so it fits.
    Some((u8::try_from(hashes).unwrap_or(6), text))
}

fn is_rule(trimmed: &str) -> bool {
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && (compact.chars().all(|c| c == '-')
            || compact.chars().all(|c| c == '*')
            || compact.chars().all(|c| c == '_'))
}

/// The text after a list marker (`- `, `* `, `+ `, `1. `, `1) `), if the line is an item.
fn item_text(trimmed: &str) -> Option<&str> {
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = trimmed.strip_prefix(marker) {
            return Some(rest);
        }
    }
    if matches!(trimmed, "-" | "*" | "+") {
        return Some("");
    }
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 9 {
        let rest = &trimmed[digits..];
        if let Some(after) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(after);
        }
    }
    None
}

/// `[ ] text` → `(Some(false), "text")`; `[x] text` → `(Some(true), "text")`.
fn checkbox(text: &str) -> (Option<bool>, &str) {
    let bytes = text.as_bytes();
    if bytes.len() >= 3 && bytes[0] == b'[' && bytes[2] == b']' {
        let done = match bytes[1] {
            b' ' => Some(false),
            b'x' | b'X' => Some(true),
            _ => None,
        };
        if let Some(done) = done {
            return (Some(done), &text[3..]);
        }
    }
    (None, text)
}

/// The text without emphasis markers and code ticks, for matching and quoting.
pub(crate) fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if !matches!(character, '*' | '`') {
            out.push(character);
        }
    }
    out.trim().to_owned()
}

/// `**Label**: value` → `("Label", "value")` (also `**Label:** value`).
pub(crate) fn bold_label(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix("**")?;
    let end = rest.find("**")?;
    let label = rest[..end].trim().trim_end_matches(':').trim();
    let after = rest[end + 2..].trim_start();
    let value = after.strip_prefix(':').unwrap_or(after).trim();
    if label.is_empty() {
        return None;
    }
    Some((label.to_owned(), value.to_owned()))
}

/// The cells of a table row (`| a | b |` → `["a", "b"]`).
pub(crate) fn table_cells(row: &str) -> Vec<String> {
    let inner = row.trim();
    let inner = inner.strip_prefix('|').unwrap_or(inner);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for character in inner.chars() {
        if escaped {
            current.push(character);
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if character == '|' {
            cells.push(current.trim().to_owned());
            current.clear();
        } else {
            current.push(character);
        }
    }
    cells.push(current.trim().to_owned());
    cells
}

/// Whether a table row is the `|---|:---:|` separator.
pub(crate) fn is_separator_row(row: &str) -> bool {
    let cells = table_cells(row);
    !cells.is_empty()
        && cells
            .iter()
            .all(|cell| !cell.is_empty() && cell.chars().all(|c| matches!(c, '-' | ':' | ' ')))
}

/// Text made safe for one table cell: no pipes breaking the row, no line breaks.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(character),
        }
    }
    out
}

/// Writes a markdown table; every cell is escaped.
pub(crate) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push('|');
    for name in header {
        out.push(' ');
        out.push_str(name);
        out.push_str(" |");
    }
    out.push_str("\n|");
    for _ in header {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        out.push('|');
        for index in 0..header.len() {
            out.push(' ');
            let value = row.get(index).map(String::as_str).unwrap_or("");
            out.push_str(&cell(if value.is_empty() { "—" } else { value }));
            out.push_str(" |");
        }
        out.push('\n');
    }
}

/// The level-2 headings of a document and whether each has content before the next heading of
/// the same or a higher level, for QA's structural checks.
pub(crate) fn sections(document: &Document) -> Vec<(String, bool)> {
    let mut sections: Vec<(String, bool)> = Vec::new();
    let mut open = false;
    for block in &document.blocks {
        match block.kind {
            BlockKind::Heading { level } if level <= 2 => {
                open = level == 2;
                if open {
                    sections.push((block.text.clone(), false));
                }
            }
            _ => {
                if open && let Some(last) = sections.last_mut() {
                    last.1 = true;
                }
            }
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_each_kind_with_line_numbers() {
        let document = parse(
            "# Title\r\n\r\n**Created**: today\r\n**Status**: Draft\r\n\r\n- [x] T001 done\r\n  \
             still T001\r\n1. first\r\n| a | b |\r\n```text\r\nsrc/\r\n```\r\n---\r\n",
        );
        let kinds: Vec<_> = document.blocks.iter().map(|b| b.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                BlockKind::Heading { level: 1 },
                BlockKind::Paragraph,
                BlockKind::Paragraph,
                BlockKind::Item {
                    checkbox: Some(true)
                },
                BlockKind::Item { checkbox: None },
                BlockKind::TableRow,
                BlockKind::Code,
                BlockKind::Rule,
            ]
        );
        assert_eq!(document.blocks[3].text, "T001 done still T001");
        assert_eq!(document.blocks[3].line, 6);
        assert_eq!(document.blocks[6].text, "src/");
        assert!(!document.unterminated_fence);
    }

    #[test]
    fn labels_cells_and_unterminated_fences() {
        assert_eq!(
            bold_label("**Language/Version**: Rust 1.95"),
            Some(("Language/Version".to_owned(), "Rust 1.95".to_owned()))
        );
        assert_eq!(table_cells("| a \\| b | c |"), vec!["a | b", "c"]);
        assert!(is_separator_row("|---|:--:|"));
        assert!(parse("```\nnever closed").unterminated_fence);
        assert!(parse("").blocks.is_empty());
    }
}
