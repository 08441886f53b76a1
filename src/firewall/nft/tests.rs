//! The policy's role rules that the golden files do not show.

use super::{policy, render, Proto};
use crate::config::model::{Host, Role, Topology};

fn host(name: &str, addr: &str, roles: &[Role]) -> Host {
    Host {
        name: name.into(),
        addresses: vec![addr.parse().expect("an address")],
        roles: roles.to_vec(),
        ports: Vec::new(),
        extra: Vec::new(),
        extra_out: Vec::new(),
        egress_to: Vec::new(),
        egress_open: false,
    }
}

fn topology(hosts: Vec<Host>) -> Topology {
    Topology {
        admin: vec!["10.9.0.0/24".parse().expect("a net")],
        ssh_port: 22,
        admin_port: 9900,
        metrics_port: 9100,
        db_port: 3306,
        dns: Vec::new(),
        ntp: Vec::new(),
        mirrors: Vec::new(),
        floating: Vec::new(),
        balancer: Default::default(),
        hosts,
    }
}

#[test]
fn vrrp_passes_between_balancers_only_when_there_are_two() {
    let one = topology(vec![host("lb1", "10.0.0.1", &[Role::Lb])]);
    let p = policy(&one, "lb1").expect("policy");
    assert!(p.inbound.iter().all(|f| f.proto != Proto::Vrrp));
    let two = topology(vec![
        host("lb1", "10.0.0.1", &[Role::Lb]),
        host("lb2", "10.0.0.2", &[Role::Lb]),
    ]);
    let text = render(&two, "lb1").expect("render");
    assert!(
        text.contains("ip saddr 10.0.0.2 ip protocol vrrp accept"),
        "{text}"
    );
    assert!(
        text.contains("ip daddr { 10.0.0.2, 224.0.0.18 } ip protocol vrrp accept"),
        "{text}"
    );
}

#[test]
fn egress_open_leaves_the_output_chain_accepting() {
    let mut mon = host("mon", "10.0.0.4", &[Role::Monitor]);
    mon.egress_open = true;
    mon.extra_out.push("udp dport 514 accept".into());
    let t = topology(vec![
        mon,
        host("db", "10.0.0.3", &[Role::Db]),
        host("db2", "10.0.0.6", &[Role::Db]),
    ]);
    assert!(policy(&t, "mon").expect("policy").outbound.is_none());
    let text = render(&t, "mon").expect("render");
    let out = &text[text.find("chain output").expect("output chain")..];
    assert!(
        out.contains("policy accept;") && out.contains("udp dport 514 accept"),
        "{out}"
    );
    assert!(!out.contains("reject"), "{out}");
    // A database host, restricted, reaches the other one's port and nothing else.
    let db = policy(&t, "db").expect("policy");
    let out = db.outbound.expect("restricted");
    let reaches = |ip: &str, port: u16| {
        out.iter()
            .any(|f| f.ports.contains(&port) && f.admits(ip.parse().expect("ip")))
    };
    assert!(reaches("10.0.0.6", 3306), "{out:?}");
    assert!(!reaches("10.0.0.4", 9100) && !reaches("10.0.0.6", 22), "{out:?}");
}

#[test]
fn a_web_host_reaches_app_and_db_hosts_and_an_app_host_takes_web_traffic() {
    let t = topology(vec![
        host("web", "10.0.0.2", &[Role::Web]),
        host("app", "10.0.0.5", &[Role::App]),
        host("db", "10.0.0.3", &[Role::Db]),
    ]);
    let web = policy(&t, "web").expect("policy").outbound.expect("restricted");
    let to = |ip: &str, port: u16| {
        web.iter()
            .any(|f| f.ports.contains(&port) && f.admits(ip.parse().expect("ip")))
    };
    assert!(to("10.0.0.5", 8080) && to("10.0.0.3", 3306));
    assert!(!to("10.0.0.3", 8080));
    let app = policy(&t, "app").expect("policy").inbound;
    assert!(app
        .iter()
        .any(|f| f.ports == [8080] && f.admits("10.0.0.2".parse().expect("ip"))));
}

