use http::HeaderMap;

use super::super::{Algorithm, Balancer, HashKey};
use super::{counts, input, pool, servers};

const ALL: [Algorithm; 5] = [
    Algorithm::RoundRobin,
    Algorithm::Weighted,
    Algorithm::LeastRequests,
    Algorithm::P2cEwma,
    Algorithm::Hash,
];

#[test]
fn empty_pool_picks_none() {
    let headers = HeaderMap::new();
    for a in ALL {
        let b = Balancer::new(a, HashKey::ClientIp, Some("srv".into()), Vec::new());
        assert!(b.pick(&input(&headers)).is_none(), "{a:?}");
        assert_eq!(b.algorithm(), a);
        assert!(b.servers().is_empty());
    }
}

#[test]
fn single_server_always_picked() {
    for a in ALL {
        let b = pool(a, servers(1));
        assert_eq!(counts(&b, 100).get("s0"), Some(&100), "{a:?}");
    }
}

#[test]
fn servers_keeps_config_order() {
    let b = pool(Algorithm::Hash, servers(4));
    let names: Vec<&str> = b.servers().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s0", "s1", "s2", "s3"]);
}

#[test]
fn round_robin_spreads_evenly() {
    for n in [3, 7] {
        let b = pool(Algorithm::RoundRobin, servers(n));
        let c = counts(&b, 10_000);
        assert_eq!(c.len(), n);
        let expected = 10_000.0 / n as f64;
        for (name, &got) in &c {
            let off = (got as f64 - expected).abs() / expected;
            assert!(off <= 0.05, "n={n} {name}: {got} vs {expected}");
        }
    }
}

#[test]
fn round_robin_cycles_in_order() {
    let b = pool(Algorithm::RoundRobin, servers(3));
    let headers = HeaderMap::new();
    let seq: Vec<String> = (0..6).map(|_| super::pick_name(&b, &input(&headers))).collect();
    assert_eq!(seq, ["s0", "s1", "s2", "s0", "s1", "s2"]);
}
