//! The design checks: balancers, databases, tiers, backend encryption,
//! exposure of the admin API, monitoring, egress and shared limits.

use ipnet::IpNet;

use super::{Finding, Severity};
use crate::config::model::{Action, DbEndpoint, Host, Model, Role, Topology};
use crate::firewall::nft;

/// An address the internet can reach; the unspecified address (every
/// interface) counts.
pub(super) fn public(ip: std::net::IpAddr) -> bool {
    ip.is_unspecified() || crate::firewall::cidr::is_public(ip)
}

/// A network that reaches far into the internet: /8 or wider for IPv4,
/// /32 or wider for IPv6, unless it is private.
fn wide(n: &IpNet) -> bool {
    let max = match n {
        IpNet::V4(_) => 8,
        IpNet::V6(_) => 32,
    };
    n.prefix_len() <= max && public(n.network())
}

fn names<'a>(hosts: impl Iterator<Item = &'a Host>) -> String {
    hosts.map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks of the infrastructure `[topology]` describes.
pub(super) fn topology(m: &Model, t: &Topology, out: &mut Vec<Finding>) {
    balancers(t, out);
    databases(m, t, out);
    tiers(t, out);
    exposure(t, out);
    for h in &t.hosts {
        let how = if h.egress_open {
            Some("egress_open = true".to_string())
        } else if let Some(d) = h
            .egress_to
            .iter()
            .find(|d| d.nets.iter().any(|n| n.prefix_len() == 0))
        {
            Some(format!("egress_to `{}` covers every address", d.label))
        } else {
            h.extra_out
                .iter()
                .find(|r| r.trim() == "accept")
                .map(|_| "extra_out holds a bare `accept`".to_string())
        };
        if let Some(how) = how {
            out.push(Finding::new(
                "egress-open",
                Severity::Low,
                &h.name,
                format!("{} may open connections anywhere ({how}): a compromised process can reach out freely (reverse shells, exfiltration)", h.name),
                "list what the host needs in `egress_to` (and `dns`, `ntp`, `mirrors`) and remove the catch-all",
            ));
        }
    }
    let restricted: Vec<&Host> = t.with(Role::Lb).filter(|h| !h.egress_open).collect();
    if !restricted.is_empty() {
        for what in &t.balancer.by_name {
            out.push(Finding::new(
                "egress-blocked",
                Severity::Medium,
                what.clone(),
                format!("this config connects to {what} by name, so the balancers' rulesets ({}) cannot allow it: once applied, they refuse it", names(restricted.iter().copied())),
                "use its address in the config, or list the address in the lb hosts' `egress_to` and acknowledge this finding",
            ));
        }
    }
    let lbs = t.with(Role::Lb).count();
    if lbs >= 2 {
        for r in &m.rules {
            if matches!(r.action, Action::RateLimit { cluster: false, .. }) {
                out.push(Finding::new(
                    "limits-per-instance",
                    Severity::Low,
                    format!("rule {}", r.name),
                    format!("rule `{}` counts in each balancer's own buckets: with {lbs} balancers a client gets up to {lbs} times the limit", r.name),
                    "set `scope = \"cluster\"` on the rule, with `[cluster] redis`, so the fleet shares one bucket",
                ));
            }
        }
    }
}

fn balancers(t: &Topology, out: &mut Vec<Finding>) {
    let lbs: Vec<&Host> = t.with(Role::Lb).collect();
    match lbs.len() {
        0 | 1 => {
            let (subject, reason) = match lbs.first() {
                Some(h) => (h.name.clone(), format!("{} is the only load balancer: when it fails or restarts, the whole site is down", h.name)),
                None => ("topology".to_string(), "no host has the `lb` role: nothing in the topology receives the site's traffic".to_string()),
            };
            out.push(Finding::new(
                "lb-single",
                Severity::High,
                subject,
                reason,
                "add a second `lb` host and a floating address that keepalived moves to the healthy one (docs/ha.md)",
            ));
        }
        _ if t.floating.is_empty() => out.push(Finding::new(
            "lb-single",
            Severity::Medium,
            "topology",
            format!("{} balancers ({}) but no floating address: clients reach one of them by its own address, and lose the site when it fails", lbs.len(), names(lbs.iter().copied())),
            "move an address between them with keepalived and list it in `floating_addresses` (docs/ha.md)",
        )),
        _ => {}
    }
}

fn databases(m: &Model, t: &Topology, out: &mut Vec<Finding>) {
    let dbs: Vec<&Host> = t.with(Role::Db).collect();
    let writer = m
        .listeners
        .iter()
        .any(|l| l.db_endpoint == Some(DbEndpoint::Writer));
    match dbs.len() {
        0 => {}
        1 => out.push(Finding::new(
            "db-single-writer",
            Severity::High,
            &dbs[0].name,
            format!("{} is the only database: every write depends on it, and a failure loses the writes since the last backup", dbs[0].name),
            "add a replica (a second `db` host) and route writes through a `role = \"writer\"` listener that follows the primary (docs/database.md)",
        )),
        n if !writer => out.push(Finding::new(
            "db-single-writer",
            Severity::Medium,
            "topology",
            format!("{n} database hosts ({}) but no `role = \"writer\"` listener: clients name the primary themselves, so a switchover means changing every client", names(dbs.iter().copied())),
            "add a TCP listener with `role = \"writer\"` over a pool with a `mysql` check, and point clients at it (docs/database.md)",
        )),
        _ => {}
    }
    // Who reaches the database port, from the rendered policy itself.
    let lbs: Vec<&Host> = t.with(Role::Lb).collect();
    for db in &dbs {
        let p = nft::policy_of(t, db);
        let open: Vec<&str> = lbs
            .iter()
            .filter(|lb| lb.name != db.name)
            .filter(|lb| {
                p.inbound.iter().any(|f| {
                    f.ports.contains(&t.db_port)
                        && !f.db_endpoint
                        && lb.addresses.iter().any(|a| f.admits(*a))
                })
            })
            .map(|lb| lb.name.as_str())
            .collect();
        if !open.is_empty() || db.has(Role::Lb) {
            out.push(Finding::new(
                "db-reachable-from-lb",
                Severity::High,
                &db.name,
                format!("{}'s database port {} is open to the balancer tier ({}), which faces the internet: a compromised balancer reaches the data directly", db.name, t.db_port, if open.is_empty() { db.name.clone() } else { open.join(", ") }),
                "keep `lb` hosts out of the web/app/db roles so that only web and app hosts reach the database",
            ));
        }
    }
}

fn tiers(t: &Topology, out: &mut Vec<Finding>) {
    for h in &t.hosts {
        let carried: Vec<&str> = [Role::Lb, Role::Web, Role::App, Role::Db]
            .into_iter()
            .filter(|r| h.has(*r))
            .map(Role::name)
            .collect();
        if carried.len() >= 2 {
            let db_with_front = h.has(Role::Db) && (h.has(Role::Lb) || h.has(Role::Web));
            out.push(Finding::new(
                "tiers-colocated",
                if db_with_front { Severity::High } else { Severity::Medium },
                &h.name,
                format!("{} carries {} together: they compete for CPU, memory and disk, and one compromise or failure takes them all", h.name, carried.join(" + ")),
                "give each tier its own hosts, so each can fail, scale and be firewalled alone",
            ));
        }
    }
    for role in [Role::Web, Role::App] {
        let hosts: Vec<&Host> = t.with(role).collect();
        if hosts.len() == 1 {
            out.push(Finding::new(
                "tier-no-spare",
                Severity::Medium,
                format!("{} tier", role.name()),
                format!(
                    "the {} tier is one host ({}): no spare when it fails or is upgraded",
                    role.name(),
                    hosts[0].name
                ),
                format!(
                    "add a second `{}` host to the topology and to the pool",
                    role.name()
                ),
            ));
        }
    }
}

fn exposure(t: &Topology, out: &mut Vec<Finding>) {
    let wide: Vec<String> = t.admin.iter().filter(|n| wide(n)).map(IpNet::to_string).collect();
    if !wide.is_empty() {
        out.push(Finding::new(
            "admin-exposed",
            Severity::High,
            "topology.admin_cidr",
            format!(
                "admin_cidr includes {}: ssh and the admin API are open to that much of the internet",
                wide.join(", ")
            ),
            "list only the networks administrators work from (a bastion or VPN)",
        ));
    }
    let monitors: Vec<&Host> = t.with(Role::Monitor).collect();
    if monitors.is_empty() {
        for h in &t.hosts {
            out.push(Finding::new(
                "host-unmonitored",
                Severity::Medium,
                &h.name,
                format!("no `monitor` host scrapes {} (metrics port {}): its failures are found by users", h.name, t.metrics_port),
                "add a `monitor` host (Prometheus) to the topology; `examples/prometheus/` has the scrape config and alerts",
            ));
        }
    }
}

/// Checks of this instance's own settings.
pub(super) fn instance(m: &Model, out: &mut Vec<Finding>) {
    if let Some(addr) = m.admin.addr.filter(|a| !a.ip().is_loopback()) {
        out.push(Finding::new(
            "admin-exposed",
            Severity::Medium,
            "admin",
            format!("the admin API listens on {addr} over plain HTTP: its token crosses the network in clear, and whoever reaches the port can try tokens"),
            "bind it to 127.0.0.1 and reach it through ssh, or keep the port to the admin network with the host firewall",
        ));
    }
    for l in m.listeners.iter().filter(|l| l.db_endpoint.is_some()) {
        if !l.addr.ip().is_loopback() && l.clients.allow.is_empty() {
            out.push(Finding::new(
                "db-reachable-from-lb",
                Severity::High,
                format!("listener {}", l.name),
                format!("database endpoint `{}` listens on {} with no `allow` list: whoever reaches the balancer reaches the database", l.name, l.addr),
                "set `allow` on the listener to the web and app networks (or bind it to an internal address)",
            ));
        }
    }
    if !m.metrics_enabled {
        out.push(Finding::new(
            "host-unmonitored",
            Severity::Medium,
            "metrics",
            "[metrics] enabled = false: nothing can scrape this rampart's request rates, errors and latency",
            "enable metrics and scrape /metrics from the monitor host",
        ));
    }
    let tcp_pools: Vec<&str> = m.listeners.iter().filter_map(|l| l.tcp_pool.as_deref()).collect();
    for p in &m.pools {
        if p.tls.is_some() || tcp_pools.contains(&p.name.as_str()) {
            continue;
        }
        let remote: Vec<String> = p
            .servers
            .iter()
            .filter(|s| s.origin.is_none() && !s.addr.ip().is_loopback())
            .map(|s| s.addr.to_string())
            .collect();
        if !remote.is_empty() {
            out.push(Finding::new(
                "backend-plaintext",
                Severity::High,
                format!("pool {}", p.name),
                format!("pool `{}` sends requests to {} in plaintext: anyone on that network reads and changes them, cookies and credentials included", p.name, remote.join(", ")),
                "add `[pool.tls]` (with `client_cert = \"internal\"` for mutual TLS) and serve TLS on the servers (docs/config.md, [pool.tls])",
            ));
        }
    }
}
