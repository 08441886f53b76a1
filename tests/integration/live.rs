//! Live operations: hot reload, runtime changes through the admin API,
//! their persistence, and the admin API's manners.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

fn config(pool: &[(&str, std::net::SocketAddr)], admin_extra: &str) -> String {
    let mut s = format!(
        "[runtime]\nstate_dir = \"state\"\n[admin]\naddress = \"127.0.0.1:0\"\n{admin_extra}\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n"
    );
    for (n, a) in pool {
        s.push_str(&format!("[[pool.server]]\nname = \"{n}\"\naddress = \"{a}\"\n"));
    }
    s.push_str("[[route]]\npool = \"p\"\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_lose_nothing() {
    let (a, b, c) = (
        Backend::named("a").await,
        Backend::named("b").await,
        Backend::named("c").await,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.toml");
    // The listener address must stay the same across reloads: pin the port
    // the first start picked.
    std::fs::write(&path, config(&[("a", a.addr), ("b", b.addr)], "")).expect("write");
    let app = start_app_file(&path).await;
    let web = listener(&app, "web");
    let admin_addr = app.admin().expect("admin");
    let with_port = |text: String| {
        text.replace(
            "address = \"127.0.0.1:0\"\n[[pool]]",
            &format!("address = \"{web}\"\n[[pool]]"),
        )
    };
    let one = with_port(config(&[("a", a.addr), ("b", b.addr)], ""));
    let two = with_port(config(&[("b", b.addr), ("c", c.addr)], ""));
    std::fs::write(&path, &one).expect("write");
    let (status, v) = admin(admin_addr, "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");

    let load = Load::start(web, "/", 1_000_000, Duration::from_secs(60));
    wait_until(Duration::from_secs(5), || async { load.done() > 100 })
        .await
        .expect("load runs");
    for i in 0..50 {
        if i == 25 {
            std::fs::write(&path, "[[listener]]\nname = \"web\"\naddress = 5\n").expect("write");
            let (status, v) = admin(admin_addr, "POST", "/api/reload", None).await;
            assert_eq!(status, 400, "{v}");
            let msg = v["error"].as_str().unwrap_or_default().to_string();
            assert!(msg.contains("rampart.toml:3:11"), "{msg}");
            // The running config still serves.
            let before = load.done();
            wait_until(Duration::from_secs(5), || async { load.done() > before + 20 })
                .await
                .expect("still serving");
        }
        std::fs::write(&path, if i % 2 == 0 { &two } else { &one }).expect("write");
        let (status, v) = admin(admin_addr, "POST", "/api/reload", None).await;
        assert_eq!(status, 200, "reload {i}: {v}");
        assert_eq!(v["report"]["listeners_kept"], serde_json::json!(["web"]), "{v}");
        let before = load.done();
        wait_until(Duration::from_secs(5), || async { load.done() > before + 10 })
            .await
            .expect("load goes on");
    }
    // 50 reloads ended on config `one` (a, b): c takes nothing new.
    let c_hits = c.hits();
    let before = load.done();
    wait_until(Duration::from_secs(5), || async { load.done() > before + 100 })
        .await
        .expect("load goes on");
    assert_eq!(
        c.hits(),
        c_hits,
        "a server removed by the reload still got requests"
    );
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_eq!(
        report.connections, 1,
        "the client's keep-alive connection was dropped"
    );
    assert!(a.hits() > 0 && b.hits() > 0 && c.hits() > 0);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_server_gets_traffic_once_healthy_and_drained_server_finishes_then_gets_nothing() {
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let admin_addr = app.admin().expect("admin");
    // Until its first check passes, `a` takes no traffic (503).
    wait_ready(admin_addr).await;
    let load = Load::start(listener(&app, "web"), "/", 1_000_000, Duration::from_secs(30));
    wait_until(Duration::from_secs(5), || async { load.done() > 50 })
        .await
        .expect("load runs");

    // A slow-capable new server.
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (r, ar) = (release.clone(), arrived.clone());
    let n = Backend::start(move |req| {
        let (r, ar) = (r.clone(), ar.clone());
        async move {
            if req.uri().path() == "/slow" {
                ar.notify_one();
                r.notified().await;
            }
            http::Response::new(full("n"))
        }
    })
    .await;
    let body = format!(r#"{{"name": "n", "address": "{}", "weight": 1}}"#, n.addr);
    let (status, v) = admin(admin_addr, "POST", "/api/pools/p/servers", Some(&body)).await;
    assert_eq!(status, 201, "{v}");
    let healthy = wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "n")
            .await
            .map(|v| v["health"] == "up")
            == Some(true)
    })
    .await;
    assert!(healthy.is_some());
    let hits = n.hits();
    let got = wait_until(Duration::from_millis(100), || async { n.hits() > hits }).await;
    assert!(
        got.is_some(),
        "the new server got no request within one interval of turning healthy"
    );

    // A slow request lands on n (round robin alternates a and n).
    let web = listener(&app, "web");
    let slow = tokio::spawn(async move {
        for _ in 0..40 {
            let mut c = h1(web).await;
            let (status, _, body) = read(c.go(get("/slow", "x")).await.expect("response")).await;
            if body == "n" {
                return status;
            }
        }
        0
    });
    arrived.notified().await;
    let (status, v) = admin(admin_addr, "DELETE", "/api/pools/p/servers/n", None).await;
    assert_eq!(status, 202, "{v}");
    let info = server_info(admin_addr, "p", "n")
        .await
        .expect("still listed while draining");
    assert_eq!(info["state"], "removing", "draining to be removed: {info}");
    // Requests picked just before the drain may still be on their way: wait
    // until only the slow one is in flight.
    wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "n")
            .await
            .map(|v| v["in_flight"] == 1)
            == Some(true)
    })
    .await
    .expect("only the slow request in flight");
    let hits_at_drain = n.hits();
    let before = load.done();
    wait_until(Duration::from_secs(5), || async { load.done() > before + 50 })
        .await
        .expect("load goes on");
    assert_eq!(n.hits(), hits_at_drain, "a draining server got new requests");
    release.notify_one();
    assert_eq!(
        slow.await.expect("task"),
        200,
        "the in-flight request to the drained server completed"
    );
    let gone = wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "n").await.is_none()
    })
    .await;
    assert!(
        gone.is_some(),
        "the server was removed after its request finished"
    );
    let before = load.done();
    wait_until(Duration::from_secs(5), || async { load.done() > before + 50 })
        .await
        .expect("load goes on");
    assert_eq!(n.hits(), hits_at_drain);
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    app.shutdown().await;

    // Runtime changes survive a restart: n stays removed; a weight set now is kept.
    let app = start_app(&toml, dir.path()).await;
    let admin_addr = app.admin().expect("admin");
    assert!(server_info(admin_addr, "p", "n").await.is_none());
    let (status, _) = admin(
        admin_addr,
        "PUT",
        "/api/pools/p/servers/a/weight",
        Some(r#"{"weight": 7}"#),
    )
    .await;
    assert_eq!(status, 200);
    app.shutdown().await;
    let app = start_app(&toml, dir.path()).await;
    let info = server_info(app.admin().expect("admin"), "p", "a")
        .await
        .expect("a");
    assert_eq!(info["weight"], 7);
    app.shutdown().await;
}

