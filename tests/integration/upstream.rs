//! The backend side: in-flight accounting of HTTP/2 streams, and the
//! life of pooled connections (idle limit, backends that close, servers
//! that leave).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;

use crate::support::*;

/// An h2c backend: `/stream` sends one chunk, then holds the body open
/// until `gate` is notified; anything else answers at once. Counts the
/// connections open to it.
async fn h2c_streaming(gate: Arc<Notify>) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let open = Arc::new(AtomicUsize::new(0));
    let o = open.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let gate = gate.clone();
            let o = o.clone();
            o.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let gate = gate.clone();
                    async move {
                        if req.uri().path() != "/stream" {
                            return Ok::<_, Infallible>(http::Response::new(full("quick")));
                        }
                        let chunks = futures_util::stream::unfold(0u8, move |i| {
                            let gate = gate.clone();
                            async move {
                                match i {
                                    0 => Some((Ok(Frame::data(Bytes::from_static(b"first "))), 1)),
                                    1 => {
                                        gate.notified().await;
                                        Some((Ok(Frame::data(Bytes::from_static(b"last"))), 2))
                                    }
                                    _ => None,
                                }
                            }
                        });
                        let body: TestBody = StreamBody::new(chunks).boxed();
                        Ok(http::Response::new(body))
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_streams_count_in_flight_until_their_body_ends() {
    let gate = Arc::new(Notify::new());
    let (addr, _) = h2c_streaming(gate.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\nprotocol = \"h2c\"\nalgorithm = \"least_requests\"\nmax_requests = 1\n\
         [[pool.server]]\nname = \"h2\"\naddress = \"{addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let web = listener(&app, "web");
    let admin_addr = app.admin().expect("admin");
    let mut streaming = h1(web).await;
    let resp = streaming.go(get("/stream", "x")).await.expect("response header");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert_eq!(first.into_data().ok().as_deref(), Some(&b"first "[..]));
    // The stream is still sending: the server has a request in flight, and
    // the pool (max_requests = 1) is full.
    let info = server_info(admin_addr, "p", "h2").await.expect("server");
    assert_eq!(info["in_flight"], 1, "{info}");
    let mut other = h1(web).await;
    let (status, _, _) = read(other.go(get("/", "x")).await.expect("response")).await;
    assert_eq!(
        status, 503,
        "the pool's one slot is taken by the streaming response"
    );
    gate.notify_one();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], b"last");
    let freed = wait_until(Duration::from_secs(2), || async {
        server_info(admin_addr, "p", "h2")
            .await
            .is_some_and(|s| s["in_flight"] == 0)
    })
    .await;
    assert!(freed.is_some(), "in-flight count released when the body ended");
    let (status, _, text) = read(other.go(get("/", "x")).await.expect("response")).await;
    assert_eq!((status, text.as_str()), (200, "quick"));
    app.shutdown().await;
}

