//! `rampart plan`: what the config's `[topology]` means, host by host — its
//! roles, the components it runs, the ports it listens on and who may
//! reach them, what it may reach, what monitors it and which certificates
//! it holds. The flows come from the host firewalls' policy
//! (`firewall::nft::policy`), so the plan shows what the rulesets enforce.
//!
//! Exposes [`plan`] (the [`Plan`], serializable as JSON), [`text`] and
//! [`svg`] (hosts as boxes grouped by tier, arrows for allowed traffic),
//! which the dashboard shows too.

mod svg;
mod text;

pub use svg::svg;
pub use text::text;

use crate::config::model::{CertSource, ListenerKind, Model, Role, Topology};
use crate::firewall::nft::{self, Flow, Proto};

/// The infrastructure, host by host, and the traffic allowed between them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub hosts: Vec<HostPlan>,
    /// Allowed traffic between hosts, and from anywhere to the balancers.
    pub edges: Vec<Edge>,
    pub floating_addresses: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostPlan {
    pub name: String,
    pub addresses: Vec<std::net::IpAddr>,
    pub roles: Vec<&'static str>,
    /// The column it is drawn in: its front-most role.
    pub tier: &'static str,
    pub components: Vec<String>,
    /// Every port its firewall opens, with who may use it and why.
    pub reachable_from: Vec<Access>,
    /// What it may open connections to; None: unrestricted (`egress_open`).
    pub may_reach: Option<Vec<Access>>,
    pub monitored_by: Vec<String>,
    pub certificates: Vec<String>,
}

/// One allowed flow as people read it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Access {
    /// Host names or named networks; `anywhere` when open to all.
    pub peers: Vec<String>,
    pub proto: Proto,
    pub ports: Vec<u16>,
    pub why: String,
}

/// Allowed traffic from one host (or `internet`) to another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub proto: Proto,
    pub ports: Vec<u16>,
}

/// The name of the outside world in edges.
pub const INTERNET: &str = "internet";

/// The tiers in the order of the diagram's columns; a host sits in the
/// first it has.
pub(super) const TIERS: [Role; 6] = [
    Role::Lb,
    Role::Web,
    Role::App,
    Role::Db,
    Role::Monitor,
    Role::Etcd,
];

fn access(f: &Flow) -> Access {
    Access {
        peers: match &f.peers {
            None => vec!["anywhere".into()],
            // Named networks (`dns`, `admin network`) with what they hold.
            Some(ps) => ps
                .iter()
                .map(|p| {
                    // Hosts by name; a label that already holds its addresses as is.
                    let labelled = p.nets.iter().all(|n| p.name.contains(&n.addr().to_string()));
                    if p.host || labelled {
                        p.name.clone()
                    } else {
                        let nets: Vec<String> = p.nets.iter().map(|n| n.trunc().to_string()).collect();
                        format!("{} ({})", p.name, nets.join(", "))
                    }
                })
                .collect(),
        },
        proto: f.proto,
        ports: f.ports.clone(),
        why: f.why.clone(),
    }
}

fn components(t: &Topology, roles: &[Role]) -> Vec<String> {
    let mut c = Vec::new();
    for r in roles {
        match r {
            Role::Lb => {
                c.push("rampart: TLS termination, request firewall, load balancing, health checks, metrics and dashboard".into());
                if t.with(Role::Lb).count() > 1 && !t.floating.is_empty() {
                    c.push("keepalived: the floating address (VRRP)".into());
                }
                if !t.balancer.db_ports.is_empty() {
                    c.push("rampart database endpoints (writer/reader)".into());
                }
                if !t.balancer.quic_ports.is_empty() {
                    let ports: Vec<String> = t.balancer.quic_ports.iter().map(u16::to_string).collect();
                    c.push(format!("rampart HTTP/3 (QUIC) on UDP {}", ports.join(", ")));
                }
            }
            Role::Web => c.push("web server".into()),
            Role::App => c.push("application server".into()),
            Role::Db => c.push("MySQL/MariaDB".into()),
            Role::Monitor => c.push("Prometheus (scrapes every host's metrics)".into()),
            Role::Etcd => c.push("etcd: a member of the fleet's configuration store".into()),
        }
    }
    c.push("host firewall: nftables `inet rampart`, rendered by rampart".into());
    c
}

