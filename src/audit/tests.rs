//! Each finding, triggered by the smallest config that shows it, and its
//! absence once the weak point is fixed.

use std::path::Path;

use super::{audit, Finding, Local, Severity};
use crate::config::fake_env::FakeEnv;

const BASE: &str = "/etc/rampart";
/// 2030-01-01, the `now` of these tests.
const NOW: i64 = 1_893_456_000;
const SHA1_PEM: &[u8] = include_bytes!("testdata/sha1.pem");

fn env() -> FakeEnv {
    FakeEnv::default()
        .dir(BASE)
        .cert(
            "/etc/rampart/site.pem",
            "/etc/rampart/site.key",
            &["example.com"],
            NOW + 400 * 86_400,
        )
        .cert(
            "/etc/rampart/soon.pem",
            "/etc/rampart/soon.key",
            &["example.com"],
            NOW + 3 * 86_400,
        )
        .cert(
            "/etc/rampart/month.pem",
            "/etc/rampart/month.key",
            &["example.com"],
            NOW + 20 * 86_400,
        )
        .cert(
            "/etc/rampart/sha1.pem",
            "/etc/rampart/sha1.key",
            &["sha1.test"],
            NOW + 400 * 86_400,
        )
        .bytes("/etc/rampart/sha1.pem", SHA1_PEM)
}

/// The findings of `toml` (the state directory is a fresh, empty one).
fn findings(toml: &str) -> Vec<Finding> {
    let state = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[runtime]\nstate_dir = \"{}\"\n[admin]\nenabled = false\n{toml}",
        state.path().display()
    );
    let m = crate::config::load_str(&text, "t.toml", Path::new(BASE), &env())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    audit(
        &m,
        &Local {
            host: None,
            live: false,
            fleet: None,
        },
        NOW,
    )
    .findings
}

fn ids(f: &[Finding]) -> Vec<(&'static str, Severity, String)> {
    f.iter().map(|f| (f.id, f.severity, f.subject.clone())).collect()
}

/// A topology that is fine on its own: two balancers with a floating
/// address, two web hosts, two database hosts, a monitor.
fn good_hosts() -> String {
    let mut s =
        String::from("[topology]\nadmin_cidr = [\"10.0.9.0/24\"]\nfloating_addresses = [\"10.0.0.10\"]\n");
    for (name, addr, roles) in [
        ("lb1", "10.0.0.1", "\"lb\""),
        ("lb2", "10.0.0.2", "\"lb\""),
        ("web1", "10.0.1.1", "\"web\""),
        ("web2", "10.0.1.2", "\"web\""),
        ("mon", "10.0.9.40", "\"monitor\""),
    ] {
        s.push_str(&format!(
            "[[topology.host]]\nname = \"{name}\"\naddresses = [\"{addr}\"]\nroles = [{roles}]\n"
        ));
    }
    s
}

fn host(name: &str, addr: &str, roles: &str, more: &str) -> String {
    format!("[[topology.host]]\nname = \"{name}\"\naddresses = [\"{addr}\"]\nroles = [{roles}]\n{more}")
}

#[test]
fn a_good_topology_has_no_finding() {
    assert_eq!(ids(&findings(&good_hosts())), vec![]);
}

#[test]
fn lb_single() {
    let one = "[topology]\nadmin_cidr = [\"10.0.9.0/24\"]\n".to_string()
        + &host("lb1", "10.0.0.1", "\"lb\"", "")
        + &host("mon", "10.0.9.40", "\"monitor\"", "");
    assert_eq!(
        ids(&findings(&one)),
        vec![("lb-single", Severity::High, "lb1".into())]
    );
    let no_vip = good_hosts().replace("floating_addresses = [\"10.0.0.10\"]\n", "");
    assert_eq!(
        ids(&findings(&no_vip)),
        vec![("lb-single", Severity::Medium, "topology".into())]
    );
}

#[test]
fn db_single_writer() {
    let one = good_hosts() + &host("db1", "10.0.3.1", "\"db\"", "");
    assert_eq!(
        ids(&findings(&one)),
        vec![("db-single-writer", Severity::High, "db1".into())]
    );
    let two = one.clone() + &host("db2", "10.0.3.2", "\"db\"", "");
    assert_eq!(
        ids(&findings(&two)),
        vec![("db-single-writer", Severity::Medium, "topology".into())]
    );
    let writer = "[[listener]]\nname = \"w\"\naddress = \"10.0.0.10:3306\"\nmode = \"tcp\"\npool = \"db\"\nrole = \"writer\"\nallow = [\"10.0.1.0/24\"]\n\
                  [[pool]]\nname = \"db\"\n[pool.health_check]\ntype = \"mysql\"\nuser = \"m\"\npassword = \"p\"\n\
                  [[pool.server]]\nname = \"db1\"\naddress = \"10.0.3.1:3306\"\n";
    assert_eq!(ids(&findings(&format!("{writer}{two}"))), vec![]);
}

