//! Round robin: one shared atomic counter. A server that cannot take the
//! request is skipped by drawing the next turn, so the servers left share
//! its turns evenly (not the next one in order).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(super) struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// The next index in `0..n` (`n > 0`) for which `ok` holds.
    pub(super) fn pick(&self, n: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
        for _ in 0..n {
            let i = self.next.fetch_add(1, Relaxed) % n;
            if ok(i) {
                return Some(i);
            }
        }
        // Other threads drew turns meanwhile: look at every server once.
        (0..n).find(|&i| ok(i))
    }
}
