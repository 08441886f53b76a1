//! Certificates from an ACME CA (`[listener.acme]`), through the
//! TLS-ALPN-01 challenge answered on the listener itself (RFC 8737): the
//! listener's resolver hands the challenge certificate to validators that
//! ask for ALPN `acme-tls/1`, and the issued certificate to everyone else
//! (the local certificate until the first one is issued). [`manage`] orders
//! the certificate on first start, stores it and the account atomically in
//! the state directory, swaps it in without dropping a connection, and
//! renews it at two thirds of its lifetime (with jitter, and backoff after
//! a failure).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{LoadedCert, TlsError};
use crate::config::model::AcmeSettings;

/// The ALPN protocol of TLS-ALPN-01 validations.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Waits after a failed order: from a minute, doubling, up to six hours.
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Publishes an HTTP-01 answer (token, key authorization), or withdraws it
/// (None), on rampart's plain listeners.
pub type Http01 = Arc<dyn Fn(&str, Option<String>) + Send + Sync>;

/// What a listener with ACME serves: the issued certificate, and the
/// challenge certificates of an order in progress (by name).
#[derive(Debug, Default)]
pub struct AcmeState {
    issued: ArcSwapOption<CertifiedKey>,
    /// The issued certificate's expiry (Unix seconds; 0 before one), for
    /// the certificate-expiry metric and alert.
    expiry: Arc<std::sync::atomic::AtomicI64>,
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl AcmeState {
    /// Shared with the metrics: the issued certificate's expiry.
    pub fn expiry(&self) -> Arc<std::sync::atomic::AtomicI64> {
        self.expiry.clone()
    }

    fn serve(&self, c: LoadedCert) {
        self.expiry
            .store(c.spec.not_after, std::sync::atomic::Ordering::Relaxed);
        self.issued.store(Some(c.key));
    }

    /// Whether a certificate from the CA is being served.
    pub fn has_certificate(&self) -> bool {
        self.issued.load().is_some()
    }
}

/// The resolver of a listener with ACME.
#[derive(Debug)]
pub(super) struct AcmeResolver {
    pub(super) state: Arc<AcmeState>,
    /// Until the first certificate: the listener's other certificates.
    pub(super) fallback: Arc<dyn ResolvesServerCert>,
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validation = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if validation {
            let name = hello.server_name()?.to_ascii_lowercase();
            let ch = self
                .state
                .challenges
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            return ch.get(&name).cloned();
        }
        self.state
            .issued
            .load_full()
            .or_else(|| self.fallback.resolve(hello))
    }
}

/// The ACME listeners of a running rampart: their state and the task that
/// manages each, kept across reloads while the settings stay the same
/// (the tasks end when this is dropped).
#[derive(Debug, Default)]
pub struct AcmeRegistry {
    inner: Mutex<HashMap<String, Managed>>,
}

#[derive(Debug)]
struct Managed {
    settings: AcmeSettings,
    state: Arc<AcmeState>,
    task: tokio::task::JoinHandle<()>,
}

impl AcmeRegistry {
    /// The expiry of listener `listener`'s issued certificate, if it has ACME.
    pub fn expiry(&self, listener: &str) -> Option<Arc<std::sync::atomic::AtomicI64>> {
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(listener).map(|m| m.state.expiry())
    }

    /// The state of listener `listener`'s certificate; a new one (and its
    /// task) when the listener is new or its settings changed.
    pub fn state_for(
        &self,
        listener: &str,
        s: &AcmeSettings,
        state_dir: &Path,
        http01: Http01,
    ) -> Arc<AcmeState> {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = all.get(listener).filter(|m| m.settings == *s) {
            return m.state.clone();
        }
        let state = Arc::new(AcmeState::default());
        let task = tokio::spawn(manage(
            listener.to_string(),
            s.clone(),
            state.clone(),
            state_dir.to_path_buf(),
            http01,
        ));
        if let Some(old) = all.insert(
            listener.to_string(),
            Managed {
                settings: s.clone(),
                state: state.clone(),
                task,
            },
        ) {
            old.task.abort();
        }
        state
    }
}

