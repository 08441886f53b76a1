//! Host firewalls: an nftables ruleset for every host of the `[topology]`,
//! rendered from the same description, so the proxy's view and the hosts'
//! firewalls never disagree.
//!
//! Every ruleset drops inbound traffic by default and allows: established
//! and related traffic, loopback, essential ICMP/ICMPv6, ssh from the admin
//! network, and what the host's roles need — `lb`: 80/443 from anywhere and
//! the admin API from the admin network and monitor hosts; `web`/`app`: their
//! service ports from the load balancers only; `db`: 3306 from web and app
//! hosts only; every host: its metrics port from monitor hosts. Extra rules
//! per host come last. The whole `inet rampart` table is replaced in one
//! `nft -f` transaction; `apply` checks the file with `nft -c` first and
//! restores the previous table if loading fails.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use ipnet::IpNet;

use crate::config::defaults::{APP_PORT, WEB_PORT};
use crate::config::model::{Role, Topology};

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("no host is named `{0}` in [topology]")]
    NoHost(String),
    #[error("cannot run nft: {0}")]
    Run(std::io::Error),
    #[error("nft refused the ruleset ({step}): {stderr}")]
    Refused { step: &'static str, stderr: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

fn addrs(t: &Topology, role: Role) -> Vec<IpAddr> {
    t.hosts
        .iter()
        .filter(|h| h.roles.contains(&role))
        .flat_map(|h| h.addresses.iter().copied())
        .collect()
}

/// The complete ruleset for `host`.
pub fn render(t: &Topology, host: &str) -> Result<String, NftError> {
    let h = t
        .hosts
        .iter()
        .find(|x| x.name == host)
        .ok_or_else(|| NftError::NoHost(host.to_string()))?;
    let roles: Vec<String> = h.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
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
    let admin: Vec<IpNet> = t.admin.clone();
    let nets = |v: Vec<IpAddr>| v.into_iter().map(IpNet::from).collect::<Vec<_>>();
    let sets: Vec<(&str, Vec<IpNet>)> = vec![
        ("admin", admin),
        ("lb", nets(addrs(t, Role::Lb))),
        (
            "web_app",
            nets([addrs(t, Role::Web), addrs(t, Role::App)].concat()),
        ),
        ("monitor", nets(addrs(t, Role::Monitor))),
    ];
    for (name, list) in &sets {
        for (fam, ty, v6) in [("4", "ipv4_addr", false), ("6", "ipv6_addr", true)] {
            let mut elems: Vec<String> = list
                .iter()
                .filter(|n| matches!(n, IpNet::V6(_)) == v6)
                .map(|n| n.trunc().to_string())
                .collect();
            elems.sort();
            elems.dedup();
            let _ = writeln!(o, "    set {name}{fam} {{");
            let _ = writeln!(o, "        type {ty}; flags interval;");
            if !elems.is_empty() {
                let _ = writeln!(o, "        elements = {{ {} }}", elems.join(", "));
            }
            let _ = writeln!(o, "    }}");
        }
    }
    let _ = writeln!(o, "    chain input {{");
    let _ = writeln!(o, "        type filter hook input priority filter; policy drop;");
    let _ = writeln!(o, "        ct state established,related accept");
    let _ = writeln!(o, "        ct state invalid drop");
    let _ = writeln!(o, "        iif \"lo\" accept");
    let _ = writeln!(o, "        meta l4proto icmp icmp type {{ echo-request, destination-unreachable, time-exceeded, parameter-problem }} accept");
    let _ = writeln!(
        o,
        "        meta l4proto ipv6-icmp icmpv6 type {{ echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }} accept"
    );
    let from = |o: &mut String, set: &str, ports: &str, what: &str| {
        let _ = writeln!(
            o,
            "        ip saddr @{set}4 tcp dport {ports} accept comment \"{what}\""
        );
        let _ = writeln!(
            o,
            "        ip6 saddr @{set}6 tcp dport {ports} accept comment \"{what}\""
        );
    };
    from(
        &mut o,
        "admin",
        &t.ssh_port.to_string(),
        "ssh from the admin network",
    );
    from(
        &mut o,
        "monitor",
        &t.metrics_port.to_string(),
        "metrics scraped by monitor hosts",
    );
    if h.roles.contains(&Role::Lb) {
        let _ = writeln!(
            o,
            "        tcp dport {{ 80, 443 }} accept comment \"load balancer: HTTP and HTTPS from anywhere\""
        );
        from(
            &mut o,
            "admin",
            &t.admin_port.to_string(),
            "rampart admin API from the admin network",
        );
        from(
            &mut o,
            "monitor",
            &t.admin_port.to_string(),
            "rampart /metrics for monitor hosts",
        );
    }
    if h.roles.iter().any(|r| matches!(r, Role::Web | Role::App)) {
        let mut ports = h.ports.clone();
        if ports.is_empty() {
            if h.roles.contains(&Role::Web) {
                ports.push(WEB_PORT);
            }
            if h.roles.contains(&Role::App) {
                ports.push(APP_PORT);
            }
        }
        let list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        from(
            &mut o,
            "lb",
            &format!("{{ {list} }}"),
            "service ports from the load balancers only",
        );
    }
    if h.roles.contains(&Role::Db) {
        from(
            &mut o,
            "web_app",
            &t.db_port.to_string(),
            "database from web and app hosts only",
        );
    }
    for e in &h.extra {
        let _ = writeln!(o, "        {e}");
    }
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "    chain forward {{");
    let _ = writeln!(
        o,
        "        type filter hook forward priority filter; policy drop;"
    );
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "    chain output {{");
    let _ = writeln!(
        o,
        "        type filter hook output priority filter; policy accept;"
    );
    let _ = writeln!(o, "    }}");
    let _ = writeln!(o, "}}");
    Ok(o)
}

fn nft(args: &[&str]) -> Result<std::process::Output, NftError> {
    Command::new("nft").args(args).output().map_err(NftError::Run)
}

/// Checks and loads `host`'s ruleset; keeps the previous `inet rampart`
/// table in `state_dir` and restores it if loading fails. Returns the path
/// of the file loaded.
pub fn apply(topology: &Topology, host: &str, state_dir: &Path) -> Result<std::path::PathBuf, NftError> {
    let rules = render(topology, host)?;
    let dir = state_dir.join("nft");
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |source| NftError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(werr(&dir))?;
    let file = dir.join(format!("{host}.nft"));
    std::fs::write(&file, &rules).map_err(werr(&file))?;
    let f = file.to_string_lossy().to_string();
    let check = nft(&["-c", "-f", &f])?;
    if !check.status.success() {
        return Err(NftError::Refused {
            step: "check",
            stderr: String::from_utf8_lossy(&check.stderr).trim().to_string(),
        });
    }
    // Keep what is there now, to roll back to.
    let previous = nft(&["list", "table", "inet", "rampart"])?;
    let rollback = dir.join(format!("{host}.previous.nft"));
    let had_previous = previous.status.success();
    if had_previous {
        let mut text = String::from("table inet rampart\ndelete table inet rampart\n");
        text.push_str(&String::from_utf8_lossy(&previous.stdout));
        std::fs::write(&rollback, text).map_err(werr(&rollback))?;
    }
    let load = nft(&["-f", &f])?;
    if !load.status.success() {
        let stderr = String::from_utf8_lossy(&load.stderr).trim().to_string();
        if had_previous {
            let _ = nft(&["-f", &rollback.to_string_lossy()]);
        }
        return Err(NftError::Refused { step: "load", stderr });
    }
    Ok(file)
}
