//! Proxying over plain HTTP: balancing, routing, headers, upgrades and the
//! error answers.

use std::time::Duration;

use http::Request;
use serde_json::Value;

use crate::support::*;

fn pool_toml(name: &str, algorithm: &str, backends: &[&Backend]) -> String {
    let mut s = format!("[[pool]]\nname = \"{name}\"\nalgorithm = \"{algorithm}\"\n");
    for (i, b) in backends.iter().enumerate() {
        s.push_str(&format!(
            "[[pool.server]]\nname = \"{name}-{i}\"\naddress = \"{}\"\n",
            b.addr
        ));
    }
    s
}

const PLAIN: &str = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n";

#[tokio::test]
async fn round_robin_spreads_requests_over_three_backends() {
    let (a, b, c) = (
        Backend::named("a").await,
        Backend::named("b").await,
        Backend::named("c").await,
    );
    let toml = format!(
        "{PLAIN}{}[[route]]\npool = \"p\"\n",
        pool_toml("p", "round_robin", &[&a, &b, &c])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    let mut seen = std::collections::HashMap::new();
    for _ in 0..300 {
        let (status, _, body) = read(client.go(get("/", "example.test")).await.expect("response")).await;
        assert_eq!(status, 200);
        *seen.entry(body).or_insert(0) += 1;
    }
    assert_eq!((a.hits(), b.hits(), c.hits()), (100, 100, 100), "{seen:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn routes_by_host_and_longest_path_prefix() {
    let (def, api, wild, exact) = (
        Backend::named("def").await,
        Backend::named("api").await,
        Backend::named("wild").await,
        Backend::named("exact").await,
    );
    let toml = format!(
        "{PLAIN}{}{}{}{}\
         [[route]]\npool = \"def\"\n\
         [[route]]\npath = \"/api\"\npool = \"api\"\n\
         [[route]]\nhost = \"*.example.test\"\npool = \"wild\"\n\
         [[route]]\nhost = \"www.example.test\"\npool = \"exact\"\n",
        pool_toml("def", "round_robin", &[&def]),
        pool_toml("api", "round_robin", &[&api]),
        pool_toml("wild", "round_robin", &[&wild]),
        pool_toml("exact", "round_robin", &[&exact]),
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    for (host, path, want) in [
        ("other.test", "/", "def"),
        ("other.test", "/api/v1", "api"),
        ("other.test", "/apiary", "def"),
        ("a.example.test", "/api/v1", "wild"),
        ("WWW.Example.Test:80", "/x", "exact"),
    ] {
        let (_, _, body) = read(client.go(get(path, host)).await.expect("response")).await;
        assert_eq!(body, want, "{host}{path}");
    }
    app.shutdown().await;
}

/// A backend that answers with the request headers it received, as JSON.
async fn header_echo() -> Backend {
    Backend::start(|req| async move {
        let mut map = serde_json::Map::new();
        for (k, v) in req.headers() {
            map.insert(
                k.as_str().to_string(),
                Value::String(v.to_str().unwrap_or("?").to_string()),
            );
        }
        let mut resp = http::Response::new(full(Value::Object(map).to_string()));
        // Hop-by-hop headers from the backend must not reach the client.
        resp.headers_mut()
            .insert("connection", http::HeaderValue::from_static("x-backend-private"));
        resp.headers_mut()
            .insert("x-backend-private", http::HeaderValue::from_static("1"));
        resp.headers_mut()
            .insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
        resp
    })
    .await
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_and_forwarding_headers_set() {
    let be = header_echo().await;
    let toml = format!(
        "{PLAIN}{}[[route]]\npool = \"p\"\n",
        pool_toml("p", "round_robin", &[&be])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    let req = Request::get("/h")
        .header("host", "app.test")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "must-not-pass")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-kept", "yes")
        .body(full(""))
        .expect("request");
    let resp = client.go(req).await.expect("response");
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 200);
    let seen: Value = serde_json::from_str(&body).expect("json");
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "connection",
    ] {
        assert!(seen.get(gone).is_none(), "{gone} reached the backend: {seen}");
    }
    assert_eq!(seen["x-kept"], "yes");
    // The client is not a trusted proxy: its X-Forwarded-For is replaced, not extended.
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "app.test");
    assert_eq!(seen["forwarded"], "for=127.0.0.1;proto=http;host=\"app.test\"");
    assert_eq!(seen["host"], "app.test");
    // A request id was created, sent to the backend and returned.
    let rid = headers
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .expect("ascii");
    assert_eq!(seen["x-request-id"], rid);
    assert!(headers.get("x-backend-private").is_none(), "{headers:?}");
    assert!(headers.get("keep-alive").is_none(), "{headers:?}");

    // An incoming request id is kept.
    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-request-id", "trace-42")
        .body(full(""))
        .expect("req");
    let (_, headers, body) = read(client.go(req).await.expect("response")).await;
    assert_eq!(headers["x-request-id"], "trace-42");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["x-request-id"],
        "trace-42"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unreachable_backend_is_502_and_silent_backend_is_504() {
    // A port that was bound and released: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    // A backend that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let toml = format!(
        "[timeouts]\nresponse_header = \"300ms\"\n{PLAIN}\
         [[pool]]\nname = \"dead\"\n[[pool.server]]\nname = \"gone\"\naddress = \"{dead}\"\n\
         [[pool]]\nname = \"slow\"\n[[pool.server]]\nname = \"sleepy\"\naddress = \"{silent_addr}\"\n\
         [[route]]\npath = \"/dead\"\npool = \"dead\"\n[[route]]\npath = \"/slow\"\npool = \"slow\"\n"
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    let (status, headers, body) = read(client.go(get("/dead", "x")).await.expect("response")).await;
    assert_eq!(status, 502);
    assert_eq!(body, "502 Bad Gateway\n");
    assert!(headers.contains_key("x-request-id"));
    let started = std::time::Instant::now();
    let (status, _, body) = read(client.go(get("/slow", "x")).await.expect("response")).await;
    assert_eq!(status, 504);
    assert_eq!(body, "504 Gateway Timeout\n");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // No route at all is a 404 from rampart itself.
    hold.abort();
    app.shutdown().await;
}

#[tokio::test]
async fn ambiguous_framing_is_rejected_and_never_forwarded() {
    let be = Backend::named("be").await;
    let toml = format!(
        "{PLAIN}{}[[route]]\npool = \"p\"\n",
        pool_toml("p", "round_robin", &[&be])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let addr = listener(&app, "web");
    let both = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(both.starts_with("HTTP/1.1 400"), "{both}");
    let dup = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    )
    .await;
    assert!(dup.starts_with("HTTP/1.1 400"), "{dup}");
    assert_eq!(be.hits(), 0, "an ambiguous request reached the backend");
    app.shutdown().await;
}

#[tokio::test]
async fn websocket_echo_passes_through() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws_addr = ws.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = ws.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = conn.next().await {
                    if m.is_text() || m.is_binary() {
                        let _ = conn.send(m).await;
                    }
                }
            });
        }
    });
    let toml = format!("{PLAIN}[[pool]]\nname = \"ws\"\n[[pool.server]]\naddress = \"{ws_addr}\"\n[[route]]\npool = \"ws\"\n");
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let stream = tokio::net::TcpStream::connect(listener(&app, "web"))
        .await
        .expect("connect");
    let (mut conn, resp) = tokio_tungstenite::client_async("ws://chat.test/socket", stream)
        .await
        .expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    for text in ["hello", "second message", "third"] {
        conn.send(Message::text(text)).await.expect("send");
        let back = tokio::time::timeout(Duration::from_secs(5), conn.next())
            .await
            .expect("echo in time");
        assert_eq!(
            back.expect("frame")
                .expect("ok")
                .into_text()
                .expect("text")
                .as_str(),
            text
        );
    }
    conn.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    let back = conn.next().await.expect("frame").expect("ok");
    assert_eq!(back.into_data(), vec![0u8, 1, 2, 255]);
    app.shutdown().await;
}

