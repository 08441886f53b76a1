//! Least requests: the server with the fewest requests in flight.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::Backend;

/// Scans from a start index that advances on every pick, so that among
/// servers with equal load the choice rotates; a start on a server that
/// cannot take the request draws the next one (as round robin does), so
/// ties rotate over the available servers evenly.
#[derive(Debug, Default)]
pub(super) struct LeastRequests {
    start: AtomicUsize,
}

impl LeastRequests {
    /// The index of a least-loaded server for which `ok` holds.
    pub(super) fn pick(&self, servers: &[Arc<Backend>], ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = servers.len();
        let start = (0..n)
            .map(|_| self.start.fetch_add(1, Relaxed) % n)
            .find(|&i| ok(i))?;
        let mut best = start;
        let mut best_load = servers[start].in_flight();
        for k in 1..n {
            if best_load == 0 {
                break;
            }
            let i = (start + k) % n;
            let load = servers[i].in_flight();
            if load < best_load && ok(i) {
                best = i;
                best_load = load;
            }
        }
        Some(best)
    }
}
