//! `[topology]`: the hosts of the infrastructure (addresses, roles, ports,
//! extra nft rules, what they may connect to) and the admin networks, DNS,
//! NTP and mirrors, for the host firewalls, `rampart plan` and `rampart audit`.

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::syntax::parse_net;
use crate::config::{model, schema};

/// One nft rule per entry, so that an entry cannot escape its chain.
fn one_rule(e: &str) -> bool {
    !e.contains(['\n', ';', '{', '}'])
}

impl Cx<'_> {
    pub(super) fn topology(&self, t: &schema::Topology) -> R<model::Topology> {
        use model::{Host, Role, Topology};
        let admin = self.nets(&t.admin_cidr, "topology.admin_cidr")?;
        let mut hosts: Vec<Host> = Vec::new();
        for (i, h) in t.hosts.get_ref().iter().enumerate() {
            let key = format!("topology.host[{i}]");
            if hosts.iter().any(|x| &x.name == h.name.get_ref()) {
                return Err(self.at(&h.name, &format!("{key}.name"), "host names must be unique"));
            }
            if let Some(why) = bad_name(h.name.get_ref()) {
                return Err(self.at(&h.name, &format!("{key}.name"), why));
            }
            if h.roles.get_ref().is_empty() {
                return Err(self.at(
                    &h.roles,
                    &format!("{key}.roles"),
                    "give the host at least one role: lb, web, app, db or monitor",
                ));
            }
            let addresses = self.ips(&h.addresses, &format!("{key}.addresses"))?;
            let mut roles = Vec::new();
            for r in h.roles.get_ref() {
                roles.push(Role::parse(r).ok_or_else(|| {
                    self.at(
                        &h.roles,
                        &format!("{key}.roles"),
                        format!("unknown role `{r}`: use lb, web, app, db, monitor or etcd"),
                    )
                })?);
            }
            for (list, which) in [(&h.extra, "extra"), (&h.extra_out, "extra_out")] {
                if let Some(e) = list.iter().find(|e| !one_rule(e)) {
                    return Err(self.at(
                        &h.name,
                        &format!("{key}.{which}"),
                        format!("`{e}`: one rule per entry, without `;`, braces or newlines"),
                    ));
                }
            }
            hosts.push(Host {
                name: h.name.get_ref().clone(),
                addresses,
                roles,
                ports: h.ports.clone(),
                extra: h.extra.clone(),
                extra_out: h.extra_out.clone(),
                egress_to: Vec::new(),
                egress_open: h.egress_open,
            });
        }
        // Dependencies may name hosts, so they are read once all are known.
        let mut deps = Vec::new();
        for (i, h) in t.hosts.get_ref().iter().enumerate() {
            let Some(list) = &h.egress_to else {
                deps.push(Vec::new());
                continue;
            };
            let key = format!("topology.host[{i}].egress_to");
            let mut out = Vec::new();
            for e in list.get_ref() {
                out.push(dependency(e, &hosts).map_err(|m| self.at(list, &key, m))?);
            }
            deps.push(out);
        }
        for (h, d) in hosts.iter_mut().zip(deps) {
            h.egress_to = d;
        }
        if hosts.is_empty() {
            return Err(self.at(
                &t.hosts,
                "topology.host",
                "describe at least one [[topology.host]]",
            ));
        }
        Ok(Topology {
            admin,
            ssh_port: t.ssh_port.unwrap_or(d::SSH_PORT),
            admin_port: t.admin_port.unwrap_or(d::ADMIN_PORT),
            metrics_port: t.metrics_port.unwrap_or(d::METRICS_PORT),
            db_port: t.db_port.unwrap_or(d::DB_PORT),
            dns: self.optional_nets(&t.dns, "topology.dns")?,
            ntp: self.optional_nets(&t.ntp, "topology.ntp")?,
            mirrors: self.optional_nets(&t.mirrors, "topology.mirrors")?,
            floating: match &t.floating_addresses {
                None => Vec::new(),
                Some(list) => self.ips(list, "topology.floating_addresses")?,
            },
            balancer: model::BalancerNeeds::default(),
            hosts,
        })
    }

    /// `[audit]`: the expiry horizon, and acknowledgements that name a
    /// known finding and say why.
    pub(super) fn audit(&self, a: &schema::Audit) -> R<model::Audit> {
        let mut acks = Vec::new();
        for (i, x) in a.acks.iter().enumerate() {
            let id = x.id.get_ref();
            if !model::FINDINGS.iter().any(|(known, _)| known == id) {
                let ids: Vec<&str> = model::FINDINGS.iter().map(|(known, _)| *known).collect();
                return Err(self.at(
                    &x.id,
                    &format!("audit.ack[{i}].id"),
                    format!("unknown finding `{id}`: one of {}", ids.join(", ")),
                ));
            }
            if x.reason.get_ref().trim().is_empty() {
                return Err(self.at(
                    &x.reason,
                    &format!("audit.ack[{i}].reason"),
                    "say why the finding is accepted",
                ));
            }
            acks.push(model::Ack {
                id: id.clone(),
                subject: x.subject.clone(),
                reason: x.reason.get_ref().trim().to_string(),
            });
        }
        Ok(model::Audit {
            cert_warning: self.duration(&a.cert_warning, "audit.cert_warning", d::AUDIT_CERT_WARNING)?,
            acks,
        })
    }
}

