//! The check loop on paused time: verdicts after `rise` passes and `fall`
//! failures, one probe per interval, counts reset by an outside change.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::{jitter, watch};
use crate::balancer::{Backend, Health};
use crate::config::model::{CheckKind, HealthCheck};

fn check(rise: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        kind: CheckKind::Tcp,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        jitter: Duration::ZERO,
        rise,
        fall,
        traffic_when_unknown: false,
    }
}

/// A probe whose answer the test sets, counting its calls.
#[derive(Default)]
struct Script {
    healthy: AtomicBool,
    calls: AtomicU32,
}

fn start(rise: u32, fall: u32) -> (Arc<Backend>, Arc<Script>) {
    let server = Arc::new(Backend::new("s".into(), "127.0.0.1:9".parse().expect("addr"), 1));
    let script = Arc::new(Script::default());
    let (s2, sc) = (server.clone(), script.clone());
    tokio::spawn(watch("p".into(), s2, check(rise, fall), move || {
        let sc = sc.clone();
        async move {
            sc.calls.fetch_add(1, SeqCst);
            if sc.healthy.load(SeqCst) {
                Ok("HTTP 200".to_string())
            } else {
                Err("refused".to_string())
            }
        }
    }));
    (server, script)
}

/// Lets the check task run at the current (paused) instant.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn down_after_fall_failures_one_interval_apart() {
    let (server, script) = start(2, 3);
    settle().await;
    // Probes at 0 s and 2 s failed: not down yet.
    tokio::time::advance(Duration::from_millis(2_000)).await;
    settle().await;
    assert_eq!(script.calls.load(SeqCst), 2);
    assert_eq!(server.state.health(), Health::Unknown);
    // The third, at 4 s, makes it down.
    tokio::time::advance(Duration::from_millis(1_999)).await;
    settle().await;
    assert_eq!(script.calls.load(SeqCst), 2, "no probe before the interval");
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(script.calls.load(SeqCst), 3);
    assert_eq!(server.state.health(), Health::Down);
    assert_eq!(server.state.last_check(), Some(false));
}

#[tokio::test(start_paused = true)]
async fn up_after_rise_passes_and_a_failure_in_between_starts_over() {
    let (server, script) = start(3, 1);
    settle().await;
    assert_eq!(
        server.state.health(),
        Health::Down,
        "fall = 1: down at the first failure"
    );
    script.healthy.store(true, SeqCst);
    // Passes at 2 s and 4 s, a failure at 6 s, then passes from 8 s.
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
    }
    assert_eq!(server.state.health(), Health::Down);
    script.healthy.store(false, SeqCst);
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    script.healthy.store(true, SeqCst);
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(server.state.health(), Health::Down, "the count started over");
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(server.state.health(), Health::Up);
}

#[tokio::test(start_paused = true)]
async fn a_verdict_changed_elsewhere_restarts_the_count() {
    let (server, script) = start(2, 2);
    script.healthy.store(true, SeqCst);
    settle().await;
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(server.state.health(), Health::Up);
    // Passive ejection marks it down; two passes are needed from here.
    server.state.set_health(Health::Down);
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(server.state.health(), Health::Down);
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(server.state.health(), Health::Up);
}

#[test]
fn jitter_stays_within_its_bound() {
    assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    for _ in 0..200 {
        assert!(jitter(Duration::from_millis(50)) <= Duration::from_millis(50));
    }
}
