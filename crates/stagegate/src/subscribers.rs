//! The run's subscribers, fed the one event stream in order: the recorder first (nothing is
//! shown before it is stored), then the display and the `--json` printer.

use stagegate_engine::event::{Event, EventSink, SinkError};

use crate::event_log::EventLog;
use crate::json_lines::JsonLines;
#[cfg(feature = "otel")]
use crate::otel_export::OtelExport;
use crate::progress::Progress;
use crate::recorder::Recorder;

pub struct Subscribers {
    pub recorder: Recorder,
    pub progress: Progress,
    pub json: Option<JsonLines>,
    pub log: Option<EventLog>,
    /// OpenTelemetry spans, when an OTLP endpoint is configured.
    #[cfg(feature = "otel")]
    pub otel: Option<OtelExport>,
}

impl Subscribers {
    /// Shows an event that is already recorded (a gate decision, recorded in the decision's own
    /// transaction) to every subscriber but the recorder.
    pub async fn announce(&mut self, event: &Event) -> Result<(), SinkError> {
        self.progress.show(event);
        if let Some(json) = &mut self.json {
            json.emit(event).await?;
        }
        if let Some(log) = &mut self.log {
            log.emit(event).await?;
        }
        #[cfg(feature = "otel")]
        if let Some(otel) = &mut self.otel {
            otel.emit(event).await?;
        }
        Ok(())
    }
}

impl EventSink for Subscribers {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.recorder.emit(event).await?;
        self.announce(event).await
    }

    /// The recorder stores them all (one group commit) before any is shown.
    async fn emit_all(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.recorder.emit_all(events).await?;
        for event in events {
            self.announce(event).await?;
        }
        Ok(())
    }
}