#[test]
fn db_reachable_from_lb() {
    let t = good_hosts().replace("roles = [\"lb\"]", "roles = [\"lb\", \"app\"]")
        + &host("db1", "10.0.3.1", "\"db\"", "")
        + &host("db2", "10.0.3.2", "\"db\"", "");
    let got = ids(&findings(&t));
    assert!(
        got.contains(&("db-reachable-from-lb", Severity::High, "db1".into())),
        "{got:?}"
    );
    // A database endpoint open to anyone who reaches the balancer.
    let open = "[[listener]]\nname = \"w\"\naddress = \"0.0.0.0:3306\"\nmode = \"tcp\"\npool = \"db\"\nrole = \"writer\"\n\
                [[pool]]\nname = \"db\"\n[pool.health_check]\ntype = \"mysql\"\nuser = \"m\"\npassword = \"p\"\n\
                [[pool.server]]\nname = \"db1\"\naddress = \"10.0.3.1:3306\"\n";
    let got = ids(&findings(open));
    assert!(
        got.contains(&("db-reachable-from-lb", Severity::High, "listener w".into())),
        "{got:?}"
    );
}

#[test]
fn backend_plaintext() {
    let pool = |more: &str| {
        format!("[[pool]]\nname = \"web\"\n{more}[[pool.server]]\nname = \"a\"\naddress = \"10.0.1.1:80\"\n[[route]]\npool = \"web\"\n")
    };
    assert_eq!(
        ids(&findings(&pool(""))),
        vec![("backend-plaintext", Severity::High, "pool web".into())]
    );
    assert_eq!(ids(&findings(&pool("[pool.tls]\nca = \"system\"\n"))), vec![]);
    let local = "[[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:80\"\n[[route]]\npool = \"web\"\n";
    assert_eq!(ids(&findings(local)), vec![], "loopback never leaves the host");
}

#[test]
fn tiers_colocated_and_tier_no_spare() {
    let t = good_hosts().replace("roles = [\"web\"]", "roles = [\"web\", \"app\"]");
    let got = ids(&findings(&t));
    assert!(
        got.contains(&("tiers-colocated", Severity::Medium, "web1".into())),
        "{got:?}"
    );
    let with_db = good_hosts() + &host("box", "10.0.1.9", "\"web\", \"db\"", "");
    let got = ids(&findings(&with_db));
    assert!(
        got.contains(&("tiers-colocated", Severity::High, "box".into())),
        "{got:?}"
    );
    let one_web = good_hosts().replace(
        "[[topology.host]]\nname = \"web2\"\naddresses = [\"10.0.1.2\"]\nroles = [\"web\"]\n",
        "",
    );
    assert_eq!(
        ids(&findings(&one_web)),
        vec![("tier-no-spare", Severity::Medium, "web tier".into())]
    );
}

#[test]
fn admin_exposed() {
    let wide = good_hosts().replace("admin_cidr = [\"10.0.9.0/24\"]", "admin_cidr = [\"0.0.0.0/0\"]");
    assert_eq!(
        ids(&findings(&wide)),
        vec![("admin-exposed", Severity::High, "topology.admin_cidr".into())]
    );
    let state = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[runtime]\nstate_dir = \"{}\"\n[admin]\naddress = \"0.0.0.0:9900\"\ntoken = \"0123456789abcdef0123\"\n",
        state.path().display()
    );
    let m = crate::config::load_str(&text, "t.toml", Path::new(BASE), &env()).expect("loads");
    let got = ids(&audit(&m, &Local::default(), NOW).findings);
    assert_eq!(got, vec![("admin-exposed", Severity::Medium, "admin".into())]);
}

#[test]
fn host_unmonitored() {
    let t = good_hosts().replace(
        "[[topology.host]]\nname = \"mon\"\naddresses = [\"10.0.9.40\"]\nroles = [\"monitor\"]\n",
        "",
    );
    let got = ids(&findings(&t));
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got
        .iter()
        .all(|(id, s, _)| *id == "host-unmonitored" && *s == Severity::Medium));
    let off = ids(&findings("[metrics]\nenabled = false\n"));
    assert_eq!(
        off,
        vec![("host-unmonitored", Severity::Medium, "metrics".into())]
    );
}

