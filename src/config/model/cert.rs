//! A listener's certificate as the validated model holds it: where it came
//! from, the PEM text read at load (the key's hidden from `Debug`), and
//! what was found in it then. The tls module builds its signing key from
//! this; `rampart check` and `rampart run` report its [`CertProblem`]s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::env::CertFacts;

/// A certificate chain and its key, checked against each other at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The PEM chain, leaf first.
    pub cert_pem: Pem,
    pub key_pem: KeyPem,
    /// SNI names this certificate is selected for (configured, or else the
    /// names the certificate holds), lower-case; `*.x` for wildcards.
    pub sni_names: Vec<String>,
    /// DNS names (and IP addresses, as text) in the certificate.
    pub cert_names: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
    /// Who signed it.
    pub issuer: String,
}

/// PEM text; `Debug` gives its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(pub Arc<[u8]>);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes of PEM>", self.0.len())
    }
}

/// A private key's PEM text; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem(Arc<[u8]>);

impl KeyPem {
    pub fn new(pem: impl Into<Arc<[u8]>>) -> Self {
        KeyPem(pem.into())
    }

    /// The key itself, for building the signing key.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl CertSpec {
    /// A checked pair; `names` (the configured SNI names) overrides the
    /// names the certificate holds.
    pub fn new(
        cert_path: PathBuf,
        cert_pem: impl Into<Arc<[u8]>>,
        key_path: PathBuf,
        key_pem: impl Into<Arc<[u8]>>,
        names: Option<Vec<String>>,
        facts: CertFacts,
    ) -> Self {
        let sni_names = names
            .unwrap_or_else(|| facts.cert_names.clone())
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        CertSpec {
            cert_path,
            key_path,
            cert_pem: Pem(cert_pem.into()),
            key_pem: KeyPem::new(key_pem),
            sni_names,
            cert_names: facts.cert_names,
            not_after: facts.not_after,
            issuer: facts.issuer,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_cover() {
        assert!(covers("example.com", "EXAMPLE.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("a.example.com", "b.example.com"));
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let spec = CertSpec::new(
            "/c.pem".into(),
            b"CERT".to_vec(),
            "/k.pem".into(),
            b"SECRET KEY".to_vec(),
            None,
            CertFacts {
                cert_names: vec!["Example.com".into()],
                not_after: 0,
                issuer: String::new(),
            },
        );
        let shown = format!("{spec:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert_eq!(spec.sni_names, ["example.com"]);
    }
}
