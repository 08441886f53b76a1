//! A certificate chain and its key, loaded from PEM files and checked
//! against each other, with the facts `rampart check` reports on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A certificate ready to serve.
#[derive(Debug)]
pub struct LoadedCert {
    pub cert_path: PathBuf,
    pub key: Arc<CertifiedKey>,
    /// SNI names this certificate is selected for (configured, or else the
    /// names the certificate holds), lower-case; `*.x` for wildcards.
    pub sni_names: Vec<String>,
    /// DNS names (and IP addresses, as text) in the certificate.
    pub cert_names: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Something `rampart check` reports about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    Expired { path: String, not_after: i64 },
    NameMismatch { path: String, name: String },
}

impl std::fmt::Display for CertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertProblem::Expired { path, not_after } => write!(
                f,
                "{path}: the certificate expired at {} (renew it)",
                httpdate::fmt_http_date(
                    UNIX_EPOCH + std::time::Duration::from_secs((*not_after).max(0) as u64)
                )
            ),
            CertProblem::NameMismatch { path, name } => write!(
                f,
                "{path}: the certificate is configured for `{name}` but does not hold that name"
            ),
        }
    }
}

impl LoadedCert {
    /// Reads a PEM chain and key; `names` overrides the SNI names.
    pub fn load(cert: &Path, key: &Path, names: Option<Vec<String>>) -> Result<Self, TlsError> {
        let cert_pem = std::fs::read(cert).map_err(|source| TlsError::CertRead {
            path: cert.display().to_string(),
            source,
        })?;
        let key_pem = std::fs::read(key).map_err(|source| TlsError::Key {
            path: key.display().to_string(),
            reason: source.to_string(),
        })?;
        Self::from_pem(cert, &cert_pem, key, &key_pem, names)
    }

    /// Builds from PEM bytes already in memory.
    pub fn from_pem(
        cert_path: &Path,
        cert_pem: &[u8],
        key_path: &Path,
        key_pem: &[u8],
        names: Option<Vec<String>>,
    ) -> Result<Self, TlsError> {
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
        let (cert_names, not_after) = inspect(leaf).map_err(|reason| TlsError::CertParse {
            path: cpath.clone(),
            reason,
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
            path: key_path.display().to_string(),
            reason: format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        })?;
        let certified =
            CertifiedKey::from_der(chain, key, &super::provider()).map_err(|e| TlsError::Key {
                path: key_path.display().to_string(),
                reason: format!("{e} (does the key belong to {cpath}?)"),
            })?;
        let sni_names = match names {
            Some(n) => n.into_iter().map(|s| s.to_ascii_lowercase()).collect(),
            None => cert_names.iter().map(|s| s.to_ascii_lowercase()).collect(),
        };
        Ok(LoadedCert {
            cert_path: cert_path.to_path_buf(),
            key: Arc::new(certified),
            sni_names,
            cert_names,
            not_after,
        })
    }

    /// Problems worth reporting: expiry, and configured names the
    /// certificate does not cover.
    pub fn problems(&self) -> Vec<CertProblem> {
        let path = self.cert_path.display().to_string();
        let mut out = Vec::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if self.not_after < now {
            out.push(CertProblem::Expired {
                path: path.clone(),
                not_after: self.not_after,
            });
        }
        for n in &self.sni_names {
            if !self.cert_names.iter().any(|c| covers(c, n)) {
                out.push(CertProblem::NameMismatch {
                    path: path.clone(),
                    name: n.clone(),
                });
            }
        }
        out
    }
}

/// Does certificate name `cert` (maybe `*.x`) cover SNI entry `name` (maybe `*.x`)?
fn covers(cert: &str, name: &str) -> bool {
    let (cert, name) = (cert.to_ascii_lowercase(), name.to_ascii_lowercase());
    if cert == name {
        return true;
    }
    match cert.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && first != "*" && rest == suffix),
        None => false,
    }
}

/// Names and expiry of a DER certificate.
fn inspect(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
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
    Ok((names, cert.validity().not_after.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn wildcard_cover() {
        assert!(covers("example.com", "EXAMPLE.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("a.example.com", "b.example.com"));
    }
}
