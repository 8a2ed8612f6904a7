//! Columns of text for a terminal (`runs`, `status`): each column as wide as its widest cell,
//! two spaces between columns, the last column unpadded. A long feature name widens its column
//! instead of running into the next one.
//!
//! Cells are neutralised when added (they can quote agents or file names) and measured by their
//! display width; a cell's colour is added after padding, so escape sequences never count.

use unicode_width::UnicodeWidthStr;

use crate::output_style::{Stream, Tone, paint};
use crate::terminal_text::neutralise;

const GUTTER: &str = "  ";

#[derive(Debug, Default)]
pub struct TextTable {
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug)]
struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl TextTable {
    pub fn new() -> Self {
        TextTable::default()
    }

    /// Adds a row of plain cells.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.toned_row(cells.into_iter().map(|cell| (cell, None)));
    }

    /// Adds a row whose cells may each have a colour.
    pub fn toned_row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = (S, Option<Tone>)>,
        S: AsRef<str>,
    {
        let row = cells
            .into_iter()
            .map(|(text, tone)| Cell {
                // One line per row: a newline in a cell would break every column after it.
                text: neutralise(text.as_ref()).replace(['\n', '\r', '\t'], " "),
                tone,
            })
            .collect();
        self.rows.push(row);
    }

    /// The table as lines, each starting with `indent`, coloured for `stream` when it takes
    /// colour.
    pub fn render(&self, indent: &str, stream: Stream) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.text.width())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str(GUTTER);
                }
                let shown = match cell.tone {
                    Some(tone) => paint(stream, tone, &cell.text),
                    None => cell.text.clone(),
                };
                line.push_str(&shown);
                if column + 1 < row.len() {
                    let padding = widths[column].saturating_sub(cell.text.width());
                    line.extend(std::iter::repeat_n(' ', padding));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_cell_widens_its_column_instead_of_running_into_the_next() {
        let mut table = TextTable::new();
        table.row(["run", "feature", "state"]);
        table.row([
            "r1",
            "specs/001-a-very-long-feature-name-that-goes-on",
            "done",
        ]);
        table.row(["r22", "specs/002-b", "failed"]);
        let text = table.render("", Stream::Stdout);
        let lines: Vec<&str> = text.lines().collect();
        let state_column = lines[0].find("state").expect("header");
        for line in &lines[1..] {
            let state = &line[state_column..];
            assert!(state == "done" || state == "failed", "{text}");
            assert!(line[..state_column].ends_with("  "), "{text}");
        }
    }

    #[test]
    fn cells_are_neutralised_and_kept_on_one_line() {
        let mut table = TextTable::new();
        table.row(["a\u{1b}[2Jb", "two\nlines"]);
        assert_eq!(table.render("  ", Stream::Stdout), "  a␛[2Jb  two lines\n");
    }

    #[test]
    fn wide_characters_are_measured_by_display_width() {
        let mut table = TextTable::new();
        table.row(["写真", "x"]);
        table.row(["abcd", "y"]);
        let text = table.render("", Stream::Stdout);
        assert_eq!(text, "写真  x\nabcd  y\n");
    }
}
