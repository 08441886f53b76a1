//! Per-pool limits that keep a failing backend from turning into a storm:
//! the retry budget, and the cap on requests in flight to the whole pool.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::config::model;
use crate::units::clock_ms;

/// Retries allowed per one-second window: `min_per_second` plus `ratio` of
/// the requests seen in the window.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: u32,
    window_start: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    pub fn new(cfg: model::RetryBudget) -> Self {
        RetryBudget {
            ratio: cfg.ratio,
            min_per_second: cfg.min_per_second,
            window_start: AtomicU64::new(clock_ms()),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Same budget with new settings, keeping the counts (for reloads).
    pub fn reconfigured(&self, cfg: model::RetryBudget) -> Self {
        let b = RetryBudget::new(cfg);
        b.window_start.store(self.window_start.load(Relaxed), Relaxed);
        b.requests.store(self.requests.load(Relaxed), Relaxed);
        b.retries.store(self.retries.load(Relaxed), Relaxed);
        b
    }

    fn roll(&self, now: u64) {
        let start = self.window_start.load(Relaxed);
        if now.saturating_sub(start) >= 1000
            && self
                .window_start
                .compare_exchange(start, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.requests.store(0, Relaxed);
            self.retries.store(0, Relaxed);
        }
    }

    /// Counts a first try (no clock read here: the window rolls when a
    /// retry asks for the budget).
    pub fn record_request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Takes one retry from the budget if there is one left.
    pub fn try_retry(&self) -> bool {
        self.roll(clock_ms());
        let allowed =
            u64::from(self.min_per_second) + (self.requests.load(Relaxed) as f64 * self.ratio) as u64;
        let used = self.retries.fetch_add(1, Relaxed);
        if used < allowed {
            true
        } else {
            self.retries.fetch_sub(1, Relaxed);
            false
        }
    }
}

/// Counters of one pool that outlive reloads.
#[derive(Debug, Default)]
pub struct PoolStats {
    in_flight: AtomicU32,
    pub retries: AtomicU64,
    pub overloaded: AtomicU64,
    pub ejections: AtomicU64,
}

/// The pool is at its `max_requests`.
#[derive(Debug, Clone, Copy)]
pub struct PoolFull;

/// One request counted against a pool's `max_requests`.
#[derive(Debug)]
pub struct PoolGuard(Arc<PoolStats>);

impl PoolStats {
    /// Enters a request if the pool has room (`max == 0`: no limit, no count).
    pub fn enter(self: &Arc<Self>, max: u32) -> Result<Option<PoolGuard>, PoolFull> {
        if max == 0 {
            return Ok(None);
        }
        let prev = self.in_flight.fetch_add(1, Relaxed);
        if prev >= max {
            self.in_flight.fetch_sub(1, Relaxed);
            self.overloaded.fetch_add(1, Relaxed);
            return Err(PoolFull);
        }
        Ok(Some(PoolGuard(self.clone())))
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_budget_allows_a_floor_plus_a_share() {
        let b = RetryBudget::new(model::RetryBudget {
            ratio: 0.2,
            min_per_second: 2,
        });
        for _ in 0..100 {
            b.record_request();
        }
        let allowed = (0..100).filter(|_| b.try_retry()).count();
        assert_eq!(allowed, 22);
    }

    #[test]
    fn pool_limit() {
        let s = Arc::new(PoolStats::default());
        let a = s.enter(2).expect("room");
        let b = s.enter(2).expect("room");
        assert!(s.enter(2).is_err());
        assert_eq!(s.overloaded.load(Relaxed), 1);
        drop(a);
        assert!(s.enter(2).is_ok());
        drop(b);
        assert!(s.enter(0).expect("no limit").is_none());
    }
}
