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
//! - [`fd_limit`]: the descriptor limit raised at start.
//!
//! - [`server`]: the hub shared by every connection task, the RTMP accept
//!   loop and connection tasks, graceful shutdown.
//! - [`tls`]: RTMPS and HTTPS/WSS (rustls), certificate reload on SIGHUP.
//! - [`admin`]: the admin API on the HTTP port (`[http] admin_token`).
//! - [`tools`]: the `tern so` and `tern trace` commands.
//! - `alloc_count` (feature `count-allocations`): the counting allocator
//!   behind `/metrics`' heap counters.
//!
//! - [`access`]: `[apps.NAME]` access rules, the HTTP callback client,
//!   `tern sign`.
//!
//! [`serve`] runs the server.

pub mod access;
pub mod admin;
#[cfg(feature = "count-allocations")]
pub mod alloc_count;
pub mod cli;
pub mod cluster;
pub mod config;
mod direct_write;
pub mod ended;
pub mod fd_limit;
pub mod file_store;
mod heap_trim;
pub mod http;
pub mod logging;
pub mod merge_policy;
pub mod net;
pub mod record;
pub mod relay;
pub mod server;
pub mod stats;
pub mod tls;
pub mod tools;
mod wakeup;

use config::{Config, ConfigError};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tern_core::hub::store::StoreError;
use tracing::info;

/// Why the server could not run.
#[derive(Debug)]
#[non_exhaustive]
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
    /// The TLS certificate or key could not be loaded.
    Tls(tls::TlsError),
    /// The node could not join its cluster (`[cluster]`).
    Cluster(cluster::ClusterError),
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
            ServeError::Tls(e) => write!(f, "TLS: {e}"),
            ServeError::Cluster(e) => e.fmt(f),
            ServeError::Io(e) => write!(f, "server failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Bind { error, .. } => Some(error),
            ServeError::Signals(e) | ServeError::Io(e) => Some(e),
            ServeError::Store(e) => Some(e),
            ServeError::Tls(e) => Some(e),
            ServeError::Cluster(e) => Some(e),
            ServeError::Config(_) => None,
        }
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let signal = logging::shutdown_signal().map_err(ServeError::Signals)?;
    serve_until(config, async {
        let signal = signal.await;
        info!(%signal, "shutting down");
    })
    .await
}

/// Runs the server until `shutdown` resolves: binds both listeners, then
/// serves RTMP and HTTP and runs the hub's timers. At shutdown the listeners
/// stop accepting, every client is told `NetConnection.Connect.Closed`, and
/// connections get a short grace period to receive it. Persistent shared
/// objects need no flush: each change is stored before it is acknowledged.
pub async fn serve_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    config.validate().map_err(ServeError::Config)?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(_), Some(_)) => Some(tls::TlsSetup::load(&config.tls).map_err(ServeError::Tls)?),
        _ => None,
    };
    let rtmp = bind("RTMP", config.server.rtmp_bind).await?;
    let http = bind("HTTP", config.server.http_bind).await?;
    let mut secure = TlsPorts {
        setup: tls,
        rtmps: None,
        https: None,
    };
    if let Some(addr) = config.server.rtmps_bind {
        secure.rtmps = Some(bind("RTMPS", addr).await?);
    }
    if let Some(addr) = config.server.https_bind {
        secure.https = Some(bind("HTTPS", addr).await?);
    }
    serve_all(config, rtmp, http, secure, shutdown).await
}

/// The TLS side of [`serve_until`]: the certificates (if `[tls]` is set)
/// and the TLS listeners (if their binds are). The simulator has none.
#[derive(Default)]
struct TlsPorts {
    setup: Option<tls::TlsSetup>,
    rtmps: Option<tokio::net::TcpListener>,
    https: Option<tokio::net::TcpListener>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Bind { what, addr, error })
}

/// Serves on listeners the caller bound (tests bind port 0; the simulator
/// passes turmoil listeners).
pub async fn serve_on<R: net::Listener, H: net::Listener>(
    config: Config,
    rtmp: R,
    http: H,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_all(config, rtmp, http, TlsPorts::default(), shutdown).await
}

/// [`serve_on`] with relays (`push`, `pull`) opening their connections
/// through `connector` (the simulator's sockets) instead of tokio's.
pub async fn serve_on_with_connector<R: net::Listener, H: net::Listener>(
    config: Config,
    rtmp: R,
    http: H,
    connector: relay::service::BoxedConnector,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_all_with(
        config,
        rtmp,
        http,
        TlsPorts::default(),
        Some(connector),
        None,
        shutdown,
    )
    .await
}

/// [`serve_on`] as one node of a cluster whose sequencer is `bus` (the
/// simulator's in-memory one) instead of NATS (docs/cluster.md).
pub async fn serve_on_with_bus<R: net::Listener, H: net::Listener>(
    config: Config,
    rtmp: R,
    http: H,
    bus: cluster::ExternalBus,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_all_with(
        config,
        rtmp,
        http,
        TlsPorts::default(),
        None,
        Some(bus),
        shutdown,
    )
    .await
}

async fn serve_all<R: net::Listener, H: net::Listener>(
    config: Config,
    rtmp: R,
    http: H,
    secure: TlsPorts,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_all_with(config, rtmp, http, secure, None, None, shutdown).await
}

