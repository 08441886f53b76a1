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
