//! Holes found by trying rampart from outside: h2c smuggling, the header
//! size limit, slow heads, case in path rules.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::support::*;

fn config(backend: SocketAddr, extra: &str) -> String {
    format!(
        "[runtime]\nstate_dir = \"state\"\n{extra}\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{backend}\"\n"
    )
}

/// A backend that answers with the request's hop-related headers, one
/// `name: value` per line.
async fn header_echo() -> Backend {
    Backend::start(|req| async move {
        let mut out = String::new();
        for (n, v) in req.headers() {
            if ["upgrade", "connection", "http2-settings"].contains(&n.as_str()) {
                out.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
            }
        }
        http::Response::new(full(out))
    })
    .await
}

/// Writes `request` and reads one response (to its `Content-Length`), or
/// until the server closes, or 5 s pass.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &[u8]) -> String {
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn plain(addr: SocketAddr, request: &[u8]) -> String {
    exchange(
        tokio::net::TcpStream::connect(addr).await.expect("connect"),
        request,
    )
    .await
}

async fn over_tls(addr: SocketAddr, ca: &Path, request: &[u8]) -> String {
    exchange(tls_connect(addr, "localhost", ca, &[b"http/1.1"]).await, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upgrades_are_stripped_and_only_allowed_protocols_pass() {
    let be = header_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = "[[route]]\npool = \"p\"\n[[route]]\npath = \"/none\"\npool = \"p\"\nupgrades = []\n";
    let app = start_app(&format!("{}{routes}", config(be.addr, "")), dir.path()).await;
    let ca = dir.path().join("state/tls/ca.pem");
    let (web, tls) = (listener(&app, "web"), listener(&app, "tls"));
    let spellings = [
        ("Upgrade, HTTP2-Settings", "h2c"),
        ("HTTP2-Settings, Upgrade", "h2c"),
        ("upgrade", "H2C"),
        ("keep-alive, UPGRADE,http2-settings", "h2c"),
        ("Upgrade, HTTP2-Settings, x-extra", "h2c, foo/2"),
    ];
    for (conn, up) in spellings {
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: {conn}\r\nUpgrade: {up}\r\n\
             HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Extra: 1\r\n\r\n"
        );
        for (how, resp) in [
            ("plain", plain(web, req.as_bytes()).await),
            ("tls", over_tls(tls, &ca, req.as_bytes()).await),
        ] {
            assert!(resp.starts_with("HTTP/1.1 200"), "{how} {conn} / {up}: {resp}");
            let body = resp
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                !body.contains("upgrade") && !body.contains("h2c") && !body.contains("http2-settings"),
                "{how} {conn} / {up}: the backend saw {body:?}"
            );
        }
    }
    // A WebSocket offer next to h2c: only the WebSocket one goes on.
    let req =
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c, websocket\r\n\
                HTTP2-Settings: AAMAAABk\r\nSec-WebSocket-Version: 13\r\n\r\n";
    for resp in [plain(web, req).await, over_tls(tls, &ca, req).await] {
        let body = resp
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(body.contains("upgrade: websocket\n"), "{resp}");
        assert!(body.contains("connection: upgrade\n"), "{resp}");
        assert!(
            !body.contains("h2c") && !body.contains("http2-settings"),
            "{resp}"
        );
    }
    // A route that allows no upgrade strips WebSocket too.
    let req = b"GET /none HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let resp = plain(web, req).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(!body.contains("upgrade"), "{resp}");
    // h2c cannot be allowed: the config names the key and says why.
    let h2c = format!(
        "{}[[route]]\npool = \"p\"\nupgrades = [\"websocket\", \"H2C\"]\n",
        config(be.addr, "")
    );
    let err = rampart::config::load_str(&h2c, "h2c.toml", dir.path(), &rampart::tls::SystemEnv)
        .expect_err("refused");
    let err = err.to_string();
    assert!(
        err.contains("h2c.toml:") && err.contains("route[0].upgrades"),
        "{err}"
    );
    assert!(err.contains("tunnel"), "{err}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_switches_protocols_unasked_gets_502() {
    // A backend that answers 101 to anything: rampart must not relay it.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                    )
                    .await;
                let _ = s.read(&mut buf).await;
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(
        &format!("{}[[route]]\npool = \"p\"\n", config(addr, "")),
        dir.path(),
    )
    .await;
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n";
    let resp = plain(listener(&app, "web"), req).await;
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    app.shutdown().await;
}

/// A request head of exactly `len` bytes (request line to blank line).
fn head_of(len: usize) -> Vec<u8> {
    let start = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ";
    let end = "\r\n\r\n";
    let fill = len - start.len() - end.len();
    let head = format!("{start}{}{end}", "a".repeat(fill));
    assert_eq!(head.len(), len);
    head.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_size_limit_holds_on_http1_plain_tls_and_http2() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The default limit, 64 KiB.
    let app = start_app(
        &format!("{}[[route]]\npool = \"p\"\n", config(be.addr, "")),
        dir.path(),
    )
    .await;
    let ca = dir.path().join("state/tls/ca.pem");
    let (web, tls) = (listener(&app, "web"), listener(&app, "tls"));
    let max = 64 * 1024;
    let mut forwarded = 0;
    let under = plain(web, &head_of(max)).await;
    assert!(under.starts_with("HTTP/1.1 200"), "plain, {max} bytes: {under}");
    let under = over_tls(tls, &ca, &head_of(max)).await;
    assert!(under.starts_with("HTTP/1.1 200"), "tls, {max} bytes: {under}");
    forwarded += 2;
    assert_eq!(be.hits(), forwarded);
    let many: String = (0..25)
        .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(4000)))
        .collect();
    let spread = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    for (how, over) in [
        ("plain", plain(web, &head_of(max + 1)).await),
        ("tls", over_tls(tls, &ca, &head_of(max + 1)).await),
        ("plain, one 100 KB header", plain(web, &head_of(100_000)).await),
        (
            "tls, one 100 KB header",
            over_tls(tls, &ca, &head_of(100_000)).await,
        ),
        ("plain, 25 headers of 4 KB", plain(web, spread.as_bytes()).await),
        (
            "tls, 25 headers of 4 KB",
            over_tls(tls, &ca, spread.as_bytes()).await,
        ),
    ] {
        assert!(over.starts_with("HTTP/1.1 431"), "{how}: {over}");
        assert_eq!(be.hits(), forwarded, "{how}: forwarded");
    }
    // HTTP/2 counts the header list as RFC 9113 does: each field's name and
    // value plus 32; the four pseudo-headers of this request make 167 bytes.
    let h2_request = |value_len: usize| {
        http::Request::get("https://x/")
            .header("x-big", "b".repeat(value_len))
            .body(full(""))
            .expect("request")
    };
    let pseudo = (7 + 3 + 32) + (7 + 5 + 32) + (10 + 1 + 32) + (5 + 1 + 32);
    let fits = max - 1 - pseudo - 5 - 32;
    let mut c = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
    let ok = c.go(h2_request(fits)).await.expect("response");
    assert_eq!(ok.status(), 200, "HTTP/2 just under the limit");
    forwarded += 1;
    assert_eq!(be.hits(), forwarded);
    for len in [fits + 1, 100_000] {
        let mut c = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
        let resp = c.go(h2_request(len)).await.expect("response");
        assert_eq!(resp.status(), 431, "HTTP/2, value of {len} bytes");
        assert_eq!(be.hits(), forwarded);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_get_408_after_request_header_while_idle_clients_wait_for_client_idle() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let timeouts = "[timeouts]\nrequest_header = \"500ms\"\nclient_idle = \"3s\"\n";
    let app = start_app(
        &format!("{}[[route]]\npool = \"p\"\n", config(be.addr, timeouts)),
        dir.path(),
    )
    .await;
    let ca = dir.path().join("state/tls/ca.pem");
    let (web, tls) = (listener(&app, "web"), listener(&app, "tls"));
    // 50 clients send their head one byte at a time, 50 ms apart (the whole
    // head would take seconds); plus one over TLS.
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    async fn drip<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, head: &'static [u8]) -> (String, Duration) {
        let started = Instant::now();
        for b in head {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            let _ = s.flush().await;
            let mut buf = [0u8; 512];
            // Reading with a short timeout doubles as the pause between bytes.
            match tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (String::new(), started.elapsed()),
                Ok(Ok(n)) => {
                    let mut out = buf[..n].to_vec();
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
                    return (String::from_utf8_lossy(&out).into_owned(), started.elapsed());
                }
                Err(_) => {}
            }
        }
        (String::from("the whole head was sent"), started.elapsed())
    }
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = tokio::net::TcpStream::connect(web).await.expect("connect");
        tasks.push(tokio::spawn(drip(s, head)));
    }
    let t = tls_connect(tls, "localhost", &ca, &[b"http/1.1"]).await;
    tasks.push(tokio::spawn(drip(t, head)));
    // An idle keep-alive client is not cut off by request_header.
    let mut idle = h1(web).await;
    assert_eq!(read(idle.go(get("/", "x")).await.expect("first")).await.0, 200);
    // Nor is a client that has sent nothing yet (its connection may look
    // readable before any byte came: request_header starts at the first).
    let mut silent = h1(web).await;
    let silent_since = Instant::now();
    for task in tasks {
        let (resp, took) = task.await.expect("drip task");
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp:?} after {took:?}");
        // Not before request_header (500 ms); the upper bound is wide (51
        // connections dripping on a machine CI may load).
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(6),
            "closed after {took:?}"
        );
    }
    // By now the idle client has waited over 500 ms: still served.
    assert_eq!(read(idle.go(get("/", "x")).await.expect("second")).await.0, 200);
    // Well past request_header (500 ms), within client_idle (3 s).
    tokio::time::sleep_until((silent_since + Duration::from_millis(900)).into()).await;
    assert_eq!(read(silent.go(get("/", "x")).await.expect("silent")).await.0, 200);
    assert_eq!(be.hits(), 3, "no slow head was forwarded");
    // After client_idle with no request, the idle connection is closed.
    let waited = wait_until(Duration::from_secs(6), || {
        let closed = idle.is_closed();
        async move { closed }
    })
    .await;
    let waited = waited.expect("idle connection closed after client_idle");
    assert!(waited >= Duration::from_millis(1500), "closed after {waited:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_get_goaway_after_client_idle_but_busy_ones_do_not() {
    let be = Backend::start(|req| async move {
        if req.uri().path() == "/slow" {
            // A backend busy for longer than client_idle (real time: the
            // proxy's idle clock is the one under test).
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        http::Response::new(full("ok"))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let timeouts = "[timeouts]\nclient_idle = \"1s\"\n";
    let app = start_app(
        &format!("{}[[route]]\npool = \"p\"\n", config(be.addr, timeouts)),
        dir.path(),
    )
    .await;
    let ca = dir.path().join("state/tls/ca.pem");
    let tls = listener(&app, "tls");
    let h2_get = |path: &str| {
        http::Request::get(format!("https://x{path}"))
            .body(full(""))
            .expect("request")
    };
    // A request in flight for longer than client_idle keeps its connection.
    let mut busy = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
    let resp = busy.go(h2_get("/slow")).await.expect("slow response");
    assert_eq!(read(resp).await.0, 200);
    // Then nothing: GOAWAY and close after client_idle.
    let started = Instant::now();
    let closed = wait_until(Duration::from_secs(5), || {
        let c = busy.is_closed();
        async move { c }
    })
    .await
    .expect("idle HTTP/2 connection closed");
    // Not before client_idle (1 s); within a wide margin after it.
    assert!(
        closed >= Duration::from_millis(800) && started.elapsed() < Duration::from_secs(5),
        "closed after {closed:?}"
    );
    // A connection used more often than client_idle stays open (requests
    // paced 200 ms apart in real time, against a 1 s idle limit: a stall of
    // most of a second would be needed to close it).
    let mut steady = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
    for _ in 0..8 {
        assert_eq!(read(steady.go(h2_get("/")).await.expect("response")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!steady.is_closed());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rules_can_ignore_case_for_case_insensitive_backends() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = "[[route]]\npool = \"p\"\n\
        [[rule]]\nname = \"admin\"\naction = \"deny\"\n[rule.match]\npath_prefix = \"/admin\"\npath_case_insensitive = true\n\
        [[rule]]\nname = \"cgi\"\naction = \"deny\"\n[rule.match]\npath_regex = \"^/cgi-bin/.*\\\\.exe$\"\npath_case_insensitive = true\n\
        [[rule]]\nname = \"exact\"\naction = \"deny\"\n[rule.match]\npath_prefix = \"/private\"\n";
    let app = start_app(&format!("{}{rules}", config(be.addr, "")), dir.path()).await;
    let ca = dir.path().join("state/tls/ca.pem");
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    let mut h2 = h2_over(tls_connect(listener(&app, "tls"), "localhost", &ca, &[b"h2"]).await).await;
    for (path, status) in [
        ("/admin", 403),
        ("/ADMIN", 403),
        ("/Admin/users", 403),
        ("/%41dmin", 403),
        ("/CGI-BIN/run.EXE", 403),
        ("/private", 403),
        // Case-sensitive by default: right for backends that are.
        ("/PRIVATE", 200),
        ("/adm", 200),
    ] {
        assert_eq!(
            read(c.go(get(path, "x")).await.expect("h1")).await.0,
            status,
            "h1 {path}"
        );
        let req = http::Request::get(format!("https://x{path}"))
            .body(full(""))
            .expect("request");
        assert_eq!(read(h2.go(req).await.expect("h2")).await.0, status, "h2 {path}");
    }
    // The option alone, with no path condition, is an error, not ignored.
    let bad = format!(
        "{}[[route]]\npool = \"p\"\n[[rule]]\nname = \"x\"\naction = \"deny\"\n[rule.match]\npath_case_insensitive = true\n",
        config(be.addr, "")
    );
    let err = rampart::config::load_str(&bad, "bad.toml", dir.path(), &rampart::tls::SystemEnv)
        .expect_err("refused");
    assert!(err.to_string().contains("path_case_insensitive"), "{err}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_counts_once_across_listeners_and_reloads_do_not_refill_it() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A global 5 r/s bucket (burst 5) on both listeners.
    let rule = "[[route]]\npool = \"p\"\n\
        [[rule]]\nname = \"five\"\naction = \"rate_limit\"\nrate = 5\nburst = 5\nkey = [\"global\"]\n";
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, with_test_admin(&format!("{}{rule}", config(be.addr, "")))).expect("write config");
    let app = start_app_file(&path).await;
    let ca = dir.path().join("state/tls/ca.pem");
    let mut plain_c = h1(listener(&app, "web")).await;
    let mut tls_c = h1_over(tls_connect(listener(&app, "tls"), "localhost", &ca, &[b"http/1.1"]).await).await;
    let started = Instant::now();
    let mut admitted = 0;
    for i in 0..20 {
        let c = if i % 2 == 0 { &mut plain_c } else { &mut tls_c };
        if read(c.go(get("/", "x")).await.expect("response")).await.0 == 200 {
            admitted += 1;
        }
    }
    // One bucket of 5, plus what refilled meanwhile (5 per second).
    let refill = (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    assert!(
        admitted >= 5 && admitted <= 5 + refill,
        "admitted {admitted} in {:?}",
        started.elapsed()
    );
    // Empty the bucket, reload, and ask again at once: still limited.
    while read(plain_c.go(get("/", "x")).await.expect("response")).await.0 == 200 {}
    let (status, v) = admin(app.admin().expect("admin"), "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    let (status, _, _) = read(tls_c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!(status, 429, "a reload must not refill the bucket");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_reload_does_not_delay_requests_meanwhile() {
    use std::os::unix::fs::OpenOptionsExt;
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("{}[[route]]\npool = \"p\"\n", config(be.addr, ""));
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, with_test_admin(&base)).expect("write config");
    let app = start_app_file(&path).await;
    let admin_addr = app.admin().expect("admin");
    let web = listener(&app, "web");
    // The new config reads a deny list from a named pipe: reading it blocks
    // until the test writes, as a slow disk or a slow name lookup would.
    let fifo = dir.path().join("deny.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let slow = base.replace(
        "name = \"web\"\naddress = \"127.0.0.1:0\"\n",
        "name = \"web\"\naddress = \"127.0.0.1:0\"\ndeny_file = \"deny.fifo\"\n",
    );
    std::fs::write(&path, with_test_admin(&slow)).expect("write config");
    let reload = tokio::spawn(async move { admin(admin_addr, "POST", "/api/reload", None).await });
    // Opening the pipe for writing without blocking succeeds only once the
    // reload has it open for reading; the handle is kept so that the
    // reload then waits for data. The test itself blocks (std sleeps and
    // sockets) so that it needs nothing from the one worker thread: with the
    // old code that thread was stuck in the reload and the test would hang.
    let mut pipe = None;
    for _ in 0..500 {
        pipe = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open(&fifo)
            .ok();
        if pipe.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut pipe = pipe.expect("the reload opened the deny list");
    // The reload is now waiting for the pipe; the one worker thread must
    // still serve requests.
    for i in 0..10 {
        use std::io::{Read, Write};
        let started = Instant::now();
        let mut s = std::net::TcpStream::connect(web).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(4))).expect("timeout");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "request {i} during the reload: {text:?}"
        );
        // A worker stuck in the reload would never answer; a loaded
        // machine answers in milliseconds, so 3 s is a wide margin.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    assert!(!reload.is_finished(), "the reload is still waiting for its file");
    use std::io::Write;
    pipe.write_all(b"192.0.2.0/24\n").expect("write the deny list");
    drop(pipe);
    let (status, v) = tokio::time::timeout(Duration::from_secs(10), reload)
        .await
        .expect("reload finished")
        .expect("reload task");
    assert_eq!(status, 200, "{v}");
    let mut c = h1(web).await;
    assert_eq!(read(c.go(get("/", "x")).await.expect("after")).await.0, 200);
    app.shutdown().await;
}
