//! Power of two choices over peak-EWMA latency.

use std::sync::Arc;
use std::time::Instant;

use super::{rng, Backend};

/// Picks two distinct servers at random and returns the index of the one with
/// the lower cost (latency estimate × (in flight + 1)); `servers` non-empty.
pub(super) fn pick(servers: &[Arc<Backend>]) -> usize {
    let n = servers.len();
    if n < 2 {
        return 0;
    }
    let a = rng::below(n);
    let mut b = rng::below(n - 1);
    if b >= a {
        b += 1;
    }
    let now = Instant::now();
    if servers[b].cost(now) < servers[a].cost(now) {
        b
    } else {
        a
    }
}
