//! One configuration for the fleet, in a real etcd (Debian's `etcd-server`,
//! started and stopped here): `rampart fleet push` reaches two instances
//! under load with no failed request, `fleet status` says both are
//! current; history, diff, a refused revision (a certificate file one node
//! lacks: it keeps the last good one, and status and audit say so), a push
//! that lost a race and two racing pushes, a rollback; an
//! instance that starts without etcd serves its last revision and catches
//! up once etcd is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// An etcd of its own, on free ports, in a temporary data directory.
pub(crate) struct Etcd {
    child: Child,
    client: u16,
    peer: u16,
    data: PathBuf,
}

impl Etcd {
    pub(crate) async fn start(data: &Path) -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let mut e = Etcd {
            child: Etcd::spawn(data, client, peer),
            client,
            peer,
            data: data.to_path_buf(),
        };
        e.wait().await;
        e
    }

    fn spawn(data: &Path, client: u16, peer: u16) -> Child {
        Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-cluster=t=http://127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (Debian package etcd-server) is installed")
    }

    /// Until etcd says it is healthy (at most 20 s).
    async fn wait(&mut self) {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", self.client).parse().expect("addr");
        let healthy = wait_until(Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(addr).await.is_ok()
                && raw(
                    addr,
                    b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n",
                )
                .await
                .contains("\"health\":\"true\"")
        })
        .await;
        assert!(healthy.is_some(), "etcd did not become healthy");
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn restart(&mut self) {
        self.child = Etcd::spawn(&self.data, self.client, self.peer);
        self.wait().await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A node's own file: where etcd is, its name and state directory.
fn node_file(dir: &Path, etcd: &str, node: &str) -> PathBuf {
    node_file_with(dir, etcd, node, "")
}

/// A node's own file with more `[fleet]` lines.
pub(crate) fn node_file_with(dir: &Path, etcd: &str, node: &str, fleet: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("rampart.toml");
    std::fs::write(
        &path,
        format!(
            "[runtime]\nstate_dir = \"state\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [fleet]\netcd = [\"{etcd}\"]\nnode = \"{node}\"\ntimeout = \"1s\"\n{fleet}"
        ),
    )
    .expect("node file");
    path
}

/// A revision: one listener on a free port, its pool the given server.
fn revision(etcd: &str, server: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[admin]\naddress = \"127.0.0.1:0\"\n[fleet]\netcd = [\"{etcd}\"]\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n{extra}\
         [[pool]]\nname = \"app\"\n[[pool.server]]\nname = \"s\"\naddress = \"{server}\"\n[[route]]\npool = \"app\"\n"
    )
}

/// The body `GET /` gets from the instance's `web` listener, if it has one.
async fn served(app: &rampart::app::RunningApp) -> Option<String> {
    let web = app.app.listeners().await.into_iter().find(|l| l.name == "web")?;
    let mut c = tokio::time::timeout(Duration::from_secs(2), h1(web.addr))
        .await
        .ok()?;
    let resp = c.go(get("/", "fleet.test")).await.ok()?;
    Some(read(resp).await.2)
}

async fn wait_served(app: &rampart::app::RunningApp, want: &str, limit: Duration) -> Option<Duration> {
    wait_until(limit, || async { served(app).await.as_deref() == Some(want) }).await
}

/// What both tests start with: etcd, two servers answering `v1` and
/// `v2`, and revision 1 (to `v1`) pushed from an operator's folder.
struct Setup {
    work: tempfile::TempDir,
    etcd: Etcd,
    url: String,
    v1: Backend,
    v2: Backend,
    ops: PathBuf,
}