fn https(cert: &str, more: &str) -> String {
    format!(
        "[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\nhsts_max_age = \"730d\"\n{more}\
         [[listener.certificate]]\ncert = \"{cert}.pem\"\nkey = \"{cert}.key\"\n"
    )
}

#[test]
fn cert_expiring() {
    assert_eq!(ids(&findings(&https("site", ""))), vec![]);
    assert_eq!(
        ids(&findings(&https("soon", ""))),
        vec![(
            "cert-expiring",
            Severity::High,
            "listener s: /etc/rampart/soon.pem".into()
        )]
    );
    assert_eq!(
        ids(&findings(&https("month", ""))),
        vec![(
            "cert-expiring",
            Severity::Medium,
            "listener s: /etc/rampart/month.pem".into()
        )]
    );
    let longer = format!("[audit]\ncert_warning = \"500d\"\n{}", https("site", ""));
    assert_eq!(ids(&findings(&longer))[0].0, "cert-expiring");
}

#[test]
fn tls_weak() {
    let got = ids(&findings(&https("sha1", "")));
    assert_eq!(
        got,
        vec![(
            "tls-weak",
            Severity::High,
            "listener s: /etc/rampart/sha1.pem".into()
        )]
    );
    let no_hsts = https("site", "").replace("hsts_max_age = \"730d\"\n", "");
    assert_eq!(
        ids(&findings(&no_hsts)),
        vec![("tls-weak", Severity::Low, "listener s".into())]
    );
    let short = https("site", "").replace("\"730d\"", "\"30d\"");
    assert_eq!(
        ids(&findings(&short)),
        vec![("tls-weak", Severity::Low, "listener s".into())]
    );
    let plain = "[[listener]]\nname = \"p\"\naddress = \"0.0.0.0:80\"\n";
    assert_eq!(
        ids(&findings(plain)),
        vec![("tls-weak", Severity::Medium, "listener p".into())]
    );
    let local = "[[listener]]\nname = \"p\"\naddress = \"127.0.0.1:80\"\n";
    assert_eq!(ids(&findings(local)), vec![]);
}

#[test]
fn rule_unreachable() {
    let rule = |name: &str, action: &str, cond: &str| {
        format!("[[rule]]\nname = \"{name}\"\naction = \"{action}\"\n[rule.match]\n{cond}\n")
    };
    let shadowed = rule("a", "deny", "path_prefix = \"/admin\"")
        + &rule(
            "b",
            "allow",
            "path_prefix = \"/admin/health\"\nmethods = [\"GET\"]",
        );
    assert_eq!(
        ids(&findings(&shadowed)),
        vec![("rule-unreachable", Severity::Low, "rule b".into())]
    );
    // The other way round both can match; a `log` rule decides nothing.
    let fine = rule("b", "allow", "path_prefix = \"/admin/health\"")
        + &rule("a", "deny", "path_prefix = \"/admin\"");
    assert_eq!(ids(&findings(&fine)), vec![]);
    let logged =
        rule("a", "log", "path_prefix = \"/admin\"") + &rule("b", "deny", "path_prefix = \"/admin/x\"");
    assert_eq!(ids(&findings(&logged)), vec![]);
    // Narrower clients or methods in the first rule leave the second reachable.
    let narrower = rule("a", "deny", "path_prefix = \"/\"\nclient = [\"10.0.0.0/8\"]")
        + &rule("b", "deny", "path_prefix = \"/x\"\nclient = [\"10.1.0.0/16\"]")
        + &rule("c", "deny", "path_prefix = \"/x\"\nclient = [\"192.0.2.0/24\"]");
    assert_eq!(
        ids(&findings(&narrower)),
        vec![("rule-unreachable", Severity::Low, "rule b".into())]
    );
}

#[test]
fn egress_open_and_limits_per_instance() {
    let t = good_hosts().replace(
        "roles = [\"monitor\"]\n",
        "roles = [\"monitor\"]\negress_open = true\n",
    );
    assert_eq!(
        ids(&findings(&t)),
        vec![("egress-open", Severity::Low, "mon".into())]
    );
    let rule = "[[rule]]\nname = \"r\"\naction = \"rate_limit\"\nrate = 5\n";
    let got = ids(&findings(&format!("{rule}{}", good_hosts())));
    assert_eq!(got, vec![("limits-per-instance", Severity::Low, "rule r".into())]);
    let shared = format!(
        "[cluster]\nredis = \"redis://10.0.9.60:6379\"\n{rule}scope = \"cluster\"\n{}",
        good_hosts()
    );
    assert_eq!(ids(&findings(&shared)), vec![]);
}

