//! Power of two choices over peak-EWMA latency.

use std::sync::Arc;
use std::time::Instant;

use super::{rng, Backend};

/// Draws two distinct servers at random among those for which `ok` holds
/// and returns the index of the one with the lower cost (latency estimate
/// × (in flight + 1)); None when no server may take the request.
pub(super) fn pick(servers: &[Arc<Backend>], ok: impl Fn(usize) -> bool) -> Option<usize> {
    let n = servers.len();
    let all = (0..n).all(&ok);
    let m = if all { n } else { (0..n).filter(|&i| ok(i)).count() };
    // The r-th server that may take the request.
    let nth = |r: usize| {
        if all {
            Some(r)
        } else {
            (0..n).filter(|&i| ok(i)).nth(r)
        }
    };
    match m {
        0 => return None,
        1 => return nth(0),
        _ => {}
    }
    let a = rng::below(m);
    let mut b = rng::below(m - 1);
    if b >= a {
        b += 1;
    }
    let (a, b) = (nth(a)?, nth(b)?);
    let now = Instant::now();
    Some(if servers[b].cost(now) < servers[a].cost(now) {
        b
    } else {
        a
    })
}
