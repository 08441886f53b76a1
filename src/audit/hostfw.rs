//! `firewall-not-applied` and `firewall-drift`: the host firewalls as
//! `rampart firewall apply` left them in the state directory, compared with
//! what the config renders now; for this machine's own host, the kernel's
//! live table too.

use super::{Finding, Local, Severity};
use crate::config::model::{Model, Topology};
use crate::firewall::nft::{self, Drift};

/// The topology host whose address is assigned to this machine: binding
/// a socket to an address succeeds only where it is local.
fn detect(t: &Topology) -> Option<String> {
    t.hosts
        .iter()
        .find(|h| {
            h.addresses.iter().any(|a| {
                !a.is_loopback()
                    && !a.is_unspecified()
                    && !a.is_multicast()
                    && std::net::UdpSocket::bind((*a, 0)).is_ok()
            })
        })
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
        let drift = match nft::diff(t, &h.name, &m.state_dir, mine && local.live) {
            Ok(d) => d,
            Err(e) if mine => {
                notes.push(format!(
                    "{}: the live ruleset could not be read ({e}); compared with the config only",
                    h.name
                ));
                match nft::diff(t, &h.name, &m.state_dir, false) {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            }
            Err(_) => continue,
        };
        match drift {
            Drift::NeverApplied if mine => out.push(Finding::new(
                "firewall-not-applied",
                Severity::High,
                &h.name,
                format!("{}'s host firewall was never applied from {} (no {}.applied.nft): the host runs with whatever firewall it had", h.name, m.state_dir.join("nft").display(), h.name),
                format!("run `rampart firewall apply -c CONFIG --host {}` on the host", h.name),
            )),
            Drift::NeverApplied | Drift::Same => {}
            Drift::Differs { config, live } => {
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
                    format!("{}: {} (`rampart firewall diff --host {}` shows it)", h.name, what.join("; "), h.name),
                    format!("apply it again: `rampart firewall apply -c CONFIG --host {}`", h.name),
                ));
            }
        }
    }
}
