//! The plan for a terminal: one block per host.

use std::fmt::Write;

use super::{Access, Plan};
use crate::firewall::nft::Proto;

fn what(a: &Access) -> String {
    let ports = a.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    match a.proto {
        Proto::Vrrp => Proto::Vrrp.name().into(),
        p => format!("{} {ports}", p.name()),
    }
}

fn table(o: &mut String, list: &[Access], dir: &str) {
    for a in list {
        let peers = if a.peers.is_empty() {
            "(no such host)".to_string()
        } else {
            a.peers.join(", ")
        };
        let _ = writeln!(o, "    {:<16} {dir} {:<32} {}", what(a), peers, a.why);
    }
}

/// The plan as text.
pub fn text(p: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} hosts, {} allowed flows between them",
        p.hosts.len(),
        p.edges.len()
    );
    if !p.floating_addresses.is_empty() {
        let list: Vec<String> = p.floating_addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            o,
            "floating addresses (on the healthy balancer): {}",
            list.join(", ")
        );
    }
    for h in &p.hosts {
        let addrs: Vec<String> = h.addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(o, "\n{} [{}] {}", h.name, h.roles.join(", "), addrs.join(", "));
        let _ = writeln!(o, "  runs:");
        for c in &h.components {
            let _ = writeln!(o, "    {c}");
        }
        let _ = writeln!(o, "  listens on, and who may reach it:");
        table(&mut o, &h.reachable_from, "from");
        match &h.may_reach {
            None => {
                let _ = writeln!(o, "  may reach: anything (egress_open)");
            }
            Some(list) => {
                let _ = writeln!(o, "  may open connections to:");
                table(&mut o, list, "to  ");
            }
        }
        let _ = writeln!(
            o,
            "  monitored by: {}",
            if h.monitored_by.is_empty() {
                "nobody".to_string()
            } else {
                h.monitored_by.join(", ")
            }
        );
        if !h.certificates.is_empty() {
            let _ = writeln!(o, "  certificates:");
            for c in &h.certificates {
                let _ = writeln!(o, "    {c}");
            }
        }
    }
    o
}
