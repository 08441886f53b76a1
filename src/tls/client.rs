//! The rustls client configuration towards a pool's servers
//! (`[pool.tls]`): whose certificates are trusted (the host's store, a CA
//! file, or rampart's internal CA), optional SPKI pins checked after the
//! chain verifies, a client certificate for mTLS, ALPN for the pool's
//! protocol, and session resumption (rustls' in-memory cache, per pool).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::origin::{read, spec_pair};
use super::{ca, provider, TlsError};
use crate::config::model::{BackendTls, CertSource, TlsRoots, UpstreamProtocol};

/// Where Debian (and most Linux systems) keep the host's trust store.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Builds the client configuration for one pool. `state_dir` holds the
/// internal CA (created when missing) for `internal` roots or client
/// certificates.
pub fn upstream_config(
    t: &BackendTls,
    protocol: UpstreamProtocol,
    state_dir: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(provider());
    let mut roots = RootCertStore::empty();
    let (pem, from) = match &t.roots {
        TlsRoots::File { path, pem } => (pem.0.to_vec(), path.display().to_string()),
        TlsRoots::Internal => {
            let path = ca::ensure_ca(state_dir)?;
            (read(&path)?, path.display().to_string())
        }
        TlsRoots::System => system_bundle()?,
    };
    for c in CertificateDer::pem_slice_iter(&pem).flatten() {
        // Certificates in a system bundle that webpki cannot use are
        // skipped, as every TLS client does.
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(TlsError::Config(format!("{from} holds no usable CA certificate")));
    }
    let mut builder = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(r) = &t.revocation {
        // The lists are the CAs' own: only the server's certificate is
        // looked up (a certificate of a CA with no list is refused).
        let lists = r
            .files
            .iter()
            .flat_map(|f| {
                f.ders
                    .iter()
                    .map(|d| CertificateRevocationListDer::from(d.clone()))
            })
            .collect::<Vec<_>>();
        builder = builder.with_crls(lists).only_check_end_entity_revocation();
        if r.enforce_expiry {
            builder = builder.enforce_revocation_expiration();
        }
    }
    let webpki = builder.build().map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if t.pins.is_empty() {
        webpki
    } else {
        Arc::new(Pinned {
            inner: webpki,
            pins: t.pins.clone(),
        })
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match &t.client {
        None => builder.with_no_client_auth(),
        // Issued by the internal CA and renewed by the running process:
        // read again from its files when they change.
        Some(CertSource::Internal) => {
            let issued = ca::ensure_client_cert(state_dir)?;
            let current = super::renew::FileCert::load(&issued.cert_path, &issued.key_path)?;
            builder.with_client_cert_resolver(Arc::new(current))
        }
        Some(CertSource::Files(spec)) => {
            let (chain, key) = spec_pair(spec)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config(format!("client certificate: {e}")))?
        }
    };
    cfg.alpn_protocols = match protocol {
        UpstreamProtocol::H2 => vec![b"h2".to_vec()],
        UpstreamProtocol::Http1 | UpstreamProtocol::H2c => vec![b"http/1.1".to_vec()],
    };
    Ok(Arc::new(cfg))
}

/// The name a server's certificate is checked for (a DNS name or an IP).
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string())
        .map_err(|_| TlsError::Config(format!("`{name}` is not a DNS name or IP")))
}

/// The host's trust store: `SSL_CERT_FILE` if set, else the usual places.
fn system_bundle() -> Result<(Vec<u8>, String), TlsError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
    for p in candidates {
        if let Ok(pem) = std::fs::read(&p) {
            return Ok((pem, p.display().to_string()));
        }
    }
    Err(TlsError::Config(format!(
        "no system trust store found (looked at SSL_CERT_FILE and {}); set `ca` to a CA file",
        SYSTEM_BUNDLES.join(", ")
    )))
}

/// Verifies the chain, then requires the leaf's key to be one of `pins`.
#[derive(Debug)]
struct Pinned {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let hash = super::cert::spki_sha256(end_entity)
            .ok_or_else(|| rustls::Error::General("cannot read the certificate's public key".into()))?;
        if self.pins.contains(&hash) {
            Ok(ok)
        } else {
            Err(rustls::Error::General(
                "the server's public key matches no pin_sha256".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
