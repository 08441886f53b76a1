//! Token-bucket rate limits keyed by client address, a header, the route,
//! or a combination (`governor`'s GCRA). Memory stays bounded: when a
//! limiter holds more than `MAX_KEYS` keys, the ones whose buckets are full
//! again are evicted.
//!
//! A key is a [`RateKey`]: the client address when the rule counts by it,
//! plus a 64-bit digest of the other parts (header value, route) under a
//! per-process random key, so that checking a request allocates nothing.
//! Two values whose digests collide share a bucket; with a random 64-bit
//! key that is as unlikely as guessing it.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// More keys than this trigger an eviction of idle ones.
const MAX_KEYS: usize = 100_000;

/// What a bucket is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub ip: Option<IpAddr>,
    /// Digest of the other key parts (0 when there are none).
    pub digest: u64,
}

impl RateKey {
    pub fn ip(ip: IpAddr) -> Self {
        RateKey {
            ip: Some(ip),
            digest: 0,
        }
    }
}

/// Builds [`RateKey::digest`]s with this process's random key.
#[derive(Debug)]
pub struct Digest(std::collections::hash_map::DefaultHasher);

impl Digest {
    pub fn new() -> Self {
        static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        Digest(SEED.get_or_init(Default::default).build_hasher())
    }

    /// Adds one part; `tag` keeps parts of different kinds apart.
    pub fn part(&mut self, tag: u8, bytes: &[u8]) {
        tag.hash(&mut self.0);
        bytes.hash(&mut self.0);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

/// One rule's limiter.
#[derive(Debug)]
pub struct Limiter<C: Clock = DefaultClock> {
    inner: RateLimiter<RateKey, DashMapStateStore<RateKey>, C, NoOpMiddleware<C::Instant>>,
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
    pub fn check(&self, key: &RateKey) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Relaxed) % 4096 == 4095 && self.inner.len() > MAX_KEYS {
            self.inner.retain_recent();
            self.inner.shrink_to_fit();
        }
        self.inner
            .check_key(key)
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

    fn key(ip: &str) -> RateKey {
        RateKey::ip(ip.parse().expect("ip"))
    }

    #[test]
    fn digests_separate_parts_and_values() {
        let d = |parts: &[(u8, &[u8])]| {
            let mut d = Digest::new();
            for (t, b) in parts {
                d.part(*t, b);
            }
            d.finish()
        };
        assert_eq!(d(&[(1, b"abc")]), d(&[(1, b"abc")]));
        assert_ne!(d(&[(1, b"abc")]), d(&[(1, b"abd")]));
        assert_ne!(d(&[(1, b"abc")]), d(&[(2, b"abc")]));
        assert_ne!(d(&[(1, b"ab"), (1, b"c")]), d(&[(1, b"a"), (1, b"bc")]));
    }

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
            match l.check(&key("192.0.2.1")) {
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
        assert!(l.check(&key("192.0.2.2")).is_ok());
    }

    #[test]
    fn idle_keys_are_evicted() {
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(nz(10), nz(5), clock.clone());
        for i in 0..1000 {
            let _ = l.check(&key(&format!("10.0.{}.{}", i / 256, i % 256)));
        }
        assert_eq!(l.len(), 1000);
        clock.advance(Duration::from_secs(5));
        l.evict_idle();
        assert_eq!(l.len(), 0);
    }
}
