//! TLS setup shared by the `wss` examples (and their tests): a self-signed certificate for
//! `localhost` and `127.0.0.1`, made at start with rcgen, and the rustls configurations that
//! serve it and trust it. A real server loads its certificate and key from files instead.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A rustls server configuration with a fresh self-signed certificate, the certificate (for
/// clients to trust) and its PEM text.
pub fn self_signed_server(
) -> Result<(Arc<rustls::ServerConfig>, CertificateDer<'static>, String), Box<dyn std::error::Error>>
{
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    Ok((Arc::new(config), cert, certified.cert.pem()))
}

/// A rustls client configuration that trusts `cert` alone.
pub fn client_trusting(
    cert: CertificateDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
