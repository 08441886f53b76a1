//! A certificate chain and its key, checked against each other: the check
//! the config loader runs through [`SystemEnv`](super::SystemEnv), and the
//! signing key built from a checked [`CertSpec`] to serve it.

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use crate::config::model::CertSpec;
use crate::config::CertFacts;

/// A certificate ready to serve.
#[derive(Debug)]
pub struct LoadedCert {
    /// Where it came from and what it holds.
    pub spec: CertSpec,
    pub key: Arc<CertifiedKey>,
}

impl LoadedCert {
    /// The signing key of a certificate checked at load.
    pub fn from_spec(spec: &CertSpec) -> Result<Self, TlsError> {
        let (key, _) = check_pair(
            &spec.cert_path,
            &spec.cert_pem.0,
            &spec.key_path,
            spec.key_pem.expose(),
        )?;
        Ok(LoadedCert {
            spec: spec.clone(),
            key: Arc::new(key),
        })
    }

    /// Builds from PEM bytes in memory; the SNI names are the certificate's.
    pub fn from_pem(
        cert_path: &Path,
        cert_pem: &[u8],
        key_path: &Path,
        key_pem: &[u8],
    ) -> Result<Self, TlsError> {
        let (key, facts) = check_pair(cert_path, cert_pem, key_path, key_pem)?;
        Ok(LoadedCert {
            spec: CertSpec::new(
                cert_path.to_path_buf(),
                cert_pem,
                key_path.to_path_buf(),
                key_pem,
                None,
                facts,
            ),
            key: Arc::new(key),
        })
    }
}

/// Parses a PEM chain (leaf first) and key and checks that they belong
/// together: the signing key, and what the leaf holds.
pub(super) fn check_pair(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<(CertifiedKey, CertFacts), TlsError> {
    let cpath = cert_path.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::CertParse {
            path: cpath.clone(),
            reason: e.to_string(),
        })?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::NoCert { path: cpath.clone() })?;
    let (cert_names, not_after, issuer) = inspect(leaf).map_err(|reason| TlsError::CertParse {
        path: cpath.clone(),
        reason,
    })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    let short_rsa = rsa_bits(leaf).filter(|b| *b < 2048);
    let certified = CertifiedKey::from_der(chain, key, &super::provider()).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: match short_rsa {
            Some(bits) => format!("a {bits}-bit RSA key is too weak: use at least 2048 bits, or ECDSA"),
            None => format!("{e} (does the key belong to {cpath}?)"),
        },
    })?;
    Ok((
        certified,
        CertFacts {
            cert_names,
            not_after,
            issuer,
        },
    ))
}

/// The size of a certificate's RSA key, if it is one.
fn rsa_bits(der: &CertificateDer<'_>) -> Option<usize> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    match cert.public_key().parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(k) => Some(k.key_size()),
        _ => None,
    }
}

/// Names and expiry of a DER certificate.
fn inspect(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64, String), String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        names.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        names.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_string());
            }
        }
    }
    Ok((names, cert.validity().not_after.timestamp(), issuer_name(&cert)))
}

/// Who signed a certificate, as people name it: the issuer's common name
/// (with its organisation when it has one), else the whole name.
fn issuer_name(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let issuer = cert.issuer();
    let cn = issuer
        .iter_common_name()
        .find_map(|a| a.as_str().ok().map(str::to_string));
    let org = issuer
        .iter_organization()
        .find_map(|a| a.as_str().ok().map(str::to_string));
    match (cn, org) {
        (Some(cn), Some(o)) if !cn.contains(&o) => format!("{cn} ({o})"),
        (Some(cn), _) => cn,
        (None, Some(o)) => o,
        (None, None) => issuer.to_string(),
    }
}

/// A client certificate's subject, SANs and SHA-256 fingerprint.
pub(super) fn peer_identity(der: &[u8]) -> Option<super::handshake::PeerCert> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::RFC822Name(m) => sans.push(format!("email:{m}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => sans.push(format!(
                        "IP:{}",
                        std::net::Ipv4Addr::from([b[0], b[1], b[2], b[3]])
                    )),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        sans.push(format!("IP:{}", std::net::Ipv6Addr::from(a)));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let digest = suite.common.hash_provider.hash(der);
    let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Some(super::handshake::PeerCert {
        subject: cert.subject().to_string(),
        sans,
        sha256,
    })
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (what `pin_sha256`
/// names): `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der
/// | openssl dgst -sha256` gives the same.
pub(super) fn spki_sha256(der: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let digest = suite.common.hash_provider.hash(cert.public_key().raw);
    digest.as_ref().try_into().ok()
}
