//! Token-bucket rate limits keyed by client address, a header, the route,
//! or a combination (`governor`'s GCRA). Memory stays bounded: when a
//! limiter holds more than `MAX_KEYS` keys, the ones whose buckets are full
//! again are evicted.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// More keys than this trigger an eviction of idle ones.
const MAX_KEYS: usize = 100_000;

/// One rule's limiter.
#[derive(Debug)]
pub struct Limiter<C: Clock = DefaultClock> {
    inner: RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    checks: AtomicU64,
}

impl Limiter<DefaultClock> {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Limiter::with_clock(per_second, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limiter<C> {
    pub fn with_clock(per_second: NonZeroU32, burst: NonZeroU32, clock: C) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Limiter {
            inner: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a token for `key`, or says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Relaxed) % 4096 == 4095 && self.inner.len() > MAX_KEYS {
            self.inner.retain_recent();
            self.inner.shrink_to_fit();
        }
        self.inner
            .check_key(&key.to_string())
            .map(|_| ())
            .map_err(|not| not.wait_time_from(self.clock.now()))
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Evicts keys whose buckets are full again.
    pub fn evict_idle(&self) {
        self.inner.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn ten_seconds_at_twice_the_rate_admit_the_rate() {
        // R = 50/s per client, driven at 2R for 10 s on a fake clock.
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(nz(50), nz(1), clock.clone());
        let (mut ok, mut limited) = (0, 0);
        for _ in 0..(100 * 10) {
            match l.check("192.0.2.1") {
                Ok(()) => ok += 1,
                Err(wait) => {
                    assert!(wait <= Duration::from_millis(20));
                    limited += 1;
                }
            }
            clock.advance(Duration::from_millis(10));
        }
        let expected: f64 = 50.0 * 10.0;
        assert!(
            (f64::from(ok) - expected).abs() <= expected * 0.05,
            "admitted {ok}, limited {limited}"
        );
        assert_eq!(ok + limited, 1000);
        // Another client has its own bucket.
        assert!(l.check("192.0.2.2").is_ok());
    }

    #[test]
    fn idle_keys_are_evicted() {
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(nz(10), nz(5), clock.clone());
        for i in 0..1000 {
            let _ = l.check(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        assert_eq!(l.len(), 1000);
        clock.advance(Duration::from_secs(5));
        l.evict_idle();
        assert_eq!(l.len(), 0);
    }
}
