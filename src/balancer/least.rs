//! Least requests: the server with the fewest requests in flight.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::Backend;

/// Scans from a start index that advances on every pick, so that among
/// servers with equal load the choice rotates.
#[derive(Debug, Default)]
pub(super) struct LeastRequests {
    start: AtomicUsize,
}

impl LeastRequests {
    /// The index of a least-loaded server (`servers` non-empty).
    pub(super) fn pick(&self, servers: &[Arc<Backend>]) -> usize {
        let n = servers.len();
        let start = self.start.fetch_add(1, Relaxed) % n;
        let mut best = start;
        let mut best_load = u32::MAX;
        for k in 0..n {
            let i = (start + k) % n;
            let load = servers[i].in_flight();
            if load < best_load {
                best = i;
                best_load = load;
                if load == 0 {
                    break;
                }
            }
        }
        best
    }
}