async fn setup() -> Setup {
    let work = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::start(&work.path().join("etcd")).await;
    let url = etcd.url();
    let (v1, v2) = (Backend::named("v1").await, Backend::named("v2").await);
    let ops = work.path().join("ops");
    std::fs::create_dir_all(&ops).expect("ops");
    std::fs::write(ops.join("web.toml"), revision(&url, v1.addr, "")).expect("rev");
    let (code, out, err) = fleet(&["push", "-c", "web.toml", "-m", "first"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pushed revision 1"), "{out}");
    Setup {
        work,
        etcd,
        url,
        v1,
        v2,
        ops,
    }
}

fn fleet(args: &[&str], dir: &Path) -> (i32, String, String) {
    let mut all = vec!["fleet"];
    all.extend_from_slice(args);
    rampart(&all, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reaches_every_instance_under_load_and_the_fleet_reports_it() {
    let Setup {
        work,
        etcd: _etcd,
        url,
        v1,
        v2,
        ops,
    } = setup().await;

    let lb1 = start_app_file(&node_file(&work.path().join("lb1"), &url, "lb1")).await;
    let lb2 = start_app_file(&node_file(&work.path().join("lb2"), &url, "lb2")).await;
    for app in [&lb1, &lb2] {
        assert!(
            wait_served(app, "v1", Duration::from_secs(10)).await.is_some(),
            "an instance did not start from revision 1"
        );
    }
    let (code, out, err) = fleet(&["status", "-c", "web.toml"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("lb1") && out.contains("lb2") && out.matches("current").count() >= 2,
        "{out}"
    );

    // Under load on both, revision 2 sends the traffic to another server.
    let web = |app: &rampart::app::RunningApp| {
        let app = app.app.clone();
        async move {
            app.listeners()
                .await
                .into_iter()
                .find(|l| l.name == "web")
                .map(|l| l.addr)
                .expect("web")
        }
    };
    let loads = [
        Load::start(web(&lb1).await, "/", 1_000_000, Duration::from_secs(20)),
        Load::start(web(&lb2).await, "/", 1_000_000, Duration::from_secs(20)),
    ];
    std::fs::write(ops.join("web.toml"), revision(&url, v2.addr, "")).expect("rev");
    let pushed = Instant::now();
    let (code, out, err) = fleet(&["push", "-c", "web.toml", "-m", "to v2"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    for app in [&lb1, &lb2] {
        let took = wait_served(app, "v2", Duration::from_secs(5)).await;
        assert!(took.is_some(), "revision 2 did not arrive");
    }
    let reached = pushed.elapsed();
    assert!(
        reached <= Duration::from_secs(2),
        "revision 2 reached both in {reached:?}"
    );
    for l in loads {
        let r = l.stop().await;
        assert!(r.ok > 0, "no traffic");
        assert_eq!(r.failed, 0, "requests failed during the change: {:?}", r.errors);
    }
    let (code, out, err) = fleet(&["status", "-c", "web.toml"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("current revision: 2"), "{out}");
    let (_, history, _) = fleet(&["history", "-c", "web.toml"], &ops);
    assert!(
        history.contains("first") && history.contains("to v2"),
        "{history}"
    );
    let (_, diff, _) = fleet(&["diff", "-c", "web.toml", "1", "2"], &ops);
    assert!(
        diff.contains(&format!("-name = \"s\"\n-address = \"{}\"", v1.addr))
            || (diff.contains(&format!("-address = \"{}\"", v1.addr))
                && diff.contains(&format!("+address = \"{}\"", v2.addr))),
        "{diff}"
    );
    let m = metrics(lb1.admin().expect("admin")).await;
    assert_eq!(metric(&m, "rampart_fleet_revision"), Some(2.0), "{m}");
    assert_eq!(metric(&m, "rampart_fleet_up"), Some(1.0), "{m}");
    // The stats (dashboard) and `rampart top` say which revision it runs.
    let a1 = lb1.admin().expect("admin").to_string();
    let (_, stats) = admin(lb1.admin().expect("admin"), "GET", "/api/stats", None).await;
    assert_eq!(stats["fleet_sync"]["revision"], 2, "{}", stats["fleet_sync"]);
    assert_eq!(stats["fleet_sync"]["node"], "lb1");
    let (code, top, err) = rampart(&["top", "--admin", &a1, "--once"], &ops);
    assert_eq!(code, 0, "{err}");
    assert!(top.contains("fleet node lb1: revision 2, etcd up"), "{top}");

    // A revision one node cannot load (a certificate file that lb2 does not
    // have): that node keeps revision 2 and says why; the other applies it.
    let issued = rampart::tls::ca::issue(
        &work.path().join("ca"),
        "site",
        &["fleet.test".to_string()],
        30,
        false,
    )
    .expect("a certificate");
    for dir in [ops.clone(), work.path().join("lb1")] {
        std::fs::copy(&issued.cert_path, dir.join("site.pem")).expect("cert");
        std::fs::copy(&issued.key_path, dir.join("site-key.pem")).expect("key");
    }
    std::fs::write(
        ops.join("web.toml"),
        revision(
            &url,
            v1.addr,
            "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             [[listener.certificate]]\ncert = \"site.pem\"\nkey = \"site-key.pem\"\n",
        ),
    )
    .expect("rev");
    let (code, out, err) = fleet(
        &["push", "-c", "web.toml", "-m", "a second listener, with TLS"],
        &ops,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(wait_served(&lb1, "v1", Duration::from_secs(5)).await.is_some());
    let refused = wait_until(Duration::from_secs(5), || async {
        let (code, out, _) = fleet(&["status", "-c", "web.toml"], &ops);
        code == 1 && out.contains("REFUSED revision 3") && out.contains("site.pem")
    })
    .await;
    let (_, status, _) = fleet(&["status", "-c", "web.toml"], &ops);
    assert!(refused.is_some(), "{status}");
    assert_eq!(served(&lb2).await.as_deref(), Some("v2"), "lb2 keeps revision 2");

    // A change made from revision 2 lost the race to revision 3.
    let (code, out, err) = fleet(&["push", "-c", "web.toml", "--expect", "2"], &ops);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("revision 3 was pushed meanwhile") && err.contains("rebase"),
        "{err}"
    );

    // `rampart audit` reads the fleet: lb2 refused the current revision,
    // and etcd is one member.
    let (_, report, err) = rampart(&["audit", "-c", "web.toml", "--format", "json"], &ops);
    let doc: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}{err}"));
    let found: Vec<(String, String)> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_string(),
                f["subject"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(id, _)| id.starts_with("fleet-"))
        .collect();
    assert!(
        found.contains(&("fleet-node-refused".into(), "lb2".into()))
            && found.contains(&("fleet-etcd-single".into(), "etcd".into())),
        "{found:?}"
    );

    // Two operators push from revision 3 at the same moment: exactly one wins.
    let racers: Vec<_> = (0..2)
        .map(|i| {
            let ops = ops.clone();
            std::thread::spawn(move || {
                fleet(
                    &[
                        "push",
                        "-c",
                        "web.toml",
                        "--expect",
                        "3",
                        "-m",
                        &format!("racer {i}"),
                    ],
                    &ops,
                )
            })
        })
        .collect();
    let results: Vec<(i32, String, String)> = racers.into_iter().map(|t| t.join().expect("racer")).collect();
    let won = results.iter().filter(|(code, _, _)| *code == 0).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|(code, _, err)| *code == 2 && err.contains("rebase")),
        "{results:?}"
    );
    let (_, history, _) = fleet(&["history", "-c", "web.toml"], &ops);
    assert_eq!(history.matches("racer").count(), 1, "{history}");

    // Back to revision 2's configuration, as revision 5: everyone current.
    let (code, out, err) = fleet(&["rollback", "-c", "web.toml", "2"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    for app in [&lb1, &lb2] {
        assert!(wait_served(app, "v2", Duration::from_secs(5)).await.is_some());
    }
    let ok = wait_until(Duration::from_secs(5), || async {
        fleet(&["status", "-c", "web.toml"], &ops).0 == 0
    })
    .await;
    let (_, status, _) = fleet(&["status", "-c", "web.toml"], &ops);
    assert!(ok.is_some() && status.contains("current revision: 5"), "{status}");

    // lb2 stops; a revision after that leaves it behind, which audit says.
    lb2.shutdown().await;
    let (code, out, err) = fleet(&["rollback", "-c", "web.toml", "1"], &ops);
    assert_eq!(code, 0, "{out}{err}");
    assert!(wait_served(&lb1, "v1", Duration::from_secs(5)).await.is_some());
    let (code, report, _) = rampart(&["audit", "-c", "web.toml"], &ops);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("fleet-node-behind")
            && report.contains("lb2 serves revision 5 while the fleet is at revision 6"),
        "{report}"
    );
    lb1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_etcd_an_instance_starts_from_its_last_revision_and_catches_up() {
    let Setup {
        work,
        mut etcd,
        url,
        v1: _v1,
        v2,
        ops,
    } = setup().await;
    let node = node_file(&work.path().join("lb1"), &url, "lb1");
    let lb1 = start_app_file(&node).await;
    assert!(wait_served(&lb1, "v1", Duration::from_secs(10)).await.is_some());
    let kept = work.path().join("lb1/state/fleet-revision.json");
    let listing = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        kept.exists(),
        "not kept: {:?} {:?}",
        listing(&work.path().join("lb1")),
        listing(&work.path().join("lb1/state"))
    );
    lb1.shutdown().await;

    // etcd gone: the instance starts from what it applied last.
    etcd.stop();
    let lb1 = start_app_file(&node).await;
    assert_eq!(
        served(&lb1).await.as_deref(),
        Some("v1"),
        "not started from the kept revision"
    );
    let m = metrics(lb1.admin().expect("admin")).await;
    assert_eq!(metric(&m, "rampart_fleet_up"), Some(0.0), "{m}");
    assert_eq!(metric(&m, "rampart_fleet_revision"), Some(1.0), "{m}");

    // etcd back with a new revision: the instance reconnects and applies it.
    etcd.restart().await;
    std::fs::write(ops.join("web.toml"), revision(&url, v2.addr, "")).expect("rev");
    assert_eq!(fleet(&["push", "-c", "web.toml"], &ops).0, 0);
    assert!(
        wait_served(&lb1, "v2", Duration::from_secs(40)).await.is_some(),
        "did not catch up after etcd came back"
    );
    // "Up" follows the catch-up (the servers' runtime records are read
    // after the revision is applied): wait for it, do not race it.
    let admin = lb1.admin().expect("admin");
    let up = wait_until(Duration::from_secs(10), || async {
        metric(&metrics(admin).await, "rampart_fleet_up") == Some(1.0)
    })
    .await;
    assert!(up.is_some(), "{}", metrics(admin).await);
    lb1.shutdown().await;
}

/// Sets a weight in pool `app` through an instance's admin API.
async fn set_weight(a: std::net::SocketAddr, server: &str, weight: u32) -> (u16, serde_json::Value) {
    let body = format!("{{\"weight\": {weight}}}");
    admin(
        a,
        "PUT",
        &format!("/api/pools/app/servers/{server}/weight"),
        Some(&body),
    )
    .await
}

/// `/api/pools`' entry for `server` of pool `app` on an instance.
async fn app_server(app: &rampart::app::RunningApp, server: &str) -> Option<serde_json::Value> {
    server_info(app.admin().expect("admin"), "app", server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_changes_made_on_one_instance_reach_every_instance() {
    let Setup {
        work,
        mut etcd,
        url,
        v1: _v1,
        v2,
        ops: _ops,
    } = setup().await;
    let lb1_file = node_file(&work.path().join("lb1"), &url, "lb1");
    let lb1 = start_app_file(&lb1_file).await;
    let lb2_file = node_file(&work.path().join("lb2"), &url, "lb2");
    let lb2 = start_app_file(&lb2_file).await;
    for app in [&lb1, &lb2] {
        assert!(wait_served(app, "v1", Duration::from_secs(10)).await.is_some());
    }
    // Wait until both watch (their status is written once connected).
    let a1 = lb1.admin().expect("admin");
    let a2 = lb2.admin().expect("admin");
    for a in [a1, a2] {
        let up = wait_until(Duration::from_secs(10), || async move {
            metric(&metrics(a).await, "rampart_fleet_up") == Some(1.0)
        })
        .await;
        assert!(up.is_some(), "not connected to etcd");
    }

    // An added server, a weight and a drain, each made on one instance,
    // are made on the other within a second.
    let body = format!(
        "{{\"name\": \"extra\", \"address\": \"{}\", \"weight\": 2}}",
        v2.addr
    );
    let (status, v) = admin(a1, "POST", "/api/pools/app/servers", Some(&body)).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = set_weight(a2, "s", 7).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin(a1, "POST", "/api/pools/app/servers/s/drain", None).await;
    assert_eq!(status, 202, "{v}");
    let everywhere = wait_until(Duration::from_secs(1), || async {
        let mut ok = true;
        for app in [&lb1, &lb2] {
            let s = app_server(app, "s").await.unwrap_or_default();
            let extra = app_server(app, "extra").await.unwrap_or_default();
            ok &= s["weight"] == 7 && s["state"] != "active" && extra["weight"] == 2;
        }
        ok
    })
    .await;
    assert!(
        everywhere.is_some(),
        "lb1 {:?} {:?} / lb2 {:?} {:?}",
        app_server(&lb1, "s").await,
        app_server(&lb1, "extra").await,
        app_server(&lb2, "s").await,
        app_server(&lb2, "extra").await
    );
    // lb2 sends no new request to the server drained through lb1.
    for _ in 0..20 {
        assert_eq!(
            served(&lb2).await.as_deref(),
            Some("v2"),
            "lb2 still uses the drained server"
        );
    }

    // They outlast a restart of an instance.
    lb2.shutdown().await;
    let lb2 = start_app_file(&lb2_file).await;
    let a2 = lb2.admin().expect("admin");
    let s = app_server(&lb2, "s").await.expect("s");
    let up = wait_until(Duration::from_secs(10), || async move {
        metric(&metrics(a2).await, "rampart_fleet_up") == Some(1.0)
    })
    .await;
    assert!(up.is_some(), "lb2 did not reconnect");
    assert!(s["weight"] == 7 && s["state"] != "active", "{s}");
    assert!(
        app_server(&lb2, "extra").await.is_some(),
        "the added server is back"
    );

    // An undrain on lb2 reaches lb1; a removal on lb1 reaches lb2.
    let (status, v) = admin(a2, "POST", "/api/pools/app/servers/s/undrain", None).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin(a1, "DELETE", "/api/pools/app/servers/extra", None).await;
    assert_eq!(status, 202, "{v}");
    let both = wait_until(Duration::from_secs(2), || async {
        app_server(&lb1, "s")
            .await
            .is_some_and(|s| s["state"] == "active")
            && app_server(&lb2, "extra").await.is_none()
    })
    .await;
    assert!(
        both.is_some(),
        "{:?} {:?}",
        app_server(&lb1, "s").await,
        app_server(&lb2, "extra").await
    );

    // Without etcd a change would reach one instance only: refused, and
    // nothing changes.
    etcd.stop();
    let lost = wait_until(Duration::from_secs(20), || async move {
        metric(&metrics(a1).await, "rampart_fleet_up") == Some(0.0)
    })
    .await;
    assert!(lost.is_some(), "etcd's loss not noticed");
    // Both keep serving without etcd.
    for app in [&lb1, &lb2] {
        assert!(
            served(app).await.is_some(),
            "an instance stopped serving without etcd"
        );
    }
    let (status, v) = set_weight(a1, "s", 9).await;
    assert_eq!(status, 500, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be reached")),
        "{v}"
    );
    assert_eq!(app_server(&lb1, "s").await.expect("s")["weight"], 7);
    lb1.shutdown().await;
    lb2.shutdown().await;
}
