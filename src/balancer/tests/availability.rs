//! Servers that may not take traffic are skipped by every algorithm.

use std::time::Duration;

use http::HeaderMap;

use super::*;
use crate::balancer::{AdminState, Health, HealthGate};

const ALL: [Algorithm; 5] = [
    Algorithm::RoundRobin,
    Algorithm::Weighted,
    Algorithm::LeastRequests,
    Algorithm::P2cEwma,
    Algorithm::Hash,
];

#[test]
fn down_draining_ejected_and_full_servers_are_skipped() {
    for alg in ALL {
        let s = servers(4);
        s[0].state.set_health(Health::Down);
        s[1].state.set_admin(AdminState::Draining);
        s[2].state.eject(Duration::from_secs(60));
        let b = pool(alg, s.clone());
        let c = counts(&b, 200);
        assert_eq!(c.get("s3"), Some(&200), "{alg:?}: {c:?}");
        // The last one at its limit: nothing left.
        let limited = Arc::new(Backend::with_limit("s3".into(), s[3].addr, 1, 1));
        let b = pool(
            alg,
            vec![s[0].clone(), s[1].clone(), s[2].clone(), limited.clone()],
        );
        let h = HeaderMap::new();
        let guard = limited.begin();
        assert!(b.pick(&input(&h)).is_none(), "{alg:?}");
        assert!(limited.saturated());
        drop(guard);
        assert_eq!(pick_name(&b, &input(&h)), "s3");
    }
}

#[test]
fn unknown_health_waits_for_the_check_only_when_gated() {
    let s = servers(2);
    s[1].state.set_health(Health::Up);
    let gated = pool(Algorithm::RoundRobin, s.clone()).with_health(HealthGate::UpOnly, Duration::ZERO);
    assert_eq!(counts(&gated, 10).get("s1"), Some(&10));
    let open = pool(Algorithm::RoundRobin, s).with_health(HealthGate::UnknownOk, Duration::ZERO);
    assert_eq!(counts(&open, 10).len(), 2);
    assert_eq!(open.available_count(), 2);
    assert_eq!(gated.available_count(), 1);
}

#[test]
fn avoid_picks_another_server() {
    for alg in ALL {
        let b = pool(alg, servers(3));
        let h = HeaderMap::new();
        for _ in 0..50 {
            let first = b.pick(&input(&h)).expect("pick").index;
            let second = b.pick_avoiding(&input(&h), &[first]).expect("second").index;
            assert_ne!(first, second, "{alg:?}");
            let third = b
                .pick_avoiding(&input(&h), &[first, second])
                .expect("third")
                .index;
            assert!(third != first && third != second);
            assert!(b.pick_avoiding(&input(&h), &[0, 1, 2]).is_none());
        }
    }
}

#[test]
fn slow_start_ramps_a_recovered_server() {
    let s = servers(2);
    s[0].state.set_health(Health::Up);
    s[1].state.set_health(Health::Up);
    // s0 is not ramping (0 = no ramp in progress); s1 came up just now, with a 100 s ramp.
    s[0].state.set_available_since(0);
    let b = pool(Algorithm::RoundRobin, s.clone()).with_health(HealthGate::UpOnly, Duration::from_secs(100));
    let c = counts(&b, 4000);
    let new = c.get("s1").copied().unwrap_or(0);
    assert!(
        new > 0 && new < 400,
        "a server at the start of its ramp took {new} of 4000: {c:?}"
    );
    assert_eq!(new + c.get("s0").copied().unwrap_or(0), 4000);
    // Without slow start the split is even.
    let plain = pool(Algorithm::RoundRobin, s).with_health(HealthGate::UpOnly, Duration::ZERO);
    assert_eq!(counts(&plain, 100).get("s1"), Some(&50));
}

#[test]
fn slow_start_share_grows_with_time() {
    let st = crate::balancer::ServerState::default();
    st.set_health(Health::Up);
    let t0 = crate::units::clock_ms();
    let ramp = Duration::from_secs(10);
    assert!(st.slow_start_factor(t0, ramp) <= 0.06);
    assert!((st.slow_start_factor(t0 + 5_000, ramp) - 0.5).abs() < 0.01);
    assert_eq!(st.slow_start_factor(t0 + 20_000, ramp), 1.0);
    assert_eq!(st.slow_start_factor(t0, Duration::ZERO), 1.0);
}

#[test]
fn ejection_grows_with_each_ejection() {
    let st = crate::balancer::ServerState::default();
    let base = Duration::from_secs(10);
    assert_eq!(st.eject(base), Duration::from_secs(10));
    assert_eq!(st.eject(base), Duration::from_secs(20));
    assert_eq!(st.eject(base), Duration::from_secs(30));
    assert!(st.ejected(crate::units::clock_ms()));
    assert_eq!(st.ejections(), 3);
}

/// How a server is kept out of rotation in [`an_unavailable_server_s_share_is_spread_by_weight`].
#[derive(Debug, Clone, Copy)]
enum Out {
    Down,
    Drained,
    Ejected,
}

impl Out {
    fn apply(self, s: &Backend) {
        match self {
            Out::Down => {
                s.state.set_health(Health::Down);
            }
            Out::Drained => s.state.set_admin(AdminState::Draining),
            Out::Ejected => {
                s.state.eject(Duration::from_secs(60));
            }
        }
    }
}

