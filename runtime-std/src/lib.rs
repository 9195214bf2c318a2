//! tern-runtime-std: the tokio runtime that drives tern-core on servers,
//! and the `tern` binary's pieces.
//!
//! - [`config`]: the TOML configuration, its defaults and its validation
//!   (every error with a line number).
//! - [`cli`]: the `tern` command line.
//! - [`net`]: the [`Listener`](net::Listener) abstraction, so the same
//!   accept loops run on tokio and on turmoil sockets.
//! - [`http`]: `/healthz`, `/metrics`, `/api/stats`, `/` and the hand-off of
//!   WebSocket upgrades on the HTTP port.
//! - [`stats`]: the snapshot behind `/metrics` and `/api/stats`.
//! - [`file_store`]: persistent shared objects as atomically replaced files.
//! - [`logging`]: `tracing` output and the SIGINT/SIGTERM shutdown signal.
//!
//! [`serve`] runs the server. For now it serves only the HTTP endpoints;
//! RTMP, WebSocket and the hub are wired in by the server module.

pub mod cli;
pub mod config;
pub mod file_store;
pub mod http;
pub mod logging;
pub mod net;
pub mod stats;

use config::{Config, ConfigError};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use tern_core::store::{Store, StoreError};
use tracing::info;

/// Why the server could not run.
#[derive(Debug)]
pub enum ServeError {
    /// The configuration is invalid.
    Config(Vec<ConfigError>),
    /// A listening socket could not be opened.
    Bind {
        /// Which listener (`HTTP`, `RTMP`).
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        error: io::Error,
    },
    /// The signal handlers could not be installed.
    Signals(io::Error),
    /// The persistent shared objects could not be listed.
    Store(StoreError),
    /// A listener failed while serving.
    Io(io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Config(errors) => {
                f.write_str("invalid configuration:")?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            ServeError::Bind { what, addr, error } => {
                write!(f, "cannot listen for {what} on {addr}: {error}")
            }
            ServeError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            ServeError::Store(e) => e.fmt(f),
            ServeError::Io(e) => write!(f, "server failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let signal = logging::shutdown_signal().map_err(ServeError::Signals)?;
    serve_until(config, async {
        let signal = signal.await;
        info!(%signal, "shutting down");
    })
    .await
}

/// Runs the server until `shutdown` resolves.
///
/// Temporary: serves only the HTTP endpoints with empty stats, and lists
/// the persistent shared objects found in the data directory.
pub async fn serve_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    config.validate().map_err(ServeError::Config)?;
    let mut store = file_store::FileStore::new(&config.server.data_dir);
    let stored = store.list().map_err(ServeError::Store)?;
    info!(
        data_dir = %config.server.data_dir.display(),
        objects = stored.len(),
        "persistent shared objects found"
    );
    let addr = config.server.http_bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Bind {
            what: "HTTP",
            addr,
            error,
        })?;
    http::serve_http(listener, stats::EmptyStats, shutdown)
        .await
        .map_err(ServeError::Io)?;
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_failure_names_the_address() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.http_bind = taken.local_addr().unwrap();
        config.server.data_dir = dir.path().to_owned();
        let err = serve_until(config, async {}).await.unwrap_err();
        assert!(matches!(err, ServeError::Bind { what: "HTTP", .. }));
        assert!(
            err.to_string()
                .contains("cannot listen for HTTP on 127.0.0.1:")
        );
    }

    #[tokio::test]
    async fn serves_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.http_bind = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = dir.path().to_owned();
        serve_until(config, async {}).await.unwrap();
    }
}
