//! Log output and the shutdown signal.
//!
//! Logs go to stderr through `tracing-subscriber`'s fmt layer. Connection
//! tasks run inside a span such as `rtmp{conn=7 peer=…}`, and the fmt layer
//! prints the open spans on every line, so every line about a connection
//! carries its id.

use std::fmt;
use std::future::Future;
use std::io;
use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoggingError {
    /// The filter (config level, `--log` or `RUST_LOG`) does not parse.
    BadFilter { filter: String, message: String },
    /// A global subscriber was already installed.
    AlreadyInstalled,
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::BadFilter { filter, message } => {
                write!(f, "invalid log filter {filter:?}: {message}")
            }
            LoggingError::AlreadyInstalled => f.write_str("logging is already initialised"),
        }
    }
}

impl std::error::Error for LoggingError {}

/// Where the log filter came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterSource {
    /// `level` was given explicitly (`--log`): use it, ignore `RUST_LOG`.
    Explicit,
    /// `level` is the configured default: `RUST_LOG`, when set and not
    /// empty, replaces it.
    Default,
}

/// The filter to use for `level` given `rust_log` (the value of
/// `RUST_LOG`, if set).
pub fn choose_filter(level: &str, source: FilterSource, rust_log: Option<&str>) -> String {
    match (source, rust_log.map(str::trim)) {
        (FilterSource::Default, Some(env)) if !env.is_empty() => env.to_owned(),
        _ => level.to_owned(),
    }
}

/// Installs the global subscriber writing to stderr.
pub fn init(level: &str, source: FilterSource) -> Result<(), LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = choose_filter(level, source, rust_log.as_deref());
    let env_filter = EnvFilter::builder()
        .parse(&filter)
        .map_err(|e| LoggingError::BadFilter {
            filter: filter.clone(),
            message: e.to_string(),
        })?;
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)
}

/// A signal that asks the server to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (service managers, `kill`).
    Terminate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Installs SIGINT and SIGTERM handlers now (so a failure shows at start,
/// and a signal arriving before the future is polled is not lost) and
/// returns a future that resolves with the first of them. Needs a tokio
/// runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> io::Result<impl Future<Output = Signal> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => Signal::Interrupt,
            _ = terminate.recv() => Signal::Terminate,
        }
    })
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
pub fn shutdown_signal() -> io::Result<impl Future<Output = Signal> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_replaces_the_configured_level_but_not_an_explicit_one() {
        assert_eq!(choose_filter("info", FilterSource::Default, None), "info");
        assert_eq!(
            choose_filter("info", FilterSource::Default, Some("debug")),
            "debug"
        );
        assert_eq!(
            choose_filter("info", FilterSource::Default, Some(" ")),
            "info"
        );
        assert_eq!(
            choose_filter("warn", FilterSource::Explicit, Some("debug")),
            "warn"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_resolves_the_shutdown_future() {
        let signal = shutdown_signal().unwrap();
        // Sent with the `kill` command: raising it in-process needs unsafe libc.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), signal)
            .await
            .unwrap();
        assert_eq!(got, Signal::Terminate);
    }
}
