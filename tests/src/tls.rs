//! Test certificates made on the spot with rcgen: a private CA and a server
//! certificate it signed for `localhost` and `127.0.0.1`, written as PEM
//! files the way an operator would hand them to `greenmesh up --tls-cert`.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// PEM files in a folder: the CA's certificate, and the server's chain and key.
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestPki {
    /// Makes a CA named `ca_name` and a server certificate it signed, in `dir`.
    pub fn new(dir: &Path, ca_name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let pki = Self {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        std::fs::write(&pki.ca_cert, ca.pem()).unwrap();
        std::fs::write(&pki.server_cert, server.pem()).unwrap();
        std::fs::write(&pki.server_key, server_key.serialize_pem()).unwrap();
        pki
    }

    /// What `greenmesh up --tls-cert --tls-key` is given.
    pub fn server_tls(&self) -> greenmesh_host::Tls {
        greenmesh_host::Tls {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
        }
    }
}
