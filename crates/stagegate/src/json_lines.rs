//! `--json`: one event per line on stdout, flushed as it happens, so that a script can follow
//! a run live.

use std::io::Write;

use stagegate_engine::event::{Event, EventSink, SinkError};

#[derive(Debug, Default)]
pub struct JsonLines;

impl EventSink for JsonLines {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let line = serde_json::to_string(event)
            .map_err(|error| SinkError::new(format!("cannot encode an event: {error}")))?;
        let line = crate::terminal_text::escape_json(line);
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the reader went away) must not stop the run or lose its record.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
        Ok(())
    }
}
