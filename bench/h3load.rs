//! An HTTP/3 load generator in the manner of h2load: `-c` connections,
//! `-m` requests in flight on each, `-n` requests in all (fixed count),
//! every body read to its end. Prints requests per second and latency.
//!
//! ```sh
//! cargo run --release --example h3load -- -c 32 -m 10 -n 200000 --ca ca.pem https://127.0.0.1:8443/
//! # hold -c connections open and idle (one request each) for 30 s, for memory figures:
//! cargo run --release --example h3load -- -c 1000 --idle 30 --ca ca.pem https://127.0.0.1:8443/
//! # the same over HTTP/2 on TLS (TCP), to compare:
//! cargo run --release --example h3load -- -c 1000 --idle 30 --h2 --ca ca.pem https://127.0.0.1:8443/
//! ```

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

struct Args {
    connections: usize,
    streams: usize,
    requests: i64,
    idle: Option<u64>,
    /// `--idle` over HTTP/2 on TLS instead.
    h2: bool,
    ca: String,
    url: http::Uri,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        connections: 1,
        streams: 1,
        requests: 1,
        idle: None,
        h2: false,
        ca: String::new(),
        url: http::Uri::from_static("https://127.0.0.1/"),
    };
    let mut it = std::env::args().skip(1);
    let mut url = None;
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "-c" => a.connections = v()?.parse().map_err(|e| format!("-c: {e}"))?,
            "-m" => a.streams = v()?.parse().map_err(|e| format!("-m: {e}"))?,
            "-n" => a.requests = v()?.parse().map_err(|e| format!("-n: {e}"))?,
            "--idle" => a.idle = Some(v()?.parse().map_err(|e| format!("--idle: {e}"))?),
            "--ca" => a.ca = v()?,
            "--h2" => a.h2 = true,
            u => url = Some(u.parse::<http::Uri>().map_err(|e| format!("{u}: {e}"))?),
        }
    }
    a.url = url.ok_or("no URL")?;
    if a.ca.is_empty() {
        return Err("--ca PEM: the CA that signed the server's certificate".into());
    }
    Ok(a)
}

type Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

async fn connect(endpoint: &quinn::Endpoint, a: &Args) -> Result<Send, String> {
    let host = a.url.host().unwrap_or("localhost");
    let port = a.url.port_u16().unwrap_or(443);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let sni = if host.parse::<std::net::IpAddr>().is_ok() {
        "localhost"
    } else {
        host
    };
    let conn = endpoint
        .connect(addr, sni)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    Ok(send)
}

/// `-c` HTTP/2 connections over TLS, one request each, kept open (they
/// are leaked on purpose: the process exits after the idle time).
async fn idle_h2(a: &Args, tls: rustls::ClientConfig) -> usize {
    let host = a.url.host().unwrap_or("localhost");
    let port = a.url.port_u16().unwrap_or(443);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut open = 0;
    for _ in 0..a.connections {
        let Ok(tcp) = tokio::net::TcpStream::connect((host, port)).await else {
            continue;
        };
        let Ok(stream) = connector.connect(name.clone(), tcp).await else {
            continue;
        };
        let io = hyper_util::rt::TokioIo::new(stream);
        let Ok((mut send, conn)) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await
        else {
            continue;
        };
        tokio::spawn(conn);
        let req = http::Request::get(a.url.clone())
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        if let Ok(resp) = send.send_request(req).await {
            use http_body_util::BodyExt;
            let _ = resp.into_body().collect().await;
            open += 1;
            std::mem::forget(send);
        }
    }
    open
}

/// One GET, its body read; the status.
async fn get(send: &mut Send, url: &http::Uri) -> Result<u16, String> {
    let req = http::Request::get(url.clone())
        .body(())
        .map_err(|e| e.to_string())?;
    let mut s = send.send_request(req).await.map_err(|e| e.to_string())?;
    s.finish().await.map_err(|e| e.to_string())?;
    let resp = s.recv_response().await.map_err(|e| e.to_string())?;
    while let Some(mut chunk) = s.recv_data().await.map_err(|e| e.to_string())? {
        chunk.advance(chunk.remaining());
    }
    Ok(resp.status().as_u16())
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("h3load: {e}");
            std::process::exit(2);
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&a.ca).unwrap_or_else(|e| {
        eprintln!("h3load: {}: {e}", a.ca);
        std::process::exit(2)
    });
    for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let c: rustls_pki_types::CertificateDer<'static> = match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("h3load: {}: {e}", a.ca);
                std::process::exit(2)
            }
        };
        let _ = roots.add(c);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];

    if let (Some(secs), true) = (a.idle, a.h2) {
        let n = idle_h2(&a, tls.clone()).await;
        println!("idle: {n} connections open for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        return;
    }
    let tls = {
        let mut t = tls;
        t.alpn_protocols = vec![b"h3".to_vec()];
        t
    };
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse().expect("addr")).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));

    if let Some(secs) = a.idle {
        let mut held = Vec::new();
        for _ in 0..a.connections {
            match connect(&endpoint, &a).await {
                Ok(mut s) => {
                    let _ = get(&mut s, &a.url).await;
                    held.push(s);
                }
                Err(e) => eprintln!("h3load: connect: {e}"),
            }
        }
        println!("idle: {} connections open for {secs} s", held.len());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        return;
    }

    let left = Arc::new(AtomicI64::new(a.requests));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.requests.max(0) as usize)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let send = match connect(&endpoint, &a).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("h3load: connect: {e}");
                std::process::exit(1);
            }
        };
        for _ in 0..a.streams {
            let (mut send, a) = (send.clone(), a.clone());
            let (left, ok, failed, lat) = (left.clone(), ok.clone(), failed.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while left.fetch_sub(1, Relaxed) > 0 {
                    let t = Instant::now();
                    match get(&mut send, &a.url).await {
                        Ok(s) if s < 400 => ok.fetch_add(1, Relaxed),
                        _ => failed.fetch_add(1, Relaxed),
                    };
                    mine.push(t.elapsed());
                }
                if let Ok(mut l) = lat.lock() {
                    l.extend(mine);
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed();
    let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
    };
    let done = ok.load(Relaxed) + failed.load(Relaxed);
    println!(
        "requests: {done} ({} ok, {} failed) in {:.3} s: {:.0} requests/s",
        ok.load(Relaxed),
        failed.load(Relaxed),
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64()
    );
    if let (Some(p50), Some(p99)) = (pct(0.5), pct(0.99)) {
        println!("latency: p50 {p50:?}, p99 {p99:?}");
    }
    endpoint.close(0u32.into(), b"done");
}
