//! Running several instances as one: readiness and liveness probes, and a
//! shutdown that stops answering ready before it stops accepting.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_every_server_has_its_first_verdict() {
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
    let ready = wait_until(Duration::from_secs(10), || async {
        admin(ad, "GET", "/health/ready", None).await.0 == 200
    })
    .await;
    assert!(ready.is_some(), "never ready");
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
