//! Fault tolerance: health checks, ejection, retries, circuit breaking.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;

use crate::support::*;

const PLAIN: &str = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n";

fn servers(addrs: &[(&str, std::net::SocketAddr)]) -> String {
    addrs
        .iter()
        .map(|(n, a)| format!("[[pool.server]]\nname = \"{n}\"\naddress = \"{a}\"\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_fails_no_request_goes_down_and_comes_back() {
    let mut a = Killable::start("a").await;
    let b = Killable::start("b").await;
    let c = Killable::start("c").await;
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ntype = \"http\"\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 2\nfall = 2\n\
         {}[[route]]\npool = \"p\"\n",
        servers(&[("a", a.addr), ("b", b.addr), ("c", c.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let admin_addr = app.admin().expect("admin");
    let all_up = wait_until(Duration::from_secs(5), || async {
        for s in ["a", "b", "c"] {
            if server_info(admin_addr, "p", s).await.map(|v| v["health"] == "up") != Some(true) {
                return false;
            }
        }
        true
    })
    .await;
    assert!(all_up.is_some(), "servers never became healthy");

    let load = Load::start(listener(&app, "web"), "/", 200_000, Duration::from_secs(20));
    wait_until(Duration::from_secs(5), || async { load.done() > 200 })
        .await
        .expect("load runs");
    let killed_at = Instant::now();
    a.kill().await;
    let down = wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "a")
            .await
            .map(|v| v["health"] == "down")
            == Some(true)
    })
    .await
    .expect("a is marked down");
    // interval × fall = 200 ms, plus a little for scheduling and the poll.
    assert!(
        killed_at.elapsed() <= Duration::from_millis(200 + 150),
        "marked down after {down:?}"
    );

    let before = load.done();
    wait_until(Duration::from_secs(5), || async { load.done() > before + 200 })
        .await
        .expect("load goes on");
    a.revive().await;
    let hits_before = a.hits();
    let up = wait_until(Duration::from_secs(5), || async {
        server_info(admin_addr, "p", "a")
            .await
            .map(|v| v["health"] == "up")
            == Some(true)
    })
    .await
    .expect("a is marked up again");
    assert!(
        up <= Duration::from_millis(2 * 100 + 200),
        "marked up after {up:?} (rise = 2)"
    );
    wait_until(Duration::from_secs(5), || async { a.hits() > hits_before + 20 })
        .await
        .expect("a serves traffic again");
    let report = load.stop().await;
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.errors);
    assert_eq!(report.connections, 1);
    assert!(report.ok > 600, "{report:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn silent_backend_times_out_with_504_and_is_ejected() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            open.push(s);
        }
    });
    let (b, c) = (Backend::named("b").await, Backend::named("c").await);
    let toml = format!(
        "[timeouts]\nresponse_header = \"300ms\"\n{PLAIN}[[pool]]\nname = \"p\"\n\
         [pool.outlier]\nconsecutive_failures = 1\nbase_ejection_time = \"30s\"\n\
         {}[[route]]\npool = \"p\"\n",
        servers(&[("silent", silent_addr), ("b", b.addr), ("c", c.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    // Round robin starts with the silent server.
    let t = Instant::now();
    let (status, _, body) = read(client.go(get("/", "x")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (504, "504 Gateway Timeout\n"));
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    let info = server_info(app.admin().expect("admin"), "p", "silent")
        .await
        .expect("listed");
    assert_eq!(info["ejected"], true, "{info}");
    let connections = accepted.load(Ordering::SeqCst);
    for _ in 0..30 {
        client.ready().await.expect("ready");
        let (status, _, _) = read(client.go(get("/", "x")).await.expect("response")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        connections,
        "the ejected server got new connections"
    );
    assert_eq!(b.hits() + c.hits(), 30);
    hold.abort();
    app.shutdown().await;
}

#[tokio::test]
async fn all_servers_down_is_503_at_once_with_retry_after() {
    let dead: Vec<_> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
        })
        .collect();
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n[pool.health_check]\ntype = \"tcp\"\ninterval = \"50ms\"\ntimeout = \"50ms\"\nfall = 1\n\
         {}[[route]]\npool = \"p\"\n",
        servers(&[("d1", dead[0]), ("d2", dead[1])])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let admin_addr = app.admin().expect("admin");
    wait_until(Duration::from_secs(5), || async {
        let a = server_info(admin_addr, "p", "d1")
            .await
            .map(|v| v["health"] == "down");
        let b = server_info(admin_addr, "p", "d2")
            .await
            .map(|v| v["health"] == "down");
        a == Some(true) && b == Some(true)
    })
    .await
    .expect("both down");
    let mut client = h1(listener(&app, "web")).await;
    for _ in 0..5 {
        client.ready().await.expect("ready");
        let t = Instant::now();
        let (status, headers, _) = read(client.go(get("/", "x")).await.expect("response")).await;
        let took = t.elapsed();
        assert_eq!(status, 503);
        assert_eq!(headers["retry-after"], "1");
        assert!(took < Duration::from_millis(50), "503 took {took:?}");
    }
    app.shutdown().await;
}

/// A backend that reads a request and closes the connection without
/// answering (it "dies mid-request"); counts requests by method.
async fn dies_mid_request() -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (posts, gets) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, g2) = (posts.clone(), gets.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (p, g) = (p2.clone(), g2.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if got.starts_with(b"POST") {
                    p.fetch_add(1, Ordering::SeqCst);
                } else {
                    g.fetch_add(1, Ordering::SeqCst);
                }
                drop(s);
            });
        }
    });
    (addr, posts, gets)
}

