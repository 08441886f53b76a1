//! What a host's firewall lets in and out, as data: the one place where
//! roles become allowed flows. The nftables text (`render`), `rampart plan`
//! and `rampart audit` all read it, so they cannot disagree.

use std::net::IpAddr;

use ipnet::IpNet;

use super::NftError;
use crate::config::defaults::{APP_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, WEB_PORT};
use crate::config::model::{Host, Role, Topology};

/// The transport a flow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// keepalived's adverts (IP protocol 112, no ports).
    Vrrp,
}

impl Proto {
    /// Its name in nft, the plan and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Vrrp => "vrrp",
        }
    }
}

/// The other end of a flow: a host of the topology or a named network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Peer {
    /// A host name, or what the networks are (`admin network`, `dns`).
    pub name: String,
    /// True when `name` is a host of the topology.
    pub host: bool,
    pub nets: Vec<IpNet>,
}

/// One allowed flow. `peers: None` means anywhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flow {
    pub peers: Option<Vec<Peer>>,
    pub proto: Proto,
    pub ports: Vec<u16>,
    pub why: String,
    /// Opened for rampart's own database endpoints (the controlled path
    /// from the balancers to the database).
    #[serde(skip)]
    pub db_endpoint: bool,
}

impl Flow {
    /// This flow, marked as one rampart's database endpoints need.
    fn for_db_endpoints(self) -> Flow {
        Flow {
            db_endpoint: true,
            ..self
        }
    }

    /// Does this flow admit `addr`?
    pub fn admits(&self, addr: IpAddr) -> bool {
        self.peers
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| p.nets.iter().any(|n| n.contains(&addr))))
    }
}

/// A host's firewall: what may reach it and what it may reach.
#[derive(Debug, Clone)]
pub struct HostPolicy<'a> {
    pub host: &'a Host,
    pub inbound: Vec<Flow>,
    /// None when `egress_open` leaves outgoing traffic unrestricted.
    pub outbound: Option<Vec<Flow>>,
}

/// The service ports of a `web`/`app` host (its `ports`, or the defaults).
pub fn service_ports(h: &Host) -> Vec<u16> {
    if !h.ports.is_empty() {
        return h.ports.clone();
    }
    let mut p = Vec::new();
    if h.has(Role::Web) {
        p.push(WEB_PORT);
    }
    if h.has(Role::App) {
        p.push(APP_PORT);
    }
    p
}

fn peer(h: &Host) -> Peer {
    Peer {
        name: h.name.clone(),
        host: true,
        nets: h.addresses.iter().map(|a| IpNet::from(*a)).collect(),
    }
}

fn hosts<'t>(t: &'t Topology, me: &Host, pick: impl Fn(&Host) -> bool + 't) -> Vec<&'t Host> {
    t.hosts.iter().filter(|h| h.name != me.name && pick(h)).collect()
}

fn from_hosts(list: &[&Host]) -> Option<Vec<Peer>> {
    Some(list.iter().map(|h| peer(h)).collect())
}

fn net(name: &str, nets: &[IpNet]) -> Option<Vec<Peer>> {
    Some(vec![Peer {
        name: name.to_string(),
        host: false,
        nets: nets.to_vec(),
    }])
}

fn flow(proto: Proto, peers: Option<Vec<Peer>>, ports: Vec<u16>, why: impl Into<String>) -> Flow {
    Flow {
        peers,
        proto,
        ports,
        why: why.into(),
        db_endpoint: false,
    }
}

fn tcp(peers: Option<Vec<Peer>>, ports: Vec<u16>, why: impl Into<String>) -> Flow {
    flow(Proto::Tcp, peers, ports, why)
}

/// The policy of the host named `name`.
pub fn policy<'t>(t: &'t Topology, name: &str) -> Result<HostPolicy<'t>, NftError> {
    let h = t
        .hosts
        .iter()
        .find(|x| x.name == name)
        .ok_or_else(|| NftError::NoHost(name.to_string()))?;
    Ok(policy_of(t, h))
}

/// The policy of `h`, a host of `t`.
pub fn policy_of<'t>(t: &'t Topology, h: &'t Host) -> HostPolicy<'t> {
    HostPolicy {
        host: h,
        inbound: inbound(t, h),
        outbound: (!h.egress_open).then(|| outbound(t, h)),
    }
}

