//! The run's subscribers, fed the one event stream in order: the recorder first (nothing is
//! shown before it is stored), then the display and the `--json` printer.
//!
//! Events the dispatcher only queues (calls' progress while it refills slots) are held here
//! with the commit that stores them and shown once it is done, in order, before any later one.

use std::collections::VecDeque;

use stagegate_engine::event::{Event, EventSink, SinkError};
use stagegate_store::{RunViewSnapshot, SavedRunView, Store};

use crate::error::AppError;
use crate::event_log::EventLog;
use crate::json_lines::JsonLines;
#[cfg(feature = "otel")]
use crate::otel_export::OtelExport;
use crate::progress::Progress;
use crate::recorder::{Recorder, Ticket, recording_failed};
use crate::run_view::{RunView, SNAPSHOT_FORMAT};

pub struct Subscribers {
    pub recorder: Recorder,
    pub progress: Progress,
    pub json: Option<JsonLines>,
    pub log: Option<EventLog>,
    /// OpenTelemetry spans, when an OTLP endpoint is configured.
    #[cfg(feature = "otel")]
    pub otel: Option<OtelExport>,
    /// Queued events not shown yet, each batch with the commit that stores it and the bytes
    /// of text its events carry.
    unshown: VecDeque<(Ticket, Vec<Event>, usize)>,
    /// How many events `unshown` holds, and how many bytes of text they carry.
    held: usize,
    held_bytes: usize,
    /// The run's view, kept up to date with every event shown (each already stored), and
    /// saved as the run's snapshot when the command ends ([`Subscribers::save_view`]).
    view: RunView,
    /// The sequence number of the last event `view` covered before this process's events
    /// (0 for a new run), and how many events it has taken in since.
    view_from_seq: i64,
    view_events: usize,
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
            view: RunView::default(),
            view_from_seq: 0,
            view_events: 0,
        }
    }

    /// Starts the run's view from what the store holds, for a run that already has events
    /// (a resume, a modification): a new run's view starts empty.
    pub async fn follow_view(&mut self, store: &Store, run_id: &str) -> Result<(), AppError> {
        let (view, through_seq) = RunView::load_events(store, run_id).await?;
        self.view = view;
        self.view_from_seq = through_seq;
        self.view_events = 0;
        Ok(())
    }

    /// Saves the run's view as its snapshot, for `status` to fold only what comes after it.
    ///
    /// The view covers the log if the log holds, after where it started, exactly the events
    /// it took in (the store checks, under the write lock); otherwise (another process
    /// appended a decision meanwhile, a commit failed) the view is folded again from the
    /// store. Nothing is saved when recording failed. A snapshot only saves `status` time, so
    /// callers may ignore the error: without one the whole log is folded.
    pub async fn save_view(&mut self, store: &Store, run_id: &str) -> Result<(), AppError> {
        // Every event shown is stored; wait for those queued but not shown to be too, so the
        // log holds at least what the view took in.
        let last = self.recorder.last_ticket();
        self.recorder.committed(last).await.map_err(|message| {
            AppError::internal(format!("recording the run failed: {message}"))
        })?;
        let saved = store
            .save_run_view_covering(
                run_id,
                self.view_from_seq,
                self.view_events,
                SNAPSHOT_FORMAT,
                self.view.to_snapshot()?,
            )
            .await?;
        if let SavedRunView::Mismatch { .. } = saved {
            let (view, through_seq) = RunView::load_events(store, run_id).await?;
            let snapshot = RunViewSnapshot {
                run_id: run_id.to_owned(),
                through_seq,
                view_json: view.to_snapshot()?,
            };
            store.save_run_view(&snapshot, SNAPSHOT_FORMAT).await?;
        }
        Ok(())
    }

    /// Shows the held batches whose commit is done, in order; with `all`, waits for every one.
    async fn show_held(&mut self, all: bool) -> Result<(), SinkError> {
        while let Some(&(ticket, _, _)) = self.unshown.front() {
            if !all && !self.recorder.is_settled(ticket) {
                break;
            }
            self.show_oldest().await?;
        }
        Ok(())
    }

    /// Waits for the oldest held batch to be stored, then shows it.
    async fn show_oldest(&mut self) -> Result<(), SinkError> {
        let Some(&(ticket, _, _)) = self.unshown.front() else {
            return Ok(());
        };
        self.recorder
            .committed(ticket)
            .await
            .map_err(recording_failed)?;
        if let Some((_, events, bytes)) = self.unshown.pop_front() {
            self.held -= events.len();
            self.held_bytes -= bytes;
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
        self.view.apply(event);
        self.view_events += 1;
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
        let bytes = events.iter().map(text_bytes).sum::<usize>();
        self.held += events.len();
        self.held_bytes += bytes;
        self.unshown.push_back((ticket, events, bytes));
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
            Some(&(ticket, _, _)) => {
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
