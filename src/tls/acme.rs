//! Certificates from an ACME CA (`[listener.acme]`), through the
//! TLS-ALPN-01 challenge answered on the listener itself (RFC 8737): the
//! listener's resolver hands the challenge certificate to validators that
//! ask for ALPN `acme-tls/1`, and the issued certificate to everyone else
//! (the local certificate until the first one is issued). [`manage`] orders
//! the certificate on first start, stores it and the account atomically in
//! the state directory, swaps it in without dropping a connection, and
//! renews it at two thirds of its lifetime (with jitter, and backoff after
//! a failure).
//!
//! In a fleet ([`Shared`], the fleet's etcd) one instance at a time orders:
//! the one that takes the listener's lead; it publishes its challenge
//! answers to every instance (the CA may reach any of them), stores the
//! certificate, its key and the account sealed, and every instance loads
//! and serves what is stored, checking every [`FLEET_POLL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
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

/// How often an instance of a fleet reads the shared certificate.
pub const FLEET_POLL: Duration = Duration::from_secs(2);
/// How long the instance ordering waits after publishing a challenge
/// answer, so that every instance has it before the CA validates.
const FLEET_SPREAD: Duration = Duration::from_secs(1);

/// Where the instances of a fleet keep what ACME gives them, and how they
/// take turns ordering. Errors are said in words (logged).
pub trait Shared: Send + Sync + std::fmt::Debug {
    /// The value stored under `name`, opened; None when there is none.
    fn load(&self, name: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>>;
    /// Stores `value` under `name`, sealed.
    fn store(&self, name: String, value: Vec<u8>) -> BoxFuture<'_, Result<(), String>>;
    /// The right to order for `name` until the returned guard is dropped;
    /// None when another instance has it.
    fn lead(&self, name: String) -> BoxFuture<'_, Result<Option<Box<dyn Lead>>, String>>;
}

/// The right to order, held: publishes challenge answers to every
/// instance while it lasts (`kind` tls-alpn-01 or http-01; None withdraws).
pub trait Lead: Send + Sync {
    fn publish(
        &self,
        kind: &'static str,
        id: String,
        answer: Option<String>,
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// The kinds of challenge answers a fleet shares.
pub const TLS_ALPN_01: &str = "tls-alpn-01";
pub const HTTP_01: &str = "http-01";

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
    /// The fleet's store, when there is one.
    shared: Option<Arc<dyn Shared>>,
}

#[derive(Debug)]
struct Managed {
    settings: AcmeSettings,
    state: Arc<AcmeState>,
    task: tokio::task::JoinHandle<()>,
}

impl AcmeRegistry {
    /// The registry of an instance of a fleet: certificates ordered once
    /// for the fleet and shared through `shared`.
    pub fn shared(shared: Arc<dyn Shared>) -> AcmeRegistry {
        AcmeRegistry {
            inner: Mutex::default(),
            shared: Some(shared),
        }
    }

    /// A TLS-ALPN-01 answer for `name` that the instance ordering published
    /// (`digest` hex; None: withdrawn): served by every listener that has
    /// `name` among its ACME names.
    pub fn fleet_challenge(&self, name: &str, digest: Option<&str>) {
        let name = name.to_ascii_lowercase();
        let cert = match digest.map(hex_bytes) {
            None => None,
            Some(Some(d)) => match challenge_cert(&name, &d) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("ACME: challenge for {name}: {e}");
                    return;
                }
            },
            Some(None) => {
                tracing::warn!("ACME: the fleet's challenge for {name} is not hex");
                return;
            }
        };
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for m in all.values() {
            if !m.settings.names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                continue;
            }
            let mut challenges = m.state.challenges.lock().unwrap_or_else(PoisonError::into_inner);
            match &cert {
                Some(c) => challenges.insert(name.clone(), c.clone()),
                None => challenges.remove(&name),
            };
        }
    }

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
            self.shared.clone(),
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

impl AcmeRegistry {
    /// Ends every listener's ordering and renewal (the certificates served
    /// stay).
    pub fn stop(&self) {
        for m in self.inner.lock().unwrap_or_else(PoisonError::into_inner).values() {
            m.task.abort();
        }
    }
}

impl Drop for AcmeRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// When a certificate valid from `from` to `to` is renewed: two thirds
/// into its life, plus up to 1 % of it as jitter.
fn renew_at((from, to): (i64, i64)) -> i64 {
    let span = (to - from).max(1);
    let jitter = i64::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    ) % (span / 100).max(1);
    from + span * 2 / 3 + jitter
}

/// The validity of a certificate (from, to), Unix seconds.
fn lifetime_of(c: &LoadedCert) -> (i64, i64) {
    (
        not_before(c).unwrap_or(c.spec.not_after - 90 * 86_400),
        c.spec.not_after,
    )
}

