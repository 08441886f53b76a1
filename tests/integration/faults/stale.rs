//! The keep-alive race: a backend whose idle timeout is shorter than
//! rampart's `backend_idle` (Node.js and Apache: 5 s, gunicorn: 2 s)
//! closes a connection just as rampart reuses it. An idempotent request
//! goes out again on a new connection; a POST is not sent twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// How long the backend keeps an idle connection.
const IDLE: Duration = Duration::from_secs(1);

/// What the backend processed: request ids (`x-id`), by method.
type Processed = Arc<Mutex<HashMap<String, u32>>>;

/// A backend that closes keep-alive connections idle for [`IDLE`]: a
/// request that arrives on a connection idle for longer is dropped
/// unread (the connection reset: the backend's timer fired as the request
/// came in); one idle 1.5 s is closed by the timer. Counts what it
/// processed by `x-id`.
async fn short_keepalive() -> (SocketAddr, Processed) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let processed: Processed = Arc::default();
    let p = processed.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, p.clone()));
        }
    });
    (addr, processed)
}

async fn serve(mut s: TcpStream, processed: Processed) {
    let mut buf = Vec::new();
    let mut idle_since: Option<Instant> = None;
    loop {
        // Wait for the next request, or close after 1.5 s of silence.
        let wait = match idle_since {
            Some(_) => Duration::from_millis(1500),
            None => Duration::from_secs(30),
        };
        match tokio::time::timeout(wait, s.readable()).await {
            Err(_) | Ok(Err(_)) => return,
            Ok(Ok(())) => {}
        }
        if idle_since.is_some_and(|t| t.elapsed() >= IDLE) {
            // The idle timer won the race: closed with the request unread
            // (which resets the connection).
            return;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let len: usize = field("content-length:").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < end + len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let id = field("x-id:").unwrap_or_default();
        let method = head.split(' ').next().unwrap_or("").to_uppercase();
        *processed
            .lock()
            .expect("lock")
            .entry(format!("{method} {id}"))
            .or_default() += 1;
        buf.drain(..end + len);
        let body = format!("done {id}");
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        if s.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        idle_since = Some(Instant::now());
    }
}

/// A small deterministic generator of gaps.
struct Gaps(u64);

impl Gaps {
    /// Milliseconds in `lo..hi`.
    fn next(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(lo + (self.0 >> 33) % (hi - lo))
    }
}

/// Sends 30 requests of `method` to `path`, one after another on one
/// client connection, the gaps drawn from `lo..hi` ms; returns the status
/// of each, by id.
async fn sequence(
    web: SocketAddr,
    path: &'static str,
    method: &'static str,
    lo: u64,
    hi: u64,
    seed: u64,
) -> Vec<(String, u16)> {
    let mut gaps = Gaps(seed);
    let mut c = h1(web).await;
    let mut out = Vec::new();
    for i in 0..30 {
        let id = format!("{path}-{i}");
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "x")
            .header("x-id", &id)
            .body(full(if method == "POST" { "form=data" } else { "" }))
            .expect("request");
        let status = match c.go(req).await {
            Ok(resp) => read(resp).await.0,
            Err(_) => {
                c = h1(web).await;
                0
            }
        };
        out.push((id, status));
        tokio::time::sleep(gaps.next(lo, hi)).await;
    }
    out
}

/// A single-server pool behind a backend that closes idle connections
/// after a second: 30 GETs spaced 0.95–1.05 s apart and 30 at random gaps
/// of 0–2 s all succeed; the same with POSTs, the ones that fail fail
/// honestly (502, and the backend never processed them) and none is
/// processed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_closing_idle_connections_costs_no_idempotent_request() {
    let mut backends = Vec::new();
    let mut toml = String::from("[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n");
    let paths = ["/get-spaced", "/get-random", "/post-spaced", "/post-random"];
    for (i, path) in paths.iter().enumerate() {
        let (addr, processed) = short_keepalive().await;
        backends.push(processed);
        toml.push_str(&format!(
            "[[pool]]\nname = \"p{i}\"\n[[pool.server]]\nname = \"s\"\naddress = \"{addr}\"\n\
             [[route]]\npath = \"{path}\"\npool = \"p{i}\"\n"
        ));
    }
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let web = listener(&app, "web");
    let seed = 0x5eed_u64;
    let (gs, gr, ps, pr) = tokio::join!(
        sequence(web, "/get-spaced", "GET", 950, 1050, seed),
        sequence(web, "/get-random", "GET", 0, 2000, seed + 1),
        sequence(web, "/post-spaced", "POST", 950, 1050, seed + 2),
        sequence(web, "/post-random", "POST", 0, 2000, seed + 3),
    );
    for (name, results) in [("spaced GETs", &gs), ("random GETs", &gr)] {
        let failed: Vec<_> = results.iter().filter(|(_, s)| *s != 200).collect();
        assert!(failed.is_empty(), "{name}: {failed:?}");
    }
    let admin_addr = app.admin().expect("admin");
    let text = metrics(admin_addr).await;
    let resent: f64 = (0..2)
        .filter_map(|i| {
            metric(
                &text,
                &format!("rampart_backend_stale_connection_retries_total{{pool=\"p{i}\",server=\"s\"}}"),
            )
        })
        .sum();
    assert!(resent > 0.0, "the race never happened: the test proves nothing");
    eprintln!("GETs sent again after the keep-alive race: {resent}");
    for ((name, results), processed) in [("spaced POSTs", &ps), ("random POSTs", &pr)]
        .into_iter()
        .zip(&backends[2..])
    {
        let processed = processed.lock().expect("lock").clone();
        assert!(
            processed.values().all(|n| *n == 1),
            "{name}: processed twice: {processed:?}"
        );
        for (id, status) in results {
            let done = processed.contains_key(&format!("POST {id}"));
            match status {
                200 => assert!(done, "{name}: {id} answered 200 but never processed"),
                502 => assert!(!done, "{name}: {id} answered 502 but was processed"),
                other => panic!("{name}: {id} answered {other}"),
            }
        }
        let failed = results.iter().filter(|(_, s)| *s == 502).count();
        eprintln!("{name}: {failed} of 30 failed (502), none processed twice");
    }
    app.shutdown().await;
}
