//! Allocations on the request path, counted. A test binary of its own: a
//! global allocator that counts every allocation in the process. rampart
//! runs in-process behind a plain listener with a default config, an
//! origin answers from a fixed buffer on a thread of its own and the
//! client is a blocking socket on the test's thread, neither allocating
//! per request: what the count grows by per request is rampart's.

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a plain proxied GET may allocate in rampart, at most (heap
/// allocations and reallocations, per request, averaged over many).
/// Measured at 1.02: the one allocation is the boxed future of the
/// request in flight (`h1::server::answer`), kept out of the connection's
/// own task so that an idle connection stays small (s5); mimalloc, the
/// global allocator, serves it from the worker's own free list. Heads,
/// field lists and read buffers come from per-worker free lists. The
/// rest of the bound is room for background tasks (the 1 Hz sampler)
/// that run while requests do.
const MAX_PER_REQUEST: f64 = 1.1;

/// Heap an idle keep-alive connection holds after one request, at most
/// (bytes, averaged over many). Measured at 2,150 in a debug build: the
/// connection's task (its future), its context (`ConnCtx`), tokio's
/// registration of the socket and the drain wait; no read buffer (it
/// went back to the worker's free list) and nothing of the request.
/// Before the `Forwarded` cache stopped sharing the head's buffer it was
/// 6,000 (the whole read buffer, kept by a 20-byte host value).
const MAX_IDLE_BYTES: f64 = 2_500.0;

const REQUEST: &[u8] =
    b"GET /plain HTTP/1.1\r\nHost: example.test\r\nUser-Agent: count/1\r\nAccept: */*\r\n\r\n";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

/// An origin that answers every request on a connection with [`ANSWER`].
fn origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut have = 0;
                loop {
                    match s.read(&mut buf[have..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                    if buf[..have].ends_with(b"\r\n\r\n") {
                        have = 0;
                        if s.write_all(ANSWER).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Sends [`REQUEST`] and reads the answer into `buf`; its length.
fn exchange(c: &mut TcpStream, buf: &mut [u8]) -> usize {
    c.write_all(REQUEST).expect("write");
    let mut have = 0;
    loop {
        let n = c.read(&mut buf[have..]).expect("read");
        assert!(
            n > 0,
            "rampart closed: {:?}",
            String::from_utf8_lossy(&buf[..have])
        );
        have += n;
        if buf[..have].ends_with(b"\r\n\r\nok") {
            return have;
        }
    }
}

/// rampart on `rt` with a default config in front of [`origin`]; the
/// plain listener's address.
fn start(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (rampart::app::RunningApp, SocketAddr) {
    let toml = format!(
        "[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"s\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        origin()
    );
    let model =
        rampart::config::load_str(&toml, "test.toml", dir, &rampart::tls::SystemEnv).expect("valid config");
    let app = rt
        .block_on(rampart::app::RunningApp::start(&model))
        .expect("rampart starts");
    let web = app.listeners.iter().find(|l| l.name == "web").expect("web").addr;
    (app, web)
}

/// The counts are of the whole process: one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_plain_get_through_a_default_config_allocates_almost_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, web) = start(&rt, dir.path());
    let mut c = TcpStream::connect(web).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 4096];
    // Warm: the backend connection, the worker's buffers and caches.
    for _ in 0..200 {
        exchange(&mut c, &mut buf);
    }
    let first = exchange(&mut c, &mut buf);
    assert!(
        buf[..first].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..first])
    );
    let n = 10_000;
    let began = std::time::Instant::now();
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        exchange(&mut c, &mut buf);
    }
    let busy = region.change();
    let took = began.elapsed();
    // rampart's background tasks (the 1 Hz sampler, health and sweepers)
    // allocate whether requests come or not: what they allocate over the
    // same time with no request is taken off.
    let region = Region::new(GLOBAL);
    std::thread::sleep(took);
    let idle = region.change();
    let count = |c: &stats_alloc::Stats| (c.allocations + c.reallocations) as f64;
    let per_request = (count(&busy) - count(&idle)).max(0.0) / f64::from(n);
    eprintln!(
        "a plain GET: {per_request:.3} allocations per request ({} allocations, {} reallocations over {n} requests in {took:?}; \
         {} and {} in the same time without requests)",
        busy.allocations, busy.reallocations, idle.allocations, idle.reallocations
    );
    assert!(
        per_request <= MAX_PER_REQUEST,
        "{per_request:.2} allocations per plain GET (at most {MAX_PER_REQUEST})"
    );
    drop(c);
    rt.block_on(app.shutdown());
}

#[test]
fn an_idle_connection_holds_little_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, web) = start(&rt, dir.path());
    let mut buf = [0u8; 4096];
    // Warm: the backend connection, the worker's free lists.
    let mut warm: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(web).expect("connect"))
        .collect();
    for c in &mut warm {
        exchange(c, &mut buf);
    }
    drop(warm);
    let n = 500;
    let region = Region::new(GLOBAL);
    let mut idle: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(web).expect("connect"))
        .collect();
    for c in &mut idle {
        exchange(c, &mut buf);
    }
    // The last answer is written before its request's state is dropped:
    // one more request on a fresh connection, closed, lets that happen.
    let mut last = TcpStream::connect(web).expect("connect");
    exchange(&mut last, &mut buf);
    drop(last);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let change = region.change();
    let held = (change.bytes_allocated as f64 - change.bytes_deallocated as f64) / f64::from(n);
    eprintln!("an idle connection after one request: {held:.0} bytes of heap");
    assert!(
        held <= MAX_IDLE_BYTES,
        "{held:.0} bytes of heap per idle connection (at most {MAX_IDLE_BYTES})"
    );
    drop(idle);
    rt.block_on(app.shutdown());
}
