//! Peak-EWMA latency estimate kept in atomics.
//!
//! A sample above the estimate replaces it at once; a lower one pulls the
//! estimate toward it by `1 - exp(-elapsed / TAU)`, where `elapsed` is the
//! time since the previous sample. When read, an estimate above
//! [`DEFAULT_NS`] also relaxes toward it with the same `TAU` for the time
//! since the last sample, so a server that was slow once is tried again later.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Decay time constant, in nanoseconds (10 s).
const TAU_NS: f64 = 10e9;

/// Estimate of a server with no samples yet (1 ms): small, so new servers get tried.
pub(super) const DEFAULT_NS: f64 = 1e6;

#[derive(Debug)]
pub(super) struct PeakEwma {
    /// The estimate in nanoseconds, as `f64` bits.
    bits: AtomicU64,
    /// When the last sample was recorded, in the owner's clock (nanoseconds).
    stamp_ns: AtomicU64,
}

impl PeakEwma {
    pub(super) fn new() -> Self {
        Self {
            bits: AtomicU64::new(DEFAULT_NS.to_bits()),
            stamp_ns: AtomicU64::new(0),
        }
    }

    /// Records a sample of `sample_ns` taken at `now_ns`.
    pub(super) fn observe(&self, sample_ns: f64, now_ns: u64) {
        let prev = self.stamp_ns.swap(now_ns, Relaxed);
        let keep = decay(now_ns.saturating_sub(prev));
        let update = |bits: u64| {
            let v = f64::from_bits(bits);
            let next = if sample_ns > v {
                sample_ns
            } else {
                v * keep + sample_ns * (1.0 - keep)
            };
            Some(next.to_bits())
        };
        // The closure always returns Some, so this cannot fail.
        let _ = self.bits.fetch_update(Relaxed, Relaxed, update);
    }

    /// The estimate at `now_ns`, in nanoseconds.
    pub(super) fn estimate(&self, now_ns: u64) -> f64 {
        let v = f64::from_bits(self.bits.load(Relaxed));
        if v <= DEFAULT_NS {
            return v;
        }
        let idle = now_ns.saturating_sub(self.stamp_ns.load(Relaxed));
        DEFAULT_NS + (v - DEFAULT_NS) * decay(idle)
    }
}

/// The weight kept by the old value after `elapsed_ns`.
fn decay(elapsed_ns: u64) -> f64 {
    (-(elapsed_ns as f64) / TAU_NS).exp()
}
