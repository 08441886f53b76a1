//! The TLS checks: certificates that expire within `[audit] cert_warning`,
//! and settings below Mozilla's intermediate profile. rampart's own TLS
//! (1.2 and 1.3 only, ECDHE with AEAD suites) already matches the profile,
//! so what remains is what a config chooses: certificates signed with SHA-1
//! or MD5, HTTPS without HSTS (the profile asks for two years), and a site
//! served over plain HTTP on a public address. (Small keys never get this
//! far: loading the config refuses RSA keys under 2048 bits, and the TLS
//! provider takes no EC curve under P-256.)

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{Finding, Severity};
use std::path::Path;

use crate::config::model::{acme_dir, CertSpec, ListenerKind, Model};

/// Under a week left makes an expiring certificate a high finding.
const URGENT: i64 = 7 * 86_400;
/// The HSTS max-age Mozilla's intermediate profile asks for (two years);
/// under one year is a finding.
const HSTS_MIN: u64 = 365 * 86_400;

pub(super) fn check(m: &Model, now: i64, out: &mut Vec<Finding>, notes: &mut Vec<String>) {
    let horizon = m.audit.cert_warning.as_secs() as i64;
    for l in &m.listeners {
        let ListenerKind::Https(s) = &l.kind else { continue };
        if s.acme.is_some() {
            acme_expiry(m, &l.name, now, horizon, out, notes);
        }
        if l.tcp_pool.is_none() {
            hsts(&l.name, s.hsts.map(|h| h.max_age), out);
        }
    }
    if m.listeners
        .iter()
        .any(|l| matches!(l.kind, ListenerKind::Https(_)))
    {
        notes.push(
            "rampart's own TLS (versions 1.2 and 1.3, ECDHE key exchange, AEAD suites only) matches Mozilla's intermediate profile; the certificates and HSTS were checked"
                .into(),
        );
    }
    for (what, c, _) in m.cert_files() {
        let what = what.replace('`', "");
        let subject = format!("{what}: {}", c.cert_path.display());
        out.extend(expiry(subject, &c.cert_path, c.not_after, now, horizon));
        strength(&what, c, out);
    }
    for l in &m.listeners {
        let ListenerKind::Http { redirect_to: None } = &l.kind else {
            continue;
        };
        if l.tcp_pool.is_none() && super::checks::public(l.addr.ip()) {
            out.push(Finding::new(
                "tls-weak",
                Severity::Medium,
                format!("listener {}", l.name),
                format!("listener `{}` serves the site over plain HTTP on {}: requests and cookies travel in clear", l.name, l.addr),
                "set `redirect_to` to the HTTPS listener, so plain HTTP only answers 308",
            ));
        }
    }
}

/// The certificate rampart obtained by ACME for `listener`, as stored in
/// the state directory: rampart renews it at two thirds of its life, so
/// one close to expiry means renewal keeps failing.
fn acme_expiry(
    m: &Model,
    listener: &str,
    now: i64,
    horizon: i64,
    out: &mut Vec<Finding>,
    notes: &mut Vec<String>,
) {
    let path = acme_dir(&m.state_dir, listener).join("cert.pem");
    let Ok(pem) = std::fs::read(&path) else {
        notes.push(format!(
            "listener {listener}: no ACME certificate stored yet ({}); rampart obtains it when it runs",
            path.display()
        ));
        return;
    };
    let not_after = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .and_then(|der| crate::stats::cert_not_after(der.as_ref()));
    let Some(not_after) = not_after else {
        notes.push(format!(
            "listener {listener}: {} holds no readable certificate",
            path.display()
        ));
        return;
    };
    let subject = format!("listener {listener}: {}", path.display());
    if let Some(mut f) = expiry(subject, &path, not_after, now, horizon) {
        f.reason.push_str(
            "; rampart renews ACME certificates at two thirds of their life, so its renewals are failing",
        );
        f.mitigation = "read rampart's log for the ACME error (DNS, port 443 or 80 not reachable from the CA, rate limits) and fix it".into();
        out.push(f);
    }
}

/// A certificate expiring within `horizon` seconds (high under a week).
fn expiry(subject: String, path: &Path, not_after: i64, now: i64, horizon: i64) -> Option<Finding> {
    let left = not_after - now;
    if left >= horizon {
        return None;
    }
    let days = left.div_euclid(86_400);
    Some(Finding::new(
        "cert-expiring",
        if left < URGENT {
            Severity::High
        } else {
            Severity::Medium
        },
        subject,
        if left < 0 {
            format!("{} expired {} days ago", path.display(), -days)
        } else {
            format!(
                "{} expires in {days} days (within [audit] cert_warning)",
                path.display()
            )
        },
        "renew it (or let rampart renew it: `[listener.acme]`, or `internal` from rampart's CA) and reload",
    ))
}

/// SHA-1 and MD5 signatures.
fn strength(what: &str, c: &CertSpec, out: &mut Vec<Finding>) {
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(&c.cert_pem.0).next() else {
        return;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return;
    };
    let sig = cert.signature_algorithm.algorithm.to_id_string();
    let weak = match sig.as_str() {
        "1.2.840.113549.1.1.4" => "MD5",
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => "SHA-1",
        _ => return,
    };
    out.push(Finding::new(
        "tls-weak",
        Severity::High,
        format!("{what}: {}", c.cert_path.display()),
        format!(
            "{} has a {weak} signature, below Mozilla's intermediate profile (SHA-256 signatures)",
            c.cert_path.display()
        ),
        "issue a new certificate with an ECDSA P-256 or RSA 2048 key and a SHA-256 signature",
    ));
}

fn hsts(listener: &str, max_age: Option<std::time::Duration>, out: &mut Vec<Finding>) {
    let max_age = max_age.map(|d| d.as_secs());
    let reason = match max_age {
        None => format!("listener `{listener}` sends no Strict-Transport-Security: a browser can be talked down to plain HTTP on its next visit"),
        Some(n) if n < HSTS_MIN => format!("listener `{listener}` sends Strict-Transport-Security with max-age={n}, under a year"),
        Some(_) => return,
    };
    out.push(Finding::new(
        "tls-weak",
        Severity::Low,
        format!("listener {listener}"),
        reason,
        "set `hsts_max_age = \"730d\"` on the listener (Mozilla's intermediate profile) once every name it serves is HTTPS-only",
    ));
}
