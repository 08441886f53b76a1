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
