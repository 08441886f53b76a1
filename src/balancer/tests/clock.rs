//! Time-driven behaviour on paused tokio time: passive ejection ends after
//! its time, slow start ramps a recovered server's share, and the retry
//! budget's window rolls every second.

use std::time::Duration;

use tokio::time::advance;

use super::*;
use crate::balancer::budget::RetryBudget;
use crate::balancer::{Health, HealthGate};
use crate::config::model;

#[tokio::test(start_paused = true)]
async fn an_ejected_server_returns_when_its_time_is_up() {
    let s = servers(2);
    let b = pool(Algorithm::RoundRobin, s.clone());
    assert_eq!(s[0].state.eject(Duration::from_secs(10)), Duration::from_secs(10));
    assert_eq!((b.ejected_count(), b.available_count()), (1, 1));
    assert_eq!(counts(&b, 10).get("s1"), Some(&10));
    advance(Duration::from_millis(9_990)).await;
    assert_eq!(b.ejected_count(), 1, "still out just before the end");
    advance(Duration::from_millis(20)).await;
    assert_eq!((b.ejected_count(), b.available_count()), (0, 2));
    assert_eq!(counts(&b, 10).get("s0"), Some(&5));
    // The second ejection lasts twice as long.
    assert_eq!(s[0].state.eject(Duration::from_secs(10)), Duration::from_secs(20));
    advance(Duration::from_secs(19)).await;
    assert_eq!(b.ejected_count(), 1);
    advance(Duration::from_secs(2)).await;
    assert_eq!(b.ejected_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn slow_start_share_grows_over_the_ramp() {
    let s = servers(2);
    s[0].state.set_health(Health::Up);
    s[0].state.set_available_since(0);
    s[1].state.set_health(Health::Up);
    // s1 recovered just now; the ramp is 100 s.
    s[1].state.mark_available_now();
    let b = pool(Algorithm::RoundRobin, s).with_health(HealthGate::UpOnly, Duration::from_secs(100));
    let share = |b: &Balancer| counts(b, 4000).get("s1").copied().unwrap_or(0) as f64 / 4000.0;
    let start = share(&b);
    assert!(start < 0.1, "at the start of the ramp: {start}");
    advance(Duration::from_secs(50)).await;
    let half = share(&b);
    // Half way, the server is offered every other pick and takes half of
    // those (factor 0.5): a quarter of the traffic.
    assert!(half > start && (0.2..0.3).contains(&half), "half way: {half}");
    advance(Duration::from_secs(50)).await;
    let done = share(&b);
    assert!((0.49..=0.51).contains(&done), "after the ramp: {done}");
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_refills_each_second() {
    let b = RetryBudget::new(model::RetryBudget {
        ratio: 0.1,
        min_per_second: 2,
    });
    for _ in 0..30 {
        b.record_request();
    }
    // 2 + 10 % of 30 = 5 retries in this second.
    assert_eq!((0..10).filter(|_| b.try_retry()).count(), 5);
    advance(Duration::from_millis(999)).await;
    assert!(!b.try_retry(), "the window has not rolled yet");
    advance(Duration::from_millis(1)).await;
    // A new window: its requests so far are none, so the floor applies.
    assert_eq!((0..10).filter(|_| b.try_retry()).count(), 2);
}
