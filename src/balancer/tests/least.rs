use http::HeaderMap;

use super::super::Algorithm;
use super::{counts, input, pool, servers};

#[test]
fn least_requests_prefers_idle_server() {
    let b = pool(Algorithm::LeastRequests, servers(3));
    let s = b.servers();
    let _g = [s[0].begin(), s[0].begin(), s[1].begin()];
    let c = counts(&b, 50);
    assert_eq!(c.get("s2"), Some(&50));
}

#[test]
fn least_requests_ties_rotate() {
    let b = pool(Algorithm::LeastRequests, servers(3));
    // All idle: consecutive picks visit every server.
    let c = counts(&b, 3);
    assert_eq!(c.len(), 3);
    // s0 busy: s1 and s2 share the picks, s0 gets none.
    let _g = b.servers()[0].begin();
    let c = counts(&b, 300);
    assert_eq!(c.get("s0"), None);
    assert!(c.get("s1").copied().unwrap_or(0) >= 90, "{c:?}");
    assert!(c.get("s2").copied().unwrap_or(0) >= 90, "{c:?}");
}

#[test]
fn least_requests_balances_held_guards() {
    let b = pool(Algorithm::LeastRequests, servers(3));
    let headers = HeaderMap::new();
    let mut held = Vec::new();
    for _ in 0..30 {
        let p = b.pick(&input(&headers)).expect("not empty");
        held.push(p.server.begin());
    }
    for s in b.servers() {
        assert_eq!(s.in_flight(), 10, "{}", s.name);
    }
    // Finish s1's requests: the next picks all go to s1.
    held.retain(|g| g.backend().name != "s1");
    assert_eq!(b.servers()[1].in_flight(), 0);
    for _ in 0..10 {
        let p = b.pick(&input(&headers)).expect("not empty");
        assert_eq!(p.server.name, "s1");
        held.push(p.server.begin());
    }
}
