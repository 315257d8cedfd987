//! The receiver's throwaway certificates: a test CA, its leaves, a self-signed one.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as ring_provider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// A certificate chain plus its PKCS#8 private key.
#[derive(Clone)]
pub(super) struct CertKey {
    cert_pem: String,
    key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl CertKey {
    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    pub(super) fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            ring_provider::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key_der())
        .map_err(io::Error::other)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Self-signed leaf (not trusted by anybody) for `localhost` and 127.0.0.1.
    pub(super) fn self_signed_localhost() -> CertKey {
        let mut params = leaf_params(&["localhost", "127.0.0.1"]);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Untrusted self-signed");
        let key = rcgen::KeyPair::generate().expect("generate key");
        let cert = params.self_signed(&key).expect("self-sign leaf");
        CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    }
}

fn leaf_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone()).expect("leaf params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A throwaway certificate authority, generated in memory, with a leaf for
/// `localhost` + `127.0.0.1` and a leaf for a wrong host name, both signed by it.
#[derive(Clone)]
pub struct TestCa {
    /// The CA certificate, PEM (what `courier serve --ca-file` wants).
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
    pub(super) leaf: CertKey,
    pub(super) wrong_name: CertKey,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Generates a fresh CA and its leaves. Panics if generation fails (test setup).
    pub fn new() -> TestCa {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Courier Test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().expect("generate CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let sign = |names: &[&str]| -> CertKey {
            let key = rcgen::KeyPair::generate().expect("generate leaf key");
            let cert = leaf_params(names)
                .signed_by(&key, &issuer)
                .expect("sign leaf");
            CertKey {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                chain: vec![cert.der().clone()],
                key_pkcs8: key.serialize_der(),
            }
        };
        let leaf = sign(&["localhost", "127.0.0.1"]);
        let wrong_name = sign(&["wrong-host.invalid"]);
        TestCa {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf,
            wrong_name,
        }
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.ca_pem.as_bytes())
    }

    /// PEM of the `localhost`/`127.0.0.1` leaf certificate signed by this CA.
    pub fn leaf_cert_pem(&self) -> &str {
        &self.leaf.cert_pem
    }

    /// PEM (PKCS#8) of the leaf's private key.
    pub fn leaf_key_pem(&self) -> &str {
        &self.leaf.key_pem
    }

    /// Writes the good leaf certificate and key (PEM) to the given paths.
    pub fn write_leaf_pem(&self, cert_path: &Path, key_path: &Path) -> io::Result<()> {
        std::fs::write(cert_path, self.leaf.cert_pem.as_bytes())?;
        std::fs::write(key_path, self.leaf.key_pem.as_bytes())
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("add test CA to root store");
        roots
    }

    /// A rustls client config (ring provider) trusting only this CA, ALPN http/1.1.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            ring_provider::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(self.root_store())
        .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        cfg
    }

    /// A rustls server config (ring provider) presenting the good leaf.
    pub fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        self.leaf.server_config()
    }
}
