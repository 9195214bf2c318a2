//! The tokio connector: TCP, and for `rtmps://` targets TLS with rustls.
//!
//! Certificates are checked against the system's roots (the CA bundle
//! Debian, Alpine and Red Hat keep in `/etc/ssl` or `/etc/pki`) plus the
//! PEM certificates of `[tls] extra_ca`. `tls_verify = false`, written
//! explicitly, accepts any certificate (still TLS, no authentication): for
//! test rigs and self-signed targets one cannot add a CA for.

use super::{Connector, RelayError, Target};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// Where distributions keep their CA bundle (the first that loads wins).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Opens TCP (and TLS) connections with tokio.
#[derive(Clone)]
pub struct TokioConnector {
    /// The TLS client settings, or why they did not load (then only
    /// `rtmps` targets fail, each attempt saying why).
    tls: Result<Arc<ClientConfig>, String>,
}

impl std::fmt::Debug for TokioConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioConnector").finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // ring, as for the server side (tls.rs says why it is marked deprecated).
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TokioConnector {
    /// A connector trusting the system's roots and `extra_ca` (a PEM file
    /// of one or more certificates), or any certificate if `!verify`. If
    /// the TLS settings do not load, plain targets still work; see
    /// [`tls_error`](Self::tls_error).
    pub fn new(extra_ca: Option<&Path>, verify: bool) -> Self {
        TokioConnector {
            tls: client_config(extra_ca, verify).map(Arc::new),
        }
    }

    /// Why the TLS settings did not load, if they did not.
    pub fn tls_error(&self) -> Option<&str> {
        self.tls.as_ref().err().map(String::as_str)
    }
}

fn client_config(extra_ca: Option<&Path>, verify: bool) -> Result<ClientConfig, String> {
    {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client: {e}"))?;
        let config = if verify {
            let mut roots = RootCertStore::empty();
            for path in SYSTEM_BUNDLES {
                if let Ok(certs) = CertificateDer::pem_file_iter(path) {
                    let (added, _) = roots.add_parsable_certificates(certs.flatten());
                    if added > 0 {
                        break;
                    }
                }
            }
            if let Some(path) = extra_ca {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("tls.extra_ca {}: {e}", path.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("tls.extra_ca {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "tls.extra_ca {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("tls.extra_ca {}: {e}", path.display()))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth()
        };
        Ok(config)
    }
}

impl Connector for TokioConnector {
    type Stream = Box<dyn crate::net::Stream>;

    async fn connect(&self, target: &Target) -> Result<Self::Stream, RelayError> {
        let address = target.address();
        let tcp = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| RelayError::Connect(format!("{address}: {e}")))?;
        // Media is written in large pieces already; commands should not wait.
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(Box::new(tcp));
        }
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| RelayError::Tls(format!("{}: {e}", target.host)))?;
        let config = self.tls.as_ref().map_err(|e| RelayError::Tls(e.clone()))?;
        let tls = TlsConnector::from(Arc::clone(config))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let hint = if e.to_string().contains("certificate") {
                    " (add its CA with [tls] extra_ca, or set tls_verify = false)"
                } else {
                    ""
                };
                RelayError::Tls(format!("{address}: {e}{hint}"))
            })?;
        Ok(Box::new(tls))
    }
}

/// `tls_verify = false`: every certificate is accepted; signatures are
/// still checked (the handshake stays sound, only who is at the far end
/// is not known).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
