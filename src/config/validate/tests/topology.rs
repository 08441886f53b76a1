//! `[topology]` and its hosts.

use super::{loads, refuses};
use crate::config::model::{Dependency, Host, Role, Topology};

fn topology(more: &str, hosts: &str) -> String {
    format!("[topology]\nadmin_cidr = [\"192.0.2.0/24\"]\n{more}{hosts}")
}

const LB: &str = "[[topology.host]]\nname = \"lb1\"\naddresses = [\"10.0.0.1\"]\nroles = [\"lb\"]\n";

fn lb() -> Host {
    Host {
        name: "lb1".into(),
        addresses: vec!["10.0.0.1".parse().expect("an address")],
        roles: vec![Role::Lb],
        ports: Vec::new(),
        extra: Vec::new(),
        extra_out: Vec::new(),
        egress_to: Vec::new(),
        egress_open: false,
    }
}

#[test]
fn topologies() {
    let t = |hosts, ports: [u16; 4]| {
        Some(Topology {
            admin: vec!["192.0.2.0/24".parse().expect("a net")],
            ssh_port: ports[0],
            admin_port: ports[1],
            metrics_port: ports[2],
            db_port: ports[3],
            dns: Vec::new(),
            ntp: Vec::new(),
            mirrors: Vec::new(),
            floating: Vec::new(),
            balancer: Default::default(),
            hosts,
        })
    };
    loads(
        |m| m.topology.clone(),
        vec![
            ("none", "".into(), None),
            (
                "default ports",
                topology("", LB),
                t(vec![lb()], [22, 9900, 9100, 3306]),
            ),
            (
                "every port",
                topology(
                    "ssh_port = 2222\nadmin_port = 9901\nmetrics_port = 9101\ndb_port = 5432\n",
                    LB,
                ),
                t(vec![lb()], [2222, 9901, 9101, 5432]),
            ),
            (
                "every role, IPv6, service ports and extra rules",
                topology(
                    "",
                    "[[topology.host]]\nname = \"all\"\naddresses = [\"10.0.0.2\", \"2001:db8::2\"]\n\
                     roles = [\"lb\", \"web\", \"app\", \"db\", \"monitor\"]\nports = [8000]\n\
                     extra = [\"tcp dport 53 accept\"]\n",
                ),
                t(
                    vec![Host {
                        name: "all".into(),
                        addresses: vec![
                            "10.0.0.2".parse().expect("ip"),
                            "2001:db8::2".parse().expect("ip"),
                        ],
                        roles: vec![Role::Lb, Role::Web, Role::App, Role::Db, Role::Monitor],
                        ports: vec![8000],
                        extra: vec!["tcp dport 53 accept".into()],
                        extra_out: Vec::new(),
                        egress_to: Vec::new(),
                        egress_open: false,
                    }],
                    [22, 9900, 9100, 3306],
                ),
            ),
            (
                "egress: resolvers, dependencies by address, network and host, an opt-out",
                topology(
                    "dns = [\"10.0.0.53\"]\nntp = [\"10.0.0.123\"]\nmirrors = [\"192.0.2.0/24\"]\n\
                     floating_addresses = [\"10.0.0.100\"]\n",
                    &format!(
                        "{LB}egress_to = [\"10.0.0.9:6379\", \"10.1.0.0/16:443\", \"[2001:db8::9]:53\", \"lb1:9900\"]\n\
                         extra_out = [\"udp dport 514 accept\"]\negress_open = true\n"
                    ),
                ),
                Some(Topology {
                    admin: vec!["192.0.2.0/24".parse().expect("a net")],
                    ssh_port: 22,
                    admin_port: 9900,
                    metrics_port: 9100,
                    db_port: 3306,
                    dns: vec!["10.0.0.53/32".parse().expect("a net")],
                    ntp: vec!["10.0.0.123/32".parse().expect("a net")],
                    mirrors: vec!["192.0.2.0/24".parse().expect("a net")],
                    floating: vec!["10.0.0.100".parse().expect("ip")],
                    balancer: Default::default(),
                    hosts: vec![Host {
                        egress_to: [
                            ("10.0.0.9:6379", "10.0.0.9/32", 6379),
                            ("10.1.0.0/16:443", "10.1.0.0/16", 443),
                            ("[2001:db8::9]:53", "2001:db8::9/128", 53),
                            ("lb1:9900", "10.0.0.1/32", 9900),
                        ]
                        .into_iter()
                        .map(|(label, net, port)| Dependency {
                            label: label.into(),
                            nets: vec![net.parse().expect("a net")],
                            port,
                        })
                        .collect(),
                        extra_out: vec!["udp dport 514 accept".into()],
                        egress_open: true,
                        ..lb()
                    }],
                }),
            ),
        ],
    );
}

