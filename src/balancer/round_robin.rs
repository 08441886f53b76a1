//! Round robin: one shared atomic counter.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(super) struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// The next index in `0..n` (`n > 0`).
    pub(super) fn pick(&self, n: usize) -> usize {
        self.next.fetch_add(1, Relaxed) % n
    }
}
