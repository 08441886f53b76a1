//! Host firewalls: `rampart firewall render` is golden-tested, and the
//! rulesets are applied with the real `nft` inside network namespaces
//! joined by a bridge, where connections are then tried for real.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{rampart, require_root};

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

#[test]
fn render_matches_the_golden_files() {
    let dir = golden_dir();
    for host in ["lb", "web", "db"] {
        let (code, out, err) = rampart(
            &["firewall", "render", "-c", "topology.toml", "--host", host],
            &dir,
        );
        assert_eq!(code, 0, "{err}");
        let want = std::fs::read_to_string(dir.join(format!("{host}.nft"))).expect("golden file");
        assert_eq!(
            out, want,
            "render of {host} changed; if on purpose, regenerate tests/golden/{host}.nft"
        );
    }
    let (code, _, err) = rampart(
        &["firewall", "render", "-c", "topology.toml", "--host", "nope"],
        &dir,
    );
    assert_eq!(code, 2);
    assert!(err.contains("no host is named `nope`"), "{err}");
}

/// Namespaces made for one test run, deleted (with their processes) on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn new(hosts: &[(&str, &str)]) -> Lab {
        let prefix = format!("rpf{}", std::process::id() % 100_000);
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
        };
        let sw = lab.ns("sw");
        ok(&["ip", "netns", "add", &sw]);
        lab.namespaces.push(sw.clone());
        ok(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ok(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for (i, (name, addr)) in hosts.iter().enumerate() {
            let ns = lab.ns(name);
            ok(&["ip", "netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            let port = format!("p{i}");
            ok(&[
                "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ok(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            ok(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ok(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            ok(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    /// Listens on `ports` inside host `name` (accepts and closes).
    fn listen(&mut self, name: &str, ports: &[u16]) {
        let script = "import socket,sys,select\n\
                      socks=[]\n\
                      for p in sys.argv[1:]:\n    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', int(p))); s.listen(16); socks.append(s)\n\
                      print('ready', flush=True)\n\
                      while True:\n    r,_,_=select.select(socks,[],[])\n    for s in r:\n        c,_=s.accept(); c.close()\n";
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            self.ns(name),
            "python3".into(),
            "-c".into(),
            script.into(),
        ];
        args.extend(ports.iter().map(u16::to_string));
        let mut child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("listener");
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        assert_eq!(line.trim(), "ready", "listener in {name} did not start");
        self.children.push(child);
    }

    /// Can host `from` open a TCP connection to `addr:port` (within 1 s)?
    fn reaches(&self, from: &str, addr: &str, port: u16) -> bool {
        let code = format!("import socket; socket.create_connection(('{addr}', {port}), timeout=1).close()");
        run(&["ip", "netns", "exec", &self.ns(from), "python3", "-c", &code])
            .status
            .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn applied_rulesets_allow_only_what_the_roles_need() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        golden_dir().join("topology.toml"),
        dir.path().join("topology.toml"),
    )
    .expect("copy");
    let mut lab = Lab::new(&[
        ("lb", "10.77.0.1"),
        ("web", "10.77.0.2"),
        ("db", "10.77.0.3"),
        ("mon", "10.77.0.4"),
        ("adm", "10.77.0.250"),
        ("out", "10.77.0.100"),
    ]);
    // Before any firewall, everything reaches everything.
    lab.listen("lb", &[443, 22]);
    lab.listen("web", &[8080, 22]);
    lab.listen("db", &[3306, 9100]);
    assert!(lab.reaches("lb", "10.77.0.3", 3306), "the lab network works");
    let bin = env!("CARGO_BIN_EXE_rampart");
    for host in ["lb", "web", "db"] {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            &lab.ns(host),
            bin,
            "firewall",
            "apply",
            "-c",
            &dir.path().join("topology.toml").to_string_lossy(),
            "--host",
            host,
        ]);
        assert!(
            out.status.success(),
            "apply {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // db: 3306 only from web/app hosts; metrics from the monitor host.
    assert!(lab.reaches("web", "10.77.0.3", 3306), "web must reach db:3306");
    assert!(!lab.reaches("lb", "10.77.0.3", 3306), "lb must not reach db:3306");
    assert!(
        !lab.reaches("out", "10.77.0.3", 3306),
        "the outside must not reach db:3306"
    );
    assert!(
        lab.reaches("mon", "10.77.0.3", 9100),
        "the monitor host scrapes metrics"
    );
    assert!(!lab.reaches("out", "10.77.0.3", 9100));
    // lb: 443 from anywhere; web's port only from lb.
    assert!(
        lab.reaches("out", "10.77.0.1", 443),
        "the outside must reach lb:443"
    );
    assert!(
        !lab.reaches("out", "10.77.0.2", 8080),
        "the outside must not reach web:8080"
    );
    assert!(lab.reaches("lb", "10.77.0.2", 8080), "lb must reach web:8080");
    // ssh only from the admin network.
    assert!(lab.reaches("adm", "10.77.0.2", 22), "admin must reach ssh");
    assert!(
        !lab.reaches("out", "10.77.0.2", 22),
        "the outside must not reach ssh"
    );
    assert!(!lab.reaches("out", "10.77.0.1", 22));
    // Egress: established replies aside, a host opens only what its role uses.
    lab.listen("out", &[4444, 6379, 53]);
    assert!(
        !lab.reaches("db", "10.77.0.100", 4444),
        "db must not open connections to the outside"
    );
    assert!(
        !lab.reaches("web", "10.77.0.100", 4444),
        "a reverse shell from web to the outside must be refused"
    );
    assert!(
        lab.reaches("web", "10.77.0.100", 6379),
        "web reaches its listed dependency (egress_to)"
    );
    assert!(
        lab.reaches("web", "10.77.0.100", 53),
        "every host reaches the DNS resolvers"
    );
    assert!(
        !lab.reaches("lb", "10.77.0.100", 6379),
        "the dependency is web's, not lb's"
    );
    // The drops were counted, in and out, and read back in both formats.
    let fw = |host: &str, args: &[&str]| {
        let cfg = dir.path().join("topology.toml").to_string_lossy().to_string();
        let ns = lab.ns(host);
        let mut all = vec!["ip", "netns", "exec", &ns, bin, "firewall"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-c", &cfg, "--host", host]);
        run(&all)
    };
    let stats = fw("db", &["stats"]);
    let text = String::from_utf8_lossy(&stats.stdout).to_string();
    assert!(stats.status.success(), "{text}");
    let dropped = |dir: &str| -> u64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("dropped {dir} ")))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `dropped {dir}` line in {text}"))
    };
    assert!(dropped("in") >= 1, "lb's attempt at db:3306 was counted: {text}");
    assert!(
        dropped("out") >= 1,
        "db's attempt at the outside was counted: {text}"
    );
    let prom = fw("db", &["stats", "--format", "prometheus"]);
    let prom = String::from_utf8_lossy(&prom.stdout);
    assert!(
        prom.contains("# TYPE rampart_host_firewall_dropped_packets_total counter")
            && prom.contains("rampart_host_firewall_dropped_packets_total{host=\"db\",direction=\"out\"} "),
        "{prom}"
    );
    // The same text, written for node-exporter's textfile collector.
    let textfile = dir.path().join("rampart_fw.prom");
    let written = fw("db", &["stats", "--textfile", &textfile.to_string_lossy()]);
    assert!(written.status.success() && written.stdout.is_empty());
    let file = std::fs::read_to_string(&textfile).expect("textfile written");
    assert!(
        file.starts_with("# HELP rampart_host_firewall_dropped_packets_total")
            && file.contains("rampart_host_firewall_dropped_bytes_total{host=\"db\",direction=\"in\"} "),
        "{file}"
    );
    assert!(
        !dir.path().join("rampart_fw.prom.tmp").exists(),
        "renamed into place"
    );
    // diff: the applied table matches the config, until someone edits it by hand.
    let same = fw("db", &["diff"]);
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stdout));
    ok(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("db"),
        "nft",
        "insert",
        "rule",
        "inet",
        "rampart",
        "input",
        "tcp",
        "dport",
        "4321",
        "accept",
    ]);
    let drift = fw("db", &["diff"]);
    let out = String::from_utf8_lossy(&drift.stdout);
    assert_eq!(drift.status.code(), Some(1), "{out}");
    assert!(
        out.contains("live table differs") && out.contains("+\t\ttcp dport 4321 accept"),
        "{out}"
    );
    let config_only = fw("db", &["diff", "--no-live"]);
    assert!(
        config_only.status.success(),
        "the config still renders what was applied"
    );
    // `rampart audit` inside the namespace finds that it is `db` (from the
    // interface addresses) and reports the hand-made change as drift.
    let cfg = dir.path().join("topology.toml").to_string_lossy().to_string();
    let audit = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("db"),
        bin,
        "audit",
        "-c",
        &cfg,
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("JSON");
    let drift: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == "firewall-drift" || f["id"] == "firewall-not-applied")
        .collect();
    assert_eq!(drift.len(), 1, "{doc}");
    assert_eq!(drift[0]["id"], "firewall-drift");
    assert_eq!(drift[0]["subject"], "db");
    assert!(
        drift[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("live table differs")),
        "{doc}"
    );
    // Applying again replaces the table atomically (no duplicate rules).
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("db"),
        bin,
        "firewall",
        "apply",
        "-c",
        &dir.path().join("topology.toml").to_string_lossy(),
        "--host",
        "db",
    ]);
    assert!(out.status.success());
    let listed = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("db"),
        "nft",
        "list",
        "table",
        "inet",
        "rampart",
    ]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(text.matches("tcp dport 3306").count(), 1, "{text}");
    assert!(!text.contains("4321"), "the hand-made rule is gone: {text}");
    assert!(fw("db", &["diff"]).status.success(), "applied again, no drift");
    // A ruleset nft refuses is not loaded and the previous table stays.
    std::fs::write(
        dir.path().join("bad.toml"),
        std::fs::read_to_string(dir.path().join("topology.toml"))
            .expect("read")
            .replace("extra = [\"tcp dport 9999", "extra = [\"tcp dport nonsense 9999"),
    )
    .expect("write");
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns("db"),
        bin,
        "firewall",
        "apply",
        "-c",
        &dir.path().join("bad.toml").to_string_lossy(),
        "--host",
        "db",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nft refused the ruleset (check)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lab.reaches("web", "10.77.0.3", 3306),
        "the previous ruleset still works"
    );
    assert!(!lab.reaches("lb", "10.77.0.3", 3306));
}
