//! Accepting connections: at most [`MAX_CONNECTIONS`] at once, and a connection that does not
//! send a request's headers within [`HEADER_READ_TIMEOUT`] is closed.
//!
//! `axum::serve` has neither: 300 idle connections that never sent a byte held the dashboard
//! unreachable for as long as they stayed open. hyper's HTTP/1 builder times out the reading
//! of each request head (the first, and each next one on a kept-alive connection, so an idle
//! kept-alive connection is closed too); the semaphore bounds open connections, and so file
//! descriptors and memory. A connection over the limit waits in the kernel's backlog until an
//! earlier one ends, which for an idle one is at most the header timeout. A live stream
//! (`/runs/ID/events`) keeps its connection, and its permit, for as long as it runs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Open connections at once; a browser opens a handful per tab.
pub const MAX_CONNECTIONS: usize = 128;

/// How long a connection may take to send a request's headers, or stay idle between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets the requests in
/// flight finish (live streams end on the same token) and returns.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin, and go on.
                    tracing::warn!(%error, "accepting a dashboard connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Every permit back means every connection ended.
    let _ = permits.acquire_many(MAX_CONNECTIONS as u32).await;
}
