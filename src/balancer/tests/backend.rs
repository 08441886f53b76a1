use std::time::Duration;

use super::super::ewma::{PeakEwma, DEFAULT_NS};
use super::backend;

const SEC: u64 = 1_000_000_000;

#[test]
fn guard_tracks_in_flight() {
    let b = backend("a", 1, 1);
    assert_eq!(b.in_flight(), 0);
    let g1 = b.begin();
    let g2 = b.begin();
    assert_eq!(b.in_flight(), 2);
    assert!(std::sync::Arc::ptr_eq(g1.backend(), &b));
    drop(g1);
    assert_eq!(b.in_flight(), 1);
    drop(g2);
    assert_eq!(b.in_flight(), 0);
}

#[test]
fn guard_record_feeds_ewma_once() {
    let b = backend("a", 1, 1);
    let mut g = b.begin();
    g.record(Duration::from_millis(50));
    g.record(Duration::from_millis(500)); // ignored: the first call wins
    assert_eq!(b.in_flight(), 1);
    drop(g);
    assert_eq!(b.in_flight(), 0);
    let est = b.latency_ewma();
    // Peak: the sample replaced the default at once; drop did not record again.
    assert!(
        est > Duration::from_millis(49) && est <= Duration::from_millis(50),
        "{est:?}"
    );
}

#[test]
fn new_backend_has_default_estimate() {
    let b = backend("a", 1, 1);
    assert_eq!(b.latency_ewma(), Duration::from_millis(1));
}

#[test]
fn peak_ewma_replaces_on_peak_and_decays_by_time() {
    let e = PeakEwma::new();
    assert_eq!(e.estimate(0), DEFAULT_NS);
    e.observe(10e6, SEC);
    assert_eq!(e.estimate(SEC), 10e6);
    // A lower sample right away barely moves it.
    e.observe(2e6, SEC + 1_000);
    assert!(e.estimate(SEC + 1_000) > 9.99e6);
    // A lower sample one tau (10 s) later moves it 1 - 1/e of the way.
    e.observe(2e6, 11 * SEC + 1_000);
    let expected = 2e6 + (e_before(10e6, 2e6, 1_000)) * (-1f64).exp();
    let got = e.estimate(11 * SEC + 1_000);
    assert!((got - expected).abs() < 1.0, "{got} vs {expected}");
}

/// The value after a lower sample `s` at `dt_ns` after `v`, minus `s`.
fn e_before(v: f64, s: f64, dt_ns: u64) -> f64 {
    let w = (-(dt_ns as f64) / 10e9).exp();
    v * w + s * (1.0 - w) - s
}

#[test]
fn idle_estimate_relaxes_toward_default() {
    let e = PeakEwma::new();
    e.observe(101e6, 0);
    // Read one tau later: default + (v - default) / e.
    let got = e.estimate(10 * SEC);
    let expected = DEFAULT_NS + 100e6 * (-1f64).exp();
    assert!((got - expected).abs() < 1.0, "{got} vs {expected}");
    // Reading does not change the stored value.
    assert_eq!(e.estimate(0), 101e6);
}
