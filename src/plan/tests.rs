//! The plan of a small topology: flows from the firewall policy, monitors,
//! certificates, and a diagram that is well-formed XML naming every host.

use std::path::Path;

use super::{plan, svg, text, INTERNET};
use crate::config::fake_env::FakeEnv;

const TOML: &str = r#"
[admin]
enabled = false
[runtime]
state_dir = "/tmp/rampart-plan-test-unused"
[[listener]]
name = "site"
address = "0.0.0.0:443"
protocol = "https"
[[listener.certificate]]
cert = "site.pem"
key = "site.key"
[[pool]]
name = "web"
[pool.tls]
ca = "system"
[[pool.server]]
name = "web1"
address = "10.0.1.1:443"
[[route]]
pool = "web"
[topology]
admin_cidr = ["10.0.9.0/24"]
floating_addresses = ["10.0.0.10"]
[[topology.host]]
name = "lb1"
addresses = ["10.0.0.1"]
roles = ["lb"]
[[topology.host]]
name = "lb2"
addresses = ["10.0.0.2"]
roles = ["lb"]
[[topology.host]]
name = "web1"
addresses = ["10.0.1.1"]
roles = ["web"]
ports = [443]
[[topology.host]]
name = "db1"
addresses = ["10.0.3.1"]
roles = ["db"]
egress_open = true
[[topology.host]]
name = "mon"
addresses = ["10.0.9.40"]
roles = ["monitor"]
"#;

fn model() -> crate::config::model::Model {
    let env = FakeEnv::default().dir("/etc/rampart").cert(
        "/etc/rampart/site.pem",
        "/etc/rampart/site.key",
        &["example.com"],
        4_102_444_800,
    );
    crate::config::load_str(TOML, "t.toml", Path::new("/etc/rampart"), &env).expect("loads")
}

#[test]
fn hosts_their_flows_monitors_and_certificates() {
    let p = plan(&model()).expect("a topology");
    let lb1 = &p.hosts[0];
    assert_eq!((lb1.name.as_str(), lb1.tier), ("lb1", "lb"));
    assert!(
        lb1.components.iter().any(|c| c.starts_with("keepalived")),
        "{:?}",
        lb1.components
    );
    assert!(lb1
        .reachable_from
        .iter()
        .any(|a| a.peers == ["anywhere"] && a.ports == [80, 443]));
    assert_eq!(lb1.monitored_by, ["mon"]);
    assert!(
        lb1.certificates
            .iter()
            .any(|c| c.contains("site.pem for example.com")),
        "{:?}",
        lb1.certificates
    );
    let web1 = &p.hosts[2];
    assert!(
        web1.certificates
            .iter()
            .any(|c| c.contains("verified by pool web")),
        "{:?}",
        web1.certificates
    );
    assert!(web1
        .reachable_from
        .iter()
        .any(|a| a.peers == ["lb1", "lb2"] && a.ports == [443]));
    assert!(p.hosts[3].may_reach.is_none(), "egress_open");
    let edge = |from: &str, to: &str| p.edges.iter().any(|e| e.from == from && e.to == to);
    assert!(edge(INTERNET, "lb1") && edge("lb1", "web1") && edge("web1", "db1") && edge("mon", "web1"));
    assert!(!edge("lb1", "db1"), "balancers do not reach the database");
    let t = text(&p);
    assert!(
        t.contains("web1 [web] 10.0.1.1") && t.contains("monitored by: mon"),
        "{t}"
    );
    assert!(t.contains("may reach: anything (egress_open)"), "{t}");
}

#[test]
fn the_diagram_is_well_formed_and_escapes_names() {
    // Names are checked at load; the drawing escapes what it writes anyway.
    let mut p = plan(&model()).expect("a topology");
    p.hosts[3].name = "db<1>".into();
    for e in &mut p.edges {
        for end in [&mut e.from, &mut e.to] {
            if end == "db1" {
                *end = "db<1>".into();
            }
        }
    }
    let s = svg(&p);
    assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{s}");
    assert!(s.trim_end().ends_with("</svg>"));
    for name in ["lb1", "lb2", "web1", "mon"] {
        assert!(s.contains(&format!("data-name=\"{name}\"")), "{name}");
    }
    assert!(
        s.contains("db&lt;1&gt;") && !s.contains("db<1>"),
        "names are escaped"
    );
    assert!(
        s.contains(r#"data-from="lb1" data-to="web1""#),
        "an arrow per flow"
    );
    assert!(s.contains(r#"data-from="internet" data-to="lb1""#));
    // Every element opened is closed (a cheap well-formedness check).
    for tag in ["g", "text", "title", "svg"] {
        let open = s.matches(&format!("<{tag} ")).count() + s.matches(&format!("<{tag}>")).count();
        assert_eq!(open, s.matches(&format!("</{tag}>")).count(), "<{tag}>");
    }
}

#[test]
fn no_topology_no_plan() {
    let env = FakeEnv::default().dir("/etc/rampart");
    let m = crate::config::load_str("", "t.toml", Path::new("/etc/rampart"), &env).expect("loads");
    assert!(plan(&m).is_none());
}
