//! TLS for `spin:postgres` connections, by the address's `sslmode`, as
//! libpq reads it.
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | – |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | yes | no, unless a private CA is configured (then as `verify-ca`) |
//! | `verify-ca` | yes | chains to the private CA |
//! | `verify-full` | yes | chains to a public CA or the private one, and names the host |
//!
//! Trusted CAs: for `verify-full`, the public roots (`webpki-roots`, built
//! in) plus the private CA in the PEM file `GREENMESH_POSTGRES_CA_CERT`
//! names, read when the app loads. `verify-ca` trusts the private CA only:
//! without the host name check, any certificate a public CA issued for any
//! domain would pass (as libpq, it is refused with no CA of its own). The
//! file is the host's setting: an address cannot name files (`sslrootcert`
//! is refused), so a guest cannot make the host read one.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted, certificate not checked (`prefer`, `require`).
    Nothing,
    /// The chain to a trusted CA (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// The CA file setting.
pub const CA_CERT_VARIABLE: &str = "GREENMESH_POSTGRES_CA_CERT";

/// `address` as tokio-postgres reads it (it knows `disable`, `prefer` and
/// `require`), and how the certificate is to be checked (`private_ca`:
/// whether the host trusts a CA of its own, which makes `require` check
/// the chain, as libpq does with a root certificate file).
pub fn sslmode(address: &str, private_ca: bool) -> Result<(String, Verify), String> {
    if address.contains("sslrootcert") || address.contains("sslcert") || address.contains("sslkey")
    {
        return Err(format!(
            "certificate files cannot be named in a database address; the host trusts the public CAs and the file {CA_CERT_VARIABLE} names"
        ));
    }
    if address.contains("sslmode=verify-full") {
        return Ok((
            address.replace("sslmode=verify-full", "sslmode=require"),
            Verify::Full,
        ));
    }
    if address.contains("sslmode=verify-ca") {
        if !private_ca {
            return Err(format!(
                "sslmode=verify-ca checks the chain but not the host name, so it needs a CA of your own ({CA_CERT_VARIABLE}); with a public CA use sslmode=verify-full"
            ));
        }
        return Ok((
            address.replace("sslmode=verify-ca", "sslmode=require"),
            Verify::Chain,
        ));
    }
    let verify = if address.contains("sslmode=require") && private_ca {
        Verify::Chain
    } else {
        Verify::Nothing
    };
    Ok((address.to_string(), verify))
}

/// The connector for a pool whose certificates are checked as `verify`
/// says, against the public roots and `private_ca`.
pub fn connector(
    verify: Verify,
    private_ca: &[CertificateDer<'static>],
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = |public: bool| {
        WebPkiServerVerifier::builder_with_provider(
            Arc::new(trusted_roots(public, private_ca)?),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("trusted CAs: {e}"))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Full => chain(true)?,
        Verify::Chain => Arc::new(NameUnchecked {
            provider: provider.clone(),
            chain: Some(chain(false)?),
        }),
        Verify::Nothing => Arc::new(NameUnchecked {
            provider: provider.clone(),
            chain: None,
        }),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `private_ca`, with the public roots when `public`.
fn trusted_roots(
    public: bool,
    private_ca: &[CertificateDer<'static>],
) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if public {
        roots.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    }
    for cert in private_ca {
        roots
            .add(cert.clone())
            .map_err(|e| format!("{CA_CERT_VARIABLE}: {e}"))?;
    }
    Ok(roots)
}

/// The certificates in the PEM file at `path` (`CA_CERT_VARIABLE`), read
/// when the app loads so a wrong file stops startup with the reason.
pub fn read_private_ca(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{CA_CERT_VARIABLE}={path}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{CA_CERT_VARIABLE}={path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{CA_CERT_VARIABLE}={path}: no PEM certificate in the file"
        ));
    }
    // Each must be usable as a trust anchor.
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe
            .add(cert.clone())
            .map_err(|e| format!("{CA_CERT_VARIABLE}={path}: {e}"))?;
    }
    Ok(certs)
}

/// `prefer`, `require` and `verify-ca` as libpq has them: encrypted, and
/// the handshake's signatures checked; the chain to a trusted CA only when
/// `chain` is there (`verify-ca`), and the host name never (a certificate
/// naming another host is accepted).
#[derive(Debug)]
struct NameUnchecked {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_become_require_with_their_check() {
        let (a, v) = sslmode("postgres://u@db.example:5432/g?sslmode=verify-full", false).unwrap();
        assert_eq!(
            (a.as_str(), v),
            (
                "postgres://u@db.example:5432/g?sslmode=require",
                Verify::Full
            )
        );
        let (a, v) = sslmode("host=db.example sslmode=verify-ca dbname=g", true).unwrap();
        assert_eq!(
            (a.as_str(), v),
            ("host=db.example sslmode=require dbname=g", Verify::Chain)
        );
        let (_, v) = sslmode("postgres://u@db.example/g", true).unwrap();
        assert_eq!(v, Verify::Nothing);
        // `require` checks the chain once the host trusts a CA of its own.
        assert_eq!(
            sslmode("postgres://h/g?sslmode=require", false).unwrap().1,
            Verify::Nothing
        );
        assert_eq!(
            sslmode("postgres://h/g?sslmode=require", true).unwrap().1,
            Verify::Chain
        );
    }

    #[test]
    fn verify_ca_without_a_private_ca_is_refused_since_any_public_certificate_would_pass() {
        let refused = sslmode("postgres://h/g?sslmode=verify-ca", false).unwrap_err();
        assert!(
            refused.contains("verify-full") && refused.contains(CA_CERT_VARIABLE),
            "{refused}"
        );
    }

    #[test]
    fn an_address_naming_a_host_file_as_its_root_certificate_is_refused() {
        let refused = sslmode(
            "postgres://u@h/g?sslmode=verify-full&sslrootcert=/etc/shadow",
            false,
        )
        .unwrap_err();
        assert!(refused.contains(CA_CERT_VARIABLE), "{refused}");
        assert!(sslmode("host=h sslkey=/root/.ssh/id_ed25519", false).is_err());
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_naming_the_setting() {
        let dir = std::env::temp_dir().join(format!("gm-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let refused = read_private_ca(file.to_str().unwrap()).unwrap_err();
        assert!(
            refused.contains(CA_CERT_VARIABLE) && refused.contains("no PEM"),
            "{refused}"
        );
        assert!(read_private_ca("/nonexistent/ca.pem")
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
