//! The run's subscribers, fed the one event stream in order: the recorder first (nothing is
//! shown before it is stored), then the display and the `--json` printer.
//!
//! Events the dispatcher only queues (calls' progress while it refills slots) are held here
//! with the commit that stores them and shown once it is done, in order, before any later one.

use std::collections::VecDeque;

use stagegate_engine::event::{Event, EventSink, SinkError};

use crate::event_log::EventLog;
use crate::json_lines::JsonLines;
#[cfg(feature = "otel")]
use crate::otel_export::OtelExport;
use crate::progress::Progress;
use crate::recorder::{Recorder, Ticket};

pub struct Subscribers {
    pub recorder: Recorder,
    pub progress: Progress,
    pub json: Option<JsonLines>,
    pub log: Option<EventLog>,
    /// OpenTelemetry spans, when an OTLP endpoint is configured.
    #[cfg(feature = "otel")]
    pub otel: Option<OtelExport>,
    /// Queued events not shown yet, each batch with the commit that stores it.
    unshown: VecDeque<(Ticket, Vec<Event>)>,
    /// How many events `unshown` holds, and how many bytes of text they carry.
    held: usize,
    held_bytes: usize,
}

/// The most events held for their commit before queueing more waits for the writer: a few
/// group commits' worth, far more than any real stage has in flight.
const MAX_HELD_EVENTS: usize = 2_048;
/// The most prompt and output bytes those events may hold: each prompt can carry a whole spec,
/// and a hundred agents' prompts of a 10 MB spec held at once took 750 MB.
const MAX_HELD_TEXT_BYTES: usize = 32 << 20;

/// The bytes of text an event carries for the recorder (prompts, outputs, stderr).
fn text_bytes(event: &Event) -> usize {
    match event {
        Event::AttemptStarted { prompt, .. } => prompt.len(),
        Event::AttemptFinished { output, stderr, .. } => output.len() + stderr.len(),
        Event::CacheHit { prompt, output, .. } => prompt.len() + output.len(),
        _ => 0,
    }
}

impl Subscribers {
    pub fn new(
        recorder: Recorder,
        progress: Progress,
        json: Option<JsonLines>,
        log: Option<EventLog>,
    ) -> Self {
        Subscribers {
            recorder,
            progress,
            json,
            log,
            #[cfg(feature = "otel")]
            otel: None,
            unshown: VecDeque::new(),
            held: 0,
            held_bytes: 0,
        }
    }

    /// Shows the held batches whose commit is done, in order; with `all`, waits for every one.
    async fn show_held(&mut self, all: bool) -> Result<(), SinkError> {
        while let Some(&(ticket, _)) = self.unshown.front() {
            if !all && !self.recorder.is_settled(ticket) {
                break;
            }
            self.show_oldest().await?;
        }
        Ok(())
    }

    /// Waits for the oldest held batch to be stored, then shows it.
    async fn show_oldest(&mut self) -> Result<(), SinkError> {
        let Some(&(ticket, _)) = self.unshown.front() else {
            return Ok(());
        };
        self.recorder
            .committed(ticket)
            .await
            .map_err(recording_failed)?;
        if let Some((_, events)) = self.unshown.pop_front() {
            self.held -= events.len();
            self.held_bytes -= events.iter().map(text_bytes).sum::<usize>();
            for event in &events {
                self.announce_now(event).await?;
            }
        }
        Ok(())
    }

    /// Shows an event that is already recorded (a gate decision, recorded in the decision's own
    /// transaction) to every subscriber but the recorder.
    pub async fn announce(&mut self, event: &Event) -> Result<(), SinkError> {
        self.show_held(true).await?;
        self.announce_now(event).await
    }

    async fn announce_now(&mut self, event: &Event) -> Result<(), SinkError> {
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

    async fn queue_all(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        for event in &events {
            self.recorder
                .record_queued(event)
                .await
                .map_err(recording_failed)?;
        }
        let ticket = self.recorder.last_ticket();
        self.held += events.len();
        self.held_bytes += events.iter().map(text_bytes).sum::<usize>();
        self.unshown.push_back((ticket, events));
        self.show_held(false).await?;
        // Back-pressure: a dispatcher that outruns the writer waits for it rather than holding
        // ever more events (and their prompts and outputs) in memory.
        while self.held > MAX_HELD_EVENTS || self.held_bytes > MAX_HELD_TEXT_BYTES {
            self.show_oldest().await?;
        }
        Ok(())
    }

    async fn stored(&mut self) {
        match self.unshown.front() {
            Some(&(ticket, _)) => {
                let _ = self.recorder.committed(ticket).await;
            }
            None => std::future::pending().await,
        }
    }

    async fn show_stored(&mut self) -> Result<(), SinkError> {
        self.show_held(false).await
    }

    async fn settle(&mut self) -> Result<(), SinkError> {
        self.show_held(true).await?;
        self.recorder.stage_pending().map_err(recording_failed)
    }
}

fn recording_failed(message: String) -> SinkError {
    SinkError::new(format!("recording the run failed: {message}"))
}