impl Drop for AcmeRegistry {
    fn drop(&mut self) {
        for m in self.inner.lock().unwrap_or_else(PoisonError::into_inner).values() {
            m.task.abort();
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Orders, stores and renews the certificate of listener `listener` until
/// the task is dropped.
pub async fn manage(
    listener: String,
    s: AcmeSettings,
    state: Arc<AcmeState>,
    state_dir: PathBuf,
    http01: Http01,
) {
    let dir = crate::config::model::acme_dir(&state_dir, &listener);
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut lifetime = None;
    if let Ok(c) = LoadedCert::from_pem(
        &cert_path,
        &std::fs::read(&cert_path).unwrap_or_default(),
        &key_path,
        &std::fs::read(&key_path).unwrap_or_default(),
    ) {
        lifetime = Some((
            not_before(&c).unwrap_or(c.spec.not_after - 90 * 86_400),
            c.spec.not_after,
        ));
        state.serve(c);
    }
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Some((from, to)) = lifetime {
            // Two thirds into its life, plus up to 1 % of it as jitter.
            let span = (to - from).max(1);
            let jitter = i64::from(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos()),
            ) % (span / 100).max(1);
            let at = from + span * 2 / 3 + jitter;
            let wait = u64::try_from(at - now()).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        match order(&listener, &s, &state, &dir, &http01).await {
            Ok(c) => {
                tracing::info!(
                    listener = %listener,
                    names = ?s.names,
                    "ACME: certificate issued, valid until {}",
                    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(c.spec.not_after.max(0) as u64))
                );
                lifetime = Some((not_before(&c).unwrap_or(now()), c.spec.not_after));
                state.serve(c);
                backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                tracing::error!(listener = %listener, directory = %s.directory, "ACME: {e}; trying again in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Try again now rather than at the old certificate's renewal time.
                lifetime = None;
            }
        }
    }
}

fn not_before(c: &LoadedCert) -> Option<i64> {
    let der = c.key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_before.timestamp())
}

/// One order, from the account to the stored certificate.
async fn order(
    listener: &str,
    s: &AcmeSettings,
    state: &AcmeState,
    dir: &Path,
    http01: &Http01,
) -> Result<LoadedCert, TlsError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TlsError::Config(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let account = account(s, dir.parent().unwrap_or(dir)).await?;
    let ids: Vec<Identifier> = s.names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| fail("new order", &e))?;
    let mut tokens = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(a) = authorizations.next().await {
        let mut a = a.map_err(|e| fail("authorization", &e))?;
        match a.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(TlsError::Config(format!("authorization is {other:?}"))),
        }
        let kind = if s.http01 {
            ChallengeType::Http01
        } else {
            ChallengeType::TlsAlpn01
        };
        let mut ch = a
            .challenge(kind.clone())
            .ok_or_else(|| TlsError::Config(format!("the CA offers no {kind:?} challenge")))?;
        let Identifier::Dns(name) = ch.identifier().identifier.clone() else {
            return Err(TlsError::Config("only DNS names are ordered".into()));
        };
        let key_auth = ch.key_authorization();
        if s.http01 {
            http01(&ch.token, Some(key_auth.as_str().to_string()));
            tokens.push(ch.token.clone());
        } else {
            let cert = challenge_cert(&name, key_auth.digest().as_ref())?;
            state
                .challenges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_ascii_lowercase(), cert);
        }
        ch.set_ready().await.map_err(|e| fail("challenge", &e))?;
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(60));
    let status = order.poll_ready(&retry).await.map_err(|e| fail("order", &e));
    state
        .challenges
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    for t in &tokens {
        http01(t, None);
    }
    match status? {
        OrderStatus::Ready => {}
        other => return Err(TlsError::Config(format!("the order is {other:?}, not ready"))),
    }
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
    let csr = rcgen::CertificateParams::new(s.names.clone())
        .map_err(gen)?
        .serialize_request(&key)
        .map_err(gen)?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| fail("finalize", &e))?;
    let chain = order
        .poll_certificate(&retry)
        .await
        .map_err(|e| fail("certificate", &e))?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let key_pem = key.serialize_pem();
    let loaded = LoadedCert::from_pem(&cert_path, chain.as_bytes(), &key_path, key_pem.as_bytes())?;
    super::ca::write_private(&key_path, key_pem.as_bytes())?;
    super::ca::write_public(&cert_path, chain.as_bytes())?;
    tracing::debug!(listener, "ACME: stored {}", cert_path.display());
    Ok(loaded)
}

/// The ACME account, from `account.json` in `dir` or created (and stored,
/// 0600) at the CA.
async fn account(s: &AcmeSettings, dir: &Path) -> Result<Account, TlsError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TlsError::Config(format!("{what}: {e}"));
    let builder = || match &s.directory_ca {
        Some(ca) => Account::builder_with_root(ca).map_err(|e| fail("ACME client", &e)),
        None => Account::builder().map_err(|e| fail("ACME client", &e)),
    };
    // One account per directory.
    let tag: String = s
        .directory
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { b as char } else { '_' })
        .collect();
    let path = dir.join(format!("account-{tag}.json"));
    if let Ok(text) = std::fs::read(&path) {
        if let Ok(creds) = serde_json::from_slice::<AccountCredentials>(&text) {
            return builder()?
                .from_credentials(creds)
                .await
                .map_err(|e| fail("ACME account", &e));
        }
    }
    let contact = s.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory.clone(),
            None,
        )
        .await
        .map_err(|e| fail("ACME account", &e))?;
    let text = serde_json::to_vec(&creds).map_err(|e| fail("ACME account", &e))?;
    super::ca::write_private(&path, &text)?;
    Ok(account)
}

/// The self-signed certificate that answers a TLS-ALPN-01 validation for
/// `name`: it carries the SHA-256 of the key authorization (RFC 8737).
fn challenge_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(gen)?;
    p.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = p.self_signed(&key).map_err(gen)?;
    // Built directly: rustls' own check of a certificate against its key
    // refuses the critical acmeIdentifier extension.
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = super::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Config(format!("challenge key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)))
}
