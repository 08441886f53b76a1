//! The pool of idle backend sockets: what comes back out, and what the
//! sweeper closes.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A connected pair: the pooled side and the backend's side.
async fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = l.local_addr().expect("addr");
    let (ours, theirs) = tokio::join!(TcpStream::connect(addr), l.accept());
    (ours.expect("connect"), theirs.expect("accept").0)
}

fn conn(stream: TcpStream, idle_for: Duration, max_idle: usize, retired: watch::Receiver<bool>) -> Conn {
    let addr = stream.peer_addr().expect("peer");
    Conn {
        stream: BackendStream::Plain(stream),
        meta: Meta {
            addr,
            tls: 0,
            idle_for,
            max_idle,
            retired,
        },
    }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_last_connection_in_is_the_first_out_up_to_max_idle() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (_tx, rx) = watch::channel(false);
    let mut theirs = Vec::new();
    let mut locals = Vec::new();
    for _ in 0..3 {
        let (ours, t) = pair(&l).await;
        locals.push(ours.local_addr().expect("local"));
        theirs.push(t);
        checkin(conn(ours, LONG, 2, rx.clone()));
    }
    let out = |c: Option<Conn>| c.map(|c| c.stream.tcp().local_addr().expect("local"));
    assert_eq!(out(checkout(addr, 0)), Some(locals[1]));
    assert_eq!(out(checkout(addr, 0)), Some(locals[0]));
    assert_eq!(out(checkout(addr, 0)), None, "the third was over max_idle");
}

#[tokio::test]
async fn closed_retired_and_stale_connections_do_not_come_back() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    // The backend closed it: readable (end of stream) once the close arrives.
    let (ours, theirs) = pair(&l).await;
    drop(theirs);
    ours.readable().await.expect("readable");
    let (_tx, rx) = watch::channel(false);
    checkin(conn(ours, LONG, 8, rx.clone()));
    assert!(checkout(addr, 0).is_none(), "closed by the backend");

    // Bytes nobody asked for.
    let (ours, mut theirs) = pair(&l).await;
    tokio::io::AsyncWriteExt::write_all(&mut theirs, b"HTTP/1.1 200 OK\r\n")
        .await
        .expect("write");
    ours.readable().await.expect("readable");
    checkin(conn(ours, LONG, 8, rx.clone()));
    assert!(checkout(addr, 0).is_none(), "unexpected bytes");

    // Idle for longer than allowed.
    let (ours, _theirs) = pair(&l).await;
    checkin(conn(ours, Duration::ZERO, 8, rx));
    assert!(checkout(addr, 0).is_none(), "idle too long");

    // Its server left.
    let (tx, rx) = watch::channel(false);
    let (ours, _theirs) = pair(&l).await;
    checkin(conn(ours, LONG, 8, rx));
    tx.send_replace(true);
    assert!(checkout(addr, 0).is_none(), "retired");

    // A quiet one comes back.
    let (_tx, rx) = watch::channel(false);
    let (ours, _theirs) = pair(&l).await;
    checkin(conn(ours, LONG, 8, rx));
    assert!(checkout(addr, 0).is_some());
}

#[tokio::test]
async fn the_sweeper_closes_idle_connections_past_their_time() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (_tx, rx) = watch::channel(false);
    let (ours, mut theirs) = pair(&l).await;
    checkin(conn(ours, Duration::from_millis(150), 8, rx));
    // The backend sees the connection close, without anyone taking it out.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), theirs.read(&mut buf))
        .await
        .expect("closed by the sweeper")
        .expect("read");
    assert_eq!(n, 0);
}
