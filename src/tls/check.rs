//! What `rampart check` warns about in a configuration's TLS material:
//! certificates that expire within `[audit] cert_warning` (30 days), chains that do not verify up
//! to a trusted root (the host's store, or the chain's own last
//! certificate when it is a CA), and CA files (for backends or client
//! certificates) that hold no CA certificate. (RSA keys under 2048 bits,
//! keys that do not match their certificate, and expired certificates are
//! errors at load, not warnings.)

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;

use crate::config::model::{CertSpec, ListenerKind, Model, Revocation, TlsRoots};

/// Every warning, each naming what it is about. Certificates warn within
/// `[audit] cert_warning` of their expiry.
pub fn warnings(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    let horizon = m.audit.cert_warning.as_secs() as i64;
    for (what, c, server) in m.cert_files() {
        cert_warnings(&what, c, server, horizon, &mut out);
    }
    for l in &m.listeners {
        if let ListenerKind::Https(s) = &l.kind {
            if let Some(a) = &s.client_auth {
                ca_warnings(&format!("listener `{}` client_ca", l.name), &a.roots, &mut out);
                if let Some(r) = &a.revocation {
                    crl_warnings(&format!("listener `{}` client_crl", l.name), r, &mut out);
                }
            }
        }
    }
    for p in &m.pools {
        if let Some(t) = &p.tls {
            ca_warnings(&format!("pool `{}` tls.ca", p.name), &t.roots, &mut out);
            if let Some(r) = &t.revocation {
                crl_warnings(&format!("pool `{}` tls.crl", p.name), r, &mut out);
            }
        }
    }
    for o in &m.origins {
        if let Some(r) = o.tls.as_ref().and_then(|t| t.client_ca.as_ref()) {
            ca_warnings(&format!("origin `{}` client_ca", o.name), r, &mut out);
        }
    }
    out
}

/// Revocation lists past their `nextUpdate`, and what that does.
fn crl_warnings(what: &str, r: &Revocation, out: &mut Vec<String>) {
    for f in &r.files {
        let Some(at) = f.next_update.filter(|t| *t <= now()) else {
            continue;
        };
        let when = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(at.max(0) as u64));
        let effect = if r.enforce_expiry {
            "every certificate is refused until it is replaced (crl_expired = \"fail_closed\")"
        } else {
            "it is still used (crl_expired = \"fail_open\")"
        };
        out.push(format!(
            "{what}: {} expired on {when}: {effect}",
            f.path.display()
        ));
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Expiry soon, and (for server certificates) a chain that does not verify.
fn cert_warnings(what: &str, c: &CertSpec, server: bool, horizon: i64, out: &mut Vec<String>) {
    let path = c.cert_path.display();
    let left = c.not_after - now();
    if (0..horizon).contains(&left) {
        out.push(format!("{what}: {path} expires in {} days", left / 86_400));
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&c.cert_pem.0).flatten().collect();
    if server && !chain.is_empty() {
        if let Some(why) = chain_problem(&chain, &c.cert_names) {
            out.push(format!("{what}: {path}: the chain does not verify: {why}"));
        }
    }
}

fn is_ca(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .ok()
        .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
        .unwrap_or(false)
}

/// Why `chain` does not verify for its first name, against the host's
/// store and the chain's last certificate when that is a CA; None if it does.
fn chain_problem(chain: &[CertificateDer<'static>], names: &[String]) -> Option<String> {
    let name = ServerName::try_from(names.first()?.trim_start_matches("*.").to_string()).ok()?;
    let mut roots = RootCertStore::empty();
    if let Some(last) = chain.last().filter(|c| chain.len() > 1 && is_ca(c)) {
        let _ = roots.add(last.clone());
    }
    for p in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(pem) = std::fs::read(p) {
            for c in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(c);
            }
            break;
        }
    }
    if roots.is_empty() {
        return None;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(super::provider()))
        .build()
        .ok()?;
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now().max(0) as u64));
    use rustls::client::danger::ServerCertVerifier;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
        .err()
        .map(|e| in_words(&e))
}

/// What a verification error means, in words (rustls's own text for the
/// errors it reaches through webpki reads like
/// `Other(OtherError(CaUsedAsEndEntity))`).
fn in_words(e: &rustls::Error) -> String {
    let debug = format!("{e:?}");
    let known = [
        (
            "CaUsedAsEndEntity",
            "the first certificate is a CA's, not a server's (put the server's certificate first)",
        ),
        ("NotValidYet", "it is not valid yet"),
        ("Expired", "it has expired"),
        (
            "UnknownIssuer",
            "its issuer is not in the system's trust store, and the file does not end with the CA",
        ),
        ("NotValidForName", "it is not valid for its first name"),
        ("BadSignature", "a signature in the chain does not verify"),
        ("Revoked", "it is revoked"),
        ("InvalidPurpose", "it is not for server authentication"),
    ];
    known
        .iter()
        .find(|(k, _)| debug.contains(k))
        .map_or_else(|| e.to_string(), |(_, words)| words.to_string())
}

/// A CA file with no CA certificate in it.
fn ca_warnings(what: &str, roots: &TlsRoots, out: &mut Vec<String>) {
    let TlsRoots::File { path, pem } = roots else {
        return;
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.0).flatten().collect();
    if !certs.iter().any(is_ca) {
        out.push(format!(
            "{what}: {} holds no CA certificate (none has basicConstraints CA:TRUE), so no certificate can be verified with it",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use rustls::{CertificateError, Error};

    #[test]
    fn verification_errors_read_as_words() {
        let issuer = super::in_words(&Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(
            issuer.contains("issuer is not in the system's trust store"),
            "{issuer}"
        );
        let expired = super::in_words(&Error::InvalidCertificate(CertificateError::Expired));
        assert_eq!(expired, "it has expired");
        for e in [issuer, expired] {
            assert!(!e.contains('(') && !e.contains("Other"), "{e}");
        }
    }
}