async fn serve_all_with<R: net::Listener, H: net::Listener>(
    config: Config,
    rtmp: R,
    http: H,
    secure: TlsPorts,
    connector: Option<relay::service::BoxedConnector>,
    bus: Option<cluster::ExternalBus>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let shared = server::Shared::new(&config);
    if let Some(connector) = connector {
        shared.relays().set_connector(connector);
    }
    let now = shared.now();
    let loaded = shared
        .with_hub(|hub| hub.load_stored(now))
        .map_err(ServeError::Store)?;
    info!(
        data_dir = %config.server.data_dir.display(),
        objects = loaded,
        "persistent shared objects loaded"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Clustered, the replica is replayed before anyone is served
    // (docs/cluster.md).
    let cluster = match bus {
        Some(bus) => Some(cluster::start_external(
            bus,
            Arc::clone(&shared),
            stop_rx.clone(),
        )),
        None => cluster::start(&config, Arc::clone(&shared), stop_rx.clone())
            .await
            .map_err(ServeError::Cluster)?,
    };
    let timers = tokio::spawn(server::run_hub_timers(Arc::clone(&shared), stop_rx.clone()));
    let direct_writes = tokio::spawn(server::run_direct_writes(
        Arc::clone(&shared),
        stop_rx.clone(),
    ));
    let recordings = tokio::spawn(server::run_recordings(Arc::clone(&shared), stop_rx.clone()));
    // Relays need their task only where some can exist: apps with `push`
    // or `pull`, an admin API that adds pushes, or a cluster whose nodes
    // pull each other's streams.
    let relays = (shared.relays().configured()
        || config.http.admin_token.is_some()
        || config.cluster.is_some())
    .then(|| {
        tokio::spawn(Arc::clone(shared.relays()).run(
            Arc::clone(&shared),
            0x7e1a_7e1a,
            stop_rx.clone(),
        ))
    });
    let rtmp_task = tokio::spawn(server::serve_rtmp(
        Arc::clone(&shared),
        rtmp,
        stop_rx.clone(),
    ));
    let http_task = tokio::spawn(server::serve_http(
        Arc::clone(&shared),
        http,
        stop_rx.clone(),
    ));
    let mut tls_tasks = Vec::new();
    if let Some(setup) = &secure.setup {
        if let Some(listener) = secure.rtmps {
            tls_tasks.push(tokio::spawn(tls::serve_rtmps(
                Arc::clone(&shared),
                listener,
                setup.rtmps.clone(),
                stop_rx.clone(),
            )));
        }
        if let Some(listener) = secure.https {
            tls_tasks.push(tokio::spawn(tls::serve_https(
                Arc::clone(&shared),
                listener,
                setup.https.clone(),
                stop_rx.clone(),
            )));
        }
        // Only a server with certificates handles SIGHUP: elsewhere (the
        // simulator, embedders' runtimes) the signal stays the host's.
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(ServeError::Signals)?;
        tls_tasks.push(tokio::spawn({
            let certs = Arc::clone(&setup.certs);
            let stop = stop_rx.clone();
            async move {
                tls::reload_on_sighup(certs, hangup, stop).await;
                Ok(())
            }
        }));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    server::close_all(&shared, "server shutting down");
    let (rtmp_result, http_result, _, _, _) =
        tokio::join!(rtmp_task, http_task, timers, direct_writes, recordings);
    if let Some(relays) = relays {
        let _ = relays.await;
    }
    if let Some(task) = cluster {
        let _ = task.await;
    }
    let mut results = vec![rtmp_result, http_result];
    for task in tls_tasks {
        results.push(task.await);
    }
    for result in results {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ServeError::Io(e)),
            Err(e) => return Err(ServeError::Io(io::Error::other(e))),
        }
    }
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
        config.server.rtmp_bind = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = dir.path().to_owned();
        let err = serve_until(config, async {}).await.unwrap_err();
        assert!(matches!(err, ServeError::Bind { what: "HTTP", .. }));
        assert!(
            err.to_string()
                .contains("cannot listen for HTTP on 127.0.0.1:")
        );
    }

    /// Answers `/healthz` and the RTMP handshake while running, then stops
    /// when the shutdown future resolves and releases its ports.
    #[tokio::test]
    async fn serves_until_shutdown() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_owned();
        let rtmp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (rtmp_addr, http_addr) = (rtmp.local_addr().unwrap(), http.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(config, rtmp, http, async {
            let _ = stopped.await;
        }));

        let within = std::time::Duration::from_secs(10);
        let healthz = async {
            let mut client = TcpStream::connect(http_addr).await.unwrap();
            client
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut response = Vec::new();
            client.read_to_end(&mut response).await.unwrap();
            String::from_utf8_lossy(&response).into_owned()
        };
        let response = tokio::time::timeout(within, healthz)
            .await
            .expect("no answer to /healthz within 10 s");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");

        // C0 + C1: the server answers S0 (version 3) and a 1536-byte S1.
        let handshake = async {
            let mut client = TcpStream::connect(rtmp_addr).await.unwrap();
            let mut c0c1 = vec![0u8; 1537];
            c0c1[0] = 3;
            client.write_all(&c0c1).await.unwrap();
            let mut s0s1 = vec![0u8; 1537];
            client.read_exact(&mut s0s1).await.unwrap();
            s0s1
        };
        let s0s1 = tokio::time::timeout(within, handshake)
            .await
            .expect("no S0+S1 within 10 s");
        assert_eq!(s0s1[0], 3, "S0 version");
        assert!(!server.is_finished(), "stopped before the shutdown signal");

        stop.send(()).unwrap();
        let result = tokio::time::timeout(within, server)
            .await
            .expect("server did not stop within 10 s of the shutdown signal");
        result.unwrap().unwrap();
        assert!(
            TcpStream::connect(http_addr).await.is_err(),
            "HTTP port still accepting after shutdown"
        );
    }
}