/// Certificates a host holds, as far as this config says: the listeners'
/// (on balancers), and the server certificates pools verify (on servers).
fn certificates(m: &Model, h: &crate::config::model::Host) -> Vec<String> {
    let mut out = Vec::new();
    if h.has(Role::Lb) {
        for l in &m.listeners {
            let ListenerKind::Https(s) = &l.kind else { continue };
            if let Some(a) = &s.acme {
                out.push(format!(
                    "listener {}: ACME for {} (renewed by rampart)",
                    l.name,
                    a.names.join(", ")
                ));
            } else if s.certs.is_empty() {
                out.push(format!("listener {}: localhost from rampart's local CA", l.name));
            }
            for c in &s.certs {
                out.push(format!(
                    "listener {}: {} for {} (expires {})",
                    l.name,
                    c.cert_path.display(),
                    c.cert_names.join(", "),
                    httpdate::fmt_http_date(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.not_after.max(0) as u64)
                    )
                ));
            }
        }
        for p in &m.pools {
            match p.tls.as_ref().and_then(|t| t.client.as_ref()) {
                Some(CertSource::Internal) => {
                    out.push(format!("pool {}: client certificate from rampart's CA", p.name))
                }
                Some(CertSource::Files(c)) => out.push(format!(
                    "pool {}: client certificate {}",
                    p.name,
                    c.cert_path.display()
                )),
                None => {}
            }
        }
    }
    for p in m.pools.iter().filter(|p| p.tls.is_some()) {
        for s in &p.servers {
            if h.addresses.contains(&s.addr.ip()) {
                out.push(format!(
                    "server certificate for `{}` on port {} (verified by pool {})",
                    s.tls_name,
                    s.addr.port(),
                    p.name
                ));
            }
        }
    }
    out
}

/// The plan of `m`'s topology; None without one.
pub fn plan(m: &Model) -> Option<Plan> {
    let t = m.topology.as_ref()?;
    let mut hosts = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for h in &t.hosts {
        let p = nft::policy_of(t, h);
        let monitors: Vec<String> = t
            .with(Role::Monitor)
            .filter(|x| x.name != h.name)
            .map(|x| x.name.clone())
            .collect();
        for f in &p.inbound {
            match &f.peers {
                None => edges.push(Edge {
                    from: INTERNET.into(),
                    to: h.name.clone(),
                    proto: f.proto,
                    ports: f.ports.clone(),
                }),
                Some(ps) => {
                    for peer in ps.iter().filter(|p| p.host) {
                        let e = Edge {
                            from: peer.name.clone(),
                            to: h.name.clone(),
                            proto: f.proto,
                            ports: f.ports.clone(),
                        };
                        if !edges.contains(&e) {
                            edges.push(e);
                        }
                    }
                }
            }
        }
        hosts.push(HostPlan {
            name: h.name.clone(),
            addresses: h.addresses.clone(),
            roles: h.roles.iter().map(|r| r.name()).collect(),
            tier: TIERS.iter().find(|r| h.has(**r)).map_or("other", |r| r.name()),
            components: components(t, &h.roles),
            reachable_from: p.inbound.iter().map(access).collect(),
            may_reach: p.outbound.as_ref().map(|o| o.iter().map(access).collect()),
            monitored_by: monitors,
            certificates: certificates(m, h),
        });
    }
    Some(Plan {
        hosts,
        edges,
        floating_addresses: t.floating.clone(),
    })
}

/// The plan as JSON.
pub fn json(p: &Plan) -> String {
    serde_json::to_string_pretty(p).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests;
