//! Smooth weighted round robin (the nginx algorithm).
//!
//! Each step adds every server's weight to its `current`, picks the largest
//! (first on ties) and subtracts the total from it. Over every cycle of
//! `sum(weights)` picks each server gets exactly its weight, interleaved.
//! The cycle (weights reduced by their gcd) is precomputed into a table read
//! with an atomic counter; when it would exceed [`TABLE_CAP`] entries, the
//! running state is kept behind a mutex instead.
//!
//! A server that cannot take the request loses its entries of the cycle
//! (the table's are skipped, the running state leaves it out of the
//! step), so the others share by their own weights.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use super::Backend;

/// Largest precomputed cycle (entries of 4 bytes).
pub(super) const TABLE_CAP: u64 = 16_384;

#[derive(Debug)]
pub(super) enum Weighted {
    Table { order: Box<[u32]>, next: AtomicUsize },
    Running(Mutex<Swrr>),
}

impl Weighted {
    pub(super) fn new(servers: &[Arc<Backend>]) -> Self {
        let weights = reduced_weights(servers);
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut swrr = Swrr::new(&weights);
        if total > TABLE_CAP {
            return Self::Running(Mutex::new(swrr));
        }
        let order = (0..total)
            .map(|_| u32::try_from(swrr.step(|_| true).unwrap_or(0)).unwrap_or(0))
            .collect();
        Self::Table {
            order,
            next: AtomicUsize::new(0),
        }
    }

    /// The next server index for which `ok` holds.
    pub(super) fn pick(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Self::Table { order, next } => {
                let len = order.len();
                if len == 0 {
                    return None;
                }
                let at = next.fetch_add(1, Relaxed);
                // The first entry from `at` on whose server may take it;
                // the entries skipped are consumed as if drawn.
                let skip = (0..len).find(|d| ok(order[(at + d) % len] as usize))?;
                if skip > 0 {
                    next.fetch_add(skip, Relaxed);
                }
                Some(order[(at + skip) % len] as usize)
            }
            Self::Running(m) => m.lock().unwrap_or_else(PoisonError::into_inner).step(ok),
        }
    }
}

/// Weights with 0 counted as 1, divided by their greatest common divisor.
pub(super) fn reduced_weights(servers: &[Arc<Backend>]) -> Vec<u32> {
    let weights: Vec<u32> = servers.iter().map(|s| s.weight().max(1)).collect();
    let g = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    weights.into_iter().map(|w| w / g).collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The running state of smooth weighted round robin.
#[derive(Debug)]
pub(super) struct Swrr {
    weights: Vec<i64>,
    current: Vec<i64>,
}

impl Swrr {
    pub(super) fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w)).collect();
        Self {
            current: vec![0; weights.len()],
            weights,
        }
    }

    /// One pick among the servers for which `ok` holds (nginx's rule:
    /// the others take no part in the step); None when there is none.
    pub(super) fn step(&mut self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let mut best = None;
        let mut best_value = i64::MIN;
        let mut total = 0;
        for (i, (c, w)) in self.current.iter_mut().zip(&self.weights).enumerate() {
            if !ok(i) {
                continue;
            }
            *c += w;
            total += w;
            if *c > best_value {
                best = Some(i);
                best_value = *c;
            }
        }
        if let Some(c) = best.and_then(|b| self.current.get_mut(b)) {
            *c -= total;
        }
        best
    }
}
