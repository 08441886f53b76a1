//! `firewall-not-applied` and `firewall-drift`: the host firewalls as
//! `rampart firewall apply` left them in the state directory, compared with
//! what the config renders now; for this machine's own host, the kernel's
//! live table too.

use std::net::IpAddr;

use super::{Finding, Local, Severity};
use crate::config::model::{Model, Topology};
use crate::firewall::nft;

/// The addresses assigned to this machine's interfaces, as the kernel
/// lists them: IPv4 local routes in `/proc/net/fib_trie`, IPv6 addresses
/// in `/proc/net/if_inet6`. (Binding a socket would not do: with
/// `ip_nonlocal_bind`, which floating addresses use, any bind succeeds.)
fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let mut last: Option<IpAddr> = None;
        for line in trie.lines() {
            let l = line.trim_start_matches([' ', '|', '-', '+']);
            if let Ok(ip) = l.trim().parse::<IpAddr>() {
                last = Some(ip);
            } else if line.contains("/32 host LOCAL") {
                out.extend(last);
            }
        }
    }
    if let Ok(v6) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in v6.lines() {
            let hex = line.split_whitespace().next().unwrap_or("");
            if let Ok(n) = u128::from_str_radix(hex, 16) {
                out.push(IpAddr::from(std::net::Ipv6Addr::from(n)));
            }
        }
    }
    out
}

/// The topology host whose address is assigned to this machine.
fn detect(t: &Topology) -> Option<String> {
    let mine = local_addresses();
    t.hosts
        .iter()
        .find(|h| h.addresses.iter().any(|a| !a.is_loopback() && mine.contains(a)))
        .map(|h| h.name.clone())
}

pub(super) fn check(m: &Model, t: &Topology, local: &Local, out: &mut Vec<Finding>, notes: &mut Vec<String>) {
    let me = local.host.clone().or_else(|| detect(t));
    match &me {
        Some(h) if t.hosts.iter().any(|x| &x.name == h) => {}
        Some(h) => {
            notes.push(format!("--host {h}: no such host in [topology]"));
            return;
        }
        None => notes.push(
            "this machine holds none of the topology's addresses: its live firewall was not checked (give --host NAME)"
                .into(),
        ),
    }
    for h in &t.hosts {
        let mine = me.as_deref() == Some(h.name.as_str());
        let config = match nft::config_drift(t, &h.name, &m.state_dir) {
            Ok(Some(config)) => config,
            Ok(None) => {
                if mine {
                    out.push(Finding::new(
                        "firewall-not-applied",
                        Severity::High,
                        &h.name,
                        format!("{}'s host firewall was never applied from {} (no {}.applied.nft): the host runs with whatever firewall it had", h.name, m.state_dir.join("nft").display(), h.name),
                        format!("run `rampart firewall apply -c CONFIG --host {}` on the host", h.name),
                    ));
                }
                continue;
            }
            Err(e) => {
                notes.push(format!("{}: {e}", h.name));
                continue;
            }
        };
        let live = if mine && local.live {
            nft::live_drift(&h.name, &m.state_dir).unwrap_or_else(|e| {
                notes.push(format!(
                    "{}: the live ruleset could not be read ({e}); compared with the config only",
                    h.name
                ));
                String::new()
            })
        } else {
            String::new()
        };
        if config.is_empty() && live.is_empty() {
            continue;
        }
        let mut what = Vec::new();
        if !config.is_empty() {
            what.push("the config now renders a different ruleset than the one applied");
        }
        if !live.is_empty() {
            what.push("the live table differs from the one loaded (edited by hand, or flushed)");
        }
        out.push(Finding::new(
            "firewall-drift",
            Severity::High,
            &h.name,
            format!(
                "{}: {} (`rampart firewall diff --host {}` shows it)",
                h.name,
                what.join("; "),
                h.name
            ),
            format!(
                "apply it again: `rampart firewall apply -c CONFIG --host {}`",
                h.name
            ),
        ));
    }
}
