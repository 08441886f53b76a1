//! TCP mode: a `mode = "tcp"` listener relays bytes both ways to a server
//! of its pool, passes a half close on, and skips a server it cannot reach.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// A TCP server that answers with its name, then everything it reads,
/// and closes its side once the client has closed its own.
async fn echo(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let _ = s.write_all(format!("{name}:").as_bytes()).await;
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                // The client's half close arrived: close ours.
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listeners_relay_bytes_and_half_closes_round_robin() {
    let (a, ta) = echo("a").await;
    let (b, tb) = echo("b").await;
    // A server nobody listens on: skipped.
    let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"db\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{a}\"\n[[pool.server]]\naddress = \"{gone_addr}\"\n\
         [[pool.server]]\naddress = \"{b}\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let db = listener(&app, "db");
    let mut seen = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect(db).await.expect("connect");
        let msg = format!("hello {i}");
        s.write_all(msg.as_bytes()).await.expect("write");
        // Half close: the server sees the end, answers, and closes.
        s.shutdown().await.expect("shutdown");
        let mut out = String::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_string(&mut out)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "the relay closed after the server did: {read:?}"
        );
        let (server, rest) = out.split_once(':').expect("a name first");
        assert_eq!(rest, msg, "bytes relayed both ways");
        seen.push(server.to_string());
    }
    seen.sort();
    assert_eq!(
        seen,
        ["a", "a", "b", "b"],
        "round robin over the servers that answer"
    );
    app.shutdown().await;
    ta.abort();
    tb.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_at_its_connection_limit_takes_no_more() {
    let (a, ta) = echo("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"db\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{a}\"\nmax_requests = 1\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let db = listener(&app, "db");
    let mut first = TcpStream::connect(db).await.expect("connect");
    let mut buf = [0u8; 2];
    first.read_exact(&mut buf).await.expect("greeting");
    assert_eq!(&buf, b"a:");
    // The one session it may hold is open: the next connection is closed.
    let mut second = TcpStream::connect(db).await.expect("connect");
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), second.read_to_end(&mut out)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?} {out:?}");
    // Once the first ends, a new one is served.
    first.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), first.read_to_end(&mut rest)).await;
    drop(first);
    let served = wait_until(std::time::Duration::from_secs(5), || async move {
        let Ok(mut s) = TcpStream::connect(db).await else {
            return false;
        };
        let mut b = [0u8; 2];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(1), s.read_exact(&mut b)).await,
            Ok(Ok(_))
        )
    })
    .await;
    assert!(served.is_some(), "a connection after the first ended");
    app.shutdown().await;
    ta.abort();
}

/// A TCP server that echoes everything (64 KiB reads) and closes its side
/// once the client has closed its own.
async fn plain_echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// Deterministic bytes that differ from block to block.
fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let n = offset + i as u64;
        *b = (n ^ (n >> 8) ^ (n >> 17)).wrapping_mul(31) as u8;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabytes_cross_byte_identical_and_a_half_close_is_passed_on() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    let (server, task) = plain_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[[listener]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{server}\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let s = TcpStream::connect(listener(&app, "t")).await.expect("connect");
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        while sent < TOTAL {
            let n = buf.len().min((TOTAL - sent) as usize);
            pattern(sent, &mut buf[..n]);
            w.write_all(&buf[..n]).await.expect("write");
            sent += n as u64;
        }
        // Half close: the echo server sees the end only through rampart.
        w.shutdown().await.expect("shutdown");
        w
    });
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut want = vec![0u8; 256 * 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            pattern(got, &mut want[..n]);
            assert!(buf[..n] == want[..n], "bytes differ near offset {got}");
            got += n as u64;
        }
    })
    .await;
    assert!(read.is_ok(), "the echo did not end ({got} bytes back)");
    assert_eq!(got, TOTAL, "every byte came back, then the server's close");
    let _w = writer.await.expect("writer");
    let ad = app.admin().expect("admin");
    let l = wait_until(std::time::Duration::from_secs(5), || async {
        let (_, s) = admin(ad, "GET", "/api/stats", None).await;
        s["listeners"][0]["tcp"]["bytes_down"].as_u64() == Some(TOTAL)
    })
    .await;
    let (_, s) = admin(ad, "GET", "/api/stats", None).await;
    assert!(l.is_some(), "{}", s["listeners"][0]);
    assert_eq!(s["listeners"][0]["tcp"]["bytes_up"].as_u64(), Some(TOTAL));
    assert_eq!(s["pools"][0]["servers"][0]["tcp"]["sessions"].as_u64(), Some(1));
    app.shutdown().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_proxy_announces_the_client_and_the_connection_firewall_applies() {
    // A server that reads a PROXY header and answers with the address in it.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let said = rampart::firewall::proxy_protocol::read_header(&mut s).await;
                let _ = s.write_all(format!("{said:?}").as_bytes()).await;
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[firewall]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         [[listener]]\nname = \"v1\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\nsend_proxy = \"v1\"\n\
         [[listener]]\nname = \"v2\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\nsend_proxy = \"v2\"\n\
         [[listener]]\nname = \"behind\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\nsend_proxy = \"v1\"\n\
         proxy_protocol = true\n\
         [[listener]]\nname = \"denied\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
         deny = [\"127.0.0.0/8\"]\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{server}\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let answer = |mut s: TcpStream| async move {
        let mut out = String::new();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_string(&mut out)).await;
        assert!(matches!(r, Ok(Ok(_))), "{r:?}");
        out
    };
    for name in ["v1", "v2"] {
        let s = TcpStream::connect(listener(&app, name)).await.expect("connect");
        let me = s.local_addr().expect("local");
        assert_eq!(answer(s).await, format!("Ok(Some({me}))"), "{name}");
    }
    // Behind a trusted proxy: the client its PROXY header names is passed on.
    let mut s = TcpStream::connect(listener(&app, "behind"))
        .await
        .expect("connect");
    s.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 40000 3306\r\n")
        .await
        .expect("header");
    assert_eq!(answer(s).await, "Ok(Some(192.0.2.9:40000))");
    // The listener's deny list closes the connection before any server.
    let s = TcpStream::connect(listener(&app, "denied"))
        .await
        .expect("connect");
    assert_eq!(answer(s).await, "", "a denied client reaches no server");
    app.shutdown().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_to_a_server_a_reload_removes_closes_after_the_drain() {
    let (a, ta) = echo("a").await;
    let (b, tb) = echo("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.toml");
    let head = "[admin]\naddress = \"127.0.0.1:0\"\n[timeouts]\ndrain = \"1s\"\n\
                [[listener]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
                [[pool]]\nname = \"p\"\n";
    let both = format!("{head}[[pool.server]]\nname = \"a\"\naddress = \"{a}\"\n[[pool.server]]\nname = \"b\"\naddress = \"{b}\"\n");
    std::fs::write(&path, &both).expect("config");
    let app = start_app_file(&path).await;
    let t = listener(&app, "t");
    // One session on each server (round robin).
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(t).await.expect("connect");
        let mut name = [0u8; 2];
        s.read_exact(&mut name).await.expect("greeting");
        sessions.push((name[0], s));
    }
    sessions.sort_by_key(|(n, _)| *n);
    let [(b'a', mut on_a), (b'b', mut on_b)] = <[_; 2]>::try_from(sessions).expect("two") else {
        panic!("one session on each server");
    };
    // The reload removes server a.
    std::fs::write(
        &path,
        format!("{head}[[pool.server]]\nname = \"b\"\naddress = \"{b}\"\n"),
    )
    .expect("config");
    let (status, v) = admin(app.admin().expect("admin"), "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    let reloaded = std::time::Instant::now();
    // Still relayed right after the reload...
    on_a.write_all(b"x").await.expect("write");
    let mut one = [0u8; 1];
    on_a.read_exact(&mut one)
        .await
        .expect("the session to a still works after the reload");
    // ...and closed once the drain (1 s) has passed.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), on_a.read_to_end(&mut rest)).await;
    assert!(matches!(end, Ok(Ok(0))), "{end:?}");
    assert!(
        reloaded.elapsed() >= std::time::Duration::from_millis(900),
        "closed before the drain"
    );
    // The session to the server the reload kept goes on.
    on_b.write_all(b"y").await.expect("write");
    on_b.read_exact(&mut one)
        .await
        .expect("the kept session still works");
    assert_eq!(&one, b"y");
    // New connections go to b only.
    let mut s = TcpStream::connect(t).await.expect("connect");
    let mut name = [0u8; 2];
    s.read_exact(&mut name).await.expect("greeting");
    assert_eq!(&name, b"b:");
    app.shutdown().await;
    ta.abort();
    tb.abort();
}

