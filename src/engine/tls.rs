//! TLS settings shared by the backends: the native backend's rustls configuration ([`config`],
//! with the `tls.insecure` verifier) and the certificates of `tls.ca_file` ([`ca_file_certs`]),
//! which the reqwest backend adds to its own roots.
//!
//! A leaf: the handshake itself is the connector's (`connect`) or reqwest's. Each configuration
//! is built once per profile, never per connection.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::EngineError;
use crate::scenario::{HttpVersion, Profile};

/// The certificates of a `tls.ca_file` (PEM), at least one.
pub(super) fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, EngineError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ca_file_error(path, &e))?;
    if certs.is_empty() {
        return Err(ca_file_error(path, &"no certificate found"));
    }
    Ok(certs)
}

/// The configuration error for a `tls.ca_file` that cannot be used.
pub(super) fn ca_file_error(path: &Path, e: &dyn std::fmt::Display) -> EngineError {
    EngineError::Config(format!("tls.ca_file {}: {e}", path.display()))
}

/// rustls with the ring provider (the crate is built without aws-lc).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The native backend's rustls configuration for a profile: the Mozilla roots (`webpki-roots`)
/// plus `tls.ca_file`, or any certificate with `tls.insecure`; ALPN from `http_version`.
pub(super) fn config(profile: &Profile) -> Result<ClientConfig, EngineError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Config(format!("TLS: {e}")))?;
    let mut config = if profile.tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &profile.tls.ca_file {
            for c in ca_file_certs(path)? {
                roots.add(c).map_err(|e| ca_file_error(path, &e))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match profile.http_version {
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `tls.insecure = true`: accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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
        dss: &rustls::DigitallySignedStruct,
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
