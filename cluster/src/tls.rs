//! [`Tls`]: mutual TLS between nodes, from PEM files.
//!
//! Every node of a cluster presents a certificate signed by the cluster's CA and accepts only
//! peers that do: a node without one cannot even reach the cookie challenge. Sessions are
//! ractor_cluster's own TLS (tokio-rustls, the ring provider).

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::ClusterError;

/// A node's TLS settings: its certificate and key, the CA its peers' certificates must chain
/// to, and the name peers' certificates are checked for.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// From PEM: this node's certificate chain and private key, the cluster's CA
    /// certificate(s), and the name every node's certificate is issued for (its subject
    /// alternative name, the same for the whole cluster: `warden-cluster`, say).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Tls`] for PEM that does not parse, a missing key, or a configuration
    /// rustls refuses.
    pub fn from_pem(cert_chain: &[u8], key: &[u8], ca: &[u8], server_name: &str) -> Result<Self, ClusterError> {
        let bad = |what: &str, e: &dyn fmt::Display| ClusterError::Tls(format!("{what}: {e}"));
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| bad("the certificate chain", &e))?;
        if chain.is_empty() {
            return Err(ClusterError::Tls("the certificate chain is empty".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("the private key", &e))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| bad("the CA", &e))?;
            roots.add(cert).map_err(|e| bad("the CA", &e))?;
        }
        if roots.is_empty() {
            return Err(ClusterError::Tls("no CA certificate".into()));
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| bad("the peer verifier", &e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("the server settings", &e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| bad("the server certificate", &e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("the client settings", &e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("the client certificate", &e))?;
        let server_name = ServerName::try_from(server_name.to_string()).map_err(|e| bad("the server name", &e))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}
