//! The rustls server configuration every TLS listener uses, and the SNI
//! resolver that picks a certificate per handshake.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::{LoadedCert, TlsError};
use crate::config::model::ClientAuth;

/// aws-lc-rs with Mozilla's "intermediate" choices: the TLS 1.3 suites and
/// the ECDHE + AEAD TLS 1.2 suites (rustls offers no others), key exchange
/// on X25519, P-256 and P-384.
pub fn provider() -> CryptoProvider {
    let mut p = aws_lc_rs::default_provider();
    p.kx_groups = vec![
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
        aws_lc_rs::kx_group::SECP384R1,
    ];
    p
}

/// The application protocols a listener offers through ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/1.1, and HTTP/2 first when `h2`.
    Http { h2: bool },
    /// Nothing (TCP mode: rampart does not know what the bytes are).
    None,
}

/// Builds the shared server config for one listener. `certs[0]` is the
/// default certificate for clients that send no (or an unknown) SNI name.
/// With `client_auth`, client certificates are asked for (and checked).
pub fn server_config(
    certs: &[Arc<LoadedCert>],
    alpn: Alpn,
    client_auth: Option<&ClientAuth>,
    state_dir: &Path,
    acme: Option<Arc<super::acme::AcmeState>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let sni = SniResolver::new(certs).ok_or_else(|| TlsError::Config("no certificate".into()))?;
    let resolver: Arc<dyn ResolvesServerCert> = match &acme {
        None => Arc::new(sni),
        Some(state) => Arc::new(super::acme::AcmeResolver {
            state: state.clone(),
            fallback: Arc::new(sni),
        }),
    };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_auth {
        None => builder.with_no_client_auth(),
        Some(a) => builder.with_client_cert_verifier(super::origin::client_verifier(
            &a.roots,
            a.required,
            state_dir,
            a.revocation.as_deref(),
        )?),
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.alpn_protocols = match alpn {
        Alpn::Http { h2: true } => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Alpn::Http { h2: false } => vec![b"http/1.1".to_vec()],
        Alpn::None => Vec::new(),
    };
    if acme.is_some() {
        // Offered last: only a validator that asks for nothing else gets it.
        cfg.alpn_protocols.push(super::acme::ACME_TLS_ALPN.to_vec());
    }
    // Stateless resumption for returning clients; one ticket per full
    // handshake is enough for HTTP clients that keep one connection.
    cfg.ticketer = aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.send_tls13_tickets = 1;
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    Ok(Arc::new(cfg))
}

/// Exact names first, then `*.suffix` wildcards, then the default.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn new(certs: &[Arc<LoadedCert>]) -> Option<Self> {
        let default = certs.first()?.key.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for c in certs {
            for n in &c.spec.sni_names {
                match n.strip_prefix("*.") {
                    Some(s) => wildcard.entry(s.to_string()).or_insert_with(|| c.key.clone()),
                    None => exact.entry(n.clone()).or_insert_with(|| c.key.clone()),
                };
            }
        }
        Some(SniResolver {
            exact,
            wildcard,
            default,
        })
    }

    fn lookup(&self, name: &str) -> Arc<CertifiedKey> {
        let name = name.to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, rest)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(rest) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match hello.server_name() {
            Some(n) => self.lookup(n),
            None => self.default.clone(),
        })
    }
}