#[tokio::test]
async fn admin_api_names_bad_requests() {
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(&[("a", a.addr)], ""), dir.path()).await;
    let ad = app.admin().expect("admin");
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        (
            "POST",
            "/api/pools/nope/servers",
            Some(r#"{"name":"x","address":"127.0.0.1:1"}"#),
            404,
            "no pool is named `nope`",
        ),
        (
            "POST",
            "/api/pools/p/servers",
            Some(r#"{"name":"a","address":"127.0.0.1:1"}"#),
            409,
            "already has a server named `a`",
        ),
        (
            "POST",
            "/api/pools/p/servers",
            Some(r#"{"name":"x","address":"here"}"#),
            400,
            "`here` is not an IP:PORT address",
        ),
        (
            "POST",
            "/api/pools/p/servers",
            Some("{not json"),
            400,
            "invalid JSON body",
        ),
        (
            "POST",
            "/api/pools/p/servers",
            Some(r#"{"name":"x","address":"127.0.0.1:1","color":1}"#),
            400,
            "unknown field `color`",
        ),
        (
            "POST",
            "/api/pools/p/servers",
            Some(r#"{"name":"x","address":"127.0.0.1:1","weight":0}"#),
            400,
            "weight must be",
        ),
        (
            "PUT",
            "/api/pools/p/servers/zz/weight",
            Some(r#"{"weight":2}"#),
            404,
            "has no server named `zz`",
        ),
        (
            "POST",
            "/api/pools/p/servers/zz/drain",
            None,
            404,
            "has no server named `zz`",
        ),
        ("GET", "/api/nothing", None, 404, "no admin endpoint"),
        ("DELETE", "/api/pools", None, 405, "method not allowed"),
        ("POST", "/api/reload", None, 400, "no config file to reload"),
    ];
    for (method, path, body, want, text) in cases {
        let (status, v) = admin(ad, method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{method} {path}: {msg}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn admin_token_is_required_when_set() {
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "s3cret-token-for-tests";
    let app = start_app(
        &config(&[("a", a.addr)], &format!("token = \"{token}\"\n")),
        dir.path(),
    )
    .await;
    let ad = app.admin().expect("admin");
    let (status, v) = admin(ad, "GET", "/api/pools", None).await;
    assert_eq!(status, 401, "{v}");
    let (status, _) = admin_with(ad, "GET", "/api/pools", None, Some("wrong-token-wrong-token")).await;
    assert_eq!(status, 401);
    let (status, v) = admin_with(ad, "GET", "/api/pools", None, Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(v["pools"][0]["servers"][0]["name"], "a");
    // The infrastructure diagram too; this config has no [topology] to draw.
    let (status, _) = admin(ad, "GET", "/api/plan.svg", None).await;
    assert_eq!(status, 401);
    let (status, v) = admin_with(ad, "GET", "/api/plan.svg", None, Some(token)).await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("no [topology]")),
        "{v}"
    );
    app.shutdown().await;
}

#[test]
fn admin_on_a_public_address_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = rampart::config::load_str(
        "[admin]\naddress = \"0.0.0.0:9900\"\n",
        "t.toml",
        dir.path(),
        &rampart::tls::SystemEnv,
    )
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("t.toml:2:11: admin.address: 0.0.0.0:9900 is not a loopback address"),
        "{err}"
    );
}

#[tokio::test]
async fn sighup_and_rampart_reload_reload_a_running_process() {
    let (a, b) = (Backend::named("a").await, Backend::named("b").await);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, config(&[("a", a.addr)], "")).expect("write");
    let rp = Process::run(&cfg, dir.path());
    let web = rp.addr("web");
    let admin_addr = rp.addr("admin");
    let pinned = |t: String| {
        t.replace(
            "[admin]\naddress = \"127.0.0.1:0\"",
            &format!("[admin]\naddress = \"{admin_addr}\""),
        )
        .replace(
            "address = \"127.0.0.1:0\"\n[[pool]]",
            &format!("address = \"{web}\"\n[[pool]]"),
        )
    };
    // SIGHUP: the pool becomes b.
    std::fs::write(&cfg, pinned(config(&[("b", b.addr)], ""))).expect("write");
    rp.signal("HUP");
    let switched = wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "b").await.is_some()
    })
    .await;
    assert!(switched.is_some(), "SIGHUP did not reload");
    // `rampart reload`: back to a; an invalid file is refused with its location.
    std::fs::write(&cfg, pinned(config(&[("a", a.addr)], ""))).expect("write");
    let (code, out, err) = rampart(&["reload", "-c", "rampart.toml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(server_info(admin_addr, "p", "a").await.is_some());
    std::fs::write(
        &cfg,
        pinned(config(&[("a", a.addr)], "")).replace("[[route]]", "[[route]]\nbogus = 1"),
    )
    .expect("write");
    let (code, _, err) = rampart(
        &["reload", "-c", "rampart.toml", "--admin", &admin_addr.to_string()],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `bogus`"), "{err}");
    let mut c = h1(web).await;
    let (status, _, body) = read(c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "a"));
}

#[tokio::test]
async fn reload_swaps_certificates_and_opens_and_closes_listeners() {
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    crate::tls::issue_certs(dir.path());
    let path = dir.path().join("rampart.toml");
    let tls_listener = |cert: &str, port: u16| {
        format!(
            "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:{port}\"\nprotocol = \"https\"\n\
             [[listener.certificate]]\ncert = \"{cert}.pem\"\nkey = \"{cert}.key\"\n"
        )
    };
    let tail = format!(
        "[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let head = "[runtime]\nstate_dir = \"state\"\n[admin]\naddress = \"127.0.0.1:0\"\n";
    std::fs::write(&path, format!("{head}{}{tail}", tls_listener("alpha.test", 0))).expect("write");
    let app = start_app_file(&path).await;
    let ad = app.admin().expect("admin");
    let port = listener(&app, "tls").port();
    let ca = dir.path().join("ca.pem");
    let served_name = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        let cert = tls.get_ref().1.peer_certificates().expect("certs")[0].clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).expect("parse");
        let san = parsed.subject_alternative_name().expect("san").expect("present");
        format!("{:?}", san.value.general_names)
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let first = tls_connect(addr, "alpha.test", &ca, &[b"http/1.1"]).await;
    assert!(served_name(&first).contains("alpha.test"));
    let mut kept = h1_over(first).await;

    // New certificate and a second, plain listener.
    let extra = "[[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\n";
    std::fs::write(
        &path,
        format!("{head}{}{extra}{tail}", tls_listener("beta.test", port)),
    )
    .expect("write");
    let (status, v) = admin(ad, "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["report"]["listeners_added"], serde_json::json!(["plain"]));
    let fresh = tls_connect(addr, "beta.test", &ca, &[b"http/1.1"]).await;
    assert!(
        served_name(&fresh).contains("beta.test"),
        "the new certificate is served after the reload"
    );
    let (status, _, body) = read(kept.go(get("/", "site.test")).await.expect("kept connection")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "a"),
        "the connection opened before the reload still works"
    );
    let plain = app
        .app
        .listeners()
        .await
        .into_iter()
        .find(|l| l.name == "plain")
        .expect("plain listener")
        .addr;
    let mut c = h1(plain).await;
    assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);

    // Remove the plain listener again: it stops accepting.
    std::fs::write(&path, format!("{head}{}{tail}", tls_listener("beta.test", port))).expect("write");
    let (status, v) = admin(ad, "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["report"]["listeners_removed"], serde_json::json!(["plain"]));
    let closed = wait_until(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(plain).await.is_err()
    })
    .await;
    assert!(closed.is_some(), "a removed listener still accepts");
    drop(c);
    app.shutdown().await;
}

#[tokio::test]
async fn health_changes_are_exported_as_metrics() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"50ms\"\ntimeout = \"50ms\"\nrise = 1\nfall = 1\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[pool.server]]\nname = \"dead\"\naddress = \"{dead}\"\n\
         [[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    let metrics = || async move {
        let mut c = h1(ad).await;
        let req = http::Request::get("/metrics")
            .header("host", "x")
            .body(full(""))
            .expect("req");
        read(c.go(req).await.expect("metrics")).await
    };
    let ok = wait_until(Duration::from_secs(5), || async {
        let (_, _, text) = metrics().await;
        text.contains("rampart_backend_up{pool=\"p\",server=\"a\"} 1")
            && text.contains("rampart_backend_up{pool=\"p\",server=\"dead\"} 0")
    })
    .await;
    let (status, headers, text) = metrics().await;
    assert!(ok.is_some(), "{text}");
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        text.contains("rampart_backend_health_transitions_total{pool=\"p\",server=\"dead\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rampart_pool_servers_available{pool=\"p\"} 1"),
        "{text}"
    );
    app.shutdown().await;
}

