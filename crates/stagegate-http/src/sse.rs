//! Server-sent events (`event: …` / `data: …` lines, blank-line separated) from a response body,
//! with the body's idle timeout, parsed by `eventsource-stream`.

use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use stagegate_engine::backend::Failure;

use crate::answer::unreadable;
use crate::body_stream::{BodyError, body_chunks};

/// The events of a streamed answer; a stall, a broken connection or bytes that are not SSE end it
/// with a retryable failure.
pub(crate) fn events(
    response: reqwest::Response,
    idle_timeout: Duration,
) -> impl Stream<Item = Result<Event, Failure>> + Send {
    body_chunks(response, idle_timeout)
        .eventsource()
        .map(|event| event.map_err(failure))
}

fn failure(error: EventStreamError<BodyError>) -> Failure {
    match error {
        EventStreamError::Transport(error) => error.into(),
        EventStreamError::Utf8(error) => unreadable(format!("the stream is not UTF-8 ({error})")),
        EventStreamError::Parser(error) => {
            unreadable(format!("the stream is not server-sent events ({error})"))
        }
    }
}