impl Cx<'_> {
    fn optional_nets(&self, list: &Option<toml::Spanned<Vec<String>>>, key: &str) -> R<Vec<ipnet::IpNet>> {
        list.as_ref().map_or(Ok(Vec::new()), |l| self.nets(l, key))
    }
}

/// Host names go into nft comments, file names and metric labels: letters,
/// digits, `.`, `_` and `-` only. `internet` names the outside in plans.
fn bad_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Some(format!(
            "`{name}`: a host name is 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        ));
    }
    (name == "internet")
        .then(|| "`internet` is reserved: it names the outside world in `rampart plan`".to_string())
}

/// Reads `ADDRESS:PORT`, `[V6]:PORT`, `CIDR:PORT` or `HOST:PORT`.
fn dependency(e: &str, hosts: &[model::Host]) -> Result<model::Dependency, String> {
    let bad =
        || format!("`{e}`: write ADDRESS:PORT, [IPV6]:PORT, CIDR:PORT or HOST:PORT (a host of the topology)");
    let (what, port) = e.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
    let bracketed = what.starts_with('[') && what.ends_with(']');
    if what.contains(':') && !bracketed {
        return Err(format!(
            "`{e}`: write an IPv6 address in brackets, [ADDRESS]:PORT"
        ));
    }
    let what = what.trim_start_matches('[').trim_end_matches(']');
    let nets = if let Some(h) = hosts.iter().find(|h| h.name == what) {
        h.addresses.iter().map(|a| ipnet::IpNet::from(*a)).collect()
    } else {
        vec![parse_net(what).map_err(|_| bad())?]
    };
    Ok(model::Dependency {
        label: e.to_string(),
        nets,
        port,
    })
}

/// A `host:port` to connect to: a dependency when `host` is an address,
/// else a name for `by_name`.
fn endpoint(what: &str, host: &str, port: u16, needs: &mut model::BalancerNeeds) {
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => needs.egress.push(model::Dependency {
            label: format!("{what} {host}:{port}"),
            nets: vec![ipnet::IpNet::from(ip)],
            port,
        }),
        Err(_) => needs.by_name.push(format!("{what} {host}:{port}")),
    }
}

/// What the instance `m` describes needs from the balancers' firewalls.
pub(super) fn balancer_needs(m: &model::Model) -> model::BalancerNeeds {
    let mut n = model::BalancerNeeds::default();
    for l in &m.listeners {
        if l.db_endpoint.is_some() && l.addr.port() != 0 && !n.db_ports.contains(&l.addr.port()) {
            n.db_ports.push(l.addr.port());
        }
        if let model::ListenerKind::Https(s) = &l.kind {
            n.acme |= s.acme.is_some();
            let port = l.addr.port();
            if s.http3 && port != 0 && !n.quic_ports.contains(&port) {
                n.quic_ports.push(port);
            }
        }
    }
    if let Some(c) = &m.cluster {
        endpoint("Redis", &c.host, c.port, &mut n);
    }
    for p in &m.peers {
        n.egress.push(model::Dependency {
            label: format!("fleet peer {} {}", p.name, p.addr),
            nets: vec![ipnet::IpNet::from(p.addr.ip())],
            port: p.addr.port(),
        });
    }
    if let Some(f) = &m.fleet {
        for url in &f.endpoints {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or(rest);
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') && p.parse::<u16>().is_ok() => {
                    (h, p.parse().unwrap_or(crate::config::defaults::ETCD_CLIENT_PORT))
                }
                _ => (authority, crate::config::defaults::ETCD_CLIENT_PORT),
            };
            endpoint("etcd", host, port, &mut n);
        }
    }
    if let Some(w) = &m.alerts.webhook {
        let https = w.scheme_str() == Some("https");
        let port = w.port_u16().unwrap_or(if https { 443 } else { 80 });
        endpoint("alert webhook", w.host().unwrap_or(""), port, &mut n);
    }
    n
}
