//! TLS for the RTMPS and HTTPS/WSS ports: rustls (ring provider) through
//! tokio-rustls, no OpenSSL.
//!
//! - [`Certificates`] holds the certificate chain and key from `[tls]`
//!   and hands them to every new handshake (it is rustls'
//!   [`ResolvesServerCert`]). [`Certificates::reload`] reads the files
//!   again (on SIGHUP, [`reload_on_sighup`]); a file that does not load
//!   keeps the old certificate and says why. Connections already open keep
//!   the session they have: nothing is dropped.
//! - [`Tls`] is one acceptor per port kind (ALPN `http/1.1` on the HTTPS
//!   port, none for RTMPS) over the same certificates, with a handshake
//!   deadline: a handshake not done within `tls.handshake_timeout_secs` is
//!   cut off, like an RTMP handshake that stalls.
//! - [`serve_rtmps`] and [`serve_https`] are the accept loops: each
//!   connection does its handshake on its own task, then is served exactly
//!   as on the plain ports (`server`). A TLS connection has no socket
//!   descriptor the server may write to directly, so its shared-object
//!   notices always go through its task (see `direct_write`).
//!
//! The simulator runs the plain ports only (turmoil has no use for
//! certificates); the TLS layer is tested end to end in
//! `tests/tests/e2e/tls.rs`.

use crate::config::TlsConfig;
use crate::net::Listener;
use crate::server::{self, Shared};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, error, info};

/// Why a certificate or key could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The certificate file holds no PEM certificate (or a broken one).
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if it said anything.
        detail: Option<String>,
    },
    /// The key file holds no usable private key.
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser or the signer said.
        detail: String,
    },
    /// The key is not the key of the certificate.
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// `[tls]` has no `cert` or no `key`.
    NotConfigured,
    /// rustls refused the configuration.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            TlsError::NoCertificate { path, detail } => {
                write!(f, "{}: no PEM certificate", path.display())?;
                match detail {
                    Some(d) => write!(f, " ({d})"),
                    None => Ok(()),
                }
            }
            TlsError::NoKey { path, detail } => {
                write!(f, "{}: no usable private key ({detail})", path.display())
            }
            TlsError::Mismatch { cert, key } => write!(
                f,
                "the key in {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::NotConfigured => f.write_str("tls.cert and tls.key are not set"),
            TlsError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The certificate every new TLS handshake gets, replaceable while the
/// server runs.
#[derive(Debug)]
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Loads `[tls] cert` and `key`.
    pub fn load(config: &TlsConfig) -> Result<Certificates, TlsError> {
        let (Some(cert_path), Some(key_path)) = (&config.cert, &config.key) else {
            return Err(TlsError::NotConfigured);
        };
        let current = load_certified_key(cert_path, key_path)?;
        Ok(Certificates {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again. On success new handshakes get the new
    /// certificate; on failure the old one stays. Open connections are not
    /// touched either way.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load_certified_key(&self.cert_path, &self.key_path)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// The certificate chain (DER, leaf first) new handshakes get.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().cert.clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Reads a PEM chain and key and checks that they belong together.
fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert_path.to_owned(),
            detail: Some(e.to_string()),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
            detail: None,
        });
    }
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key_path.to_owned(),
        detail: e.to_string(),
    })?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsError::NoKey {
            path: key_path.to_owned(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // The certificate's key could not be compared (an unusual key
        // type): rustls will find out at the handshake.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        }),
        Err(e) => Err(TlsError::Rustls(e)),
    }
}

/// One TLS acceptor with its handshake deadline.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a TLS connection did not get past its handshake.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsHandshakeError {
    /// Not done within the deadline.
    TimedOut(Duration),
    /// The peer's bytes were not TLS, or the handshake failed.
    Failed(io::Error),
}

impl fmt::Display for TlsHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsHandshakeError::TimedOut(d) => {
                write!(f, "TLS handshake not done within {} s", d.as_secs())
            }
            TlsHandshakeError::Failed(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for TlsHandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsHandshakeError::Failed(e) => Some(e),
            TlsHandshakeError::TimedOut(_) => None,
        }
    }
}

