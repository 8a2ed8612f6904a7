//! `stagegate serve`: a local web dashboard of the runs in the store, where a person can read
//! a pending gate's staged artifacts (with their diff against the feature directory) and
//! approve, reject or modify it — through the same decision functions as the terminal gate
//! and `stagegate approve | reject | modify`, so a decision here is recorded exactly as one
//! there, and a `stagegate run` stopped at a gate in another process sees it (they share the
//! store).
//!
//! It listens on loopback unless `--allow-remote`, and every request needs the session token
//! printed at start-up (see `token.rs`); decisions also need the CSRF value of the page that
//! showed the gate. Pages are server-rendered HTML readable without JavaScript; the run page
//! has a small script that follows the run live over server-sent events (`live.rs`).
//!
//! Under load: connections are bounded and time out while idle (`connections.rs`), and every
//! request passes Host and Origin checks and every response says `nosniff`
//! (`request_guard.rs`).

mod connections;
mod live;
mod pages;
mod request_guard;
mod routes;
mod token;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::error::{AppError, Exit};
use crate::session::Session;

use self::request_guard::AllowedHosts;
use self::token::Token;

/// What every request handler shares.
pub struct Dashboard {
    pub session: Session,
    pub token: Token,
    /// Held while a decision is taken, so that two requests cannot both find the gate pending
    /// and decide it twice (the store refuses only a *different* second decision).
    pub deciding: tokio::sync::Mutex<()>,
    /// Cancelled on Ctrl-C: the live streams end so the server can shut down.
    pub shutdown: CancellationToken,
}

pub async fn serve(session: Session, args: &ServeArgs) -> Result<Exit, AppError> {
    let address = listen_address(args)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            AppError::usage(format!(
                "cannot listen on {address}: {error}\nhint: choose another port with `--addr 127.0.0.1:PORT` (port 0 picks a free one)"
            ))
        })?;
    let bound = listener.local_addr()?;
    let dashboard = Arc::new(Dashboard {
        session,
        token: Token::generate(&bound.to_string()),
        deciding: tokio::sync::Mutex::new(()),
        shutdown: CancellationToken::new(),
    });
    // The URL carries the token: this line is the only place it is ever written.
    eprintln!(
        "stagegate dashboard on http://{bound}/?token={}\nthe token is required for every page and decision; Ctrl-C stops the server",
        dashboard.token.as_str()
    );
    let shutdown = dashboard.shutdown.clone();
    let allowed = Arc::new(AllowedHosts::for_address(bound));
    let router = routes::router(dashboard).layer(axum::middleware::from_fn_with_state(
        allowed,
        request_guard::guard,
    ));
    tokio::spawn(stop_on_interrupt(shutdown.clone()));
    connections::serve(listener, router, shutdown).await;
    eprintln!("stagegate dashboard stopped");
    Ok(Exit::Done)
}

/// `--port` on loopback, else `--addr`; anything but loopback needs `--allow-remote`.
fn listen_address(args: &ServeArgs) -> Result<SocketAddr, AppError> {
    let address = match args.port {
        Some(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        None => args.addr,
    };
    if !address.ip().is_loopback() && !args.allow_remote {
        return Err(AppError::usage(format!(
            "refusing to listen on {address}: it is not a loopback address, and anyone who can reach it could read your runs\nhint: use `--addr 127.0.0.1:{}`, or pass `--allow-remote` if you mean it (the token is still required)",
            address.port()
        )));
    }
    Ok(address)
}

/// Resolves on the first Ctrl-C (ending the live streams, then the server drains its
/// requests); a second Ctrl-C exits at once.
async fn stop_on_interrupt(shutdown: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler: the server runs until it is killed.
        std::future::pending::<()>().await;
    }
    eprintln!("\nstopping the dashboard (Ctrl-C again to quit at once)");
    shutdown.cancel();
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::CommonArgs;

    fn args(addr: &str, port: Option<u16>, allow_remote: bool) -> ServeArgs {
        ServeArgs {
            addr: addr.parse().expect("an address"),
            port,
            allow_remote,
            common: CommonArgs::default(),
        }
    }

    #[test]
    fn loopback_is_the_default_and_anything_else_must_be_asked_for() {
        assert!(listen_address(&args("127.0.0.1:7878", None, false)).is_ok());
        assert!(listen_address(&args("[::1]:7878", None, false)).is_ok());
        assert_eq!(
            listen_address(&args("0.0.0.0:1", Some(9000), false))
                .expect("--port is loopback")
                .to_string(),
            "127.0.0.1:9000"
        );
        let refused = listen_address(&args("0.0.0.0:7878", None, false))
            .expect_err("0.0.0.0 is refused")
            .to_string();
        assert!(refused.contains("--allow-remote"), "{refused}");
        assert!(listen_address(&args("0.0.0.0:7878", None, true)).is_ok());
    }
}
