//! Running several instances as one: readiness and liveness probes, and a
//! shutdown that stops answering ready before it stops accepting.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_once_every_server_has_its_first_verdict_and_for_good() {
    // A server that accepts and never answers: its first HTTP check ends
    // only at the check's timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"0123456789abcdef0123\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ninterval = \"3s\"\ntimeout = \"2s\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    // No token needed for the probes (the rest of the API asks for it).
    let (live, _) = admin(ad, "GET", "/health/live", None).await;
    assert_eq!(live, 200);
    let (status, v) = admin(ad, "GET", "/health/ready", None).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["waiting_for"][0], "first health check of p/a", "{v}");
    let (pools, _) = admin(ad, "GET", "/api/pools", None).await;
    assert_eq!(pools, 401, "the rest of the API still asks for the token");
    // The check times out (a verdict: down), and the instance is ready.
    wait_ready(ad).await;
    // Ready is for good: a server added now, whose first check will also
    // take the whole timeout, does not take the instance out of rotation.
    let token = Some("0123456789abcdef0123");
    let body = format!(r#"{{"name": "b", "address": "{addr}"}}"#);
    let (added, v) = admin_with(ad, "POST", "/api/pools/p/servers", Some(&body), token).await;
    assert_eq!(added, 201, "{v}");
    let (_, pools) = admin_with(ad, "GET", "/api/pools", None, token).await;
    let b = pools["pools"][0]["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "b").cloned())
        .unwrap_or_default();
    assert_eq!(b["health"], "unknown", "b has no verdict yet: {pools}");
    let (status, v) = admin(ad, "GET", "/health/ready", None).await;
    assert_eq!(status, 200, "{v}");
    app.shutdown().await;
    hold.abort();
}

#[tokio::test]
async fn sigterm_stops_answering_ready_then_keeps_accepting_for_the_shutdown_delay() {
    let be = Backend::named("web-01").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[admin]\naddress = \"127.0.0.1:0\"\n[timeouts]\nshutdown_delay = \"2s\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            be.addr
        ),
    )
    .expect("config");
    let mut rp = Process::run(&cfg, dir.path());
    let (ad, web) = (rp.addr("admin"), rp.addr("web"));
    assert_eq!(admin(ad, "GET", "/health/ready", None).await.0, 200);
    rp.signal("TERM");
    let signalled = Instant::now();
    let unready = wait_until(Duration::from_secs(2), || async {
        admin(ad, "GET", "/health/ready", None).await.0 == 503
    })
    .await;
    assert!(unready.is_some(), "still ready after SIGTERM");
    let (_, v) = admin(ad, "GET", "/health/ready", None).await;
    assert_eq!(v["waiting_for"][0], "shutting down");
    // Not ready, but still serving: a new connection gets its answer.
    let (status, _, _) = read(h1(web).await.go(get("/", "x")).await.expect("response")).await;
    assert_eq!(status, 200);
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "the check took the whole delay"
    );
    // Then the listener closes and the process ends.
    let code = tokio::task::spawn_blocking(move || rp.child.wait().expect("wait"))
        .await
        .expect("join");
    assert_eq!(code.code(), Some(0));
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "stopped before the delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_shows_every_instance_and_a_peer_that_does_not_answer() {
    let be = Backend::named("web-01").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let site = |head: &str| {
        format!(
            "{head}[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            be.addr
        )
    };
    let token = "peer-token-0123456789";
    let b = start_app(
        &site(&format!(
            "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{token}\"\n"
        )),
        dir.path(),
    )
    .await;
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let a = start_app(
        &site(&format!(
            "[cluster]\npeers = [{{ name = \"lb2\", address = \"{}\", token = \"{token}\" }}, \
             {{ name = \"lb3\", address = \"{gone_addr}\" }}]\n",
            b.admin().expect("admin")
        )),
        dir.path(),
    )
    .await;
    // Traffic on both instances.
    let la = Load::start(listener(&a, "web"), "/", 100_000, Duration::from_secs(20));
    let lb = Load::start(listener(&b, "web"), "/", 100_000, Duration::from_secs(20));
    let ad = a.admin().expect("admin");
    let seen = wait_until(Duration::from_secs(15), || async {
        let (_, s) = admin(ad, "GET", "/api/stats", None).await;
        let i = &s["fleet"]["instances"];
        i[0]["qps"]["10s"].as_f64() > Some(0.0)
            && i[1]["up"] == true
            && i[1]["qps"]["10s"].as_f64() > Some(0.0)
            && i[2]["up"] == false
    })
    .await;
    let (_, s) = admin(ad, "GET", "/api/stats?history=1", None).await;
    la.stop().await;
    lb.stop().await;
    assert!(seen.is_some(), "{}", s["fleet"]);
    let f = &s["fleet"];
    assert_eq!(f["instances"][1]["name"], "lb2");
    assert_eq!(f["instances"][2]["name"], "lb3");
    assert!(
        f["instances"][2]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{f}"
    );
    assert_eq!(f["totals"]["instances_up"], 2);
    let total = f["totals"]["requests"].as_f64().unwrap_or(0.0);
    let parts = f["instances"][0]["requests"].as_f64().unwrap_or(0.0)
        + f["instances"][1]["requests"].as_f64().unwrap_or(0.0);
    assert_eq!(total, parts, "{f}");
    // The peer's history came along, for charts that start full.
    let lb2 = &s["fleet_history"][0];
    assert_eq!(lb2["name"], "lb2");
    assert!(lb2["points"].as_array().is_some_and(|p| !p.is_empty()), "{lb2}");
    // rampart top shows the fleet.
    let top = rampart::top::render(&s, ad);
    assert!(
        top.contains("fleet total") && top.contains("lb3") && top.contains("DOWN"),
        "{top}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Runs `examples/ha/lab.sh ARGS` in the lab `dir` with namespace prefix `prefix`.
fn ha_lab(args: &[&str], dir: &std::path::Path, prefix: &str) -> (bool, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ha/lab.sh");
    let env = [
        ("LAB_DIR", dir.display().to_string()),
        ("LAB_PREFIX", prefix.to_string()),
        ("RAMPART_BIN", env!("CARGO_BIN_EXE_rampart").to_string()),
    ];
    run_script(&script, args, &env)
}

/// One request to the floating address from the client namespace: the
/// web server that answered, or None.
fn through_vip(dir: &std::path::Path, prefix: &str) -> Option<String> {
    let (ok, page) = ha_lab(
        &[
            "client",
            "curl",
            "-fsS",
            "--max-time",
            "0.5",
            "http://192.0.2.10/",
        ],
        dir,
        prefix,
    );
    let name = page
        .split("class=\"server\">")
        .nth(1)?
        .split('<')
        .next()?
        .to_string();
    ok.then_some(name)
}

#[test]
fn keepalived_moves_the_floating_address_within_three_seconds_and_does_not_flap_back() {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ha");
    let prefix = format!("rh{}", std::process::id() % 100_000);
    struct Down<'a>(&'a std::path::Path, &'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = ha_lab(&["down"], self.0, self.1);
        }
    }
    let _down = Down(&dir, &prefix);
    let (ok, up) = ha_lab(&["up"], &dir, &prefix);
    assert!(ok, "lab up: {up}");
    let (_, status) = ha_lab(&["status"], &dir, &prefix);
    let first = if status.contains("192.0.2.10: lb1") {
        "lb1"
    } else {
        "lb2"
    };
    assert!(status.contains(&format!("192.0.2.10: {first}")), "{status}");
    // Both balancers run the site from the fleet's etcd (three members).
    let current = std::time::Instant::now();
    let mut fleet = ha_lab(&["fleet", "status"], &dir, &prefix);
    while !fleet.0 && current.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        fleet = ha_lab(&["fleet", "status"], &dir, &prefix);
    }
    assert!(
        fleet.0
            && fleet.1.contains("lb1")
            && fleet.1.contains("lb2")
            && fleet.1.matches("current").count() >= 2,
        "fleet status: {}",
        fleet.1
    );

    // A client requesting the site in a loop, through the switch.
    let mut answers: Vec<(Instant, Option<String>)> = Vec::new();
    let started = Instant::now();
    let mut killed_at = None;
    let mut killer = None;
    while started.elapsed() < Duration::from_secs(9) && answers.len() < 2_000 {
        if killed_at.is_none() && started.elapsed() >= Duration::from_secs(2) {
            // In the background: it returns once rampart has exited, while
            // the client goes on.
            let (d, p) = (dir.clone(), prefix.clone());
            killer = Some(std::thread::spawn(move || ha_lab(&["kill-active"], &d, &p)));
            killed_at = Some(Instant::now());
        }
        answers.push((Instant::now(), through_vip(&dir, &prefix)));
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_at = killed_at.expect("killed");
    let (ok, out) = killer.expect("killer").join().expect("kill-active");
    assert!(ok, "kill-active: {out}");
    // The longest stretch without an answer.
    let mut last_ok = started;
    let mut worst = Duration::ZERO;
    for (at, a) in &answers {
        if a.is_some() {
            worst = worst.max(at.duration_since(last_ok));
            last_ok = *at;
        }
    }
    let failed: Vec<Duration> = answers
        .iter()
        .filter(|(_, a)| a.is_none())
        .map(|(at, _)| at.duration_since(killed_at))
        .collect();
    eprintln!(
        "failover: {} requests, {} without an answer (at {failed:?} after the kill), longest gap {worst:?}",
        answers.len(),
        failed.len()
    );
    assert!(worst <= Duration::from_secs(3), "{worst:?} without answers");
    let (_, status) = ha_lab(&["status"], &dir, &prefix);
    let other = if first == "lb1" { "lb2" } else { "lb1" };
    assert!(status.contains(&format!("192.0.2.10: {other}")), "{status}");
    // After the switch the other balancer answers every request.
    let settled = killed_at + Duration::from_secs(4);
    assert!(
        answers
            .iter()
            .filter(|(at, _)| *at > settled)
            .all(|(_, a)| a.is_some()),
        "requests failed after the switch"
    );

    // The killed balancer comes back: no second outage, no flap back.
    let (ok, out) = ha_lab(&["start", first], &dir, &prefix);
    assert!(ok, "start: {out}");
    let back = Instant::now();
    let mut lost = 0;
    let mut n = 0;
    while back.elapsed() < Duration::from_secs(6) && n < 1_000 {
        n += 1;
        if through_vip(&dir, &prefix).is_none() {
            lost += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, status) = ha_lab(&["status"], &dir, &prefix);
    assert_eq!(lost, 0, "{lost} of {n} requests failed after {first} came back");
    assert!(
        status.contains(&format!("192.0.2.10: {other}")),
        "the address moved back: {status}"
    );
    assert!(
        status.contains(&format!("{first} (")) && !status.contains("stopped"),
        "{status}"
    );
}