impl Tls {
    /// An acceptor over `certs`, offering `alpn` (e.g. `http/1.1`; empty:
    /// no ALPN) and sending `tickets` TLS 1.3 session tickets after each
    /// handshake (0: none, no resumption).
    pub fn new(
        certs: Arc<Certificates>,
        alpn: &[&[u8]],
        tickets: usize,
        handshake_timeout: Duration,
    ) -> Result<Tls, TlsError> {
        // ring, not aws-lc-rs (which needs cmake and a long C build here):
        // rustls 0.23.48 marks ring's provider deprecated because it has no
        // post-quantum key exchange (X25519MLKEM768). Classical X25519 and
        // the P-curves are what ffmpeg (GnuTLS), browsers and Python
        // negotiate with it; docs/security.md says so.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(certs);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.send_tls13_tickets = tickets;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
        })
    }

    /// Runs the server side of the handshake on `stream`, within the
    /// deadline.
    pub async fn accept<S: crate::net::Stream>(
        &self,
        stream: S,
    ) -> Result<TlsStream<S>, TlsHandshakeError> {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(TlsHandshakeError::Failed(e)),
            Err(_) => Err(TlsHandshakeError::TimedOut(self.handshake_timeout)),
        }
    }
}

/// The TLS side of a server: the certificates and the two acceptors.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The certificates both acceptors use.
    pub certs: Arc<Certificates>,
    /// For `server.rtmps_bind`.
    pub rtmps: Tls,
    /// For `server.https_bind` (ALPN `http/1.1`).
    pub https: Tls,
}

impl TlsSetup {
    /// Loads the certificates of `config` and builds both acceptors.
    pub fn load(config: &TlsConfig) -> Result<TlsSetup, TlsError> {
        let certs = Arc::new(Certificates::load(config)?);
        let timeout = Duration::from_secs(config.handshake_timeout_secs.max(1));
        Ok(TlsSetup {
            // No TLS 1.3 session tickets on RTMPS: librtmp (rtmpdump, and
            // every tool built on it) with GnuTLS fails its RTMP handshake
            // when a ticket arrives after the TLS handshake, and RTMP
            // clients reconnect seldom enough not to need resumption.
            rtmps: Tls::new(Arc::clone(&certs), &[], 0, timeout)?,
            // Browsers reconnect often: rustls' default of 2 tickets.
            https: Tls::new(Arc::clone(&certs), &[b"http/1.1"], 2, timeout)?,
            certs,
        })
    }
}

/// Accepts RTMPS connections until `shutdown` flips: each does its TLS
/// handshake on its own task, then is served as an RTMP connection.
pub async fn serve_rtmps<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    tls: Tls,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    server::accept_loop("RTMPS", listener, shutdown, move |stream, peer| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        async move {
            match tls.accept(stream).await {
                Ok(stream) => server::serve_rtmp_connection(shared, stream, None, peer).await,
                Err(e) => info!("{e}"),
            }
        }
        .instrument(tracing::info_span!("rtmps", %peer))
    })
    .await
}

/// Accepts HTTPS connections until `shutdown` flips: each does its TLS
/// handshake on its own task, then is served as on the HTTP port (pages,
/// APIs, WebSocket upgrades: wss://).
pub async fn serve_https<L: Listener>(
    shared: Arc<Shared>,
    listener: L,
    tls: Tls,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    server::accept_loop("HTTPS/WSS", listener, shutdown, move |stream, peer| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        async move {
            match tls.accept(stream).await {
                Ok(stream) => server::serve_http_connection(shared, stream, None, peer).await,
                Err(e) => info!("{e}"),
            }
        }
        .instrument(tracing::info_span!("https", %peer))
    })
    .await
}

/// Reloads `certs` on every SIGHUP that `hangup` (a
/// `tokio::signal::unix::signal(SignalKind::hangup())`, installed before
/// the server says it is ready) receives, until `shutdown` flips. A reload
/// that fails is logged with its reason and the old certificate stays.
pub async fn reload_on_sighup(
    certs: Arc<Certificates>,
    mut hangup: tokio::signal::unix::Signal,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            () = server::stopped(&mut shutdown) => return,
            got = hangup.recv() => {
                if got.is_none() {
                    return;
                }
                match certs.reload() {
                    Ok(()) => info!(
                        cert = %certs.cert_path.display(),
                        "SIGHUP: TLS certificate reloaded; new connections get it"
                    ),
                    Err(e) => error!(
                        "SIGHUP: TLS certificate not reloaded, keeping the old one: {e}"
                    ),
                }
            }
        }
    }
}