fn inbound(t: &Topology, h: &Host) -> Vec<Flow> {
    let monitors = hosts(t, h, |x| x.has(Role::Monitor));
    let lbs = hosts(t, h, |x| x.has(Role::Lb));
    let mut v = vec![
        tcp(
            net("admin network", &t.admin),
            vec![t.ssh_port],
            "ssh from the admin network",
        ),
        tcp(
            from_hosts(&monitors),
            vec![t.metrics_port],
            "metrics scraped by monitor hosts",
        ),
    ];
    if h.has(Role::Lb) {
        v.push(tcp(
            None,
            vec![80, 443],
            "load balancer: HTTP and HTTPS from anywhere",
        ));
        if !t.balancer.quic_ports.is_empty() {
            v.push(flow(
                Proto::Udp,
                None,
                t.balancer.quic_ports.clone(),
                "load balancer: HTTP/3 (QUIC) from anywhere",
            ));
        }
        v.push(tcp(
            net("admin network", &t.admin),
            vec![t.admin_port],
            "rampart admin API from the admin network",
        ));
        let readers = hosts(t, h, |x| x.has(Role::Monitor) || x.has(Role::Lb));
        v.push(tcp(
            from_hosts(&readers),
            vec![t.admin_port],
            "rampart /metrics and /api/stats for monitor hosts and the other balancers",
        ));
        if !t.balancer.db_ports.is_empty() {
            let clients = hosts(t, h, |x| x.has(Role::Web) || x.has(Role::App));
            v.push(
                tcp(
                    from_hosts(&clients),
                    t.balancer.db_ports.clone(),
                    "rampart's database endpoints, for web and app hosts",
                )
                .for_db_endpoints(),
            );
        }
        if !lbs.is_empty() {
            v.push(flow(
                Proto::Vrrp,
                from_hosts(&lbs),
                Vec::new(),
                "VRRP adverts from the other balancers",
            ));
        }
    }
    if h.has(Role::Web) || h.has(Role::App) {
        v.push(tcp(
            from_hosts(&lbs),
            service_ports(h),
            "service ports from the load balancers only",
        ));
    }
    if h.has(Role::App) {
        let webs = hosts(t, h, |x| x.has(Role::Web) && !x.has(Role::App));
        if !webs.is_empty() {
            v.push(tcp(
                from_hosts(&webs),
                service_ports(h),
                "app ports from the web hosts",
            ));
        }
    }
    if h.has(Role::Etcd) {
        let clients = hosts(t, h, |x| x.has(Role::Lb) || x.has(Role::Etcd));
        v.push(tcp(
            from_hosts(&clients),
            vec![ETCD_CLIENT_PORT],
            "etcd clients: the balancers (the fleet's configuration) and the other members",
        ));
        let members = hosts(t, h, |x| x.has(Role::Etcd));
        if !members.is_empty() {
            v.push(tcp(
                from_hosts(&members),
                vec![ETCD_PEER_PORT],
                "etcd peers: the other members",
            ));
        }
    }
    if h.has(Role::Db) {
        let clients = hosts(t, h, |x| x.has(Role::Web) || x.has(Role::App));
        v.push(tcp(
            from_hosts(&clients),
            vec![t.db_port],
            "database from web and app hosts only",
        ));
        if !t.balancer.db_ports.is_empty() {
            v.push(
                tcp(
                    from_hosts(&lbs),
                    vec![t.db_port],
                    "rampart's database endpoints on the balancers",
                )
                .for_db_endpoints(),
            );
        }
        let peers = hosts(t, h, |x| x.has(Role::Db));
        if !peers.is_empty() {
            v.push(tcp(
                from_hosts(&peers),
                vec![t.db_port],
                "replication between database hosts",
            ));
        }
    }
    v
}

