//! `[pool.tls]`: the CA that signs the servers' certificates, the client
//! certificate for mTLS, key pins, and each server's TLS name.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use toml::Spanned;

use super::cx::written;
use super::{Cx, R};
use crate::config::model;
use crate::config::schema;

impl Cx<'_> {
    pub(super) fn pool_tls(&self, t: &Spanned<schema::PoolTls>, key: &str) -> R<model::BackendTls> {
        let tls = t.get_ref();
        let roots = match &tls.ca {
            None => model::TlsRoots::System,
            Some(c) => self.roots(c, &format!("{key}.ca"))?,
        };
        let client = match (&tls.client_cert, &tls.client_key) {
            (None, None) => None,
            (Some(c), None) if c.get_ref() == "internal" => Some(model::CertSource::Internal),
            (Some(c), Some(k)) if c.get_ref() != "internal" => {
                Some(model::CertSource::Files(self.client_pair(c, k, key)?))
            }
            (Some(c), Some(_)) => {
                return Err(self.at(
                    c,
                    &format!("{key}.client_cert"),
                    "`client_cert = \"internal\"` takes no `client_key` (rampart's CA issues both)",
                ))
            }
            (Some(c), None) => {
                return Err(self.at(
                    c,
                    &format!("{key}.client_cert"),
                    "a client certificate file needs `client_key` (or use `client_cert = \"internal\"`)",
                ))
            }
            (None, Some(k)) => {
                return Err(self.at(
                    k,
                    &format!("{key}.client_key"),
                    "`client_key` needs `client_cert`",
                ))
            }
        };
        let mut pins = Vec::new();
        if let Some(list) = &tls.pin_sha256 {
            for p in list.get_ref() {
                pins.push(parse_pin(p).ok_or_else(|| {
                    self.at(
                        list,
                        &format!("{key}.pin_sha256"),
                        format!("`{p}` is not a SHA-256 in hex (64 hex digits)"),
                    )
                })?);
            }
        }
        let revocation = self.revocation(
            &tls.crl,
            &format!("{key}.crl"),
            &tls.crl_expired,
            &format!("{key}.crl_expired"),
            &roots,
        )?;
        Ok(model::BackendTls {
            roots,
            client,
            pins,
            revocation,
        })
    }

    /// `system`, `internal` or a PEM file of CA certificates (read here).
    pub(super) fn roots(&self, c: &Spanned<String>, ca_key: &str) -> R<model::TlsRoots> {
        match c.get_ref().as_str() {
            "system" => return Ok(model::TlsRoots::System),
            "internal" => return Ok(model::TlsRoots::Internal),
            _ => {}
        }
        let path = self.path(c.get_ref());
        let pem = self
            .env
            .read(&path)
            .map_err(|e| self.at(c, ca_key, format!("cannot read CA file {}: {e}", path.display())))?;
        if CertificateDer::pem_slice_iter(&pem).filter(Result::is_ok).count() == 0 {
            return Err(self.at(
                c,
                ca_key,
                format!(
                    "{} holds no PEM certificate: use a CA bundle file, `system` or `internal`",
                    path.display()
                ),
            ));
        }
        Ok(model::TlsRoots::File {
            path,
            pem: model::Pem(pem.into()),
        })
    }

    /// A listener's `[listener.acme]`.
    pub(super) fn acme(&self, l: &schema::Listener, key: &str) -> R<Option<model::AcmeSettings>> {
        let Some(a) = &l.acme else { return Ok(None) };
        let key = format!("{key}.acme");
        if let Some(c) = l.certificates.first() {
            return Err(self.at(
                &c.cert,
                &key,
                "a listener takes its certificate from `[listener.acme]` or from files, not both",
            ));
        }
        let a = a.get_ref();
        let dir = a.directory.get_ref();
        if !dir.starts_with("https://") {
            return Err(self.at(
                &a.directory,
                &format!("{key}.directory"),
                "the ACME directory must be an https:// URL",
            ));
        }
        let names = a.names.get_ref();
        if names.is_empty() {
            return Err(self.at(&a.names, &format!("{key}.names"), "name at least one DNS name"));
        }
        for n in names {
            let dns = rustls_pki_types::ServerName::try_from(n.as_str());
            if !matches!(dns, Ok(rustls_pki_types::ServerName::DnsName(_))) {
                return Err(self.at(
                    &a.names,
                    &format!("{key}.names"),
                    format!("`{n}` is not a DNS name"),
                ));
            }
        }
        let directory_ca = match &a.directory_ca {
            None => None,
            Some(c) => {
                let path = self.path(c.get_ref());
                self.env.read(&path).map_err(|e| {
                    self.at(
                        c,
                        &format!("{key}.directory_ca"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Some(path)
            }
        };
        let http01 = match a.challenge.as_ref().map(|c| c.get_ref().as_str()) {
            None | Some("tls-alpn-01") => false,
            Some("http-01") => true,
            Some(other) => {
                let c = a.challenge.as_ref().unwrap_or(&a.directory);
                return Err(self.at(
                    c,
                    &format!("{key}.challenge"),
                    format!("unknown challenge `{other}`: use tls-alpn-01 or http-01"),
                ));
            }
        };
        Ok(Some(model::AcmeSettings {
            http01,
            directory: dir.clone(),
            names: names.clone(),
            email: a.email.as_ref().map(|e| e.get_ref().clone()),
            directory_ca,
        }))
    }

    /// A listener's `client_auth` and `client_ca`.
    pub(super) fn client_auth(&self, l: &schema::Listener, key: &str) -> R<Option<model::ClientAuth>> {
        let (auth, ca) = match (&l.client_auth, &l.client_ca) {
            (None, None) => {
                if let Some(c) = &l.client_crl {
                    return Err(self.at(
                        c,
                        &format!("{key}.client_crl"),
                        "`client_crl` is for client certificates: add `client_auth` and `client_ca`",
                    ));
                }
                if let Some(e) = &l.crl_expired {
                    return Err(self.at(
                        e,
                        &format!("{key}.crl_expired"),
                        "`crl_expired` is for client certificates' revocation lists (`client_crl`)",
                    ));
                }
                return Ok(None);
            }
            (Some(a), Some(c)) => (a, c),
            (Some(a), None) => {
                return Err(self.at(
                    a,
                    &format!("{key}.client_auth"),
                    "`client_auth` needs `client_ca`",
                ))
            }
            (None, Some(c)) => {
                return Err(self.at(
                    c,
                    &format!("{key}.client_ca"),
                    "`client_ca` needs `client_auth = \"required\"` or `\"optional\"`",
                ))
            }
        };
        let required = match auth.get_ref().as_str() {
            "required" => true,
            "optional" => false,
            other => {
                return Err(self.at(
                    auth,
                    &format!("{key}.client_auth"),
                    format!("unknown client_auth `{other}`: use required or optional"),
                ))
            }
        };
        if ca.get_ref() == "system" {
            return Err(self.at(
                ca,
                &format!("{key}.client_ca"),
                "client certificates are checked against `internal` or a CA file, not the system store",
            ));
        }
        let roots = self.roots(ca, &format!("{key}.client_ca"))?;
        let revocation = self.revocation(
            &l.client_crl,
            &format!("{key}.client_crl"),
            &l.crl_expired,
            &format!("{key}.crl_expired"),
            &roots,
        )?;
        Ok(Some(model::ClientAuth {
            required,
            roots,
            revocation: revocation.map(Box::new),
        }))
    }

    /// `[origin.tls]`: its certificate, and who signs its clients'.
    pub(super) fn origin_tls(&self, t: &Spanned<schema::OriginTls>, key: &str) -> R<model::OriginTls> {
        let tls = t.get_ref();
        let cert = match (tls.cert.get_ref().as_str(), &tls.key) {
            ("internal", None) => model::CertSource::Internal,
            ("internal", Some(k)) => {
                return Err(self.at(
                    k,
                    &format!("{key}.key"),
                    "`cert = \"internal\"` takes no `key` (rampart's CA issues both)",
                ))
            }
            (_, Some(k)) => model::CertSource::Files(self.cert_pair(
                &tls.cert,
                k,
                &format!("{key}.cert"),
                &format!("{key}.key"),
                None,
            )?),
            (_, None) => {
                return Err(self.at(
                    &tls.cert,
                    &format!("{key}.cert"),
                    "a certificate file needs `key` (or use `cert = \"internal\"`)",
                ))
            }
        };
        let client_ca =
            match &tls.client_ca {
                None => None,
                Some(c) if c.get_ref() == "system" => return Err(self.at(
                    c,
                    &format!("{key}.client_ca"),
                    "client certificates are checked against `internal` or a CA file, not the system store",
                )),
                Some(c) => Some(self.roots(c, &format!("{key}.client_ca"))?),
            };
        Ok(model::OriginTls { cert, client_ca })
    }

    /// A client certificate and key from files, checked against each other.
    fn client_pair(&self, c: &Spanned<String>, k: &Spanned<String>, key: &str) -> R<model::CertSpec> {
        let (cert_key, key_key) = (format!("{key}.client_cert"), format!("{key}.client_key"));
        self.cert_pair(c, k, &cert_key, &key_key, None)
    }

    /// The name a server's certificate is checked for: its own `tls_name`,
    /// the pool's `server_name`, or the host of its address.
    pub(super) fn tls_name(&self, p: &schema::Pool, s: &schema::Server, sk: &str) -> R<String> {
        let pool_name = p.tls.as_ref().and_then(|t| t.get_ref().server_name.as_ref());
        if let Some(n) = &s.tls_name {
            if p.tls.is_none() {
                return Err(self.at(
                    n,
                    &format!("{sk}.tls_name"),
                    "`tls_name` needs the pool's [pool.tls]",
                ));
            }
        }
        let named = s.tls_name.as_ref().or(pool_name);
        if let Some(n) = named {
            if rustls_pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
                return Err(self.at(
                    n,
                    sk,
                    format!("`{}` is not a DNS name or IP address", n.get_ref()),
                ));
            }
            return Ok(n.get_ref().clone());
        }
        let address = written(&s.address, "127.0.0.1:0");
        Ok(host_of(address).to_string())
    }
}

/// The host of `HOST:PORT` or `[V6]:PORT`.
fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => address,
    }
}

fn parse_pin(text: &str) -> Option<[u8; 32]> {
    let t = text.trim().replace(':', "");
    if t.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
