//! Checks every request passes before routing, and headers every response carries.
//!
//! * `Host` must name the dashboard (`127.0.0.1`, `localhost` or `[::1]` with the bound port)
//!   when it listens on loopback: a page on another site that rebinds its DNS name to
//!   127.0.0.1 sends its own name as the Host, so it is refused here even before the token is
//!   checked. With `--allow-remote` the names a remote browser uses are not known, and the
//!   token alone guards the dashboard.
//! * `Origin`, when a browser sends one, must be this dashboard (`http://` and the Host): a
//!   form posted from another web origin is refused whatever it carries. The opaque origin
//!   `null` (a form in a local file, a sandboxed frame) is let through to the token and CSRF
//!   checks: such a page cannot read the dashboard's pages, so it cannot hold the page's CSRF
//!   value, and a person may well keep a local page that posts to their own dashboard.
//! * A request's body must arrive within [`BODY_READ_TIMEOUT`] of its headers (hyper times
//!   out only the headers): a client that announces a body and never sends it would otherwise
//!   hold its connection, and one of the dashboard's few connection slots, for ever. The body
//!   is read here, bounded by the routes' size limit, and handed on whole.
//! * Every response, refusals included, says `X-Content-Type-Options: nosniff`, so a
//!   browser never runs a staged artifact or an agent's output as HTML or script.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::routes::{BODY_LIMIT, Refusal};

/// How long a request's body may take to arrive once its headers have (a form is a few hundred
/// bytes).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Which `Host` values the dashboard answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// `None`: any host (`--allow-remote`).
    names: Option<Vec<String>>,
}

impl AllowedHosts {
    /// The loopback names with `port`, or anything when the dashboard listens beyond loopback.
    pub fn for_address(address: std::net::SocketAddr) -> Self {
        if !address.ip().is_loopback() {
            return AllowedHosts { names: None };
        }
        let port = address.port();
        let mut names = Vec::new();
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            names.push(format!("{host}:{port}"));
            // A browser leaves out the default port.
            if port == 80 {
                names.push(host.to_owned());
            }
        }
        AllowedHosts { names: Some(names) }
    }

    fn allows(&self, host: &str) -> bool {
        match &self.names {
            None => true,
            Some(names) => names.iter().any(|name| name.eq_ignore_ascii_case(host)),
        }
    }
}

/// The middleware: refuses a foreign Host or Origin with 403, and adds `nosniff`.
pub async fn guard(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let checked = match check(&allowed, &request) {
        Ok(()) => read_body_in_time(request).await,
        Err(refusal) => Err(refusal),
    };
    let mut response = match checked {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The request with its whole body read, or a refusal when the body is too slow or too large.
async fn read_body_in_time(request: Request) -> Result<Request, Refusal> {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(_)) => Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} KiB, or was cut off",
                BODY_LIMIT / 1024
            ),
        )),
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s of its headers",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn check(allowed: &AllowedHosts, request: &Request) -> Result<(), Refusal> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !allowed.allows(host) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "this dashboard does not answer to the host {host:?}: open the URL `stagegate serve` printed (http://127.0.0.1:PORT/...)"
            ),
        ));
    }
    if let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .filter(|origin| origin.as_bytes() != b"null")
    {
        let same = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.strip_prefix("http://"))
            .is_some_and(|origin| origin.eq_ignore_ascii_case(host));
        if !same {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "cross-origin request refused: decisions are taken only from the dashboard's own pages",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: Body) -> Request {
        Request::post("/runs/r1/approve")
            .body(body)
            .expect("a request")
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_arrives_is_refused_after_the_timeout() {
        let body = Body::from_stream(futures_util::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >());
        let started = tokio::time::Instant::now();
        let refusal = read_body_in_time(post(body)).await.expect_err("refused");
        assert_eq!(
            refusal.into_response().status(),
            StatusCode::REQUEST_TIMEOUT
        );
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_within_the_limits_is_handed_on_whole() {
        let request = read_body_in_time(post(Body::from("decision=approve")))
            .await
            .expect("read");
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .expect("the body");
        assert_eq!(&bytes[..], b"decision=approve");
        let large = Body::from(vec![b'a'; BODY_LIMIT + 1]);
        let refusal = read_body_in_time(post(large)).await.expect_err("too large");
        assert_eq!(
            refusal.into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn loopback_answers_to_its_names_with_its_port_only() {
        let allowed = AllowedHosts::for_address("127.0.0.1:7878".parse().expect("address"));
        assert!(allowed.allows("127.0.0.1:7878"));
        assert!(allowed.allows("LOCALHOST:7878"));
        assert!(allowed.allows("[::1]:7878"));
        assert!(!allowed.allows("evil.example:7878"));
        assert!(!allowed.allows("127.0.0.1:7879"));
        assert!(!allowed.allows(""));
        let remote = AllowedHosts::for_address("0.0.0.0:7878".parse().expect("address"));
        assert!(remote.allows("my-machine:7878"));
    }
}
