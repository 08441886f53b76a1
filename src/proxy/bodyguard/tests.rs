//! The body guard on paused time: idle waits, the minimum rate, client
//! aborts and the end signal.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body as _;

use super::*;
use crate::proxy::h1::reqbody::{ClientBody, RequestBody};

fn limits(idle: Duration) -> BodyLimits {
    BodyLimits {
        max: None,
        min_rate: 0,
        grace: Duration::from_secs(10),
        idle,
    }
}

/// A guarded body of `len` bytes and the sender that feeds it.
fn body(len: u64, l: BodyLimits) -> (GuardedBody, crate::proxy::h1::reqbody::Feed) {
    let (b, tx) = RequestBody::channel(Some(len));
    (GuardedBody::new(ClientBody::Engine(b), l), tx)
}

async fn next(b: &mut GuardedBody) -> Option<Result<Bytes, String>> {
    poll_fn(|cx| Pin::new(&mut *b).poll_frame(cx)).await.map(|r| {
        r.map(|f| f.into_data().unwrap_or_default())
            .map_err(|e| e.to_string())
    })
}

#[tokio::test(start_paused = true)]
async fn a_client_silent_longer_than_the_idle_timeout_is_a_408() {
    let (mut b, tx) = body(10, limits(Duration::from_secs(5)));
    tx.send(Ok(Bytes::from_static(b"abcde"))).await.expect("send");
    assert_eq!(next(&mut b).await, Some(Ok(Bytes::from_static(b"abcde"))));
    let t = Instant::now();
    assert!(matches!(next(&mut b).await, Some(Err(_))));
    assert_eq!(t.elapsed(), Duration::from_secs(5));
    assert!(matches!(b.flag().error(), Some(ProxyError::BodyIdle(_))));
    assert_eq!(b.flag().error().map(|e| e.status().as_u16()), Some(408));
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn time_the_body_is_not_asked_for_is_not_the_client_s() {
    let (mut b, tx) = body(10, limits(Duration::from_secs(5)));
    tx.send(Ok(Bytes::from_static(b"abcde"))).await.expect("send");
    assert!(next(&mut b).await.is_some());
    // The backend takes a minute to read more; then the client's piece
    // is there at once.
    tokio::time::advance(Duration::from_secs(60)).await;
    tx.send(Ok(Bytes::from_static(b"fghij"))).await.expect("send");
    assert_eq!(next(&mut b).await, Some(Ok(Bytes::from_static(b"fghij"))));
    assert_eq!(next(&mut b).await, None);
    assert!(b.flag().error().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_steady_slow_upload_passes_and_signals_its_end() {
    let (mut b, tx) = body(40, limits(Duration::from_secs(5)));
    let flag = b.flag();
    let feeder = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tx.send(Ok(Bytes::from_static(b"x"))).await.expect("send");
        }
    });
    let mut got = 0;
    while let Some(r) = next(&mut b).await {
        got += r.expect("piece").len();
    }
    assert_eq!(got, 40);
    tokio::time::timeout(Duration::from_millis(1), flag.sent())
        .await
        .expect("the end was signalled");
    assert!(flag.error().is_none());
    feeder.await.expect("feeder");
}

#[tokio::test(start_paused = true)]
async fn a_body_slower_than_the_minimum_rate_is_cut_after_the_grace() {
    let l = BodyLimits {
        min_rate: 100,
        ..limits(Duration::from_secs(60))
    };
    let (mut b, tx) = body(10_000, l);
    let t = Instant::now();
    let feeder = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                return;
            }
        }
    });
    let err = loop {
        match next(&mut b).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("the body ended"),
        }
    };
    assert!(err.contains("slower"), "{err}");
    assert!(t.elapsed() >= Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(matches!(b.flag().error(), Some(ProxyError::BodyTooSlow)));
    feeder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_breaks_off_its_body_is_a_client_abort() {
    let (mut b, tx) = body(10, limits(Duration::from_secs(5)));
    tx.send(Ok(Bytes::from_static(b"abc"))).await.expect("send");
    assert!(next(&mut b).await.is_some_and(|r| r.is_ok()));
    tx.send(Err("the client closed before the body ended".into()))
        .await
        .expect("send");
    assert!(matches!(next(&mut b).await, Some(Err(_))));
    assert!(matches!(b.flag().error(), Some(ProxyError::ClientAborted)));
}