#[test]
fn http3_listeners_open_their_udp_port_on_the_balancers_only() {
    let mut t = topology(vec![
        host("lb", "10.0.0.1", &[Role::Lb]),
        host("web", "10.0.0.2", &[Role::Web]),
    ]);
    t.balancer.quic_ports = vec![443];
    let lb = policy(&t, "lb").expect("policy");
    assert!(
        lb.inbound.iter().any(|f| f.proto == Proto::Udp
            && f.ports == [443]
            && f.admits("203.0.113.9".parse().expect("ip"))),
        "{:?}",
        lb.inbound
    );
    let web = policy(&t, "web").expect("policy");
    assert!(
        !web.inbound.iter().any(|f| f.proto == Proto::Udp),
        "{:?}",
        web.inbound
    );
    let text = render(&t, "lb").expect("render");
    assert!(text.contains("udp dport 443"), "{text}");
}

#[test]
fn a_database_endpoint_on_its_own_port_is_reachable_both_ways() {
    let mut t = topology(vec![
        host("lb", "10.0.0.1", &[Role::Lb]),
        host("web", "10.0.0.2", &[Role::Web]),
        host("db", "10.0.0.3", &[Role::Db]),
    ]);
    t.balancer.db_ports = vec![3307];
    let admits = |flows: &[super::Flow], ip: &str, port: u16| {
        flows
            .iter()
            .any(|f| f.ports.contains(&port) && f.admits(ip.parse().expect("ip")))
    };
    let lb = policy(&t, "lb").expect("policy");
    assert!(admits(&lb.inbound, "10.0.0.2", 3307), "{:?}", lb.inbound);
    let web = policy(&t, "web").expect("policy").outbound.expect("restricted");
    assert!(
        admits(&web, "10.0.0.1", 3307),
        "web reaches the endpoint's port: {web:?}"
    );
    assert!(!admits(&web, "10.0.0.1", 3306), "{web:?}");
    // The balancer reaches the database servers on their own port.
    let out = lb.outbound.expect("restricted");
    assert!(admits(&out, "10.0.0.3", 3306), "{out:?}");
}

#[test]
fn etcd_members_take_the_balancers_and_each_other_and_nothing_else() {
    let t = topology(vec![
        host("lb1", "10.0.0.1", &[Role::Lb, Role::Etcd]),
        host("lb2", "10.0.0.2", &[Role::Lb, Role::Etcd]),
        host("e3", "10.0.0.3", &[Role::Etcd]),
        host("web", "10.0.0.4", &[Role::Web]),
    ]);
    let admits = |host: &str, from: &str, port: u16| {
        policy(&t, host)
            .expect("policy")
            .inbound
            .iter()
            .any(|f| f.ports.contains(&port) && f.admits(from.parse().expect("ip")))
    };
    // Clients on 2379: the balancers and the members; peers on 2380: members.
    assert!(admits("e3", "10.0.0.1", 2379) && admits("e3", "10.0.0.2", 2379));
    assert!(admits("lb1", "10.0.0.3", 2379) && admits("lb1", "10.0.0.3", 2380));
    assert!(admits("lb1", "10.0.0.2", 2380));
    assert!(!admits("e3", "10.0.0.4", 2379), "a web host reaches etcd");
    assert!(!admits("web", "10.0.0.3", 2379));
    let reaches = |host: &str, to: &str, port: u16| {
        policy(&t, host)
            .expect("policy")
            .outbound
            .expect("restricted")
            .iter()
            .any(|f| f.ports.contains(&port) && f.admits(to.parse().expect("ip")))
    };
    assert!(reaches("lb1", "10.0.0.3", 2379) && reaches("e3", "10.0.0.1", 2380));
    assert!(!reaches("web", "10.0.0.3", 2379));
    let text = render(&t, "e3").expect("render");
    assert!(text.contains("tcp dport 2380"), "{text}");
}
