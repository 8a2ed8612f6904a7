//! `--json`: one event per line on stdout, flushed as it happens, so that a script can follow
//! a run live. Each line is the event's object with the event schema's `version` added; the
//! schema is `docs/events.schema.json`.

use std::io::Write;

use stagegate_engine::envelope::EVENT_SCHEMA_VERSION;
use stagegate_engine::event::{Event, EventSink, SinkError};

#[derive(Debug, Default)]
pub struct JsonLines;

impl EventSink for JsonLines {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let line = versioned_line(event)
            .map_err(|error| SinkError::new(format!("cannot encode an event: {error}")))?;
        let line = crate::terminal_text::escape_json(line);
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the reader went away) must not stop the run or lose its record.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
        Ok(())
    }
}

/// The event as one JSON line, `"version"` first and then the event's own fields in their
/// order (`event`, the kind, leading). Spliced into the text rather than through a
/// `serde_json::Value`, whose map would sort the keys.
fn versioned_line(event: &Event) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(event)?;
    Ok(match json.strip_prefix('{') {
        Some("}") => format!("{{\"version\":{EVENT_SCHEMA_VERSION}}}"),
        Some(fields) => format!("{{\"version\":{EVENT_SCHEMA_VERSION},{fields}"),
        None => json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_carries_the_schema_version() {
        let event = Event::RunFinished {
            run_id: "r1".into(),
            end: stagegate_engine::event::StageEnd::Approved,
            at_ms: 5,
        };
        let line = versioned_line(&event).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["version"], EVENT_SCHEMA_VERSION);
        assert_eq!(value["event"], "run_finished");
        assert!(
            line.starts_with(r#"{"version":1,"event":"run_finished","#),
            "{line}"
        );
    }
}