#[test]
fn a_peer_that_stops_reading_does_not_grow_rampart_memory() {
    // rampart as its own process, so that its memory is its own.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // A server that writes as fast as it can and never reads, counting
        // what the kernel took from it.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = l.local_addr().expect("addr");
        let pushed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let p2 = pushed.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                let p = p2.clone();
                tokio::spawn(async move {
                    let chunk = vec![b'z'; 64 * 1024];
                    while let Ok(n) = s.write(&chunk).await {
                        p.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rampart.toml");
        std::fs::write(
            &path,
            format!(
                "[admin]\nenabled = false\n[[listener]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n\
                 [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{server}\"\n"
            ),
        )
        .expect("config");
        let proc = Process::run(&path, dir.path());
        let t = proc.addr("t");
        let before = proc.rss_kib();
        // Ten clients that connect and never read.
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(TcpStream::connect(t).await.expect("connect"));
        }
        // Wait until the servers' pushes stall: every buffer on the way is full.
        let mut last = 0;
        let mut still = 0;
        for _ in 0..300 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = pushed.load(std::sync::atomic::Ordering::Relaxed);
            still = if now == last { still + 1 } else { 0 };
            last = now;
            if still >= 10 {
                break;
            }
        }
        assert!(still >= 10, "the servers never stopped pushing ({last} bytes)");
        let grown = proc.rss_kib().saturating_sub(before);
        eprintln!("10 stalled sessions: the servers pushed {last} bytes; rampart's RSS grew {grown} KiB");
        // What rampart may hold: its two 8 KiB copy buffers per session and
        // its tasks; the kernel's socket buffers are not in its RSS.
        assert!(grown < 4 * 1024, "rampart grew {grown} KiB for 10 stalled sessions");
        // The bytes piled up in kernel buffers, not in rampart.
        assert!(last > 10 * 64 * 1024, "{last}");
        drop(clients);
        task.abort();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_tcp_listener_terminates_tls_offers_no_alpn_and_relays_the_plain_bytes() {
    let (server, task) = plain_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n\
         [[listener]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\nmode = \"tcp\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{server}\"\n"
    );
    let app = start_app(&toml, dir.path()).await;
    let ca = dir.path().join("state/tls/ca.pem");
    // A client offering h2 gets no protocol: rampart does not know the bytes.
    let mut s = tls_connect(listener(&app, "t"), "localhost", &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), None);
    s.write_all(b"through TLS").await.expect("write");
    s.shutdown().await.expect("close_notify and half close");
    let mut back = Vec::new();
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut back)).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    assert_eq!(
        back, b"through TLS",
        "the server got the plain bytes and echoed them"
    );
    app.shutdown().await;
    task.abort();
}
