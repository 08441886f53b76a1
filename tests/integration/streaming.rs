//! Large bodies stream through a rampart process without being buffered:
//! the process's resident memory stays bounded while 256 MiB go each way.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, StreamBody};

use crate::support::*;

const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 256 * 1024 * 1024;

fn chunks(n: usize) -> TestBody {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream =
        futures_util::stream::iter((0..n / CHUNK).map(move |_| Ok(http_body::Frame::data(chunk.clone()))));
    StreamBody::new(stream).boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_download_stream_with_bounded_memory() {
    // Downloads: a body of TOTAL bytes made on the fly. Uploads: counted and dropped.
    let be = Backend::start(|req| async move {
        if req.uri().path() == "/download" {
            return http::Response::new(chunks(TOTAL));
        }
        let mut body = req.into_body();
        let mut n = 0usize;
        while let Some(f) = body.frame().await {
            if let Ok(d) = f.map(|f| f.into_data()) {
                n += d.map_or(0, |d| d.len());
            }
        }
        http::Response::new(full(n.to_string()))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[runtime]\nworkers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
             [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            be.addr
        ),
    )
    .expect("config");
    let rp = Arc::new(Process::run(&cfg, dir.path()));
    let mut client = h1(rp.addr("web")).await;
    // Warm up so that the baseline includes buffers of a used connection.
    let (s, _, _) = read(client.go(get("/warm", "x")).await.expect("warm")).await;
    assert_eq!(s, 200);
    let before = rp.rss_kib();

    client.ready().await.expect("ready");
    let req = Request::post("/upload")
        .header("host", "x")
        .body(chunks(TOTAL))
        .expect("req");
    // Sampled while the upload runs (a buffered body would be freed by
    // the time it ends), every 20 ms.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (rp, sampling) = (rp.clone(), sampling.clone());
        tokio::spawn(async move {
            let (mut peak, mut samples) = (0u64, 0usize);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rp.rss_kib());
                samples += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            (peak, samples)
        })
    };
    let (status, _, body) = read(client.go(req).await.expect("upload")).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (peak_up, samples) = sampler.await.expect("sampler");
    assert_eq!((status, body), (200, TOTAL.to_string()));
    assert!(samples >= 5, "only {samples} samples during the upload");
    let after_up = rp.rss_kib().max(peak_up);

    let resp = client.go(get("/download", "x")).await.expect("download");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0usize;
    let mut peak = after_up;
    while let Some(f) = body.frame().await {
        got += f.expect("frame").into_data().map_or(0, |d| d.len());
        if got % (32 * 1024 * 1024) < CHUNK {
            peak = peak.max(rp.rss_kib());
        }
    }
    assert_eq!(got, TOTAL);
    let after_down = rp.rss_kib().max(peak);
    let growth = after_up.max(after_down).saturating_sub(before);
    eprintln!(
        "rss before {before} KiB, peak during the upload {after_up} KiB ({samples} samples), peak during download {after_down} KiB"
    );
    assert!(
        growth < 16 * 1024,
        "rampart grew by {growth} KiB while streaming {} MiB each way",
        TOTAL >> 20
    );
}
