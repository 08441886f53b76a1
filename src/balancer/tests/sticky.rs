use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::super::sticky::server_id;
use super::super::{Algorithm, Backend, Balancer, HashKey};
use super::{input, servers};

fn sticky_pool(algorithm: Algorithm) -> Balancer {
    Balancer::new(algorithm, HashKey::ClientIp, Some("srv".into()), servers(3))
}

fn with_cookie(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("cookie", HeaderValue::from_str(value).expect("ascii"));
    h
}

#[test]
fn sticky_id_is_stable_hex_from_name() {
    let id = server_id("s1");
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(id, server_id("s1"));
    assert_ne!(id, server_id("s2"));
    // Derived from the name, not the address.
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 1);
    let moved = Arc::new(Backend::new("s1".into(), addr, 1));
    let b = Balancer::new(
        Algorithm::RoundRobin,
        HashKey::ClientIp,
        Some("srv".into()),
        vec![moved],
    );
    let p = b.pick(&input(&HeaderMap::new())).expect("not empty");
    let want = format!("srv={id}; Path=/; HttpOnly; SameSite=Lax");
    assert_eq!(p.set_cookie, Some(HeaderValue::from_str(&want).expect("ascii")));
}

#[test]
fn sticky_without_cookie_sets_one_for_the_pick() {
    for a in [Algorithm::RoundRobin, Algorithm::P2cEwma, Algorithm::Hash] {
        let b = sticky_pool(a);
        let headers = with_cookie("other=1");
        for _ in 0..6 {
            let p = b.pick(&input(&headers)).expect("not empty");
            let want = format!(
                "srv={}; Path=/; HttpOnly; SameSite=Lax",
                server_id(&p.server.name)
            );
            let got = p.set_cookie.expect("cookie to set");
            assert_eq!(got.to_str().expect("ascii"), want);
        }
    }
}

#[test]
fn sticky_cookie_keeps_the_server() {
    let b = sticky_pool(Algorithm::RoundRobin);
    for target in ["s0", "s1", "s2"] {
        let line = format!("a=1; srv={}; b=2", server_id(target));
        let headers = with_cookie(&line);
        for _ in 0..5 {
            let p = b.pick(&input(&headers)).expect("not empty");
            assert_eq!(p.server.name, target);
            assert!(p.set_cookie.is_none());
        }
    }
    // Also found in a second Cookie header, and quoted.
    let mut headers = with_cookie("a=1");
    let quoted = format!("srv=\"{}\"", server_id("s2"));
    headers.append("cookie", HeaderValue::from_str(&quoted).expect("ascii"));
    let p = b.pick(&input(&headers)).expect("not empty");
    assert_eq!(p.server.name, "s2");
    assert!(p.set_cookie.is_none());
}

#[test]
fn sticky_unknown_id_is_ignored() {
    let b = sticky_pool(Algorithm::RoundRobin);
    let gone = server_id("s9");
    for bad in [
        format!("srv={gone}"),
        "srv=".into(),
        "srv=zz; srvx=1".into(),
        format!("xsrv={}", server_id("s0")),
    ] {
        let headers = with_cookie(&bad);
        let names: Vec<String> = (0..3)
            .map(|_| {
                let p = b.pick(&input(&headers)).expect("not empty");
                assert!(p.set_cookie.is_some(), "{bad}");
                p.server.name.clone()
            })
            .collect();
        // Normal round robin continues.
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["s0", "s1", "s2"], "{bad}");
    }
}

#[test]
fn no_sticky_cookie_never_sets_one() {
    let b = Balancer::new(Algorithm::RoundRobin, HashKey::ClientIp, None, servers(3));
    let headers = with_cookie(&format!("srv={}", server_id("s2")));
    let names: Vec<String> = (0..3)
        .map(|_| {
            let p = b.pick(&input(&headers)).expect("not empty");
            assert!(p.set_cookie.is_none());
            p.server.name.clone()
        })
        .collect();
    assert_eq!(names, ["s0", "s1", "s2"]);
}

#[test]
fn invalid_sticky_name_disables_stickiness() {
    let b = Balancer::new(
        Algorithm::RoundRobin,
        HashKey::ClientIp,
        Some("bad name".into()),
        servers(2),
    );
    let p = b.pick(&input(&HeaderMap::new())).expect("not empty");
    assert!(p.set_cookie.is_none());
}
