//! A response body read chunk by chunk that fails when no bytes arrive for the idle timeout.
//!
//! The attempt's deadline bounds a call as a whole, but a model that answers for minutes is
//! normal while a connection that sends nothing for a minute is not: a stalled stream (a hung
//! server, a dropped connection nobody noticed) should fail fast and be retried instead of
//! sitting out the whole deadline.

use std::fmt;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use stagegate_engine::backend::Failure;

use crate::answer::unreadable;

/// Why reading the body stopped early.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// No bytes for the idle timeout.
    Stalled(Duration),
    /// The connection broke or the server sent a malformed body.
    Transport(reqwest::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Stalled(idle) => write!(
                formatter,
                "the stream stalled: no data from the server for {} ms",
                idle.as_millis()
            ),
            BodyError::Transport(error) => {
                write!(
                    formatter,
                    "the connection broke during the answer: {}",
                    crate::client::error_chain(error)
                )
            }
        }
    }
}

impl From<BodyError> for Failure {
    fn from(error: BodyError) -> Self {
        Failure::retryable(error.to_string())
    }
}

/// The body's chunks; a stall or a broken connection ends it with one error.
pub(crate) fn body_chunks(
    response: reqwest::Response,
    idle_timeout: Duration,
) -> impl Stream<Item = Result<impl AsRef<[u8]>, BodyError>> + Send {
    let chunks = Box::pin(response.bytes_stream());
    futures_util::stream::unfold(Some(chunks), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout(idle_timeout, chunks.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
            Ok(Some(Err(error))) => Some((Err(BodyError::Transport(error)), None)),
            Ok(None) => None,
            Err(_elapsed) => Some((Err(BodyError::Stalled(idle_timeout)), None)),
        }
    })
}

/// The whole body, up to `cap` bytes (more is an error: answers are bounded).
pub(crate) async fn read_body(
    response: reqwest::Response,
    idle_timeout: Duration,
    cap: u64,
) -> Result<Vec<u8>, Failure> {
    let mut chunks = std::pin::pin!(body_chunks(response, idle_timeout));
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        body.extend_from_slice(chunk?.as_ref());
        if body.len() as u64 > cap {
            return Err(Failure::permanent(format!(
                "the answer is larger than the output cap of {cap} bytes"
            )));
        }
    }
    Ok(body)
}

/// As much of an error body as arrives (bounded), for the server's message; failures to read it
/// only lose the message, never the status.
pub(crate) async fn read_error_body(
    response: reqwest::Response,
    idle_timeout: Duration,
) -> Vec<u8> {
    const ERROR_BODY_CAP: usize = 64 * 1024;
    let mut chunks = std::pin::pin!(body_chunks(response, idle_timeout));
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = chunks.next().await {
        body.extend_from_slice(chunk.as_ref());
        if body.len() > ERROR_BODY_CAP {
            body.truncate(ERROR_BODY_CAP);
            break;
        }
    }
    body
}

/// A body that is not JSON at all.
pub(crate) fn not_json(error: &serde_json::Error) -> Failure {
    unreadable(format!("invalid JSON ({error})"))
}
