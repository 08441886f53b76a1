//! Findings about a fleet ([`FleetFacts`], read from its etcd by the
//! command): nodes that refused the current revision or run an older one,
//! and an etcd of one member.

use super::{Finding, Severity};

/// What the fleet's etcd says, gathered by `rampart audit`.
#[derive(Debug, Clone, Default)]
pub struct FleetFacts {
    /// The current revision (0: none pushed).
    pub current: u64,
    pub nodes: Vec<FleetNode>,
    /// etcd's members.
    pub etcd_members: usize,
}

/// One node as it reports itself under `status/NODE`.
#[derive(Debug, Clone)]
pub struct FleetNode {
    pub node: String,
    /// The revision it serves.
    pub revision: u64,
    /// A revision it refused, and why.
    pub refused: Option<(u64, String)>,
}

pub(super) fn check(f: &FleetFacts, out: &mut Vec<Finding>) {
    for n in &f.nodes {
        match &n.refused {
            Some((r, why)) if *r == f.current => out.push(Finding::new(
                "fleet-node-refused",
                Severity::High,
                &n.node,
                format!(
                    "{} refused the fleet's revision {r} and still serves revision {}: {why}",
                    n.node, n.revision
                ),
                "fix what the node says (a file missing there, a setting its host refuses) and push again, or roll back (`rampart fleet rollback`)",
            )),
            _ if n.revision < f.current => out.push(Finding::new(
                "fleet-node-behind",
                Severity::Medium,
                &n.node,
                format!(
                    "{} serves revision {} while the fleet is at revision {}: it is stopped, or cannot reach etcd",
                    n.node, n.revision, f.current
                ),
                "start the node or restore its path to etcd; it catches up by itself (`rampart fleet status`)",
            )),
            _ => {}
        }
    }
    if f.etcd_members == 1 {
        out.push(Finding::new(
            "fleet-etcd-single",
            Severity::High,
            "etcd",
            "the fleet's etcd has one member: while it is down no revision can be pushed, runtime changes are refused and certificates cannot be renewed by the fleet",
            "run three etcd members (one per balancer plus one elsewhere; docs/fleet.md) and list them all in [fleet] etcd",
        ));
    }
}
