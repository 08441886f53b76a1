//! The rustls server configuration of a built-in origin served over TLS
//! (`[origin.tls]`): its certificate (from files, or issued by the internal
//! CA for the origin's name, its address and `localhost`), and, when client
//! certificates are required, a verifier that also checks the internal
//! CA's revocation list, read again whenever the file changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::{ca, provider, TlsError};
use crate::config::model::{CertSource, OriginTls, Revocation, TlsRoots};

/// Builds the server configuration of origin `name` bound to `addr`.
pub fn origin_config(
    t: &OriginTls,
    name: &str,
    addr: SocketAddr,
    state_dir: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &t.client_ca {
        None => builder.with_no_client_auth(),
        Some(roots) => builder.with_client_cert_verifier(client_verifier(roots, true, state_dir, None)?),
    };
    let mut cfg = match &t.cert {
        CertSource::Files(spec) => {
            let (chain, key) = spec_pair(spec)?;
            builder
                .with_single_cert(chain, key)
                .map_err(|e| TlsError::Config(format!("origin `{name}`: {e}")))?
        }
        // Issued by the internal CA and renewed by the running process.
        CertSource::Internal => {
            let issued = ca::ensure_origin_cert(state_dir, name, &internal_names(name, addr))?;
            let current = super::renew::FileCert::load(&issued.cert_path, &issued.key_path)?;
            builder.with_cert_resolver(Arc::new(current))
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The names an internal certificate of origin `name` bound to `addr` holds.
pub fn internal_names(name: &str, addr: SocketAddr) -> Vec<String> {
    vec![name.to_string(), addr.ip().to_string(), "localhost".to_string()]
}

/// Checks client certificates from `roots` against the revocation lists
/// of `revocation` (and, for the internal CA, its own list); with
/// `required` false, clients without one pass too.
pub fn client_verifier(
    roots: &TlsRoots,
    required: bool,
    state_dir: &Path,
    revocation: Option<&Revocation>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let (pem, internal_crl) = match roots {
        TlsRoots::File { pem, .. } => (pem.0.to_vec(), None),
        TlsRoots::Internal => (read(&ca::ensure_ca(state_dir)?)?, Some(ca::crl_path(state_dir))),
        TlsRoots::System => return Err(TlsError::Config("client certificates need a CA".into())),
    };
    let mut store = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = store.add(c);
    }
    if store.is_empty() {
        return Err(TlsError::Config(
            "the client CA holds no usable certificate".into(),
        ));
    }
    // The internal CA's list exists once something was revoked; a
    // configured one must be there.
    let mut crls: Vec<Crl> = internal_crl
        .into_iter()
        .map(|path| Crl {
            path,
            required: false,
        })
        .collect();
    let enforce_expiry = revocation.is_some_and(|r| r.enforce_expiry);
    for f in revocation.iter().flat_map(|r| &r.files) {
        if enforce_expiry && f.next_update.is_some_and(|t| t <= now_unix()) {
            tracing::warn!(
                crl = %f.path.display(),
                "the revocation list has expired: every client certificate is refused until it is replaced (crl_expired = \"fail_closed\")"
            );
        }
        crls.push(Crl {
            path: f.path.clone(),
            required: true,
        });
    }
    Ok(Arc::new(Revocable::new(
        Arc::new(store),
        crls,
        enforce_expiry,
        required,
    )?))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The chain and key of a configured certificate.
pub(super) fn spec_pair(
    spec: &crate::config::model::CertSpec,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    pair(
        &spec.cert_path.display().to_string(),
        &spec.cert_pem.0,
        &spec.key_path.display().to_string(),
        spec.key_pem.expose(),
    )
}

/// A chain and key from PEM text.
pub(super) fn pair(
    chain_path: &str,
    chain: &[u8],
    key_path: &str,
    key: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(chain).flatten().collect();
    if chain.is_empty() {
        return Err(TlsError::NoCert {
            path: chain_path.to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Key {
        path: key_path.to_string(),
        reason: e.to_string(),
    })?;
    Ok((chain, key))
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Config(format!("cannot read {}: {e}", path.display())))
}

/// A revocation list file; a `required` one must be readable.
#[derive(Debug, Clone)]
struct Crl {
    path: PathBuf,
    required: bool,
}

/// Client certificates from `roots`, not revoked by the lists in `crls`;
/// the verifier is built again when one of the files changes (a list
/// that cannot be read then keeps the previous verifier, with a warning).
#[derive(Debug)]
struct Revocable {
    roots: Arc<RootCertStore>,
    crls: Vec<Crl>,
    enforce_expiry: bool,
    required: bool,
    hints: Vec<DistinguishedName>,
    current: Mutex<Current>,
}

/// The lists' modification times the verifier was built from, and it.
type Current = (Vec<Option<SystemTime>>, Arc<dyn ClientCertVerifier>);

impl Revocable {
    fn new(
        roots: Arc<RootCertStore>,
        crls: Vec<Crl>,
        enforce_expiry: bool,
        required: bool,
    ) -> Result<Self, TlsError> {
        let stamps = stamps(&crls);
        let inner = build(&roots, &crls, enforce_expiry, required)?;
        Ok(Revocable {
            hints: inner.root_hint_subjects().to_vec(),
            roots,
            crls,
            enforce_expiry,
            required,
            current: Mutex::new((stamps, inner)),
        })
    }

    /// The verifier for the lists as they are on disk now.
    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if self.crls.is_empty() {
            return cur.1.clone();
        }
        let stamps = stamps(&self.crls);
        if stamps != cur.0 {
            match build(&self.roots, &self.crls, self.enforce_expiry, self.required) {
                Ok(v) => *cur = (stamps, v),
                Err(e) => tracing::warn!("revocation list not used, the previous one stays: {e}"),
            }
        }
        cur.1.clone()
    }
}

fn stamps(crls: &[Crl]) -> Vec<Option<SystemTime>> {
    crls.iter().map(|c| modified(&c.path)).collect()
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn build(
    roots: &Arc<RootCertStore>,
    crls: &[Crl],
    enforce_expiry: bool,
    required: bool,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut b = WebPkiClientVerifier::builder_with_provider(roots.clone(), Arc::new(provider()));
    if !required {
        b = b.allow_unauthenticated();
    }
    let mut lists: Vec<CertificateRevocationListDer<'static>> = Vec::new();
    for c in crls {
        let bytes = match std::fs::read(&c.path) {
            Ok(b) => b,
            Err(_) if !c.required => continue,
            Err(e) => return Err(TlsError::Config(format!("cannot read {}: {e}", c.path.display()))),
        };
        let ders = crate::config::crl_ders(&bytes);
        if ders.is_empty() && c.required {
            return Err(TlsError::Config(format!(
                "{} holds no certificate revocation list",
                c.path.display()
            )));
        }
        lists.extend(ders.into_iter().map(CertificateRevocationListDer::from));
    }
    if !lists.is_empty() {
        // The lists are the CAs' own: only the client's certificate is
        // looked up (a certificate of a CA with no list is refused).
        b = b.with_crls(lists).only_check_end_entity_revocation();
        if enforce_expiry {
            b = b.enforce_revocation_expiration();
        }
    }
    b.build().map_err(|e| TlsError::Config(e.to_string()))
}

impl ClientCertVerifier for Revocable {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}
