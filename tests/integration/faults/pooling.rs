//! Idle backend connections are shared by the worker threads: a server
//! sees about as many connections as it has requests at once, however the
//! requests' tasks move between threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

use super::servers;
use crate::support::*;

/// A backend that counts the connections it accepted and the most
/// requests it had in flight at once (each answer takes 1 ms).
struct Counting {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn counting() -> Counting {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (accepted, peak, now) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (a, p) = (accepted.clone(), peak.clone());
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (p, now) = (p.clone(), now.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let (p, now) = (p.clone(), now.clone());
                    async move {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        p.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(full("ok")))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Counting {
        addr,
        accepted,
        peak,
        _task: task,
    }
}

/// Established connections to `port` (rampart's, to the backend).
fn ss_count(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established", &format!("( dport = :{port} )")])
        .output()
        .expect("ss runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

async fn keep_alive_load(web: SocketAddr, clients: usize, for_: Duration) -> usize {
    let until = Instant::now() + for_;
    let loops = (0..clients).map(|_| async move {
        let mut c = h1(web).await;
        let mut n = 0;
        while Instant::now() < until {
            let resp = c.go(get("/", "x")).await.expect("response");
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.expect("body");
            n += 1;
        }
        n
    });
    futures_util::future::join_all(loops).await.into_iter().sum()
}

async fn scenario(clients: usize) {
    let backends = [counting().await, counting().await, counting().await];
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[runtime]\nworkers = 2\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
             [[pool]]\nname = \"p\"\n{}[[route]]\npool = \"p\"\n",
            servers(&[
                ("a", backends[0].addr),
                ("b", backends[1].addr),
                ("c", backends[2].addr)
            ])
        ),
    )
    .expect("config");
    let rp = Process::run(&cfg, dir.path());
    let served = keep_alive_load(rp.addr("web"), clients, Duration::from_secs(5)).await;
    let admin_addr = admin_of(&rp);
    let text = metrics(admin_addr).await;
    let (mut idle_total, mut opened_total) = (0.0, 0.0);
    for (name, b) in ["a", "b", "c"].iter().zip(&backends) {
        let m = |what: &str| {
            metric(
                &text,
                &format!("rampart_backend_connections_{what}{{pool=\"p\",server=\"{name}\"}}"),
            )
            .unwrap_or_else(|| panic!("no {what} for {name}"))
        };
        let (opened, reused, idle, open) = (m("opened_total"), m("reused_total"), m("idle"), m("open"));
        let (accepted, peak) = (b.accepted.load(Ordering::SeqCst), b.peak.load(Ordering::SeqCst));
        eprintln!(
            "{clients} clients, server {name}: peak {peak} requests at once, {accepted} connections accepted; \
             metrics: opened {opened}, reused {reused}, open {open}, idle {idle}; ss: {}",
            ss_count(b.addr.port())
        );
        assert_eq!(
            opened as usize, accepted,
            "{name}: the metric counts what the server accepted"
        );
        opened_total += opened;
        assert_eq!(
            open as usize,
            ss_count(b.addr.port()),
            "{name}: the metric agrees with ss"
        );
        idle_total += idle;
    }
    // Each client has one request in flight at most: `clients` is the
    // peak of requests at once (the servers see fewer: rampart holds a
    // connection until it has read the whole answer).
    assert!(
        opened_total <= (clients as f64 * 1.1).ceil(),
        "{opened_total} connections opened for {clients} requests at once"
    );
    assert!(
        idle_total <= (clients + 3 * 4) as f64,
        "{idle_total} idle connections after {clients} clients"
    );
    let reuse = {
        let r: f64 = ["a", "b", "c"]
            .iter()
            .filter_map(|n| {
                metric(
                    &text,
                    &format!("rampart_backend_connections_reused_total{{pool=\"p\",server=\"{n}\"}}"),
                )
            })
            .sum();
        r / served as f64
    };
    eprintln!(
        "{clients} clients: {served} requests, {:.1} % on reused connections",
        reuse * 100.0
    );
    assert!(reuse > 0.9, "reuse {reuse}");
}

/// The admin address a rampart process printed (`listening admin ...`).
fn admin_of(rp: &Process) -> SocketAddr {
    rp.listeners
        .get("admin")
        .copied()
        .unwrap_or_else(|| panic!("no admin listener in {:?}", rp.listeners))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_keep_about_one_connection_per_request_in_flight() {
    scenario(64).await;
    scenario(256).await;
}