/// Three servers, one out: 300 picks give each of the other two its
/// weighted share of the 300 (within ±5 %), instead of the next server in
/// order taking the missing one's turns (HAProxy and nginx spread them).
#[test]
fn an_unavailable_server_s_share_is_spread_by_weight() {
    let weight_sets: [&[u32]; 3] = [&[1, 1, 1], &[3, 2, 1], &[1, 4, 2]];
    for alg in [
        Algorithm::RoundRobin,
        Algorithm::Weighted,
        Algorithm::LeastRequests,
    ] {
        for weights in weight_sets {
            for out in [Out::Down, Out::Drained, Out::Ejected] {
                for gone in 0..3 {
                    let s = weighted(weights);
                    out.apply(&s[gone]);
                    let b = pool(alg, s.clone());
                    let c = counts(&b, 300);
                    // Round robin and least requests ignore weights.
                    let w = |i: usize| match alg {
                        Algorithm::Weighted => f64::from(weights[i]),
                        _ => 1.0,
                    };
                    let total: f64 = (0..3).filter(|&i| i != gone).map(w).sum();
                    for i in (0..3).filter(|&i| i != gone) {
                        let want = 300.0 * w(i) / total;
                        let got = c.get(&format!("s{i}")).copied().unwrap_or(0) as f64;
                        assert!(
                            (got - want).abs() <= want * 0.05,
                            "{alg:?} weights {weights:?}, s{gone} {out:?}: s{i} got {got}, its share is {want:.0}: {c:?}"
                        );
                    }
                    assert_eq!(c.get(&format!("s{gone}")), None, "{alg:?}: {c:?}");
                }
            }
        }
    }
}

/// Power of two choices draws its two candidates among the servers that
/// can take the request: with one of three out, the other two share
/// evenly (over many picks, as the draw is random).
#[test]
fn p2c_draws_among_available_servers() {
    for gone in 0..3 {
        let s = servers(3);
        s[gone].state.set_health(Health::Down);
        let b = pool(Algorithm::P2cEwma, s);
        let c = counts(&b, 20_000);
        for i in (0..3).filter(|&i| i != gone) {
            let got = c.get(&format!("s{i}")).copied().unwrap_or(0) as f64;
            assert!((got - 10_000.0).abs() <= 500.0, "s{gone} down: {c:?}");
        }
    }
}

/// Hashing keeps every key of an available server where it was, and
/// spreads the keys of a server that is out over the others (instead of
/// handing them all to its neighbour).
#[test]
fn hash_spreads_an_unavailable_server_s_keys() {
    let s = servers(3);
    let b = pool(Algorithm::Hash, s.clone());
    let ips: Vec<IpAddr> = (0..3000u32)
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let h = HeaderMap::new();
    let pick = |b: &Balancer, ip: IpAddr| {
        b.pick(&PickInput {
            client_ip: ip,
            headers: &h,
        })
        .expect("pick")
        .index
    };
    let before: Vec<usize> = ips.iter().map(|&ip| pick(&b, ip)).collect();
    s[0].state.set_health(Health::Down);
    let mut moved = [0usize; 3];
    for (ip, was) in ips.iter().zip(&before) {
        let now = pick(&b, *ip);
        if *was != 0 {
            assert_eq!(now, *was, "a key of an available server moved");
        } else {
            moved[now] += 1;
        }
    }
    let total = moved[1] + moved[2];
    assert!(total > 500, "{moved:?}");
    for m in &moved[1..] {
        let share = *m as f64 / total as f64;
        assert!((0.35..=0.65).contains(&share), "s0's keys went {moved:?}");
    }
}

/// Failures of requests sent before an ejection, or arriving while the
/// server is ejected, do not count: they cannot eject it again (each
/// ejection would double the time).
#[tokio::test(start_paused = true)]
async fn failures_of_requests_sent_before_an_ejection_do_not_extend_it() {
    let st = crate::balancer::ServerState::default();
    let base = Duration::from_secs(30);
    let sent_early = crate::units::clock_ms();
    tokio::time::advance(Duration::from_millis(5)).await;
    for _ in 0..4 {
        assert!(st.record_failure(crate::units::clock_ms()).is_some());
    }
    assert_eq!(st.eject(base), base);
    // In flight before the ejection: 306 ms later they fail too.
    tokio::time::advance(Duration::from_millis(306)).await;
    for _ in 0..10 {
        assert_eq!(st.record_failure(sent_early), None);
        assert_eq!(st.record_failure(crate::units::clock_ms()), None, "while ejected");
    }
    assert_eq!(st.ejections(), 1);
    // Once the ejection is over, new requests count again from zero.
    tokio::time::advance(base).await;
    assert!(!st.ejected(crate::units::clock_ms()));
    assert_eq!(st.record_failure(sent_early), None, "sent before the ejection");
    assert_eq!(st.record_failure(crate::units::clock_ms()), Some(1));
}

/// With an active check, an ejection marks the server down and the check
/// brings it back: the ejection ends when the check finds it up.
#[test]
fn an_up_verdict_ends_an_ejection() {
    let st = crate::balancer::ServerState::default();
    st.set_health(Health::Up);
    st.eject(Duration::from_secs(60));
    st.set_health(Health::Down);
    assert!(st.ejected(crate::units::clock_ms()));
    st.set_health(Health::Up);
    assert!(!st.ejected(crate::units::clock_ms()));
}