/// The bodies of `n` requests through the listener `web`.
async fn bodies(app: &rampart::app::RunningApp, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = h1(listener(app, "web")).await;
    for _ in 0..n {
        let (status, _, body) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!(status, 200, "{body}");
        out.push(body);
    }
    out
}

fn state_json(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("state/runtime-changes.json")).expect("state file");
    serde_json::from_str(&text).expect("state JSON")
}

async fn wait_gone(ad: std::net::SocketAddr, server: &str) {
    wait_until(Duration::from_secs(5), || async {
        server_info(ad, "p", server).await.is_none()
    })
    .await
    .unwrap_or_else(|| panic!("{server} is still listed"));
}

#[tokio::test]
async fn a_removal_persists_after_remove_add_remove_across_restarts() {
    let (s1, s2) = (Backend::named("s1").await, Backend::named("s2").await);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config(&[("s1", s1.addr), ("s2", s2.addr)], "");
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");

    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/s1", None).await;
    assert_eq!(status, 202, "{v}");
    wait_gone(ad, "s1").await;
    let add = format!(r#"{{"name": "s1", "address": "{}"}}"#, s1.addr);
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers", Some(&add)).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        server_info(ad, "p", "s1").await.expect("s1 back")["state"],
        "active"
    );
    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/s1", None).await;
    assert_eq!(status, 202, "{v}");
    // The removal is saved at once, before the drain ends.
    let state = state_json(dir.path());
    assert_eq!(state["removed"]["p"], serde_json::json!(["s1"]), "{state}");
    assert_eq!(state["added"], serde_json::json!([]), "{state}");
    wait_gone(ad, "s1").await;
    assert!(bodies(&app, 4).await.iter().all(|b| b == "s2"));
    app.shutdown().await;

    // Twice restarted, s1 stays removed and gets nothing.
    for _ in 0..2 {
        let app = start_app(&toml, dir.path()).await;
        let ad = app.admin().expect("admin");
        assert!(
            server_info(ad, "p", "s1").await.is_none(),
            "s1 came back after a restart"
        );
        let hits = s1.hits();
        assert!(bodies(&app, 6).await.iter().all(|b| b == "s2"));
        assert_eq!(s1.hits(), hits);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn added_servers_persist_after_add_remove_add_across_restarts() {
    let (s1, s2) = (Backend::named("s1").await, Backend::named("s2").await);
    let (n, other) = (Backend::named("n").await, Backend::named("other").await);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config(&[("s1", s1.addr), ("s2", s2.addr)], "");
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");

    // A new server: add, remove, add.
    let add_n = format!(r#"{{"name": "n", "address": "{}"}}"#, n.addr);
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers", Some(&add_n)).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/n", None).await;
    assert_eq!(status, 202, "{v}");
    wait_gone(ad, "n").await;
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers", Some(&add_n)).await;
    assert_eq!(status, 201, "{v}");

    // A server of the file: remove, then add under the same name at another
    // address; the added one takes its place for good.
    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/s1", None).await;
    assert_eq!(status, 202, "{v}");
    wait_gone(ad, "s1").await;
    let add_s1 = format!(r#"{{"name": "s1", "address": "{}"}}"#, other.addr);
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers", Some(&add_s1)).await;
    assert_eq!(status, 201, "{v}");
    app.shutdown().await;

    for _ in 0..2 {
        let app = start_app(&toml, dir.path()).await;
        let ad = app.admin().expect("admin");
        let info = server_info(ad, "p", "n").await.expect("n survives restarts");
        assert_eq!(info["state"], "active", "{info}");
        let info = server_info(ad, "p", "s1").await.expect("s1 survives restarts");
        assert_eq!(info["address"], other.addr.to_string(), "{info}");
        let hits = s1.hits();
        let got = bodies(&app, 9).await;
        for want in ["n", "other", "s2"] {
            assert!(got.iter().any(|b| b == want), "{want} got no request: {got:?}");
        }
        assert_eq!(s1.hits(), hits, "the file's s1 got a request");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn undrain_sends_requests_again_and_persists() {
    let (s1, s2) = (Backend::named("s1").await, Backend::named("s2").await);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config(&[("s1", s1.addr), ("s2", s2.addr)], "");
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers/s1/drain", None).await;
    assert_eq!(status, 202, "{v}");
    assert!(bodies(&app, 4).await.iter().all(|b| b == "s2"));
    app.shutdown().await;

    // The drain survived the restart; undrain it.
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    assert_eq!(server_info(ad, "p", "s1").await.expect("s1")["state"], "drained");
    let (status, v) = admin(ad, "GET", "/api/pools/p/servers/s1/undrain", None).await;
    assert_eq!(status, 405, "{v}");
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers/zz/undrain", None).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers/s1/undrain", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "active", "{v}");
    assert_eq!(v["was_drained"], true, "{v}");
    assert_eq!(server_info(ad, "p", "s1").await.expect("s1")["state"], "active");
    assert!(bodies(&app, 4).await.iter().any(|b| b == "s1"));
    let state = state_json(dir.path());
    assert_eq!(state["drained"], serde_json::json!({}), "{state}");
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers/s1/undrain", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["was_drained"], false, "{v}");
    app.shutdown().await;

    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    assert_eq!(server_info(ad, "p", "s1").await.expect("s1")["state"], "active");
    app.shutdown().await;
}

#[tokio::test]
async fn a_server_being_removed_cannot_be_undrained_or_added() {
    // s1 answers slowly, so that its removal waits for the request.
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (r, ar) = (release.clone(), arrived.clone());
    let s1 = Backend::start(move |_req| {
        let (r, ar) = (r.clone(), ar.clone());
        async move {
            ar.notify_one();
            r.notified().await;
            http::Response::new(full("s1"))
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(&[("s1", s1.addr)], ""), dir.path()).await;
    let ad = app.admin().expect("admin");
    let web = listener(&app, "web");
    let slow = tokio::spawn(async move {
        let mut c = h1(web).await;
        read(c.go(get("/", "x")).await.expect("response")).await.0
    });
    arrived.notified().await;
    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/s1", None).await;
    assert_eq!(status, 202, "{v}");
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers/s1/undrain", None).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is being removed"),
        "{v}"
    );
    let add = format!(r#"{{"name": "s1", "address": "{}"}}"#, s1.addr);
    let (status, v) = admin(ad, "POST", "/api/pools/p/servers", Some(&add)).await;
    assert_eq!(status, 409, "{v}");
    // A second removal while the first drains is accepted and changes nothing.
    let (status, v) = admin(ad, "DELETE", "/api/pools/p/servers/s1", None).await;
    assert_eq!(status, 202, "{v}");
    release.notify_one();
    assert_eq!(slow.await.expect("task"), 200);
    wait_gone(ad, "s1").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reloads_are_logged_whoever_asks() {
    let a = Backend::named("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, config(&[("a", a.addr)], "")).expect("write");
    let rp = Process::run(&cfg, dir.path());
    let admin_addr = rp.addr("admin");
    let log = || std::fs::read_to_string(&rp.stderr).unwrap_or_default();
    let refusals = |text: &str| text.matches("reload refused, the running config stays").count();
    let pinned = config(&[("a", a.addr)], "").replace(
        "[admin]\naddress = \"127.0.0.1:0\"",
        &format!("[admin]\naddress = \"{admin_addr}\""),
    );

    // POST /api/reload with an invalid file.
    std::fs::write(&cfg, pinned.replace("[[route]]", "[[route]]\nbogus = 1")).expect("write");
    let (status, v) = admin(admin_addr, "POST", "/api/reload", None).await;
    assert_eq!(status, 400, "{v}");
    let logged = wait_until(Duration::from_secs(5), || async { refusals(&log()) == 1 }).await;
    assert!(
        logged.is_some(),
        "POST /api/reload refusal not logged:\n{}",
        log()
    );
    assert!(log().contains("unknown field `bogus`"), "{}", log());

    // `rampart reload` with a file that validates but cannot be applied: a
    // new listener on an address already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    std::fs::write(
        &cfg,
        format!("{pinned}[[listener]]\nname = \"more\"\naddress = \"{taken_addr}\"\n"),
    )
    .expect("write");
    let d = dir.path().to_path_buf();
    let (code, _, err) = tokio::task::spawn_blocking(move || rampart(&["reload", "-c", "rampart.toml"], &d))
        .await
        .expect("join");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reload refused"), "{err}");
    let logged = wait_until(Duration::from_secs(5), || async { refusals(&log()) == 2 }).await;
    assert!(logged.is_some(), "rampart reload refusal not logged:\n{}", log());
    assert!(
        log().contains(&format!("cannot listen on {taken_addr}")),
        "{}",
        log()
    );

    // SIGHUP, logged once (a second line would skip the count past 3).
    rp.signal("HUP");
    let logged = wait_until(Duration::from_secs(5), || async { refusals(&log()) == 3 }).await;
    assert!(logged.is_some(), "SIGHUP refusal not logged once:\n{}", log());
    drop(taken);
}
