//! A small, fast per-thread PRNG (splitmix64) for the P2C choices.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::hash::{mix64, GOLDEN};

/// Hands each thread a different seed.
static THREADS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let n = THREADS.fetch_add(1, Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix64(t ^ mix64(n.wrapping_add(GOLDEN)))
}

/// The next pseudo-random number of this thread.
pub(super) fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(GOLDEN);
        s.set(x);
        mix64(x)
    })
}

/// A pseudo-random number in `0..n` (`n > 0`), without modulo bias worth
/// speaking of (multiply-shift).
pub(super) fn below(n: usize) -> usize {
    ((u128::from(next_u64()) * n as u128) >> 64) as usize
}