/// The certificate kept in the state directory, if any.
fn load_local(dir: &Path) -> Option<LoadedCert> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    LoadedCert::from_pem(
        &cert_path,
        &std::fs::read(&cert_path).ok()?,
        &key_path,
        &std::fs::read(&key_path).ok()?,
    )
    .ok()
}

/// Orders, stores and renews the certificate of listener `listener` until
/// the task is dropped.
pub async fn manage(
    listener: String,
    s: AcmeSettings,
    state: Arc<AcmeState>,
    state_dir: PathBuf,
    http01: Http01,
    shared: Option<Arc<dyn Shared>>,
) {
    let dir = crate::config::model::acme_dir(&state_dir, &listener);
    let mut lifetime = None;
    if let Some(c) = load_local(&dir) {
        lifetime = Some(lifetime_of(&c));
        state.serve(c);
    }
    if let Some(shared) = shared {
        return in_fleet(&listener, &s, &state, &dir, &http01, &*shared).await;
    }
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Some(l) = lifetime {
            let wait = u64::try_from(renew_at(l) - now()).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        match order(&listener, &s, &state, &dir, &http01, None).await {
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

/// A certificate and its key as a fleet stores them (sealed).
#[derive(serde::Serialize, serde::Deserialize)]
struct Bundle {
    cert: String,
    key: String,
}

/// The fleet's certificate for `listener`: served (and kept on disk) when
/// it is new; ordered by this instance when it is due and this instance
/// takes the lead; checked again every [`FLEET_POLL`].
async fn in_fleet(
    listener: &str,
    s: &AcmeSettings,
    state: &AcmeState,
    dir: &Path,
    http01: &Http01,
    shared: &dyn Shared,
) {
    let name = format!("acme/cert/{listener}");
    let mut served: Option<Vec<u8>> = load_local(dir).and_then(|c| leaf(&c));
    let mut renew: Option<i64> = None;
    let mut not_before_retry = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match shared.load(name.clone()).await {
            Ok(Some(bytes)) => match from_bundle(dir, &bytes) {
                Ok(c) => {
                    renew.get_or_insert_with(|| renew_at(lifetime_of(&c)));
                    let der = leaf(&c);
                    if der != served {
                        tracing::info!(listener, names = ?s.names, "ACME: serving the fleet's certificate, valid until {}", http_date(c.spec.not_after));
                        keep(dir, &bytes);
                        renew = Some(renew_at(lifetime_of(&c)));
                        served = der;
                        state.serve(c);
                    }
                }
                Err(e) => tracing::error!(listener, "ACME: the fleet's certificate: {e}"),
            },
            Ok(None) => renew = None,
            Err(e) => {
                tracing::debug!(listener, "ACME: the fleet's store: {e}");
                tokio::time::sleep(FLEET_POLL).await;
                continue;
            }
        }
        let due = renew.is_none_or(|at| now() >= at) && now() >= not_before_retry;
        if due {
            match shared.lead(format!("acme/leader/{listener}")).await {
                Ok(Some(lead)) => {
                    // Another instance may have stored one just before.
                    let fresh = match shared.load(name.clone()).await {
                        Ok(Some(bytes)) => {
                            from_bundle(dir, &bytes).is_ok_and(|c| now() < renew_at(lifetime_of(&c)))
                        }
                        _ => false,
                    };
                    if !fresh {
                        tracing::info!(listener, names = ?s.names, "ACME: this instance orders the fleet's certificate");
                        match order(listener, s, state, dir, http01, Some((shared, &*lead))).await {
                            Ok(c) => {
                                let bundle = Bundle {
                                    cert: String::from_utf8_lossy(
                                        &std::fs::read(dir.join("cert.pem")).unwrap_or_default(),
                                    )
                                    .into_owned(),
                                    key: String::from_utf8_lossy(
                                        &std::fs::read(dir.join("key.pem")).unwrap_or_default(),
                                    )
                                    .into_owned(),
                                };
                                match serde_json::to_vec(&bundle) {
                                    Ok(v) => {
                                        if let Err(e) = shared.store(name.clone(), v).await {
                                            tracing::error!(listener, "ACME: the certificate could not be shared with the fleet: {e}");
                                        }
                                    }
                                    Err(e) => tracing::error!(listener, "ACME: {e}"),
                                }
                                tracing::info!(listener, names = ?s.names, "ACME: certificate issued, valid until {}", http_date(c.spec.not_after));
                                renew = Some(renew_at(lifetime_of(&c)));
                                served = leaf(&c);
                                state.serve(c);
                                backoff = FIRST_BACKOFF;
                            }
                            Err(e) => {
                                tracing::error!(listener, directory = %s.directory, "ACME: {e}; trying again in {backoff:?}");
                                not_before_retry =
                                    now() + i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX);
                                backoff = (backoff * 2).min(MAX_BACKOFF);
                            }
                        }
                    }
                    drop(lead);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(listener, "ACME: the fleet's lead: {e}"),
            }
        }
        tokio::time::sleep(FLEET_POLL).await;
    }
}

/// A stored bundle as a certificate (checked: chain and key agree).
fn from_bundle(dir: &Path, bytes: &[u8]) -> Result<LoadedCert, TlsError> {
    let b: Bundle = serde_json::from_slice(bytes)
        .map_err(|e| TlsError::Config(format!("not a certificate bundle: {e}")))?;
    LoadedCert::from_pem(
        &dir.join("cert.pem"),
        b.cert.as_bytes(),
        &dir.join("key.pem"),
        b.key.as_bytes(),
    )
}

/// Keeps the fleet's certificate in the state directory too (a start
/// without etcd serves it).
fn keep(dir: &Path, bytes: &[u8]) {
    let Ok(b) = serde_json::from_slice::<Bundle>(bytes) else {
        return;
    };
    let written = std::fs::create_dir_all(dir)
        .map_err(|source| TlsError::Write {
            path: dir.display().to_string(),
            source,
        })
        .and_then(|()| super::ca::write_private(&dir.join("key.pem"), b.key.as_bytes()))
        .and_then(|()| super::ca::write_public(&dir.join("cert.pem"), b.cert.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("ACME: {e}");
    }
}

fn leaf(c: &LoadedCert) -> Option<Vec<u8>> {
    c.key.cert.first().map(|d| d.as_ref().to_vec())
}

fn http_date(unix: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    (s.len() % 2 == 0)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
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
    fleet: Option<(&dyn Shared, &dyn Lead)>,
) -> Result<LoadedCert, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let account = account(s, dir.parent().unwrap_or(dir), fleet.map(|(s, _)| s)).await?;
    let mut published: Vec<(&'static str, String)> = Vec::new();
    let result =
        challenges_and_certificate(s, state, http01, fleet.map(|(_, l)| l), &mut published, account).await;
    if let Some((_, lead)) = fleet {
        for (kind, id) in published {
            let _ = lead.publish(kind, id, None).await;
        }
    }
    let (key_pem, chain) = result?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let loaded = LoadedCert::from_pem(&cert_path, chain.as_bytes(), &key_path, key_pem.as_bytes())?;
    super::ca::write_private(&key_path, key_pem.as_bytes())?;
    super::ca::write_public(&cert_path, chain.as_bytes())?;
    tracing::debug!(listener, "ACME: stored {}", cert_path.display());
    Ok(loaded)
}

/// The order itself: challenges answered (and, in a fleet, published),
/// the CSR finalized; the certificate's key and chain (PEM).
async fn challenges_and_certificate(
    s: &AcmeSettings,
    state: &AcmeState,
    http01: &Http01,
    lead: Option<&dyn Lead>,
    published: &mut Vec<(&'static str, String)>,
    account: Account,
) -> Result<(String, String), TlsError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TlsError::Config(format!("{what}: {e}"));
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
        let (kind, id, answer) = if s.http01 {
            http01(&ch.token, Some(key_auth.as_str().to_string()));
            tokens.push(ch.token.clone());
            (HTTP_01, ch.token.clone(), key_auth.as_str().to_string())
        } else {
            let cert = challenge_cert(&name, key_auth.digest().as_ref())?;
            state
                .challenges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_ascii_lowercase(), cert);
            (
                TLS_ALPN_01,
                name.to_ascii_lowercase(),
                hex(key_auth.digest().as_ref()),
            )
        };
        if let Some(lead) = lead {
            lead.publish(kind, id.clone(), Some(answer))
                .await
                .map_err(|e| fail("publishing the challenge to the fleet", &e))?;
            published.push((kind, id));
            tokio::time::sleep(FLEET_SPREAD).await;
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
    Ok((key.serialize_pem(), chain))
}

/// The ACME account, from `account.json` in `dir` (in a fleet: from the
/// fleet's store) or created at the CA and stored (0600; sealed in a fleet).
async fn account(s: &AcmeSettings, dir: &Path, shared: Option<&dyn Shared>) -> Result<Account, TlsError> {
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
    let kept = match shared {
        Some(fleet) => fleet
            .load(format!("acme/account/{tag}"))
            .await
            .map_err(|e| fail("the fleet's ACME account", &e))?,
        None => std::fs::read(&path).ok(),
    };
    if let Some(text) = kept {
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
    match shared {
        Some(fleet) => fleet
            .store(format!("acme/account/{tag}"), text)
            .await
            .map_err(|e| fail("storing the ACME account in the fleet", &e))?,
        None => super::ca::write_private(&path, &text)?,
    }
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
