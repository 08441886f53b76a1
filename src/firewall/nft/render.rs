//! The nftables text of a host's policy: one `inet rampart` table with an
//! input chain (policy drop), a forward chain (drop) and an output chain
//! (policy drop unless `egress_open`), each ending in a named counter and a
//! rate-limited log of what it drops.

use std::fmt::Write;

use ipnet::IpNet;

use super::policy::{policy, Flow, Proto};
use super::NftError;
use crate::config::model::Topology;

/// The named counters of what each chain drops, as `rampart firewall stats` reads them.
pub const COUNTERS: [(&str, &str); 2] = [("dropped_in", "in"), ("dropped_out", "out")];

/// Drops are logged at most this often (a burst of 10), so a flood cannot fill the logs.
const LOG_LIMIT: &str = "limit rate 5/second burst 10 packets";

fn addr(n: &IpNet) -> String {
    let n = n.trunc();
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn set<T: ToString>(items: &[T]) -> String {
    match items {
        [one] => one.to_string(),
        many => format!(
            "{{ {} }}",
            many.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// What a flow matches above the network layer, in one address family.
fn l4(f: &Flow, v6: bool) -> String {
    match f.proto {
        Proto::Vrrp if v6 => "ip6 nexthdr vrrp".into(),
        Proto::Vrrp => "ip protocol vrrp".into(),
        p => format!("{} dport {}", p.name(), set(&f.ports)),
    }
}

/// Writes `flow` as rules; `dir` is `saddr` (input) or `daddr` (output).
fn flow(o: &mut String, f: &Flow, dir: &str) {
    let why = f.why.replace('"', "'");
    let Some(peers) = &f.peers else {
        let _ = writeln!(o, "        {} accept comment \"{why}\"", l4(f, false));
        return;
    };
    let nets: Vec<&IpNet> = peers.iter().flat_map(|p| &p.nets).collect();
    let mut wrote = false;
    for (fam, v6) in [("ip", false), ("ip6", true)] {
        let mut list: Vec<String> = nets
            .iter()
            .filter(|n| matches!(n, IpNet::V6(_)) == v6)
            .map(|n| addr(n))
            .collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "        {fam} {dir} {} {} accept comment \"{why}\"",
            set(&list),
            l4(f, v6)
        );
        wrote = true;
    }
    if !wrote {
        let _ = writeln!(o, "        # no such hosts: {why}");
    }
}

/// ICMP that must pass both ways (ping, and the errors TCP relies on).
const ICMP: &str = "meta l4proto icmp icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept";
const ICMP6_IN: &str = "meta l4proto ipv6-icmp icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept";
const ICMP6_OUT: &str = "meta l4proto ipv6-icmp icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept";

fn head(o: &mut String, hook: &str, policy: &str, lo: &str) {
    let _ = writeln!(
        o,
        "        type filter hook {hook} priority filter; policy {policy};"
    );
    let _ = writeln!(o, "        ct state established,related accept");
    let _ = writeln!(o, "        ct state invalid drop");
    let _ = writeln!(o, "        {lo} \"lo\" accept");
}

/// The chain's last rules: its drop counter (one of [`COUNTERS`]) and log.
fn tail(o: &mut String, (counter, word): (&str, &str)) {
    let _ = writeln!(o, "        counter name \"{counter}\"");
    let _ = writeln!(
        o,
        "        {LOG_LIMIT} log prefix \"rampart drop {word}: \" level info"
    );
}

/// The complete ruleset for `host`.
pub fn render(t: &Topology, host: &str) -> Result<String, NftError> {
    let p = policy(t, host)?;
    let h = p.host;
    let roles: Vec<&str> = h.roles.iter().map(|r| r.name()).collect();
    let mut o = String::new();
    let _ = writeln!(o, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        o,
        "# Host firewall of `{}` (roles: {}), rendered by `rampart firewall render`.",
        h.name,
        roles.join(", ")
    );
    let _ = writeln!(
        o,
        "# Loading this file replaces the table `inet rampart` in one transaction."
    );
    let _ = writeln!(o, "table inet rampart");
    let _ = writeln!(o, "delete table inet rampart");
    let _ = writeln!(o, "table inet rampart {{");
    // `dropped_out` only where the output chain drops: with `egress_open`
    // there is nothing to count, and `firewall stats` shows no `out`.
    let counters = if p.outbound.is_some() {
        &COUNTERS[..]
    } else {
        &COUNTERS[..1]
    };
    for (name, _) in counters {
        let _ = writeln!(o, "    counter {name} {{");
        let _ = writeln!(o, "    }}");
    }
    let _ = writeln!(o, "    chain input {{");
    head(&mut o, "input", "drop", "iif");
    let _ = writeln!(o, "        {ICMP}");
    let _ = writeln!(o, "        {ICMP6_IN}");
    for f in &p.inbound {
        flow(&mut o, f, "saddr");
    }
    for e in &h.extra {
        let _ = writeln!(o, "        {e}");
    }
    tail(&mut o, COUNTERS[0]);
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "    chain forward {{");
    let _ = writeln!(
        o,
        "        type filter hook forward priority filter; policy drop;"
    );
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "    chain output {{");
    match &p.outbound {
        None => {
            let _ = writeln!(
                o,
                "        type filter hook output priority filter; policy accept;"
            );
            let _ = writeln!(
                o,
                "        # egress_open = true: outgoing traffic is not restricted"
            );
        }
        Some(out) => {
            head(&mut o, "output", "drop", "oif");
            let _ = writeln!(o, "        {ICMP}");
            let _ = writeln!(o, "        {ICMP6_OUT}");
            for f in out {
                flow(&mut o, f, "daddr");
            }
        }
    }
    for e in &h.extra_out {
        let _ = writeln!(o, "        {e}");
    }
    if p.outbound.is_some() {
        tail(&mut o, COUNTERS[1]);
        // Refused at once, so a local program fails fast instead of hanging.
        let _ = writeln!(o, "        reject with icmpx type admin-prohibited");
    }
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "}}");
    Ok(o)
}