#[tokio::test]
async fn a_post_is_never_sent_twice_but_a_get_is_retried() {
    let (dying, posts, gets) = dies_mid_request().await;
    let good = Backend::named("good").await;
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n[pool.outlier]\nconsecutive_failures = 0\n{}[[route]]\npool = \"p\"\n",
        servers(&[("dying", dying), ("good", good.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let addr = listener(&app, "web");
    // Round robin: the first request of each pair goes to `dying`.
    let mut c = h1(addr).await;
    let post = Request::post("/order")
        .header("host", "x")
        .body(full("item=1"))
        .expect("req");
    let (status, _, _) = read(c.go(post).await.expect("response")).await;
    assert_eq!(status, 502);
    assert_eq!(posts.load(Ordering::SeqCst), 1, "the POST reached a backend once");
    assert_eq!(good.hits(), 0, "the POST was not sent again elsewhere");
    // Next pick is `good` (index 1), then `dying` again: a GET to it is retried.
    c.ready().await.expect("ready");
    let (status, _, _) = read(c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!(status, 200);
    c.ready().await.expect("ready");
    let (status, _, body) = read(c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "good"));
    assert_eq!(
        gets.load(Ordering::SeqCst),
        1,
        "the GET reached the dying server once"
    );
    assert_eq!(good.hits(), 2);
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn connect_failures_are_retried_for_any_method() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let good = Backend::named("good").await;
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n{}[[route]]\npool = \"p\"\n",
        servers(&[("dead", dead), ("good", good.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut c = h1(listener(&app, "web")).await;
    let post = Request::post("/order")
        .header("host", "x")
        .body(full("item=1"))
        .expect("req");
    let (status, _, body) = read(c.go(post).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "good"));
    assert_eq!(good.hits(), 1);
    // The dead server was tried first (round robin starts there): the
    // request was sent again, once.
    let text = metrics(app.admin().expect("admin")).await;
    assert_eq!(
        metric(&text, "rampart_pool_retries_total{pool=\"p\"}"),
        Some(1.0),
        "{text}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn circuit_breaking_answers_503_at_the_limit() {
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (r, a) = (release.clone(), arrived.clone());
    let slow = Backend::start(move |_req| {
        let (r, a) = (r.clone(), a.clone());
        async move {
            a.notify_one();
            r.notified().await;
            http::Response::new(full("slow"))
        }
    })
    .await;
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"s\"\naddress = \"{}\"\nmax_requests = 1\n[[route]]\npool = \"p\"\n",
        slow.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let addr = listener(&app, "web");
    let first = tokio::spawn(async move {
        let mut c = h1(addr).await;
        read(c.go(get("/", "x")).await.expect("response")).await
    });
    arrived.notified().await;
    let mut c = h1(addr).await;
    let t = Instant::now();
    let (status, headers, _) = read(c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert!(t.elapsed() < Duration::from_millis(100));
    let (_, v) = admin(app.admin().expect("admin"), "GET", "/api/pools", None).await;
    assert_eq!(v["pools"][0]["overloaded"], 1, "{v}");
    release.notify_one();
    assert_eq!(first.await.expect("task").0, 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_server_comes_back_through_the_active_check() {
    let mut a = Killable::start("a").await;
    let b = Killable::start("b").await;
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 2\nfall = 50\n\
         [pool.outlier]\nconsecutive_failures = 1\nbase_ejection_time = \"300ms\"\n\
         {}[[route]]\npool = \"p\"\n",
        servers(&[("a", a.addr), ("b", b.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    let up = |name: &'static str| async move {
        server_info(ad, "p", name).await.map(|v| v["health"] == "up") == Some(true)
    };
    wait_until(Duration::from_secs(5), || up("a"))
        .await
        .expect("a up");
    wait_until(Duration::from_secs(5), || up("b"))
        .await
        .expect("b up");
    // a fails one request (connection refused): ejected at once, long before
    // the active check (fall = 50) would notice, and marked down.
    a.kill().await;
    let mut c = h1(listener(&app, "web")).await;
    for _ in 0..4 {
        assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    }
    let info = server_info(ad, "p", "a").await.expect("a");
    assert_eq!(
        (info["ejected"].clone(), info["health"].clone()),
        (serde_json::json!(true), serde_json::json!("down")),
        "{info}"
    );
    // The ejection time passes while a is still dead: it stays out.
    let unejected = || async {
        server_info(ad, "p", "a")
            .await
            .is_some_and(|v| v["ejected"] == false)
    };
    wait_until(Duration::from_secs(5), unejected)
        .await
        .expect("the ejection ended");
    let info = server_info(ad, "p", "a").await.expect("a");
    assert_eq!(
        (info["ejected"].clone(), info["available"].clone()),
        (serde_json::json!(false), serde_json::json!(false)),
        "{info}"
    );
    // Back: only after `rise` passing checks does it take traffic again.
    let hits = a.hits();
    a.revive().await;
    wait_until(Duration::from_secs(5), || up("a"))
        .await
        .expect("a back up through the active check");
    let got = wait_until(Duration::from_secs(5), || async {
        let mut c = h1(listener(&app, "web")).await;
        read(c.go(get("/", "x")).await.expect("response")).await;
        a.hits() > hits
    })
    .await;
    assert!(got.is_some(), "a gets traffic again");
    drop(b);
    app.shutdown().await;
}