/// An HTTP/1.1 backend that counts the connections open to it.
struct Counted {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counted {
    async fn start() -> Counted {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let open = Arc::new(AtomicUsize::new(0));
        let o = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let o = o.clone();
                o.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(http::Response::new(full("counted")))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Counted { addr, open, task }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_backend_connections_close_after_backend_idle() {
    let be = Counted::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[timeouts]\nbackend_idle = \"1s\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        be.addr
    );
    let app = start_app(&toml, dir.path()).await;
    // Two clients at once make two pooled connections.
    let web = listener(&app, "web");
    let (mut a, mut b) = (h1(web).await, h1(web).await);
    let (ra, rb) = tokio::join!(a.go(get("/", "x")), b.go(get("/", "x")));
    assert_eq!(read(ra.expect("a")).await.0, 200);
    assert_eq!(read(rb.expect("b")).await.0, 200);
    assert!(be.open() >= 1, "pooled connections stay open for now");
    let closed = wait_until(Duration::from_secs(4), || async { be.open() == 0 })
        .await
        .expect("idle connections closed");
    assert!(
        closed >= Duration::from_millis(800) && closed <= Duration::from_millis(2500),
        "closed after {closed:?}"
    );
    // A new request still works (on a new connection).
    assert_eq!(read(a.go(get("/", "x")).await.expect("again")).await.0, 200);
    app.shutdown().await;
}

/// Sockets of this process in CLOSE_WAIT towards `port` (the peer closed,
/// this side did not).
fn close_wait_to(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "08"
                && f[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_backend_closes_is_closed_at_once() {
    // A backend that keeps connections "alive" but closes each one right
    // after its response.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let closed = c2.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                drop(s);
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let mut c = h1(listener(&app, "web")).await;
    for i in 1..=3 {
        assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
        let gone = wait_until(Duration::from_secs(2), || async {
            closed.load(Ordering::SeqCst) == i && close_wait_to(addr.port()) == 0
        })
        .await;
        // Not reading while pooled would leave rampart's end in CLOSE_WAIT
        // until the connection was next taken out.
        assert!(
            gone.is_some(),
            "{} sockets in CLOSE_WAIT",
            close_wait_to(addr.port())
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_server_keeps_no_connection_after_its_drain() {
    let (one, two) = (Counted::start().await, Counted::start().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"one\"\naddress = \"{}\"\n\
         [[pool.server]]\nname = \"two\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        one.addr, two.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let admin_addr = app.admin().expect("admin");
    let mut c = h1(listener(&app, "web")).await;
    for _ in 0..6 {
        assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    }
    assert!(one.open() >= 1 && two.open() >= 1, "both have pooled connections");
    let (status, v) = admin(admin_addr, "DELETE", "/api/pools/p/servers/one", None).await;
    assert_eq!(status, 202, "{v}");
    let closed = wait_until(Duration::from_secs(3), || async { one.open() == 0 }).await;
    assert!(
        closed.is_some(),
        "{} connections left to the removed server",
        one.open()
    );
    for _ in 0..4 {
        let (status, _, text) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!((status, text.as_str()), (200, "counted"));
    }
    assert_eq!(one.open(), 0);
    assert!(two.open() >= 1, "the other server's connections stay pooled");
    app.shutdown().await;
}

/// A removed h2c server: its connection stays while a response on it is
/// still streaming, and closes once that is done (on every worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_h2c_server_s_connection_closes_after_its_drain() {
    let gate = Arc::new(Notify::new());
    let (gone_addr, gone_open) = h2c_streaming(gate.clone()).await;
    let (kept_addr, kept_open) = h2c_streaming(Arc::new(Notify::new())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\nprotocol = \"h2c\"\n[[pool.server]]\nname = \"gone\"\naddress = \"{gone_addr}\"\n\
         [[pool.server]]\nname = \"kept\"\naddress = \"{kept_addr}\"\n[[route]]\npool = \"p\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let admin_addr = app.admin().expect("admin");
    let web = listener(&app, "web");
    // Round robin: the first request goes to `gone`, and streams.
    let mut streaming = h1(web).await;
    let resp = streaming.go(get("/stream", "x")).await.expect("response header");
    let mut body = resp.into_body();
    body.frame().await.expect("a frame").expect("data");
    let mut c = h1(web).await;
    for _ in 0..4 {
        assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    }
    assert!(gone_open.load(Ordering::SeqCst) >= 1 && kept_open.load(Ordering::SeqCst) >= 1);
    let (status, v) = admin(admin_addr, "DELETE", "/api/pools/p/servers/gone", None).await;
    assert_eq!(status, 202, "{v}");
    // The stream in flight keeps its connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gone_open.load(Ordering::SeqCst) >= 1,
        "closed under a response in flight"
    );
    gate.notify_one();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], b"last");
    let closed = wait_until(Duration::from_secs(3), || async {
        gone_open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert!(
        closed.is_some(),
        "{} connections left to the removed server",
        gone_open.load(Ordering::SeqCst)
    );
    for _ in 0..4 {
        let (status, _, text) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!((status, text.as_str()), (200, "quick"));
    }
    assert!(
        kept_open.load(Ordering::SeqCst) >= 1,
        "the other server's connection stays"
    );
    app.shutdown().await;
}