fn outbound(t: &Topology, h: &Host) -> Vec<Flow> {
    let lbs = hosts(t, h, |x| x.has(Role::Lb));
    let mut v = Vec::new();
    if !t.dns.is_empty() {
        for proto in [Proto::Udp, Proto::Tcp] {
            v.push(flow(proto, net("dns", &t.dns), vec![53], "DNS resolvers"));
        }
    }
    if !t.ntp.is_empty() {
        v.push(flow(Proto::Udp, net("ntp", &t.ntp), vec![123], "NTP servers"));
    }
    if !t.mirrors.is_empty() {
        v.push(tcp(net("mirrors", &t.mirrors), vec![80, 443], "package mirrors"));
    }
    if h.has(Role::Lb) {
        for w in hosts(t, h, |x| x.has(Role::Web) || x.has(Role::App)) {
            v.push(tcp(
                from_hosts(&[w]),
                service_ports(w),
                format!("balancing and health checks to {}", w.name),
            ));
        }
        if !t.balancer.db_ports.is_empty() {
            let dbs = hosts(t, h, |x| x.has(Role::Db));
            v.push(
                tcp(
                    from_hosts(&dbs),
                    vec![t.db_port],
                    "rampart's database endpoints and their mysql checks",
                )
                .for_db_endpoints(),
            );
        }
        for d in &t.balancer.egress {
            v.push(tcp(net(&d.label, &d.nets), vec![d.port], d.label.clone()));
        }
        if t.balancer.acme {
            v.push(tcp(None, vec![443], "the ACME CA (its addresses are not fixed)"));
        }
        if !lbs.is_empty() {
            v.push(tcp(
                from_hosts(&lbs),
                vec![t.admin_port],
                "the fleet view: the other balancers' /api/stats",
            ));
            let mut peers = from_hosts(&lbs).unwrap_or_default();
            peers.push(Peer {
                name: "VRRP multicast".into(),
                host: false,
                // VRRP's multicast groups, IPv4 and IPv6 (VRRPv3).
                nets: vec![
                    IpNet::from(IpAddr::from([224, 0, 0, 18])),
                    IpNet::from(IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12])),
                ],
            });
            v.push(flow(
                Proto::Vrrp,
                Some(peers),
                Vec::new(),
                "VRRP adverts to the other balancers",
            ));
        }
    }
    let members = hosts(t, h, |x| x.has(Role::Etcd));
    if h.has(Role::Lb) && !members.is_empty() {
        v.push(tcp(
            from_hosts(&members),
            vec![ETCD_CLIENT_PORT],
            "the fleet's etcd",
        ));
    }
    if h.has(Role::Etcd) && !members.is_empty() {
        v.push(tcp(
            from_hosts(&members),
            vec![ETCD_CLIENT_PORT, ETCD_PEER_PORT],
            "etcd peers: the other members",
        ));
    }
    if h.has(Role::Web) {
        for a in hosts(t, h, |x| x.has(Role::App) && !x.has(Role::Web)) {
            v.push(tcp(
                from_hosts(&[a]),
                service_ports(a),
                format!("the app tier: {}", a.name),
            ));
        }
    }
    if h.has(Role::Web) || h.has(Role::App) || h.has(Role::Db) {
        let dbs = hosts(t, h, |x| x.has(Role::Db));
        if !dbs.is_empty() {
            let why = if h.has(Role::Db) {
                "replication between database hosts"
            } else {
                "the database tier"
            };
            v.push(tcp(from_hosts(&dbs), vec![t.db_port], why));
        }
    }
    if h.has(Role::Monitor) {
        let all = hosts(t, h, |_| true);
        v.push(tcp(
            from_hosts(&all),
            vec![t.metrics_port],
            "scraping every host's metrics",
        ));
        if !lbs.is_empty() {
            v.push(tcp(
                from_hosts(&lbs),
                vec![t.admin_port],
                "scraping rampart's /metrics",
            ));
        }
    }
    if !t.balancer.db_ports.is_empty() && (h.has(Role::Web) || h.has(Role::App)) && !h.has(Role::Lb) {
        let mut peers = from_hosts(&lbs).unwrap_or_default();
        if !t.floating.is_empty() {
            peers.push(Peer {
                name: "floating addresses".into(),
                host: false,
                nets: t.floating.iter().map(|a| IpNet::from(*a)).collect(),
            });
        }
        v.push(
            tcp(
                Some(peers),
                t.balancer.db_ports.clone(),
                "rampart's database endpoints on the balancers",
            )
            .for_db_endpoints(),
        );
    }
    for d in &h.egress_to {
        v.push(tcp(
            net(&d.label, &d.nets),
            vec![d.port],
            format!("egress_to {}", d.label),
        ));
    }
    v
}