#[test]
fn acknowledgements_keep_the_finding_but_not_the_failure() {
    let t = good_hosts().replace(
        "roles = [\"monitor\"]\n",
        "roles = [\"monitor\"]\negress_open = true\n",
    );
    let acked =
        format!("[[audit.ack]]\nid = \"egress-open\"\nsubject = \"mon\"\nreason = \"alerts go out\"\n{t}");
    let state = tempfile::tempdir().expect("tempdir");
    let text = format!("[runtime]\nstate_dir = \"{}\"\n{acked}", state.path().display());
    let m = crate::config::load_str(&text, "t.toml", Path::new(BASE), &env()).expect("loads");
    let r = audit(&m, &Local::default(), NOW);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].acknowledged.as_deref(), Some("alerts go out"));
    assert_eq!(r.worst(), None);
    // An acknowledgement that matches nothing is pointed out.
    let stale = text.replace("subject = \"mon\"", "subject = \"lb1\"");
    let m = crate::config::load_str(&stale, "t.toml", Path::new(BASE), &env()).expect("loads");
    let r = audit(&m, &Local::default(), NOW);
    assert_eq!(r.worst(), Some(Severity::Low));
    assert!(
        r.notes.iter().any(|n| n.contains("matches no finding")),
        "{:?}",
        r.notes
    );
}

#[test]
fn firewall_not_applied_and_drift() {
    let state = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[runtime]\nstate_dir = \"{}\"\n{}",
        state.path().display(),
        good_hosts()
    );
    let m = crate::config::load_str(&text, "t.toml", Path::new(BASE), &env()).expect("loads");
    let local = Local {
        host: Some("web1".into()),
        live: false,
        fleet: None,
    };
    let got = ids(&audit(&m, &local, NOW).findings);
    assert_eq!(got, vec![("firewall-not-applied", Severity::High, "web1".into())]);
    // What `apply` leaves behind, as if the config had changed since.
    let t = m.topology.as_ref().expect("topology");
    let dir = state.path().join("nft");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let rendered = crate::firewall::nft::render(t, "web1").expect("render");
    std::fs::write(dir.join("web1.applied.nft"), &rendered).expect("write");
    assert_eq!(ids(&audit(&m, &local, NOW).findings), vec![]);
    // lb2's own ruleset, applied as rendered: no drift; then the config
    // renders something else than what lb2 had applied.
    let lb2 = crate::firewall::nft::render(t, "lb2").expect("render");
    std::fs::write(dir.join("lb2.applied.nft"), &lb2).expect("write");
    assert_eq!(ids(&audit(&m, &local, NOW).findings), vec![]);
    let older = lb2.replacen("tcp dport", "tcp dport 4321 accept\n\t\ttcp dport", 1);
    assert_ne!(older, lb2, "the edit changes the ruleset");
    std::fs::write(dir.join("lb2.applied.nft"), older).expect("write");
    let got = ids(&audit(&m, &local, NOW).findings);
    assert_eq!(got, vec![("firewall-drift", Severity::High, "lb2".into())]);
}

#[test]
fn an_acme_certificate_close_to_expiry_means_renewals_fail() {
    let state = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[runtime]\nstate_dir = \"{}\"\n[admin]\nenabled = false\n\
         [[listener]]\nname = \"s\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\nhsts_max_age = \"730d\"\n\
         [listener.acme]\ndirectory = \"https://acme.test/dir\"\nnames = [\"example.com\"]\n",
        state.path().display()
    );
    let m = crate::config::load_str(&text, "t.toml", Path::new(BASE), &env()).expect("loads");
    // Nothing stored yet: a note, no finding.
    let r = audit(&m, &Local::default(), NOW);
    assert_eq!(ids(&r.findings), vec![]);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("no ACME certificate stored yet")),
        "{:?}",
        r.notes
    );
    // The stored certificate (the SHA-1 test one, valid for a century) is
    // measured from its own notAfter.
    let dir = state.path().join("acme/s");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("cert.pem"), SHA1_PEM).expect("write");
    assert_eq!(ids(&audit(&m, &Local::default(), NOW).findings), vec![]);
    let century_later = NOW + 100 * 365 * 86_400;
    let got = ids(&audit(&m, &Local::default(), century_later).findings);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), ("cert-expiring", Severity::High));
}

