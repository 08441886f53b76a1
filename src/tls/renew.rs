//! Certificates the internal CA issued to rampart itself (its client
//! certificate, built-in origins' server certificates) are renewed by the
//! running process: [`renew_forever`] issues them again within 10 days of
//! expiry, and [`FileCert`], the resolver the TLS configurations use, reads
//! the files again when they change, so new handshakes use the new
//! certificate while open connections go on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::{ca, LoadedCert, TlsError};

/// How often issued certificates are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// A certificate and key kept in files, read again when the certificate
/// file changes.
#[derive(Debug)]
pub struct FileCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Mutex<(Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl FileCert {
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let stamp = modified(cert_path);
        let key = read_pair(cert_path, key_path)?;
        Ok(FileCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: Mutex::new((stamp, key)),
        })
    }

    /// The certificate as the files hold it now (the last good one when
    /// they cannot be read).
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = modified(&self.cert_path);
        if stamp != cur.0 {
            match read_pair(&self.cert_path, &self.key_path) {
                Ok(k) => *cur = (stamp, k),
                Err(e) => tracing::warn!("keeping the previous certificate: {e}"),
            }
        }
        cur.1.clone()
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = super::origin::read;
    let loaded = LoadedCert::from_pem(cert_path, &read(cert_path)?, key_path, &read(key_path)?)?;
    Ok(loaded.key)
}

impl ResolvesClientCert for FileCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// What rampart issues to itself: its client certificate (once a pool
/// has asked for it: renewed while its file exists), and each built-in
/// origin's certificate (name, names it holds).
#[derive(Debug, Clone, Default)]
pub struct OwnCerts {
    pub client: bool,
    pub origins: Vec<(String, Vec<String>)>,
}

impl OwnCerts {
    /// Issues again what is within 10 days of expiry; says what it issued.
    pub fn renew(&self, state_dir: &Path) -> Vec<String> {
        let mut done = Vec::new();
        let mut note = |what: String, r: Result<ca::Issued, TlsError>| match r {
            Ok(i) if i.issued_now => done.push(what),
            Ok(_) => {}
            Err(e) => tracing::error!("renewing {what}: {e}"),
        };
        if self.client && ca::client_cert_path(state_dir).exists() {
            note(
                "rampart's client certificate".into(),
                ca::ensure_client_cert(state_dir),
            );
        }
        for (name, names) in &self.origins {
            note(
                format!("origin `{name}`'s certificate"),
                ca::ensure_origin_cert(state_dir, name, names),
            );
        }
        done
    }
}

/// Looks at rampart's own certificates every [`CHECK_EVERY`] and issues
/// again those close to expiry, until the task is dropped.
pub async fn renew_forever(own: OwnCerts, state_dir: PathBuf) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        for what in own.renew(&state_dir) {
            tracing::info!("renewed {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_certificate_close_to_expiry_is_issued_again_and_served_without_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().to_path_buf();
        let first = ca::ensure_client_cert(&state).expect("issue");
        let resolver = FileCert::load(&first.cert_path, &first.key_path).expect("load");
        let before = resolver.current().cert[0].clone();
        // Make it a certificate 5 days from expiry, as time would.
        let short = ca::issue(&state, "short", &["rampart".to_string()], 5, true).expect("short");
        std::fs::copy(&short.cert_path, &first.cert_path).expect("copy cert");
        std::fs::copy(&short.key_path, &first.key_path).expect("copy key");
        let own = OwnCerts {
            client: true,
            origins: Vec::new(),
        };
        let task = tokio::spawn(renew_forever(own, state.clone()));
        // Within the first interval nothing is looked at.
        tokio::time::sleep(CHECK_EVERY / 2).await;
        let short_der = resolver.current().cert[0].clone();
        assert_ne!(short_der, before, "the resolver follows the files");
        tokio::time::sleep(CHECK_EVERY).await;
        let renewed = resolver.current().cert[0].clone();
        assert_ne!(renewed, short_der, "issued again within 10 days of expiry");
        let again = ca::ensure_client_cert(&state).expect("check");
        assert!(!again.issued_now && again.not_after > short.not_after + 20 * 86_400);
        task.abort();
    }
}