#[test]
fn topology_mistakes() {
    refuses(vec![
        (
            "a bad admin network",
            "[topology]\nadmin_cidr = [\"office\"]\n".to_string() + LB,
            "2:14: topology.admin_cidr: `office` is not a CIDR block or an IP address",
        ),
        (
            "no admin network",
            "[topology]\n".to_string() + LB,
            "1:1: topology: missing field `admin_cidr`",
        ),
        (
            "no host",
            topology("host = []\n", ""),
            "3:8: topology.host: describe at least one [[topology.host]]",
        ),
        (
            "a host twice",
            topology("", &format!("{LB}{LB}")),
            "8:8: topology.host[1].name: host names must be unique",
        ),
        (
            "a network for an address",
            topology("", "[[topology.host]]\nname = \"h\"\naddresses = [\"10.0.0.0/8\"]\nroles = [\"web\"]\n"),
            "5:13: topology.host[0].addresses: `10.0.0.0/8` is not an IP address",
        ),
        (
            "an unknown role",
            topology("", "[[topology.host]]\nname = \"h\"\naddresses = [\"10.0.0.1\"]\nroles = [\"cache\"]\n"),
            "6:9: topology.host[0].roles: unknown role `cache`: use lb, web, app, db, monitor or etcd",
        ),
        (
            "two rules in one extra entry",
            topology("", &format!("{LB}extra = [\"accept; drop\"]\n")),
            "4:8: topology.host[0].extra: `accept; drop`: one rule per entry, without `;`, braces or newlines",
        ),
        (
            "two rules in one extra_out entry",
            topology("", &format!("{LB}extra_out = [\"accept\", \"ip daddr 1.2.3.4 accept }}\"]\n")),
            "4:8: topology.host[0].extra_out: `ip daddr 1.2.3.4 accept }`: one rule per entry, without `;`, braces or newlines",
        ),
        (
            "a dependency without a port",
            topology("", &format!("{LB}egress_to = [\"10.0.0.9\"]\n")),
            "7:13: topology.host[0].egress_to: `10.0.0.9`: write ADDRESS:PORT, [IPV6]:PORT, CIDR:PORT or HOST:PORT (a host of the topology)",
        ),
        (
            "a dependency on an unknown host",
            topology("", &format!("{LB}egress_to = [\"redis1:6379\"]\n")),
            "7:13: topology.host[0].egress_to: `redis1:6379`: write ADDRESS:PORT, [IPV6]:PORT, CIDR:PORT or HOST:PORT (a host of the topology)",
        ),
        (
            "an IPv6 dependency without brackets",
            topology("", &format!("{LB}egress_to = [\"2001:db8::9:443\"]\n")),
            "7:13: topology.host[0].egress_to: `2001:db8::9:443`: write an IPv6 address in brackets, [ADDRESS]:PORT",
        ),
        (
            "a host name that could end an nft comment",
            topology("", "[[topology.host]]\nname = \"web\\nflush ruleset\"\naddresses = [\"10.0.0.1\"]\nroles = [\"web\"]\n"),
            "4:8: topology.host[0].name: `web\nflush ruleset`: a host name is 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit",
        ),
        (
            "the reserved host name",
            topology("", "[[topology.host]]\nname = \"internet\"\naddresses = [\"10.0.0.1\"]\nroles = [\"web\"]\n"),
            "4:8: topology.host[0].name: `internet` is reserved: it names the outside world in `rampart plan`",
        ),
        (
            "a host without a role",
            topology("", "[[topology.host]]\nname = \"h\"\naddresses = [\"10.0.0.1\"]\nroles = []\n"),
            "6:9: topology.host[0].roles: give the host at least one role: lb, web, app, db or monitor",
        ),
        (
            "a bad resolver",
            topology("dns = [\"resolver\"]\n", LB),
            "3:7: topology.dns: `resolver` is not a CIDR block or an IP address",
        ),
        (
            "a network for a floating address",
            topology("floating_addresses = [\"10.0.0.0/24\"]\n", LB),
            "3:22: topology.floating_addresses: `10.0.0.0/24` is not an IP address",
        ),
        (
            "an acknowledgement of an unknown finding",
            "[[audit.ack]]\nid = \"lb-double\"\nreason = \"x\"\n".to_string(),
            "2:6: audit.ack[0].id: unknown finding `lb-double`: one of lb-single, db-single-writer, db-reachable-from-lb, backend-plaintext, tiers-colocated, tier-no-spare, admin-exposed, host-unmonitored, cert-expiring, tls-weak, rule-unreachable, firewall-not-applied, firewall-drift, egress-open, egress-blocked, limits-per-instance, fleet-node-refused, fleet-node-behind, fleet-etcd-single",
        ),
        (
            "an acknowledgement without a reason",
            "[[audit.ack]]\nid = \"lb-single\"\nreason = \"  \"\n".to_string(),
            "3:10: audit.ack[0].reason: say why the finding is accepted",
        ),
        (
            "a bad expiry horizon",
            "[audit]\ncert_warning = \"soon\"\n".to_string(),
            "2:16: audit.cert_warning: `soon` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
        (
            "a port out of range",
            topology("ssh_port = 70000\n", LB),
            "3:12: topology.ssh_port: invalid value: integer `70000`, expected a whole number, at most 65535",
        ),
    ]);
}
