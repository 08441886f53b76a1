//! `[topology]`: the hosts of the infrastructure (addresses, roles, ports,
//! extra nft rules) and the admin networks, for the host firewalls.

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

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
            let mut addresses = Vec::new();
            for a in h.addresses.get_ref() {
                addresses.push(a.parse().map_err(|_| {
                    self.at(
                        &h.addresses,
                        &format!("{key}.addresses"),
                        format!("`{a}` is not an IP address"),
                    )
                })?);
            }
            let mut roles = Vec::new();
            for r in h.roles.get_ref() {
                roles.push(Role::parse(r).ok_or_else(|| {
                    self.at(
                        &h.roles,
                        &format!("{key}.roles"),
                        format!("unknown role `{r}`: use lb, web, app, db or monitor"),
                    )
                })?);
            }
            for e in &h.extra {
                if e.contains(['\n', ';', '{', '}']) {
                    return Err(self.at(
                        &h.name,
                        &format!("{key}.extra"),
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
            });
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
            hosts,
        })
    }
}
