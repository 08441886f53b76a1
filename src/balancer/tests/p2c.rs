use std::time::Duration;

use http::HeaderMap;

use super::super::Algorithm;
use super::{counts, input, pool, servers};

#[test]
fn p2c_prefers_fast_server() {
    let b = pool(Algorithm::P2cEwma, servers(2));
    let latency = |name: &str| Duration::from_millis(if name == "s0" { 1 } else { 10 });
    let headers = HeaderMap::new();
    let mut fast = 0;
    for _ in 0..10_000 {
        let p = b.pick(&input(&headers)).expect("not empty");
        if p.server.name == "s0" {
            fast += 1;
        }
        p.server
            .record_latency(latency(&p.server.name), std::time::Instant::now());
    }
    assert!(fast > 8_000, "fast server got {fast} of 10000");
}

#[test]
fn p2c_spreads_over_many_servers() {
    // Equal latencies: every server gets picked and none dominates.
    let b = pool(Algorithm::P2cEwma, servers(5));
    let c = counts(&b, 10_000);
    assert_eq!(c.len(), 5);
    for (name, &n) in &c {
        assert!((1_000..=3_000).contains(&n), "{name}: {n}");
    }
}

#[test]
fn p2c_avoids_loaded_and_slow_servers() {
    let b = pool(Algorithm::P2cEwma, servers(4));
    let s = b.servers();
    s[1].record_latency(Duration::from_millis(50), std::time::Instant::now());
    let _held: Vec<_> = (0..20).map(|_| s[2].begin()).collect();
    let c = counts(&b, 4_000);
    // s1 and s2 only win against each other, i.e. in 1/6 of the pairs.
    let bad = c.get("s1").copied().unwrap_or(0) + c.get("s2").copied().unwrap_or(0);
    assert!(bad < 1_000, "{c:?}");
}

#[test]
fn p2c_tries_new_server() {
    // An established 5 ms server versus a new one at the default estimate.
    let b = pool(Algorithm::P2cEwma, servers(2));
    b.servers()[0].record_latency(Duration::from_millis(5), std::time::Instant::now());
    let c = counts(&b, 100);
    assert_eq!(c.get("s1"), Some(&100));
}