#[test]
fn egress_blocked_when_the_config_connects_by_name() {
    let named = format!(
        "[alerts]\nwebhook = \"http://hooks.example.com/x\"\n{}",
        good_hosts()
    );
    assert_eq!(
        ids(&findings(&named)),
        vec![(
            "egress-blocked",
            Severity::Medium,
            "alert webhook hooks.example.com:80".into()
        )]
    );
    // By address, the balancers' rulesets allow it (policy), so no finding.
    let addressed = format!("[alerts]\nwebhook = \"http://10.0.9.7:8080/x\"\n{}", good_hosts());
    assert_eq!(ids(&findings(&addressed)), vec![]);
}

#[test]
fn wide_admin_networks_per_family_and_private_ones() {
    let with = |cidr: &str| {
        good_hosts().replace(
            "admin_cidr = [\"10.0.9.0/24\"]",
            &format!("admin_cidr = [\"{cidr}\"]"),
        )
    };
    assert_eq!(
        ids(&findings(&with("10.0.0.0/8"))),
        vec![],
        "private, however wide"
    );
    assert_eq!(ids(&findings(&with("2001::/16")))[0].0, "admin-exposed");
    assert_eq!(
        ids(&findings(&with("2001:db8::/32"))),
        vec![],
        "a documentation range, however wide"
    );
    assert_eq!(ids(&findings(&with("2001:db8:1::/48"))), vec![]);
}

#[test]
fn plain_http_on_a_private_address_and_catch_all_egress() {
    let private = "[[listener]]\nname = \"p\"\naddress = \"10.0.0.1:80\"\n";
    assert_eq!(ids(&findings(private)), vec![]);
    let t = good_hosts().replace(
        "roles = [\"monitor\"]\n",
        "roles = [\"monitor\"]\negress_to = [\"0.0.0.0/0:443\"]\n",
    );
    assert_eq!(
        ids(&findings(&t)),
        vec![("egress-open", Severity::Low, "mon".into())]
    );
    let t = good_hosts().replace(
        "roles = [\"monitor\"]\n",
        "roles = [\"monitor\"]\nextra_out = [\"accept\"]\n",
    );
    assert_eq!(
        ids(&findings(&t)),
        vec![("egress-open", Severity::Low, "mon".into())]
    );
}

#[test]
fn a_fleet_node_that_refused_or_lags_and_a_lone_etcd_are_findings() {
    use super::{FleetFacts, FleetNode};
    let m = crate::config::load_str("", "t.toml", Path::new(BASE), &env()).expect("loads");
    let node = |name: &str, revision, refused: Option<(u64, &str)>| FleetNode {
        node: name.into(),
        revision,
        refused: refused.map(|(r, e)| (r, e.to_string())),
    };
    let facts = FleetFacts {
        current: 4,
        nodes: vec![
            node("lb1", 4, None),
            node("lb2", 3, Some((4, "allow.txt: not found"))),
            node("lb3", 2, Some((3, "old trouble"))),
        ],
        etcd_members: 1,
    };
    let local = Local {
        host: None,
        live: false,
        fleet: Some(Ok(facts.clone())),
    };
    let report = audit(&m, &local, NOW);
    let fleet: Vec<_> = ids(&report.findings)
        .into_iter()
        .filter(|(id, _, _)| id.starts_with("fleet-"))
        .collect();
    assert_eq!(
        fleet,
        vec![
            ("fleet-etcd-single", Severity::High, "etcd".into()),
            ("fleet-node-refused", Severity::High, "lb2".into()),
            ("fleet-node-behind", Severity::Medium, "lb3".into()),
        ]
    );
    assert!(report
        .findings
        .iter()
        .any(|f| f.reason.contains("allow.txt: not found")));
    // Three members and every node current: nothing about the fleet.
    let healthy = FleetFacts {
        current: 4,
        nodes: vec![node("lb1", 4, None), node("lb2", 4, Some((3, "fixed since")))],
        etcd_members: 3,
    };
    let local = Local {
        fleet: Some(Ok(healthy)),
        ..local
    };
    assert!(!audit(&m, &local, NOW)
        .findings
        .iter()
        .any(|f| f.id.starts_with("fleet-")));
    // etcd away: a note, no finding.
    let local = Local {
        fleet: Some(Err("no connection".into())),
        ..local
    };
    let report = audit(&m, &local, NOW);
    assert!(
        report.notes.iter().any(|n| n.contains("no connection")),
        "{:?}",
        report.notes
    );
}
