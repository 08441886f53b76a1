//! A server's idle connections: what comes back out, what is closed, and
//! the counts.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A connected pair: rampart's side and the backend's side.
async fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = l.local_addr().expect("addr");
    let (ours, theirs) = tokio::join!(TcpStream::connect(addr), l.accept());
    (ours.expect("connect"), theirs.expect("accept").0)
}

fn settings(idle_for: Duration, max_idle: usize) -> Settings {
    Settings {
        key: 0,
        idle_for,
        max_idle,
    }
}

const LONG: Duration = Duration::from_secs(60);

/// A connection made and given back through `pool`.
async fn give_back(pool: &IdleConns, l: &TcpListener, s: Settings) -> (std::net::SocketAddr, TcpStream) {
    let (ours, theirs) = pair(l).await;
    let local = ours.local_addr().expect("local");
    pool.opened(s).checkin(BackendStream::Plain(ours));
    (local, theirs)
}

fn local(c: Option<(BackendStream, Lease)>) -> Option<std::net::SocketAddr> {
    c.map(|(s, lease)| {
        let a = s.tcp().local_addr().expect("local");
        lease.checkin(s);
        a
    })
}

#[tokio::test]
async fn the_last_connection_in_is_the_first_out_up_to_max_idle() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pool = IdleConns::default();
    let s = settings(LONG, 2);
    let mut theirs = Vec::new();
    let mut locals = Vec::new();
    for _ in 0..3 {
        let (a, t) = give_back(&pool, &l, s).await;
        locals.push(a);
        theirs.push(t);
    }
    assert_eq!(
        pool.counts(),
        Counts {
            opened: 3,
            reused: 0,
            closed: 1,
            idle: 2
        },
        "the third was over max_idle"
    );
    let first = pool.checkout(s).expect("one");
    assert_eq!(first.0.tcp().local_addr().expect("local"), locals[1]);
    let second = pool.checkout(s).expect("two");
    assert_eq!(second.0.tcp().local_addr().expect("local"), locals[0]);
    assert!(pool.checkout(s).is_none());
    assert_eq!(pool.counts().reused, 2);
    assert_eq!(pool.counts().open(), 2);
    drop(first);
    assert_eq!(pool.counts().closed, 2, "a lease dropped closes its connection");
    second.1.checkin(second.0);
    assert_eq!(pool.counts().idle, 1);
}

#[tokio::test]
async fn closed_retired_stale_and_foreign_connections_do_not_come_back() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pool = IdleConns::default();
    let s = settings(LONG, 8);
    // The backend closed it: readable (end of stream) once the close arrives.
    let (ours, theirs) = pair(&l).await;
    drop(theirs);
    ours.readable().await.expect("readable");
    pool.opened(s).checkin(BackendStream::Plain(ours));
    assert!(pool.checkout(s).is_none(), "closed by the backend");

    // Bytes nobody asked for.
    let (ours, mut theirs) = pair(&l).await;
    tokio::io::AsyncWriteExt::write_all(&mut theirs, b"HTTP/1.1 200 OK\r\n")
        .await
        .expect("write");
    ours.readable().await.expect("readable");
    pool.opened(s).checkin(BackendStream::Plain(ours));
    assert!(pool.checkout(s).is_none(), "unexpected bytes");

    // Idle for longer than allowed.
    let (_, _t1) = give_back(&pool, &l, settings(Duration::ZERO, 8)).await;
    assert!(pool.checkout(s).is_none(), "idle too long");

    // Made with other TLS settings.
    let (_, _t2) = give_back(&pool, &l, Settings { key: 7, ..s }).await;
    assert!(pool.checkout(s).is_none(), "other TLS settings");

    // A quiet one comes back.
    let (_, _t3) = give_back(&pool, &l, s).await;
    assert!(local(pool.checkout(s)).is_some());
    assert_eq!(pool.counts().closed, 4);

    // Its server left: kept ones close, returned ones are not kept.
    pool.retire();
    assert_eq!(pool.counts().idle, 0);
    let (_, _t4) = give_back(&pool, &l, s).await;
    assert!(pool.checkout(s).is_none(), "retired");
    assert_eq!(pool.counts().open(), 0, "{:?}", pool.counts());
}

#[tokio::test]
async fn the_sweeper_closes_idle_connections_past_their_time() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pool = IdleConns::default();
    let (_, mut theirs) = give_back(&pool, &l, settings(Duration::from_millis(150), 8)).await;
    // The backend sees the connection close, without anyone taking it out.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), theirs.read(&mut buf))
        .await
        .expect("closed by the sweeper")
        .expect("read");
    assert_eq!(n, 0);
    assert_eq!(pool.counts().idle, 0);
    assert_eq!(pool.counts().closed, 1);
}
