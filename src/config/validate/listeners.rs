//! `[[listener]]`: names, addresses, protocol, HSTS and redirects, each
//! certificate (both files read, the pair checked through the env), and
//! the client lists (`allow`, `deny` and their files).

use std::collections::HashSet;

use ipnet::IpNet;
use toml::Spanned;

use super::cx::written;
use super::cx::Addresses;
use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::env::CertFault;
use crate::config::syntax::{parse_list, parse_net};
use crate::config::{model, schema};
use crate::units::parse_duration;

impl Cx<'_> {
    pub(super) fn listeners(
        &self,
        ls: &[schema::Listener],
        addresses: &mut Addresses,
    ) -> R<Vec<model::Listener>> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for (i, l) in ls.iter().enumerate() {
            let key = format!("listener[{i}]");
            let name = l.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.at(
                    &l.name,
                    &format!("{key}.name"),
                    format!("listener name `{name}` is used twice"),
                ));
            }
            let addr = self.socket_addr(&l.address, &format!("{key}.address"))?;
            addresses.claim(
                self,
                addr,
                &l.address,
                &format!("{key}.address"),
                format!("listener `{name}`"),
            )?;
            let kind = self.listener_kind(l, &key)?;
            let clients = self.clients(l, &key)?;
            let proxy_protocol = l.proxy_protocol.unwrap_or(d::PROXY_PROTOCOL);
            if let Some(h) = l.http3.as_ref().filter(|h| proxy_protocol && *h.get_ref()) {
                return Err(self.at(
                    h,
                    &format!("{key}.http3"),
                    "QUIC carries no PROXY protocol header: HTTP/3 cannot serve a listener behind a proxy_protocol load balancer",
                ));
            }
            let tcp_pool = match (l.mode.as_ref().map(|m| m.get_ref().as_str()), &l.pool) {
                (None | Some("http"), None) => None,
                (Some("tcp"), Some(p)) => Some(p.get_ref().clone()),
                (Some("tcp"), None) => {
                    let m = l.mode.as_ref().unwrap_or(&l.name);
                    return Err(self.at(
                        m,
                        &format!("{key}.mode"),
                        "a tcp listener needs `pool = \"NAME\"`",
                    ));
                }
                (None | Some("http"), Some(p)) => {
                    return Err(self.at(
                        p,
                        &format!("{key}.pool"),
                        "`pool` is for `mode = \"tcp\"` (HTTP listeners use routes)",
                    ))
                }
                (Some(other), _) => {
                    let m = l.mode.as_ref().unwrap_or(&l.name);
                    return Err(self.at(
                        m,
                        &format!("{key}.mode"),
                        format!("unknown mode `{other}`: use http or tcp"),
                    ));
                }
            };
            let (db_endpoint, send_proxy) = self.tcp_extras(l, &key, tcp_pool.is_some())?;
            out.push(model::Listener {
                name,
                addr,
                kind,
                clients,
                proxy_protocol,
                tcp_pool,
                db_endpoint,
                send_proxy,
            });
        }
        // Redirect targets must be https listeners of this file.
        for (i, l) in ls.iter().enumerate() {
            if let Some(r) = &l.redirect_to {
                let ok = out
                    .iter()
                    .any(|o| &o.name == r.get_ref() && matches!(o.kind, model::ListenerKind::Https(_)));
                if !ok {
                    return Err(self.at(
                        r,
                        &format!("listener[{i}].redirect_to"),
                        format!("no https listener is named `{}`", r.get_ref()),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// `protocol` and what goes with it: certificates and HSTS for https,
    /// a redirect for http.
    fn listener_kind(&self, l: &schema::Listener, key: &str) -> R<model::ListenerKind> {
        match written(&l.protocol, d::LISTENER_PROTOCOL) {
            "http" => {
                if let Some(c) = l.certificates.first() {
                    return Err(self.at(
                        &c.cert,
                        &format!("{key}.certificate"),
                        "certificates need `protocol = \"https\"`",
                    ));
                }
                if let Some(h) = &l.hsts_max_age {
                    return Err(self.at(
                        h,
                        &format!("{key}.hsts_max_age"),
                        "HSTS is only sent on https listeners",
                    ));
                }
                if let Some(a) = &l.acme {
                    return Err(self.at(
                        a,
                        &format!("{key}.acme"),
                        "ACME certificates need `protocol = \"https\"`",
                    ));
                }
                if let Some(a) = l
                    .client_auth
                    .as_ref()
                    .or(l.client_ca.as_ref())
                    .or(l.crl_expired.as_ref())
                {
                    return Err(self.at(a, key, "client certificates need `protocol = \"https\"`"));
                }
                if let Some(h) = &l.http3 {
                    return Err(self.at(h, &format!("{key}.http3"), "HTTP/3 needs `protocol = \"https\"`"));
                }
                if let Some(c) = &l.client_crl {
                    return Err(self.at(c, key, "client certificates need `protocol = \"https\"`"));
                }
                Ok(model::ListenerKind::Http {
                    redirect_to: l.redirect_to.as_ref().map(|r| r.get_ref().clone()),
                })
            }
            "https" => {
                if let Some(r) = &l.redirect_to {
                    return Err(self.at(
                        r,
                        &format!("{key}.redirect_to"),
                        "redirect_to is for plain http listeners",
                    ));
                }
                let mut certs = Vec::new();
                for (j, c) in l.certificates.iter().enumerate() {
                    certs.push(self.certificate(c, &format!("{key}.certificate[{j}]"))?);
                }
                let hsts = match &l.hsts_max_age {
                    None => None,
                    Some(h) => {
                        let max_age = parse_duration(h.get_ref())
                            .map_err(|m| self.at(h, &format!("{key}.hsts_max_age"), m))?;
                        Some(model::Hsts {
                            max_age,
                            include_subdomains: l.hsts_include_subdomains,
                        })
                    }
                };
                Ok(model::ListenerKind::Https(model::HttpsSettings {
                    certs,
                    hsts,
                    http2: l.http2.unwrap_or(d::HTTP2),
                    http3: l.http3.as_ref().is_some_and(|h| *h.get_ref()),
                    client_auth: self.client_auth(l, key)?,
                    acme: self.acme(l, key)?,
                }))
            }
            other => {
                let p = l.protocol.as_ref().map_or(&l.name, |p| p);
                Err(self.at(
                    p,
                    &format!("{key}.protocol"),
                    format!("unknown protocol `{other}`: use http or https"),
                ))
            }
        }
    }

    /// A `[[listener.certificate]]`: both files read, and the pair checked.
    fn certificate(&self, c: &schema::Certificate, key: &str) -> R<model::CertSpec> {
        let names = c.names.as_ref().map(|n| n.get_ref().clone());
        self.cert_pair(
            &c.cert,
            &c.key,
            &format!("{key}.cert"),
            &format!("{key}.key"),
            names,
        )
    }

    /// A certificate chain file and its key file: both read, and checked
    /// against each other (an error names `cert_key` or `key_key`).
    pub(super) fn cert_pair(
        &self,
        cert: &Spanned<String>,
        key: &Spanned<String>,
        cert_key: &str,
        key_key: &str,
        names: Option<Vec<String>>,
    ) -> R<model::CertSpec> {
        let cert_path = self.path(cert.get_ref());
        let key_path = self.path(key.get_ref());
        let cert_pem = self.env.read(&cert_path).map_err(|e| {
            self.at(
                cert,
                cert_key,
                format!("cannot read certificate file {}: {e}", cert_path.display()),
            )
        })?;
        let key_pem = self.env.read(&key_path).map_err(|e| {
            self.at(
                key,
                key_key,
                format!("cannot use private key {}: {e}", key_path.display()),
            )
        })?;
        let facts = self
            .env
            .inspect_cert(&cert_path, &cert_pem, &key_path, &key_pem)
            .map_err(|f| match f {
                CertFault::Key(m) => self.at(key, key_key, m),
                CertFault::Cert(m) => self.at(cert, cert_key, m),
            })?;
        Ok(model::CertSpec::new(
            cert_path, cert_pem, key_path, key_pem, names, facts,
        ))
    }

    /// A listener's client filter from `allow`/`deny` (entries trimmed) and
    /// their files.
    fn clients(&self, l: &schema::Listener, key: &str) -> R<model::ClientFilter> {
        let mut lists: [Vec<IpNet>; 2] = [Vec::new(), Vec::new()];
        for (i, (inline, file, name)) in [
            (&l.allow, &l.allow_file, "allow"),
            (&l.deny, &l.deny_file, "deny"),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = inline {
                for s in v.get_ref() {
                    lists[i].push(parse_net(s.trim()).map_err(|m| self.at(v, &format!("{key}.{name}"), m))?);
                }
            }
            if let Some(f) = file {
                let file_key = format!("{key}.{name}_file");
                let path = self.path(f.get_ref());
                let text = self.read_text(&path, f, &file_key)?;
                let nets = parse_list(&text)
                    .map_err(|(line, m)| self.at(f, &file_key, format!("{}:{line}: {m}", path.display())))?;
                lists[i].extend(nets);
            }
        }
        let [allow, deny] = lists;
        Ok(model::ClientFilter { allow, deny })
    }

    /// A TCP listener's `role` (with `max_lag`, `fallback_to_primary`) and
    /// `send_proxy`; each is refused on HTTP listeners.
    fn tcp_extras(
        &self,
        l: &schema::Listener,
        key: &str,
        tcp: bool,
    ) -> R<(Option<model::DbEndpoint>, Option<model::ProxyVersion>)> {
        if !tcp {
            if let Some(v) = l.role.as_ref().or(l.send_proxy.as_ref()).or(l.max_lag.as_ref()) {
                let name = if l.role.is_some() {
                    "role"
                } else if l.send_proxy.is_some() {
                    "send_proxy"
                } else {
                    "max_lag"
                };
                return Err(self.at(
                    v,
                    &format!("{key}.{name}"),
                    "only `mode = \"tcp\"` listeners take this key",
                ));
            }
        }
        if tcp {
            if let Some(h) = &l.hsts_max_age {
                return Err(self.at(
                    h,
                    &format!("{key}.hsts_max_age"),
                    "a tcp listener sends no HTTP headers",
                ));
            }
            if l.http2.is_some() {
                return Err(self.at_opt(
                    &l.mode,
                    &format!("{key}.http2"),
                    "a tcp listener offers no HTTP protocol: remove `http2`",
                ));
            }
            if let Some(h) = &l.http3 {
                return Err(self.at(
                    h,
                    &format!("{key}.http3"),
                    "a tcp listener offers no HTTP protocol: remove `http3`",
                ));
            }
        }
        let send_proxy = match &l.send_proxy {
            None => None,
            Some(v) => match v.get_ref().as_str() {
                "v1" => Some(model::ProxyVersion::V1),
                "v2" => Some(model::ProxyVersion::V2),
                other => {
                    return Err(self.at(
                        v,
                        &format!("{key}.send_proxy"),
                        format!("unknown PROXY protocol version `{other}`: use v1 or v2"),
                    ))
                }
            },
        };
        let reader_only = |name: &str| format!("only `role = \"reader\"` listeners take `{name}`");
        let role = match l.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("writer") => {
                if let Some(m) = &l.max_lag {
                    return Err(self.at(m, &format!("{key}.max_lag"), reader_only("max_lag")));
                }
                if l.fallback_to_primary.is_some() {
                    return Err(self.at_opt(
                        &l.role,
                        &format!("{key}.fallback_to_primary"),
                        reader_only("fallback_to_primary"),
                    ));
                }
                l.role.as_ref().map(|_| model::DbEndpoint::Writer)
            }
            Some("reader") => Some(model::DbEndpoint::Reader {
                max_lag: self.duration(&l.max_lag, &format!("{key}.max_lag"), d::MAX_LAG)?,
                fallback_to_primary: l.fallback_to_primary.unwrap_or(d::FALLBACK_TO_PRIMARY),
            }),
            Some(other) => {
                return Err(self.at_opt(
                    &l.role,
                    &format!("{key}.role"),
                    format!("unknown role `{other}`: use writer or reader"),
                ))
            }
        };
        Ok((role, send_proxy))
    }
}