#[tokio::test]
async fn http_listener_redirects_to_https_with_308() {
    let be = Backend::named("be").await;
    let toml = format!(
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nredirect_to = \"tls\"\n{}[[route]]\npool = \"p\"\n",
        pool_toml("p", "round_robin", &[&be])
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&format!("[runtime]\nstate_dir = \"state\"\n{toml}"), dir.path()).await;
    let https_port = listener(&app, "tls").port();
    let mut client = h1(listener(&app, "plain")).await;
    let (status, headers, _) = read(
        client
            .go(get("/path/x?q=1", "shop.test:8080"))
            .await
            .expect("response"),
    )
    .await;
    assert_eq!(status, 308);
    assert_eq!(
        headers["location"],
        format!("https://shop.test:{https_port}/path/x?q=1")
    );
    assert_eq!(be.hits(), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn origin_refuses_path_traversal_through_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("site");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("index.html"), "<p>home</p>").expect("write");
    std::fs::write(dir.path().join("secret.txt"), "TOP SECRET").expect("write");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).expect("symlink");
    let toml = format!(
        "{PLAIN}[[origin]]\nname = \"files\"\naddress = \"127.0.0.1:0\"\nroot = \"site\"\n\
         [[pool]]\nname = \"files\"\n[[pool.server]]\norigin = \"files\"\n[[route]]\npool = \"files\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let addr = listener(&app, "web");
    let ok = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("<p>home</p>"),
        "{ok}"
    );
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e%2fsecret.txt",
        "/a/..%2f..%2fsecret.txt",
        "/link.txt",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let resp = raw(addr, req.as_bytes()).await;
        assert!(resp.starts_with("HTTP/1.1 40"), "{path}: {resp}");
        assert!(!resp.contains("TOP SECRET"), "{path} leaked the file");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn request_body_and_response_stream_through() {
    // The backend answers with the number of bytes it received.
    let be = Backend::start(|req| async move {
        let n = body_len(req).await;
        http::Response::new(full(n.to_string()))
    })
    .await;
    let toml = format!(
        "{PLAIN}{}[[route]]\npool = \"p\"\n",
        pool_toml("p", "round_robin", &[&be])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    let body = vec![7u8; 3 * 1024 * 1024 + 17];
    let req = Request::post("/upload")
        .header("host", "x")
        .body(full(body))
        .expect("req");
    let (status, _, text) = read(client.go(req).await.expect("response")).await;
    assert_eq!((status, text.as_str()), (200, "3145745"));
    app.shutdown().await;
}

#[tokio::test]
async fn h2c_pools_speak_http2_to_the_backend() {
    use hyper::server::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let v = format!("{:?} {}", req.version(), req.uri().path());
                    Ok::<_, std::convert::Infallible>(http::Response::new(full(v)))
                });
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let toml = format!(
        "{PLAIN}[[pool]]\nname = \"p\"\nprotocol = \"h2c\"\n[[pool.server]]\naddress = \"{addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let mut client = h1(listener(&app, "web")).await;
    for i in 0..3 {
        client.ready().await.expect("ready");
        let (status, _, body) = read(client.go(get(&format!("/n{i}"), "x")).await.expect("response")).await;
        assert_eq!((status, body), (200, format!("HTTP/2.0 /n{i}")));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn backend_connections_are_reused_and_idle_clients_are_closed() {
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let c2 = conns.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(full("ok")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    // Backend connections are pooled per worker thread: with one worker,
    // every request shares one connection. `workers` only applies to the
    // rampart process (an in-process app runs on the test's runtime), so
    // this test runs the real binary.
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nworkers = 1\nstate_dir = \"state\"\n[admin]\nenabled = false\n\
         [timeouts]\nclient_idle = \"300ms\"\n{PLAIN}\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let config = dir.path().join("rampart.toml");
    std::fs::write(&config, toml).expect("config");
    let rp = Process::run(&config, dir.path());
    let web = rp.addr("web");
    let mut client = h1(web).await;
    for _ in 0..20 {
        client.ready().await.expect("ready");
        let head = Request::head("/")
            .header("host", "x")
            .body(full(""))
            .expect("req");
        let (status, _, _) = read(client.go(head).await.expect("response")).await;
        assert_eq!(status, 200);
        client.ready().await.expect("ready");
        let (status, _, body) = read(client.go(get("/", "x")).await.expect("response")).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    assert_eq!(
        conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "40 sequential requests should share one backend connection"
    );
    // An idle client connection is closed after client_idle.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(web).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed in time")
            .expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > 0, "got the response before the close");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        started.elapsed()
    );
    drop(rp);
}
