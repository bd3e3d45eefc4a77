//! HTTPS for the mock (`tls = true`): a throwaway CA and a server certificate made at start.
//!
//! In: the config and the bound port. Out: a rustls acceptor (ring provider, ALPN `h2` then
//! `http/1.1`) and the CA certificate written as PEM to a file, so a client profile can trust it
//! with `tls.ca_file`. The server certificate is valid for `localhost`, `127.0.0.1` and `::1`.
//! Keys live only in memory and die with the server; nothing here is fit to protect real traffic.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use super::config::MockConfig;

/// The names the server certificate is valid for.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A ready TLS setup.
pub(crate) struct Tls {
    /// Does the handshakes.
    pub acceptor: TlsAcceptor,
    /// Where the CA certificate was written.
    pub ca_file: PathBuf,
    /// True when `ca_file` is the default temp file, which the server removes when it stops.
    pub ca_file_is_temporary: bool,
}

/// Makes the certificates, writes the CA certificate and builds the acceptor.
pub(crate) fn setup(config: &MockConfig, port: u16) -> io::Result<Tls> {
    let made = make_certificates()
        .map_err(|e| io::Error::other(format!("cannot make the mock's certificate: {e}")))?;
    let (ca_file, ca_file_is_temporary) = match &config.ca_file {
        Some(path) => (path.clone(), false),
        None => (
            std::env::temp_dir().join(format!("connscope-mock-{port}-ca.pem")),
            true,
        ),
    };
    std::fs::write(&ca_file, made.ca_pem).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write the CA certificate to {}: {e}",
                ca_file.display()
            ),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(made.chain, made.key)
        })
        .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        ca_file,
        ca_file_is_temporary,
    })
}

struct Made {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A CA (ECDSA P-256) and a server certificate it signed.
fn make_certificates() -> Result<Made, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "connscope mock CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "connscope mock");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let cert = server.signed_by(&server_key, &ca)?;
    Ok(Made {
        ca_pem: ca.pem(),
        chain: vec![cert.der().clone(), ca.der().clone()],
        key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_ca_file_holds_one_pem_certificate_and_the_default_is_temporary() {
        let config = MockConfig {
            tls: true,
            ..MockConfig::default()
        };
        let tls = setup(&config, 1).unwrap();
        assert!(tls.ca_file_is_temporary);
        let certs: Vec<_> = CertificateDer::pem_file_iter(&tls.ca_file)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 1);
        let _ = std::fs::remove_file(&tls.ca_file);
    }

    #[test]
    fn an_unwritable_ca_file_is_an_error_that_names_it() {
        let config = MockConfig {
            tls: true,
            ca_file: Some(PathBuf::from("/nonexistent-dir/ca.pem")),
            ..MockConfig::default()
        };
        let e = setup(&config, 1).err().expect("fails");
        assert!(e.to_string().contains("/nonexistent-dir/ca.pem"), "{e}");
    }
}
