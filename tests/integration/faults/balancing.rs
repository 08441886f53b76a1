//! Balancing on what the servers did: P2C's latency is the time to the
//! response head, not how slowly a client reads the body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;

use super::servers;
use crate::support::*;

/// A server that answers `/big` with 16 MiB and anything else at once,
/// naming itself in `x-server`.
async fn big_or_small(name: &'static str) -> Backend {
    Backend::start(move |req| async move {
        let body = if req.uri().path() == "/big" {
            let chunk = Bytes::from(vec![b'b'; 1 << 20]);
            let s =
                futures_util::stream::iter((0..16).map(move |_| Ok(http_body::Frame::data(chunk.clone()))));
            http_body_util::StreamBody::new(s).boxed()
        } else {
            full(name)
        };
        http::Response::builder()
            .header("x-server", name)
            .body(body)
            .expect("response")
    })
    .await
}

/// A client that takes two seconds to read a download from one server
/// does not make P2C avoid that server: its latency estimate stays that of
/// its response heads, and it keeps a share of the requests that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_does_not_avoid_a_server_whose_client_reads_slowly() {
    let (a, b) = (big_or_small("a").await, big_or_small("b").await);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\nalgorithm = \"p2c_ewma\"\n{}[[route]]\npool = \"p\"\n",
        servers(&[("a", a.addr), ("b", b.addr)])
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let web = listener(&app, "web");
    let mut slow = h1(web).await;
    let resp = slow.go(get("/big", "x")).await.expect("download");
    let slowed = resp.headers()["x-server"].to_str().expect("name").to_string();
    let mut body = resp.into_body();
    let (t, mut got) = (Instant::now(), 0usize);
    while let Some(f) = body.frame().await {
        let before = got;
        got += f.expect("frame").into_data().map_or(0, |d| d.len());
        // 100 ms per MiB read.
        if got >> 20 != before >> 20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(got, 16 << 20);
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "read in {:?}",
        t.elapsed()
    );
    let admin_addr = app.admin().expect("admin");
    let state = format!(
        "{:?} {:?}",
        server_info(admin_addr, "p", "a").await,
        server_info(admin_addr, "p", "b").await
    );
    // Its estimate is its time to the response head (milliseconds), not
    // the two seconds the client took.
    let slowed_info = server_info(admin_addr, "p", &slowed).await.expect("listed");
    let ewma = slowed_info["latency_ewma_ms"].as_f64().expect("latency");
    assert!(ewma < 250.0, "{state}");
    // Eight clients at once: P2C weighs latency × requests in flight, so
    // both servers take a share.
    let (before_a, before_b) = (a.hits(), b.hits());
    let clients = (0..8).map(|_| async move {
        let mut c = h1(web).await;
        for _ in 0..50 {
            let (status, _, _) = read(c.go(get("/", "x")).await.expect("response")).await;
            assert_eq!(status, 200);
        }
    });
    futures_util::future::join_all(clients).await;
    let (ha, hb) = (a.hits() - before_a, b.hits() - before_b);
    assert_eq!(ha + hb, 400);
    let slowed_share = if slowed == "a" { ha } else { hb };
    eprintln!("after a slow download from {slowed} (estimate {ewma} ms): a served {ha}, b {hb}");
    assert!(
        slowed_share >= 60,
        "after a slow download from {slowed}: a served {ha}, b {hb}; {state}"
    );
    app.shutdown().await;
}
